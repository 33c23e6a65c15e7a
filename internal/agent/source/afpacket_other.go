//go:build !linux

package source

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"

	"github.com/gopacket/gopacket/layers"
)

// DefaultRingBytes is the default ring size of one stream.
const DefaultRingBytes = 64 << 20

// MaxStreams bounds K.
const MaxStreams = 64

// AFPacketConfig configures an AF_PACKET source (Linux only).
type AFPacketConfig struct {
	Interface   string
	Streams     int
	Filter      string
	RingBytes   int
	Promiscuous bool
	Netns       string
	Log         *slog.Logger
}

// AFPacket is the AF_PACKET source, which exists on Linux only.
type AFPacket struct{}

// OpenAFPacket fails: AF_PACKET is a Linux socket family.
func OpenAFPacket(cfg AFPacketConfig) (*AFPacket, error) {
	return nil, fmt.Errorf("capture on %s: %w: AF_PACKET exists on Linux only (this is %s); replay capture files with --pcap", cfg.Interface, ErrUnsupported, runtime.GOOS)
}

// NetnsPath returns ns: network namespaces exist on Linux only.
func NetnsPath(ns string) string { return ns }

func (a *AFPacket) Interface() string               { return "" }
func (a *AFPacket) Streams() int                    { return 0 }
func (a *AFPacket) LinkType() layers.LinkType       { return 0 }
func (a *AFPacket) Run(context.Context, Emit) error { return ErrUnsupported }
func (a *AFPacket) Stats() Stats                    { return Stats{} }
func (a *AFPacket) Close() error                    { return nil }
