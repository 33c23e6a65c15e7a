// Package keys builds and parses every object key flowlake uses. It is the
// only place that knows the object layout of DESIGN.md:
//
//	raw/agent=<id>/stream=<k>/<yyyy>/<mm>/<dd>/<hh>/<seq:020d>.pcapng.zst
//	secrets/agent=<id>/stream=<k>/<yyyy>/<mm>/<dd>/<hh>/<seq:020d>.keylog
//	status/agent=<id>/<yyyy>/<mm>/<dd>/<hh>/<unix-ts>.json
//	state/agent=<id>/stream=<k>/<seq:020d>.ckpt
//	state/agent=<id>/stream=<k>/<seq:020d>.seg   (the raw key of segment seq, written by ingest)
//	lake/<table>/dt=YYYY-MM-DD/hour=HH/<name>.parquet
//	quarantine/<original key>            (the bad input, copied)
//	quarantine/<original key>.error.json (why)
//	config/<kind>/<name>.json
//
// Dates are UTC.
package keys

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Top-level prefixes.
const (
	PrefixRaw        = "raw/"
	PrefixSecrets    = "secrets/"
	PrefixStatus     = "status/"
	PrefixState      = "state/"
	PrefixLake       = "lake/"
	PrefixQuarantine = "quarantine/"
	PrefixConfig     = "config/"
)

// File name suffixes.
const (
	ExtSegment = ".pcapng.zst"
	ExtKeylog  = ".keylog"
	ExtState   = ".ckpt"
	ExtIndex   = ".seg"
	ExtStatus  = ".json"
	ExtParquet = ".parquet"
	ExtError   = ".error.json"
)

// ErrBadKey reports a key that does not follow the layout.
var ErrBadKey = errors.New("key does not follow the object layout")

// Stream identifies one ordered stream of segments.
type Stream struct {
	Agent  string
	Stream int
}

func (s Stream) String() string { return fmt.Sprintf("agent=%s/stream=%d", s.Agent, s.Stream) }

// ValidAgent reports whether id can be used as an agent id: 1-64 characters
// of letters, digits, '-', '_' and '.', not starting with '.'.
func ValidAgent(id string) error {
	if id == "" || len(id) > 64 || id[0] == '.' {
		return fmt.Errorf("agent id %q: want 1-64 characters of [A-Za-z0-9._-], not starting with '.'", id)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("agent id %q: character %q not allowed", id, c)
		}
	}
	return nil
}

func datePath(t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("%04d/%02d/%02d/%02d", t.Year(), t.Month(), t.Day(), t.Hour())
}

// Segment is the key of capture segment seq of stream s, whose first packet
// was captured at t.
func Segment(s Stream, seq uint64, t time.Time) string {
	return fmt.Sprintf("%s%s/%s/%020d%s", PrefixRaw, s, datePath(t), seq, ExtSegment)
}

// Secrets is the key of the key log that serves segment seq.
func Secrets(s Stream, seq uint64, t time.Time) string {
	return fmt.Sprintf("%s%s/%s/%020d%s", PrefixSecrets, s, datePath(t), seq, ExtKeylog)
}

// Status is the key of an agent status report made at t.
func Status(agent string, t time.Time) string {
	return fmt.Sprintf("%sagent=%s/%s/%d%s", PrefixStatus, agent, datePath(t), t.Unix(), ExtStatus)
}

// State is the key of the parse checkpoint written after segment seq.
func State(s Stream, seq uint64) string {
	return fmt.Sprintf("%s%s/%020d%s", PrefixState, s, seq, ExtState)
}

// SegmentIndex is the key of the index object that ingest writes for
// segment seq: its body is the segment's raw key, so that parse can find
// segment seq without listing the date-partitioned raw/ prefix.
func SegmentIndex(s Stream, seq uint64) string {
	return fmt.Sprintf("%s%s/%020d%s", PrefixState, s, seq, ExtIndex)
}

// StatePrefix is the prefix of all checkpoints of a stream.
func StatePrefix(s Stream) string { return fmt.Sprintf("%s%s/", PrefixState, s) }

// Lake is the key of a lake file: table, partition ("dt=…/hour=…") and
// base name without extension.
func Lake(table, partition, name string) string {
	return PrefixLake + table + "/" + partition + "/" + name + ExtParquet
}

// LakeTable is the prefix of one table.
func LakeTable(table string) string { return PrefixLake + table + "/" }

// Quarantine is where a bad input object is copied.
func Quarantine(key string) string { return PrefixQuarantine + key }

// QuarantineError is the error document beside a quarantined object.
func QuarantineError(key string) string { return PrefixQuarantine + key + ExtError }

