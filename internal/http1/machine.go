package http1

import (
	"bytes"
	"strings"

	"github.com/flowlake/flowlake/internal/tcp"
)

// Direction states.
const (
	stHead       uint8 = iota // at or inside a message head (start line and fields)
	stSkipLine                // discarding the rest of a line, then stHead
	stBody                    // Remain bytes of a body of known length
	stChunkSize               // reading a chunk-size line
	stChunkData               // Remain bytes of chunk data
	stChunkEnd                // the CRLF after chunk data
	stTrailer                 // trailer fields after the last chunk
	stUntilClose              // a response body delimited by the end of the connection
	stHold                    // request bytes after CONNECT or Upgrade, until the response decides
	numStates
)

// Roles of a direction.
const (
	roleReq  = 0
	roleResp = 1
)

// half is the parse state of one direction. Fields are exported for gob.
type half struct {
	State uint8
	// Quiet is set while resynchronising: start lines that are not valid
	// are skipped without a row.
	Quiet bool
	// Buf holds the incomplete header block, trailer block or chunk-size
	// line when it spans Data calls.
	Buf []byte
	// LineStart is the offset in Buf of the line not yet ended.
	LineStart int
	// FirstLen is the length of the validated start line at the front of
	// Buf, 0 while the start line is incomplete.
	FirstLen int
	// StartTS is the time of the current message's first byte, LastTS the
	// time of the latest Data call.
	StartTS, LastTS int64
	// HasCur tells that Cur is the Seq of the exchange the current message
	// belongs to. For responses it stays set after interim responses.
	HasCur bool
	Cur    int
	// Remain counts the body or chunk bytes still expected.
	Remain int64
	// BodyN counts the body bytes of the current message.
	BodyN int64
	// Body is the identity preview, or the raw coded bytes when Codings is
	// not empty.
	Body []byte
	// Hint is the body length when known, to size Body.
	Hint int64
	// Codings are the content and transfer codings to undo for the preview.
	Codings string
	// Lost is set once bytes of the current message went missing.
	Lost bool
	// SawCR is set in stChunkEnd after the CR.
	SawCR bool
	// HoldSeq is the CONNECT or Upgrade exchange that stHold waits for,
	// Held the bytes discarded meanwhile.
	HoldSeq int
	Held    int64
	// AfterGap is set while resynchronising after a gap at a message
	// boundary; Skipped once bytes had to be skipped since. Both together
	// mean the gap swallowed the start of a message.
	AfterGap, Skipped bool
}

// pending is an exchange not yet emitted. Fields are exported for gob.
type pending struct {
	Ex *Exchange
	// HasReq is false for rows without a request (errors, orphan responses).
	HasReq bool
	// ReqDone and RespDone are set when each message has ended (or will
	// never come).
	ReqDone, RespDone bool
	// RespBegun is set once a response (interim or final) is paired.
	RespBegun bool
	// Final is set once the final response head was parsed.
	Final bool
	// Lost is set when bytes of either message were missing.
	Lost bool
	// Upgrade is set when the request carried an Upgrade header.
	Upgrade bool
}

// state is the whole parser state. Fields are exported for gob.
type state struct {
	H       [2]half // indexed by tcp.Dir
	Swapped bool    // requests flow ServerToClient
	Decided bool    // a start line fixed the roles
	Tunnel  bool    // parsing stopped for a tunnel
	Closed  bool
	NextSeq int
	Q       []pending // exchanges not yet emitted, consecutive Seq
}

// role returns the role of direction dir.
func (p *Parser) role(dir tcp.Dir) int {
	r := int(dir)
	if p.st.Swapped {
		r ^= 1
	}
	return r
}

// dirOf returns the direction that has role r.
func (p *Parser) dirOf(r int) tcp.Dir {
	if p.st.Swapped {
		r ^= 1
	}
	return tcp.Dir(r)
}

// get returns the pending exchange with Seq seq, or nil when it was
// emitted already.
func (p *Parser) get(seq int) *pending {
	q := p.st.Q
	if len(q) == 0 {
		return nil
	}
	i := seq - q[0].Ex.Seq
	if i < 0 || i >= len(q) {
		return nil
	}
	return &q[i]
}

