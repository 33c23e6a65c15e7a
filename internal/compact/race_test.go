//go:build race

package compact

// raceEnabled reports whether the race detector is on; it slows the
// stress test's readers and compactors several times.
const raceEnabled = true
