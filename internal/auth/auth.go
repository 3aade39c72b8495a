// Package auth verifies the signed tokens (JWTs) that clients of feed present, and compiles the
// entitlements they carry (docs/PROTOCOL.md, "Authentication"; docs/OPERATIONS.md, "Tokens").
//
// Keys: an HS256 shared secret read from a file, and public keys (RS256, ES256, ES384, EdDSA)
// from a JWKS file that is read again when it changes and on Reload (cmd/feed: SIGHUP). Each key
// verifies exactly one algorithm. A token must carry exp; nbf, iss and aud are checked when set
// or configured, with a small leeway for clocks. Every refusal is an *Error with its Reason,
// counted in tickwire_auth_refusals_total{reason}; the token itself is never logged or put in
// an error.
package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Verifier.
type Config struct {
	// HS256KeyFile holds the HS256 shared secret (its bytes, trailing newline trimmed; at least
	// 32 bytes).
	HS256KeyFile string
	// JWKSFile holds a JSON Web Key Set of public keys; reloaded on change and on Reload.
	JWKSFile string
	// Issuer, when set, must equal the token's iss.
	Issuer string
	// Audience, when set, must be among the token's aud.
	Audience string
	// Leeway forgives clock skew on exp and nbf (0: 5 s; negative: none).
	Leeway time.Duration
	// WatchInterval is how often Watch looks at the JWKS file (0: 1 s).
	WatchInterval time.Duration
	// Revoked, when set, is asked about every verified token; true refuses it (ErrRevoked).
	Revoked func(c *Claims) bool
	// Now is the clock (nil: time.Now); for tests.
	Now func() time.Time
}

// minSecret is the shortest HS256 secret accepted: RFC 7518 section 3.2 asks for a key at least
// as long as the hash.
const minSecret = 32

// Claims are a verified token's claims.
type Claims struct {
	jwt.RegisteredClaims
	// Grant is the "tw" claim as sent; Entitlements is it compiled.
	Grant        *Grant        `json:"tw,omitempty"`
	Entitlements *Entitlements `json:"-"`
}

// Expires returns exp (the zero time for claims that never expire: the anonymous policy).
func (c *Claims) Expires() time.Time {
	if c == nil || c.ExpiresAt == nil {
		return time.Time{}
	}
	return c.ExpiresAt.Time
}

// Verifier checks tokens. It is safe for concurrent use.
type Verifier struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	parser  *jwt.Parser
	hs      []byte // nil without an HS256 key

	mu sync.RWMutex
	// guarded by mu:
	jwks    map[string]key // by kid
	jwksRaw []byte         // the file's bytes last loaded (to see a change)
}

type metrics struct {
	verified prometheus.Counter
	refusals *prometheus.CounterVec // reason (Reasons)
	reloads  *prometheus.CounterVec // result: ok, error
	keys     prometheus.Gauge
}

