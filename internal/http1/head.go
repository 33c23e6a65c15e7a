package http1

import (
	"bytes"
	"strings"
)

// isTchar marks the token characters of RFC 9110 section 5.6.2.
var isTchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// maxMethod bounds the length of a request method token.
const maxMethod = 32

// prefixLen is how many bytes of an incomplete start line are checked
// before the line is complete; it covers the longest method plus its space.
const prefixLen = maxMethod + 8

// trimEOL removes the line feed and one carriage return ending a line.
func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}

// trimEOLString is trimEOL for strings.
func trimEOLString(s string) string {
	if n := len(s); n > 0 && s[n-1] == '\n' {
		s = s[:n-1]
	}
	if n := len(s); n > 0 && s[n-1] == '\r' {
		s = s[:n-1]
	}
	return s
}

// requestPrefixOK reports whether b can begin a request line: a token of
// at most maxMethod characters followed by a space. It is monotone: when
// it fails on b it fails on every extension of b, and a line whose prefix
// fails is never a valid request line.
func requestPrefixOK(b []byte) bool {
	for i, c := range b {
		if c == ' ' {
			return i > 0
		}
		if !isTchar[c] || i >= maxMethod {
			return false
		}
	}
	return true
}

// statusPrefixOK reports whether b can begin a status line
// ("HTTP/1.x NNN"). Like requestPrefixOK it is monotone.
func statusPrefixOK(b []byte) bool {
	const lit = "HTTP/1."
	for i, c := range b {
		switch {
		case i < len(lit):
			if c != lit[i] {
				return false
			}
		case i == 7 || i == 10 || i == 11:
			if c < '0' || c > '9' {
				return false
			}
		case i == 8:
			if c != ' ' {
				return false
			}
		case i == 9:
			if c < '1' || c > '9' {
				return false
			}
		case i == 12:
			return c == ' ' || c == '\r'
		}
	}
	return true
}

// isVersion reports whether b is an HTTP/1 version: "HTTP/1." followed by
// one digit or, leniently, by nothing.
func isVersion[T ~string | ~[]byte](b T) bool {
	if len(b) < 7 || len(b) > 8 || string(b[:7]) != "HTTP/1." {
		return false
	}
	return len(b) == 7 || b[7] >= '0' && b[7] <= '9'
}

// requestLine locates the parts of a request line without its line
// ending: method SP request-target SP HTTP-version. It is lenient as
// servers are: repeated and trailing spaces, spaces inside the target, an
// empty target, a version without minor digit and, when versionless is
// set, the HTTP/0.9 form "GET /path" (broken clients send it followed by
// header fields, which are then parsed as usual).
func requestLine[T ~string | ~[]byte](l T, versionless bool) (method, target, version T, ok bool) {
	n := len(l)
	for n > 0 && (l[n-1] == ' ' || l[n-1] == '\t') {
		n--
	}
	l = l[:n]
	sp := -1
	for i := 0; i < len(l) && i <= maxMethod; i++ {
		if l[i] == ' ' {
			sp = i
			break
		}
		if !isTchar[l[i]] {
			return method, target, version, false
		}
	}
	if sp <= 0 {
		return method, target, version, false
	}
	method, rest := l[:sp], l[sp+1:]
	last := -1
	for i := len(rest) - 1; i >= 0; i-- {
		if rest[i] == ' ' {
			last = i
			break
		}
	}
	switch {
	case isVersion(rest[last+1:]):
		version, target = rest[last+1:], rest[:max(last, 0)]
	case versionless && len(rest) > 0 && rest[0] == '/':
		target = rest
		for i := 0; i < len(target); i++ {
			if target[i] == ' ' {
				return method, target, version, false
			}
		}
	default:
		return method, target, version, false
	}
	a, b := 0, len(target)
	for a < b && target[a] == ' ' {
		a++
	}
	for b > a && target[b-1] == ' ' {
		b--
	}
	target = target[a:b]
	for i := 0; i < len(target); i++ {
		if c := target[i]; c < 0x20 || c == 0x7f {
			return method, target, version, false
		}
	}
	return method, target, version, true
}

// isRequestLine validates a request line without its line ending.
func isRequestLine(l []byte, versionless bool) bool {
	_, _, _, ok := requestLine(l, versionless)
	return ok
}

// splitRequestLine splits a line accepted by isRequestLine.
func splitRequestLine(s string) (method, uri, version string) {
	method, uri, version, _ = requestLine(trimEOLString(s), true)
	return method, uri, version
}

