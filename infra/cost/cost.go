// Package cost models what flowlake costs on AWS per GiB of captured
// traffic: Lambda GB-seconds and invocations, SQS requests, S3 requests and
// storage, Athena bytes scanned. Table computes the lines from what the
// pipeline measurably does with a real capture (Measured: segment and lake
// bytes, S3 requests by class, the bytes a metadata query scans; the tests
// measure them), from stated assumptions (Assumptions: parse speed,
// memory, retention) and from dated prices (Prices). README.md holds the
// table the tests compute; nothing in it is typed by hand.
package cost

import (
	"errors"
	"fmt"
	"strings"
)

// GiB is the unit of captured traffic and of billed storage (AWS bills
// GB-months and GB-seconds in units of 2^30 bytes).
const GiB = 1 << 30

// Prices are AWS list prices in USD.
type Prices struct {
	// Region and Date say where and when the prices were taken; Source
	// lists the pages.
	Region, Date, Source string

	LambdaGBSecond   float64 // per GB-second of the chosen architecture
	LambdaRequest    float64 // per invocation
	SQSRequest       float64 // per request (64 KiB chunk)
	S3PutRequest     float64 // per PUT, COPY, POST or LIST request (S3 Standard)
	S3GetRequest     float64 // per GET, HEAD or other request (S3 Standard)
	S3StandardGBMo   float64 // per GB-month, S3 Standard
	S3StandardIAGBMo float64 // per GB-month, S3 Standard-IA
	S3GlacierIRGBMo  float64 // per GB-month, S3 Glacier Instant Retrieval
	S3TransitionIA   float64 // per lifecycle transition to Standard-IA
	S3TransitionGIR  float64 // per lifecycle transition to Glacier IR
	AthenaPerTB      float64 // per TB (2^40 bytes) scanned
	LogsIngestGB     float64 // per GB of CloudWatch Logs ingested
}

// USEast1 are the us-east-1 list prices the table uses (arm64 Lambda).
var USEast1 = Prices{
	Region: "us-east-1",
	Date:   "2025 list prices (pages of aws.amazon.com/{lambda,s3,sqs,athena,cloudwatch}/pricing/; not re-checked online for this table)",
	Source: "aws.amazon.com/lambda/pricing, /s3/pricing, /sqs/pricing, /athena/pricing, /cloudwatch/pricing",

	LambdaGBSecond:   0.0000133334, // arm64, first 7.5 billion GB-s a month
	LambdaRequest:    0.20 / 1e6,
	SQSRequest:       0.40 / 1e6, // standard queue, after the first million a month
	S3PutRequest:     0.005 / 1000,
	S3GetRequest:     0.0004 / 1000,
	S3StandardGBMo:   0.023, // first 50 TB a month
	S3StandardIAGBMo: 0.0125,
	S3GlacierIRGBMo:  0.004,
	S3TransitionIA:   0.01 / 1000,
	S3TransitionGIR:  0.02 / 1000,
	AthenaPerTB:      5.00,
	LogsIngestGB:     0.50,
}

// Requests counts object-store requests by S3 billing class.
type Requests struct {
	Put  int64 // PUT (also conditional), one per object written
	List int64 // LIST, one per page of up to 1000 keys
	Get  int64 // GET and ranged GET
	Head int64 // HEAD (Stat)
	// Delete requests are free.
	Delete int64
}

// Add returns r + o.
func (r Requests) Add(o Requests) Requests {
	return Requests{Put: r.Put + o.Put, List: r.List + o.List, Get: r.Get + o.Get, Head: r.Head + o.Head, Delete: r.Delete + o.Delete}
}

