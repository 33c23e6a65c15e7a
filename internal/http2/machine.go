package http2

import (
	"encoding/binary"
	"errors"
	"strconv"
	"strings"

	"golang.org/x/net/http2/hpack"

	"github.com/flowlake/flowlake/internal/tcp"
)

// Frame types (RFC 9113 section 6).
const (
	frameData         = 0x0
	frameHeaders      = 0x1
	framePriority     = 0x2
	frameRSTStream    = 0x3
	frameSettings     = 0x4
	framePushPromise  = 0x5
	framePing         = 0x6
	frameGoAway       = 0x7
	frameWindowUpdate = 0x8
	frameContinuation = 0x9
)

var frameNames = [...]string{"DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE", "PING", "GOAWAY", "WINDOW_UPDATE", "CONTINUATION"}

func frameName(t uint8) string {
	if int(t) < len(frameNames) {
		return frameNames[t]
	}
	return "type " + strconv.Itoa(int(t))
}

// Frame flags.
const (
	flagEndStream  = 0x1
	flagAck        = 0x1
	flagEndHeaders = 0x4
	flagPadded     = 0x8
	flagPriority   = 0x20
)

// settingHeaderTableSize is SETTINGS_HEADER_TABLE_SIZE.
const settingHeaderTableSize = 0x1

// maxInterim bounds the 1xx statuses recorded per exchange.
const maxInterim = 8

// state is the serializable state of a Parser.
type state struct {
	D          [2]dirState
	Streams    []*stream // open streams, in Seq order
	NextSeq    int
	LastClient uint32 // highest client-initiated stream id seen
	LastPush   uint32 // highest promised stream id seen
	GoAway     string // code of a GOAWAY with an error, "" when none
	Failed     string // the connection error that stopped parsing
	Closed     bool
}

// dirState is one direction's framing and HPACK state.
type dirState struct {
	PreN     int  // ClientToServer: preface bytes matched
	Started  bool // a frame header was read
	Hdr      []byte
	In       bool // inside a frame's payload
	Type     uint8
	Flags    uint8
	Len      uint32
	SID      uint32
	Left     uint32 // payload bytes not consumed yet
	PadN     int    // DATA: -1 while the pad length is awaited
	DataLeft uint32 // DATA: data bytes before the padding
	Payload  []byte // payload of a frame other than DATA (bounded)
	// The header block being assembled.
	InBlock   bool
	Block     []byte
	BlockSID  uint32
	Promised  uint32
	BlockPush bool
	BlockEnd  bool // END_STREAM on the HEADERS frame
	Tab       table
}

// stream is an open stream.
type stream struct {
	Ex         Exchange
	Ended      [2]bool // END_STREAM seen, by direction
	Final      bool    // final response headers seen
	NoErrReset bool    // reset with NO_ERROR after a complete response
	Lost       bool
	Body       [2]body
}

// body accounts one direction's DATA.
type body struct {
	Buf    []byte // preview, raw when Coding is set
	Coding string // content-encoding
	Lost   bool
}

// Data implements tcp.StreamHandler.
func (p *Parser) Data(dir tcp.Dir, ts int64, b []byte) {
	if p.st.Failed != "" || p.st.Closed || dir > tcp.ServerToClient {
		return
	}
	d := &p.st.D[dir]
	for len(b) > 0 && p.st.Failed == "" {
		switch {
		case dir == tcp.ClientToServer && d.PreN < len(Preface):
			b = p.preface(d, ts, b)
		case !d.In:
			b = p.header(dir, d, ts, b)
		case d.Type == frameData:
			b = p.dataPayload(dir, d, ts, b)
		default:
			b = p.payload(dir, d, ts, b)
		}
	}
}

func (p *Parser) preface(d *dirState, ts int64, b []byte) []byte {
	if d.PreN == 0 && b[0] != Preface[0] {
		// Picked up mid-connection: no preface, the first frame
		// header is checked instead.
		d.PreN = len(Preface)
		return b
	}
	n := min(len(b), len(Preface)-d.PreN)
	if string(b[:n]) != Preface[d.PreN:d.PreN+n] {
		p.connErr(ts, ErrPreface, "")
		return nil
	}
	d.PreN += n
	return b[n:]
}