// isStatusLine validates a status line without its line ending:
// HTTP/1.x SP 3DIGIT [SP reason].
func isStatusLine(l []byte) bool {
	if len(l) < 12 || !statusPrefixOK(l[:12]) {
		return false
	}
	if len(l) > 12 && l[12] != ' ' {
		return false
	}
	for _, c := range l[12:] {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// splitStatusLine splits a line accepted by isStatusLine.
func splitStatusLine(s string) (version string, status int, reason string) {
	s = trimEOLString(s)
	if len(s) < 12 {
		return "", 0, ""
	}
	version = s[:8]
	status = int(s[9]-'0')*100 + int(s[10]-'0')*10 + int(s[11]-'0')
	reason = trimOWS(s[12:])
	return version, status, reason
}

// parseFields parses header or trailer field lines up to the empty line
// that ends the block. Lines that start with whitespace continue the
// previous field (obs-fold). Lines that are not fields are skipped and
// reported through bad.
func parseFields(s string) (hdrs []Header, bad bool) {
	if n := strings.Count(s, "\n"); n > 1 {
		hdrs = make([]Header, 0, n-1)
	}
	for len(s) > 0 {
		var line string
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			line, s = s[:i], s[i+1:]
		} else {
			line, s = s, ""
		}
		line = trimEOLString(line)
		if line == "" {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(hdrs) == 0 {
				bad = true
				continue
			}
			v := trimOWS(line)
			if last := &hdrs[len(hdrs)-1]; v != "" {
				if last.Value == "" {
					last.Value = v
				} else {
					last.Value = last.Value + " " + v
				}
			}
			continue
		}
		c := strings.IndexByte(line, ':')
		if c <= 0 {
			bad = true
			continue
		}
		name := line[:c]
		for len(name) > 0 && (name[len(name)-1] == ' ' || name[len(name)-1] == '\t') {
			name = name[:len(name)-1]
		}
		if !isToken(name) {
			bad = true
			continue
		}
		hdrs = append(hdrs, Header{Name: name, Value: trimOWS(line[c+1:])})
	}
	return hdrs, bad
}

// trimOWS removes spaces and tabs around s.
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// isToken reports whether s is a non-empty token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTchar[s[i]] {
			return false
		}
	}
	return true
}

// fieldInfo holds what framing and the Exchange need from the fields.
type fieldInfo struct {
	contentLength int64
	clSeen, clBad bool
	te, ce        string // Transfer-Encoding and Content-Encoding, joined with ", "
	contentType   string
	host          string
	hostSeen      bool
	upgrade       bool
}

// scanFields collects fieldInfo from hdrs.
func scanFields(hdrs []Header) fieldInfo {
	var fi fieldInfo
	for i := range hdrs {
		h := &hdrs[i]
		switch len(h.Name) {
		case 4:
			if !fi.hostSeen && strings.EqualFold(h.Name, "Host") {
				fi.host, fi.hostSeen = h.Value, true
			}
		case 7:
			if strings.EqualFold(h.Name, "Upgrade") && h.Value != "" {
				fi.upgrade = true
			}
		case 12:
			if fi.contentType == "" && strings.EqualFold(h.Name, "Content-Type") {
				fi.contentType = h.Value
			}
		case 14:
			if strings.EqualFold(h.Name, "Content-Length") {
				n, ok := parseContentLength(h.Value)
				switch {
				case !ok:
					fi.clBad = true
				case fi.clSeen && n != fi.contentLength:
					fi.clBad = true
				}
				fi.contentLength, fi.clSeen = n, true
			}
		case 16:
			if strings.EqualFold(h.Name, "Content-Encoding") {
				fi.ce = joinList(fi.ce, h.Value)
			}
		case 17:
			if strings.EqualFold(h.Name, "Transfer-Encoding") {
				fi.te = joinList(fi.te, h.Value)
			}
		}
	}
	if fi.te != "" && !hasCoding(fi.te) {
		// Only "identity", which RFC 2616 allowed and means no coding.
		fi.te = ""
	}
	return fi
}

// joinList appends a list-valued field to an earlier value of the same
// field, as RFC 9110 section 5.3 allows.
func joinList(a, b string) string {
	switch {
	case b == "":
		return a
	case a == "":
		return b
	}
	return a + ", " + b
}

// maxContentLength keeps lengths far from int64 overflow.
const maxContentLength = 1 << 60