// Measured is what one run of the pipeline over a real capture did.
type Measured struct {
	// Capture names the capture; CapturedBytes is the sum of the captured
	// lengths of its packets (the traffic flowlake keeps).
	Capture       string
	CapturedBytes int64
	// Segments is how many segments the capture was cut into and
	// SegmentBytes their total size (zstd pcapng, as stored in raw/).
	Segments     int
	SegmentBytes int64
	// LakeFiles and LakeBytes are the Parquet files parse wrote;
	// LargeFiles and LargeBytes those larger than MinTransitionBytes,
	// which the lifecycle rules move to cheaper tiers (smaller ones stay
	// in Standard: S3 bills them as 128 KiB in Standard-IA).
	LakeFiles  int
	LakeBytes  int64
	LargeFiles int
	LargeBytes int64
	// Agent, Ingest and Parse are the requests each made: the agent's
	// uploads, ingest of every segment, parse of every segment and the
	// stream's flush.
	Agent, Ingest, Parse Requests
	// IngestEvents is how many objects ingest handled (segments and
	// status reports).
	IngestEvents int
	// MetadataScanBytes is what a query reading the http columns
	// server_name, server_ip and status scans (their compressed column
	// chunks); HTTPBytes is the whole http table.
	MetadataScanBytes, HTTPBytes int64
}

// Assumptions are the inputs that are not measured by the test.
type Assumptions struct {
	// ParseBytesPerSecond is parse's speed on one core (captured bytes per
	// second), from the README's measured speed.
	ParseBytesPerSecond float64
	// ParseOverheadSeconds is added per parse invocation for the S3
	// round trips (predecessor checkpoint, segment, lake files,
	// checkpoint) the speed above does not include.
	ParseOverheadSeconds float64
	// ParseMemoryMB is parse's memory (1769 MB: one vCPU).
	ParseMemoryMB float64
	// IngestSeconds is the billed duration of one ingest event and
	// IngestMemoryMB its function's memory.
	IngestSeconds, IngestMemoryMB float64
	// LogBytesPerInvocation is the CloudWatch log volume of one invocation.
	LogBytesPerInvocation float64
	// RawDays is how long raw/ segments are kept (lifecycle expiry).
	RawDays float64
	// Lake tiers: days in Standard, then in Standard-IA, then in Glacier
	// IR, until LakeDays.
	LakeStandardDays, LakeIADays, LakeDays float64
	// SQSRequestsPerEvent: S3's send, the poller's receive, the delete.
	SQSRequestsPerEvent float64
}

// Defaults are the assumptions of the README table.
var Defaults = Assumptions{
	ParseBytesPerSecond:   195e6, // README: 195 MB/s on the shared 24 MB real-world mix, one core
	ParseOverheadSeconds:  0.3,
	ParseMemoryMB:         1769,
	IngestSeconds:         0.05,
	IngestMemoryMB:        256,
	LogBytesPerInvocation: 1024,
	RawDays:               14,
	LakeStandardDays:      30,
	LakeIADays:            60,
	LakeDays:              365,
	SQSRequestsPerEvent:   3,
}

// MinTransitionBytes is the size above which the lifecycle rules of the AWS
// module move lake files to Standard-IA and Glacier IR.
const MinTransitionBytes = 128 << 10

// Line is one line of the table: a quantity per captured GiB, its unit
// price and their product.
type Line struct {
	Item      string
	Quantity  float64
	Unit      string
	UnitPrice float64
	USD       float64 // per captured GiB
	Note      string
}

// daysPerMonth converts storage days to billed months.
const daysPerMonth = 30.4375

