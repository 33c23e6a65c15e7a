package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/flowlake/flowlake/internal/engine"
	"github.com/flowlake/flowlake/internal/host"
	"github.com/flowlake/flowlake/internal/notify"
	"github.com/flowlake/flowlake/internal/pipeline"
	"github.com/flowlake/flowlake/internal/redact"
	"github.com/flowlake/flowlake/internal/store"
)

// defaultFunctionsAddr is where `functions serve` listens by default.
const defaultFunctionsAddr = "127.0.0.1:9490"

func runFunctions(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	usage := func(w io.Writer) {
		fmt.Fprintln(w, "usage: flowlake functions <serve|notify|minio-env> [flags]\n\n"+
			"  serve      run the ingest and parse functions on MinIO bucket notifications\n"+
			"             (webhook POST /minio/events, and/or a NATS JetStream consumer)\n"+
			"  notify     point a bucket's notifications (raw/, status/, secrets/) at MinIO targets\n"+
			"  minio-env  print the MinIO server environment that defines those targets\n\n"+
			"Run 'flowlake functions <command> -h' for its flags.")
	}
	if len(args) == 0 {
		usage(stderr)
		return usageError{"functions: no command given"}
	}
	switch args[0] {
	case "serve":
		return runFunctionsServe(ctx, args[1:], getenv, stderr)
	case "notify":
		return runFunctionsNotify(ctx, args[1:], getenv, stdout, stderr)
	case "minio-env":
		return runFunctionsMinioEnv(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		usage(stdout)
		return nil
	}
	usage(stderr)
	return usageError{fmt.Sprintf("functions: unknown command %q", args[0])}
}

// envDuration is a duration from FLOWLAKE_<name>, or def.
func envDuration(getenv func(string) string, name string, def time.Duration) (time.Duration, error) {
	v := getenv("FLOWLAKE_" + name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, usageError{fmt.Sprintf("FLOWLAKE_%s=%q: %v", name, v, err)}
	}
	return d, nil
}

// envInt is an integer from FLOWLAKE_<name>, or def.
func envInt(getenv func(string) string, name string, def int) (int, error) {
	v := getenv("FLOWLAKE_" + name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, usageError{fmt.Sprintf("FLOWLAKE_%s=%q: not an integer", name, v)}
	}
	return n, nil
}

func runFunctionsServe(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("functions serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: flowlake functions serve --store URL [--addr HOST:PORT] [--webhook-token T]\n"+
			"          [--nats URL --nats-stream NAME --nats-subject SUBJ] [--workers N] [--wait-predecessor 30s]\n\n"+
			"Runs the ingest and parse functions on MinIO bucket notifications: MinIO's webhook target\n"+
			"POSTs them to http://ADDR/minio/events; with --nats, they are also consumed from a NATS\n"+
			"JetStream stream through a durable consumer that several hosts share. GET /healthz reports\n"+
			"health and counters. Segments indexed but never parsed (a crash) are picked up at start and\n"+
			"every --reconcile-every. SIGTERM or SIGINT drains: running parses finish (--drain-timeout).\n"+
			"Logs are JSON lines on stderr. Every flag has a FLOWLAKE_ variable (--nats-stream:\n"+
			"FLOWLAKE_NATS_STREAM); flags win.\n\nflags:")
		fs.PrintDefaults()
	}
	var (
		err                                                      error
		workersDef, previewDef, maxDeliverDef                    int
		waitDef, reconcileDef, discoverDef, drainDef, recheckDef time.Duration
	)
	if workersDef, err = envInt(getenv, "WORKERS", 0); err != nil {
		return err
	}
	if previewDef, err = envInt(getenv, "BODY_PREVIEW", 4096); err != nil {
		return err
	}
	if maxDeliverDef, err = envInt(getenv, "NATS_MAX_DELIVER", host.DefaultNATSMaxDeliver); err != nil {
		return err
	}
	if waitDef, err = envDuration(getenv, "WAIT_PREDECESSOR", host.DefaultWaitPredecessor); err != nil {
		return err
	}
	if reconcileDef, err = envDuration(getenv, "RECONCILE_EVERY", host.DefaultReconcileEvery); err != nil {
		return err
	}
	if discoverDef, err = envDuration(getenv, "DISCOVER_ALL_EVERY", pipeline.DefaultDiscoverAllEvery); err != nil {
		return err
	}
	if drainDef, err = envDuration(getenv, "DRAIN_TIMEOUT", host.DefaultDrainTimeout); err != nil {
		return err
	}
	if recheckDef, err = envDuration(getenv, "RECHECK", host.DefaultRecheck); err != nil {
		return err
	}
	storeURL := fs.String("store", envOr(getenv, "STORE", ""), "object store: s3://BUCKET[/PREFIX] (the bucket MinIO notifies about), a directory or file:///DIR (env FLOWLAKE_STORE)")
	addr := fs.String("addr", envOr(getenv, "ADDR", defaultFunctionsAddr), "listen address of the webhook and health endpoints (env FLOWLAKE_ADDR)")
	token := fs.String("webhook-token", envOr(getenv, "WEBHOOK_TOKEN", ""), "require 'Authorization: Bearer TOKEN' on webhooks: MinIO's auth_token (env FLOWLAKE_WEBHOOK_TOKEN)")
	natsURL := fs.String("nats", envOr(getenv, "NATS", ""), "NATS server URL: also consume notifications from JetStream (env FLOWLAKE_NATS)")
	natsStream := fs.String("nats-stream", envOr(getenv, "NATS_STREAM", "flowlake"), "JetStream stream of the notifications, created if missing (env FLOWLAKE_NATS_STREAM)")
	natsSubject := fs.String("nats-subject", envOr(getenv, "NATS_SUBJECT", "flowlake.events"), "subject MinIO's NATS target publishes to (env FLOWLAKE_NATS_SUBJECT)")
	natsConsumer := fs.String("nats-consumer", envOr(getenv, "NATS_CONSUMER", host.DefaultNATSConsumer), "durable consumer name; hosts with the same name share the work (env FLOWLAKE_NATS_CONSUMER)")
	natsMaxDeliver := fs.Int("nats-max-deliver", maxDeliverDef, "deliveries of a notification before it is dropped (env FLOWLAKE_NATS_MAX_DELIVER)")
	workers := fs.Int("workers", workersDef, "parses at once; 0: one per CPU (env FLOWLAKE_WORKERS)")
	wait := fs.Duration("wait-predecessor", waitDef, "how long a segment waits for its predecessor to arrive before a gap is recorded (env FLOWLAKE_WAIT_PREDECESSOR)")
	reconcile := fs.Duration("reconcile-every", reconcileDef, "period of the restart of segments indexed but never parsed, and of the search for segments after each stream's newest whose events never came (env FLOWLAKE_RECONCILE_EVERY)")
	discoverAll := fs.Duration("discover-all-every", discoverDef, "period of the listing of all raw segments, for streams none of whose events came (env FLOWLAKE_DISCOVER_ALL_EVERY)")
	drain := fs.Duration("drain-timeout", drainDef, "on SIGTERM, how long running parses may finish (env FLOWLAKE_DRAIN_TIMEOUT)")
	recheck := fs.Duration("recheck", recheckDef, "how often waiting parses look for their predecessor in the store (env FLOWLAKE_RECHECK)")
	preview := fs.Int("body-preview", previewDef, "bytes of each HTTP body kept (decoded, redacted) (env FLOWLAKE_BODY_PREVIEW)")
	redactHeaders := fs.String("redact-headers", envOr(getenv, "REDACT_HEADERS", strings.Join(redact.Default().Headers, ",")), "comma-separated header names whose values are redacted (env FLOWLAKE_REDACT_HEADERS)")
	logLevel := fs.String("log-level", envOr(getenv, "LOG_LEVEL", "info"), "debug, info, warn or error (env FLOWLAKE_LOG_LEVEL)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	switch {
	case fs.NArg() > 0:
		return usageError{fmt.Sprintf("functions serve: unexpected arguments %q", fs.Args())}
	case *storeURL == "":
		fs.Usage()
		return usageError{"functions serve: no --store (or FLOWLAKE_STORE) given"}
	case *workers < 0:
		return usageError{fmt.Sprintf("functions serve: --workers %d: want 0 or more", *workers)}
	case *wait <= 0 || *reconcile <= 0 || *discoverAll <= 0 || *drain <= 0 || *recheck <= 0:
		return usageError{"functions serve: --wait-predecessor, --reconcile-every, --discover-all-every, --drain-timeout and --recheck want positive durations"}
	case *natsMaxDeliver < 1:
		return usageError{fmt.Sprintf("functions serve: --nats-max-deliver %d: want at least 1", *natsMaxDeliver)}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usageError{fmt.Sprintf("functions serve: --log-level %q: want debug, info, warn or error", *logLevel)}
	}
	rc := redact.Default()
	hdrs, err := redact.ParseList(*redactHeaders)
	if err != nil {
		return usageError{fmt.Sprintf("functions serve: --redact-headers: %v", err)}
	}
	rc.Headers = hdrs
	eng := engine.Config{Redact: &rc}
	eng.HTTP.BodyPreview = *preview

	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	st, err := store.Open(ctx, *storeURL)
	if err != nil {
		return fmt.Errorf("functions serve: %w", err)
	}
	cfg := host.Config{
		Store: st, Engine: eng, Workers: *workers, WaitPredecessor: *wait, Recheck: *recheck,
		ReconcileEvery: *reconcile, DiscoverAllEvery: *discoverAll, DrainTimeout: *drain, WebhookToken: *token, Log: log,
	}
	if *natsURL != "" {
		cfg.NATS = &host.NATSConfig{URL: *natsURL, Stream: *natsStream, Subject: *natsSubject, Consumer: *natsConsumer, MaxDeliver: *natsMaxDeliver}
	}
	h, err := host.New(cfg)
	if err != nil {
		return usageError{err.Error()}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("functions serve: %w", err)
	}
	if err := h.Run(ctx, ln); err != nil {
		return fmt.Errorf("functions serve: %w", err)
	}
	return nil
}

