// Package ingest is the AWS Lambda adapter of the ingest function, a thin
// layer over [pipeline.Pipeline.Ingest].
//
// On AWS, S3 sends its ObjectCreated notifications for raw/, secrets/ and
// status/ to an SQS queue, and the queue triggers ingest (DESIGN.md: S3 →
// SQS → ingest). [Handler.Handle] takes such an SQS event, whose message
// bodies are S3 event notifications, and reports the messages that failed
// as partial batch failures (the event source mapping needs
// ReportBatchItemFailures), so that one bad message is retried alone. It
// also takes an S3 event delivered to the function directly, and then
// returns an error when a record failed, for Lambda to retry the
// asynchronous invocation.
//
// Object keys in S3 notifications are URL-encoded the way HTML forms are
// ("+" for a space, "%3D" for "="); they are decoded, and the store's key
// prefix is removed, before the key reaches the pipeline. The s3:TestEvent
// that S3 sends when a notification is configured is ignored, and so are
// notifications of anything but object creation.
//
// The pipeline's Invoke is [LambdaInvoker]: an asynchronous invocation of
// the parse function with a [parse.Request] payload.
package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/flowlake/flowlake/functions/parse"
	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/pipeline"
)

// Handler is the ingest function.
type Handler struct {
	p      *pipeline.Pipeline
	prefix string // "" or the store's key prefix with a trailing slash

	// Bucket, if set, is the store's bucket: records of other buckets are
	// ignored with a warning instead of being looked up in the wrong place.
	Bucket string
	// Log receives a line per ignored or failed record; New sets
	// slog.Default().
	Log *slog.Logger
}

// New returns the ingest function over p. prefix is the key prefix of the
// pipeline's store inside its bucket (the PREFIX of s3://BUCKET/PREFIX, ""
// for none): it is removed from the keys of the notifications, and keys
// outside it are ignored.
func New(p *pipeline.Pipeline, prefix string) *Handler {
	h := &Handler{p: p, Log: slog.Default()}
	if prefix = strings.Trim(prefix, "/"); prefix != "" {
		h.prefix = prefix + "/"
	}
	return h
}

// Event sources in the records of the events Handle accepts.
const (
	sourceSQS = "aws:sqs"
	sourceS3  = "aws:s3"
)

// testEvent is the Event of the message S3 sends to a destination when a
// notification configuration is written.
const testEvent = "s3:TestEvent"

// Handle is the Lambda handler: pass it to lambda.Start. It accepts an SQS
// event whose bodies are S3 notifications (failed messages are listed in
// the response, and the error is nil), or an S3 event (the error joins the
// failures of its records).
func (h *Handler) Handle(ctx context.Context, event json.RawMessage) (events.SQSEventResponse, error) {
	log := h.Log
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		log = log.With("request_id", lc.AwsRequestID)
	}
	var env struct {
		Records []json.RawMessage `json:"Records"`
		Event   string            `json:"Event"`
	}
	if err := json.Unmarshal(event, &env); err != nil {
		log.Error("ingest: event is not an SQS or S3 event", "err", err, "event", clip(event))
		return events.SQSEventResponse{}, fmt.Errorf("ingest: event %s: %w", clip(event), err)
	}
	if env.Event == testEvent {
		log.Info("ingest: ignoring " + testEvent)
		return events.SQSEventResponse{}, nil
	}
	if env.Records == nil {
		log.Error("ingest: event has no Records: not an SQS or S3 event", "event", clip(event))
		return events.SQSEventResponse{}, fmt.Errorf("ingest: event %s has no Records: want an SQS event of S3 notifications or an S3 event", clip(event))
	}
	var resp events.SQSEventResponse
	var errs []error
	for i, raw := range env.Records {
		var head struct {
			EventSource string `json:"eventSource"`
			MessageID   string `json:"messageId"`
		}
		if err := json.Unmarshal(raw, &head); err != nil {
			log.Error("ingest: malformed event record", "record", i, "err", err)
			errs = append(errs, fmt.Errorf("record %d: %w", i, err))
			continue
		}
		switch {
		case head.EventSource == sourceSQS || head.MessageID != "":
			if head.MessageID == "" {
				// It cannot be reported as a batch item failure: fail the
				// whole batch instead.
				log.Error("ingest: SQS record without a message id", "record", i, "data", clip(raw))
				errs = append(errs, fmt.Errorf("record %d: SQS record without a message id: %s", i, clip(raw)))
				continue
			}
			var msg events.SQSMessage
			err := json.Unmarshal(raw, &msg)
			if err != nil {
				log.Error("ingest: malformed SQS record", "message_id", head.MessageID, "err", err)
			} else {
				err = h.message(ctx, log, msg)
			}
			if err != nil {
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: head.MessageID})
			}
		case head.EventSource == sourceS3:
			if err := h.record(ctx, log, raw); err != nil {
				errs = append(errs, fmt.Errorf("record %d: %w", i, err))
			}
		default:
			log.Error("ingest: record of unknown source", "record", i, "event_source", head.EventSource, "data", clip(raw))
			errs = append(errs, fmt.Errorf("record %d: unknown event source %q", i, head.EventSource))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return resp, fmt.Errorf("ingest: %w", err)
	}
	return resp, nil
}