func (p *Parser) header(dir tcp.Dir, d *dirState, ts int64, b []byte) []byte {
	var h [9]byte
	if len(d.Hdr) == 0 && len(b) >= 9 {
		copy(h[:], b)
		b = b[9:]
	} else {
		n := min(9-len(d.Hdr), len(b))
		d.Hdr = append(d.Hdr, b[:n]...)
		b = b[n:]
		if len(d.Hdr) < 9 {
			return b
		}
		copy(h[:], d.Hdr)
		d.Hdr = nil
	}
	length := uint32(h[0])<<16 | uint32(h[1])<<8 | uint32(h[2])
	typ, flags := h[3], h[4]
	sid := binary.BigEndian.Uint32(h[5:9]) & (1<<31 - 1)
	if !d.Started {
		d.Started = true
		if typ > frameContinuation || length > 1<<14 || h[5]&0x80 != 0 {
			p.connErr(ts, ErrPreface, "no frame at the start of "+dir.String())
			return nil
		}
	}
	if kind, msg := p.begin(dir, d, typ, flags, length, sid); kind != "" {
		p.connErr(ts, kind, msg)
		return nil
	}
	if d.Left == 0 {
		p.end(dir, d, ts)
	}
	return b
}

// begin checks a frame header and starts its payload. It returns the kind
// and detail of a connection error.
func (p *Parser) begin(dir tcp.Dir, d *dirState, typ, flags uint8, length, sid uint32) (kind, msg string) {
	d.Type, d.Flags, d.Len, d.SID, d.Left, d.In = typ, flags, length, sid, length, true
	d.Payload = d.Payload[:0]
	name := frameName(typ)
	if d.InBlock && typ != frameContinuation {
		return ErrFrame, name + " inside a header block"
	}
	bad := ""
	switch typ {
	case frameData:
		d.PadN, d.DataLeft = 0, length
		if flags&flagPadded != 0 {
			d.PadN, d.DataLeft = -1, 0
			if length == 0 {
				bad = "without pad length"
			}
		}
		if sid == 0 {
			bad = "on stream 0"
		}
	case frameHeaders, framePushPromise, frameContinuation:
		switch {
		case sid == 0:
			bad = "on stream 0"
		case typ == frameContinuation && (!d.InBlock || sid != d.BlockSID):
			bad = "without a header block"
		case typ == framePushPromise && dir == tcp.ClientToServer:
			bad = "from the client"
		case len(d.Block)+int(length) > p.cfg.MaxHeaderBlock:
			return ErrHeaderBlockTooLarge, ""
		}
	case framePriority:
		if sid == 0 || length != 5 {
			bad = "of length " + strconv.Itoa(int(length)) + " on stream " + strconv.Itoa(int(sid))
		}
	case frameRSTStream:
		if sid == 0 || length != 4 {
			bad = "of length " + strconv.Itoa(int(length)) + " on stream " + strconv.Itoa(int(sid))
		}
	case frameSettings:
		if sid != 0 || length%6 != 0 || flags&flagAck != 0 && length != 0 {
			bad = "of length " + strconv.Itoa(int(length)) + " on stream " + strconv.Itoa(int(sid))
		}
	case framePing:
		if sid != 0 || length != 8 {
			bad = "of length " + strconv.Itoa(int(length)) + " on stream " + strconv.Itoa(int(sid))
		}
	case frameGoAway:
		if sid != 0 || length < 8 {
			bad = "of length " + strconv.Itoa(int(length)) + " on stream " + strconv.Itoa(int(sid))
		}
	case frameWindowUpdate:
		if length != 4 {
			bad = "of length " + strconv.Itoa(int(length))
		}
	}
	if bad != "" {
		return ErrFrame, name + " " + bad
	}
	return "", ""
}

