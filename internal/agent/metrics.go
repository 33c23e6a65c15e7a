package agent

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metric descriptions. Counters are read from the agent's own counters and
// the kernel's at scrape time, so /metrics and the status reports agree.
var (
	mCaptured = prometheus.NewDesc("flowlake_agent_packets_captured_total",
		"Packets read from the kernel (or the replay) and segmented.", []string{"stream"}, nil)
	mCapturedBytes = prometheus.NewDesc("flowlake_agent_captured_bytes_total",
		"Captured bytes of the packets segmented.", []string{"stream"}, nil)
	mDropped = prometheus.NewDesc("flowlake_agent_packets_dropped_total",
		"Packets the kernel dropped because the stream's ring was full.", []string{"stream"}, nil)
	mFreezes = prometheus.NewDesc("flowlake_agent_ring_queue_freezes_total",
		"TPACKET_V3 ring freezes (the ring was full).", []string{"stream"}, nil)
	mFiltered = prometheus.NewDesc("flowlake_agent_packets_filtered_total",
		"Packets the capture filter rejected (all streams).", nil, nil)
	mOverflow = prometheus.NewDesc("flowlake_agent_packets_overflow_total",
		"Packets of segments dropped because the spool was full or failed.", []string{"stream"}, nil)
	mOverflowSegments = prometheus.NewDesc("flowlake_agent_segments_overflow_total",
		"Segments dropped because the spool was full or failed.", []string{"stream"}, nil)
	mSegments = prometheus.NewDesc("flowlake_agent_segments_spooled_total",
		"Segments cut and written to the spool.", []string{"stream"}, nil)
	mUploaded = prometheus.NewDesc("flowlake_agent_segments_uploaded_total",
		"Segments the object store has (including ones it had already).", []string{"stream"}, nil)
	mExisting = prometheus.NewDesc("flowlake_agent_segments_found_uploaded_total",
		"Segments found in the store already when uploaded (a retry or a restart).", []string{"stream"}, nil)
	mUploadedBytes = prometheus.NewDesc("flowlake_agent_uploaded_bytes_total",
		"Bytes of the segments uploaded (compressed).", []string{"stream"}, nil)
	mErrors = prometheus.NewDesc("flowlake_agent_errors_total",
		"Failed upload attempts, spool failures, conflicts and unusable packets.", []string{"stream"}, nil)
	mNextSeq = prometheus.NewDesc("flowlake_agent_next_sequence",
		"Number of the next segment of the stream.", []string{"stream"}, nil)
	mSpool = prometheus.NewDesc("flowlake_agent_spool_bytes",
		"Bytes waiting in the spool (all objects).", nil, nil)
	mSpoolMax = prometheus.NewDesc("flowlake_agent_spool_max_bytes",
		"Bound of the spool.", nil, nil)
	mPending = prometheus.NewDesc("flowlake_agent_upload_pending",
		"Objects waiting for upload.", nil, nil)
	mKeyLines = prometheus.NewDesc("flowlake_agent_tls_key_lines_total",
		"Distinct TLS key log lines received from the key sources (eBPF, key log files).", nil, nil)
	mKeyDropped = prometheus.NewDesc("flowlake_agent_tls_key_lines_dropped_total",
		"TLS key log lines lost: bound of the lines waiting for a segment, spool failures.", nil, nil)
	mSecretsObjects = prometheus.NewDesc("flowlake_agent_secrets_objects_spooled_total",
		"Secrets objects (secrets/…/<seq>.keylog) written to the spool.", nil, nil)
)

// Describe implements prometheus.Collector.
func (a *Agent) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mCaptured, mCapturedBytes, mDropped, mFreezes, mFiltered, mOverflow, mOverflowSegments,
		mSegments, mUploaded, mExisting, mUploadedBytes, mErrors, mNextSeq, mSpool, mSpoolMax, mPending,
		mKeyLines, mKeyDropped, mSecretsObjects} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (a *Agent) Collect(ch chan<- prometheus.Metric) {
	src := a.cfg.Source.Stats()
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for k, c := range a.c {
		l := strconv.Itoa(k)
		counter(mCaptured, c.captured.Load(), l)
		counter(mCapturedBytes, c.capturedBytes.Load(), l)
		if k < len(src.Streams) {
			counter(mDropped, src.Streams[k].Dropped, l)
			counter(mFreezes, src.Streams[k].QueueFreezes, l)
		}
		counter(mOverflow, c.overflow.Load(), l)
		counter(mOverflowSegments, c.overflowSegments.Load(), l)
		counter(mSegments, c.segments.Load(), l)
		counter(mUploaded, c.segmentsUploaded.Load(), l)
		counter(mExisting, c.segmentsExisting.Load(), l)
		counter(mUploadedBytes, c.bytesUploaded.Load(), l)
		errs := c.errors.Load() + c.invalid.Load()
		if k == 0 {
			errs += a.other.errors.Load()
		}
		counter(mErrors, errs, l)
		gauge(mNextSeq, float64(c.nextSeq.Load()), l)
	}
	counter(mFiltered, src.Filtered)
	gauge(mSpool, float64(a.spool.Bytes("")))
	gauge(mSpoolMax, float64(a.spool.MaxBytes()))
	gauge(mPending, float64(a.up.Pending()))
	counter(mKeyLines, a.keys.received.Load())
	counter(mKeyDropped, a.keys.dropped.Load())
	counter(mSecretsObjects, a.keys.objects.Load())
}

// listenMetrics listens on addr and prepares the /metrics server (Run
// serves it), with the Go runtime and process collectors beside the
// agent's.
func (a *Agent) listenMetrics(addr string) error {
	reg := prometheus.NewRegistry()
	if err := reg.Register(a); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	a.listener = ln
	a.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return nil
}

// MetricsAddr returns the address /metrics listens on ("" when none): the
// port chosen by the system for a MetricsAddr with port 0.
func (a *Agent) MetricsAddr() string {
	if a.listener == nil {
		return ""
	}
	return a.listener.Addr().String()
}
