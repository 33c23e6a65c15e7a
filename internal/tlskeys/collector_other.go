//go:build !linux

package tlskeys

import (
	"context"
	"fmt"
	"runtime"
)

// Collector is only available on Linux.
type Collector struct{}

// Open fails: eBPF is Linux only.
func Open(Config) (*Collector, error) {
	return nil, fmt.Errorf("tlskeys: %w on %s (Linux only)", ErrNoBPF, runtime.GOOS)
}

// Run returns at once.
func (c *Collector) Run(context.Context, func(Secret)) error { return nil }

// Stats returns zeros.
func (c *Collector) Stats() Stats { return Stats{} }

// Libraries returns none.
func (c *Collector) Libraries() []Library { return nil }

// Close does nothing.
func (c *Collector) Close() error { return nil }

// CgroupID fails: cgroups are Linux only.
func CgroupID(path string) (uint64, error) {
	return 0, fmt.Errorf("cgroup %s: cgroups are Linux only", path)
}