func runFunctionsNotify(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("functions notify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: flowlake functions notify --store s3://BUCKET[/PREFIX] --arn ARN [--arn ARN]... [--create-bucket]\n\n"+
			"Replaces the bucket's notification configuration with rules that send s3:ObjectCreated:*\n"+
			"events of PREFIX/raw/, PREFIX/status/ and PREFIX/secrets/ to each target: a MinIO target\n"+
			"ARN, arn:minio:sqs::<ID>:webhook or arn:minio:sqs::<ID>:nats, whose target ID the server was\n"+
			"started with (MINIO_NOTIFY_WEBHOOK_ENABLE_<ID>=on, …). The S3 endpoint and credentials come\n"+
			"from the AWS_ variables (AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, …).\n\nflags:")
		fs.PrintDefaults()
	}
	storeURL := fs.String("store", envOr(getenv, "STORE", ""), "the store: s3://BUCKET[/PREFIX] (env FLOWLAKE_STORE)")
	var arns multiFlag
	fs.Var(&arns, "arn", "target ARN; repeatable")
	create := fs.Bool("create-bucket", false, "create the bucket first if it does not exist")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	u, err := url.Parse(*storeURL)
	switch {
	case fs.NArg() > 0:
		return usageError{fmt.Sprintf("functions notify: unexpected arguments %q", fs.Args())}
	case err != nil || u.Scheme != "s3" || u.Host == "":
		return usageError{fmt.Sprintf("functions notify: --store %q: want s3://BUCKET[/PREFIX]", *storeURL)}
	case len(arns) == 0:
		return usageError{"functions notify: no --arn given"}
	}
	for _, a := range arns {
		if !strings.HasPrefix(a, "arn:") {
			return usageError{fmt.Sprintf("functions notify: --arn %q: want an ARN such as %s", a, notify.ARN("FLOWLAKE", notify.KindWebhook))}
		}
	}
	client, err := notify.NewClient(ctx)
	if err != nil {
		return fmt.Errorf("functions notify: %w", err)
	}
	bucket, prefix := u.Host, strings.Trim(u.Path, "/")
	if *create {
		if err := notify.CreateBucket(ctx, client, bucket); err != nil {
			return fmt.Errorf("functions notify: %w", err)
		}
	}
	if err := notify.Configure(ctx, client, bucket, prefix, arns...); err != nil {
		return fmt.Errorf("functions notify: %w", err)
	}
	got, err := notify.Configured(ctx, client, bucket)
	if err != nil {
		return fmt.Errorf("functions notify: %w", err)
	}
	for _, a := range arns {
		fmt.Fprintf(stdout, "s3://%s: s3:ObjectCreated:* of %s -> %s\n", bucket, strings.Join(got[a], ", "), a)
	}
	return nil
}

