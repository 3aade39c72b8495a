package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lxzan/gws"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickwire/tickwire/internal/auth"
	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/bus/bustest"
	"github.com/tickwire/tickwire/internal/feed"
	"github.com/tickwire/tickwire/internal/testwait"
	"github.com/tickwire/tickwire/pkg/wire"
)

func TestRevokeCLI(t *testing.T) {
	s := bustest.Start(t)
	url := s.ClientURL()
	if out := mustRun(t, "revoke", "--nats-url", url, "--list"); strings.TrimSpace(out) != "KIND  ID  REVOKED AT  REASON" {
		t.Fatalf("empty list: %q", out)
	}
	if out := mustRun(t, "revoke", "--nats-url", url, "--jti", "6f1c0a93", "--reason", "leaked in a ticket"); !strings.Contains(out, "revoked jti 6f1c0a93 (token)") {
		t.Fatal(out)
	}
	if out := mustRun(t, "revoke", "--nats-url", url, "--nats-user", "admin", "--sub", "bot 7"); !strings.Contains(out, `revoked sub "bot 7" (tokens issued until `) {
		t.Fatal(out)
	}
	out := mustRun(t, "revoke", "--nats-url", url, "--list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "jti   6f1c0a93") || !strings.HasSuffix(lines[1], "leaked in a ticket") ||
		!strings.HasPrefix(lines[2], `sub   "bot 7"`) {
		t.Fatalf("list:\n%s", out)
	}
	if out := mustRun(t, "unrevoke", "--nats-url", url, "--jti", "6f1c0a93"); out != "unrevoked jti 6f1c0a93\n" {
		t.Fatal(out)
	}
	if code, _, errOut := tickctl(t, "unrevoke", "--nats-url", url, "--jti", "6f1c0a93"); code != exitFail || !strings.Contains(errOut, "jti 6f1c0a93 is not revoked") {
		t.Fatalf("second unrevoke: exit %d %s", code, errOut)
	}
	if out := mustRun(t, "revoke", "--nats-url", url, "--list"); strings.Contains(out, "6f1c0a93") || !strings.Contains(out, `"bot 7"`) {
		t.Fatalf("list after unrevoke:\n%s", out)
	}

	// Other roles may not write (feed) or even read (ingest) the list.
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"feed revokes", []string{"--nats-user", "feed", "revoke", "--jti", "x", "--timeout", "1s"}, "needs the tickctl or admin role"},
		{"feed unrevokes", []string{"--nats-user", "feed", "unrevoke", "--sub", "bot 7", "--timeout", "1s"}, "needs the tickctl or admin role"},
		{"ingest lists", []string{"--nats-user", "ingest", "revoke", "--list", "--timeout", "1s"}, "read the revocations"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := tickctl(t, append([]string{"--nats-url", url}, tc.args...)...)
			if code != exitFail || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d: %s", code, errOut)
			}
		})
	}
	if out := mustRun(t, "revoke", "--nats-url", url, "--list"); !strings.Contains(out, `"bot 7"`) || strings.Contains(out, "jti ") {
		t.Fatalf("list after the refused writes:\n%s", out)
	}
}

func TestRevokeUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"revoke"}, "give --jti ID or --sub SUBJECT"},
		{[]string{"revoke", "--jti", "a", "--sub", "b"}, "not both"},
		{[]string{"revoke", "--list", "--jti", "a"}, "--list takes no"},
		{[]string{"revoke", "--jti", "a", "--ttl", "0s"}, "--ttl 0s"},
		{[]string{"revoke", "--jti", "a", "--replicas", "7"}, "--replicas 7"},
		{[]string{"revoke", "--jti", strings.Repeat("x", bus.MaxRevocationIDLen+1)}, "more than"},
		{[]string{"unrevoke"}, "give --jti ID or --sub SUBJECT"},
	} {
		code, _, errOut := tickctl(t, tc.args...)
		if code != exitConfig || !strings.Contains(errOut, tc.want) {
			t.Errorf("%.60q: exit %d %s", tc.args, code, errOut)
		}
	}
}

