package store

import (
	"bytes"
	"context"
	"fmt"
	"io"
)

// Holds reports whether the object at key holds exactly data: how a writer
// whose conditional create failed with ErrExists tells an earlier upload of
// the same bytes (done) from a different object (a conflict).
func Holds(ctx context.Context, st Store, key string, data []byte) (bool, error) {
	info, err := st.Stat(ctx, key)
	if err != nil {
		return false, fmt.Errorf("compare with the stored object: %w", err)
	}
	if info.Size != int64(len(data)) {
		return false, nil
	}
	rc, err := st.Get(ctx, key)
	if err != nil {
		return false, fmt.Errorf("compare with the stored object: %w", err)
	}
	defer rc.Close()
	have, err := io.ReadAll(io.LimitReader(rc, int64(len(data))+1))
	if err != nil {
		return false, fmt.Errorf("compare with the stored object %s: %w", key, err)
	}
	return bytes.Equal(have, data), nil
}
