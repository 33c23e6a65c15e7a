package query

import (
	"container/list"
	"sync"

	"github.com/apache/arrow-go/v18/parquet/metadata"
)

// footerCache keeps parsed Parquet footers by object key, valid while the
// object's size and ETag are unchanged (lake files are immutable, but a
// retried parse rewrites a file under the same key). Least recently used
// entries are evicted beyond max.
type footerCache struct {
	mu  sync.Mutex
	max int
	m   map[string]*list.Element
	lru list.List // of *footerEntry, most recent first
}

type footerEntry struct {
	key  string
	size int64
	etag string
	md   *metadata.FileMetaData
}

func newFooterCache(max int) *footerCache {
	return &footerCache{max: max, m: make(map[string]*list.Element)}
}

// get returns the cached footer of key if it was stored for the same size
// and ETag.
func (c *footerCache) get(key string, size int64, etag string) *metadata.FileMetaData {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.m[key]
	if !ok {
		return nil
	}
	e := el.Value.(*footerEntry)
	if e.size != size || e.etag != etag {
		c.lru.Remove(el)
		delete(c.m, key)
		return nil
	}
	c.lru.MoveToFront(el)
	return e.md
}

// put stores a footer.
func (c *footerCache) put(key string, size int64, etag string, md *metadata.FileMetaData) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[key]; ok {
		c.lru.Remove(el)
	}
	c.m[key] = c.lru.PushFront(&footerEntry{key: key, size: size, etag: etag, md: md})
	for c.lru.Len() > c.max {
		last := c.lru.Back()
		c.lru.Remove(last)
		delete(c.m, last.Value.(*footerEntry).key)
	}
}