// replica is a feed server with authentication and the revocation watch, on NATS as the feed
// user, served on loopback (no events: revocation needs none).
func replica(t *testing.T, s *bus.Embedded, keyFile string) string {
	t.Helper()
	list := auth.NewRevocations()
	v, err := auth.New(auth.Config{HS256KeyFile: keyFile, Revoked: list.Revoked}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := feed.New(feed.Config{Auth: feed.AuthConfig{Verifier: v, Revocations: list}}, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.EnableRevocations(bustest.ConnectAs(t, s, string(bus.RoleFeed)), bus.RevocationConfig{}); err != nil {
		t.Fatal(err)
	}
	srv.SetReady(true)
	hs := httptest.NewServer(srv.Handler(nil))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		hs.Close()
	})
	testwait.For(t, 5*time.Second, "the feed to read the revocation list", srv.Ready)
	return "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws"
}

// wsConn is a WebSocket client that reports how it was closed.
type wsConn struct {
	gws.BuiltinEventHandler
	closed chan error
}

func (c *wsConn) OnClose(_ *gws.Conn, err error) { c.closed <- err }

// dialToken connects to url with tok in the Authorization header; status is the HTTP status
// of a refused upgrade.
func dialToken(t *testing.T, url, tok string) (c *wsConn, status int) {
	t.Helper()
	c = &wsConn{closed: make(chan error, 1)}
	conn, resp, err := gws.NewClient(c, &gws.ClientOption{Addr: url, RequestHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		if resp != nil {
			return nil, resp.StatusCode
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.WriteClose(1000, nil) })
	go conn.ReadLoop()
	return c, http.StatusSwitchingProtocols
}

// The promise, end to end: "tickctl revoke --jti" closes the live connections using
// that token on every replica within a second, with 4006; the token is refused from then on,
// and "tickctl unrevoke" lets it in again.
func TestRevokeClosesConnectionsOnEveryReplica(t *testing.T) {
	s := bustest.Start(t)
	key := filepath.Join(t.TempDir(), "hs256.key")
	mustRun(t, "token", "--key-file", key, "--new-key", "--sub", "warmup") // writes the key
	secret, err := auth.ReadSecret(key)
	if err != nil {
		t.Fatal(err)
	}
	mint := func(sub, jti string) string {
		tok, err := auth.MintHS256(secret, auth.MintOptions{Subject: sub, ID: jti, TTL: time.Hour, Grant: auth.Grant{Instruments: []string{"*"}}})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	urls := []string{replica(t, s, key), replica(t, s, key)}
	leaked, other := mint("alice", "leaked-1"), mint("alice", "fine-2")
	var victims, bystanders []*wsConn
	for _, u := range urls {
		c, status := dialToken(t, u, leaked)
		if c == nil {
			t.Fatalf("%s: %d before any revocation", u, status)
		}
		victims = append(victims, c)
		if c, _ = dialToken(t, u, other); c == nil {
			t.Fatal("the other token refused")
		}
		bystanders = append(bystanders, c)
	}

	mustRun(t, "revoke", "--nats-url", s.ClientURL(), "--jti", "leaked-1", "--reason", "test")
	// A bound for a loaded CI machine, not the latency promise (revocations reach replicas in
	// milliseconds here; docs/OPERATIONS.md).
	deadline := time.After(10 * time.Second)
	for i, c := range victims {
		select {
		case err := <-c.closed:
			var ce *gws.CloseError
			if !errors.As(err, &ce) || ce.Code != wire.CloseTokenRevoked || string(ce.Reason) != "token revoked" {
				t.Fatalf("replica %d closed the connection with %v, want %d", i, err, wire.CloseTokenRevoked)
			}
		case <-deadline:
			t.Fatalf("replica %d: the connection of the revoked token still open 10 s after tickctl revoke", i)
		}
	}
	for i, u := range urls {
		if _, status := dialToken(t, u, leaked); status != http.StatusUnauthorized {
			t.Fatalf("replica %d: the revoked token got %d, want 401", i, status)
		}
		select {
		case err := <-bystanders[i].closed:
			t.Fatalf("replica %d closed the connection of another token of the same subject: %v", i, err)
		default:
		}
	}

	mustRun(t, "unrevoke", "--nats-url", s.ClientURL(), "--jti", "leaked-1")
	for i, u := range urls {
		var status int
		if !testwait.Until(10*time.Second, func() bool {
			var c *wsConn
			c, status = dialToken(t, u, leaked)
			return c != nil
		}) {
			t.Fatalf("replica %d: the unrevoked token still refused (%d) 10 s after tickctl unrevoke", i, status)
		}
	}
}