// cur returns the exchange the current message of h belongs to.
func (p *Parser) cur(h *half) *pending {
	if !h.HasCur {
		return nil
	}
	return p.get(h.Cur)
}

// awaiting returns the oldest exchange that waits for a response.
func (p *Parser) awaiting() *pending {
	for i := range p.st.Q {
		pe := &p.st.Q[i]
		if pe.HasReq && !pe.RespBegun && !pe.RespDone {
			return pe
		}
	}
	return nil
}

// add appends an exchange, giving it the next Seq, and enforces
// MaxPending. It returns the Seq.
func (p *Parser) add(pe pending) int {
	s := &p.st
	seq := s.NextSeq
	pe.Ex.Seq = seq
	s.NextSeq++
	s.Q = append(s.Q, pe)
	for len(s.Q) > p.cfg.MaxPending {
		h0 := &s.Q[0]
		if h0.RespBegun && !h0.RespDone {
			// Its response is being received: keep it unless the queue
			// has grown far past the bound.
			if len(s.Q) <= 4*p.cfg.MaxPending {
				break
			}
			h0.Lost = true
			setErr(h0.Ex, ErrTooManyPending)
		}
		h0.ReqDone, h0.RespDone = true, true
		p.pop()
	}
	p.flush()
	return seq
}

// setErr records the first error of an exchange.
func setErr(e *Exchange, msg string) {
	if e.Error == "" {
		e.Error = msg
	}
}

// flush emits the exchanges at the head of the queue that are done.
func (p *Parser) flush() {
	for len(p.st.Q) > 0 && p.st.Q[0].ReqDone && p.st.Q[0].RespDone {
		p.pop()
	}
}

// pop emits the head of the queue.
func (p *Parser) pop() {
	q := p.st.Q
	pe := q[0]
	copy(q, q[1:])
	q[len(q)-1] = pending{}
	p.st.Q = q[:len(q)-1]
	e := pe.Ex
	e.Complete = pe.HasReq && pe.Final && !pe.Lost
	if len(e.ReqHeaders) == 0 {
		e.ReqHeaders = nil
	}
	if len(e.RespHeaders) == 0 {
		e.RespHeaders = nil
	}
	if len(e.ReqBody) == 0 {
		e.ReqBody = nil
	}
	if len(e.RespBody) == 0 {
		e.RespBody = nil
	}
	if len(e.Interim) == 0 {
		e.Interim = nil
	}
	if p.emit != nil {
		p.emit(e)
	}
}

// Data consumes the next in-order bytes of direction dir.
func (p *Parser) Data(dir tcp.Dir, ts int64, b []byte) {
	s := &p.st
	if s.Closed || s.Tunnel || dir > 1 {
		return
	}
	h := &s.H[dir]
	h.LastTS = ts
	for len(b) > 0 && !s.Tunnel {
		n := p.step(dir, h, ts, b)
		if n <= 0 || n > len(b) {
			// Every state consumes input; this guard only keeps a bug
			// from becoming an endless loop.
			p.stalls++
			p.resetHalf(h, stSkipLine)
			return
		}
		b = b[n:]
	}
	p.checkHold()
}

// resetHalf drops the partial message of h and resynchronises in state st.
func (p *Parser) resetHalf(h *half, st uint8) {
	h.State = st
	h.Quiet = true
	p.clearHead(h)
	h.clearBody()
}

// clearHead forgets a partial head. Large buffers are released.
func (p *Parser) clearHead(h *half) {
	if cap(h.Buf) > 4096 {
		h.Buf = nil
	} else {
		h.Buf = h.Buf[:0]
	}
	h.LineStart, h.FirstLen = 0, 0
}

// clearBody forgets the current body.
func (h *half) clearBody() {
	h.Remain, h.BodyN, h.Hint = 0, 0, 0
	h.Body, h.Codings = nil, ""
	h.Lost, h.SawCR = false, false
}

