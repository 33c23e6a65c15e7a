package pipeline

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/lake"
	"github.com/flowlake/flowlake/internal/report"
)

// ingestStatus turns an agent status report into capture_status rows. The
// lake file name derives from the report's key, so a repeated event
// rewrites the same file.
func (p *Pipeline) ingestStatus(ctx context.Context, key string) error {
	body, err := p.getAll(ctx, key)
	if err != nil {
		return fmt.Errorf("ingest %s: %w", key, err)
	}
	st, err := report.Parse(body)
	if err != nil {
		return p.quarantine(ctx, key, "ingest", err)
	}
	if !strings.HasPrefix(key, keys.PrefixStatus+"agent="+st.Agent+"/") {
		return p.quarantine(ctx, key, "ingest", fmt.Errorf("status of agent %q under another agent's prefix", st.Agent))
	}
	name := "status-" + st.Agent + "-" + strings.TrimSuffix(path.Base(key), keys.ExtStatus)
	w := lake.NewWriter(lake.StoreSink{Store: p.cfg.Store}, lake.Options{Name: name})
	for _, r := range st.Rows() {
		w.CaptureStatus.Add(r)
	}
	if _, err := w.Close(ctx); err != nil {
		return fmt.Errorf("ingest %s: %w", key, err)
	}
	return nil
}
