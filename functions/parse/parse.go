// Package parse is the AWS Lambda adapter of the parse function, a thin
// layer over [pipeline.Pipeline]: it decodes the invocation payload and runs
// [pipeline.Pipeline.Parse] or [pipeline.Pipeline.Reconcile].
//
// Two payloads are accepted:
//
//   - a [Request], {"agent":"web-1","stream":0,"seq":42}, sent by ingest
//     (and by parse itself for the next segment of a stream) as an
//     asynchronous invocation. A segment that is already committed
//     ([pipeline.ErrDone]) is a success; any other error is returned, so
//     that Lambda retries the asynchronous invocation and finally hands it
//     to the function's dead-letter queue or failure destination;
//   - an EventBridge (CloudWatch Events) event, typically from a schedule
//     rule, which runs [pipeline.Pipeline.Reconcile] to restart streams
//     whose parse was lost.
package parse

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/pipeline"
	"github.com/flowlake/flowlake/internal/segment"
)

// Request asks for the parse of segment Seq of stream (Agent, Stream). Its
// JSON form is the payload of the parse function.
type Request struct {
	Agent  string `json:"agent"`
	Stream int    `json:"stream"`
	Seq    uint64 `json:"seq"`
	// Reparse asks to parse segments Seq… again, up to the last committed
	// one, replacing their rows (keys that came late).
	Reparse bool `json:"reparse,omitempty"`
}

// Validate reports whether r names a stream the object layout can hold.
func (r Request) Validate() error {
	if err := keys.ValidAgent(r.Agent); err != nil {
		return err
	}
	if r.Stream < 0 || r.Stream > segment.MaxStream {
		return fmt.Errorf("stream %d out of range 0-%d", r.Stream, segment.MaxStream)
	}
	return nil
}

// Results of an invocation, in [Response.Result].
const (
	ResultParsed     = "parsed"     // the segment was parsed and committed by this invocation
	ResultDone       = "done"       // the segment had already been committed
	ResultReconciled = "reconciled" // a scheduled event ran Reconcile
	ResultReparsed   = "reparsed"   // segments were parsed again (Request.Reparse)
)

// Response tells what an invocation did. Asynchronous invocations discard
// it; it is useful for synchronous ones (tests, manual runs).
type Response struct {
	Result string `json:"result"`
	// Started is the number of streams Reconcile restarted.
	Started int `json:"started,omitempty"`
	// Reparsed is the number of segments a reparse request parsed again.
	Reparsed int `json:"reparsed,omitempty"`
}

// Handler is the parse function.
type Handler struct {
	p *pipeline.Pipeline
	// Log receives one line per invocation; New sets slog.Default().
	Log *slog.Logger
}

// New returns the parse function over p.
func New(p *pipeline.Pipeline) *Handler {
	return &Handler{p: p, Log: slog.Default()}
}

// Handle is the Lambda handler: pass it to lambda.Start.
func (h *Handler) Handle(ctx context.Context, payload json.RawMessage) (Response, error) {
	log := h.Log
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		log = log.With("request_id", lc.AwsRequestID)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(payload, &fields); err != nil || fields == nil {
		log.Error("parse: payload is not a JSON object", "payload", clip(payload))
		return Response{}, fmt.Errorf("parse: payload %s is not a JSON object: want %s or an EventBridge event", clip(payload), requestShape)
	}
	if _, ok := fields["detail-type"]; ok {
		return h.reconcile(ctx, log, payload)
	}
	req, err := decodeRequest(payload, fields)
	if err != nil {
		log.Error("parse: bad request", "payload", clip(payload), "err", err)
		return Response{}, err
	}
	log = log.With("agent", req.Agent, "stream", req.Stream, "seq", req.Seq)
	if req.Reparse {
		n, err := h.p.Reparse(ctx, keys.Stream{Agent: req.Agent, Stream: req.Stream}, req.Seq, 0)
		if err != nil {
			log.Error("parse: reparse failed", "reparsed", n, "err", err)
			return Response{}, fmt.Errorf("reparse request agent=%s stream=%d seq=%d: %w", req.Agent, req.Stream, req.Seq, err)
		}
		log.Info("parse: reparsed", "reparsed", n)
		return Response{Result: ResultReparsed, Reparsed: n}, nil
	}
	err = h.p.Parse(ctx, keys.Stream{Agent: req.Agent, Stream: req.Stream}, req.Seq)
	switch {
	case errors.Is(err, pipeline.ErrDone):
		log.Info("parse: segment already committed")
		return Response{Result: ResultDone}, nil
	case err != nil:
		log.Error("parse: failed", "err", err)
		return Response{}, fmt.Errorf("parse request agent=%s stream=%d seq=%d: %w", req.Agent, req.Stream, req.Seq, err)
	}
	return Response{Result: ResultParsed}, nil
}

// requestShape describes a Request in error messages.
const requestShape = `{"agent":"<id>","stream":<k>,"seq":<n>[,"reparse":true]}`

// decodeRequest decodes and validates a Request: every field present, no
// other field.
func decodeRequest(payload []byte, fields map[string]json.RawMessage) (Request, error) {
	var req Request
	for _, f := range []string{"agent", "stream", "seq"} {
		if _, ok := fields[f]; !ok {
			return req, fmt.Errorf("parse: request %s lacks %q: want %s", clip(payload), f, requestShape)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, fmt.Errorf("parse: request %s: %w (want %s)", clip(payload), err, requestShape)
	}
	if err := req.Validate(); err != nil {
		return req, fmt.Errorf("parse: request %s: %w", clip(payload), err)
	}
	return req, nil
}

// reconcile handles an EventBridge event.
func (h *Handler) reconcile(ctx context.Context, log *slog.Logger, payload []byte) (Response, error) {
	var ev events.CloudWatchEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		log.Error("parse: bad EventBridge event", "payload", clip(payload), "err", err)
		return Response{}, fmt.Errorf("parse: EventBridge event %s: %w", clip(payload), err)
	}
	log = log.With("event_id", ev.ID, "source", ev.Source, "detail_type", ev.DetailType)
	n, err := h.p.Reconcile(ctx)
	if err != nil {
		log.Error("parse: reconcile failed", "started", n, "err", err)
		return Response{}, fmt.Errorf("parse: scheduled event %s: %w", ev.ID, err)
	}
	log.Info("parse: reconciled", "started", n)
	return Response{Result: ResultReconciled, Started: n}, nil
}

// clip shortens a payload for messages.
func clip(b []byte) string {
	const limit = 200
	if len(b) > limit {
		return string(b[:limit]) + "…"
	}
	return string(b)
}
