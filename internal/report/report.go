// Package report defines the status document an agent writes to
// status/agent=<id>/… every 20 seconds, and its conversion to
// capture_status rows. Counters are cumulative since the agent started, per
// stream; the rows carry them as they are (the query side takes differences).
package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/schema"
)

// Version is the status document version.
const Version = 1

// Stream is one capture stream's counters.
type Stream struct {
	Stream           int   `json:"stream"`
	Captured         int64 `json:"captured"`
	Filtered         int64 `json:"filtered"`
	Dropped          int64 `json:"dropped"`
	Overflow         int64 `json:"overflow"`
	SegmentsUploaded int64 `json:"segments_uploaded"`
	BytesUploaded    int64 `json:"bytes_uploaded"`
	SpoolBytes       int64 `json:"spool_bytes"`
	Errors           int64 `json:"errors"`
}

// Status is one report.
type Status struct {
	Version   int       `json:"version"`
	Agent     string    `json:"agent"`
	Time      time.Time `json:"time"`
	Interface string    `json:"interface"`
	Streams   []Stream  `json:"streams"`
}

// Parse decodes and validates a status document.
func Parse(b []byte) (Status, error) {
	var s Status
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("status document: %w", err)
	}
	if s.Version != Version {
		return s, fmt.Errorf("status document: version %d, want %d", s.Version, Version)
	}
	if err := keys.ValidAgent(s.Agent); err != nil {
		return s, fmt.Errorf("status document: %w", err)
	}
	if s.Time.IsZero() {
		return s, errors.New("status document: no time")
	}
	return s, nil
}

// Rows returns the capture_status rows of a report.
func (s Status) Rows() []schema.CaptureStatus {
	out := make([]schema.CaptureStatus, 0, len(s.Streams))
	for _, st := range s.Streams {
		out = append(out, schema.CaptureStatus{
			TS: s.Time.UnixMicro(), Agent: s.Agent, Stream: int32(st.Stream), Interface: s.Interface,
			Captured: st.Captured, Filtered: st.Filtered, Dropped: st.Dropped, Overflow: st.Overflow,
			SegmentsUploaded: st.SegmentsUploaded, BytesUploaded: st.BytesUploaded, SpoolBytes: st.SpoolBytes, Errors: st.Errors,
		})
	}
	return out
}
