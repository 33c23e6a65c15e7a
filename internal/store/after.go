package store

import (
	"context"
	"fmt"
)

// lister is a Store that lists from a key on without reading the keys
// before it (S3 ListObjectsV2 StartAfter).
type lister interface {
	ListAfter(ctx context.Context, prefix, after string, fn func(Info) error) error
}

// ListAfter is List for the keys under prefix that sort after the key
// after. A store that can start a listing there (S3) is asked to; others
// list the prefix and skip the keys before.
func ListAfter(ctx context.Context, st Store, prefix, after string, fn func(Info) error) error {
	if l, ok := st.(lister); ok {
		return l.ListAfter(ctx, prefix, after, fn)
	}
	return st.List(ctx, prefix, func(info Info) error {
		if info.Key <= after {
			return nil
		}
		return fn(info)
	})
}

// ListAfter implements ListAfter: the listing starts after the key after.
func (s *S3) ListAfter(ctx context.Context, prefix, after string, fn func(Info) error) error {
	if err := checkPrefix(prefix); err != nil {
		return fmt.Errorf("s3 list: %w", err)
	}
	return s.list(ctx, prefix, after, fn)
}
