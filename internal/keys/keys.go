// Package keys builds and parses every object key flowlake uses. It is the
// only place that knows the object layout of DESIGN.md:
//
//	raw/agent=<id>/stream=<k>/<yyyy>/<mm>/<dd>/<hh>/<seq:020d>.pcapng.zst
//	secrets/agent=<id>/stream=<k>/<yyyy>/<mm>/<dd>/<hh>/<seq:020d>.keylog
//	status/agent=<id>/<yyyy>/<mm>/<dd>/<hh>/<unix-ts>.json
//	state/agent=<id>/stream=<k>/<seq:020d>.ckpt
//	state/agent=<id>/stream=<k>/<seq:020d>.seg   (the raw key of segment seq, written by ingest)
//	lake/<table>/dt=YYYY-MM-DD/hour=HH/<name>.parquet
//	lake/<table>/dt=YYYY-MM-DD/hour=HH/compact-<hash>-<part>.parquet   (compacted files)
//	lake/<table>/dt=YYYY-MM-DD/hour=HH/_manifest-<version:020d>.json  (partition manifests)
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
	ExtKeys    = ".keys"
	ExtOutputs = ".out"
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

// StateKeys is the key of the key log carried from segment seq to seq+1:
// the TLS secrets of the connections still open after seq (NSS lines).
// Like every state/ object it is read by parse alone and never enters the
// lake.
func StateKeys(s Stream, seq uint64) string {
	return fmt.Sprintf("%s%s/%020d%s", PrefixState, s, seq, ExtKeys)
}

// StateOutputs is the key of the list of lake objects that parse wrote for
// segment seq, one key per line; a reparse deletes those it does not write
// again.
func StateOutputs(s Stream, seq uint64) string {
	return fmt.Sprintf("%s%s/%020d%s", PrefixState, s, seq, ExtOutputs)
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

// Kinds of configuration documents, config/<kind>/<name>.json: the users,
// teams, service accounts, saved views, public links and map positions of
// the query API (package auth), and its token signing key.
const (
	ConfigUsers           = "users"
	ConfigTeams           = "teams"
	ConfigServiceAccounts = "service-accounts"
	ConfigViews           = "views"
	ConfigLinks           = "links"
	ConfigUserPositions   = "positions/user"
	ConfigTeamPositions   = "positions/team"
	ConfigSigningKey      = "keys"
)

// ConfigPrefix is the prefix of the configuration documents of one kind.
func ConfigPrefix(kind string) string { return PrefixConfig + kind + "/" }

// ConfigName returns the name of the configuration document key of kind,
// and false when key is not one.
func ConfigName(kind, key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, ConfigPrefix(kind))
	if !ok {
		return "", false
	}
	name, ok := strings.CutSuffix(rest, ".json")
	if !ok || name == "" || strings.Contains(name, "/") {
		return "", false
	}
	return name, true
}

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

// Lake partition layout: compaction (package compact) merges a partition's
// files into compact-<hash>-<part>.parquet files and switches readers over
// with a manifest, one immutable object per version. Manifest names start
// with an underscore and do not end in .parquet, so globbing readers
// (DuckDB's *.parquet) and Hive-convention readers (Athena, Spark, which
// skip names starting with _ or .) never take them for data.
const (
	// ManifestPrefix starts the base name of every partition manifest.
	ManifestPrefix = "_manifest-"
	// ExtManifest ends the base name of every partition manifest.
	ExtManifest = ".json"
	// CompactPrefix starts the base name of every compacted lake file.
	CompactPrefix = "compact-"
)

// LakePartition returns the Hive partition path "dt=YYYY-MM-DD/hour=HH" of
// the UTC hour holding t (the same path as schema.PartitionPath).
func LakePartition(t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("dt=%04d-%02d-%02d/hour=%02d", t.Year(), t.Month(), t.Day(), t.Hour())
}

