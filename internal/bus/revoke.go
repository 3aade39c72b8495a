package bus

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
)

// The token revocation list (docs/OPERATIONS.md, "Revoking tokens") is a JetStream key-value
// bucket that every feed replica watches. One key per revocation:
//
//	jti.<base64url of the token id>    one token, whatever its age
//	sub.<base64url of the subject>     the subject's tokens issued at or before the revocation
//
// base64url (no padding) makes any jti or sub a legal key, dots and wildcards included. The
// value is JSON, {"revoked_at": RFC 3339, "reason": "..."}. The bucket's MaxAge (TTL) removes a
// revocation once every token it could refuse has expired, so the list does not grow forever;
// a removed entry leaves a marker that watchers see as a deletion.
//
// The bucket's name is fixed, not configured: the users' permissions (auth.go) name it.

// RevocationBucket is the key-value bucket of revoked tokens; its stream is KV_<bucket>.
const RevocationBucket = "TICKWIRE_REVOKED"

// revocationStream is the JetStream stream behind RevocationBucket.
const revocationStream = "KV_" + RevocationBucket

// Revocation bucket settings.
const (
	// DefaultRevocationTTL is how long a revocation is kept: a week, at least the longest
	// lifetime of a token an operator should issue (tickctl token's default is an hour). A
	// revocation must outlive every token it refuses; issue no token that lives longer.
	DefaultRevocationTTL = 7 * 24 * time.Hour
	// revocationMarkerTTL is how long the marker of an aged-out revocation stays, for
	// watchers that were away when it aged out. One that misses it keeps the entry in memory
	// until its next full load (refusing a token that has expired anyway).
	revocationMarkerTTL = time.Hour
	// revocationMaxBytes bounds the bucket (about 300,000 revocations); past it a new
	// revocation is refused with an error, never an old one dropped.
	revocationMaxBytes = 64 << 20
	// MaxRevocationIDLen bounds a revoked jti or sub, in bytes: ids are short, and a key is
	// part of a subject on the wire.
	MaxRevocationIDLen = 1024
	// MaxRevocationReasonLen bounds the reason, in bytes.
	MaxRevocationReasonLen = 512
	// revocationMaxValue bounds a stored value: JSON writes a byte of the reason as at most 6
	// (\u003c), plus the time and the keys.
	revocationMaxValue = 6*MaxRevocationReasonLen + 128
)

// RevocationKind says what a revocation names.
type RevocationKind string

// The kinds of revocation.
const (
	RevokeJTI     RevocationKind = "jti" // one token, by its jti
	RevokeSubject RevocationKind = "sub" // a subject's tokens issued at or before At
)

// Revocation is one entry of the list.
type Revocation struct {
	Kind   RevocationKind
	ID     string    // the jti or the sub
	At     time.Time // when it was revoked (the revoker's clock)
	Reason string    // optional, for people; never a token
}

// revocationValue is a Revocation as stored (the key holds its kind and id).
type revocationValue struct {
	RevokedAt time.Time `json:"revoked_at"`
	Reason    string    `json:"reason,omitempty"`
}

// RevocationConfig is how the bucket is created by whoever finds it missing (a feed or
// tickctl). A bucket that exists keeps its settings: give every process the same ones.
type RevocationConfig struct {
	// TTL is how long a revocation is kept (0: DefaultRevocationTTL).
	TTL time.Duration
	// Replicas of the bucket on a NATS cluster (0: 1; 3 in production).
	Replicas int
}

