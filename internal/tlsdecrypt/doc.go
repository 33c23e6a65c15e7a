// Package tlsdecrypt decrypts captured TLS connections with the secrets of
// NSS key logs (SSLKEYLOGFILE, eBPF-collected keys, pcapng Decryption
// Secrets Blocks), so that the application protocol inside can be parsed
// like plain text.
//
// It covers TLS 1.0–1.2 (the PRF key expansion with MD5/SHA-1, SHA-256
// and SHA-384; AES-GCM, ChaCha20-Poly1305, AES- and 3DES-CBC with
// HMAC-SHA1/SHA-256/SHA-384 in MAC-then-encrypt and encrypt-then-MAC
// (RFC 7366), RC4) and TLS 1.3 (HKDF-Expand-Label traffic keys for
// AES-128/256-GCM and ChaCha20-Poly1305, handshake and application
// epochs, KeyUpdate; 0-RTT early data under CLIENT_EARLY_TRAFFIC_SECRET,
// skipped like a server that rejected it when that is not logged). The
// suites are a table (suites.go).
// Any key exchange works, RSA included, and resumed sessions too: the key
// log gives the master secret (CLIENT_RANDOM) or the traffic secrets of
// every connection by its client random. For the RSA key exchange an NSS
// "RSA" line may give the premaster secret instead, by the first 8 bytes
// of the encrypted premaster secret of the ClientKeyExchange: the master
// secret is derived from it with the randoms, or, when the extended
// master secret (RFC 7627) was negotiated, with the hash of the handshake
// messages, which the Conn keeps until the ClientKeyExchange (rsa.go).
//
// A Conn is the tcp.StreamHandler of one connection: it reassembles
// records across TCP segments, decrypts each direction with its sequence
// numbers, and hands application data to a plaintext handler. Its state
// can be marshalled and restored in another process (the engine's
// checkpoints) and never contains a secret: on restore the keys are
// derived again from the key log by client random. Nothing here formats a
// secret into a string, a log line or an error.
package tlsdecrypt
