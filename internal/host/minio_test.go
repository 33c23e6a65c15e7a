package host_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowlake/flowlake/internal/notify/natstest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowlake/flowlake/internal/host"
	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/notify"
	"github.com/flowlake/flowlake/internal/pipeline/pipelinetest"
	"github.com/flowlake/flowlake/internal/store"
	"github.com/flowlake/flowlake/internal/store/miniotest"
)

// uploadShuffled puts segs into the bucket below prefix through the S3 API
// in a shuffled order (fixed seed), and returns the order.
func uploadShuffled(t *testing.T, srv *miniotest.Server, prefix string, segs []pipelinetest.Segment) []int {
	t.Helper()
	order := mrand.New(mrand.NewPCG(7, 11)).Perm(len(segs))
	for _, i := range order {
		_, err := srv.Client().PutObject(t.Context(), &s3.PutObjectInput{
			Bucket: aws.String(srv.Bucket),
			Key:    aws.String(prefix + segs[i].Key),
			Body:   bytes.NewReader(segs[i].Data),
		})
		if err != nil {
			t.Fatalf("upload segment %d: %v", i, err)
		}
	}
	return order
}

// MinIO notifies a host by webhook of segments uploaded out of order into
// a store below a prefix; the lake equals one parse of the packets.
func TestMinIOWebhook(t *testing.T) {
	segs := pipelinetest.Cut(t, "ndpi-1kxun.pcap", 128<<10)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	token := rand.Text()
	env, err := notify.Webhook{
		ID: "FLOWLAKE", Endpoint: "http://" + ln.Addr().String() + "/minio/events",
		AuthToken: token, QueueDir: t.TempDir(),
	}.Env()
	if err != nil {
		t.Fatal(err)
	}
	srv := miniotest.StartWithEnv(t, env)
	const prefix = "site1"
	arn := notify.ARN("FLOWLAKE", notify.KindWebhook)
	if err := notify.Configure(t.Context(), srv.Client(), srv.Bucket, prefix, arn); err != nil {
		t.Fatal(err)
	}
	got, err := notify.Configured(t.Context(), srv.Client(), srv.Bucket)
	if want := map[string][]string{arn: {"site1/raw/", "site1/secrets/", "site1/status/"}}; err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("configured rules %v (%v), want %v", got, err, want)
	}
	srv.SetEnv(t)
	st, err := store.Open(t.Context(), "s3://"+srv.Bucket+"/"+prefix)
	if err != nil {
		t.Fatal(err)
	}
	h, err := host.New(host.Config{Store: st, Workers: 2, WebhookToken: token, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx, ln) }()

	began := time.Now()
	order := uploadShuffled(t, srv, prefix+"/", segs)
	t.Logf("uploaded %d segments in the order %v", len(segs), order)
	waitFor(t, 90*time.Second, "every checkpoint", committed(st, pipelinetest.Stream, len(segs)))
	t.Logf("all committed %v after the first upload", time.Since(began).Round(time.Millisecond))
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s := h.Stats()
	t.Logf("stats %+v", s)
	// The rules select raw/, status/ and secrets/ only: the host's own
	// writes (state/, lake/) raise no events.
	if s.Events != int64(len(segs)) || s.Ingested != int64(len(segs)) || s.Committed != int64(len(segs)) || s.Ignored != 0 || s.ParseErrors != 0 {
		t.Errorf("stats %+v: want %d events, ingests and commits, nothing ignored or failed", s, len(segs))
	}
	flushAndCheck(t, st, segs)
}

// startNATSServer runs Debian's nats-server with JetStream (natstest).
func startNATSServer(t *testing.T) string { return natstest.Start(t) }

