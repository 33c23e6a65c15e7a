package engine

import (
	"github.com/flowlake/flowlake/internal/lake"
	"github.com/flowlake/flowlake/schema"
)

// LakeSink adapts a lake.Writer to Sink and StatusSink.
type LakeSink struct{ W *lake.Writer }

// HTTP implements Sink.
func (s LakeSink) HTTP(r *schema.HTTP) { s.W.AddHTTP(r) }

// TCP implements Sink.
func (s LakeSink) TCP(r *schema.TCP) { s.W.AddTCP(r) }

// DNS implements Sink.
func (s LakeSink) DNS(r *schema.DNS) { s.W.AddDNS(r) }

// TLS implements Sink.
func (s LakeSink) TLS(r *schema.TLS) { s.W.TLS.Add(*r) }

// ParseStatus implements StatusSink.
func (s LakeSink) ParseStatus(r *schema.ParseStatus) { s.W.ParseStatus.Add(*r) }
