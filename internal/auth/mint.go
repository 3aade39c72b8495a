package auth

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MintOptions describe a token to sign (tickctl token, scripts/run.sh, tests).
type MintOptions struct {
	Subject  string
	Issuer   string
	Audience string
	TTL      time.Duration // from now; required
	Grant    Grant
	ID       string // jti; a random one when empty
	Now      time.Time
}

// MintHS256 signs a token with an HS256 secret.
func MintHS256(secret []byte, o MintOptions) (string, error) {
	if len(secret) < minSecret {
		return "", fmt.Errorf("auth: HS256 secret of %d bytes, fewer than %d", len(secret), minSecret)
	}
	return Mint(jwt.SigningMethodHS256, "", secret, o)
}

// Mint signs a token with any method and key (a kid for JWKS keys).
func Mint(m jwt.SigningMethod, kid string, signingKey any, o MintOptions) (string, error) {
	if o.TTL <= 0 {
		return "", errors.New("auth: a token needs a positive TTL")
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.ID == "" {
		var b [12]byte
		_, _ = rand.Read(b[:])
		o.ID = hex.EncodeToString(b[:])
	}
	g := o.Grant
	if _, err := g.Compile(); err != nil {
		return "", err
	}
	c := Claims{RegisteredClaims: jwt.RegisteredClaims{
		Subject: o.Subject, Issuer: o.Issuer, ID: o.ID,
		IssuedAt:  jwt.NewNumericDate(o.Now),
		NotBefore: jwt.NewNumericDate(o.Now),
		ExpiresAt: jwt.NewNumericDate(o.Now.Add(o.TTL)),
	}, Grant: &g}
	if o.Audience != "" {
		c.Audience = jwt.ClaimStrings{o.Audience}
	}
	t := jwt.NewWithClaims(m, c)
	if kid != "" {
		t.Header["kid"] = kid
	}
	return t.SignedString(signingKey)
}

// ReadSecret reads an HS256 secret file as New does.
func ReadSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return bytes.TrimRight(b, "\r\n"), nil
}

// NewSecret returns a fresh random HS256 secret, hex-encoded (64 characters).
func NewSecret() []byte {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return []byte(hex.EncodeToString(b[:]))
}

// UnverifiedSubject reads a token's sub without checking its signature or times: for a tool
// that holds a token and wants to name its subject (tickctl replay names it as the session's
// controller). Never use it to decide what a token may do: that is Verifier.Verify.
func UnverifiedSubject(token string) (string, error) {
	var c jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(token, &c); err != nil {
		return "", fmt.Errorf("auth: read token: %w", err)
	}
	if c.Subject == "" {
		return "", errors.New("auth: token has no sub")
	}
	return c.Subject, nil
}