// message handles one SQS message. An error means the message is to be
// retried; it has been logged.
func (h *Handler) message(ctx context.Context, log *slog.Logger, msg events.SQSMessage) error {
	log = log.With("message_id", msg.MessageId)
	if err := ctx.Err(); err != nil {
		log.Error("ingest: out of time before the message", "err", err)
		return err
	}
	var body struct {
		Records []json.RawMessage `json:"Records"`
		Event   string            `json:"Event"`
	}
	if err := json.Unmarshal([]byte(msg.Body), &body); err != nil {
		log.Error("ingest: SQS message body is not JSON: want an S3 event notification", "err", err, "body", clip([]byte(msg.Body)))
		return fmt.Errorf("message %s: body: %w", msg.MessageId, err)
	}
	if body.Event == testEvent {
		log.Info("ingest: ignoring " + testEvent)
		return nil
	}
	if len(body.Records) == 0 {
		log.Error("ingest: SQS message body is not an S3 event notification (no Records)", "body", clip([]byte(msg.Body)))
		return fmt.Errorf("message %s: body is not an S3 event notification", msg.MessageId)
	}
	var errs []error
	for _, raw := range body.Records {
		if err := h.record(ctx, log, raw); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("message %s: %w", msg.MessageId, err)
	}
	return nil
}

// record handles one S3 event record. An error has been logged.
func (h *Handler) record(ctx context.Context, log *slog.Logger, raw json.RawMessage) error {
	var rec events.S3EventRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		// aws-lambda-go decodes the key while unmarshaling: say so when
		// that is what failed.
		var probe struct {
			S3 struct {
				Object struct {
					Key string `json:"key"`
				} `json:"object"`
			} `json:"s3"`
		}
		if json.Unmarshal(raw, &probe) == nil {
			if _, kerr := url.QueryUnescape(probe.S3.Object.Key); kerr != nil {
				log.Error("ingest: object key is not URL-encoded", "key", probe.S3.Object.Key, "err", kerr)
				return fmt.Errorf("S3 event record: decode key %q: %w", probe.S3.Object.Key, kerr)
			}
		}
		log.Error("ingest: bad S3 event record", "err", err, "record", clip(raw))
		return fmt.Errorf("S3 event record %s: %w", clip(raw), err)
	}
	log = log.With("event_name", rec.EventName, "bucket", rec.S3.Bucket.Name, "key", rec.S3.Object.Key)
	if rec.EventName == "" || rec.S3.Object.Key == "" {
		log.Error("ingest: S3 event record without eventName or s3.object.key", "record", clip(raw))
		return fmt.Errorf("S3 event record %s: no eventName or s3.object.key", clip(raw))
	}
	if !strings.HasPrefix(strings.TrimPrefix(rec.EventName, "s3:"), "ObjectCreated:") {
		log.Debug("ingest: ignoring event")
		return nil
	}
	if h.Bucket != "" && rec.S3.Bucket.Name != h.Bucket {
		log.Warn("ingest: ignoring object of another bucket", "want_bucket", h.Bucket)
		return nil
	}
	// The key as S3 sends it is URL-encoded ("+" for a space, %3D for
	// "="); URLDecodedKey is its url.QueryUnescape.
	key := rec.S3.Object.URLDecodedKey
	rel, ok := strings.CutPrefix(key, h.prefix)
	if !ok {
		log.Warn("ingest: ignoring object outside the store prefix", "prefix", h.prefix)
		return nil
	}
	if err := h.p.Ingest(ctx, rel); err != nil {
		log.Error("ingest: failed", "err", err)
		return fmt.Errorf("ingest %s: %w", rel, err)
	}
	log.Debug("ingest: done", "store_key", rel)
	return nil
}

// LambdaInvoker returns a [pipeline.Config] Invoke function that starts the
// parse of a segment with an asynchronous (InvocationType Event) invocation
// of the Lambda function functionName (a name, ARN or alias ARN), whose
// payload is a [parse.Request].
func LambdaInvoker(client *lambda.Client, functionName string) func(ctx context.Context, s keys.Stream, seq uint64) error {
	return lambdaInvoker(client, functionName, false)
}

// LambdaReparseInvoker is LambdaInvoker for [pipeline.Config]
// InvokeReparse: the payload asks parse to reparse from seq on.
func LambdaReparseInvoker(client *lambda.Client, functionName string) func(ctx context.Context, s keys.Stream, seq uint64) error {
	return lambdaInvoker(client, functionName, true)
}

func lambdaInvoker(client *lambda.Client, functionName string, reparse bool) func(ctx context.Context, s keys.Stream, seq uint64) error {
	return func(ctx context.Context, s keys.Stream, seq uint64) error {
		payload, err := json.Marshal(parse.Request{Agent: s.Agent, Stream: s.Stream, Seq: seq, Reparse: reparse})
		if err != nil {
			return fmt.Errorf("invoke %s for %s seq %d: %w", functionName, s, seq, err)
		}
		out, err := client.Invoke(ctx, &lambda.InvokeInput{
			FunctionName:   aws.String(functionName),
			InvocationType: types.InvocationTypeEvent,
			Payload:        payload,
		})
		if err != nil {
			return fmt.Errorf("invoke %s for %s seq %d: %w", functionName, s, seq, err)
		}
		if out.StatusCode != http.StatusAccepted {
			return fmt.Errorf("invoke %s for %s seq %d: status %d, want %d for an asynchronous invocation", functionName, s, seq, out.StatusCode, http.StatusAccepted)
		}
		return nil
	}
}

// clip shortens input for messages.
func clip(b []byte) string {
	const limit = 300
	if len(b) > limit {
		return string(b[:limit]) + "…"
	}
	return string(b)
}
