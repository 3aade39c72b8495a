package feed

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lxzan/gws"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tickwire/tickwire/internal/auth"
	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/bus/bustest"
	"github.com/tickwire/tickwire/internal/testwait"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// revocableConfig is authConfig with a revocation list, consulted by the Verifier when hook is
// set (as cmd/feed does; without it, the list only reaches connections already signed in).
func (k *authKeys) revocableConfig(t *testing.T, hook bool) Config {
	t.Helper()
	list := auth.NewRevocations()
	vc := auth.Config{HS256KeyFile: k.hsFile, JWKSFile: k.jwks, Audience: "tickwire"}
	if hook {
		vc.Revoked = list.Revoked
	}
	v, err := auth.New(vc, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return Config{Auth: AuthConfig{Verifier: v, Revocations: list, Timeout: 500 * time.Millisecond}}
}

// mintAt is a token of sub with id jti issued at iat (zero: now).
func (k *authKeys) mintAt(t *testing.T, sub, jti string, iat time.Time) string {
	t.Helper()
	s, err := auth.MintHS256(k.secret, auth.MintOptions{Subject: sub, ID: jti, Audience: "tickwire", TTL: time.Hour, Now: iat, Grant: allGrant})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// httpGet returns the status and body of GET url with header.
func httpGet(t *testing.T, url string, header http.Header) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// accepted reports whether an upgrade with tok in the header is let in (and closes it).
func accepted(t *testing.T, url, tok string) bool {
	t.Helper()
	c, err := dial(t, url, wire.SubprotocolProto, bearerHeader(tok))
	var he *httpError
	if errors.As(err, &he) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	_ = c.conn.WriteClose(1000, nil)
	return true
}

// closedWith waits at most d for c's close and checks its code (and reason, unless "").
func closedWith(t *testing.T, c *wsClient, d time.Duration, code int, reason, what string) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case <-c.frames:
		case err := <-c.closeCh:
			var ce *gws.CloseError
			if !errors.As(err, &ce) || int(ce.Code) != code || (reason != "" && string(ce.Reason) != reason) {
				t.Fatalf("%s: closed with %v, want %d %q", what, err, code, reason)
			}
			return
		case <-deadline:
			t.Fatalf("%s: not closed within %v", what, d)
		}
	}
}

// pong checks that c is still served: a Ping gets its Pong.
func pong(t *testing.T, c *wsClient, id uint32) {
	t.Helper()
	c.send(&pb.ClientMessage{Id: id, Command: &pb.ClientMessage_Ping{Ping: &pb.Ping{Nonce: uint64(id)}}})
	waitMsg(t, c, "Pong", func(m *pb.ServerMessage) bool { return m.GetPong() != nil && m.GetPong().RequestId == id })
}

// signInBand connects without a header and signs in with Authenticate.
func signInBand(t *testing.T, url, tok string) *wsClient {
	t.Helper()
	c := mustDial(t, url, wire.SubprotocolProto)
	authed(c, tok, 1)
	waitMsg(t, c, "Authenticated", func(m *pb.ServerMessage) bool { return m.GetAuthenticated() != nil })
	return c
}

