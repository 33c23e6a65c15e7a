package lake

import (
	"bytes"
	"context"

	"github.com/flowlake/flowlake/internal/store"
)

// StoreSink writes lake objects to an object store (a local directory, S3
// or MinIO). Each object is one Put, so readers never see a partial file.
type StoreSink struct{ Store store.Store }

// Put implements Sink.
func (s StoreSink) Put(ctx context.Context, key string, body []byte) error {
	return s.Store.Put(ctx, key, bytes.NewReader(body), int64(len(body)))
}