// New builds a Verifier, reading the key files. A nil logger discards logs; a nil registerer
// skips metric registration.
func New(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Verifier, error) {
	if cfg.HS256KeyFile == "" && cfg.JWKSFile == "" {
		return nil, ErrNoKeys
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = 5 * time.Second
	} else if cfg.Leeway < 0 {
		cfg.Leeway = 0
	}
	if cfg.WatchInterval <= 0 {
		cfg.WatchInterval = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	v := &Verifier{cfg: cfg, log: logger, metrics: &metrics{
		verified: prometheus.NewCounter(prometheus.CounterOpts{Name: "tickwire_auth_verified_total", Help: "Tokens verified and accepted."}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tickwire_auth_refusals_total", Help: "Tokens refused, by reason."}, []string{"reason"}),
		reloads:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tickwire_auth_jwks_reloads_total", Help: "JWKS file loads, by result (a failed load keeps the previous keys)."}, []string{"result"}),
		keys:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "tickwire_auth_jwks_keys", Help: "Signature keys in the loaded JWKS."}),
	}}
	for _, r := range Reasons {
		v.metrics.refusals.WithLabelValues(string(r)) // every reason exported from the start
	}
	if reg != nil {
		reg.MustRegister(v.metrics.verified, v.metrics.refusals, v.metrics.reloads, v.metrics.keys)
	}
	if cfg.HS256KeyFile != "" {
		b, err := os.ReadFile(cfg.HS256KeyFile)
		if err != nil {
			return nil, fmt.Errorf("auth: HS256 key: %w", err)
		}
		b = bytes.TrimRight(b, "\r\n")
		if len(b) < minSecret {
			return nil, fmt.Errorf("auth: HS256 key in %s is %d bytes, fewer than %d", cfg.HS256KeyFile, len(b), minSecret)
		}
		v.hs = b
	}
	if cfg.JWKSFile != "" {
		if err := v.Reload(); err != nil {
			return nil, err
		}
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{"HS256", "RS256", "ES256", "ES384", "EdDSA"}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// Reload reads the JWKS file again. On an error the keys loaded before stay in use. Without a
// JWKS file it does nothing.
func (v *Verifier) Reload() error {
	if v.cfg.JWKSFile == "" {
		return nil
	}
	b, err := os.ReadFile(v.cfg.JWKSFile)
	var keys map[string]key
	if err == nil {
		keys, err = parseJWKS(b)
	}
	if err != nil {
		v.metrics.reloads.WithLabelValues("error").Inc()
		return fmt.Errorf("auth: load %s: %w", v.cfg.JWKSFile, err)
	}
	v.mu.Lock()
	v.jwks, v.jwksRaw = keys, b
	v.mu.Unlock()
	v.metrics.reloads.WithLabelValues("ok").Inc()
	v.metrics.keys.Set(float64(len(keys)))
	v.log.Info("auth: JWKS loaded", "file", v.cfg.JWKSFile, "keys", len(keys))
	return nil
}

// Watch reloads the JWKS file whenever its content changes, until quit closes. The content is
// compared, not the modification time: a rotation written within one tick of the file system's
// clock (or a copy that keeps times) leaves the time unchanged, and a JWKS is small. A file
// that fails to load is logged and retried on its next change; the previous keys stay in use
// meanwhile. Run it on a goroutine its owner waits for.
func (v *Verifier) Watch(quit <-chan struct{}) {
	if v.cfg.JWKSFile == "" {
		return
	}
	t := time.NewTicker(v.cfg.WatchInterval)
	defer t.Stop()
	var failed []byte // the content of a file that failed to load
	for {
		select {
		case <-quit:
			return
		case <-t.C:
		}
		b, err := os.ReadFile(v.cfg.JWKSFile)
		if err != nil {
			continue
		}
		v.mu.RLock()
		same := bytes.Equal(b, v.jwksRaw)
		v.mu.RUnlock()
		if same || (failed != nil && bytes.Equal(b, failed)) {
			continue
		}
		if err := v.Reload(); err != nil {
			failed = b
			v.log.Error("auth: JWKS changed but does not load; keeping the previous keys", "err", err)
		}
	}
}

// header is the part of a JWT header we look at before the library does.
type header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

// Verify checks a token and returns its claims with their entitlements compiled, or an *Error.
func (v *Verifier) Verify(token string) (*Claims, error) {
	c, err := v.verify(token)
	if err != nil {
		v.metrics.refusals.WithLabelValues(string(ReasonOf(err))).Inc()
		return nil, err
	}
	v.metrics.verified.Inc()
	return c, nil
}

// Refused counts a refusal decided outside Verify (a missing token, a refresh for another
// subject), so every refusal shows in the same metric.
func (v *Verifier) Refused(r Reason) { v.metrics.refusals.WithLabelValues(string(r)).Inc() }

// maxTokenLen bounds a token: a header or command field, never a document.
const maxTokenLen = 8 << 10

func (v *Verifier) verify(token string) (*Claims, error) {
	token = strings.TrimSpace(token)
	if token == "" {
		return nil, ErrMissing
	}
	if len(token) > maxTokenLen {
		return nil, refuse(ReasonMalformed, "token too long")
	}
	// The algorithm is read first, so that "none" and algorithms we take from no key get their
	// own reason (the library reports them as bad signatures).
	h, err := parseHeader(token)
	if err != nil {
		return nil, refuse(ReasonMalformed, err.Error())
	}
	if _, err := v.keyFor(h); err != nil {
		return nil, err
	}
	var c Claims
	_, err = v.parser.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		k, err := v.keyFor(h)
		if err != nil {
			return nil, err
		}
		if t.Method.Alg() != k.alg {
			return nil, refuse(ReasonAlgNotAllowed, "key takes "+k.alg)
		}
		return k.pub, nil
	})
	if err != nil {
		if errors.Is(err, jwt.ErrTokenRequiredClaimMissing) {
			// The library says a required claim is missing; say which check failed.
			switch {
			case c.ExpiresAt == nil:
				return nil, refuse(ReasonMalformed, "exp is required")
			case v.cfg.Audience != "" && len(c.Audience) == 0:
				return nil, refuse(ReasonWrongAudience, "no aud")
			case v.cfg.Issuer != "" && c.Issuer == "":
				return nil, refuse(ReasonWrongIssuer, "no iss")
			}
		}
		return nil, classify(err)
	}
	if c.Grant == nil {
		c.Grant = &Grant{}
	}
	if c.Entitlements, err = c.Grant.Compile(); err != nil {
		return nil, refuse(ReasonMalformed, err.Error())
	}
	if v.cfg.Revoked != nil && v.cfg.Revoked(&c) {
		return nil, ErrRevoked
	}
	return &c, nil
}