// Table returns the cost lines per captured GiB.
func Table(m Measured, p Prices, a Assumptions) ([]Line, error) {
	if m.CapturedBytes <= 0 || m.Segments <= 0 || m.LakeBytes <= 0 || a.ParseBytesPerSecond <= 0 {
		return nil, errors.New("cost: measured bytes, segments and parse speed must be positive")
	}
	if m.LargeBytes > m.LakeBytes || m.LargeFiles > m.LakeFiles {
		return nil, fmt.Errorf("cost: %d large lake bytes in %d files of %d bytes in %d files", m.LargeBytes, m.LargeFiles, m.LakeBytes, m.LakeFiles)
	}
	if a.LakeStandardDays+a.LakeIADays > a.LakeDays {
		return nil, fmt.Errorf("cost: %v days in Standard and %v in Standard-IA exceed the %v days kept", a.LakeStandardDays, a.LakeIADays, a.LakeDays)
	}
	perGiB := float64(GiB) / float64(m.CapturedBytes) // scale of the run to one GiB
	segs := float64(m.Segments) * perGiB
	events := float64(m.IngestEvents) * perGiB
	lakeGiB := float64(m.LakeBytes) / float64(m.CapturedBytes)
	largeGiB := float64(m.LargeBytes) / float64(m.CapturedBytes)
	smallGiB := lakeGiB - largeGiB
	rawGiB := float64(m.SegmentBytes) / float64(m.CapturedBytes)
	largeFiles := float64(m.LargeFiles) * perGiB
	all := m.Agent.Add(m.Ingest).Add(m.Parse)

	parseSeconds := float64(GiB)/a.ParseBytesPerSecond + segs*a.ParseOverheadSeconds
	parseGBs := parseSeconds * a.ParseMemoryMB / 1024
	ingestGBs := events * a.IngestSeconds * a.IngestMemoryMB / 1024
	invocations := segs + events // one parse per segment, one ingest per event (SQS batches of 1 at worst)
	months := func(gib, days float64) float64 { return gib * days / daysPerMonth }
	gir := a.LakeDays - a.LakeStandardDays - a.LakeIADays

	lines := []Line{
		{Item: "Lambda parse", Quantity: parseGBs, Unit: "GB-s", UnitPrice: p.LambdaGBSecond,
			Note: fmt.Sprintf("%.1f s parsing at %.0f MB/s + %.0f segments × %.1f s of S3 round trips, at %.0f MB", float64(GiB)/a.ParseBytesPerSecond, a.ParseBytesPerSecond/1e6, segs, a.ParseOverheadSeconds, a.ParseMemoryMB)},
		{Item: "Lambda ingest", Quantity: ingestGBs, Unit: "GB-s", UnitPrice: p.LambdaGBSecond,
			Note: fmt.Sprintf("%.0f events × %.2f s, %.0f MB", events, a.IngestSeconds, a.IngestMemoryMB)},
		{Item: "Lambda invocations", Quantity: invocations, Unit: "requests", UnitPrice: p.LambdaRequest,
			Note: fmt.Sprintf("%.0f parse + %.0f ingest", segs, events)},
		{Item: "SQS (S3 events)", Quantity: events * a.SQSRequestsPerEvent, Unit: "requests", UnitPrice: p.SQSRequest,
			Note: "send, receive, delete per event; the pollers' empty receives are a fixed cost"},
		{Item: "S3 PUT/LIST", Quantity: float64(all.Put+all.List) * perGiB, Unit: "requests", UnitPrice: p.S3PutRequest,
			Note: fmt.Sprintf("per segment: agent %.1f, ingest %.1f, parse %.1f", per(m.Agent.Put+m.Agent.List, m.Segments), per(m.Ingest.Put+m.Ingest.List, m.Segments), per(m.Parse.Put+m.Parse.List, m.Segments))},
		{Item: "S3 GET/HEAD", Quantity: float64(all.Get+all.Head) * perGiB, Unit: "requests", UnitPrice: p.S3GetRequest,
			Note: fmt.Sprintf("per segment: agent %.1f, ingest %.1f, parse %.1f", per(m.Agent.Get+m.Agent.Head, m.Segments), per(m.Ingest.Get+m.Ingest.Head, m.Segments), per(m.Parse.Get+m.Parse.Head, m.Segments))},
		{Item: "S3 raw/ storage", Quantity: rawGiB * a.RawDays / daysPerMonth, Unit: "GB-months", UnitPrice: p.S3StandardGBMo,
			Note: fmt.Sprintf("%.3f GiB of segments per GiB, kept %.0f days", rawGiB, a.RawDays)},
		{Item: "S3 lake, Standard", Quantity: months(largeGiB, a.LakeStandardDays) + months(smallGiB, a.LakeDays), Unit: "GB-months", UnitPrice: p.S3StandardGBMo,
			Note: fmt.Sprintf("%.4f GiB of Parquet per GiB: %.4f in files larger than 128 KiB for %.0f days, %.4f in smaller files for %.0f days", lakeGiB, largeGiB, a.LakeStandardDays, smallGiB, a.LakeDays)},
		{Item: "S3 lake, Standard-IA", Quantity: months(largeGiB, a.LakeIADays), Unit: "GB-months", UnitPrice: p.S3StandardIAGBMo,
			Note: fmt.Sprintf("the files larger than 128 KiB, %.0f days", a.LakeIADays)},
		{Item: "S3 lake, Glacier IR", Quantity: months(largeGiB, gir), Unit: "GB-months", UnitPrice: p.S3GlacierIRGBMo,
			Note: fmt.Sprintf("the same, %.0f days, to day %.0f", gir, a.LakeDays)},
		{Item: "S3 lifecycle transitions", Quantity: largeFiles, Unit: "files", UnitPrice: p.S3TransitionIA + p.S3TransitionGIR,
			Note: fmt.Sprintf("%.0f of %.0f lake files per GiB are larger than 128 KiB (without compaction)", largeFiles, float64(m.LakeFiles)*perGiB)},
		{Item: "CloudWatch Logs", Quantity: invocations * a.LogBytesPerInvocation / GiB, Unit: "GB", UnitPrice: p.LogsIngestGB,
			Note: fmt.Sprintf("%.0f bytes per invocation", a.LogBytesPerInvocation)},
	}
	for i := range lines {
		lines[i].USD = lines[i].Quantity * lines[i].UnitPrice
	}
	return lines, nil
}