// Config is the key of a configuration document.
func Config(kind, name string) string { return PrefixConfig + kind + "/" + name + ".json" }

// Kind classifies a key by its top-level prefix.
type Kind int

// Key kinds.
const (
	KindUnknown Kind = iota
	KindSegment
	KindSecrets
	KindStatus
	KindState
	KindLake
	KindQuarantine
	KindConfig
)

// Parsed is what ParseSegment and ParseSecrets return.
type Parsed struct {
	Kind   Kind
	Stream Stream
	Seq    uint64
	Hour   time.Time // the hour of the date path
}

// KindOf returns the kind of key.
func KindOf(key string) Kind {
	switch {
	case strings.HasPrefix(key, PrefixRaw):
		return KindSegment
	case strings.HasPrefix(key, PrefixSecrets):
		return KindSecrets
	case strings.HasPrefix(key, PrefixStatus):
		return KindStatus
	case strings.HasPrefix(key, PrefixState):
		return KindState
	case strings.HasPrefix(key, PrefixLake):
		return KindLake
	case strings.HasPrefix(key, PrefixQuarantine):
		return KindQuarantine
	case strings.HasPrefix(key, PrefixConfig):
		return KindConfig
	}
	return KindUnknown
}

// Parse parses a segment or secrets key.
func Parse(key string) (Parsed, error) {
	var p Parsed
	var rest, ext string
	switch {
	case strings.HasPrefix(key, PrefixRaw):
		p.Kind, rest, ext = KindSegment, key[len(PrefixRaw):], ExtSegment
	case strings.HasPrefix(key, PrefixSecrets):
		p.Kind, rest, ext = KindSecrets, key[len(PrefixSecrets):], ExtKeylog
	default:
		return p, fmt.Errorf("%w: %q is not a raw segment or secrets key", ErrBadKey, key)
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 7 || !strings.HasPrefix(parts[0], "agent=") || !strings.HasPrefix(parts[1], "stream=") || !strings.HasSuffix(parts[6], ext) {
		return p, fmt.Errorf("%w: %q: want %sagent=<id>/stream=<k>/<yyyy>/<mm>/<dd>/<hh>/<seq>%s", ErrBadKey, key, key[:len(key)-len(rest)], ext)
	}
	p.Stream.Agent = parts[0][len("agent="):]
	if err := ValidAgent(p.Stream.Agent); err != nil {
		return p, fmt.Errorf("%w: %q: %v", ErrBadKey, key, err)
	}
	k, err := strconv.Atoi(parts[1][len("stream="):])
	if err != nil || k < 0 || k > 65535 {
		return p, fmt.Errorf("%w: %q: bad stream number", ErrBadKey, key)
	}
	p.Stream.Stream = k
	h, err := time.Parse("2006/01/02/15", strings.Join(parts[2:6], "/"))
	if err != nil {
		return p, fmt.Errorf("%w: %q: bad date path", ErrBadKey, key)
	}
	p.Hour = h
	seqs := strings.TrimSuffix(parts[6], ext)
	if len(seqs) != 20 {
		return p, fmt.Errorf("%w: %q: sequence number must have 20 digits", ErrBadKey, key)
	}
	p.Seq, err = strconv.ParseUint(seqs, 10, 64)
	if err != nil {
		return p, fmt.Errorf("%w: %q: bad sequence number", ErrBadKey, key)
	}
	return p, nil
}

// ParseState parses a checkpoint or segment index key of the state/ prefix.
func ParseState(key string) (Stream, uint64, error) {
	var s Stream
	rest, ok := strings.CutPrefix(key, PrefixState)
	parts := strings.Split(rest, "/")
	if !ok || len(parts) != 3 || !strings.HasPrefix(parts[0], "agent=") || !strings.HasPrefix(parts[1], "stream=") {
		return s, 0, fmt.Errorf("%w: %q is not a state key", ErrBadKey, key)
	}
	s.Agent = parts[0][len("agent="):]
	k, err := strconv.Atoi(parts[1][len("stream="):])
	if err != nil || ValidAgent(s.Agent) != nil {
		return s, 0, fmt.Errorf("%w: %q", ErrBadKey, key)
	}
	s.Stream = k
	name := parts[2]
	if i := strings.IndexByte(name, '.'); i == 20 {
		name = name[:i]
	} else {
		return s, 0, fmt.Errorf("%w: %q", ErrBadKey, key)
	}
	seq, err := strconv.ParseUint(name, 10, 64)
	if err != nil {
		return s, 0, fmt.Errorf("%w: %q", ErrBadKey, key)
	}
	return s, seq, nil
}