func (c RevocationConfig) withDefaults() RevocationConfig {
	if c.TTL <= 0 {
		c.TTL = DefaultRevocationTTL
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	return c
}

// RevocationKey returns the key of a revocation, or an error wrapping ErrRevocation for an
// unknown kind or an id that is empty or too long.
func RevocationKey(kind RevocationKind, id string) (string, error) {
	switch kind {
	case RevokeJTI, RevokeSubject:
	default:
		return "", fmt.Errorf("%w: unknown kind %q (want jti or sub)", ErrRevocation, kind)
	}
	if id == "" {
		return "", fmt.Errorf("%w: empty %s", ErrRevocation, kind)
	}
	if len(id) > MaxRevocationIDLen {
		return "", fmt.Errorf("%w: %s of %d bytes, more than %d", ErrRevocation, kind, len(id), MaxRevocationIDLen)
	}
	return string(kind) + "." + base64.RawURLEncoding.EncodeToString([]byte(id)), nil
}

// parseRevocationKey is the inverse of RevocationKey.
func parseRevocationKey(key string) (RevocationKind, string, error) {
	k, enc, ok := strings.Cut(key, ".")
	kind := RevocationKind(k)
	if !ok || (kind != RevokeJTI && kind != RevokeSubject) {
		return "", "", fmt.Errorf("%w: key %q is not jti.<id> or sub.<id>", ErrRevocation, key)
	}
	id, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || len(id) == 0 {
		return "", "", fmt.Errorf("%w: key %q: the id is not base64url", ErrRevocation, key)
	}
	return kind, string(id), nil
}

// decodeRevocation reads a bucket entry. A value that does not decode still revokes: its
// time is when the entry was stored (fail closed); err says so for the log.
func decodeRevocation(e jetstream.KeyValueEntry) (Revocation, error) {
	kind, id, err := parseRevocationKey(e.Key())
	if err != nil {
		return Revocation{}, err
	}
	r := Revocation{Kind: kind, ID: id, At: e.Created()}
	if e.Operation() != jetstream.KeyValuePut {
		return r, nil
	}
	var v revocationValue
	if err := json.Unmarshal(e.Value(), &v); err != nil || v.RevokedAt.IsZero() {
		return r, fmt.Errorf("%w: value of %s is not {\"revoked_at\": ...}; taking the time it was stored", ErrRevocation, e.Key())
	}
	r.At, r.Reason = v.RevokedAt, v.Reason
	return r, nil
}

// revocationBucket opens the bucket, creating it with cfg when it is missing and create is
// set. Without create, a missing bucket is jetstream.ErrBucketNotFound.
func (b *Bus) revocationBucket(ctx context.Context, cfg RevocationConfig, create bool) (jetstream.KeyValue, error) {
	kv, err := b.js.KeyValue(ctx, RevocationBucket)
	switch {
	case err == nil:
		if create {
			b.checkRevocationTTL(ctx, kv, cfg)
		}
		return kv, nil
	case !create || !errors.Is(err, jetstream.ErrBucketNotFound):
		return nil, fmt.Errorf("bus: revocation bucket: %w", err)
	}
	cfg = cfg.withDefaults()
	kv, err = b.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:         RevocationBucket,
		Description:    "Tickwire revoked tokens: jti.<id> and sub.<subject>, base64url (docs/OPERATIONS.md)",
		History:        1,
		TTL:            cfg.TTL,
		MaxBytes:       revocationMaxBytes,
		MaxValueSize:   revocationMaxValue,
		Storage:        jetstream.FileStorage,
		Replicas:       cfg.Replicas,
		LimitMarkerTTL: revocationMarkerTTL,
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		// Created meanwhile by another process (perhaps with other settings): use it.
		kv, err = b.js.KeyValue(ctx, RevocationBucket)
		if err == nil {
			b.checkRevocationTTL(ctx, kv, cfg)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("bus: create revocation bucket: %w", err)
	}
	b.logger.Info("revocation bucket created", "bucket", RevocationBucket, "ttl", cfg.TTL, "replicas", cfg.Replicas)
	return kv, nil
}

// checkRevocationTTL warns when the bucket keeps revocations for another time than this
// process was told: a shorter one forgets revocations while tokens they refuse still live.
func (b *Bus) checkRevocationTTL(ctx context.Context, kv jetstream.KeyValue, cfg RevocationConfig) {
	cfg = cfg.withDefaults()
	st, err := kv.Status(ctx)
	if err != nil || st.TTL() == cfg.TTL {
		return
	}
	b.logger.Warn("the revocation bucket keeps revocations for another time than configured; keeping the bucket's",
		"bucket", RevocationBucket, "bucket_ttl", st.TTL(), "configured_ttl", cfg.TTL)
}

// Revoke stores r (At zero: now), creating the bucket with cfg if it is missing. Revoking the
// same jti or sub again replaces the entry (a subject's time moves to the new one).
func (b *Bus) Revoke(ctx context.Context, cfg RevocationConfig, r Revocation) error {
	key, err := RevocationKey(r.Kind, r.ID)
	if err != nil {
		return err
	}
	if len(r.Reason) > MaxRevocationReasonLen || !utf8.ValidString(r.Reason) {
		return fmt.Errorf("%w: the reason must be UTF-8 of at most %d bytes", ErrRevocation, MaxRevocationReasonLen)
	}
	if r.At.IsZero() {
		r.At = time.Now()
	}
	v, err := json.Marshal(revocationValue{RevokedAt: r.At.UTC(), Reason: r.Reason})
	if err != nil {
		return fmt.Errorf("bus: encode revocation: %w", err)
	}
	kv, err := b.revocationBucket(ctx, cfg, true)
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, key, v); err != nil {
		return fmt.Errorf("bus: store revocation: %w", err)
	}
	return nil
}

