package engine

import "net/netip"

// Sources of host names, strongest first: a name the client itself resolved
// beats the TLS SNI, which beats an HTTP Host header.
const (
	rankHost = iota + 1
	rankSNI
	rankDNS
	rankStatic
)

type nameEntry struct {
	name string
	rank int8
}

// names maps addresses to host names learned from the traffic. Names apply
// to rows emitted after they are learned, so the result does not depend on
// where a capture is split. The table is bounded; when full it starts over
// (and counts the reset).
type names struct {
	m      map[netip.Addr]nameEntry
	max    int
	resets int64
}

func newNames(max int) *names {
	if max <= 0 {
		max = 1 << 20
	}
	return &names{m: make(map[netip.Addr]nameEntry), max: max}
}

func (n *names) learn(ip netip.Addr, name string, rank int8) {
	if name == "" || !ip.IsValid() {
		return
	}
	ip = ip.Unmap()
	if old, ok := n.m[ip]; ok && (old.rank > rank || old.name == name) {
		return
	}
	if len(n.m) >= n.max {
		static := map[netip.Addr]nameEntry{}
		for k, v := range n.m {
			if v.rank == rankStatic {
				static[k] = v
			}
		}
		n.m = static
		n.resets++
	}
	n.m[ip] = nameEntry{name: name, rank: rank}
}

func (n *names) lookup(ip netip.Addr) string {
	return n.m[ip.Unmap()].name
}
