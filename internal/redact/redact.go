// Package redact removes secrets from HTTP header values and body previews
// before anything is written to the lake.
//
// Header values are replaced by name; body previews are searched with
// regular expressions whose matches are replaced, keeping the surrounding
// key so that a reader still sees which field was hidden:
// {"password":"[REDACTED]"}, password=[REDACTED], Bearer [REDACTED].
// Both paths return their input unchanged, without allocating, when there
// is nothing to hide.
package redact

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"unicode/utf8"
)

// Mask replaces every redacted value.
const Mask = "[REDACTED]"

// Config says what to redact.
type Config struct {
	// Headers are the header names, compared case-insensitively, whose
	// values are replaced by Mask. A recognised authentication scheme is
	// kept: "Bearer [REDACTED]".
	Headers []string
	// BodyPatterns find secrets in body previews. When a pattern has
	// capturing groups, the first group that took part in a match is
	// replaced by Mask and the rest of the match is kept; otherwise the
	// whole match is replaced.
	BodyPatterns []*regexp.Regexp
}

// secretKey matches the names of fields that hold secrets: names ending in
// password, passwd, secret, token or api key ("client_secret",
// "access_token", "X-Api-Key"), in any case.
const secretKey = `[a-z0-9_.\-]*(?:password|passwd|secret|token|api[_\-]?key)`

// The default body patterns.
var (
	// jsonSecret matches a JSON string member with a secret key; group 1
	// is the value between the quotes.
	jsonSecret = regexp.MustCompile(`(?i)"` + secretKey + `"\s*:\s*"((?:[^"\\]|\\.)*)"`)
	// formSecret matches a form-encoded (or query-string) field with a
	// secret key, also in the nested form user[password]=; group 1 is the
	// value.
	formSecret = regexp.MustCompile(`(?i)(?:^|[?&;\s])(?:[a-z0-9_.\-]*\[)?` + secretKey + `(?:\]|%5d)?=([^&\s]*)`)
	// bearerToken matches an OAuth bearer token (RFC 6750 b64token);
	// group 1 is the token.
	bearerToken = regexp.MustCompile(`(?i)\bbearer\s+([a-z0-9\-._~+/]+=*)`)
)

