package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of NATSConfig.
const (
	DefaultNATSConsumer   = "flowlake-functions"
	DefaultNATSMaxDeliver = 10
	DefaultNATSNakDelay   = 2 * time.Second
	DefaultNATSAckWait    = time.Minute
)

// maxNakDelay bounds the redelivery delay of a failed message.
const maxNakDelay = time.Minute

// NATSConfig configures the JetStream consumer of a Host.
type NATSConfig struct {
	// URL is the NATS server (nats://host:4222; several, comma-separated).
	URL string
	// Stream is the JetStream stream that captures MinIO's notifications.
	// The host creates it when it does not exist: subjects [Subject],
	// work-queue retention (a message is gone once acknowledged), file
	// storage.
	Stream string
	// Subject is the subject MinIO publishes to (its NATS target's
	// subject).
	Subject string
	// Consumer is the durable consumer's name. Hosts that share it share
	// the work: each message goes to one of them. Default
	// DefaultNATSConsumer.
	Consumer string
	// MaxDeliver bounds the deliveries of one message; the last failed
	// one is logged as an error and dropped. Default DefaultNATSMaxDeliver.
	MaxDeliver int
	// NakDelay is the delay before a failed message is delivered again,
	// times the number of deliveries so far (at most a minute). Default
	// DefaultNATSNakDelay.
	NakDelay time.Duration
	// AckWait is how long the server waits for an ack before it delivers a
	// message again (to another host, if this one died). Default
	// DefaultNATSAckWait.
	AckWait time.Duration
}

func (c *NATSConfig) setDefaults() error {
	switch {
	case c.URL == "":
		return errors.New("nats: no server URL")
	case c.Stream == "" || strings.ContainsAny(c.Stream, ". *>"):
		return fmt.Errorf("nats: stream name %q: want a non-empty name without '.', '*', '>' or spaces", c.Stream)
	case c.Subject == "":
		return errors.New("nats: no subject")
	case c.MaxDeliver < 0:
		return fmt.Errorf("nats: max deliver %d", c.MaxDeliver)
	}
	if c.Consumer == "" {
		c.Consumer = DefaultNATSConsumer
	}
	if strings.ContainsAny(c.Consumer, ". *>") {
		return fmt.Errorf("nats: consumer name %q: want a name without '.', '*', '>' or spaces", c.Consumer)
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = DefaultNATSMaxDeliver
	}
	if c.NakDelay <= 0 {
		c.NakDelay = DefaultNATSNakDelay
	}
	if c.AckWait <= 0 {
		c.AckWait = DefaultNATSAckWait
	}
	return nil
}

// startNATS connects, makes sure the stream and the durable consumer exist,
// and consumes until the returned stop function is called. Messages are
// handled with workCtx, which outlives ctx by the drain time.
func (h *Host) startNATS(ctx, workCtx context.Context) (stop func(), err error) {
	c := h.cfg.NATS
	log := h.log.With("nats", c.URL, "stream", c.Stream, "consumer", c.Consumer)
	nc, err := nats.Connect(c.URL,
		nats.Name("flowlake functions host"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("functions host: disconnected from NATS", "err", err)
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { log.Info("functions host: reconnected to NATS") }),
	)
	if err != nil {
		return nil, fmt.Errorf("functions host: connect to NATS %s: %w", c.URL, err)
	}
	fail := func(err error) (func(), error) {
		nc.Close()
		return nil, fmt.Errorf("functions host: NATS %s: %w", c.URL, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fail(err)
	}
	stream, err := h.ensureStream(ctx, js)
	if err != nil {
		return fail(err)
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       c.Consumer,
		Description:   "flowlake functions hosts: MinIO bucket notifications",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.AckWait,
		MaxDeliver:    c.MaxDeliver,
		FilterSubject: c.Subject,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fail(fmt.Errorf("durable consumer %s on stream %s: %w", c.Consumer, c.Stream, err))
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) { h.onMessage(workCtx, msg, log) },
		// One message at a time per host: an ingest takes milliseconds, and
		// a message a host holds is one the other hosts cannot take.
		jetstream.PullMaxMessages(1),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			log.Warn("functions host: NATS consumer", "err", err)
		}),
	)
	if err != nil {
		return fail(fmt.Errorf("consume %s: %w", c.Consumer, err))
	}
	log.Info("functions host: consuming NATS JetStream notifications", "subject", c.Subject)
	return func() {
		cc.Drain()
		select {
		case <-cc.Closed():
		case <-time.After(h.cfg.DrainTimeout):
			log.Warn("functions host: NATS consumer did not drain in time")
			cc.Stop()
		}
		nc.Close()
	}, nil
}

// ensureStream returns the configured stream, creating it if missing, and
// checks that it captures the subject.
func (h *Host) ensureStream(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, error) {
	c := h.cfg.NATS
	stream, err := js.Stream(ctx, c.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		stream, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        c.Stream,
			Description: "MinIO bucket notifications for the flowlake functions",
			Subjects:    []string{c.Subject},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
		})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			// Another host created it first.
			stream, err = js.Stream(ctx, c.Stream)
		}
		if err == nil {
			h.log.Info("functions host: created JetStream stream", "stream", c.Stream, "subject", c.Subject)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", c.Stream, err)
	}
	subjects := stream.CachedInfo().Config.Subjects
	for _, s := range subjects {
		if subjectMatches(s, c.Subject) {
			return stream, nil
		}
	}
	return nil, fmt.Errorf("stream %s captures subjects %q, not %s: MinIO's events would never reach it", c.Stream, subjects, c.Subject)
}

// subjectMatches reports whether subject is captured by pattern, a NATS
// subject with the wildcards * (one token) and > (the rest).
func subjectMatches(pattern, subject string) bool {
	p, s := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, tok := range p {
		switch {
		case tok == ">":
			return len(s) > i
		case i >= len(s):
			return false
		case tok != "*" && tok != s[i]:
			return false
		}
	}
	return len(p) == len(s)
}

// onMessage ingests one notification: ack on success, term when malformed
// or out of deliveries, nak with a growing delay otherwise.
func (h *Host) onMessage(ctx context.Context, msg jetstream.Msg, log *slog.Logger) {
	var delivered uint64 = 1
	if md, err := msg.Metadata(); err == nil {
		delivered = md.NumDelivered
		log = log.With("stream_seq", md.Sequence.Stream, "delivered", delivered)
	}
	_, err := h.handle(ctx, msg.Data(), log)
	var be *badEvent
	var ackErr error
	switch {
	case err == nil:
		ackErr = msg.Ack()
	case errors.As(err, &be):
		log.Error("functions host: malformed NATS notification; dropping it", "err", err, "body", clip(msg.Data()))
		ackErr = msg.Term()
	case delivered >= uint64(h.cfg.NATS.MaxDeliver):
		log.Error("functions host: ingest failed on the last delivery; dropping the notification (Reconcile cannot see a segment that was never indexed: re-upload it or raise --nats-max-deliver)", "err", err)
		ackErr = msg.Term()
	default:
		delay := min(h.cfg.NATS.NakDelay*time.Duration(delivered), maxNakDelay)
		log.Warn("functions host: ingest failed; redelivery later", "err", err, "delay", delay.String())
		ackErr = msg.NakWithDelay(delay)
	}
	if ackErr != nil {
		log.Warn("functions host: cannot acknowledge a NATS message (it will be delivered again)", "err", ackErr)
	}
}
