package keylog

import (
	"bufio"
	"encoding/hex"
	"io"
	"slices"
)

// Merge adds every secret of o to l (o's value wins for a label both hold).
func (l *Log) Merge(o *Log) {
	if o == nil {
		return
	}
	for cr, src := range o.m {
		dst := l.m[cr]
		if dst == nil {
			dst = make(Secrets, len(src))
			l.m[cr] = dst
		}
		for label, secret := range src {
			dst[label] = secret
		}
	}
	for prefix, pms := range o.rsa {
		l.rsa[prefix] = pms
	}
}

// Write writes, in the NSS format that Read reads, the secrets of the
// sessions for which keep returns true (all of them when keep is nil),
// sorted by client random and label so that equal logs give equal bytes.
// RSA lines are not keyed by client random: they are written, sorted and
// after the others, only when keep is nil (a filtered Write carries the
// master secrets that decryption derived from them and recorded with
// Add). It is meant for the parse state that carries keys from one
// segment to the next; the output holds secrets and must never reach a
// log.
func (l *Log) Write(w io.Writer, keep func(clientRandom [32]byte) bool) error {
	crs := make([][32]byte, 0, len(l.m))
	for cr := range l.m {
		if keep == nil || keep(cr) {
			crs = append(crs, cr)
		}
	}
	slices.SortFunc(crs, func(a, b [32]byte) int { return slices.Compare(a[:], b[:]) })
	bw := bufio.NewWriter(w)
	var buf []byte
	for _, cr := range crs {
		s := l.m[cr]
		labels := make([]string, 0, len(s))
		for label := range s {
			labels = append(labels, label)
		}
		slices.Sort(labels)
		for _, label := range labels {
			buf = append(buf[:0], label...)
			buf = append(buf, ' ')
			buf = hex.AppendEncode(buf, cr[:])
			buf = append(buf, ' ')
			buf = hex.AppendEncode(buf, s[label])
			buf = append(buf, '\n')
			if _, err := bw.Write(buf); err != nil {
				return err
			}
		}
	}
	if keep == nil {
		if err := l.writeRSA(bw, buf); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// WriteRSA writes the RSA lines only, sorted: those a filtered Write
// leaves out.
func (l *Log) WriteRSA(w io.Writer) error {
	bw := bufio.NewWriter(w)
	if err := l.writeRSA(bw, nil); err != nil {
		return err
	}
	return bw.Flush()
}

func (l *Log) writeRSA(bw *bufio.Writer, buf []byte) error {
	prefixes := make([][RSAPrefixLen]byte, 0, len(l.rsa))
	for p := range l.rsa {
		prefixes = append(prefixes, p)
	}
	slices.SortFunc(prefixes, func(a, b [RSAPrefixLen]byte) int { return slices.Compare(a[:], b[:]) })
	for _, p := range prefixes {
		buf = append(buf[:0], RSA+" "...)
		buf = hex.AppendEncode(buf, p[:])
		buf = append(buf, ' ')
		buf = hex.AppendEncode(buf, l.rsa[p])
		buf = append(buf, '\n')
		if _, err := bw.Write(buf); err != nil {
			return err
		}
	}
	return nil
}
