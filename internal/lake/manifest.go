package lake

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/flowlake/flowlake/internal/keys"
)

// ManifestFormat is the format number written into every manifest.
const ManifestFormat = 1

// maxManifestBytes bounds the manifest a reader loads.
const maxManifestBytes = 64 << 20

// ErrBadManifest reports a manifest object that cannot be used: not JSON,
// an unknown format, or contents that contradict its key.
var ErrBadManifest = errors.New("bad lake manifest")

// Manifest is one version of the state of a compacted partition. Each
// version is its own immutable object,
//
//	lake/<table>/dt=…/hour=…/_manifest-<version:020d>.json
//
// created with a conditional create (PutIfAbsent), and the highest version
// present is the current one. Writing version v+1 is the atomic switch of
// a compaction: it makes the compacted files live and the files they
// replace dead, for every reader that follows the protocol (see
// ReadPartition).
type Manifest struct {
	// Format is ManifestFormat.
	Format int `json:"format"`
	// Table and Partition ("dt=…/hour=…") name the partition.
	Table     string `json:"table"`
	Partition string `json:"partition"`
	// Version numbers the manifests of a partition from 1.
	Version uint64 `json:"version"`
	// Created is when this version was written (the compactor's clock).
	Created time.Time `json:"created"`
	// Switched is when Files last changed: the time of the version that
	// made them live.
	Switched time.Time `json:"switched"`
	// Files lists the base names of the compacted files that are live, in
	// order.
	Files []string `json:"files"`
	// Rows is the number of rows in Files.
	Rows int64 `json:"rows"`
	// Replaces lists the files whose rows Files hold (or that hold no live
	// rows at all): readers skip them while they still exist. Entries are
	// kept after deletion for a grace period (Deleted set), so that a
	// reader that listed the partition before the deletion and read the
	// manifest after it still skips them.
	Replaces []Replaced `json:"replaces"`
}

// Replaced is a file that a manifest version declares dead.
type Replaced struct {
	// Name is the file's base name.
	Name string `json:"name"`
	// Since is when the file was declared dead: the Created time of the
	// version that first listed it. It is deleted once Since lies more
	// than the grace period in the past.
	Since time.Time `json:"since"`
	// Deleted is when the file was deleted; zero while it may exist.
	Deleted time.Time `json:"deleted,omitzero"`
}

// Live reports whether the manifest lists name in Files (false for a nil
// manifest).
func (m *Manifest) Live(name string) bool {
	return m != nil && slices.Contains(m.Files, name)
}

// IsReplaced reports whether the manifest lists name in Replaces (false
// for a nil manifest).
func (m *Manifest) IsReplaced(name string) bool {
	if m == nil {
		return false
	}
	for i := range m.Replaces {
		if m.Replaces[i].Name == name {
			return true
		}
	}
	return false
}

// Encode returns the manifest as indented JSON.
func (m *Manifest) Encode() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode manifest %s v%d: %w", m.Partition, m.Version, err)
	}
	return append(b, '\n'), nil
}

// DecodeManifest parses the manifest stored under key (used to check that
// its contents match its table, partition and version).
func DecodeManifest(key string, body []byte) (*Manifest, error) {
	o, err := keys.ParseLake(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadManifest, err)
	}
	v, ok := keys.ParseManifestName(o.Name)
	if !ok {
		return nil, fmt.Errorf("%w: %s is not a manifest key", ErrBadManifest, key)
	}
	// Unknown fields are ignored: a newer compactor may add optional ones;
	// incompatible changes raise Format.
	var m Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadManifest, key, err)
	}
	if err := m.Validate(o.Table, o.Partition, v); err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return &m, nil
}

// Validate checks that the manifest is version v of the given partition
// and that its lists are well formed: compacted base names in Files,
// .parquet base names in Replaces, no name both live and replaced, no
// duplicates.
func (m *Manifest) Validate(table, partition string, v uint64) error {
	switch {
	case m.Format != ManifestFormat:
		return fmt.Errorf("%w: format %d, want %d", ErrBadManifest, m.Format, ManifestFormat)
	case m.Table != table || m.Partition != partition || m.Version != v:
		return fmt.Errorf("%w: says %s/%s version %d, stored as %s/%s version %d", ErrBadManifest, m.Table, m.Partition, m.Version, table, partition, v)
	case v == 0:
		return fmt.Errorf("%w: version 0", ErrBadManifest)
	}
	seen := make(map[string]bool, len(m.Files)+len(m.Replaces))
	for _, f := range m.Files {
		if !keys.IsCompact(f) || strings.Contains(f, "/") || seen[f] {
			return fmt.Errorf("%w: bad or repeated live file %q", ErrBadManifest, f)
		}
		seen[f] = true
	}
	for _, r := range m.Replaces {
		if !strings.HasSuffix(r.Name, keys.ExtParquet) || strings.Contains(r.Name, "/") || seen[r.Name] {
			return fmt.Errorf("%w: bad, repeated or live replaced file %q", ErrBadManifest, r.Name)
		}
		seen[r.Name] = true
	}
	return nil
}
