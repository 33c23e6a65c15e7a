// Package notify sets up MinIO bucket notifications for the functions host:
// the notification targets MinIO sends events to (a webhook, a NATS
// JetStream subject) and the bucket rule that sends the ObjectCreated events
// of the prefixes the functions handle to them.
//
// A MinIO target is configured where the server starts, through its
// environment ([Webhook.Env], [NATS.Env]): that is the simplest reliable
// way, it needs no admin API, and it survives restarts. Each target has an
// ID and is named in bucket rules by its ARN ([ARN]):
// arn:minio:sqs::<ID>:webhook or arn:minio:sqs::<ID>:nats. The bucket rule
// is an S3 PutBucketNotificationConfiguration ([Configure]) with one queue
// configuration per prefix (raw/, status/, secrets/ below the store's
// prefix) and event s3:ObjectCreated:*.
//
// Set a queue directory on every target: MinIO then keeps the events it
// could not deliver on disk and retries them every few seconds, so that a
// host that is down or restarting loses none. Without one, MinIO drops an
// event whose delivery fails.
package notify

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/flowlake/flowlake/internal/keys"
)

// Target kinds, the last element of a target's ARN.
const (
	KindWebhook = "webhook"
	KindNATS    = "nats"
)

// Prefixes are the key prefixes whose new objects the functions handle.
var Prefixes = []string{keys.PrefixRaw, keys.PrefixStatus, keys.PrefixSecrets}

// EventCreated is the event the bucket rules select.
const EventCreated = "s3:ObjectCreated:*"

// ARN returns the ARN that names MinIO target id of kind in bucket rules.
// The region is left empty: MinIO then accepts the rule in any region.
func ARN(id, kind string) string { return "arn:minio:sqs::" + id + ":" + kind }

// checkID reports whether id can be a MinIO target ID: it is the suffix of
// environment variable names, taken as is (case matters: the ARN must
// spell it the same way), so upper case is the convention.
func checkID(id string) error {
	if id == "" {
		return errors.New("empty target ID")
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return fmt.Errorf("target ID %q: want letters, digits and _", id)
		}
	}
	return nil
}

// Webhook is a MinIO webhook notification target.
type Webhook struct {
	// ID names the target (letters, digits, _; by convention upper case);
	// ARN(ID, KindWebhook) names it in bucket rules.
	ID string
	// Endpoint is the URL MinIO POSTs the events to, e.g.
	// http://127.0.0.1:9490/minio/events.
	Endpoint string
	// AuthToken, if set, is sent as "Authorization: Bearer <AuthToken>".
	AuthToken string
	// QueueDir, an absolute directory, keeps undelivered events on disk
	// until the endpoint takes them (see the package doc).
	QueueDir string
	// QueueLimit bounds the events kept in QueueDir; 0: MinIO's default
	// (100000).
	QueueLimit int
}

// Env returns the MinIO server environment that defines the target.
func (w Webhook) Env() (map[string]string, error) {
	if err := checkID(w.ID); err != nil {
		return nil, fmt.Errorf("webhook target: %w", err)
	}
	if w.Endpoint == "" {
		return nil, fmt.Errorf("webhook target %s: no endpoint", w.ID)
	}
	id := w.ID
	env := map[string]string{
		"MINIO_NOTIFY_WEBHOOK_ENABLE_" + id:   "on",
		"MINIO_NOTIFY_WEBHOOK_ENDPOINT_" + id: w.Endpoint,
	}
	if w.AuthToken != "" {
		env["MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_"+id] = w.AuthToken
	}
	if err := queueEnv(env, "WEBHOOK", id, w.QueueDir, w.QueueLimit); err != nil {
		return nil, fmt.Errorf("webhook target %s: %w", w.ID, err)
	}
	return env, nil
}

// NATS is a MinIO NATS notification target publishing to JetStream.
type NATS struct {
	// ID names the target (letters, digits, _; by convention upper case);
	// ARN(ID, KindNATS) names it in bucket rules.
	ID string
	// Address is the NATS server, HOST:PORT.
	Address string
	// Subject is the subject MinIO publishes the events to. A JetStream
	// stream must capture it (the functions host creates one).
	Subject string
	// Username and Password, or Token, authenticate to NATS if set.
	Username, Password, Token string
	// QueueDir and QueueLimit: as for Webhook. MinIO also keeps events
	// there while no stream captures the subject yet.
	QueueDir   string
	QueueLimit int
}

// Env returns the MinIO server environment that defines the target, with
// JetStream publishing on.
func (n NATS) Env() (map[string]string, error) {
	if err := checkID(n.ID); err != nil {
		return nil, fmt.Errorf("nats target: %w", err)
	}
	if n.Address == "" || n.Subject == "" {
		return nil, fmt.Errorf("nats target %s: want an address and a subject", n.ID)
	}
	id := n.ID
	env := map[string]string{
		"MINIO_NOTIFY_NATS_ENABLE_" + id:    "on",
		"MINIO_NOTIFY_NATS_ADDRESS_" + id:   n.Address,
		"MINIO_NOTIFY_NATS_SUBJECT_" + id:   n.Subject,
		"MINIO_NOTIFY_NATS_JETSTREAM_" + id: "on",
	}
	for k, v := range map[string]string{"USERNAME": n.Username, "PASSWORD": n.Password, "TOKEN": n.Token} {
		if v != "" {
			env["MINIO_NOTIFY_NATS_"+k+"_"+id] = v
		}
	}
	if err := queueEnv(env, "NATS", id, n.QueueDir, n.QueueLimit); err != nil {
		return nil, fmt.Errorf("nats target %s: %w", n.ID, err)
	}
	return env, nil
}