// payload consumes the payload of a frame other than DATA.
func (p *Parser) payload(dir tcp.Dir, d *dirState, ts int64, b []byte) []byte {
	n := int(min(uint64(len(b)), uint64(d.Left)))
	limit := maxControl
	switch d.Type {
	case frameHeaders, framePushPromise, frameContinuation:
		limit = p.cfg.MaxHeaderBlock
	}
	if keep := min(n, limit-len(d.Payload)); keep > 0 {
		if d.Payload == nil {
			d.Payload = make([]byte, 0, min(int(d.Len), limit))
		}
		d.Payload = append(d.Payload, b[:keep]...)
	}
	d.Left -= uint32(n)
	b = b[n:]
	if d.Left == 0 {
		p.end(dir, d, ts)
	}
	return b
}

// dataPayload consumes the payload of a DATA frame without buffering it.
func (p *Parser) dataPayload(dir tcp.Dir, d *dirState, ts int64, b []byte) []byte {
	if d.PadN < 0 {
		pad := uint32(b[0])
		b = b[1:]
		d.Left--
		if pad > d.Left {
			p.connErr(ts, ErrFrame, "DATA padding exceeds the payload")
			return nil
		}
		d.PadN, d.DataLeft = int(pad), d.Left-pad
	} else {
		n := uint32(min(uint64(len(b)), uint64(d.Left)))
		k := min(n, d.DataLeft)
		if k > 0 {
			p.body(dir, d.SID, b[:k], 0)
		}
		d.DataLeft -= k
		d.Left -= n
		b = b[n:]
	}
	if d.Left == 0 {
		p.end(dir, d, ts)
	}
	return b
}

// end handles a frame whose payload is complete.
func (p *Parser) end(dir tcp.Dir, d *dirState, ts int64) {
	d.In = false
	pl := d.Payload
	defer func() {
		if cap(d.Payload) > 4<<10 {
			d.Payload = nil
		} else {
			d.Payload = d.Payload[:0]
		}
	}()
	switch d.Type {
	case frameData:
		if d.Flags&flagEndStream != 0 {
			p.endStream(dir, d.SID, ts)
		}
	case frameHeaders, framePushPromise:
		pad := 0
		if d.Flags&flagPadded != 0 {
			if len(pl) < 1 {
				p.connErr(ts, ErrFrame, frameName(d.Type)+" without pad length")
				return
			}
			pad = int(pl[0])
			pl = pl[1:]
		}
		var promised uint32
		if d.Type == frameHeaders && d.Flags&flagPriority != 0 {
			if len(pl) < 5 {
				p.connErr(ts, ErrFrame, "HEADERS without priority fields")
				return
			}
			pl = pl[5:]
		}
		if d.Type == framePushPromise {
			if len(pl) < 4 {
				p.connErr(ts, ErrFrame, "PUSH_PROMISE without promised stream")
				return
			}
			promised = binary.BigEndian.Uint32(pl) & (1<<31 - 1)
			pl = pl[4:]
		}
		if pad > len(pl) {
			p.connErr(ts, ErrFrame, frameName(d.Type)+" padding exceeds the payload")
			return
		}
		d.Block = append(d.Block[:0], pl[:len(pl)-pad]...)
		d.InBlock, d.BlockSID, d.Promised = true, d.SID, promised
		d.BlockPush = d.Type == framePushPromise
		d.BlockEnd = d.Type == frameHeaders && d.Flags&flagEndStream != 0
		if d.Flags&flagEndHeaders != 0 {
			p.block(dir, d, ts)
		}
	case frameContinuation:
		d.Block = append(d.Block, pl...)
		if d.Flags&flagEndHeaders != 0 {
			p.block(dir, d, ts)
		}
	case frameRSTStream:
		p.reset(dir, d.SID, binary.BigEndian.Uint32(pl), ts)
	case frameSettings:
		if d.Flags&flagAck != 0 {
			return
		}
		for ; len(pl) >= 6; pl = pl[6:] {
			if binary.BigEndian.Uint16(pl) != settingHeaderTableSize {
				continue
			}
			// The sender's decoder bounds the peer's encoder: it
			// affects the blocks of the other direction. Observing,
			// the parser accepts the largest size announced.
			v := min(binary.BigEndian.Uint32(pl[2:]), maxTableSize)
			t := &p.st.D[dir.Reverse()].Tab
			if v > t.Allowed {
				t.Allowed = v
				p.dec[dir.Reverse()].SetAllowedMaxDynamicTableSize(v)
			}
		}
	case frameGoAway:
		p.goAway(dir, binary.BigEndian.Uint32(pl)&(1<<31-1), binary.BigEndian.Uint32(pl[4:]), ts)
	}
}

