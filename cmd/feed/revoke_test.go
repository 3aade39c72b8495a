package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/tickwire/tickwire/internal/auth"
	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/testwait"
	"github.com/tickwire/tickwire/pkg/wire"
)

type closeWatch struct {
	gws.BuiltinEventHandler
	closed chan error
}

func (c *closeWatch) OnClose(_ *gws.Conn, err error) { c.closed <- err }

// The feed binary wires revocation: it reads the list from its NATS, refuses a revoked token
// (the Verifier's hook) and closes its connection with 4006 (the watch).
func TestFeedAppliesRevocations(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "feed.key")
	secret := auth.NewSecret()
	if err := os.WriteFile(key, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	public, admin, authDir := startFeed(t, "--nats-listen", addr, "--auth-hs256-key-file", key)
	connect := func(role bus.Role) *bus.Bus {
		b, err := bus.Connect(t.Context(), bus.Config{URL: "nats://" + addr,
			Auth: bus.Auth{User: string(role), PasswordFile: bus.PasswordFile(authDir, string(role))}}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return b
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := connect(bus.RoleIngest).EnsureStream(ctx, bus.StreamConfig{}); err != nil { // the feed serves once it read it
		t.Fatal(err)
	}
	testwait.For(t, 20*time.Second, "the feed to become ready", func() bool {
		code, _ := get(t, public+"/readyz")
		return code == http.StatusOK
	})
	tok, err := auth.MintHS256(secret, auth.MintOptions{Subject: "bot", ID: "j-1", TTL: time.Hour, Grant: auth.Grant{Instruments: []string{"*"}}})
	if err != nil {
		t.Fatal(err)
	}
	header := http.Header{"Authorization": {"Bearer " + tok}}
	w := &closeWatch{closed: make(chan error, 1)}
	conn, _, err := gws.NewClient(w, &gws.ClientOption{Addr: "ws" + strings.TrimPrefix(public, "http") + "/ws", RequestHeader: header})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.WriteClose(1000, nil)
	go conn.ReadLoop()

	if err := connect(bus.RoleTickctl).Revoke(ctx, bus.RevocationConfig{}, bus.Revocation{Kind: bus.RevokeJTI, ID: "j-1"}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-w.closed:
		var ce *gws.CloseError
		if !errors.As(err, &ce) || ce.Code != wire.CloseTokenRevoked {
			t.Fatalf("closed with %v, want %d", err, wire.CloseTokenRevoked)
		}
	case <-time.After(time.Second):
		t.Fatal("the revoked token's connection still open a second after the revocation")
	}
	req, _ := http.NewRequest("GET", public+"/api/instruments", nil)
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "revoked") {
		t.Fatalf("/api with the revoked token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if _, body := get(t, admin+"/metrics"); !strings.Contains(body, "tickwire_feed_revoked_connections_total 1") ||
		!strings.Contains(body, "tickwire_feed_revocations_loaded 1") {
		t.Fatal("metrics do not show the revocation")
	}
}

func TestRevocationFlagsValidated(t *testing.T) {
	cfg := parse(t, "--auth-hs256-key-file", "k")
	if cfg.Auth.RevocationTTL != bus.DefaultRevocationTTL || cfg.Auth.RevocationReplicas != 1 {
		t.Fatalf("defaults: %v, %d replicas", cfg.Auth.RevocationTTL, cfg.Auth.RevocationReplicas)
	}
	for _, tc := range []struct {
		ttl      time.Duration
		replicas int
		want     string
	}{
		{0, 1, "--revocation-ttl"},
		{time.Hour, 0, "--revocation-replicas"},
		{time.Hour, 6, "--revocation-replicas"},
	} {
		f := authFlags{HS256KeyFile: "k", RevocationTTL: tc.ttl, RevocationReplicas: tc.replicas}
		if err := f.validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ttl %v, %d replicas: %v", tc.ttl, tc.replicas, err)
		}
	}
}
