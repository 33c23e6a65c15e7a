package notify

import (
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
)

func TestWebhookEnv(t *testing.T) {
	got, err := Webhook{ID: "FLOWLAKE", Endpoint: "http://127.0.0.1:9490/minio/events", AuthToken: "tok", QueueDir: "/var/q", QueueLimit: 500}.Env()
	want := map[string]string{
		"MINIO_NOTIFY_WEBHOOK_ENABLE_FLOWLAKE":      "on",
		"MINIO_NOTIFY_WEBHOOK_ENDPOINT_FLOWLAKE":    "http://127.0.0.1:9490/minio/events",
		"MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_FLOWLAKE":  "tok",
		"MINIO_NOTIFY_WEBHOOK_QUEUE_DIR_FLOWLAKE":   "/var/q",
		"MINIO_NOTIFY_WEBHOOK_QUEUE_LIMIT_FLOWLAKE": "500",
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Env() = %v, %v; want %v", got, err, want)
	}
	if l := EnvList(got); len(l) != 5 || l[0] != "MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_FLOWLAKE=tok" {
		t.Errorf("EnvList: %q", l)
	}
}

func TestNATSEnv(t *testing.T) {
	got, err := NATS{ID: "FL", Address: "127.0.0.1:4222", Subject: "flowlake.events", Token: "t"}.Env()
	want := map[string]string{
		"MINIO_NOTIFY_NATS_ENABLE_FL":    "on",
		"MINIO_NOTIFY_NATS_ADDRESS_FL":   "127.0.0.1:4222",
		"MINIO_NOTIFY_NATS_SUBJECT_FL":   "flowlake.events",
		"MINIO_NOTIFY_NATS_JETSTREAM_FL": "on",
		"MINIO_NOTIFY_NATS_TOKEN_FL":     "t",
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Env() = %v, %v; want %v", got, err, want)
	}
}

func TestEnvErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  func() (map[string]string, error)
		want string
	}{
		{"empty id", Webhook{Endpoint: "http://x"}.Env, "empty target ID"},
		{"bad id", Webhook{ID: "a-b", Endpoint: "http://x"}.Env, "want letters, digits and _"},
		{"no endpoint", Webhook{ID: "A"}.Env, "no endpoint"},
		{"relative queue", Webhook{ID: "A", Endpoint: "http://x", QueueDir: "q"}.Env, "not absolute"},
		{"negative limit", Webhook{ID: "A", Endpoint: "http://x", QueueLimit: -1}.Env, "negative queue limit"},
		{"nats without subject", NATS{ID: "A", Address: "h:1"}.Env, "want an address and a subject"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.env(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestRules(t *testing.T) {
	arn := ARN("FLOWLAKE", KindWebhook)
	if arn != "arn:minio:sqs::FLOWLAKE:webhook" {
		t.Fatalf("ARN: %s", arn)
	}
	rules := Rules("/site1/", arn)
	var prefixes []string
	for _, r := range rules {
		if aws.ToString(r.QueueArn) != arn || len(r.Events) != 1 || r.Events[0] != EventCreated {
			t.Errorf("rule %+v", r)
		}
		prefixes = append(prefixes, aws.ToString(r.Filter.Key.FilterRules[0].Value))
	}
	if want := []string{"site1/raw/", "site1/status/", "site1/secrets/"}; !reflect.DeepEqual(prefixes, want) {
		t.Errorf("prefixes %q, want %q", prefixes, want)
	}
	if got := Rules("", arn, ARN("FL", KindNATS)); len(got) != 6 || aws.ToString(got[0].Filter.Key.FilterRules[0].Value) != "raw/" {
		t.Errorf("two targets, no prefix: %d rules", len(got))
	}
	if got := withoutRegion("arn:minio:sqs:us-east-1:FLOWLAKE:webhook"); got != arn {
		t.Errorf("withoutRegion: %s", got)
	}
}