// block decodes a complete header block and applies it.
func (p *Parser) block(dir tcp.Dir, d *dirState, ts int64) {
	d.InBlock = false
	blk := d.Block
	defer func() {
		if cap(d.Block) > 16<<10 {
			d.Block = nil
		} else {
			d.Block = d.Block[:0]
		}
	}()
	ops, ok := walk(blk, p.ops[:0])
	p.ops = ops
	if !ok {
		p.connErr(ts, ErrHPACK, "unreadable header block")
		return
	}
	p.fields, p.opi, p.listN, p.tooBig, p.walkErr = p.fields[:0], 0, 0, false, false
	p.tab = &d.Tab
	dec := p.dec[dir]
	dec.SetEmitFunc(p.onField)
	_, err := dec.Write(blk)
	if err == nil {
		err = dec.Close()
	} else {
		dec.Close()
	}
	if err == nil {
		for ; p.opi < len(p.ops); p.opi++ {
			if !p.ops[p.opi].update {
				p.walkErr = true
				break
			}
			p.tab.setMax(p.ops[p.opi].size)
		}
		if p.walkErr {
			err = errors.New("header block representations disagree")
		}
	}
	if err != nil {
		p.connErr(ts, ErrHPACK, err.Error())
		return
	}
	p.apply(dir, d.BlockSID, d.Promised, d.BlockPush, d.BlockEnd, ts)
	clear(p.fields)
	p.fields = p.fields[:0]
}

// onField is the decoder's emit function: it keeps the table record in
// step and collects the fields within the list bound.
func (p *Parser) onField(f hpack.HeaderField) {
	for p.opi < len(p.ops) && p.ops[p.opi].update {
		p.tab.setMax(p.ops[p.opi].size)
		p.opi++
	}
	if p.opi >= len(p.ops) {
		p.walkErr = true
		return
	}
	if p.ops[p.opi].add {
		p.tab.add(field{f.Name, f.Value})
	}
	p.opi++
	n := len(f.Name) + len(f.Value) + 32
	if p.listN+n > p.cfg.MaxHeaderList {
		p.tooBig = true
		return
	}
	p.listN += n
	p.fields = append(p.fields, f)
}

// apply gives a decoded header block (in p.fields) its meaning.
func (p *Parser) apply(dir tcp.Dir, sid, promised uint32, push, endStream bool, ts int64) {
	var s *stream
	switch {
	case push:
		if promised == 0 || promised%2 != 0 || promised <= p.st.LastPush {
			return
		}
		p.st.LastPush = promised
		s = p.open(promised)
		s.Ex.Pushed = true
		p.request(s, ts)
		s.Ended[tcp.ClientToServer] = true
		s.Ex.ReqEnd = ts
	case dir == tcp.ClientToServer:
		s = p.idx[sid]
		if s == nil {
			if sid%2 == 0 || sid <= p.st.LastClient {
				return // a stream that ended (or was never opened)
			}
			p.st.LastClient = sid
			s = p.open(sid)
			p.request(s, ts)
		} else {
			s.Ex.ReqHeaders = p.regular(s.Ex.ReqHeaders, nil)
		}
	default:
		s = p.idx[sid]
		if s == nil {
			return // a response to a request not seen
		}
		if s.Final {
			s.Ex.RespHeaders = p.regular(s.Ex.RespHeaders, s)
		} else {
			p.response(s, ts)
		}
	}
	if p.tooBig && s.Ex.Error == "" {
		s.Ex.Error = ErrHeaderListTooLarge
	}
	if endStream {
		p.endStream(dir, s.Ex.StreamID, ts)
	}
}

// regular appends the regular fields of p.fields to hs; with s, gRPC
// status fields are noted as the response's.
func (p *Parser) regular(hs []Header, s *stream) []Header {
	for _, f := range p.fields {
		if strings.HasPrefix(f.Name, ":") {
			continue
		}
		hs = append(hs, Header{Name: f.Name, Value: f.Value})
		if s != nil {
			switch f.Name {
			case "grpc-status":
				s.Ex.GRPCStatus = f.Value
			case "grpc-message":
				s.Ex.GRPCMessage = f.Value
			}
		}
	}
	return hs
}