// parseContentLength parses a Content-Length value: digits, or a list of
// identical values ("42, 42").
func parseContentLength(v string) (int64, bool) {
	var n int64 = -1
	for v != "" {
		var item string
		if i := strings.IndexByte(v, ','); i >= 0 {
			item, v = v[:i], v[i+1:]
		} else {
			item, v = v, ""
		}
		item = trimOWS(item)
		if item == "" || len(item) > 18 {
			return 0, false
		}
		var m int64
		for i := 0; i < len(item); i++ {
			c := item[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			m = m*10 + int64(c-'0')
		}
		if m > maxContentLength || (n >= 0 && m != n) {
			return 0, false
		}
		n = m
	}
	return n, n >= 0
}

// lastToken returns the last element of a comma-separated list, without
// parameters and surrounding whitespace.
func lastToken(list string) string {
	if i := strings.LastIndexByte(list, ','); i >= 0 {
		list = list[i+1:]
	}
	return codingName(list)
}

// codingName strips parameters and whitespace from a coding.
func codingName(s string) string {
	if i := strings.IndexByte(s, ';'); i >= 0 {
		s = s[:i]
	}
	return trimOWS(s)
}

// bodyCodings returns the codings to undo for a preview: the content
// codings followed by the transfer codings other than chunked. The result
// is empty when the body is not coded.
func bodyCodings(ce, te string) string {
	out := ""
	if hasCoding(ce) {
		out = ce
	}
	if te == "" {
		return out
	}
	var extra []string
	for t := range strings.SplitSeq(te, ",") {
		t = codingName(t)
		if t == "" || strings.EqualFold(t, "chunked") || strings.EqualFold(t, "identity") {
			continue
		}
		extra = append(extra, t)
	}
	if len(extra) == 0 {
		return out
	}
	return joinList(out, strings.Join(extra, ", "))
}

// hasCoding reports whether a coding list names any coding but identity.
func hasCoding(list string) bool {
	for t := range strings.SplitSeq(list, ",") {
		t = codingName(t)
		if t != "" && !strings.EqualFold(t, "identity") {
			return true
		}
	}
	return false
}

// targetHost returns the authority of an absolute-form request-target
// ("http://user@host:port/path" gives "host:port").
func targetHost(uri string) (string, bool) {
	i := strings.Index(uri, "://")
	if i <= 0 || i > 16 {
		return "", false
	}
	for j := 0; j < i; j++ {
		c := uri[j]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || j > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return "", false
		}
	}
	auth := uri[i+3:]
	if j := strings.IndexAny(auth, "/?#"); j >= 0 {
		auth = auth[:j]
	}
	if j := strings.LastIndexByte(auth, '@'); j >= 0 {
		auth = auth[j+1:]
	}
	return auth, auth != ""
}

// requestHost picks the Host of an exchange.
func requestHost(method, uri string, fi *fieldInfo) string {
	if h, ok := targetHost(uri); ok {
		return h
	}
	if fi.hostSeen {
		return fi.host
	}
	if method == "CONNECT" {
		return uri
	}
	return ""
}

// maxChunkLine bounds a chunk-size line including extensions.
const maxChunkLine = 4096

// parseChunkSize parses a chunk-size line without its line ending:
// hex digits, optional whitespace, optional ";extensions".
func parseChunkSize(l []byte) (int64, bool) {
	var n int64
	i := 0
	for ; i < len(l); i++ {
		c := l[i]
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			goto rest
		}
		if i >= 15 {
			return 0, false
		}
		n = n<<4 | int64(d)
	}
rest:
	if i == 0 {
		return 0, false
	}
	for ; i < len(l); i++ {
		switch l[i] {
		case ' ', '\t':
			continue
		case ';':
			return n, true
		}
		return 0, false
	}
	return n, true
}

// blockEnd finds the end of a header or trailer block: it returns the
// index in b just past the line feed of the first empty line, or -1.
// partial holds the bytes of the line that b continues (those after the
// last line feed seen before b).
func blockEnd(partial, b []byte) int {
	start := 0
	for {
		i := bytes.IndexByte(b[start:], '\n')
		if i < 0 {
			return -1
		}
		i += start
		var empty bool
		if start == 0 && len(partial) > 0 {
			switch len(partial) + i {
			case 1:
				empty = (i == 1 && b[0] == '\r') || (i == 0 && partial[0] == '\r')
			}
		} else {
			empty = i == start || (i == start+1 && b[start] == '\r')
		}
		if empty {
			return i + 1
		}
		start = i + 1
	}
}