// Unrevoke removes a revocation. It reports whether there was one.
func (b *Bus) Unrevoke(ctx context.Context, kind RevocationKind, id string) (bool, error) {
	key, err := RevocationKey(kind, id)
	if err != nil {
		return false, err
	}
	kv, err := b.revocationBucket(ctx, RevocationConfig{}, false)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if _, err := kv.Get(ctx, key); errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("bus: read revocation: %w", err)
	}
	if err := kv.Delete(ctx, key); err != nil {
		return false, fmt.Errorf("bus: remove revocation: %w", err)
	}
	return true, nil
}

// Revocations returns every revocation, oldest first (none when the bucket does not exist).
func (b *Bus) Revocations(ctx context.Context) ([]Revocation, error) {
	kv, err := b.revocationBucket(ctx, RevocationConfig{}, false)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("bus: read revocations: %w", err)
	}
	defer w.Stop()
	var all []Revocation
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("bus: read revocations: %w", ErrClosed)
			}
			if e == nil { // every stored entry read
				sort.SliceStable(all, func(i, j int) bool { return all[i].At.Before(all[j].At) })
				return all, nil
			}
			r, err := decodeRevocation(e)
			if r.ID == "" {
				b.logger.Warn("skipping a malformed revocation entry", "err", err)
				continue
			}
			all = append(all, r)
		}
	}
}

// RevocationHandler takes what WatchRevocations reads. Its methods are called from the
// watching goroutine, one at a time.
type RevocationHandler interface {
	// LoadRevocations gets the whole list once every stored entry is read, and again each
	// time a watch starts over; it replaces what was known.
	LoadRevocations(all []Revocation)
	// RevocationChanged gets each change after that: r stored (or stored again), or removed
	// (unrevoked, or aged out past the bucket's TTL).
	RevocationChanged(r Revocation, removed bool)
}

// WatchRevocations creates the bucket with cfg if it is missing, reads every revocation into
// h.LoadRevocations, then passes each change to h until ctx ends (nil) or the watch breaks (an
// error). A watch outlives NATS reconnects: its ordered consumer restarts where it stopped.
func (b *Bus) WatchRevocations(ctx context.Context, cfg RevocationConfig, h RevocationHandler) error {
	kv, err := b.revocationBucket(ctx, cfg, true)
	if err != nil {
		return err
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("bus: watch revocations: %w", err)
	}
	defer w.Stop()
	var initial []Revocation
	loaded := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				if ctx.Err() != nil {
					return nil // nats.go ends the watch with ctx too: which case comes first is a race
				}
				return fmt.Errorf("bus: revocation watch ended: %w", ErrClosed)
			}
			if e == nil {
				loaded = true
				h.LoadRevocations(initial)
				initial = nil
				continue
			}
			r, err := decodeRevocation(e)
			if err != nil {
				b.logger.Warn("malformed revocation entry", "err", err)
			}
			if r.ID == "" {
				continue // a key we cannot read names nothing we could refuse
			}
			removed := e.Operation() != jetstream.KeyValuePut
			if !loaded {
				if !removed { // the last entry of a removed key is its marker
					initial = append(initial, r)
				}
				continue
			}
			h.RevocationChanged(r, removed)
		}
	}
}
