package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/flowlake/flowlake/functions/query"
	"github.com/flowlake/flowlake/internal/auth"
	"github.com/flowlake/flowlake/internal/store"
	"github.com/flowlake/flowlake/web"
)

// defaultServeAddr is where `serve` listens by default.
const defaultServeAddr = "127.0.0.1:8080"

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: flowlake serve [--lake URL] [--addr HOST:PORT] [--public-url URL] [--log-level info]\n\n"+
			"Serves the query API (/api/v1, described at /api/v1/openapi.json) over the lake in the store,\n"+
			"and the web UI at /. Users, teams, saved views and links live in the store under config/.\n"+
			"On first start the user admin is created with the password in FLOWLAKE_ADMIN_PASSWORD, or a\n"+
			"generated one printed here once. Logs are JSON lines on stderr. SIGTERM or SIGINT stops.\n\n"+
			"environment: FLOWLAKE_ADMIN_PASSWORD, FLOWLAKE_JWT_KEY (token signing key, PEM or base64;\n"+
			"default: generated and kept in the store), FLOWLAKE_TOKEN_TTL (default 15m),\n"+
			"FLOWLAKE_OIDC_ISSUER, FLOWLAKE_OIDC_CLIENT_ID, FLOWLAKE_OIDC_CLIENT_SECRET and optionally\n"+
			"FLOWLAKE_OIDC_REDIRECT_URL (login through an OpenID Connect provider).\n\nflags:")
		fs.PrintDefaults()
	}
	lakeURL := fs.String("lake", envOr(getenv, "LAKE", "./flowlake-data"), "the store holding the lake: a directory, file:///DIR or s3://BUCKET[/PREFIX] (env FLOWLAKE_LAKE)")
	addr := fs.String("addr", envOr(getenv, "ADDR", defaultServeAddr), "listen address (env FLOWLAKE_ADDR)")
	publicURL := fs.String("public-url", envOr(getenv, "PUBLIC_URL", ""), "base URL of the UI in public links, e.g. https://flowlake.example.com (env FLOWLAKE_PUBLIC_URL; default: the requests' host)")
	logLevel := fs.String("log-level", envOr(getenv, "LOG_LEVEL", "info"), "debug, info, warn or error (env FLOWLAKE_LOG_LEVEL)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("serve: unexpected arguments %q", fs.Args())}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usageError{fmt.Sprintf("serve: --log-level %q: want debug, info, warn or error", *logLevel)}
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))

	st, err := store.Open(ctx, *lakeURL)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	srv, svc, err := query.Open(ctx, query.Options{Store: st, Getenv: getenv, UI: web.Handler(), PublicURL: *publicURL, Log: log})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	generated, created, err := svc.Bootstrap(ctx, getenv(query.EnvAdminPassword))
	if err != nil {
		return fmt.Errorf("serve: create the admin user: %w", err)
	}
	switch {
	case generated != "":
		fmt.Fprintf(stderr, "flowlake serve: created user %q with password %s\n"+
			"  (shown this once: keep it, or change it with PUT /api/v1/admin/users/%s)\n", auth.AdminUser, generated, auth.AdminUser)
	case created:
		log.Info("created the admin user from " + query.EnvAdminPassword)
	}
	if !web.Built() {
		log.Warn("the web UI is not built into this binary: run make web, then rebuild (the API works without it)")
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("serving", "url", "http://"+ln.Addr().String(), "lake", st.URL())
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("serve: shut down: %w", err)
	}
	log.Info("stopped")
	return nil
}
