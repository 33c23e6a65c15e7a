// Package dns decodes DNS messages (over UDP and length-prefixed over TCP),
// pairs queries with their responses and emits one row per query/answer for
// the dns table. Decoding is done by golang.org/x/net/dns/dnsmessage; this
// package adds presentation (type and rcode names, answer strings), query
// tracking with timeouts, TCP message framing with resynchronisation after
// gaps, and a cheap plausibility test for DNS on unusual ports.
//
// Nothing in this package panics on input: malformed messages become rows
// with Error set.
package dns

import (
	"encoding/hex"
	"net/netip"
	"strconv"

	"golang.org/x/net/dns/dnsmessage"
)

// MaxAnswers bounds the number of answer records kept per message. Records
// beyond it are skipped (but still validated).
const MaxAnswers = 32

// maxAnswerLen bounds the length of one rendered answer string.
const maxAnswerLen = 512

// maxUnknownHex bounds how many rdata bytes of a record type without a
// dedicated rendering are shown in hex.
const maxUnknownHex = 32

// Message is the part of one DNS message that flowlake records.
type Message struct {
	// ID is the transaction ID.
	ID uint16
	// Response is the QR bit.
	Response bool
	// Opcode is the 4-bit operation code (0 query, 4 notify, 5 update, …).
	Opcode int
	// RCode is the response code name ("NOERROR", "NXDOMAIN", …), including
	// the EDNS extended bits when an OPT record carries them; unassigned
	// values render as "RCODE<n>".
	RCode string
	// Name is the first question's name without the trailing dot, with the
	// case the sender used. Bytes outside printable ASCII, the backslash and
	// the space are escaped as \DDD (RFC 1035 §5.1). The root is ".". It is
	// empty when the message has no question.
	Name string
	// QType is the first question's type name ("A", "AAAA", "MX", …) or
	// "TYPE<n>" for types without a mnemonic here.
	QType string
	// Answers holds up to MaxAnswers records of the answer section in
	// presentation form, such as "A 93.184.216.34", "CNAME foo.example",
	// "MX 10 mx.example". Types without a dedicated rendering use the
	// RFC 3597 generic form "TYPE \# <len> <hex>" (hex bounded).
	Answers []string
	// Truncated is the TC bit.
	Truncated bool
}

// Parse decodes one DNS message: a UDP payload, or one TCP-framed message
// without its 2-byte length prefix. On error the returned Message holds the
// fields decoded before the error (ID, Response and Opcode are set whenever
// the 12-byte header was present).
func Parse(b []byte) (Message, error) {
	var d decoder
	var m Message
	err := d.decode(b, &m, false)
	if d.hasQuestion {
		m.Name = d.nameString(&d.question)
	}
	return m, err
}

// decoder holds the scratch state of one decode. The Tracker keeps one to
// avoid per-message allocations; Parse uses a fresh one.
type decoder struct {
	p dnsmessage.Parser
	// hasQuestion reports whether the message had at least one question.
	hasQuestion bool
	// question is the first question's name (valid if hasQuestion).
	question dnsmessage.Name
	// firstOwner is the owner name of the first answer record.
	firstOwner    dnsmessage.Name
	hasFirstOwner bool
	// chain holds the question name and the CNAME targets reached from it,
	// so that A/AAAA answers can be attributed to the name that was asked.
	chain  [8]dnsmessage.Name
	nchain int
	// addrs collects the A/AAAA answers when collecting is enabled.
	addrs []nameAddr
	// buf is a scratch buffer for rendering answers, nbuf for names.
	buf  [maxAnswerLen + 64]byte
	nbuf [4 * 255]byte
}

// nameAddr is one A or AAAA answer. asked is true when the owner is the
// question name or reached from it through CNAMEs; otherwise owner holds the
// record's owner name.
type nameAddr struct {
	ip    netip.Addr
	asked bool
	owner string
}

