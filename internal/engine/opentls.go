package engine

import "github.com/flowlake/flowlake/internal/keylog"

// OpenTLS returns a filter of client randoms: true for the TLS sessions of
// the connections still open, whose keys the next segment needs (the
// pipeline carries only those in state/).
func (e *Engine) OpenTLS() func(clientRandom [32]byte) bool { return e.openTLS() }

// Keys returns the engine's key log: Config.Keys, what AddKeys added and
// the master secrets derived from RSA key log lines during the parse. The
// pipeline carries the open sessions' part of it to the next segment.
func (e *Engine) Keys() *keylog.Log { return e.keys }
