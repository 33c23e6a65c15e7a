// Package lambdaenv wires the flowlake Lambda functions: it reads their
// configuration from the environment and builds, once per cold start, the
// store, the pipeline and the handler that the lambda mains pass to
// lambda.Start.
//
// Variables (DESIGN.md: one env prefix, FLOWLAKE_):
//
//	FLOWLAKE_STORE             the object store, s3://BUCKET[/PREFIX] (required);
//	                           AWS credentials, region and endpoint come from
//	                           the standard AWS variables
//	FLOWLAKE_PARSE_FUNCTION    the parse function's name or ARN, invoked
//	                           asynchronously (required by ingest; parse
//	                           defaults to itself, AWS_LAMBDA_FUNCTION_NAME)
//	FLOWLAKE_WAIT_PREDECESSOR  how long parse waits for the checkpoint of the
//	                           previous segment, a Go duration (default 30s)
//	FLOWLAKE_LOG_LEVEL         debug, info, warn or error (default info)
package lambdaenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/flowlake/flowlake/functions/ingest"
	"github.com/flowlake/flowlake/functions/parse"
	"github.com/flowlake/flowlake/internal/pipeline"
	"github.com/flowlake/flowlake/internal/store"
)

// Environment variable names.
const (
	EnvStore           = "FLOWLAKE_STORE"
	EnvParseFunction   = "FLOWLAKE_PARSE_FUNCTION"
	EnvWaitPredecessor = "FLOWLAKE_WAIT_PREDECESSOR"
	EnvLogLevel        = "FLOWLAKE_LOG_LEVEL"
	// EnvFunctionName is set by the Lambda runtime to the function's name.
	EnvFunctionName = "AWS_LAMBDA_FUNCTION_NAME"
)

// setupTimeout bounds opening the store and loading the AWS configuration,
// inside Lambda's 10 s initialization phase.
const setupTimeout = 9 * time.Second

// Config is the configuration of a function.
type Config struct {
	// Store is the store URL (s3://BUCKET[/PREFIX], or a directory for
	// local runs).
	Store string
	// Bucket and Prefix are the parts of an s3:// Store URL; both are
	// empty for a local store.
	Bucket, Prefix string
	// ParseFunction is the name or ARN of the parse function.
	ParseFunction string
	// FunctionName is the name of the running function, set by Lambda.
	FunctionName string
	// WaitPredecessor is the pipeline's bound on the wait for checkpoint
	// N-1; zero means the pipeline's default.
	WaitPredecessor time.Duration
	// LogLevel is the level of the JSON logger.
	LogLevel slog.Level
}

// Load reads the configuration from getenv (os.Getenv in main).
func Load(getenv func(string) string) (Config, error) {
	var c Config
	var errs []error
	c.Store = strings.TrimSpace(getenv(EnvStore))
	if c.Store == "" {
		errs = append(errs, fmt.Errorf("%s is not set: want s3://BUCKET[/PREFIX]", EnvStore))
	} else if u, err := url.Parse(c.Store); err == nil && u.Scheme == "s3" {
		c.Bucket, c.Prefix = u.Host, strings.Trim(u.Path, "/")
	}
	c.ParseFunction = strings.TrimSpace(getenv(EnvParseFunction))
	c.FunctionName = strings.TrimSpace(getenv(EnvFunctionName))
	if v := strings.TrimSpace(getenv(EnvWaitPredecessor)); v != "" {
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s=%q: %w", EnvWaitPredecessor, v, err))
		case d <= 0:
			errs = append(errs, fmt.Errorf("%s=%q: want a positive duration such as 30s", EnvWaitPredecessor, v))
		default:
			c.WaitPredecessor = d
		}
	}
	if v := strings.TrimSpace(getenv(EnvLogLevel)); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: want debug, info, warn or error", EnvLogLevel, v))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("configuration: %w", err)
	}
	return c, nil
}

// Logger returns the JSON logger the functions write to stdout, where
// Lambda collects it.
func Logger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

// Main is the body of a function's main: it loads the configuration from
// getenv, builds the JSON logger on w (also made slog's default), and
// returns build's handler, or the error that stops the cold start, which it
// has logged.
func Main[H any](ctx context.Context, name string, getenv func(string) string, w io.Writer,
	build func(context.Context, Config, *slog.Logger) (H, error)) (H, error) {
	c, err := Load(getenv)
	log := Logger(w, c.LogLevel).With("function", name)
	slog.SetDefault(log)
	if err == nil {
		var h H
		if h, err = build(ctx, c, log); err == nil {
			return h, nil
		}
	}
	log.Error(name+": cannot start", "err", err)
	var zero H
	return zero, fmt.Errorf("%s: %w", name, err)
}

// pipelineFor opens the store and returns a pipeline whose Invoke starts
// the parse function parseFunction asynchronously.
func pipelineFor(ctx context.Context, c Config, parseFunction string, log *slog.Logger) (*pipeline.Pipeline, error) {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	st, err := store.Open(ctx, c.Store)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvStore, err)
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	return pipeline.New(pipeline.Config{
		Store:           st,
		WaitPredecessor: c.WaitPredecessor,
		Invoke:          ingest.LambdaInvoker(lambda.NewFromConfig(awsCfg), parseFunction),
		InvokeReparse:   ingest.LambdaReparseInvoker(lambda.NewFromConfig(awsCfg), parseFunction),
		Log:             log,
	}), nil
}

// Ingest builds the ingest function.
func Ingest(ctx context.Context, c Config, log *slog.Logger) (*ingest.Handler, error) {
	if c.ParseFunction == "" {
		return nil, fmt.Errorf("configuration: %s is not set: want the name or ARN of the parse function", EnvParseFunction)
	}
	p, err := pipelineFor(ctx, c, c.ParseFunction, log)
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	h := ingest.New(p, c.Prefix)
	h.Bucket = c.Bucket
	h.Log = log
	return h, nil
}

// Parse builds the parse function. Its pipeline invokes ParseFunction, by
// default the function itself (FunctionName), for the next segment of a
// stream and for the streams Reconcile restarts.
func Parse(ctx context.Context, c Config, log *slog.Logger) (*parse.Handler, error) {
	fn := c.ParseFunction
	if fn == "" {
		fn = c.FunctionName
	}
	if fn == "" {
		return nil, fmt.Errorf("configuration: neither %s nor %s is set: parse invokes itself for the next segment", EnvParseFunction, EnvFunctionName)
	}
	p, err := pipelineFor(ctx, c, fn, log)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	h := parse.New(p)
	h.Log = log
	return h, nil
}
