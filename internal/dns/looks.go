package dns

// headerLen is the size of the fixed DNS header.
const headerLen = 12

// minRRLen is the smallest possible resource record: a root owner name,
// type, class, TTL and a zero rdata length.
const minRRLen = 1 + 2 + 2 + 4 + 2

// Looks is a cheap plausibility test for a UDP payload seen on a port that
// is not a DNS port (53, 5353, 5355): it accepts a complete message with a
// sane header, exactly one question whose name is uncompressed and well
// formed, a sane question class, and section counts that fit in the
// remaining bytes. NetBIOS name service messages, which share the format,
// are rejected. It does not allocate.
func Looks(b []byte) bool {
	return looks(b, true)
}

// looks implements Looks. When complete is false, b may be a prefix of a
// message (used when resynchronising a TCP stream before the whole
// candidate has arrived): it then rejects only what is already implausible.
func looks(b []byte, complete bool) bool {
	if len(b) < headerLen {
		return !complete && headerPrefixOK(b)
	}
	if !headerPrefixOK(b) {
		return false
	}
	qd := int(b[4])<<8 | int(b[5])
	an := int(b[6])<<8 | int(b[7])
	ns := int(b[8])<<8 | int(b[9])
	ar := int(b[10])<<8 | int(b[11])
	if qd != 1 {
		return false
	}
	response := b[2]&0x80 != 0
	opcode := (b[2] >> 3) & 0xF
	if !response && opcode == 0 && (an != 0 || ns != 0 || b[3]&0xF != 0) {
		// A standard query carries no answers, no authority and rcode 0.
		return false
	}
	// Walk the question name: labels of at most 63 bytes, no compression
	// (nothing precedes it to point at), at most 255 bytes in all.
	off := headerLen
	total := 0
	for {
		if off >= len(b) {
			return !complete
		}
		l := int(b[off])
		off++
		if l == 0 {
			break
		}
		if l > 63 {
			return false
		}
		total += l + 1
		if total > 255 {
			return false
		}
		off += l
	}
	if off+4 > len(b) {
		return !complete
	}
	qtype := int(b[off])<<8 | int(b[off+1])
	qclass := (int(b[off+2])<<8 | int(b[off+3])) &^ 0x8000 // mDNS unicast-response bit
	off += 4
	if qtype == 0 || isNBNS(b[headerLen:], qtype) {
		return false
	}
	switch qclass {
	case 1, 3, 4, 254, 255: // IN, CH, HS, NONE, ANY
	default:
		return false
	}
	rest := len(b) - off
	if !complete {
		return true
	}
	return (an+ns+ar)*minRRLen <= rest
}

// headerPrefixOK checks the flag bytes of a header (as far as present):
// a known opcode, the reserved Z bit clear, and a known rcode.
func headerPrefixOK(b []byte) bool {
	if len(b) < 4 {
		return true
	}
	switch (b[2] >> 3) & 0xF {
	case 0, 1, 2, 4, 5, 6: // QUERY, IQUERY, STATUS, NOTIFY, UPDATE, DSO
	default:
		return false
	}
	if b[3]&0x40 != 0 { // Z
		return false
	}
	return b[3]&0xF <= 10
}

// isNBNS reports whether a question with name (starting at its first
// length byte) and qtype is a NetBIOS name service question (RFC 1002),
// which shares the DNS message format: qtype NB or NBSTAT and a first label
// of 32 characters from 'A' to 'P' (the "half-ASCII" encoded NetBIOS name).
func isNBNS(name []byte, qtype int) bool {
	if (qtype != 0x20 && qtype != 0x21) || len(name) < 33 || name[0] != 32 {
		return false
	}
	for _, c := range name[1:33] {
		if c < 'A' || c > 'P' {
			return false
		}
	}
	return true
}