// decode fills m from b, except m.Name, which callers render from
// d.question when they need it (see questionName). When collect is true,
// A/AAAA answers are appended to d.addrs. m.Answers is appended to (callers pass a reusable
// slice with length zero).
func (d *decoder) decode(b []byte, m *Message, collect bool) error {
	d.hasQuestion = false
	d.hasFirstOwner = false
	d.nchain = 0
	d.addrs = d.addrs[:0]
	h, err := d.p.Start(b)
	if err != nil {
		return err
	}
	m.ID = h.ID
	m.Response = h.Response
	m.Opcode = int(h.OpCode)
	m.Truncated = h.Truncated
	rcode := h.RCode
	m.RCode = rcodeName(rcode)

	q, err := d.p.Question()
	switch err {
	case nil:
		d.hasQuestion = true
		d.question = q.Name
		m.QType = typeName(q.Type)
		d.chain[0] = q.Name
		d.nchain = 1
		if err := d.p.SkipAllQuestions(); err != nil {
			return err
		}
	case dnsmessage.ErrSectionDone:
	default:
		return err
	}

	for i := 0; ; i++ {
		rh, err := d.p.AnswerHeader()
		if err == dnsmessage.ErrSectionDone {
			break
		}
		if err != nil {
			return err
		}
		if i == 0 {
			d.firstOwner = rh.Name
			d.hasFirstOwner = true
		}
		if i >= MaxAnswers {
			if err := d.p.SkipAnswer(); err != nil {
				return err
			}
			continue
		}
		s, err := d.answer(&rh, collect)
		if err != nil {
			return err
		}
		m.Answers = append(m.Answers, s)
	}
	if err := d.p.SkipAllAuthorities(); err != nil {
		return err
	}
	for {
		rh, err := d.p.AdditionalHeader()
		if err == dnsmessage.ErrSectionDone {
			break
		}
		if err != nil {
			return err
		}
		if rh.Type == dnsmessage.TypeOPT {
			if ext := rh.ExtendedRCode(rcode); ext != rcode {
				m.RCode = rcodeName(ext)
			}
		}
		if err := d.p.SkipAdditional(); err != nil {
			return err
		}
	}
	return nil
}

// inChain reports whether n is the question name or a CNAME target reached
// from it.
func (d *decoder) inChain(n *dnsmessage.Name) bool {
	for i := 0; i < d.nchain; i++ {
		if nameEqualFold(&d.chain[i], n) {
			return true
		}
	}
	return false
}

// address renders an A or AAAA answer and, when collecting, records the
// address for the name it answers.
func (d *decoder) address(out []byte, ip netip.Addr, rh *dnsmessage.ResourceHeader, collect bool) []byte {
	out = append(out, ' ')
	out = ip.AppendTo(out)
	if collect {
		na := nameAddr{ip: ip}
		d.attribute(&na, rh)
		d.addrs = append(d.addrs, na)
	}
	return out
}

// answer renders the resource whose header the parser has just read.
func (d *decoder) answer(rh *dnsmessage.ResourceHeader, collect bool) (string, error) {
	out := append(d.buf[:0], typeName(rh.Type)...)
	switch rh.Type {
	case dnsmessage.TypeA:
		r, err := d.p.AResource()
		if err != nil {
			return "", err
		}
		out = d.address(out, netip.AddrFrom4(r.A), rh, collect)
	case dnsmessage.TypeAAAA:
		r, err := d.p.AAAAResource()
		if err != nil {
			return "", err
		}
		out = d.address(out, netip.AddrFrom16(r.AAAA), rh, collect)
	case dnsmessage.TypeCNAME:
		r, err := d.p.CNAMEResource()
		if err != nil {
			return "", err
		}
		out = append(out, ' ')
		out = appendName(out, &r.CNAME)
		if d.nchain > 0 && d.nchain < len(d.chain) && d.inChain(&rh.Name) {
			d.chain[d.nchain] = r.CNAME
			d.nchain++
		}
	case dnsmessage.TypeNS:
		r, err := d.p.NSResource()
		if err != nil {
			return "", err
		}
		out = append(out, ' ')
		out = appendName(out, &r.NS)
	case dnsmessage.TypePTR:
		r, err := d.p.PTRResource()
		if err != nil {
			return "", err
		}
		out = append(out, ' ')
		out = appendName(out, &r.PTR)
	case dnsmessage.TypeMX:
		r, err := d.p.MXResource()
		if err != nil {
			return "", err
		}
		out = append(out, ' ')
		out = strconv.AppendUint(out, uint64(r.Pref), 10)
		out = append(out, ' ')
		out = appendName(out, &r.MX)
	case dnsmessage.TypeSRV:
		r, err := d.p.SRVResource()
		if err != nil {
			return "", err
		}
		out = append(out, ' ')
		out = strconv.AppendUint(out, uint64(r.Priority), 10)
		out = append(out, ' ')
		out = strconv.AppendUint(out, uint64(r.Weight), 10)
		out = append(out, ' ')
		out = strconv.AppendUint(out, uint64(r.Port), 10)
		out = append(out, ' ')
		out = appendName(out, &r.Target)
	case dnsmessage.TypeSOA:
		r, err := d.p.SOAResource()
		if err != nil {
			return "", err
		}
		out = append(out, ' ')
		out = appendName(out, &r.NS)
		out = append(out, ' ')
		out = appendName(out, &r.MBox)
		for _, v := range [...]uint32{r.Serial, r.Refresh, r.Retry, r.Expire, r.MinTTL} {
			out = append(out, ' ')
			out = strconv.AppendUint(out, uint64(v), 10)
		}
	case dnsmessage.TypeTXT:
		r, err := d.p.TXTResource()
		if err != nil {
			return "", err
		}
		for _, s := range r.TXT {
			out = append(out, ' ')
			out = appendQuoted(out, s)
			if len(out) > maxAnswerLen {
				break
			}
		}
	default:
		r, err := d.p.UnknownResource()
		if err != nil {
			return "", err
		}
		out = append(out, ` \# `...)
		out = strconv.AppendInt(out, int64(len(r.Data)), 10)
		if len(r.Data) > 0 {
			out = append(out, ' ')
			data := r.Data
			if len(data) > maxUnknownHex {
				data = data[:maxUnknownHex]
			}
			out = hex.AppendEncode(out, data)
			if len(r.Data) > maxUnknownHex {
				out = append(out, "..."...)
			}
		}
	}
	if len(out) > maxAnswerLen {
		out = append(out[:maxAnswerLen-3], "..."...)
	}
	return string(out), nil
}