// keyFor picks the key a token's header names: the HS256 secret for HS256, a JWKS key by kid
// (or the set's only key when the token names none) for the others.
func (v *Verifier) keyFor(h header) (key, error) {
	switch h.Alg {
	case "", "none":
		return key{}, refuse(ReasonAlgNotAllowed, "alg none is never accepted")
	case "RS256", "ES256", "ES384", "EdDSA":
	case "HS256":
		if v.hs == nil {
			return key{}, refuse(ReasonAlgNotAllowed, "no HS256 key configured")
		}
		return key{alg: "HS256", pub: v.hs}, nil
	default:
		return key{}, refuse(ReasonAlgNotAllowed, "alg "+h.Alg+" is not accepted")
	}
	v.mu.RLock()
	keys := v.jwks
	v.mu.RUnlock()
	if keys == nil {
		return key{}, refuse(ReasonAlgNotAllowed, "alg "+h.Alg+": no JWKS configured")
	}
	k, ok := keys[h.Kid]
	if !ok && h.Kid == "" && len(keys) == 1 {
		for _, only := range keys {
			k, ok = only, true
		}
	}
	if !ok {
		return key{}, ErrUnknownKID
	}
	if k.alg != h.Alg {
		return key{}, refuse(ReasonAlgNotAllowed, "key "+h.Kid+" takes "+k.alg+", not "+h.Alg)
	}
	return k, nil
}

func parseHeader(token string) (header, error) {
	seg, _, ok := strings.Cut(token, ".")
	if !ok {
		return header{}, errors.New("not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return header{}, errors.New("header is not base64url")
	}
	var h header
	if err := json.Unmarshal(b, &h); err != nil {
		return header{}, errors.New("header is not JSON")
	}
	return h, nil
}

// classify maps the library's error to our refusal. Our own refusals from the key function come
// through wrapped.
func classify(err error) *Error {
	var own *Error
	switch {
	case errors.As(err, &own):
		return own
	case errors.Is(err, jwt.ErrTokenMalformed):
		return refuse(ReasonMalformed, "")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return ErrBadSignature
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return refuse(ReasonMalformed, "exp is required")
	case errors.Is(err, jwt.ErrTokenExpired):
		return ErrExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return ErrNotYetValid
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return ErrWrongAudience
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return ErrWrongIssuer
	}
	return refuse(ReasonMalformed, "")
}
