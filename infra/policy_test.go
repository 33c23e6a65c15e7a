package infra

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowlake/flowlake/internal/agent/hosts"
	"github.com/flowlake/flowlake/internal/keys"
)

// The S3 policy documents in terraform/policies, shared by the AWS and the
// MinIO module, and what each may do. The tests below check the documents
// against these tables by evaluating them on object keys built by package
// keys; minio_test.go applies them to a real MinIO and checks the same
// from the outside.

// policyDir is where the shared S3 policy documents are.
const policyDir = "terraform/policies"

// Test values of the templates' variables.
const (
	testBucket = "flowlake-test"
	testAgent  = "node-1"
	otherAgent = "node-2"
)

// writePrefixes are the documented prefixes each document may write (put,
// delete, abort uploads) below the bucket, with ${agent} standing for the
// agent's id.
var writePrefixes = map[string][]string{
	"agent":  {"raw/agent=${agent}/", "secrets/agent=${agent}/", "status/agent=${agent}/", "config/agents/${agent}/"},
	"ingest": {"state/", "lake/capture_status/", "quarantine/"},
	"parse":  {"state/", "lake/", "quarantine/"},
	"query":  {"config/"},
}

// sample keys, built the way flowlake builds them.
var (
	sampleTime    = time.Date(2024, 1, 1, 7, 0, 0, 0, time.UTC)
	ownStream     = keys.Stream{Agent: testAgent, Stream: 0}
	otherStream   = keys.Stream{Agent: otherAgent, Stream: 1}
	ownSegment    = keys.Segment(ownStream, 3, sampleTime)
	otherSegment  = keys.Segment(otherStream, 3, sampleTime)
	ownSecrets    = keys.Secrets(ownStream, 3, sampleTime)
	otherSecrets  = keys.Secrets(otherStream, 3, sampleTime)
	ownStatus     = keys.Status(testAgent, sampleTime)
	otherStatus   = keys.Status(otherAgent, sampleTime)
	ownHosts      = hosts.Key(testAgent)
	otherHosts    = hosts.Key(otherAgent)
	stateKey      = keys.State(ownStream, 3)
	indexKey      = keys.SegmentIndex(ownStream, 3)
	lakeHTTP      = keys.Lake("http", keys.LakePartition(sampleTime), "seg-x")
	lakeStatus    = keys.Lake("capture_status", keys.LakePartition(sampleTime), "status-x")
	quarantineKey = keys.QuarantineError(ownSegment)
	viewKey       = keys.Config("views", "errors")
)

// access is one expectation: whether doc allows action on key.
type access struct {
	action string
	key    string
	want   bool
}

// expectations lists, per document, what it must and must not allow.
var expectations = map[string][]access{
	"agent": {
		{"s3:PutObject", ownSegment, true}, {"s3:PutObject", ownSecrets, true}, {"s3:PutObject", ownStatus, true},
		{"s3:PutObject", ownHosts, true},
		{"s3:GetObject", ownSegment, true}, {"s3:GetObject", ownSecrets, true}, // read back after ErrExists
		{"s3:PutObject", otherSegment, false}, {"s3:PutObject", otherSecrets, false}, {"s3:PutObject", otherStatus, false},
		{"s3:PutObject", otherHosts, false},
		{"s3:GetObject", otherSegment, false}, {"s3:GetObject", otherSecrets, false}, {"s3:GetObject", ownStatus, false},
		{"s3:PutObject", lakeHTTP, false}, {"s3:PutObject", stateKey, false}, {"s3:PutObject", viewKey, false},
		{"s3:GetObject", lakeHTTP, false}, {"s3:GetObject", stateKey, false},
		{"s3:DeleteObject", ownSegment, false},
	},
	"ingest": {
		{"s3:GetObject", ownSegment, true}, {"s3:GetObject", ownStatus, true}, {"s3:GetObject", stateKey, true},
		{"s3:PutObject", indexKey, true}, {"s3:PutObject", lakeStatus, true}, {"s3:PutObject", quarantineKey, true},
		{"s3:GetObject", ownSecrets, false}, {"s3:GetObject", otherSecrets, false},
		{"s3:PutObject", lakeHTTP, false}, {"s3:PutObject", ownSegment, false}, {"s3:PutObject", viewKey, false},
		{"s3:DeleteObject", stateKey, false}, {"s3:DeleteObject", ownSegment, false},
	},
	"parse": {
		{"s3:GetObject", ownSegment, true}, {"s3:GetObject", otherSecrets, true}, {"s3:GetObject", stateKey, true},
		{"s3:GetObject", ownHosts, true},
		{"s3:PutObject", stateKey, true}, {"s3:PutObject", lakeHTTP, true}, {"s3:PutObject", quarantineKey, true},
		{"s3:DeleteObject", lakeHTTP, true}, {"s3:DeleteObject", stateKey, true},
		{"s3:GetObject", lakeHTTP, true}, // a reparse reads the partition manifests and checks its old outputs
		{"s3:PutObject", ownSegment, false}, {"s3:PutObject", ownSecrets, false}, {"s3:PutObject", viewKey, false},
		{"s3:DeleteObject", ownSegment, false}, {"s3:DeleteObject", ownSecrets, false},
	},
	"query": {
		{"s3:GetObject", lakeHTTP, true}, {"s3:GetObject", viewKey, true}, {"s3:PutObject", viewKey, true},
		{"s3:DeleteObject", viewKey, true},
		{"s3:GetObject", ownSegment, true}, // pcap export (internal/query/pcap.go) reads the raw segments
		{"s3:GetObject", ownSecrets, false}, {"s3:GetObject", stateKey, false},
		{"s3:PutObject", lakeHTTP, false}, {"s3:DeleteObject", lakeHTTP, false}, {"s3:PutObject", ownSegment, false},
		{"s3:PutObject", ownHosts, false}, {"s3:DeleteObject", ownHosts, false},
	},
}