// attribute marks na as answering the question, or records its owner name.
func (d *decoder) attribute(na *nameAddr, rh *dnsmessage.ResourceHeader) {
	if d.nchain > 0 && d.inChain(&rh.Name) {
		na.asked = true
		return
	}
	na.owner = d.nameString(&rh.Name)
}

// questionName returns the first question's name, or "" without one.
func (d *decoder) questionName() string {
	if !d.hasQuestion {
		return ""
	}
	return d.nameString(&d.question)
}

// questionIs reports whether the first question's name, in presentation
// form, equals s ignoring ASCII case. It does not allocate.
func (d *decoder) questionIs(s string) bool {
	if !d.hasQuestion {
		return s == ""
	}
	return equalFoldBytes(appendName(d.nbuf[:0], &d.question), s)
}

// nameString renders n in presentation form without the trailing dot.
func (d *decoder) nameString(n *dnsmessage.Name) string {
	return string(appendName(d.nbuf[:0], n))
}

// appendName appends n without its trailing dot, escaping bytes that are not
// printable ASCII, '\\' and ' ' as \DDD (RFC 1035 presentation format).
func appendName(out []byte, n *dnsmessage.Name) []byte {
	data := n.Data[:n.Length]
	if len(data) == 0 || (len(data) == 1 && data[0] == '.') {
		return append(out, '.')
	}
	if data[len(data)-1] == '.' {
		data = data[:len(data)-1]
	}
	for _, c := range data {
		if c <= ' ' || c >= 0x7f || c == '\\' {
			out = append(out, '\\', '0'+c/100, '0'+c/10%10, '0'+c%10)
			continue
		}
		out = append(out, c)
	}
	return out
}

// appendQuoted appends s as a quoted character-string, escaping '"', '\\'
// and non-printable bytes as \DDD.
func appendQuoted(out []byte, s string) []byte {
	out = append(out, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			out = append(out, '\\', c)
		case c < ' ' || c >= 0x7f:
			out = append(out, '\\', '0'+c/100, '0'+c/10%10, '0'+c%10)
		default:
			out = append(out, c)
		}
	}
	return append(out, '"')
}

// nameEqualFold compares two names ignoring ASCII case (RFC 4343).
func nameEqualFold(a, b *dnsmessage.Name) bool {
	if a.Length != b.Length {
		return false
	}
	for i := 0; i < int(a.Length); i++ {
		if lower(a.Data[i]) != lower(b.Data[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

// equalFoldBytes compares a and b ignoring ASCII case only.
func equalFoldBytes(a []byte, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

// equalFoldASCII compares a and b ignoring ASCII case only.
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}
