// Package hosts carries the static host names of an agent's host (its
// /etc/hosts) to the parse side: the agent writes them as a document to
// config/agents/<id>/hosts.json, and the pipeline loads that document into
// engine.Config.Hosts when it parses the agent's segments, so that
// client_name/server_name show the names the captured host itself uses.
package hosts

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"unicode"

	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/store"
)

// Version is the document version.
const Version = 1

// DefaultPath is where the agent reads host names.
const DefaultPath = "/etc/hosts"

// Bounds that keep a hostile or broken file from growing the document.
const (
	maxNameLen = 253
	maxEntries = 100_000
	maxDocSize = 16 << 20
)

// Document is the JSON document of an agent's host names.
type Document struct {
	Version int    `json:"version"`
	Agent   string `json:"agent"`
	Source  string `json:"source"`
	// Hosts maps an address (netip text form) to its name.
	Hosts map[string]string `json:"hosts"`
}

// ErrBadDocument reports a hosts document that cannot be read.
var ErrBadDocument = errors.New("bad hosts document")

// Key is the object key of the document of agent.
func Key(agent string) string { return keys.Config("agents", agent+"/hosts") }

// Parse reads a hosts(5) file: "address name [alias...]" lines, '#'
// comments. An address gets the canonical name (the first one) of its first
// line, as resolvers do for reverse lookups. Lines that do not parse are
// skipped.
func Parse(r io.Reader) (map[netip.Addr]string, error) {
	out := map[netip.Addr]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		addr, err := netip.ParseAddr(f[0])
		if err != nil {
			continue
		}
		addr = addr.WithZone("").Unmap()
		name := f[1]
		if !validName(name) {
			continue
		}
		if _, ok := out[addr]; ok {
			continue
		}
		if len(out) >= maxEntries {
			break
		}
		out[addr] = name
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read hosts: %w", err)
	}
	return out, nil
}

func validName(s string) bool {
	if s == "" || len(s) > maxNameLen {
		return false
	}
	for _, c := range s {
		if c > unicode.MaxASCII || !unicode.IsPrint(c) || unicode.IsSpace(c) {
			return false
		}
	}
	return true
}

// ReadFile parses the hosts file at path.
func ReadFile(path string) (map[netip.Addr]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read hosts: %w", err)
	}
	defer f.Close()
	m, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Encode returns the document of agent's names read from source.
// encoding/json sorts the map, so the same names give the same bytes.
func Encode(agent, source string, names map[netip.Addr]string) ([]byte, error) {
	doc := Document{Version: Version, Agent: agent, Source: source, Hosts: make(map[string]string, len(names))}
	for a, n := range names {
		doc.Hosts[a.String()] = n
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode hosts: %w", err)
	}
	return append(b, '\n'), nil
}

// Decode parses a document. Entries that are not an address and a valid
// name are skipped.
func Decode(b []byte) (Document, map[netip.Addr]string, error) {
	var doc Document
	if err := json.Unmarshal(b, &doc); err != nil {
		return doc, nil, fmt.Errorf("%w: %v", ErrBadDocument, err)
	}
	if doc.Version != Version {
		return doc, nil, fmt.Errorf("%w: version %d, want %d", ErrBadDocument, doc.Version, Version)
	}
	out := make(map[netip.Addr]string, len(doc.Hosts))
	for a, n := range doc.Hosts {
		addr, err := netip.ParseAddr(a)
		if err != nil || !validName(n) {
			continue
		}
		out[addr.WithZone("").Unmap()] = n
	}
	return doc, out, nil
}

// Load reads the names an agent published; an agent without a document
// has none (nil map, nil error). A document that cannot be read gives an
// error wrapping ErrBadDocument; a failing store, its own error.
func Load(ctx context.Context, st store.Store, agent string) (map[netip.Addr]string, error) {
	key := Key(agent)
	rc, err := st.Get(ctx, key)
	if errors.Is(err, store.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load host names of agent %s: %w", agent, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxDocSize+1))
	if err != nil {
		return nil, fmt.Errorf("load host names of agent %s: %w", agent, err)
	}
	if len(b) > maxDocSize {
		return nil, fmt.Errorf("load host names of agent %s: %w: %s is larger than %d bytes", agent, ErrBadDocument, key, maxDocSize)
	}
	_, m, err := Decode(b)
	if err != nil {
		return nil, fmt.Errorf("load host names of agent %s: %s: %w", agent, key, err)
	}
	return m, nil
}