// step consumes a prefix of b in the current state and returns its length,
// which is always at least 1.
func (p *Parser) step(dir tcp.Dir, h *half, ts int64, b []byte) int {
	switch h.State {
	case stHead:
		return p.head(dir, h, ts, b)
	case stSkipLine:
		if p.st.Decided && p.role(dir) == roleResp {
			return p.skipToStatus(dir, h, ts, b)
		}
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return len(b)
		}
		h.State = stHead
		return i + 1
	case stBody:
		n := int(min(int64(len(b)), h.Remain))
		p.bodyData(h, b[:n])
		h.Remain -= int64(n)
		if h.Remain == 0 {
			p.endMessage(dir, h, ts, "", false)
		}
		return n
	case stChunkSize:
		return p.chunkSize(dir, h, ts, b)
	case stChunkData:
		n := int(min(int64(len(b)), h.Remain))
		p.bodyData(h, b[:n])
		h.Remain -= int64(n)
		if h.Remain == 0 {
			h.State, h.SawCR = stChunkEnd, false
		}
		return n
	case stChunkEnd:
		switch {
		case b[0] == '\n':
			h.State = stChunkSize
			return 1
		case b[0] == '\r' && !h.SawCR:
			h.SawCR = true
			return 1
		}
		// The chunk was longer than announced: end the message and look
		// for a message start right here.
		p.endMessage(dir, h, ts, ErrBadChunkTerminator, true)
		return p.head(dir, h, ts, b)
	case stTrailer:
		return p.trailer(dir, h, ts, b)
	case stUntilClose:
		p.bodyData(h, b)
		return len(b)
	case stHold:
		h.Held += int64(len(b))
		return len(b)
	}
	return 0
}

// statusMark starts every HTTP/1.x status line.
const statusMark = "HTTP/1."

// skipToStatus resynchronises the response direction: it looks for the next
// status line anywhere in the bytes, not only at line starts, because after
// a gap the skipped bytes are usually the rest of a body whose start was
// lost, and the next response rarely follows a line feed. A mark cut by the
// end of b is carried in h.Buf, so the result does not depend on how the
// stream is split into calls.
func (p *Parser) skipToStatus(dir tcp.Dir, h *half, ts int64, b []byte) int {
	if k := len(h.Buf); k > 0 {
		rest := statusMark[k:]
		switch {
		case len(b) < len(rest) && statusMark[k:k+len(b)] == string(b):
			h.Buf = append(h.Buf, b...)
			return len(b)
		case len(b) >= len(rest) && string(b[:len(rest)]) == rest:
			// The carried bytes begin a status line: they become the
			// start of the head.
			h.State = stHead
			return p.head(dir, h, ts, b)
		}
		h.Buf = h.Buf[:0]
	}
	if i := bytes.Index(b, []byte(statusMark)); i >= 0 {
		h.State = stHead
		if i == 0 {
			return p.head(dir, h, ts, b)
		}
		return i
	}
	for k := min(len(statusMark)-1, len(b)); k > 0; k-- {
		if string(b[len(b)-k:]) == statusMark[:k] {
			h.Buf = append(h.Buf[:0], b[len(b)-k:]...)
			h.StartTS = ts
			break
		}
	}
	return len(b)
}