func queueEnv(env map[string]string, kind, id, dir string, limit int) error {
	if dir != "" {
		if !strings.HasPrefix(dir, "/") {
			return fmt.Errorf("queue directory %q is not absolute (MinIO requires it)", dir)
		}
		env["MINIO_NOTIFY_"+kind+"_QUEUE_DIR_"+id] = dir
	}
	if limit < 0 {
		return fmt.Errorf("negative queue limit %d", limit)
	}
	if limit > 0 {
		env["MINIO_NOTIFY_"+kind+"_QUEUE_LIMIT_"+id] = strconv.Itoa(limit)
	}
	return nil
}

// EnvList returns env as NAME=value strings sorted by name, for exec.Cmd.Env
// or a shell script.
func EnvList(env map[string]string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

// Rules returns the bucket notification rules that send the ObjectCreated
// events of Prefixes, below the store prefix storePrefix ("" for none), to
// each target of arns.
func Rules(storePrefix string, arns ...string) []types.QueueConfiguration {
	root := strings.Trim(storePrefix, "/")
	if root != "" {
		root += "/"
	}
	var out []types.QueueConfiguration
	for _, arn := range arns {
		for _, p := range Prefixes {
			out = append(out, types.QueueConfiguration{
				Id:       aws.String("flowlake-" + strings.TrimSuffix(p, "/") + "-" + arn[strings.LastIndexByte(arn, ':')+1:]),
				QueueArn: aws.String(arn),
				Events:   []types.Event{EventCreated},
				Filter: &types.NotificationConfigurationFilter{Key: &types.S3KeyFilter{FilterRules: []types.FilterRule{
					{Name: types.FilterRuleNamePrefix, Value: aws.String(root + p)},
				}}},
			})
		}
	}
	return out
}

// TargetWait bounds how long Configure retries while the server does not
// know a target ARN yet (MinIO right after a start).
var TargetWait = 30 * time.Second

// Configure replaces the notification configuration of bucket with Rules(storePrefix, arns...).
// MinIO refuses an ARN whose target it does not have: after TargetWait
// the error says so.
func Configure(ctx context.Context, client *s3.Client, bucket, storePrefix string, arns ...string) error {
	if len(arns) == 0 {
		return fmt.Errorf("configure notifications of bucket %s: no target ARN", bucket)
	}
	// MinIO brings its notification targets up in the background after a
	// start: until a target is up it rejects rules naming it as
	// InvalidArgument. Retry that for TargetWait before reporting it.
	deadline := time.Now().Add(TargetWait)
	var err error
	for {
		_, err = client.PutBucketNotificationConfiguration(ctx, &s3.PutBucketNotificationConfigurationInput{
			Bucket:                    aws.String(bucket),
			NotificationConfiguration: &types.NotificationConfiguration{QueueConfigurations: Rules(storePrefix, arns...)},
		})
		var ae smithy.APIError
		if err == nil || !errors.As(err, &ae) || ae.ErrorCode() != "InvalidArgument" || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("configure notifications of bucket %s: %w", bucket, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) && ae.ErrorCode() == "InvalidArgument" {
			return fmt.Errorf("configure notifications of bucket %s: %w (is a target with this ARN configured on the server? ARNs: %s)", bucket, err, strings.Join(arns, ", "))
		}
		return fmt.Errorf("configure notifications of bucket %s: %w", bucket, err)
	}
	return nil
}

// Configured returns the target ARNs of bucket's notification rules and the
// key prefixes each one selects. The ARNs are given without a region, as
// ARN makes them (MinIO fills in its region).
func Configured(ctx context.Context, client *s3.Client, bucket string) (map[string][]string, error) {
	out, err := client.GetBucketNotificationConfiguration(ctx, &s3.GetBucketNotificationConfigurationInput{Bucket: aws.String(bucket)})
	if err != nil {
		return nil, fmt.Errorf("read notifications of bucket %s: %w", bucket, err)
	}
	got := map[string][]string{}
	for _, q := range out.QueueConfigurations {
		arn := withoutRegion(aws.ToString(q.QueueArn))
		if q.Filter == nil || q.Filter.Key == nil {
			got[arn] = append(got[arn], "")
			continue
		}
		for _, r := range q.Filter.Key.FilterRules {
			if strings.EqualFold(string(r.Name), string(types.FilterRuleNamePrefix)) {
				got[arn] = append(got[arn], aws.ToString(r.Value))
			}
		}
	}
	for _, v := range got {
		slices.Sort(v)
	}
	return got, nil
}

// withoutRegion removes the region from an ARN (its fourth field).
func withoutRegion(arn string) string {
	f := strings.SplitN(arn, ":", 5)
	if len(f) < 5 {
		return arn
	}
	f[3] = ""
	return strings.Join(f, ":")
}

// CreateBucket creates bucket unless it exists already (and is ours).
func CreateBucket(ctx context.Context, client *s3.Client, bucket string) error {
	_, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	return nil
}

// NewClient returns an S3 client configured from the standard AWS sources
// (AWS_ACCESS_KEY_ID, AWS_REGION, AWS_ENDPOINT_URL_S3, shared files), as
// the object store does: region us-east-1 when none is set, path-style
// addressing when a custom endpoint is set (MinIO).
func NewClient(ctx context.Context) (*s3.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = aws.ToString(o.BaseEndpoint) != ""
	}), nil
}
