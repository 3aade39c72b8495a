package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tickwire/tickwire/internal/testwait"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

type testKeys struct {
	secret []byte
	rsa    *rsa.PrivateKey
	ec     *ecdsa.PrivateKey
	ed     ed25519.PrivateKey
	dir    string
	hsFile string
	jwks   string
}

var rsaKey *rsa.PrivateKey // generated once: 2048-bit generation is slow under -race

func newTestKeys(t *testing.T) *testKeys {
	t.Helper()
	if rsaKey == nil {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		rsaKey = k
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	k := &testKeys{secret: NewSecret(), rsa: rsaKey, ec: ec, ed: ed, dir: dir,
		hsFile: filepath.Join(dir, "hs256.key"), jwks: filepath.Join(dir, "jwks.json")}
	if err := os.WriteFile(k.hsFile, append(k.secret, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	k.writeJWKS(t, k.jwkSet("rsa1", "ec1", "ed1"))
	return k
}

func enc(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwkSet renders the public keys under the given kids (RSA, EC, Ed25519).
func (k *testKeys) jwkSet(rsaKid, ecKid, edKid string) []map[string]string {
	ecb, _ := k.ec.PublicKey.Bytes() // 0x04 || x || y
	return []map[string]string{
		{"kty": "RSA", "kid": rsaKid, "alg": "RS256", "use": "sig", "n": enc(k.rsa.N.Bytes()), "e": enc(big.NewInt(int64(k.rsa.E)).Bytes())},
		{"kty": "EC", "kid": ecKid, "crv": "P-256", "x": enc(ecb[1:33]), "y": enc(ecb[33:])},
		{"kty": "OKP", "kid": edKid, "crv": "Ed25519", "x": enc(k.ed.Public().(ed25519.PublicKey))},
	}
}

func (k *testKeys) writeJWKS(t *testing.T, keys []map[string]string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"keys": keys})
	tmp := k.jwks + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, k.jwks); err != nil { // atomic, as an operator should
		t.Fatal(err)
	}
}

var grant = Grant{Instruments: []string{"synthetic:*"}, Channels: []string{"quote"}}

func opts(mod func(*MintOptions)) MintOptions {
	o := MintOptions{Subject: "alice", Issuer: "https://idp.example", Audience: "tickwire", TTL: time.Minute, Grant: grant}
	if mod != nil {
		mod(&o)
	}
	return o
}

func mustMint(t *testing.T, m jwt.SigningMethod, kid string, key any, o MintOptions) string {
	t.Helper()
	s, err := Mint(m, kid, key, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rawToken signs a token with arbitrary claims (no exp, ...), bypassing Mint's checks.
func rawToken(t *testing.T, secret []byte, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newVerifier(t *testing.T, k *testKeys, mod func(*Config)) (*Verifier, *prometheus.Registry) {
	t.Helper()
	cfg := Config{HS256KeyFile: k.hsFile, JWKSFile: k.jwks, Issuer: "https://idp.example", Audience: "tickwire",
		WatchInterval: 10 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	reg := prometheus.NewRegistry()
	v, err := New(cfg, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	return v, reg
}

func TestVerify(t *testing.T) {
	k := newTestKeys(t)
	v, reg := newVerifier(t, k, func(c *Config) {
		c.Revoked = func(c *Claims) bool { return c.Subject == "mallory" }
	})
	other := NewSecret()
	now := time.Now()
	noneTok := func() string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "x", "exp": now.Add(time.Minute).Unix(),
			"iss": "https://idp.example", "aud": "tickwire"}).SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	hs := func(mod func(*MintOptions)) string {
		return mustMint(t, jwt.SigningMethodHS256, "", k.secret, opts(mod))
	}
	rsaPub, _ := json.Marshal(k.jwkSet("rsa1", "", "")[0])
	cases := []struct {
		name  string
		token string
		want  Reason // "" accepted
	}{
		{"hs256", hs(nil), ""},
		{"rs256", mustMint(t, jwt.SigningMethodRS256, "rsa1", k.rsa, opts(nil)), ""},
		{"es256", mustMint(t, jwt.SigningMethodES256, "ec1", k.ec, opts(nil)), ""},
		{"eddsa", mustMint(t, jwt.SigningMethodEdDSA, "ed1", k.ed, opts(nil)), ""},
		{"audience among several", rawToken(t, k.secret, jwt.MapClaims{"exp": now.Add(time.Minute).Unix(),
			"iss": "https://idp.example", "aud": []string{"other", "tickwire"}}), ""},
		{"empty", "", ReasonMissing},
		{"garbage", "garbage", ReasonMalformed},
		{"garbage with dots", "a.b.c", ReasonMalformed},
		{"alg none", noneTok(), ReasonAlgNotAllowed},
		{"alg HS512", mustMint(t, jwt.SigningMethodHS512, "", k.secret, opts(nil)), ReasonAlgNotAllowed},
		{"rs256 under the ec key's kid", mustMint(t, jwt.SigningMethodRS256, "ec1", k.rsa, opts(nil)), ReasonAlgNotAllowed},
		{"hs256 signed with the rsa public key as secret (alg confusion)", mustMint(t, jwt.SigningMethodHS256, "rsa1", rsaPub, opts(nil)), ReasonBadSignature},
		{"unknown kid", mustMint(t, jwt.SigningMethodES256, "nope", k.ec, opts(nil)), ReasonUnknownKID},
		{"bad signature hs256", mustMint(t, jwt.SigningMethodHS256, "", other, opts(nil)), ReasonBadSignature},
		{"bad signature tampered", tamper(hs(nil)), ReasonBadSignature},
		{"bad signature es256 other key", mustMint(t, jwt.SigningMethodES256, "ec1", mustEC(t), opts(nil)), ReasonBadSignature},
		{"expired", hs(func(o *MintOptions) { o.Now = now.Add(-2 * time.Minute) }), ReasonExpired},
		{"expired within leeway", hs(func(o *MintOptions) { o.Now = now.Add(-time.Minute - 2*time.Second) }), ""},
		{"not yet valid", hs(func(o *MintOptions) { o.Now = now.Add(time.Minute) }), ReasonNotYetValid},
		{"wrong audience", hs(func(o *MintOptions) { o.Audience = "someone-else" }), ReasonWrongAudience},
		{"no audience", hs(func(o *MintOptions) { o.Audience = "" }), ReasonWrongAudience},
		{"wrong issuer", hs(func(o *MintOptions) { o.Issuer = "https://evil.example" }), ReasonWrongIssuer},
		{"no exp", rawToken(t, k.secret, jwt.MapClaims{"iss": "https://idp.example", "aud": "tickwire"}), ReasonMalformed},
		{"bad grant", rawToken(t, k.secret, jwt.MapClaims{"exp": now.Add(time.Minute).Unix(), "iss": "https://idp.example",
			"aud": "tickwire", "tw": map[string]any{"channels": []string{"level3"}}}), ReasonMalformed},
		{"grant not an object", rawToken(t, k.secret, jwt.MapClaims{"exp": now.Add(time.Minute).Unix(), "iss": "https://idp.example",
			"aud": "tickwire", "tw": "all"}), ReasonMalformed},
		{"revoked", hs(func(o *MintOptions) { o.Subject = "mallory" }), ReasonRevoked},
		{"too long", strings.Repeat("a", maxTokenLen+1), ReasonMalformed},
	}
	counts := map[Reason]int{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := v.Verify(tc.token)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if c.Entitlements == nil {
					t.Fatal("no entitlements compiled")
				}
				return
			}
			counts[tc.want]++
			if got := ReasonOf(err); got != tc.want {
				t.Fatalf("reason %q (%v), want %q", got, err, tc.want)
			}
			if !errors.Is(err, &Error{Reason: tc.want}) {
				t.Fatalf("errors.Is does not match the sentinel of %q", tc.want)
			}
			if tc.token != "" && len(tc.token) > 20 && strings.Contains(err.Error(), tc.token[len(tc.token)-16:]) {
				t.Fatal("the error carries the token")
			}
		})
	}
	for r, n := range counts {
		if got := testutil.ToFloat64(v.metrics.refusals.WithLabelValues(string(r))); int(got) != n {
			t.Errorf("refusals{reason=%q} = %v, want %d", r, got, n)
		}
	}
	if n, _ := testutil.GatherAndCount(reg, "tickwire_auth_refusals_total"); n != len(Reasons) {
		t.Errorf("%d refusal series, want %d (bounded, one per reason)", n, len(Reasons))
	}
}

func mustEC(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// tamper changes the payload of a token, leaving the signature.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	b = []byte(strings.Replace(string(b), `"synthetic:*"`, `"*"`, 1))
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

func TestOnlyConfiguredChecks(t *testing.T) {
	k := newTestKeys(t)
	v, _ := newVerifier(t, k, func(c *Config) { c.Issuer, c.Audience, c.JWKSFile = "", "", "" })
	tok := mustMint(t, jwt.SigningMethodHS256, "", k.secret, opts(func(o *MintOptions) { o.Issuer, o.Audience = "any", "any" }))
	if _, err := v.Verify(tok); err != nil {
		t.Fatalf("issuer and audience not configured, yet refused: %v", err)
	}
	es := mustMint(t, jwt.SigningMethodES256, "ec1", k.ec, opts(nil))
	if r := ReasonOf(func() error { _, err := v.Verify(es); return err }()); r != ReasonAlgNotAllowed {
		t.Fatalf("ES256 without a JWKS: %q, want alg_not_allowed", r)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	k := newTestKeys(t)
	if _, err := New(Config{}, nil, nil); !errors.Is(err, ErrNoKeys) {
		t.Fatalf("no keys: %v", err)
	}
	short := filepath.Join(k.dir, "short")
	os.WriteFile(short, []byte("tooshort\n"), 0o600)
	if _, err := New(Config{HS256KeyFile: short}, nil, nil); err == nil {
		t.Fatal("a short secret accepted")
	}
	for name, keys := range map[string]string{
		"oct":        `{"keys":[{"kty":"oct","k":"AAAA","kid":"a"}]}`,
		"bad alg":    `{"keys":[{"kty":"OKP","crv":"Ed25519","alg":"RS256","kid":"a","x":"` + enc(make([]byte, 32)) + `"}]}`,
		"small rsa":  `{"keys":[{"kty":"RSA","kid":"a","n":"` + enc(big.NewInt(1<<62-57).Bytes()) + `","e":"AQAB"}]}`,
		"dup kid":    `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"` + enc(make([]byte, 32)) + `"},{"kty":"OKP","crv":"Ed25519","kid":"a","x":"` + enc(make([]byte, 32)) + `"}]}`,
		"empty":      `{"keys":[]}`,
		"not json":   `{`,
		"off curve":  `{"keys":[{"kty":"EC","crv":"P-256","kid":"a","x":"` + enc(make([]byte, 32)) + `","y":"` + enc(make([]byte, 32)) + `"}]}`,
		"no kid two": `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + enc(make([]byte, 32)) + `"},{"kty":"OKP","crv":"Ed25519","kid":"b","x":"` + enc(make([]byte, 32)) + `"}]}`,
	} {
		f := filepath.Join(k.dir, "bad.json")
		os.WriteFile(f, []byte(keys), 0o644)
		if _, err := New(Config{JWKSFile: f}, nil, nil); err == nil {
			t.Errorf("%s: JWKS accepted", name)
		}
	}
}

// A key set with one key and no kid verifies tokens that name no kid.
func TestSingleKeyWithoutKid(t *testing.T) {
	k := newTestKeys(t)
	set := k.jwkSet("", "", "")[2:]
	k.writeJWKS(t, set)
	v, _ := newVerifier(t, k, nil)
	if _, err := v.Verify(mustMint(t, jwt.SigningMethodEdDSA, "", k.ed, opts(nil))); err != nil {
		t.Fatal(err)
	}
}

// Keys rotate without a restart: Watch sees the file change, Reload reads it at once, and a
// file that fails to load keeps the keys in use.
func TestJWKSRotation(t *testing.T) {
	k := newTestKeys(t)
	v, reg := newVerifier(t, k, nil)
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() { v.Watch(quit); close(done) }()
	defer func() { close(quit); <-done }()

	old := mustMint(t, jwt.SigningMethodEdDSA, "ed1", k.ed, opts(nil))
	next := mustMint(t, jwt.SigningMethodEdDSA, "ed2", k.ed, opts(nil))
	if _, err := v.Verify(next); !errors.Is(err, ErrUnknownKID) {
		t.Fatalf("ed2 before rotation: %v", err)
	}
	k.writeJWKS(t, k.jwkSet("rsa1", "ec1", "ed2")) // ed1 retired, ed2 in
	testwait.For(t, 5*time.Second, "the condition", func() bool { _, err := v.Verify(next); return err == nil })
	if _, err := v.Verify(old); !errors.Is(err, ErrUnknownKID) {
		t.Fatalf("retired kid still verifies: %v", err)
	}

	os.WriteFile(k.jwks, []byte("{broken"), 0o644)
	if err := v.Reload(); err == nil {
		t.Fatal("a broken JWKS loaded")
	}
	if _, err := v.Verify(next); err != nil {
		t.Fatalf("keys lost after a failed load: %v", err)
	}
	if n := testutil.ToFloat64(v.metrics.reloads.WithLabelValues("error")); n < 1 {
		t.Fatalf("failed load not counted")
	}
	k.writeJWKS(t, k.jwkSet("rsa1", "ec1", "ed3"))
	if err := v.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(next); !errors.Is(err, ErrUnknownKID) {
		t.Fatalf("after explicit Reload: %v", err)
	}
	if n, _ := testutil.GatherAndCount(reg, "tickwire_auth_jwks_keys"); n != 1 {
		t.Fatal("keys gauge missing")
	}
}

func TestEntitlements(t *testing.T) {
	e, err := Grant{Instruments: []string{"coinbase:*", "binance:BTCUSDT"}, Channels: []string{"quote", "book"}, MaxDepth: 10}.Compile()
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{
		"coinbase:BTC-USD": true, "coinbase:ETH-USD": true, "binance:BTCUSDT": true,
		"binance:ETHUSDT": false, "synthetic:ACME": false, "coinbase": false, "": false,
		"coinbasex:BTC-USD": false, "binance:BTCUSDTX": false,
	} {
		if got := e.Instrument(id); got != want {
			t.Errorf("Instrument(%q) = %v, want %v", id, got, want)
		}
	}
	for venue, want := range map[string]bool{"coinbase": true, "binance": true, "synthetic": false, "coinbasex": false, "": false} {
		if got := e.Venue(venue); got != want {
			t.Errorf("Venue(%q) = %v, want %v", venue, got, want)
		}
	}
	for ch, want := range map[pb.Channel]bool{pb.Channel_CHANNEL_QUOTE: true, pb.Channel_CHANNEL_BOOK: true,
		pb.Channel_CHANNEL_TRADES: false, pb.Channel_CHANNEL_UNSPECIFIED: false, pb.Channel(40): false} {
		if got := e.Channel(ch); got != want {
			t.Errorf("Channel(%v) = %v, want %v", ch, got, want)
		}
	}
	all, _ := Grant{Instruments: []string{"*"}}.Compile()
	if !all.Instrument("anything:X") || !all.Venue("anything") || !all.Channel(pb.Channel_CHANNEL_STATS) {
		t.Error("* and omitted channels should allow everything")
	}
	none, _ := Grant{}.Compile()
	if none.Instrument("synthetic:ACME") {
		t.Error("an empty grant allows an instrument")
	}
	var nilE *Entitlements
	if nilE.Instrument("x:Y") || nilE.Venue("x") || nilE.Channel(pb.Channel_CHANNEL_QUOTE) {
		t.Error("nil entitlements allow something")
	}
	for _, bad := range []string{"coin*:X", "coinbase:BTC*", "*:BTC", "nocolon", ":X", "x:", "a b:c"} {
		if _, err := (Grant{Instruments: []string{bad}}).Compile(); err == nil {
			t.Errorf("pattern %q accepted", bad)
		}
	}
	if d := e.Depth(50, 10); d != 10 {
		t.Errorf("Depth(50) = %d, want the cap 10", d)
	}
	if d := e.Depth(0, 50); d != 10 {
		t.Errorf("Depth(default 50) = %d, want the cap 10", d)
	}
	if d := all.Depth(0, 50); d != 50 {
		t.Errorf("uncapped Depth(default) = %d", d)
	}
}

func TestParseGrant(t *testing.T) {
	e, err := ParseGrant([]byte(`{"instruments":["synthetic:*"],"channels":["quote","trades"],"max_subscriptions":5}`))
	if err != nil {
		t.Fatal(err)
	}
	if !e.Instrument("synthetic:ACME") || e.MaxSubscriptions != 5 || e.Channel(pb.Channel_CHANNEL_BOOK) {
		t.Fatalf("%+v", e)
	}
	if _, err := ParseGrant([]byte(`{"instrument":["*"]}`)); err == nil {
		t.Fatal("a misspelt policy key accepted")
	}
}

func FuzzParseGrant(f *testing.F) {
	f.Add([]byte(`{"instruments":["coinbase:*","binance:BTCUSDT"],"channels":["quote","book"],"max_depth":50,"replay":true,"max_subscriptions":100}`))
	f.Add([]byte(`{"instruments":["*"]}`))
	f.Add([]byte(`{"instruments":[":*"],"channels":[""]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseGrant(b)
		if err != nil {
			return
		}
		// A compiled grant answers every question without panicking, and "*" is the only way
		// to see an instrument whose venue it does not name.
		_ = e.Channel(pb.Channel(len(b)))
		_ = e.Depth(uint32(len(b)), 50)
		if e.Instrument("zz-unnamed-venue:X") && !e.all {
			t.Fatalf("grant %q sees an instrument it does not name", b)
		}
	})
}

func TestGrantRateAndDelay(t *testing.T) {
	for _, tc := range []struct {
		grant    string
		interval time.Duration
		delay    time.Duration
		control  bool
		bad      bool
	}{
		{grant: `{"instruments":["*"]}`},
		{grant: `{"instruments":["*"],"max_rate":1}`, interval: time.Second},
		{grant: `{"instruments":["*"],"max_rate":4}`, interval: 250 * time.Millisecond},
		{grant: `{"instruments":["*"],"max_rate":0.2}`, interval: 5 * time.Second},
		{grant: `{"instruments":["*"],"max_rate":0.01}`, interval: 100 * time.Second},    // at the floor
		{grant: `{"instruments":["*"],"max_rate":100}`, interval: 10 * time.Millisecond}, // at the ceiling
		{grant: `{"instruments":["*"],"max_rate":0.009}`, bad: true},
		{grant: `{"instruments":["*"],"max_rate":100.5}`, bad: true},
		{grant: `{"instruments":["*"],"max_rate":-1}`, bad: true},
		{grant: `{"instruments":["*"],"delay":900}`, delay: 15 * time.Minute},
		{grant: `{"instruments":["*"],"delay":86400}`, delay: 24 * time.Hour}, // at the limit
		{grant: `{"instruments":["*"],"delay":86401}`, bad: true},
		{grant: `{"instruments":["*"],"delay":-5}`, bad: true},
		{grant: `{"instruments":["*"],"delay":1.5}`, bad: true}, // whole seconds
		{grant: `{"instruments":["*"],"replay":true,"replay_control":true}`, control: true},
	} {
		e, err := ParseGrant([]byte(tc.grant))
		if tc.bad {
			if err == nil {
				t.Errorf("%s: accepted", tc.grant)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.grant, err)
			continue
		}
		if e.Interval != tc.interval || e.Delay != tc.delay || e.ReplayControl != tc.control {
			t.Errorf("%s: interval %v delay %v control %v, want %v %v %v", tc.grant,
				e.Interval, e.Delay, e.ReplayControl, tc.interval, tc.delay, tc.control)
		}
	}
}

// TestUnverifiedSubject: the sub of a well-formed token, signature unchecked; an error for
// something that is not a JWT and for a token without sub.
func TestUnverifiedSubject(t *testing.T) {
	secret := NewSecret()
	tok, err := MintHS256(secret, MintOptions{Subject: "operator", TTL: time.Minute, Grant: grant})
	if err != nil {
		t.Fatal(err)
	}
	if sub, err := UnverifiedSubject(tok); err != nil || sub != "operator" {
		t.Fatalf("UnverifiedSubject = %q, %v", sub, err)
	}
	noSub, err := MintHS256(secret, MintOptions{TTL: time.Minute, Grant: grant})
	if err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]string{"garbage": "not-a-jwt", "empty": "", "no sub": noSub, "bad base64": "a.b@.c"} {
		if sub, err := UnverifiedSubject(bad); err == nil {
			t.Errorf("%s: accepted as %q", name, sub)
		}
	}
}
