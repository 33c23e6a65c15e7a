package tlsdecrypt

import (
	"bytes"
	"crypto/tls"
	"runtime"
	"testing"

	"github.com/flowlake/flowlake/internal/keylog"
	"github.com/flowlake/flowlake/internal/tcp"
	"github.com/flowlake/flowlake/internal/tlsdecrypt/tlstest"
)

// discard is a plaintext handler that counts bytes.
type discard struct{ n int }

func (d *discard) Data(_ tcp.Dir, _ int64, b []byte) { d.n += len(b) }
func (d *discard) Gap(tcp.Dir, int64, int)           {}
func (d *discard) Close(int64)                       {}

// bulkSession records a session that moves n messages of size bytes each
// way, cut into 1400-byte pieces as TCP segments would deliver them.
func bulkSession(tb testing.TB, client, server *tls.Config, n, size int) ([]tlstest.Chunk, *keylog.Log, int) {
	tb.Helper()
	var reqs [][]byte
	for i := range n {
		reqs = append(reqs, bytes.Repeat([]byte{byte('a' + i%26)}, size))
	}
	answer := bytes.Repeat([]byte("z"), size)
	sess, kl, err := tlstest.GoSession(tb, client, server, reqs, func(int) []byte { return answer })
	if err != nil {
		tb.Fatal(err)
	}
	keys := keylog.New()
	if err := keys.Read(bytes.NewReader(kl)); err != nil {
		tb.Fatal(err)
	}
	var chunks []tlstest.Chunk
	total := 0
	for _, c := range sess.Chunks {
		for b := c.Data; len(b) > 0; {
			k := min(len(b), 1400)
			chunks = append(chunks, tlstest.Chunk{FromClient: c.FromClient, Data: b[:k]})
			total += k
			b = b[k:]
		}
	}
	return chunks, keys, total
}

func feed(c *Conn, chunks []tlstest.Chunk) {
	for _, ch := range chunks {
		dir := tcp.ServerToClient
		if ch.FromClient {
			dir = tcp.ClientToServer
		}
		c.Data(dir, 1, ch.Data)
	}
}

// benchSuites are the configurations of BenchmarkDecrypt.
func benchSuites(tb testing.TB) []struct {
	name           string
	client, server *tls.Config
} {
	certs := tlstest.NewCerts(tb)
	tls12 := func(id uint16, cert tls.Certificate) (*tls.Config, *tls.Config) {
		return &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{id}},
			&tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{id}}
	}
	type s = struct {
		name           string
		client, server *tls.Config
	}
	var out []s
	add := func(name string, id uint16, cert tls.Certificate) {
		c, sv := tls12(id, cert)
		out = append(out, s{name, c, sv})
	}
	out = append(out, s{"TLS13-AES128GCM", &tls.Config{InsecureSkipVerify: true},
		&tls.Config{Certificates: []tls.Certificate{certs.ECDSA}}})
	add("TLS12-AES128GCM", tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, certs.ECDSA)
	add("TLS12-AES256GCM", tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, certs.ECDSA)
	add("TLS12-CHACHA20", tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, certs.ECDSA)
	add("TLS12-AES128CBC-SHA", tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, certs.ECDSA)
	add("TLS12-AES128CBC-SHA256", tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, certs.ECDSA)
	return out
}

// BenchmarkDecrypt measures decryption throughput: a recorded 4 MB
// session (2 MB each way) fed in TCP-segment pieces to a Conn, handshake
// included; bytes are captured TLS bytes.
func BenchmarkDecrypt(b *testing.B) {
	for _, s := range benchSuites(b) {
		b.Run(s.name, func(b *testing.B) {
			chunks, keys, total := bulkSession(b, s.client, s.server, 16, 128<<10)
			buf := &Buffer{}
			b.SetBytes(int64(total))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				d := &discard{}
				c := NewConn(Config{Keys: keys, Buffer: buf, Plain: func(string) tcp.StreamHandler { return d }})
				feed(c, chunks)
				c.Close(2)
				if d.n != 2*16*128<<10 {
					b.Fatalf("%d plaintext bytes", d.n)
				}
			}
		})
	}
}

// Decrypting records allocates nothing once the handshake is through:
// buffers and cipher state are reused from record to record.
func TestNoAllocationPerRecord(t *testing.T) {
	for _, s := range benchSuites(t) {
		t.Run(s.name, func(t *testing.T) {
			chunks, keys, _ := bulkSession(t, s.client, s.server, 64, 32<<10)
			// The handshake and the first messages, then the rest
			// measured: 64 messages of 32 KiB each way are >= 256
			// records.
			warm := len(chunks) / 4
			d := &discard{}
			c := NewConn(Config{Keys: keys, Plain: func(string) tcp.StreamHandler { return d }})
			feed(c, chunks[:warm])
			if !c.out.Decrypted {
				t.Fatalf("not decrypted after %d chunks: %+v", warm, c.out)
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			feed(c, chunks[warm:])
			runtime.ReadMemStats(&after)
			if n := after.Mallocs - before.Mallocs; n > 8 {
				t.Errorf("%d allocations while decrypting %d chunks", n, len(chunks)-warm)
			}
			c.Close(2)
			if d.n != 2*64*32<<10 {
				t.Fatalf("%d plaintext bytes", d.n)
			}
		})
	}
}
