// Package tlskeys collects the TLS session secrets that flowlake needs to
// decrypt captured traffic, as NSS key log lines (the SSLKEYLOGFILE
// format), from two sources:
//
//   - Collector: eBPF uprobes on OpenSSL's libssl (1.1.1, 3.x; programs in
//     bpf/tlskeys.c). When SSL_do_handshake, SSL_read or SSL_write (or the
//     _ex variants) return successfully, the programs read the connection's
//     client random and secrets out of OpenSSL's structs, once per
//     connection, and send them through a ring buffer. The struct offsets
//     of each OpenSSL version are data (Table), picked by the "OpenSSL
//     x.y.z" text of the library; only kernel types go through BTF/CO-RE.
//     TLS 1.2 gives CLIENT_RANDOM; TLS 1.3 gives the client and server
//     handshake traffic secrets (derived from handshake_secret and the
//     transcript hash OpenSSL keeps, exactly as OpenSSL derives them), the
//     application traffic secrets and the exporter secret. Processes can
//     be limited by PID or cgroup v2 (in the kernel). Libraries are given
//     by path or found in the system's library directories and in
//     /proc/<pid>/maps (through /proc/<pid>/root for containers).
//   - Follower: key log files that applications write (SSLKEYLOGFILE),
//     followed while they grow, across truncation and rotation.
//
// Secret never prints its secret (String, fmt and slog show only the label
// and the start of the client random); Secret.AppendLine is the one way
// to the key log line.
package tlskeys