func (p *Parser) request(s *stream, ts int64) {
	x := &s.Ex
	x.ReqStart = ts
	host := ""
	for _, f := range p.fields {
		switch f.Name {
		case ":method":
			x.Method = f.Value
		case ":scheme":
			x.Scheme = f.Value
		case ":authority":
			x.Authority = f.Value
		case ":path":
			x.Path = f.Value
		case "host":
			host = f.Value
		case "content-type":
			x.ReqContentType = f.Value
		case "content-encoding":
			s.Body[tcp.ClientToServer].Coding = f.Value
		}
	}
	if x.Authority == "" {
		x.Authority = host
	}
	x.ReqHeaders = p.regular(x.ReqHeaders, nil)
}

func (p *Parser) response(s *stream, ts int64) {
	x := &s.Ex
	if x.RespStart == 0 {
		x.RespStart = ts
	}
	status := 0
	for _, f := range p.fields {
		switch f.Name {
		case ":status":
			if v, err := strconv.Atoi(f.Value); err == nil && v >= 100 && v <= 999 {
				status = v
			}
		case "content-type":
			x.RespContentType = f.Value
		case "content-encoding":
			s.Body[tcp.ServerToClient].Coding = f.Value
		}
	}
	if status >= 100 && status < 200 {
		if len(x.Interim) < maxInterim {
			x.Interim = append(x.Interim, status)
		}
		return
	}
	s.Final = true
	x.Status = status
	x.RespHeaders = p.regular(x.RespHeaders, s)
}

// open starts a stream, making room under MaxStreams.
func (p *Parser) open(sid uint32) *stream {
	for len(p.st.Streams) >= p.cfg.MaxStreams {
		p.finish(p.st.Streams[0], ErrTooManyStreams)
	}
	s := &stream{Ex: Exchange{Seq: p.st.NextSeq, StreamID: sid}}
	p.st.NextSeq++
	p.st.Streams = append(p.st.Streams, s)
	p.idx[sid] = s
	return s
}

// body accounts DATA bytes of a stream: b, or lost missing bytes.
func (p *Parser) body(dir tcp.Dir, sid uint32, b []byte, lost uint32) {
	s := p.idx[sid]
	if s == nil {
		return
	}
	n := int64(len(b)) + int64(lost)
	if dir == tcp.ClientToServer {
		s.Ex.ReqBodyBytes += n
	} else {
		s.Ex.RespBodyBytes += n
	}
	bd := &s.Body[dir]
	if lost > 0 {
		bd.Lost, s.Lost = true, true
		if s.Ex.Error == "" {
			s.Ex.Error = ErrGapBody
		}
	}
	if bd.Lost {
		return
	}
	limit := p.cfg.BodyPreview
	if bd.Coding != "" {
		limit = p.cfg.MaxRawBody
	}
	if room := limit - len(bd.Buf); room > 0 {
		bd.Buf = append(bd.Buf, b[:min(room, len(b))]...)
	}
}

func (p *Parser) endStream(dir tcp.Dir, sid uint32, ts int64) {
	s := p.idx[sid]
	if s == nil {
		return
	}
	s.Ended[dir] = true
	if dir == tcp.ClientToServer {
		s.Ex.ReqEnd = ts
	} else {
		s.Ex.RespEnd = ts
	}
	if s.Ended[0] && s.Ended[1] {
		p.finish(s, "")
	}
}

func (p *Parser) reset(dir tcp.Dir, sid, code uint32, ts int64) {
	s := p.idx[sid]
	if s == nil {
		return
	}
	if !s.Ended[tcp.ServerToClient] {
		s.Ex.RespEnd = ts
	}
	if code == 0 && s.Ended[tcp.ServerToClient] && s.Final {
		// RFC 9113 section 8.1: a complete response may stop the
		// upload of the request with NO_ERROR.
		s.NoErrReset = true
		p.finish(s, "")
		return
	}
	msg := ErrResetByClient
	if dir == tcp.ServerToClient {
		msg = ErrResetByServer
	}
	p.finish(s, msg+": "+ErrCodeName(code))
}

