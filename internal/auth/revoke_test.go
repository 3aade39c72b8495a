package auth

import (
	"os"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestRevocationsMatch(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 30, 500_000_000, time.UTC) // half way through a second
	r := NewRevocations()
	r.RevokeID("leaked")
	r.RevokeSubject("alice", at)
	for _, tc := range []struct {
		name     string
		jti, sub string
		iat      time.Time
		want     bool
	}{
		{"revoked jti, any age", "leaked", "bob", at.Add(time.Hour), true},
		{"other jti", "fine", "bob", at, false},
		{"subject, issued before", "", "alice", at.Add(-time.Hour), true},
		// iat is whole seconds: a token issued after the revocation in its second reads the
		// same as one issued before it, and is refused (fail closed).
		{"subject, the revocation's second", "x", "alice", at.Truncate(time.Second), true},
		{"subject, the next second", "", "alice", at.Truncate(time.Second).Add(time.Second), false},
		{"subject, no iat", "", "alice", time.Time{}, true},
		{"other subject", "", "alicia", at.Add(-time.Hour), false},
		{"anonymous: no jti, no sub", "", "", time.Time{}, false},
	} {
		if got := r.Match(tc.jti, tc.sub, tc.iat); got != tc.want {
			t.Errorf("%s: Match(%q, %q, %v) = %v", tc.name, tc.jti, tc.sub, tc.iat, got)
		}
	}
	// Revoked reads the claims the same way.
	c := &Claims{RegisteredClaims: jwt.RegisteredClaims{ID: "fine", Subject: "alice", IssuedAt: jwt.NewNumericDate(at.Add(-time.Minute))}}
	if !r.Revoked(c) {
		t.Fatal("Revoked: a token of a revoked subject issued before")
	}
	c.IssuedAt = jwt.NewNumericDate(at.Add(time.Minute))
	if r.Revoked(c) {
		t.Fatal("Revoked: a token issued after the subject's revocation")
	}

	r.UnrevokeID("leaked")
	r.UnrevokeSubject("alice")
	if r.Match("leaked", "alice", at.Add(-time.Hour)) || r.Len() != 0 {
		t.Fatal("still revoked after the removals")
	}
	r.Replace(map[string]struct{}{"a": {}}, map[string]time.Time{"bob": at})
	if !r.Match("a", "", time.Time{}) || !r.Match("", "bob", at) || r.Len() != 2 {
		t.Fatal("Replace")
	}
	r.Replace(nil, nil)
	if r.Match("a", "bob", at) || r.Len() != 0 {
		t.Fatal("Replace with nothing")
	}
}

// A Verifier whose Config.Revoked is the list refuses revoked tokens with ErrRevoked.
func TestVerifierRefusesRevoked(t *testing.T) {
	secret := NewSecret()
	file := t.TempDir() + "/hs.key"
	if err := os.WriteFile(file, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	list := NewRevocations()
	v, err := New(Config{HS256KeyFile: file, Revoked: list.Revoked}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := MintHS256(secret, MintOptions{Subject: "alice", ID: "t-1", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(tok); err != nil {
		t.Fatal(err)
	}
	list.RevokeID("t-1")
	if _, err := v.Verify(tok); ReasonOf(err) != ReasonRevoked {
		t.Fatalf("revoked jti: %v", err)
	}
	list.UnrevokeID("t-1")
	list.RevokeSubject("alice", time.Now())
	if _, err := v.Verify(tok); ReasonOf(err) != ReasonRevoked {
		t.Fatalf("revoked subject: %v", err)
	}
}
