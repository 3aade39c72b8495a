package feed

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/lxzan/gws"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/tickwire/tickwire/internal/auth"
	"github.com/tickwire/tickwire/internal/testwait"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// authKeys are an HS256 secret and an Ed25519 key (in a JWKS as kid "ed1") for a test feed.
type authKeys struct {
	secret []byte
	ed     ed25519.PrivateKey
	hsFile string
	jwks   string
}

func newAuthKeys(t *testing.T) *authKeys {
	t.Helper()
	dir := t.TempDir()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k := &authKeys{secret: auth.NewSecret(), ed: priv, hsFile: filepath.Join(dir, "hs256.key"), jwks: filepath.Join(dir, "jwks.json")}
	b, _ := json.Marshal(map[string]any{"keys": []map[string]string{
		{"kty": "OKP", "crv": "Ed25519", "kid": "ed1", "x": base64.RawURLEncoding.EncodeToString(pub)}}})
	if err := os.WriteFile(k.jwks, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(k.hsFile, k.secret, 0o600); err != nil {
		t.Fatal(err)
	}
	return k
}

// authConfig is a feed Config with authentication on: audience "tickwire".
func (k *authKeys) authConfig(t *testing.T, anonymous *auth.Entitlements) Config {
	t.Helper()
	v, err := auth.New(auth.Config{HS256KeyFile: k.hsFile, JWKSFile: k.jwks, Audience: "tickwire"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return Config{Auth: AuthConfig{Verifier: v, Anonymous: anonymous, Timeout: 500 * time.Millisecond}}
}

func (k *authKeys) token(t *testing.T, sub string, ttl time.Duration, g auth.Grant) string {
	t.Helper()
	s, err := auth.MintHS256(k.secret, auth.MintOptions{Subject: sub, Audience: "tickwire", TTL: ttl, Grant: g})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func bearerHeader(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

// upgradeStatus sends a WebSocket upgrade with header and returns the status and body.
func upgradeStatus(t *testing.T, url string, header http.Header) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func authed(c *wsClient, tok string, id uint32) {
	c.send(&pb.ClientMessage{Id: id, Command: &pb.ClientMessage_Authenticate{Authenticate: &pb.Authenticate{Token: tok}}})
}

// waitMsg reads c until pick returns true for a message, and returns it.
func waitMsg(t *testing.T, c *wsClient, what string, pick func(*pb.ServerMessage) bool) *pb.ServerMessage {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range c.next(time.Until(deadline)) {
			if pick(m) {
				return m
			}
		}
	}
	t.Fatalf("no %s", what)
	return nil
}

var allGrant = auth.Grant{Instruments: []string{"*"}}

// Every refusal before the upgrade: 401 with its reason, never 101 (a garbage bearer got 101
// before tokens existed).
func TestAuthUpgradeRefusals(t *testing.T) {
	k := newAuthKeys(t)
	e := startEnv(t, k.authConfig(t, nil))
	mint := func(m jwt.SigningMethod, kid string, key any, mod func(*auth.MintOptions)) string {
		o := auth.MintOptions{Subject: "bot", Audience: "tickwire", TTL: time.Minute, Grant: allGrant}
		if mod != nil {
			mod(&o)
		}
		s, err := auth.Mint(m, kid, key, o)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "bot", "aud": "tickwire",
		"exp": time.Now().Add(time.Minute).Unix()}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	cases := []struct {
		name, header, reason string
	}{
		{"garbage bearer", "Bearer garbage", "malformed"},
		{"not bearer", "Basic dXNlcjpwYXNz", "malformed"},
		{"alg none", "Bearer " + none, "alg_not_allowed"},
		{"bad signature", "Bearer " + mint(jwt.SigningMethodHS256, "", auth.NewSecret(), nil), "bad_signature"},
		{"expired", "Bearer " + mint(jwt.SigningMethodHS256, "", k.secret, func(o *auth.MintOptions) { o.Now = time.Now().Add(-time.Hour) }), "expired"},
		{"unknown kid", "Bearer " + mint(jwt.SigningMethodEdDSA, "ed9", k.ed, nil), "unknown_kid"},
		{"wrong audience", "Bearer " + mint(jwt.SigningMethodHS256, "", k.secret, func(o *auth.MintOptions) { o.Audience = "other" }), "wrong_audience"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := upgradeStatus(t, e.http+"/ws", http.Header{"Authorization": {tc.header}})
			if status != http.StatusUnauthorized || !strings.Contains(body, tc.reason) {
				t.Fatalf("%d %q, want 401 naming %q", status, body, tc.reason)
			}
			if strings.Contains(body, strings.TrimPrefix(tc.header, "Bearer ")) {
				t.Fatal("the body echoes the token")
			}
		})
	}
	if n := testutil.ToFloat64(e.srv.metrics.connsRejected.WithLabelValues("unauthorized")); int(n) != len(cases) {
		t.Errorf("connections rejected as unauthorized: %v, want %d", n, len(cases))
	}
	// A token in the URL is refused even when valid: URLs land in logs.
	if status, _ := upgradeStatus(t, e.http+"/ws"+"?token="+k.token(t, "bot", time.Minute, allGrant), nil); status != http.StatusBadRequest {
		t.Errorf("token in the URL: %d, want 400", status)
	}
	// A valid token upgrades, with either key.
	for _, tok := range []string{k.token(t, "bot", time.Minute, allGrant), mint(jwt.SigningMethodEdDSA, "ed1", k.ed, nil)} {
		if _, err := dial(t, e.url, wire.SubprotocolProto, bearerHeader(tok)); err != nil {
			t.Fatalf("valid token refused: %v", err)
		}
	}
	// Replay watchers need the replay right: 403 before the session is looked up (this feed has
	// no replay source: 501 for an entitled token).
	if status, _ := upgradeStatus(t, e.http+"/ws"+"?replay=r1", bearerHeader(k.token(t, "bot", time.Minute, allGrant))); status != http.StatusForbidden {
		t.Errorf("replay without the right: %d, want 403", status)
	}
	replayGrant := auth.Grant{Instruments: []string{"*"}, Replay: true}
	if status, _ := upgradeStatus(t, e.http+"/ws"+"?replay=r1", bearerHeader(k.token(t, "bot", time.Minute, replayGrant))); status != http.StatusNotImplemented {
		t.Errorf("replay with the right: %d, want 501 (no replay source)", status)
	}
}

// A browser signs in with Authenticate; nothing but Ping is served before; a refused token or
// none in time closes with 4501.
func TestAuthenticateInBand(t *testing.T) {
	k := newAuthKeys(t)
	e := startEnv(t, k.authConfig(t, nil))
	p := newPublisher(t, e.bus, 2)
	p.publish(50)
	e.waitApplied(p)
	id := p.instruments()[0]

	c := mustDial(t, e.url, wire.SubprotocolJSON)
	c.send(subscribe(1, []string{id}, 0, pb.Channel_CHANNEL_QUOTE))
	if err := c.waitError(5 * time.Second); err.Code != pb.ErrorCode_ERROR_CODE_UNAUTHENTICATED || err.RequestId != 1 {
		t.Fatalf("subscribe before sign-in: %v", err)
	}
	tok := k.token(t, "browser", time.Minute, allGrant)
	authed(c, tok, 2)
	a := waitMsg(t, c, "Authenticated", func(m *pb.ServerMessage) bool { return m.GetAuthenticated() != nil }).GetAuthenticated()
	if a.RequestId != 2 || a.Subject != "browser" || a.ExpiresAtNs <= time.Now().UnixNano() {
		t.Fatalf("authenticated %v", a)
	}
	c.send(subscribe(3, []string{id}, 0, pb.Channel_CHANNEL_QUOTE))
	waitForSubscribed(t, c)

	bad := mustDial(t, e.url, wire.SubprotocolProto)
	authed(bad, "garbage", 1)
	if code := bad.closeCode(5 * time.Second); code != wire.CloseUnauthorized {
		t.Fatalf("bad token in band: close %d, want %d", code, wire.CloseUnauthorized)
	}
	silent := mustDial(t, e.url, wire.SubprotocolProto)
	if code := silent.closeCode(5 * time.Second); code != wire.CloseUnauthorized {
		t.Fatalf("no sign-in in time: close %d, want %d", code, wire.CloseUnauthorized)
	}
}

// Without a token a connection is anonymous only under the operator's policy.
func TestAnonymousPolicy(t *testing.T) {
	k := newAuthKeys(t)
	policy, err := auth.ParseGrant([]byte(`{"instruments":["synthetic:*"],"channels":["quote"]}`))
	if err != nil {
		t.Fatal(err)
	}
	e := startEnv(t, k.authConfig(t, policy))
	p := newPublisher(t, e.bus, 2)
	p.publish(50)
	e.waitApplied(p)
	c := mustDial(t, e.url, wire.SubprotocolJSON)
	c.send(subscribe(1, p.instruments()[:1], 0, pb.Channel_CHANNEL_QUOTE, pb.Channel_CHANNEL_BOOK))
	// The error and the Subscribed may share a frame: read them together.
	var nerr *pb.Error
	var sub *pb.Subscribed
	for nerr == nil || sub == nil {
		for _, m := range c.next(5 * time.Second) {
			if m.GetError() != nil {
				nerr = m.GetError()
			}
			if m.GetSubscribed() != nil {
				sub = m.GetSubscribed()
			}
		}
	}
	if nerr.Code != pb.ErrorCode_ERROR_CODE_NOT_ENTITLED || !strings.Contains(nerr.Message, "book") {
		t.Fatalf("book under a quote-only policy: %v", nerr)
	}
	if !slices.Equal(sub.Channels, []pb.Channel{pb.Channel_CHANNEL_QUOTE}) {
		t.Fatalf("subscribed %v", sub.Channels)
	}
	resp, err := http.Get(e.http + "/api/instruments")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/api/instruments anonymous under a policy: %d", resp.StatusCode)
	}
	// A policy without the replay right leaves a replay watcher to sign in in band (this feed
	// has no replay source: 501 after the credentials); a token without it, even one without a
	// subject, is refused.
	if status, _ := upgradeStatus(t, e.http+"/ws?replay=r1", nil); status != http.StatusNotImplemented {
		t.Errorf("anonymous replay watcher: %d, want 501 (left to sign in)", status)
	}
	if status, _ := upgradeStatus(t, e.http+"/ws?replay=r1", bearerHeader(k.token(t, "", time.Minute, allGrant))); status != http.StatusForbidden {
		t.Errorf("token without sub or replay right: %d, want 403", status)
	}
}

// Entitlements on every command that opens or renews a stream, and on the HTTP queries.
func TestEntitlements(t *testing.T) {
	k := newAuthKeys(t)
	e := startEnv(t, k.authConfig(t, nil))
	p := newPublisher(t, e.bus, 3)
	p.publish(300)
	e.waitApplied(p)
	ids := p.instruments()
	mine, theirs := ids[0], ids[1]
	g := auth.Grant{Instruments: []string{mine}, Channels: []string{"quote", "book", "trades"}, MaxDepth: 10}
	tok := k.token(t, "trader", time.Minute, g)
	c, err := dial(t, e.url, wire.SubprotocolJSON, bearerHeader(tok))
	if err != nil {
		t.Fatal(err)
	}
	go c.conn.ReadLoop()

	// Subscribe: the stats channel refused for the command, theirs and an instrument that does
	// not exist refused alike (no hint which exists), mine granted with the book capped at 10.
	c.send(subscribe(1, []string{mine, theirs, "nowhere:X"}, 50, pb.Channel_CHANNEL_QUOTE, pb.Channel_CHANNEL_BOOK, pb.Channel_CHANNEL_STATS))
	var errs []*pb.Error
	var sub *pb.Subscribed
	handles := map[uint32]bool{}
	for sub == nil || len(errs) < 2 {
		for _, m := range c.next(5 * time.Second) {
			switch {
			case m.GetError() != nil:
				errs = append(errs, m.GetError())
			case m.GetSubscribed() != nil:
				sub = m.GetSubscribed()
			case m.GetSnapshot() != nil:
				handles[m.GetSnapshot().Handle] = true
			}
		}
	}
	if errs[0].Code != pb.ErrorCode_ERROR_CODE_NOT_ENTITLED || !strings.Contains(errs[0].Message, "stats") {
		t.Fatalf("first error %v, want NOT_ENTITLED for stats", errs[0])
	}
	if errs[1].Code != pb.ErrorCode_ERROR_CODE_NOT_ENTITLED || errs[1].Instrument != theirs || !strings.Contains(errs[1].Message, "2 instruments") {
		t.Fatalf("second error %v, want NOT_ENTITLED for %s and nowhere:X", errs[1], theirs)
	}
	if sub.Info.GetId() != mine || sub.Depth != 10 || slices.Contains(sub.Channels, pb.Channel_CHANNEL_STATS) {
		t.Fatalf("subscribed %v, want %s at depth 10 without stats", sub, mine)
	}
	// Resync and resume of a stream outside the grant.
	c.send(&pb.ClientMessage{Id: 2, Command: &pb.ClientMessage_Resync{Resync: &pb.Resync{Instrument: theirs}}})
	if err := c.waitError(5 * time.Second); err.Code != pb.ErrorCode_ERROR_CODE_NOT_ENTITLED || err.Instrument != theirs {
		t.Fatalf("resync of theirs: %v", err)
	}
	c.send(&pb.ClientMessage{Id: 3, Command: &pb.ClientMessage_Subscribe{Subscribe: &pb.Subscribe{
		Instruments: []string{theirs}, Channels: []pb.Channel{pb.Channel_CHANNEL_QUOTE},
		Resume: []*pb.StreamPosition{{Instrument: theirs, Channel: pb.Channel_CHANNEL_QUOTE, Epoch: p.epoch, Seq: 1}}}}})
	if err := c.waitError(5 * time.Second); err.Code != pb.ErrorCode_ERROR_CODE_NOT_ENTITLED || err.Instrument != theirs {
		t.Fatalf("resume of theirs: %v", err)
	}
	c.send(&pb.ClientMessage{Id: 4, Command: &pb.ClientMessage_Resync{Resync: &pb.Resync{Instrument: mine, Channels: []pb.Channel{pb.Channel_CHANNEL_CANDLES}}}})
	if err := c.waitError(5 * time.Second); err.Code != pb.ErrorCode_ERROR_CODE_NOT_ENTITLED {
		t.Fatalf("resync of an unentitled channel: %v", err)
	}
	c.send(&pb.ClientMessage{Id: 5, Command: &pb.ClientMessage_ListInstruments{ListInstruments: &pb.ListInstruments{}}})
	list := waitMsg(t, c, "InstrumentList", func(m *pb.ServerMessage) bool { return m.GetInstrumentList() != nil }).GetInstrumentList()
	if len(list.Instruments) != 1 || list.Instruments[0].Id != mine {
		t.Fatalf("ListInstruments: %v, want %s only", list.Instruments, mine)
	}
	c.send(&pb.ClientMessage{Id: 6, Command: &pb.ClientMessage_ReplayControl{ReplayControl: &pb.ReplayControl{Action: &pb.ReplayControl_Pause{Pause: true}}}})
	if err := c.waitError(5 * time.Second); err.Code != pb.ErrorCode_ERROR_CODE_NOT_ENTITLED {
		t.Fatalf("replay control without the right: %v", err)
	}
	if len(handles) > 1 || (len(handles) == 1 && !handles[sub.Handle]) {
		t.Fatalf("snapshots of %v, want only %s's handle %d", handles, mine, sub.Handle)
	}

	// HTTP: a Bearer header, filtered lists, candles refused outside the grant.
	get := func(path string, h http.Header) (int, []byte) {
		req, _ := http.NewRequest("GET", e.http+path, nil)
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if status, _ := get("/api/instruments", nil); status != http.StatusUnauthorized {
		t.Fatalf("/api/instruments without a token: %d", status)
	}
	if status, _ := get("/api/instruments", http.Header{"Authorization": {"Bearer nope"}}); status != http.StatusUnauthorized {
		t.Fatalf("/api/instruments with a bad token: %d", status)
	}
	status, body := get("/api/instruments", bearerHeader(tok))
	var httpList pb.InstrumentList
	if err := protojson.Unmarshal(body, &httpList); status != 200 || err != nil || len(httpList.Instruments) != 1 || httpList.Instruments[0].Id != mine {
		t.Fatalf("/api/instruments: %d %v %s, want %s only", status, err, body, mine)
	}
	candleGrant := k.token(t, "trader", time.Minute, auth.Grant{Instruments: []string{mine}, Channels: []string{"candles"}})
	if status, body := get("/api/candles?instrument="+theirs+"&interval=60", bearerHeader(candleGrant)); status != http.StatusForbidden {
		t.Fatalf("/api/candles of theirs: %d %s, want 403", status, body)
	}
	if status, _ := get("/api/candles?instrument="+mine+"&interval=60", bearerHeader(tok)); status != http.StatusForbidden {
		t.Fatalf("/api/candles without the candles channel: %d, want 403", status)
	}
	if status, body := get("/api/candles?instrument="+mine+"&interval=60", bearerHeader(candleGrant)); status == http.StatusForbidden || status == http.StatusUnauthorized {
		t.Fatalf("/api/candles of mine: %d %s", status, body)
	}
	if status, _ := get("/api/candles?instrument="+mine+"&interval=60", nil); status != http.StatusUnauthorized {
		t.Fatalf("/api/candles without a token: %d", status)
	}
}

// A depth cap below every offered depth refuses the book rather than sending a deeper one.
func TestDepthCapBelowOffered(t *testing.T) {
	k := newAuthKeys(t)
	e := startEnv(t, k.authConfig(t, nil))
	p := newPublisher(t, e.bus, 1)
	p.publish(50)
	e.waitApplied(p)
	c, err := dial(t, e.url, wire.SubprotocolJSON, bearerHeader(k.token(t, "t", time.Minute, auth.Grant{Instruments: []string{"*"}, MaxDepth: 5})))
	if err != nil {
		t.Fatal(err)
	}
	go c.conn.ReadLoop()
	c.send(subscribe(1, p.instruments(), 0, pb.Channel_CHANNEL_BOOK))
	if err := c.waitError(5 * time.Second); err.Code != pb.ErrorCode_ERROR_CODE_NOT_ENTITLED || !strings.Contains(err.Message, "book") {
		t.Fatalf("book under a cap of 5: %v", err)
	}
}

// A token that lapses closes the connection with 4005 before exp, and nothing is sent after it;
// an Authenticate with a fresh token before exp keeps it open.
func TestTokenExpiry(t *testing.T) {
	k := newAuthKeys(t)
	e := startEnv(t, k.authConfig(t, nil))
	p := newPublisher(t, e.bus, 1)
	p.publish(10)
	e.waitApplied(p)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				p.publish(1)
			}
		}
	}()
	defer func() { close(stop); <-done }()

	short := func(sub string) (string, time.Time) {
		tok := k.token(t, sub, 2*time.Second, allGrant)
		c, err := auth.New(auth.Config{HS256KeyFile: k.hsFile, Audience: "tickwire"}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		claims, err := c.Verify(tok)
		if err != nil {
			t.Fatal(err)
		}
		return tok, claims.Expires()
	}

	tok, exp := short("lapses")
	c, err := dial(t, e.url, wire.SubprotocolProto, bearerHeader(tok))
	if err != nil {
		t.Fatal(err)
	}
	go c.conn.ReadLoop()
	c.send(subscribe(1, p.instruments(), 0, pb.Channel_CHANNEL_QUOTE))
	frames := 0
	var code int
read:
	for {
		select {
		case b := <-c.frames:
			var f pb.ServerFrame
			if err := wire.DecodeFrame(b, wire.SubprotocolProto, &f); err != nil {
				t.Fatal(err)
			}
			if f.SendTimeNs >= exp.UnixNano() {
				t.Fatalf("a frame sent %v after exp", time.Duration(f.SendTimeNs-exp.UnixNano()))
			}
			frames++
		case err := <-c.closeCh:
			code = closeCodeOf(err)
			break read
		case <-time.After(10 * time.Second):
			t.Fatal("not closed at exp")
		}
	}
	if code != wire.CloseTokenExpired || frames < 10 {
		t.Fatalf("closed with %d after %d frames, want %d after data flowed", code, frames, wire.CloseTokenExpired)
	}
	if time.Now().Before(exp.Add(-expiryMargin - 50*time.Millisecond)) {
		t.Fatalf("closed %v before exp", time.Until(exp))
	}

	// Refreshed before exp: still served a second after the first token's exp. A refresh for
	// another subject is refused and changes nothing.
	tok, exp = short("refreshes")
	r, err := dial(t, e.url, wire.SubprotocolProto, bearerHeader(tok))
	if err != nil {
		t.Fatal(err)
	}
	go r.conn.ReadLoop()
	r.send(subscribe(1, p.instruments(), 0, pb.Channel_CHANNEL_QUOTE))
	waitForSubscribed(t, r)
	authed(r, k.token(t, "someone-else", time.Hour, allGrant), 2)
	if err := r.waitError(5 * time.Second); err.Code != pb.ErrorCode_ERROR_CODE_UNAUTHENTICATED || !strings.Contains(err.Message, "subject_mismatch") {
		t.Fatalf("refresh for another subject: %v", err)
	}
	authed(r, k.token(t, "refreshes", time.Minute, allGrant), 3)
	a := waitMsg(t, r, "Authenticated", func(m *pb.ServerMessage) bool { return m.GetAuthenticated() != nil }).GetAuthenticated()
	if a.RequestId != 3 || a.ExpiresAtNs <= exp.UnixNano() {
		t.Fatalf("refresh answered %v", a)
	}
	for time.Now().Before(exp.Add(time.Second)) {
		r.next(5 * time.Second) // fails the test if the connection closes
	}
	// A refresh that narrows the grant ends the streams it no longer covers.
	authed(r, k.token(t, "refreshes", time.Minute, auth.Grant{Instruments: []string{"other:*"}}), 4)
	var unsub *pb.Unsubscribed
	var nerr *pb.Error
	for unsub == nil || nerr == nil {
		for _, m := range r.next(5 * time.Second) {
			if m.GetUnsubscribed() != nil {
				unsub = m.GetUnsubscribed()
			}
			if m.GetError() != nil {
				nerr = m.GetError()
			}
		}
	}
	if nerr.Code != pb.ErrorCode_ERROR_CODE_NOT_ENTITLED || unsub.RequestId != 4 {
		t.Fatalf("narrowing refresh: %v %v", nerr, unsub)
	}
}

// max_connections caps a subject's concurrent connections on a replica.
func TestSubjectConnectionCap(t *testing.T) {
	k := newAuthKeys(t)
	e := startEnv(t, k.authConfig(t, nil))
	tok := k.token(t, "one-only", time.Minute, auth.Grant{Instruments: []string{"*"}, MaxConnections: 1})
	first, err := dial(t, e.url, wire.SubprotocolProto, bearerHeader(tok))
	if err != nil {
		t.Fatal(err)
	}
	go first.conn.ReadLoop()
	second, err := dial(t, e.url, wire.SubprotocolProto, bearerHeader(tok))
	if err != nil {
		t.Fatal(err)
	}
	go second.conn.ReadLoop()
	if code := second.closeCode(5 * time.Second); code != wire.CloseUnauthorized {
		t.Fatalf("second connection of a one-connection subject: %d", code)
	}
	first.conn.WriteClose(1000, nil)
	testwait.For(t, 5*time.Second, "the slot freed", func() bool {
		e.srv.mu.Lock()
		defer e.srv.mu.Unlock()
		return e.srv.subjects["one-only"] == 0
	})
	third, err := dial(t, e.url, wire.SubprotocolProto, bearerHeader(tok))
	if err != nil {
		t.Fatal(err)
	}
	go third.conn.ReadLoop()
	third.send(&pb.ClientMessage{Id: 1, Command: &pb.ClientMessage_Ping{Ping: &pb.Ping{Nonce: 1}}})
	waitMsg(t, third, "Pong", func(m *pb.ServerMessage) bool { return m.GetPong() != nil })
}

func closeCodeOf(err error) int {
	var ce *gws.CloseError
	if errors.As(err, &ce) {
		return int(ce.Code)
	}
	return -1
}