// head consumes bytes of a message head.
func (p *Parser) head(dir tcp.Dir, h *half, ts int64, b []byte) int {
	limit := p.cfg.MaxHeaderBytes
	if h.FirstLen == 0 {
		if len(h.Buf) == 0 {
			i := 0
			for i < len(b) && (b[i] == '\r' || b[i] == '\n') {
				i++
			}
			if i > 0 {
				return i
			}
			h.StartTS = ts
		}
		lf := bytes.IndexByte(b, '\n')
		lineEnd := lf
		if lf < 0 {
			lineEnd = len(b)
		}
		// Reject what cannot start a message as soon as possible, so that
		// binary data does not fill the buffer first.
		var pre [prefixLen]byte
		n := copy(pre[:], h.Buf)
		n += copy(pre[n:], b[:lineEnd])
		if !p.prefixOK(dir, pre[:n]) {
			p.badStart(dir, h)
			if lf < 0 {
				h.State = stSkipLine
				return len(b)
			}
			return lf + 1
		}
		if lf < 0 {
			if len(h.Buf)+len(b) >= limit {
				return p.tooLarge(dir, h, ts, nil, limit-len(h.Buf))
			}
			h.Buf = append(h.Buf, b...)
			return len(b)
		}
		if len(h.Buf)+lf+1 > limit {
			return p.tooLarge(dir, h, ts, nil, limit-len(h.Buf))
		}
		line := b[:lf+1]
		if len(h.Buf) > 0 {
			h.Buf = append(h.Buf, line...)
			line = h.Buf
		}
		if !p.startLine(dir, line, !h.Quiet) {
			p.badStart(dir, h)
			return lf + 1
		}
		if h.AfterGap && h.Skipped {
			p.gapLoss(dir, h)
		}
		h.Quiet, h.AfterGap, h.Skipped = false, false, false
		if len(h.Buf) > 0 {
			h.FirstLen, h.LineStart = len(h.Buf), len(h.Buf)
			return lf + 1
		}
		// Fast path: the whole head may be in b.
		end := blockEnd(nil, b[lf+1:])
		if end >= 0 {
			end += lf + 1
			if end > limit {
				return p.tooLarge(dir, h, ts, b[:lf+1], limit)
			}
			p.parseHead(dir, h, ts, b[:end], lf+1)
			return end
		}
		if len(b) >= limit {
			return p.tooLarge(dir, h, ts, b[:lf+1], limit)
		}
		h.Buf = append(h.Buf, b...)
		h.FirstLen = lf + 1
		h.LineStart = bytes.LastIndexByte(b, '\n') + 1
		return len(b)
	}
	end := blockEnd(h.Buf[h.LineStart:], b)
	if end >= 0 {
		if len(h.Buf)+end > limit {
			return p.tooLarge(dir, h, ts, h.Buf[:h.FirstLen], limit-len(h.Buf))
		}
		h.Buf = append(h.Buf, b[:end]...)
		p.parseHead(dir, h, ts, h.Buf, h.FirstLen)
		return end
	}
	if len(h.Buf)+len(b) >= limit {
		return p.tooLarge(dir, h, ts, h.Buf[:h.FirstLen], limit-len(h.Buf))
	}
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		h.LineStart = len(h.Buf) + i + 1
	}
	h.Buf = append(h.Buf, b...)
	return len(b)
}

// prefixOK checks the beginning of a start line for direction dir.
func (p *Parser) prefixOK(dir tcp.Dir, pre []byte) bool {
	if !p.st.Decided {
		return requestPrefixOK(pre) || statusPrefixOK(pre)
	}
	if p.role(dir) == roleReq {
		return requestPrefixOK(pre)
	}
	return statusPrefixOK(pre)
}

// startLine validates a complete start line. Before the roles are fixed,
// a status line in the request direction (or a request line in the
// response direction) swaps them. Version-less request lines are only
// accepted when lenient is set, that is, outside resynchronisation.
func (p *Parser) startLine(dir tcp.Dir, line []byte, lenient bool) bool {
	l := trimEOL(line)
	s := &p.st
	var own, other bool
	if p.role(dir) == roleReq {
		own = isRequestLine(l, lenient)
		other = !own && !s.Decided && isStatusLine(l)
	} else {
		own = isStatusLine(l)
		other = !own && !s.Decided && isRequestLine(l, lenient)
	}
	switch {
	case own:
		s.Decided = true
	case other:
		s.Decided = true
		s.Swapped = !s.Swapped
	}
	return own || other
}