func runFunctionsMinioEnv(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("functions minio-env", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: flowlake functions minio-env [--id FLOWLAKE] [--webhook URL [--webhook-token T]]\n"+
			"          [--nats HOST:PORT --nats-subject SUBJ] [--queue-dir DIR]\n\n"+
			"Prints, one NAME=value per line, the environment that makes a MinIO server (started with it)\n"+
			"define a webhook and/or a NATS JetStream notification target with ID --id. Name them in bucket\n"+
			"rules ('flowlake functions notify') by the ARNs printed on stderr. Set --queue-dir (absolute):\n"+
			"MinIO then keeps the events it cannot deliver there, and retries them.\n\nflags:")
		fs.PrintDefaults()
	}
	id := fs.String("id", "FLOWLAKE", "target ID (letters, digits, _)")
	webhook := fs.String("webhook", "", "webhook endpoint, e.g. http://127.0.0.1:9490/minio/events")
	token := fs.String("webhook-token", "", "bearer token MinIO sends to the webhook (the host's --webhook-token)")
	natsAddr := fs.String("nats", "", "NATS server HOST:PORT")
	natsSubject := fs.String("nats-subject", "flowlake.events", "NATS subject")
	queueDir := fs.String("queue-dir", "", "absolute directory for undelivered events; a subdirectory per target kind is used")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 || *webhook == "" && *natsAddr == "" {
		return usageError{"functions minio-env: want --webhook URL and/or --nats HOST:PORT"}
	}
	env := map[string]string{}
	sub := func(kind string) string {
		if *queueDir == "" {
			return ""
		}
		return filepath.Join(*queueDir, kind)
	}
	if *webhook != "" {
		w, err := notify.Webhook{ID: *id, Endpoint: *webhook, AuthToken: *token, QueueDir: sub(notify.KindWebhook)}.Env()
		if err != nil {
			return usageError{"functions minio-env: " + err.Error()}
		}
		maps.Copy(env, w)
		fmt.Fprintln(stderr, "webhook target ARN:", notify.ARN(*id, notify.KindWebhook))
	}
	if *natsAddr != "" {
		n, err := notify.NATS{ID: *id, Address: *natsAddr, Subject: *natsSubject, QueueDir: sub(notify.KindNATS)}.Env()
		if err != nil {
			return usageError{"functions minio-env: " + err.Error()}
		}
		maps.Copy(env, n)
		fmt.Fprintln(stderr, "NATS target ARN:", notify.ARN(*id, notify.KindNATS))
	}
	for _, kv := range notify.EnvList(env) {
		fmt.Fprintln(stdout, kv)
	}
	return nil
}