// ParseLakePartition parses a partition path "dt=YYYY-MM-DD/hour=HH" and
// returns the start of its hour (UTC).
func ParseLakePartition(partition string) (time.Time, error) {
	dt, hour, ok := strings.Cut(partition, "/")
	if !ok || !strings.HasPrefix(dt, "dt=") || !strings.HasPrefix(hour, "hour=") || len(dt) != len("dt=2006-01-02") || len(hour) != len("hour=15") {
		return time.Time{}, fmt.Errorf("%w: partition %q: want dt=YYYY-MM-DD/hour=HH", ErrBadKey, partition)
	}
	t, err := time.Parse("2006-01-02 15", dt[len("dt="):]+" "+hour[len("hour="):])
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: partition %q: %v", ErrBadKey, partition, err)
	}
	return t, nil
}

// LakePartitionPrefix is the prefix of every object of one partition of a
// table: "lake/<table>/dt=…/hour=…/".
func LakePartitionPrefix(table, partition string) string {
	return PrefixLake + table + "/" + partition + "/"
}

// LakeDayPrefix is the prefix of the partitions of one UTC day of a table:
// "lake/<table>/dt=YYYY-MM-DD/".
func LakeDayPrefix(table string, day time.Time) string {
	day = day.UTC()
	return fmt.Sprintf("%s%s/dt=%04d-%02d-%02d/", PrefixLake, table, day.Year(), day.Month(), day.Day())
}

// LakeManifest is the key of version v of the manifest of a partition.
func LakeManifest(table, partition string, v uint64) string {
	return LakePartitionPrefix(table, partition) + ManifestName(v)
}

// ManifestName is the base name of version v of a partition manifest:
// _manifest-<v:020d>.json. Lexical order of the names is version order.
func ManifestName(v uint64) string {
	return fmt.Sprintf("%s%020d%s", ManifestPrefix, v, ExtManifest)
}

// ParseManifestName returns the version of a manifest base name, and false
// for any other name.
func ParseManifestName(name string) (uint64, bool) {
	digits, ok := strings.CutPrefix(name, ManifestPrefix)
	if !ok {
		return 0, false
	}
	digits, ok = strings.CutSuffix(digits, ExtManifest)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(digits, 10, 64)
	return v, err == nil
}

// CompactName is the base name (without part number and extension) given
// to the lake writer for the compacted files of one compaction; hash
// identifies the compaction's inputs.
func CompactName(hash string) string { return CompactPrefix + hash }

// IsCompact reports whether a lake file's base name is a compacted file's.
func IsCompact(name string) bool {
	return strings.HasPrefix(name, CompactPrefix) && strings.HasSuffix(name, ExtParquet)
}

// LakeObject is a key below lake/ split into its parts.
type LakeObject struct {
	Table     string // first element below lake/
	Partition string // "dt=YYYY-MM-DD/hour=HH"
	Name      string // base name, e.g. "seg-a-0-…-0000.parquet" or "_manifest-….json"
	Hour      time.Time
}

// ParseLake splits a key lake/<table>/dt=…/hour=…/<name> into its parts.
// Keys at other depths or with a malformed partition fail with ErrBadKey.
func ParseLake(key string) (LakeObject, error) {
	var o LakeObject
	rest, ok := strings.CutPrefix(key, PrefixLake)
	parts := strings.Split(rest, "/")
	if !ok || len(parts) != 4 || parts[0] == "" || parts[3] == "" {
		return o, fmt.Errorf("%w: %q: want %s<table>/dt=YYYY-MM-DD/hour=HH/<name>", ErrBadKey, key, PrefixLake)
	}
	o.Table, o.Partition, o.Name = parts[0], parts[1]+"/"+parts[2], parts[3]
	h, err := ParseLakePartition(o.Partition)
	if err != nil {
		return o, fmt.Errorf("%q: %w", key, err)
	}
	o.Hour = h
	return o, nil
}