// badStart handles an invalid start line: unless the direction is
// already resynchronising it yields an error row; then the direction
// resynchronises. The caller consumes the line or enters stSkipLine.
func (p *Parser) badStart(dir tcp.Dir, h *half) {
	if !h.Quiet {
		e := &Exchange{Error: ErrMalformedStatusLine, RespStart: h.StartTS, RespEnd: h.StartTS}
		if p.role(dir) == roleReq {
			e = &Exchange{Error: ErrMalformedRequestLine, ReqStart: h.StartTS, ReqEnd: h.StartTS}
		}
		p.add(pending{Ex: e, ReqDone: true, RespDone: true})
	}
	h.Skipped = true
	h.State = stHead
	h.Quiet = true
	p.clearHead(h)
}

// tooLarge handles a head longer than MaxHeaderBytes. first is its start
// line when complete. It returns consume, the bytes of b that bring the
// head to the bound; the rest of that line is skipped.
func (p *Parser) tooLarge(dir tcp.Dir, h *half, ts int64, first []byte, consume int) int {
	if !h.Quiet {
		p.lostHead(dir, h, ts, first, ErrHeaderTooLarge, true)
	}
	h.Skipped = true
	h.State = stSkipLine
	h.Quiet = true
	p.clearHead(h)
	return consume
}

// lostHead reports a message whose head could not be read completely:
// too large, cut by a gap or by the end of the connection. A request
// yields a row (awaiting its response when awaitResp); a response ends
// the exchange it belongs to.
func (p *Parser) lostHead(dir tcp.Dir, h *half, ts int64, first []byte, msg string, awaitResp bool) {
	if p.role(dir) == roleReq {
		e := &Exchange{Error: msg, ReqStart: h.StartTS, ReqEnd: ts}
		if len(first) > 0 {
			e.Method, e.URI, e.Version = splitRequestLine(string(first))
		}
		p.add(pending{Ex: e, HasReq: true, ReqDone: true, RespDone: !awaitResp, Lost: true})
		return
	}
	pe := p.cur(h)
	if pe == nil {
		pe = p.awaiting()
	}
	h.HasCur = false
	if pe == nil {
		// Part of a response nobody asked for: still worth a row.
		pe = p.get(p.add(pending{Ex: &Exchange{}, ReqDone: true}))
		if pe == nil {
			return
		}
	}
	e := pe.Ex
	if !pe.RespBegun {
		pe.RespBegun = true
		e.RespStart = h.StartTS
	}
	if len(first) > 0 {
		v, status, reason := splitStatusLine(string(first))
		if status >= 200 || status == 101 {
			e.RespVersion, e.Status, e.Reason = v, status, reason
		} else {
			e.Interim = append(e.Interim, status)
		}
	}
	e.RespEnd = ts
	setErr(e, msg)
	pe.Lost, pe.RespDone = true, true
	p.flush()
}

// gapLoss records a message whose start a gap swallowed: resynchronising
// after the gap had to skip the rest of it. A lost request becomes a row
// that takes the next response, so that later responses still pair with
// their requests; a lost response ends the exchange waiting for it.
func (p *Parser) gapLoss(dir tcp.Dir, h *half) {
	if p.role(dir) == roleReq {
		p.add(pending{Ex: &Exchange{Error: ErrGapRequestHeaders}, HasReq: true, ReqDone: true, Lost: true})
		return
	}
	pe := p.cur(h)
	if pe == nil {
		pe = p.awaiting()
	}
	h.HasCur = false
	if pe == nil {
		return
	}
	pe.RespBegun, pe.RespDone, pe.Lost = true, true, true
	setErr(pe.Ex, ErrGapResponseHeaders)
	p.flush()
}

// parseHead parses a complete head (start line of length firstLen, fields
// and the empty line) and sets up the body.
func (p *Parser) parseHead(dir tcp.Dir, h *half, ts int64, block []byte, firstLen int) {
	s := string(block)
	p.clearHead(h)
	h.clearBody()
	if p.role(dir) == roleReq {
		p.request(dir, h, ts, s[:firstLen], s[firstLen:])
	} else {
		p.response(dir, h, ts, s[:firstLen], s[firstLen:])
	}
}