// Two hosts share one durable JetStream consumer of MinIO's notifications:
// each event is ingested by one host, every segment is committed exactly
// once, both hosts work, and the lake equals one parse of the packets.
func TestNATSTwoHosts(t *testing.T) {
	segs := pipelinetest.Cut(t, "ndpi-1kxun.pcap", 128<<10)
	natsURL := startNATSServer(t)
	const subject, streamName = "flowlake.events", "flowlake"
	env, err := notify.NATS{ID: "FLOWLAKE", Address: strings.TrimPrefix(natsURL, "nats://"), Subject: subject, QueueDir: t.TempDir()}.Env()
	if err != nil {
		t.Fatal(err)
	}
	srv := miniotest.StartWithEnv(t, env)
	if err := notify.Configure(t.Context(), srv.Client(), srv.Bucket, "", notify.ARN("FLOWLAKE", notify.KindNATS)); err != nil {
		t.Fatal(err)
	}
	srv.SetEnv(t)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var hosts []*host.Host
	var dones []chan error
	for i := range 2 {
		st, err := store.Open(t.Context(), "s3://"+srv.Bucket)
		if err != nil {
			t.Fatal(err)
		}
		h, err := host.New(host.Config{
			Store: st, Workers: 2, Log: testLog(t).With("host", i),
			NATS: &host.NATSConfig{URL: natsURL, Stream: streamName, Subject: subject},
		})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- h.Run(ctx, nil) }()
		hosts, dones = append(hosts, h), append(dones, done)
	}
	// Both hosts are pulling from the consumer.
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	consumerInfo := func() *jetstream.ConsumerInfo {
		c, err := js.Consumer(t.Context(), streamName, host.DefaultNATSConsumer)
		if err != nil {
			return nil
		}
		info, err := c.Info(t.Context())
		if err != nil {
			return nil
		}
		return info
	}
	waitFor(t, 20*time.Second, "two hosts pulling", func() bool {
		info := consumerInfo()
		return info != nil && info.NumWaiting >= 2
	})

	st, err := store.Open(t.Context(), "s3://"+srv.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	uploadShuffled(t, srv, "", segs)
	waitFor(t, 90*time.Second, "every checkpoint", committed(st, pipelinetest.Stream, len(segs)))
	t.Logf("all committed %v after the first upload", time.Since(began).Round(time.Millisecond))
	cancel()
	var ingested, commits int64
	for i, h := range hosts {
		if err := <-dones[i]; err != nil {
			t.Fatalf("host %d: %v", i, err)
		}
		s := h.Stats()
		t.Logf("host %d: %+v", i, s)
		if s.Ingested == 0 {
			t.Errorf("host %d ingested nothing: the consumer did not share the work", i)
		}
		if s.BadEvents != 0 || s.IngestErrors != 0 || s.ParseErrors != 0 {
			t.Errorf("host %d: errors: %+v", i, s)
		}
		ingested += s.Ingested
		commits += s.Committed
	}
	if ingested != int64(len(segs)) || commits != int64(len(segs)) {
		t.Errorf("%d ingests and %d commits over both hosts, want %d of each (each event to one host, each segment committed once)", ingested, commits, len(segs))
	}
	if info := consumerInfo(); info == nil || info.NumAckPending != 0 || info.NumPending != 0 {
		t.Errorf("consumer after the run: %+v: want every message acknowledged", info)
	}
	flushAndCheck(t, st, segs)
}

// flakyStore fails the index writes of some segments: failures[seq] times,
// or always when it is negative.
type flakyStore struct {
	store.Store
	mu       sync.Mutex
	failures map[uint64]int
}

func (f *flakyStore) PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) error {
	if strings.HasSuffix(key, keys.ExtIndex) {
		_, seq, err := keys.ParseState(key)
		f.mu.Lock()
		n, ok := f.failures[seq]
		if ok && n != 0 {
			f.failures[seq] = n - 1
		}
		f.mu.Unlock()
		if err == nil && ok && n != 0 {
			return fmt.Errorf("put-if-absent %s: injected failure", key)
		}
	}
	return f.Store.PutIfAbsent(ctx, key, r, size)
}

// JetStream deliveries: a failed ingest is delivered again after a delay
// until it succeeds, at most MaxDeliver times; a malformed notification is
// dropped at once.
func TestNATSRedelivery(t *testing.T) {
	segs := pipelinetest.Cut(t, "ndpi-1kxun.pcap", 256<<10)[:2]
	natsURL := startNATSServer(t)
	mem := store.NewMem()
	st := &flakyStore{Store: mem, failures: map[uint64]int{0: 2, 1: -1}}
	const subject = "site.events"
	h, err := host.New(host.Config{Store: st, Workers: 1, Log: testLog(t), ReconcileEvery: time.Hour,
		NATS: &host.NATSConfig{URL: natsURL, Stream: "events", Subject: subject, MaxDeliver: 3, NakDelay: 50 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx, nil) }()
	waitFor(t, 10*time.Second, "the first reconcile", func() bool { return h.Stats().ReconcileRuns == 1 })
	pipelinetest.Upload(t, mem, segs) // after it: it would ingest them
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// The host creates the stream.
	waitFor(t, 10*time.Second, "the stream", func() bool {
		_, err := js.Stream(t.Context(), "events")
		return err == nil
	})
	for _, body := range [][]byte{[]byte("{oops"), minioEvent("b", segs[0].Key), minioEvent("b", segs[1].Key)} {
		if _, err := js.Publish(t.Context(), subject, body); err != nil {
			t.Fatal(err)
		}
	}
	// 1 malformed; segment 0: 2 failures, then ingested; segment 1: 3
	// failures, then dropped.
	waitFor(t, 20*time.Second, "every delivery", func() bool {
		s := h.Stats()
		return s.BadEvents == 1 && s.Ingested == 1 && s.IngestErrors == 5
	})
	waitFor(t, 10*time.Second, "checkpoint 0", committed(mem, pipelinetest.Stream, 1))
	time.Sleep(300 * time.Millisecond) // no further delivery comes
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s := h.Stats(); s.Events != 1+3+3 || s.IngestErrors != 5 || s.BadEvents != 1 {
		t.Errorf("stats %+v: want 7 deliveries (1 malformed, 3 + 3), 5 failed ingests", s)
	}
	c, err := js.Consumer(t.Context(), "events", host.DefaultNATSConsumer)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(t.Context())
	if err != nil || info.NumAckPending != 0 || info.NumPending != 0 {
		t.Errorf("consumer %+v (%v): want nothing pending", info, err)
	}
}
