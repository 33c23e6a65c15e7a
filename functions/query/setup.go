package query

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/flowlake/flowlake/functions/internal/lambdaenv"
	"github.com/flowlake/flowlake/internal/auth"
	lakequery "github.com/flowlake/flowlake/internal/query"
	"github.com/flowlake/flowlake/internal/store"
)

// Environment variables of the query function (besides FLOWLAKE_STORE and
// the OIDC ones of package auth).
const (
	// EnvJWTKey is the token signing key (PEM or base64, see
	// auth.ParseSigningKey); by default one is generated and kept in the
	// store under config/.
	EnvJWTKey = "FLOWLAKE_JWT_KEY"
	// EnvAdminPassword is the password of the first admin, used only when
	// the admin user does not exist yet.
	EnvAdminPassword = "FLOWLAKE_ADMIN_PASSWORD"
	// EnvTokenTTL is the lifetime of access tokens (default 15m).
	EnvTokenTTL = "FLOWLAKE_TOKEN_TTL"
	// EnvPublicURL is the base URL of the UI in public links.
	EnvPublicURL = "FLOWLAKE_PUBLIC_URL"
)

// Options are what Open needs.
type Options struct {
	// Store holds the lake and config/ (required).
	Store store.Store
	// Getenv reads FLOWLAKE_JWT_KEY, FLOWLAKE_TOKEN_TTL and the OIDC
	// variables; nil reads nothing.
	Getenv func(string) string
	// UI, PublicURL and Log are those of Config.
	UI        http.Handler
	PublicURL string
	Log       *slog.Logger
}

// Open builds the server over a store: the query engine, and the access
// control configured from the environment.
func Open(ctx context.Context, o Options) (*Server, *auth.Service, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg := auth.Config{Store: o.Store, Log: log}
	if v := strings.TrimSpace(getenv(EnvJWTKey)); v != "" {
		k, err := auth.ParseSigningKey(v)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", EnvJWTKey, err)
		}
		cfg.SigningKey = k
	}
	if v := strings.TrimSpace(getenv(EnvTokenTTL)); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute || d > 24*time.Hour {
			return nil, nil, fmt.Errorf("%s=%q: want a duration from 1m to 24h", EnvTokenTTL, v)
		}
		cfg.TokenTTL = d
	}
	oidcCfg, err := auth.OIDCConfigFromEnv(getenv)
	if err != nil {
		return nil, nil, err
	}
	cfg.OIDC = oidcCfg
	svc, err := auth.New(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	eng, err := lakequery.New(o.Store, lakequery.Options{Log: log})
	if err != nil {
		return nil, nil, err
	}
	publicURL := o.PublicURL
	if publicURL == "" {
		publicURL = strings.TrimSpace(getenv(EnvPublicURL))
	}
	srv, err := New(Config{Engine: eng, Auth: svc, UI: o.UI, PublicURL: publicURL, Log: log})
	if err != nil {
		return nil, nil, err
	}
	return srv, svc, nil
}

// lambdaSetupTimeout bounds the cold start's store access.
const lambdaSetupTimeout = 9 * time.Second

// LambdaBuilder returns the function that lambdaenv.Main calls to build the
// query function: it opens the store and the server, and creates the first
// admin from FLOWLAKE_ADMIN_PASSWORD if there is none (a Lambda function
// never generates a password: its logs are no place to show one).
func LambdaBuilder(getenv func(string) string) func(context.Context, lambdaenv.Config, *slog.Logger) (*Server, error) {
	return func(ctx context.Context, c lambdaenv.Config, log *slog.Logger) (*Server, error) {
		ctx, cancel := context.WithTimeout(ctx, lambdaSetupTimeout)
		defer cancel()
		st, err := store.Open(ctx, c.Store)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", lambdaenv.EnvStore, err)
		}
		srv, svc, err := Open(ctx, Options{Store: st, Getenv: getenv, Log: log})
		if err != nil {
			return nil, err
		}
		if pw := getenv(EnvAdminPassword); pw != "" {
			if _, created, err := svc.Bootstrap(ctx, pw); err != nil {
				return nil, fmt.Errorf("%s: %w", EnvAdminPassword, err)
			} else if created {
				log.Info("query: created the admin user from " + EnvAdminPassword)
			}
		} else if _, err := svc.GetUser(ctx, auth.AdminUser); err != nil {
			log.Warn("query: there is no admin user: set " + EnvAdminPassword + " (or run flowlake serve once) to create it")
		}
		return srv, nil
	}
}
