package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters of new hashes: OWASP's recommendation (19 MiB, two
// passes, one lane). Verification reads the parameters from the stored
// hash, so they can change without invalidating old hashes.
var hashParams = argonParams{memory: 19 * 1024, time: 2, threads: 1, keyLen: 32}

// maxHashing bounds the argon2id computations running at once, and so the
// memory they take (19 MiB each).
const maxHashing = 4

var hashSlots = make(chan struct{}, maxHashing)

// MinPasswordLen is the shortest password accepted for a user.
const MinPasswordLen = 8

// maxSecretLen bounds passwords and API keys (argon2 reads all of it).
const maxSecretLen = 1024

type argonParams struct {
	memory  uint32 // KiB
	time    uint32
	threads uint8
	keyLen  uint32
}

// hashSecret returns the argon2id PHC string of secret:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash> (unpadded standard base64).
func hashSecret(ctx context.Context, secret string) (string, error) {
	if len(secret) > maxSecretLen {
		return "", fmt.Errorf("%w: longer than %d bytes", ErrInvalid, maxSecretLen)
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	p := hashParams
	release, err := acquireHashSlot(ctx)
	if err != nil {
		return "", err
	}
	sum := argon2.IDKey([]byte(secret), salt, p.time, p.memory, p.threads, p.keyLen)
	release()
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.memory, p.time, p.threads,
		b64.EncodeToString(salt), b64.EncodeToString(sum)), nil
}

func acquireHashSlot(ctx context.Context) (func(), error) {
	select {
	case hashSlots <- struct{}{}:
		return func() { <-hashSlots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// errBadHash reports a stored hash that is not an argon2id PHC string.
var errBadHash = errors.New("stored hash is not an argon2id PHC string")

// checkSecret reports whether secret matches the PHC string hash, in time
// independent of where they differ.
func checkSecret(ctx context.Context, hash, secret string) (bool, error) {
	if len(secret) > maxSecretLen {
		return false, nil
	}
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return false, errBadHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, fmt.Errorf("%w: version %q", errBadHash, parts[2])
	}
	var p argonParams
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memory, &p.time, &p.threads); err != nil {
		return false, fmt.Errorf("%w: parameters %q", errBadHash, parts[3])
	}
	if p.memory < 8 || p.memory > 1<<20 || p.time < 1 || p.time > 16 || p.threads < 1 {
		return false, fmt.Errorf("%w: parameters %q out of range", errBadHash, parts[3])
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false, fmt.Errorf("%w: salt", errBadHash)
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) < 16 || len(want) > 64 {
		return false, fmt.Errorf("%w: hash", errBadHash)
	}
	release, err := acquireHashSlot(ctx)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(secret), salt, p.time, p.memory, p.threads, uint32(len(want)))
	release()
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// dummyHash is checked against when there is no account, so that a login
// for an unknown name takes as long as one for a known name.
var dummyHash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$8Xm3sL7zcmX9k1Q3bM3Pq1Yy5bL4m8sZ2Q1Wb7gH3kE"

// checkPassword validates a new password.
func checkPassword(pw string) error {
	switch {
	case len(pw) < MinPasswordLen:
		return fmt.Errorf("%w: password shorter than %d characters", ErrInvalid, MinPasswordLen)
	case len(pw) > maxSecretLen:
		return fmt.Errorf("%w: password longer than %d bytes", ErrInvalid, maxSecretLen)
	}
	return nil
}

// randomToken returns n random bytes, base64url-encoded without padding.
func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand.Read never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// GeneratePassword returns a random password of 20 characters.
func GeneratePassword() string { return randomToken(15) }
