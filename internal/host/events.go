package host

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/flowlake/flowlake/internal/store"
)

// maxEventBytes bounds the body of one notification. MinIO sends one
// record per notification, well under 4 KiB.
const maxEventBytes = 1 << 20

// Notification is the body of a MinIO bucket notification, webhook or NATS
// (MinIO's event.Log): the event name, "bucket/key" of the object, and the
// S3 event records, whose object keys are URL-encoded.
type Notification struct {
	EventName string `json:"EventName"`
	Key       string `json:"Key"`
	events.S3Event
}

// testEvent is the Event of the message S3 sends when a notification is
// configured; it carries no records.
const testEvent = "s3:TestEvent"

// badEvent is a notification that no retry can make valid.
type badEvent struct{ msg string }

func (e *badEvent) Error() string { return e.msg }

func bad(format string, args ...any) error { return &badEvent{fmt.Sprintf(format, args...)} }

// decode parses a notification body and returns the store keys of the new
// objects it reports, the number of records it ignored, or a *badEvent.
func (h *Host) decode(body []byte, log *slog.Logger) (keys []string, ignored int, err error) {
	var head struct {
		Event   string            `json:"Event"`
		Records []json.RawMessage `json:"Records"`
	}
	if err := json.Unmarshal(body, &head); err != nil {
		return nil, 0, bad("notification is not a JSON object: %v (want MinIO's S3 event notification: {\"EventName\": …, \"Key\": …, \"Records\": […]})", err)
	}
	if head.Event == testEvent {
		return nil, 1, nil
	}
	if len(head.Records) == 0 {
		return nil, 0, bad("notification has no Records: not an S3 event notification")
	}
	for i, raw := range head.Records {
		var rec events.S3EventRecord
		// The key is URL-decoded while unmarshaling (url.QueryUnescape,
		// into URLDecodedKey): a bad escape fails here.
		if err := json.Unmarshal(raw, &rec); err != nil {
			return nil, 0, bad("record %d: %v", i, err)
		}
		if rec.EventName == "" || rec.S3.Bucket.Name == "" || rec.S3.Object.Key == "" {
			return nil, 0, bad("record %d: want eventName, s3.bucket.name and s3.object.key", i)
		}
		key := rec.S3.Object.URLDecodedKey
		rlog := log.With("event_name", rec.EventName, "bucket", rec.S3.Bucket.Name, "key", key)
		if !strings.HasPrefix(strings.TrimPrefix(rec.EventName, "s3:"), "ObjectCreated:") {
			rlog.Debug("functions host: ignoring event: not an object creation")
			ignored++
			continue
		}
		if h.bucket != "" && rec.S3.Bucket.Name != h.bucket {
			rlog.Warn("functions host: ignoring object of another bucket", "store", h.cfg.Store.URL())
			ignored++
			continue
		}
		rel, ok := strings.CutPrefix(key, h.prefix)
		if !ok || rel == "" {
			rlog.Warn("functions host: ignoring object outside the store prefix", "store", h.cfg.Store.URL())
			ignored++
			continue
		}
		keys = append(keys, rel)
	}
	return keys, ignored, nil
}

// handle ingests the objects a notification body reports. It returns a
// *badEvent for a malformed body, or the first ingest error (the sender
// retries the whole notification; ingest is idempotent).
func (h *Host) handle(ctx context.Context, body []byte, log *slog.Logger) (int, error) {
	h.n.events.Add(1)
	keys, ignored, err := h.decode(body, log)
	h.n.ignored.Add(int64(ignored))
	if err != nil {
		h.n.badEvents.Add(1)
		return 0, err
	}
	n := 0
	for _, k := range keys {
		err := h.pipe.Ingest(ctx, k)
		switch {
		case err == nil:
			n++
			h.n.ingested.Add(1)
			log.Debug("functions host: ingested", "key", k)
		case errors.Is(err, store.ErrNotExist):
			// Deleted since: there is nothing to ingest, now or later.
			h.n.ignored.Add(1)
			log.Warn("functions host: notified object does not exist (deleted since?)", "key", k, "err", err)
		default:
			h.n.ingestErrors.Add(1)
			return n, err // the pipeline's error names the key
		}
	}
	return n, nil
}

// Handler returns the host's HTTP handler: POST /minio/events takes MinIO
// webhook notifications, GET /healthz reports health and Stats as JSON (503
// while shutting down). Run serves it on its listener; serve it elsewhere
// only while Run runs (with a nil listener), which runs the parses the
// notifications start.
func (h *Host) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /minio/events", h.serveEvents)
	mux.HandleFunc("GET /healthz", h.serveHealth)
	return mux
}

func (h *Host) serveEvents(w http.ResponseWriter, r *http.Request) {
	log := h.log.With("from", r.RemoteAddr)
	if h.cfg.WebhookToken != "" && !h.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="flowlake functions"`)
		log.Warn("functions host: webhook request without the right bearer token")
		http.Error(w, "missing or wrong Authorization header: want \"Bearer <token>\" (the webhook target's auth_token)", http.StatusUnauthorized)
		return
	}
	if h.draining.Load() {
		w.Header().Set("Retry-After", "5")
		http.Error(w, errStopping.Error(), http.StatusServiceUnavailable)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEventBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, fmt.Sprintf("notification larger than %d bytes", maxEventBytes), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "read notification: "+err.Error(), http.StatusBadRequest)
		return
	}
	n, err := h.handle(r.Context(), body, log)
	var be *badEvent
	switch {
	case errors.As(err, &be):
		log.Error("functions host: malformed webhook notification", "err", err, "body", clip(body))
		http.Error(w, "malformed notification: "+be.msg, http.StatusBadRequest)
		return
	case err != nil:
		log.Error("functions host: ingest failed; the sender will retry", "err", err)
		w.Header().Set("Retry-After", "5")
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, "{\"ingested\":%d}\n", n)
}

// authorized checks the bearer token in constant time.
func (h *Host) authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(h.cfg.WebhookToken)) == 1
}

func (h *Host) serveHealth(w http.ResponseWriter, _ *http.Request) {
	status, code := "ok", http.StatusOK
	if h.draining.Load() {
		status, code = "draining", http.StatusServiceUnavailable
	}
	body, err := json.Marshal(struct {
		Status  string `json:"status"`
		Store   string `json:"store"`
		Workers int    `json:"workers"`
		NATS    bool   `json:"nats"`
		Stats
	}{status, h.cfg.Store.URL(), h.cfg.Workers, h.cfg.NATS != nil, h.Stats()})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}

// clip shortens a body for logs.
func clip(b []byte) string {
	const limit = 300
	if len(b) > limit {
		return string(b[:limit]) + "…"
	}
	return string(b)
}