// request handles a request head.
func (p *Parser) request(dir tcp.Dir, h *half, ts int64, first, fields string) {
	e := &Exchange{ReqStart: h.StartTS}
	e.Method, e.URI, e.Version = splitRequestLine(first)
	hdrs, bad := parseFields(fields)
	e.ReqHeaders = hdrs
	fi := scanFields(hdrs)
	e.Host = requestHost(e.Method, e.URI, &fi)
	e.ReqContentType = fi.contentType
	if bad {
		e.Error = ErrMalformedHeader
	}
	h.Cur, h.HasCur = p.add(pending{Ex: e, HasReq: true, Upgrade: fi.upgrade}), true
	switch {
	case fi.te != "":
		if !strings.EqualFold(lastToken(fi.te), "chunked") {
			p.endMessage(dir, h, ts, ErrBadTransferEncoding, true)
			return
		}
		h.Codings = bodyCodings(fi.ce, fi.te)
		h.State = stChunkSize
	case fi.clBad:
		p.endMessage(dir, h, ts, ErrBadContentLength, true)
	case fi.contentLength > 0:
		h.Codings = bodyCodings(fi.ce, "")
		h.Remain, h.Hint = fi.contentLength, fi.contentLength
		h.State = stBody
	default:
		p.endMessage(dir, h, ts, "", false)
	}
}

// response handles a response head.
func (p *Parser) response(dir tcp.Dir, h *half, ts int64, first, fields string) {
	version, status, reason := splitStatusLine(first)
	pe := p.cur(h)
	if pe == nil {
		pe = p.awaiting()
	}
	if pe == nil {
		pe = p.get(p.add(pending{Ex: &Exchange{Error: ErrResponseNoRequest}, ReqDone: true}))
		if pe == nil {
			return
		}
	}
	e := pe.Ex
	if !pe.RespBegun {
		pe.RespBegun = true
		e.RespStart = h.StartTS
	}
	h.Cur, h.HasCur = e.Seq, true
	if status < 200 && status != 101 {
		// Interim response: no body, the final one follows.
		e.Interim = append(e.Interim, status)
		h.State = stHead
		return
	}
	hdrs, bad := parseFields(fields)
	e.RespVersion, e.Status, e.Reason = version, status, reason
	e.RespHeaders = hdrs
	pe.Final = true
	if bad {
		setErr(e, ErrMalformedHeader)
	}
	fi := scanFields(hdrs)
	e.RespContentType = fi.contentType
	switch {
	case status == 101 || (e.Method == "CONNECT" && status/100 == 2):
		e.Tunnel = true
		p.endMessage(dir, h, ts, "", false)
		p.startTunnel(ts)
	case e.Method == "HEAD" || status == 204 || status == 304:
		p.endMessage(dir, h, ts, "", false)
	case fi.te != "":
		h.Codings = bodyCodings(fi.ce, fi.te)
		if strings.EqualFold(lastToken(fi.te), "chunked") {
			h.State = stChunkSize
		} else {
			h.State = stUntilClose
		}
	case fi.clBad:
		p.endMessage(dir, h, ts, ErrBadContentLength, true)
	case fi.clSeen:
		h.Codings = bodyCodings(fi.ce, "")
		if fi.contentLength == 0 {
			p.endMessage(dir, h, ts, "", false)
			return
		}
		h.Remain, h.Hint = fi.contentLength, fi.contentLength
		h.State = stBody
	default:
		h.Codings = bodyCodings(fi.ce, "")
		h.State = stUntilClose
	}
}

// startTunnel stops parsing: the request in progress, if any, ends here.
func (p *Parser) startTunnel(ts int64) {
	s := &p.st
	s.Tunnel = true
	rq := &s.H[p.dirOf(roleReq)]
	if pe := p.cur(rq); pe != nil && !pe.ReqDone {
		p.endMessage(p.dirOf(roleReq), rq, rq.LastTS, "", false)
	}
	for i := range s.H {
		h := &s.H[i]
		h.Buf = nil
		h.clearBody()
	}
	p.flush()
}

