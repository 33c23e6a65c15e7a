package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/flowlake/flowlake/internal/capture"
	"github.com/flowlake/flowlake/internal/keylog"
	"github.com/flowlake/flowlake/schema"
)

// StatusSink receives parse_status rows.
type StatusSink interface {
	ParseStatus(*schema.ParseStatus)
}

// FileReport is the outcome of one input file.
type FileReport struct {
	capture.Result
	DecodeErrors int64
	FirstError   string // first frame that failed to decode, for the user
}

// Summary is the outcome of ParseFiles.
type Summary struct {
	Stats    Stats
	Files    []FileReport
	Elapsed  time.Duration
	InBytes  int64 // bytes read from disk (compressed size)
	Canceled bool
}

// FilesOptions configures ParseFiles.
type FilesOptions struct {
	// Progress, if set, is called now and then with the bytes consumed so
	// far and the total size of the input files.
	Progress func(done, total int64)
	// Now returns the wall clock for parse_status.parsed_at; nil: time.Now.
	Now func() time.Time
}

// ParseFiles reads the capture files in order as one continuous capture,
// runs the engine over them and emits the rows to out, plus one
// parse_status row per file to status. Damaged files are reported in the
// summary and their parse_status row, and parsing goes on with the next
// file. Cancelling ctx stops reading; the rows of what was read are still
// emitted.
func ParseFiles(ctx context.Context, files []string, cfg Config, out Sink, status StatusSink, opt FilesOptions) (Summary, error) {
	if len(files) == 0 {
		return Summary{}, errors.New("no capture files given")
	}
	now := opt.Now
	if now == nil {
		now = time.Now
	}
	start := time.Now()
	e := New(cfg, out)
	src := capture.Open(files)
	defer src.Close()
	total := src.TotalSize()
	if opt.Progress != nil {
		src.Progress = func(done int64) { opt.Progress(done, total) }
	}
	var sum Summary
	prev := e.Stats()
	var fileErrs, filePkts int64
	var firstErr string
	src.OnFileDone = func(r capture.Result) {
		cur := e.Stats()
		rep := FileReport{Result: r, DecodeErrors: fileErrs, FirstError: firstErr}
		sum.Files = append(sum.Files, rep)
		sum.InBytes += r.Size
		if status != nil {
			status.ParseStatus(statusRow(cfg.Agent, rep, prev, cur, now()))
		}
		prev, fileErrs, filePkts, firstErr = cur, 0, 0, ""
	}
	var p capture.Packet
	for n := 0; ; n++ {
		if n&4095 == 0 && ctx.Err() != nil {
			sum.Canceled = true
			break
		}
		err := src.Next(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return sum, err
		}
		filePkts++
		if sec := src.TakeSecrets(); len(sec) > 0 {
			// pcapng Decryption Secrets Blocks: keys for what follows.
			keys := keylog.New()
			if err := keys.Read(bytes.NewReader(sec)); err == nil {
				e.AddKeys(keys)
			}
		}
		if err := e.Frame(p.Link, p.TS, p.Data); err != nil {
			fileErrs++
			if firstErr == "" {
				firstErr = fmt.Sprintf("%s packet %d: %v", filepath.Base(p.FileName), filePkts, err)
			}
		}
	}
	e.Finish()
	sum.Stats = e.Stats()
	sum.Elapsed = time.Since(start)
	if opt.Progress != nil {
		opt.Progress(total, total)
	}
	return sum, nil
}

func statusRow(agent string, r FileReport, prev, cur Stats, parsedAt time.Time) *schema.ParseStatus {
	st := "ok"
	msg := ""
	if r.Err != nil {
		st, msg = "error", r.Err.Error()
	} else if r.FirstError != "" {
		msg = fmt.Sprintf("%d frames not decoded; first: %s", r.DecodeErrors, r.FirstError)
	}
	return &schema.ParseStatus{
		TS:            r.FirstTS / 1000,
		TSEnd:         r.LastTS / 1000,
		ParsedAt:      parsedAt.UnixMicro(),
		Agent:         agent,
		Input:         r.Name,
		Packets:       r.Packets,
		Bytes:         r.Bytes,
		Decoded:       (cur.Decode.TCP + cur.Decode.UDP) - (prev.Decode.TCP + prev.Decode.UDP),
		DecodeErrors:  r.DecodeErrors,
		Truncated:     cur.Decode.Truncated - prev.Decode.Truncated,
		TCPConns:      cur.TCPConns - prev.TCPConns,
		HTTPExchanges: cur.HTTPExchanges - prev.HTTPExchanges,
		HTTPErrors:    cur.HTTPErrors - prev.HTTPErrors,
		DNSQueries:    cur.DNSQueries - prev.DNSQueries,
		TLSHandshakes: cur.TLSHandshakes - prev.TLSHandshakes,
		MissingBytes:  cur.TCP.MissingBytes - prev.TCP.MissingBytes,
		LimitHits:     cur.TCP.LimitHits - prev.TCP.LimitHits,
		Status:        st,
		Error:         msg,
	}
}

// Collector is a Sink and StatusSink that keeps every row in memory (tests,
// small inputs).
type Collector struct {
	HTTPRows   []schema.HTTP
	TCPRows    []schema.TCP
	DNSRows    []schema.DNS
	TLSRows    []schema.TLS
	StatusRows []schema.ParseStatus
}

// HTTP implements Sink.
func (c *Collector) HTTP(r *schema.HTTP) { c.HTTPRows = append(c.HTTPRows, *r) }

// TCP implements Sink.
func (c *Collector) TCP(r *schema.TCP) { c.TCPRows = append(c.TCPRows, *r) }

// DNS implements Sink.
func (c *Collector) DNS(r *schema.DNS) { c.DNSRows = append(c.DNSRows, *r) }

// TLS implements Sink.
func (c *Collector) TLS(r *schema.TLS) { c.TLSRows = append(c.TLSRows, *r) }

// ParseStatus implements StatusSink.
func (c *Collector) ParseStatus(r *schema.ParseStatus) { c.StatusRows = append(c.StatusRows, *r) }