// goAway ends the streams the sender of a GOAWAY did not process: those
// its peer opened after the last stream id.
func (p *Parser) goAway(dir tcp.Dir, last, code uint32, ts int64) {
	if code != 0 {
		p.st.GoAway = ErrCodeName(code)
	}
	var refused []*stream
	for _, s := range p.st.Streams {
		id := s.Ex.StreamID
		peerOpened := (id%2 == 1) == (dir == tcp.ServerToClient)
		if peerOpened && id > last {
			refused = append(refused, s)
		}
	}
	for _, s := range refused {
		if !s.Ended[tcp.ServerToClient] {
			s.Ex.RespEnd = ts
		}
		p.finish(s, ErrRefused)
	}
}

// finish reports a stream and forgets it; msg, if set, is its error.
func (p *Parser) finish(s *stream, msg string) {
	for i, o := range p.st.Streams {
		if o == s {
			p.st.Streams = append(p.st.Streams[:i], p.st.Streams[i+1:]...)
			break
		}
	}
	delete(p.idx, s.Ex.StreamID)
	x := &s.Ex
	if msg != "" && x.Error == "" {
		x.Error = msg
	}
	x.Complete = x.Error == "" && !s.Lost && s.Final && s.Ended[tcp.ServerToClient] &&
		(s.Ended[tcp.ClientToServer] || s.NoErrReset)
	x.ReqBody = p.preview(&s.Body[tcp.ClientToServer])
	x.RespBody = p.preview(&s.Body[tcp.ServerToClient])
	if p.emit != nil {
		p.emit(x)
	}
}

// connErr ends the connection: every open stream is reported with the
// error (or one exchange with only the error when none is open), and the
// rest of the connection is ignored.
func (p *Parser) connErr(ts int64, kind, detail string) {
	msg := kind
	if detail != "" {
		msg += ": " + detail
	}
	p.st.Failed = msg
	if len(p.st.Streams) == 0 {
		x := &Exchange{Seq: p.st.NextSeq, ReqStart: ts, ReqEnd: ts, Error: msg}
		p.st.NextSeq++
		if p.emit != nil {
			p.emit(x)
		}
	}
	for len(p.st.Streams) > 0 {
		p.finish(p.st.Streams[0], msg)
	}
	p.release()
}

// release drops the buffers of a connection that will not be parsed.
func (p *Parser) release() {
	for d := range p.st.D {
		p.st.D[d] = dirState{PreN: p.st.D[d].PreN}
	}
	p.dec = [2]*hpack.Decoder{}
	p.fields, p.ops = nil, nil
}

// Gap implements tcp.StreamHandler. Bytes missing inside a DATA frame's
// payload only mark its stream's body incomplete; any other gap loses the
// framing and the HPACK state, a connection error.
func (p *Parser) Gap(dir tcp.Dir, ts int64, n int) {
	if p.st.Failed != "" || p.st.Closed || dir > tcp.ServerToClient || n <= 0 {
		return
	}
	d := &p.st.D[dir]
	if d.In && d.Type == frameData && d.PadN >= 0 && uint64(n) <= uint64(d.Left) {
		k := min(uint32(n), d.DataLeft)
		p.body(dir, d.SID, nil, k)
		d.DataLeft -= k
		d.Left -= uint32(n)
		if d.Left == 0 {
			p.end(dir, d, ts)
		}
		return
	}
	p.connErr(ts, ErrGap, strconv.Itoa(n)+" bytes missing "+dir.String())
}

// Close implements tcp.StreamHandler: streams still open are reported.
func (p *Parser) Close(ts int64) {
	if p.st.Closed {
		return
	}
	p.st.Closed = true
	if p.st.Failed != "" {
		return
	}
	msg := ErrTruncated
	if p.st.GoAway != "" {
		msg += " after GOAWAY: " + p.st.GoAway
	}
	for len(p.st.Streams) > 0 {
		s := p.st.Streams[0]
		m := msg
		if s.Final && s.Ended[tcp.ServerToClient] {
			m = "" // the response is complete; the request was not ended
		}
		p.finish(s, m)
	}
	p.release()
}