// endMessage ends the current message of h: it stores the body counters
// and preview in the exchange, records an error and, when resync is set,
// makes the direction resynchronise.
func (p *Parser) endMessage(dir tcp.Dir, h *half, ts int64, msg string, resync bool) {
	role := p.role(dir)
	next := stHead
	if pe := p.cur(h); pe != nil {
		e := pe.Ex
		body := p.preview(h)
		if role == roleReq {
			e.ReqBodyBytes, e.ReqBody, e.ReqEnd = h.BodyN, body, ts
			pe.ReqDone = true
			if !resync && !p.st.Tunnel && (pe.Upgrade || e.Method == "CONNECT") {
				next = stHold
				h.HoldSeq, h.Held = e.Seq, 0
			}
		} else {
			e.RespBodyBytes, e.RespBody, e.RespEnd = h.BodyN, body, ts
			pe.RespDone = true
		}
		if h.Lost || resync {
			pe.Lost = true
		}
		if msg != "" {
			setErr(e, msg)
		}
	}
	h.HasCur = false
	h.clearBody()
	h.State = next
	h.Quiet = resync
	p.flush()
}

// checkHold releases a request direction held after CONNECT or Upgrade
// once the final response has been seen and is not a tunnel.
func (p *Parser) checkHold() {
	s := &p.st
	if s.Tunnel {
		return
	}
	h := &s.H[p.dirOf(roleReq)]
	if h.State != stHold {
		return
	}
	if pe := p.get(h.HoldSeq); pe != nil && !pe.Final && !pe.RespDone {
		return
	}
	h.State = stHead
	h.Quiet = h.Held > 0
	h.Held = 0
}

// chunkSize consumes a chunk-size line.
func (p *Parser) chunkSize(dir tcp.Dir, h *half, ts int64, b []byte) int {
	lf := bytes.IndexByte(b, '\n')
	if lf < 0 {
		if len(h.Buf)+len(b) >= maxChunkLine {
			p.clearHead(h)
			p.endMessage(dir, h, ts, ErrBadChunkSize, true)
			h.State = stSkipLine
			return len(b)
		}
		h.Buf = append(h.Buf, b...)
		return len(b)
	}
	if len(h.Buf)+lf+1 > maxChunkLine {
		p.clearHead(h)
		p.endMessage(dir, h, ts, ErrBadChunkSize, true)
		return lf + 1
	}
	line := b[:lf+1]
	if len(h.Buf) > 0 {
		h.Buf = append(h.Buf, line...)
		line = h.Buf
	}
	size, ok := parseChunkSize(trimEOL(line))
	p.clearHead(h)
	switch {
	case !ok:
		p.endMessage(dir, h, ts, ErrBadChunkSize, true)
	case size == 0:
		h.State = stTrailer
	default:
		h.Remain = size
		h.State = stChunkData
	}
	return lf + 1
}

// trailer consumes the trailer block after the last chunk.
func (p *Parser) trailer(dir tcp.Dir, h *half, ts int64, b []byte) int {
	limit := p.cfg.MaxHeaderBytes
	end := blockEnd(h.Buf[h.LineStart:], b)
	if end < 0 {
		if len(h.Buf)+len(b) >= limit {
			consume := limit - len(h.Buf)
			p.clearHead(h)
			p.endMessage(dir, h, ts, ErrTrailerTooLarge, true)
			h.State = stSkipLine
			return consume
		}
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			h.LineStart = len(h.Buf) + i + 1
		}
		h.Buf = append(h.Buf, b...)
		return len(b)
	}
	if len(h.Buf)+end > limit {
		consume := limit - len(h.Buf)
		p.clearHead(h)
		p.endMessage(dir, h, ts, ErrTrailerTooLarge, true)
		h.State = stSkipLine
		return consume
	}
	block := b[:end]
	if len(h.Buf) > 0 {
		h.Buf = append(h.Buf, block...)
		block = h.Buf
	}
	if len(block) > 2 {
		// Trailer fields follow the header fields.
		fields, bad := parseFields(string(block))
		if pe := p.cur(h); pe != nil && len(fields) > 0 {
			if p.role(dir) == roleReq {
				pe.Ex.ReqHeaders = append(pe.Ex.ReqHeaders, fields...)
			} else {
				pe.Ex.RespHeaders = append(pe.Ex.RespHeaders, fields...)
			}
		}
		if pe := p.cur(h); pe != nil && bad {
			setErr(pe.Ex, ErrMalformedHeader)
		}
	}
	p.clearHead(h)
	p.endMessage(dir, h, ts, "", false)
	return end
}

