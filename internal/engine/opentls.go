package engine

// OpenTLS returns a filter of client randoms: true for the TLS sessions of
// the connections still open, whose keys the next segment needs (the
// pipeline carries only those in state/).
func (e *Engine) OpenTLS() func(clientRandom [32]byte) bool { return e.openTLS() }