// renderS3Policy renders document kind for the test bucket and agent.
func renderS3Policy(t *testing.T, kind string) policy {
	t.Helper()
	vars := map[string]string{"bucket_arn": "arn:aws:s3:::" + testBucket}
	if kind == "agent" {
		vars["agent"] = testAgent
	}
	return parsePolicy(t, kind, renderTemplate(t, filepath.Join(policyDir, kind+".json"), vars))
}

// allows evaluates p the way IAM does for one action on one object key of
// the test bucket: an explicit Deny wins, else some Allow must match.
func (p policy) allows(action, key string) bool {
	arn := "arn:aws:s3:::" + testBucket + "/" + key
	allowed := false
	for _, s := range p.Statement {
		if !slices.ContainsFunc(s.Action, func(a string) bool { return globMatch(a, action) }) ||
			!slices.ContainsFunc(s.Resource, func(r string) bool { return globMatch(r, arn) }) {
			continue
		}
		if s.Effect == "Deny" {
			return false
		}
		allowed = true
	}
	return allowed
}

// TestS3Policies checks each shared S3 policy document: every write
// statement is scoped to the documented prefixes (no wildcard resource, no
// wildcard action), each documented prefix is granted, and the document
// allows exactly what the expectations say on keys built by package keys;
// of the functions, parse alone reads secrets/.
func TestS3Policies(t *testing.T) {
	names, err := filepath.Glob(filepath.Join(policyDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, n := range names {
		kinds = append(kinds, strings.TrimSuffix(filepath.Base(n), ".json"))
	}
	slices.Sort(kinds)
	if want := []string{"agent", "ingest", "parse", "query"}; !slices.Equal(kinds, want) {
		t.Fatalf("policy documents %v, want %v", kinds, want)
	}
	bucketARN := "arn:aws:s3:::" + testBucket
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			p := renderS3Policy(t, kind)
			var documented []string
			for _, pre := range writePrefixes[kind] {
				documented = append(documented, bucketARN+"/"+strings.ReplaceAll(pre, "${agent}", testAgent)+"*")
			}
			granted := map[string]bool{}
			for _, s := range p.Statement {
				for _, a := range s.Action {
					if strings.Contains(a, "*") {
						t.Errorf("statement %s: wildcard action %q", s.Sid, a)
					}
					if !strings.HasPrefix(a, "s3:") {
						t.Errorf("statement %s: action %q is not an S3 action", s.Sid, a)
					}
				}
				if s.Effect != "Allow" {
					continue
				}
				for _, a := range s.Action {
					if a == "s3:ListBucket" {
						if !slices.Equal(s.Resource, []string{bucketARN}) {
							t.Errorf("statement %s: ListBucket on %v, want the bucket", s.Sid, s.Resource)
						}
						continue
					}
					for _, r := range s.Resource {
						if !strings.HasPrefix(r, bucketARN+"/") {
							t.Errorf("statement %s: %s on %s, outside the bucket's objects", s.Sid, a, r)
						}
						if readOnly(a) {
							continue
						}
						if !slices.Contains(documented, r) {
							t.Errorf("statement %s: write action %s on %s: not one of the documented prefixes %v", s.Sid, a, r, documented)
						}
						if a == "s3:PutObject" {
							granted[r] = true
						}
					}
				}
			}
			for _, d := range documented {
				if !granted[d] {
					t.Errorf("documented prefix %s is not granted s3:PutObject", d)
				}
			}
			for _, e := range expectations[kind] {
				if got := p.allows(e.action, e.key); got != e.want {
					t.Errorf("%s %s: allowed %v, want %v", e.action, e.key, got, e.want)
				}
			}
		})
	}
	// Parse alone reads secrets/ (of any agent); an agent reads back only
	// its own uploads.
	for _, kind := range kinds {
		p := renderS3Policy(t, kind)
		if got := p.allows("s3:GetObject", otherSecrets); got != (kind == "parse") {
			t.Errorf("%s reads %s: %v; want only parse to read other agents' secrets", kind, otherSecrets, got)
		}
	}
}