// Gap reports n missing bytes of direction dir.
func (p *Parser) Gap(dir tcp.Dir, ts int64, n int) {
	s := &p.st
	if s.Closed || s.Tunnel || dir > 1 || n <= 0 {
		return
	}
	h := &s.H[dir]
	m := int64(n)
	role := p.role(dir)
	bodyErr := ErrGapRequestBody
	if role == roleResp {
		bodyErr = ErrGapResponseBody
	}
	switch h.State {
	case stBody:
		h.Lost = true
		switch {
		case m < h.Remain:
			h.BodyN += m
			h.Remain -= m
		case m == h.Remain:
			h.BodyN += m
			p.endMessage(dir, h, ts, "", false)
		default:
			// The gap runs into whatever followed the body.
			h.BodyN += h.Remain
			p.endMessage(dir, h, ts, "", true)
			h.AfterGap, h.Skipped = true, false
		}
	case stChunkData:
		h.Lost = true
		switch {
		case m < h.Remain:
			h.BodyN += m
			h.Remain -= m
		case m == h.Remain:
			h.BodyN += m
			h.Remain = 0
			h.State, h.SawCR = stChunkEnd, false
		default:
			h.BodyN += h.Remain
			p.endMessage(dir, h, ts, bodyErr, true)
		}
	case stChunkSize, stChunkEnd, stTrailer:
		p.clearHead(h)
		p.endMessage(dir, h, ts, bodyErr, true)
	case stUntilClose:
		// The body ends only with the connection: count the hole.
		h.Lost = true
		h.BodyN += m
	case stHead:
		switch {
		case !h.Quiet && len(h.Buf) > 0:
			msg := ErrGapRequestHeaders
			if role == roleResp {
				msg = ErrGapResponseHeaders
			}
			p.lostHead(dir, h, ts, h.Buf[:h.FirstLen], msg, true)
			h.AfterGap = false
		case !h.Quiet:
			// At a message boundary: what follows tells whether a
			// message start was lost.
			h.AfterGap, h.Skipped = true, false
		case len(h.Buf) > 0:
			h.Skipped = true
		}
		p.resetHalf(h, stHead)
	case stSkipLine:
		p.resetHalf(h, stHead)
	case stHold:
		h.Held += m
	}
	p.checkHold()
}

// Close ends the connection: messages in progress end (cut ones are
// marked), and every exchange not yet emitted is emitted.
func (p *Parser) Close(ts int64) {
	s := &p.st
	if s.Closed {
		return
	}
	if !s.Tunnel {
		for _, r := range [...]int{roleReq, roleResp} {
			dir := p.dirOf(r)
			p.finish(dir, &s.H[dir], ts)
		}
	}
	s.Closed = true
	for i := range s.Q {
		s.Q[i].ReqDone, s.Q[i].RespDone = true, true
	}
	p.flush()
	s.H = [2]half{}
	s.Q = nil
}

// finish ends the message in progress in direction dir at Close.
func (p *Parser) finish(dir tcp.Dir, h *half, ts int64) {
	msg := ErrTruncatedRequest
	if p.role(dir) == roleResp {
		msg = ErrTruncatedResponse
	}
	switch h.State {
	case stHead:
		if !h.Quiet && len(h.Buf) > 0 {
			p.lostHead(dir, h, h.LastTS, h.Buf[:h.FirstLen], msg, false)
		}
	case stBody, stChunkSize, stChunkData, stChunkEnd, stTrailer:
		p.endMessage(dir, h, h.LastTS, msg, true)
	case stUntilClose:
		p.endMessage(dir, h, h.LastTS, "", false)
	}
}