// Default returns the configuration used unless the user says otherwise:
// the usual credential headers, and secrets in JSON and form bodies and
// bearer tokens anywhere in a body.
func Default() Config {
	return Config{
		Headers:      []string{"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "X-Api-Key"},
		BodyPatterns: []*regexp.Regexp{jsonSecret, formSecret, bearerToken},
	}
}

// authSchemes are the authentication schemes kept in front of a redacted
// credential: the IANA HTTP Authentication Scheme Registry and common
// unregistered ones, lower case.
var authSchemes = map[string]bool{
	"basic": true, "bearer": true, "concealed": true, "digest": true, "dpop": true,
	"gnap": true, "hoba": true, "mutual": true, "negotiate": true, "oauth": true,
	"privatetoken": true, "scram-sha-1": true, "scram-sha-256": true, "vapid": true,
	"ntlm": true, "aws4-hmac-sha256": true, "token": true, "apikey": true,
}

// Redactor applies a Config. It is safe for concurrent use. A nil
// *Redactor redacts nothing.
type Redactor struct {
	headers map[string]bool // lower-case names
	maxName int             // longest name in headers
	rules   []rule
	// lits are the distinct prefilter strings of all rules, lower case.
	lits [][]byte
	// anchors lists, for every byte value, the literals that contain it at
	// their anchor (their rarest byte) and where: Body scans its input
	// once and checks a literal only where its anchor byte occurs.
	anchors [256][]anchor
	hot     [256]bool // anchors[c] is not empty
}

// anchor places literal lit so that its byte at offset off is the one
// being looked at.
type anchor struct{ lit, off int }

// maxPrefilter bounds the literals of all rules together; rules beyond it
// run without a prefilter.
const maxPrefilter = 256

// rule is one body pattern with a prefilter.
type rule struct {
	re *regexp.Regexp
	// lits indexes the Redactor's literals one of which every match
	// contains (ASCII case-insensitively); nil when unknown, and then the
	// pattern always runs.
	lits []int
	// unicodeFold is set when a case-insensitive literal contains k or s,
	// which also match the non-ASCII KELVIN SIGN and LATIN SMALL LETTER
	// LONG S, so that the ASCII prefilter cannot rule out a match.
	unicodeFold bool
}

// New returns a Redactor for cfg.
func New(cfg Config) *Redactor {
	r := &Redactor{headers: make(map[string]bool, len(cfg.Headers))}
	for _, h := range cfg.Headers {
		h = string(lowerASCII(nil, []byte(strings.TrimSpace(h))))
		if h == "" {
			continue
		}
		r.headers[h] = true
		r.maxName = max(r.maxName, len(h))
	}
	for _, re := range cfg.BodyPatterns {
		if re == nil {
			continue
		}
		ru := rule{re: re}
		if tree, err := syntax.Parse(re.String(), syntax.Perl); err == nil {
			lits, fold := literals(tree.Simplify())
			ru.lits, ru.unicodeFold = r.addLits(lits), fold
		}
		r.rules = append(r.rules, ru)
	}
	return r
}

// addLits registers the prefilter strings of one rule and returns their
// indexes, or nil when the rule must run without a prefilter.
func (r *Redactor) addLits(lits []string) []int {
	if len(lits) == 0 {
		return nil
	}
	var idx []int
	for _, l := range lits {
		i := slices.IndexFunc(r.lits, func(b []byte) bool { return string(b) == l })
		if i < 0 {
			if len(r.lits) == maxPrefilter {
				return nil
			}
			i = len(r.lits)
			r.lits = append(r.lits, []byte(l))
			off := 0
			for k := 1; k < len(l); k++ {
				if rarity(l[k]) > rarity(l[off]) {
					off = k
				}
			}
			a := anchor{lit: i, off: off}
			c := l[off]
			r.anchors[c] = append(r.anchors[c], a)
			r.hot[c] = true
			if 'a' <= c && c <= 'z' {
				r.anchors[c-'a'+'A'] = append(r.anchors[c-'a'+'A'], a)
				r.hot[c-'a'+'A'] = true
			}
		}
		idx = append(idx, i)
	}
	return idx
}

// frequent lists bytes from the most to the least frequent in typical
// text, JSON, HTML and form bodies; bytes not listed count as rare.
const frequent = ` "etaoinsrhldcu,:mfp=&gwy.b/-_v0123456789k<>{}[]x'j;qz`

// rarity ranks how rare byte c is in bodies (higher is rarer).
func rarity(c byte) int {
	if i := strings.IndexByte(frequent, c); i >= 0 {
		return i
	}
	return len(frequent)
}

// Header returns value, or a redacted form of it when name is one of the
// configured headers. An authentication scheme in front of the
// credentials is kept ("Bearer [REDACTED]"); an empty value stays empty.
func (r *Redactor) Header(name, value string) string {
	if r == nil || value == "" || !r.redacted(name) {
		return value
	}
	if sp := strings.IndexByte(value, ' '); sp > 0 && sp <= 32 && strings.TrimLeft(value[sp:], " ") != "" {
		var buf [32]byte
		if authSchemes[string(lowerASCII(buf[:0], []byte(value[:sp])))] {
			return value[:sp] + " " + Mask
		}
	}
	return Mask
}

// redacted reports, without allocating, whether header name is configured.
func (r *Redactor) redacted(name string) bool {
	if len(name) > r.maxName || len(name) == 0 {
		return false
	}
	var buf [64]byte
	if len(name) > len(buf) {
		return r.headers[strings.ToLower(name)]
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return r.headers[string(buf[:len(name)])]
}

// Body returns b with the matches of the body patterns replaced by Mask.
// When nothing matches it returns b itself; otherwise a new slice, and b
// is not modified.
func (r *Redactor) Body(b []byte) []byte {
	if r == nil || len(b) == 0 || len(r.rules) == 0 {
		return b
	}
	var found [maxPrefilter / 64]uint64
	scanned, foldTraps := false, false
	out := b
	for i := range r.rules {
		ru := &r.rules[i]
		if ru.lits != nil {
			if !scanned {
				r.scan(b, &found)
				foldTraps = bytes.Contains(b, kelvin) || bytes.Contains(b, longS)
				scanned = true
			}
			if !(ru.unicodeFold && foldTraps) && !slices.ContainsFunc(ru.lits, func(l int) bool { return found[l/64]&(1<<(l%64)) != 0 }) {
				continue
			}
		}
		m := ru.re.FindAllSubmatchIndex(out, -1)
		if len(m) == 0 {
			continue
		}
		out = replace(out, m)
	}
	return out
}

// kelvin and longS are the UTF-8 forms of the non-ASCII runes that
// case-fold to k and s.
var (
	kelvin = []byte(string(rune(0x212A)))
	longS  = []byte(string(rune(0x017F)))
)

// lowerASCII appends b with ASCII letters in lower case to dst.
func lowerASCII(dst, b []byte) []byte {
	n := len(dst)
	dst = slices.Grow(dst, len(b))[:n+len(b)]
	out := dst[n:]
	for i, c := range b {
		if c-'A' < 26 {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return dst
}

// scan sets the bit of every literal that b contains, compared ASCII
// case-insensitively, in one pass over b.
func (r *Redactor) scan(b []byte, found *[maxPrefilter / 64]uint64) {
	hot := &r.hot
	for i, c := range b {
		if !hot[c] {
			continue
		}
		for _, a := range r.anchors[c] {
			start := i - a.off
			l := r.lits[a.lit]
			if start < 0 || start+len(l) > len(b) || found[a.lit/64]&(1<<(a.lit%64)) != 0 {
				continue
			}
			if equalFoldLower(b[start:start+len(l)], l) {
				found[a.lit/64] |= 1 << (a.lit % 64)
			}
		}
	}
}

// equalFoldLower reports whether b equals the lower-case lit after ASCII
// lower-casing.
func equalFoldLower(b, lit []byte) bool {
	for i, c := range b {
		if c-'A' < 26 {
			c += 'a' - 'A'
		}
		if c != lit[i] {
			return false
		}
	}
	return true
}

// replace returns a copy of b in which, for every match in m, the first
// participating capture group (or the whole match when the pattern has no
// group) is replaced by Mask. Empty spans are left alone.
func replace(b []byte, m [][]int) []byte {
	out := make([]byte, 0, len(b)+len(m)*len(Mask))
	last := 0
	for _, loc := range m {
		start, end := loc[0], loc[1]
		for g := 2; g+1 < len(loc); g += 2 {
			if loc[g] >= 0 {
				start, end = loc[g], loc[g+1]
				break
			}
		}
		if end <= start || start < last {
			continue
		}
		out = append(out, b[last:start]...)
		out = append(out, Mask...)
		last = end
	}
	return append(out, b[last:]...)
}

// maxLits bounds the strings of one prefilter.
const maxLits = 32

// facts is what the prefilter analysis knows about the matches of a
// regular expression, with strings lower-cased in ASCII.
type facts struct {
	// exact, when not nil, lists every string the expression can match.
	exact []string
	// req, when not nil, lists strings one of which every match contains.
	req []string
	// fold is set when a case-insensitive literal behind exact or req
	// contains k or s, which also match the non-ASCII KELVIN SIGN and LATIN
	// SMALL LETTER LONG S.
	fold bool
}

// best returns the most useful set of required strings of f, or nil.
func (f facts) best() []string {
	if f.exact != nil && !slices.Contains(f.exact, "") {
		return f.exact
	}
	return f.req
}

// literals returns strings one of which every match of re contains,
// compared after ASCII lower-casing, or nil when it cannot tell; and the
// fold flag of facts. It follows the idea of RE2's prefilter: exact sets
// of adjacent parts are multiplied out, and the most selective set wins.
func literals(re *syntax.Regexp) ([]string, bool) {
	f := analyze(re)
	return f.best(), f.fold
}

// analyze computes the facts of re.
func analyze(re *syntax.Regexp) facts {
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText,
		syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return facts{exact: []string{""}}
	case syntax.OpLiteral:
		fold := false
		if re.Flags&syntax.FoldCase != 0 {
			for _, c := range re.Rune {
				if c >= utf8.RuneSelf {
					// Non-ASCII folding is beyond the ASCII prefilter.
					return facts{}
				}
			}
			fold = strings.ContainsAny(strings.ToLower(string(re.Rune)), "ks")
		}
		// Lower-cased the way Body lower-cases its input: ASCII only.
		return facts{exact: []string{string(lowerASCII(nil, []byte(string(re.Rune))))}, fold: fold}
	case syntax.OpCharClass:
		var set []string
		for i := 0; i+1 < len(re.Rune); i += 2 {
			lo, hi := re.Rune[i], re.Rune[i+1]
			if hi >= utf8.RuneSelf || int(hi-lo)+1+len(set) > 4 {
				return facts{}
			}
			for c := lo; c <= hi; c++ {
				if l := string(lowerASCII(nil, []byte{byte(c)})); !slices.Contains(set, l) {
					set = append(set, l)
				}
			}
		}
		if set == nil {
			return facts{}
		}
		return facts{exact: set}
	case syntax.OpCapture:
		return analyze(re.Sub[0])
	case syntax.OpQuest:
		f := analyze(re.Sub[0])
		if f.exact == nil {
			return facts{}
		}
		if !slices.Contains(f.exact, "") {
			f.exact = append(f.exact, "")
		}
		f.req = nil
		return f
	case syntax.OpPlus:
		f := analyze(re.Sub[0])
		return facts{req: f.best(), fold: f.fold}
	case syntax.OpRepeat:
		if re.Min >= 1 {
			f := analyze(re.Sub[0])
			return facts{req: f.best(), fold: f.fold}
		}
	case syntax.OpConcat:
		return analyzeConcat(re.Sub)
	case syntax.OpAlternate:
		var out facts
		exact, req := true, true
		for _, sub := range re.Sub {
			f := analyze(sub)
			out.fold = out.fold || f.fold
			if f.exact == nil || len(out.exact)+len(f.exact) > maxLits {
				exact = false
			} else {
				out.exact = appendNew(out.exact, f.exact...)
			}
			if b := f.best(); b == nil || len(out.req)+len(b) > maxLits {
				req = false
			} else {
				out.req = appendNew(out.req, b...)
			}
		}
		if !exact {
			out.exact = nil
		}
		if !req {
			out.req = nil
		}
		return out
	}
	return facts{}
}

// analyzeConcat computes the facts of a concatenation: the exact sets of
// runs of adjacent parts are multiplied out; every run's product, and
// the best set of every other part, is a candidate for the required set.
func analyzeConcat(subs []*syntax.Regexp) facts {
	var out facts
	bestLen := 0
	consider := func(set []string, fold bool) {
		if set == nil || slices.Contains(set, "") {
			return
		}
		if n := shortest(set); n > bestLen {
			bestLen, out.req, out.fold = n, set, fold
		}
	}
	run, runFold, allExact := []string{""}, false, true
	for _, sub := range subs {
		f := analyze(sub)
		if f.exact != nil && len(run)*len(f.exact) <= maxLits {
			run, runFold = cross(run, f.exact), runFold || f.fold
			continue
		}
		allExact = false
		consider(run, runFold)
		if f.exact != nil {
			run, runFold = f.exact, f.fold
			continue
		}
		run, runFold = []string{""}, false
		consider(f.best(), f.fold)
	}
	consider(run, runFold)
	if allExact {
		out.exact = run
	}
	return out
}

// cross returns every a+b.
func cross(as, bs []string) []string {
	out := make([]string, 0, len(as)*len(bs))
	for _, a := range as {
		for _, b := range bs {
			out = appendNew(out, a+b)
		}
	}
	return out
}

// appendNew appends the strings of add that set does not hold yet.
func appendNew(set []string, add ...string) []string {
	for _, s := range add {
		if !slices.Contains(set, s) {
			set = append(set, s)
		}
	}
	return set
}

// shortest returns the length of the shortest string in l.
func shortest(l []string) int {
	n := -1
	for _, s := range l {
		if n < 0 || len(s) < n {
			n = len(s)
		}
	}
	return n
}

// ErrBadList is returned by ParseList for an empty or malformed item.
var ErrBadList = errors.New("redact: bad list")

// ParseList parses a comma-separated list given on a command line, such as
// "Authorization,Cookie, X-Token". Space around items is ignored; an empty
// input gives an empty list; empty items and items with spaces or control
// characters inside are errors.
func ParseList(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	out := make([]string, 0, len(parts))
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			return nil, fmt.Errorf("%w: item %d of %q is empty", ErrBadList, i+1, s)
		}
		for _, c := range p {
			if c <= ' ' || c == 0x7f {
				return nil, fmt.Errorf("%w: item %q contains %q", ErrBadList, p, c)
			}
		}
		out = append(out, p)
	}
	return out, nil
}
