package store

import "context"

// NewS3Unchecked is NewS3 without the bucket check, so that tests reach the
// errors of the individual operations.
func NewS3Unchecked(ctx context.Context, opts S3Options) (*S3, error) {
	return newS3(ctx, opts, false)
}