// A subject revocation reaches both replicas on one NATS within a second: every connection of
// the subject is closed with 4006 (signed in by header or in band), other subjects stay, the
// subject's old tokens are refused everywhere (upgrade, Authenticate, /api), a token issued
// after the revocation works, and removing the revocation lets the old tokens in again.
func TestRevokeSubjectOnEveryReplica(t *testing.T) {
	k := newAuthKeys(t)
	nats := bustest.Start(t)
	b := bustest.Connect(t, nats)
	tc := bustest.ConnectAs(t, nats, string(bus.RoleTickctl))
	var feeds []*env
	for range 2 {
		fb := bustest.ConnectAs(t, nats, string(bus.RoleFeed)) // before the feed: closed after it
		e := &env{t: t, bus: b}
		e.startFeed(k.revocableConfig(t, true))
		if err := e.srv.EnableRevocations(fb, bus.RevocationConfig{}); err != nil {
			t.Fatal(err)
		}
		testwait.For(t, 5*time.Second, "the revocation list read", e.srv.Ready)
		feeds = append(feeds, e)
	}
	old1, old2 := k.mintAt(t, "alice", "a-1", time.Time{}), k.mintAt(t, "alice", "a-2", time.Time{})
	bob := k.mintAt(t, "bob", "b-1", time.Time{})
	byHeader, err := dial(t, feeds[0].url, wire.SubprotocolProto, bearerHeader(old1))
	if err != nil {
		t.Fatal(err)
	}
	go byHeader.conn.ReadLoop()
	pong(t, byHeader, 1)
	inBand := signInBand(t, feeds[1].url, old2)
	bobs := []*wsClient{signInBand(t, feeds[0].url, bob), signInBand(t, feeds[1].url, bob)}

	at := time.Now()
	if err := tc.Revoke(t.Context(), bus.RevocationConfig{}, bus.Revocation{Kind: bus.RevokeSubject, ID: "alice", At: at, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	closedWith(t, byHeader, time.Second, wire.CloseTokenRevoked, "token revoked", "replica 0, alice by header")
	closedWith(t, inBand, time.Second, wire.CloseTokenRevoked, "token revoked", "replica 1, alice in band")
	for i, c := range bobs {
		pong(t, c, uint32(10+i))
	}
	for i, e := range feeds {
		if n := testutil.ToFloat64(e.srv.rev.closed); n != 1 {
			t.Fatalf("replica %d counted %v revoked connections, want 1", i, n)
		}
		if status, body := upgradeStatus(t, e.http+"/ws", bearerHeader(old1)); status != http.StatusUnauthorized || !strings.Contains(body, "revoked") {
			t.Fatalf("replica %d: alice's old token: %d %q, want 401 revoked", i, status, body)
		}
		if status, body := httpGet(t, e.http+"/api/instruments", bearerHeader(old2)); status != http.StatusUnauthorized || !strings.Contains(body, "revoked") {
			t.Fatalf("replica %d: /api with alice's old token: %d %q", i, status, body)
		}
		c := mustDial(t, e.url, wire.SubprotocolProto)
		authed(c, old1, 1)
		closedWith(t, c, 5*time.Second, wire.CloseUnauthorized, "unauthorized: revoked", "an Authenticate with a revoked token")
		// iat has one-second precision: a token issued in the revocation's second is refused
		// too, one from the next second on is not.
		if status, _ := upgradeStatus(t, e.http+"/ws", bearerHeader(k.mintAt(t, "alice", "", at))); status != http.StatusUnauthorized {
			t.Fatalf("replica %d: a token issued in the revocation's second: %d, want 401", i, status)
		}
		fresh := k.mintAt(t, "alice", "", at.Truncate(time.Second).Add(time.Second))
		if !accepted(t, e.url, fresh) {
			t.Fatalf("replica %d: a token issued after the revocation refused", i)
		}
	}

	if ok, err := tc.Unrevoke(t.Context(), bus.RevokeSubject, "alice"); !ok || err != nil {
		t.Fatalf("unrevoke: %v %v", ok, err)
	}
	for i, e := range feeds {
		testwait.For(t, time.Second, "the old token accepted again", func() bool { return accepted(t, e.url, old1) })
		if n := testutil.ToFloat64(e.srv.rev.entries); n != 0 {
			t.Fatalf("replica %d: %v revocations known after the unrevoke", i, n)
		}
	}
}

// fakeRevocations is a RevocationSource the test drives: down fails every watch; each step is
// applied by the watching goroutine, as the bus does.
type fakeRevocations struct {
	down  atomic.Bool
	list  []bus.Revocation // loaded at each watch's start
	steps chan func(bus.RevocationHandler) error
	calls atomic.Int32
}

func (f *fakeRevocations) WatchRevocations(ctx context.Context, _ bus.RevocationConfig, h bus.RevocationHandler) error {
	f.calls.Add(1)
	if f.down.Load() {
		return errors.New("nats: no responders available for request")
	}
	h.LoadRevocations(f.list)
	for {
		select {
		case <-ctx.Done():
			return nil
		case step := <-f.steps:
			if err := step(h); err != nil {
				return err
			}
		}
	}
}

// Until the list is read the feed fails closed (not ready, 503 for upgrades and /api); once
// read it serves; when the watch breaks it keeps the list (fail static) and reads it again,
// closing connections a reload revokes.
func TestRevocationListBeforeServing(t *testing.T) {
	k := newAuthKeys(t)
	e := startEnv(t, k.revocableConfig(t, true))
	f := &fakeRevocations{steps: make(chan func(bus.RevocationHandler) error)}
	f.down.Store(true)
	if err := e.srv.EnableRevocations(f, bus.RevocationConfig{}); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.EnableRevocations(f, bus.RevocationConfig{}); err == nil {
		t.Fatal("enabled twice")
	}
	tok := k.mintAt(t, "carol", "c-1", time.Time{})
	if status, body := httpGet(t, e.http+"/readyz", nil); status != http.StatusServiceUnavailable || !strings.Contains(body, "revocation list not read") {
		t.Fatalf("/readyz before the list: %d %q", status, body)
	}
	if status, body := upgradeStatus(t, e.http+"/ws", bearerHeader(tok)); status != http.StatusServiceUnavailable || !strings.Contains(body, "revocation list") {
		t.Fatalf("upgrade before the list: %d %q", status, body)
	}
	if status, _ := httpGet(t, e.http+"/api/instruments", bearerHeader(tok)); status != http.StatusServiceUnavailable {
		t.Fatalf("/api with a token before the list: %d", status)
	}
	if status, _ := httpGet(t, e.http+"/api/instruments", nil); status != http.StatusUnauthorized {
		t.Fatalf("/api without a token before the list: %d, want 401 (no list needed to refuse it)", status)
	}
	testwait.For(t, 5*time.Second, "a retried watch", func() bool { return f.calls.Load() >= 2 })

	f.down.Store(false)
	testwait.For(t, 10*time.Second, "ready once the list is read", e.srv.Ready)
	if status, body := httpGet(t, e.http+"/readyz", nil); status != http.StatusOK {
		t.Fatalf("/readyz after the list: %d %q", status, body)
	}
	c, err := dial(t, e.url, wire.SubprotocolProto, bearerHeader(tok))
	if err != nil {
		t.Fatal(err)
	}
	go c.conn.ReadLoop()
	pong(t, c, 1)

	// The watch breaks while NATS is away: the list stays in force and the feed stays ready.
	f.list = []bus.Revocation{{Kind: bus.RevokeJTI, ID: "c-1"}}
	f.down.Store(true)
	f.steps <- func(bus.RevocationHandler) error { return errors.New("nats: connection closed") }
	if !e.srv.Ready() {
		t.Fatal("not ready after the watch broke")
	}
	pong(t, c, 2)
	// NATS is back; the next watch reads a list that revokes c's token: closed with 4006.
	f.down.Store(false)
	closedWith(t, c, 10*time.Second, wire.CloseTokenRevoked, "token revoked", "a connection revoked by a reload")
	if status, _ := upgradeStatus(t, e.http+"/ws", bearerHeader(tok)); status != http.StatusUnauthorized {
		t.Fatalf("the reloaded list does not refuse the token: %d", status)
	}
}

// A revocation that lands between a token's verification and the connection's sign-in still
// closes it: the connection checks the list after it shows its credential. (Here the Verifier
// does not consult the list at all, which leaves only that check.)
func TestRevokedBetweenVerifyAndSignIn(t *testing.T) {
	k := newAuthKeys(t)
	e := startEnv(t, k.revocableConfig(t, false))
	f := &fakeRevocations{steps: make(chan func(bus.RevocationHandler) error),
		list: []bus.Revocation{{Kind: bus.RevokeJTI, ID: "late"}, {Kind: bus.RevokeSubject, ID: "dave", At: time.Now()}}}
	if err := e.srv.EnableRevocations(f, bus.RevocationConfig{}); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 5*time.Second, "the list read", e.srv.Ready)
	for _, tc := range []struct{ name, tok string }{
		{"jti", k.mintAt(t, "erin", "late", time.Time{})},
		{"subject", k.mintAt(t, "dave", "", time.Now().Add(-time.Minute))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := dial(t, e.url, wire.SubprotocolProto, bearerHeader(tc.tok))
			if err != nil {
				t.Fatalf("upgrade: %v (the Verifier should not see the list here)", err)
			}
			go c.conn.ReadLoop()
			closedWith(t, c, 5*time.Second, wire.CloseTokenRevoked, "token revoked", "signed in with a revoked token")
			c = mustDial(t, e.url, wire.SubprotocolProto)
			authed(c, tc.tok, 1)
			closedWith(t, c, 5*time.Second, wire.CloseTokenRevoked, "token revoked", "an Authenticate with a revoked token")
		})
	}
	if n := testutil.ToFloat64(e.srv.rev.closed); n != 4 {
		t.Fatalf("counted %v revoked connections, want 4", n)
	}
	// Revocation without authentication is refused.
	srv, err := New(Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	if err := srv.EnableRevocations(f, bus.RevocationConfig{}); !errors.Is(err, ErrNoRevocations) {
		t.Fatalf("without authentication: %v", err)
	}
}
