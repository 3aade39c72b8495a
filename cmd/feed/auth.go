package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickwire/tickwire/internal/auth"
	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/feed"
)

// authFlags are the feed's token settings (docs/OPERATIONS.md, "Tokens and entitlements").
// Authentication is on unless --auth-disabled: without a key the feed does not start.
type authFlags struct {
	HS256KeyFile    string        `name:"auth-hs256-key-file" placeholder:"FILE" help:"HS256 shared secret (at least 32 bytes) that verifies tokens (tickctl token signs with the same file)."`
	JWKSFile        string        `name:"auth-jwks-file" placeholder:"FILE" help:"JSON Web Key Set of public keys (RS256, ES256, ES384, EdDSA) that verify tokens; read again when it changes and on SIGHUP."`
	Issuer          string        `name:"auth-issuer" help:"Tokens must carry this iss (empty: not checked)."`
	Audience        string        `name:"auth-audience" help:"Tokens must name this aud (empty: not checked)."`
	AnonymousPolicy string        `name:"auth-anonymous-policy" placeholder:"JSON|@FILE" help:"Grant for connections and /api requests without a token, as the tw claim (e.g. {\"instruments\":[\"synthetic:*\"],\"channels\":[\"quote\"]}); empty: a token is required."`
	Timeout         time.Duration `name:"auth-timeout" default:"5s" help:"A connection without an Authorization header must send Authenticate within this, or is closed (4501)."`
	Disabled        bool          `name:"auth-disabled" help:"No authentication: everyone sees everything. For benches on loopback only."`
	// The revocation list in NATS (docs/OPERATIONS.md, "Revoking tokens"): these settings
	// apply when this process creates the bucket; one that exists keeps its own.
	RevocationTTL      time.Duration `name:"revocation-ttl" default:"168h" help:"How long a revocation is kept (the TICKWIRE_REVOKED bucket's TTL, set by whoever creates it): at least the longest token lifetime you issue."`
	RevocationReplicas int           `name:"revocation-replicas" default:"1" help:"Copies of the revocation bucket on a NATS cluster (1..5; 3 in production), when this process creates it."`
}

func (f *authFlags) validate() error {
	if f.Disabled {
		if f.HS256KeyFile != "" || f.JWKSFile != "" || f.AnonymousPolicy != "" {
			return errors.New("--auth-disabled with token keys or an anonymous policy: choose one")
		}
		return nil
	}
	if f.RevocationTTL <= 0 {
		return fmt.Errorf("--revocation-ttl %v: must be positive", f.RevocationTTL)
	}
	if f.RevocationReplicas < 1 || f.RevocationReplicas > 5 {
		return fmt.Errorf("--revocation-replicas %d outside 1..5", f.RevocationReplicas)
	}
	if f.HS256KeyFile == "" && f.JWKSFile == "" {
		return errors.New("no token keys: give --auth-hs256-key-file or --auth-jwks-file (docs/OPERATIONS.md, Tokens), or --auth-disabled for a bench")
	}
	if _, err := f.anonymous(); err != nil {
		return err
	}
	return nil
}

func (f *authFlags) anonymous() (*auth.Entitlements, error) {
	p := f.AnonymousPolicy
	if p == "" {
		return nil, nil
	}
	if file, ok := strings.CutPrefix(p, "@"); ok {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--auth-anonymous-policy: %w", err)
		}
		p = string(b)
	}
	e, err := auth.ParseGrant([]byte(p))
	if err != nil {
		return nil, fmt.Errorf("--auth-anonymous-policy: %w", err)
	}
	return e, nil
}

// config builds the feed's AuthConfig, reading the key files.
func (f *authFlags) config(log *slog.Logger, reg prometheus.Registerer) (feed.AuthConfig, error) {
	if f.Disabled {
		log.Warn("authentication disabled (--auth-disabled): every client sees everything")
		return feed.AuthConfig{}, nil
	}
	revoked := auth.NewRevocations() // filled from NATS by enableRevocations
	v, err := auth.New(auth.Config{HS256KeyFile: f.HS256KeyFile, JWKSFile: f.JWKSFile,
		Issuer: f.Issuer, Audience: f.Audience, Revoked: revoked.Revoked}, log.With("component", "auth"), reg)
	if err != nil {
		return feed.AuthConfig{}, err
	}
	anon, err := f.anonymous()
	if err != nil {
		return feed.AuthConfig{}, err
	}
	if anon != nil {
		log.Info("anonymous access granted by --auth-anonymous-policy", "policy", f.AnonymousPolicy)
	}
	return feed.AuthConfig{Verifier: v, Anonymous: anon, Revocations: revoked, Timeout: f.Timeout}, nil
}

// enableRevocations makes srv watch the revocation list on b (with authentication on).
func (f *authFlags) enableRevocations(srv *feed.Server, a feed.AuthConfig, b *bus.Bus) error {
	if a.Revocations == nil {
		return nil
	}
	return srv.EnableRevocations(b, bus.RevocationConfig{TTL: f.RevocationTTL, Replicas: f.RevocationReplicas})
}

// reloadOnHUP reloads the JWKS file on every SIGHUP until the returned stop is called (which
// waits for the goroutine).
func reloadOnHUP(v *auth.Verifier, log *slog.Logger) (stop func()) {
	if v == nil {
		return func() {}
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-quit:
				return
			case <-hup:
				if err := v.Reload(); err != nil {
					log.Error("SIGHUP: JWKS not reloaded; keeping the previous keys", "err", err)
				}
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(quit)
		wg.Wait()
	}
}