// AthenaLine is the cost of one Athena query over the data of one captured
// GiB: a query of the metadata columns scans MetadataScanBytes, a full
// scan of the http table HTTPBytes (Athena bills at least 10 MB a query).
func AthenaLine(m Measured, p Prices, full bool) Line {
	b, what := m.MetadataScanBytes, "server_name, server_ip, status of http"
	if full {
		b, what = m.HTTPBytes, "every column of http (SELECT *)"
	}
	scanned := float64(b) / float64(m.CapturedBytes) * GiB
	l := Line{Item: "Athena query, " + map[bool]string{false: "metadata", true: "full"}[full], Quantity: scanned / (1 << 40), Unit: "TB scanned",
		UnitPrice: p.AthenaPerTB, Note: fmt.Sprintf("%.2f MiB: %s", scanned/(1<<20), what)}
	l.USD = l.Quantity * l.UnitPrice
	return l
}

func per(n int64, segs int) float64 { return float64(n) / float64(segs) }

// Markdown renders the table, its total and the Athena lines.
func Markdown(m Measured, p Prices, a Assumptions) (string, error) {
	lines, err := Table(m, p, a)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Measured on `%s`: %.1f MiB captured, %d segments (%.1f MiB in raw/), %d lake files (%.2f MiB; %d of them, %.2f MiB, larger than 128 KiB).\n",
		m.Capture, mib(m.CapturedBytes), m.Segments, mib(m.SegmentBytes), m.LakeFiles, mib(m.LakeBytes), m.LargeFiles, mib(m.LargeBytes))
	fmt.Fprintf(&b, "Prices: %s, %s.\n\n", p.Region, p.Date)
	b.WriteString("| item | per captured GiB | unit price (USD) | USD per captured GiB | how |\n")
	b.WriteString("| --- | ---: | ---: | ---: | --- |\n")
	total := 0.0
	for _, l := range lines {
		fmt.Fprintf(&b, "| %s | %s %s | %s | %s | %s |\n", l.Item, num(l.Quantity), l.Unit, num(l.UnitPrice), usd(l.USD), l.Note)
		total += l.USD
	}
	fmt.Fprintf(&b, "| **total** (capture, parse, keep a year) | | | **%s** | |\n", usd(total))
	for _, full := range []bool{false, true} {
		l := AthenaLine(m, p, full)
		fmt.Fprintf(&b, "| %s | %s %s | %s | %s | %s; per query over the GiB's data, at least 10 MB billed |\n", l.Item, num(l.Quantity), l.Unit, num(l.UnitPrice), usd(l.USD), l.Note)
	}
	return b.String(), nil
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// num prints a quantity with 3 significant digits.
func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	default:
		return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3g", v), "0"), ".")
	}
}

// usd prints an amount in dollars with 3 significant digits.
func usd(v float64) string {
	if v >= 0.01 {
		return fmt.Sprintf("$%.3f", v)
	}
	return "$" + num(v)
}
