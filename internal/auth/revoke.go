package auth

import (
	"sync"
	"time"
)

// Revocations is the set of revoked token ids (jti) and subjects (sub) that a Verifier refuses
// (its Revoked method is Config.Revoked) and that a feed checks its open connections against.
// It is safe for concurrent use. Where the list is kept and how it reaches every replica is the
// caller's business (cmd/feed: a NATS KV bucket, internal/feed/revoke.go).
//
// The rules (docs/PROTOCOL.md, "Authentication"):
//   - a revoked jti refuses that one token, whenever it was issued;
//   - a revoked subject at time T refuses every token of that subject whose iat is at or
//     before T, so a token issued after the revocation works again. iat has one-second
//     precision: a token issued in the same second as T cannot be told from one issued just
//     before it, and is refused too. A token without iat is refused while its subject is
//     revoked (nothing says it is newer).
type Revocations struct {
	mu sync.RWMutex
	// guarded by mu:
	ids      map[string]struct{}  // revoked jti values
	subjects map[string]time.Time // revoked sub values -> revoked at
}

// NewRevocations returns an empty set.
func NewRevocations() *Revocations {
	return &Revocations{ids: map[string]struct{}{}, subjects: map[string]time.Time{}}
}

// Revoked reports whether c is revoked; it is what Config.Revoked takes.
func (r *Revocations) Revoked(c *Claims) bool {
	var iat time.Time
	if c.IssuedAt != nil {
		iat = c.IssuedAt.Time
	}
	return r.Match(c.ID, c.Subject, iat)
}

// Match reports whether a token with this jti, sub and iat (zero: none) is revoked. Empty
// jti and sub match nothing: anonymous access carries neither.
func (r *Revocations) Match(jti, sub string, iat time.Time) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if jti != "" {
		if _, ok := r.ids[jti]; ok {
			return true
		}
	}
	if sub != "" {
		if at, ok := r.subjects[sub]; ok && (iat.IsZero() || !iat.After(at)) {
			return true
		}
	}
	return false
}

// RevokeID revokes the token whose jti is id.
func (r *Revocations) RevokeID(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ids[id] = struct{}{}
}

// RevokeSubject revokes the tokens of sub issued at or before at (a later call replaces the
// time).
func (r *Revocations) RevokeSubject(sub string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.subjects[sub] = at
}

// UnrevokeID takes id off the list.
func (r *Revocations) UnrevokeID(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.ids, id)
}

// UnrevokeSubject takes sub off the list.
func (r *Revocations) UnrevokeSubject(sub string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.subjects, sub)
}

// Replace makes the set exactly ids and subjects (revoked at), in one step: a token is never
// judged against half of the old list and half of the new. The maps are taken, not copied.
func (r *Revocations) Replace(ids map[string]struct{}, subjects map[string]time.Time) {
	if ids == nil {
		ids = map[string]struct{}{}
	}
	if subjects == nil {
		subjects = map[string]time.Time{}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ids, r.subjects = ids, subjects
}

// Len returns how many ids and subjects are revoked.
func (r *Revocations) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.ids) + len(r.subjects)
}
