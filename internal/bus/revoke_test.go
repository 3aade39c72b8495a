package bus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/bus/bustest"
	"github.com/tickwire/tickwire/internal/testwait"
)

// Any jti or sub becomes a legal key and back; what cannot be a revocation is refused.
func TestRevocationKey(t *testing.T) {
	for _, tc := range []struct {
		kind bus.RevocationKind
		id   string
		ok   bool
	}{
		{bus.RevokeJTI, "0a1b2c", true},
		{bus.RevokeSubject, "alice", true},
		{bus.RevokeSubject, "bot.eu-1.*", true}, // dots and wildcards would break a raw key
		{bus.RevokeSubject, "a > b", true},
		{bus.RevokeSubject, "użytkownik@example.com", true},
		{bus.RevokeJTI, strings.Repeat("x", bus.MaxRevocationIDLen), true},
		{bus.RevokeJTI, strings.Repeat("x", bus.MaxRevocationIDLen+1), false},
		{bus.RevokeJTI, "", false},
		{"iss", "someone", false},
	} {
		key, err := bus.RevocationKey(tc.kind, tc.id)
		if (err == nil) != tc.ok {
			t.Errorf("RevocationKey(%s, %.20q) = %q, %v; want ok %v", tc.kind, tc.id, key, err, tc.ok)
			continue
		}
		if err != nil {
			if !errors.Is(err, bus.ErrRevocation) {
				t.Errorf("%s %.20q: %v does not wrap ErrRevocation", tc.kind, tc.id, err)
			}
			continue
		}
		if !strings.HasPrefix(key, string(tc.kind)+".") || strings.ContainsAny(strings.TrimPrefix(key, string(tc.kind)+"."), ".*> ") {
			t.Errorf("key %q is not <kind>.<one token>", key)
		}
	}
}

// recorder is a RevocationHandler that keeps what it was told.
type recorder struct {
	mu      sync.Mutex
	loads   [][]bus.Revocation // guarded by mu
	changes []change           // guarded by mu
}

type change struct {
	r       bus.Revocation
	removed bool
}

func (r *recorder) LoadRevocations(all []bus.Revocation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.loads = append(r.loads, all)
}

func (r *recorder) RevocationChanged(rv bus.Revocation, removed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changes = append(r.changes, change{rv, removed})
}

func (r *recorder) wait(t *testing.T, what string, cond func(loads [][]bus.Revocation, changes []change) bool) {
	t.Helper()
	var loads, changes int
	if !testwait.Until(5*time.Second, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		loads, changes = len(r.loads), len(r.changes)
		return cond(r.loads, r.changes)
	}) {
		t.Fatalf("timed out waiting for %s (%d loads, %d changes)", what, loads, changes)
	}
}

// watch runs WatchRevocations as b until the test ends.
func watch(t *testing.T, b *bus.Bus, cfg bus.RevocationConfig) *recorder {
	t.Helper()
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.WatchRevocations(ctx, cfg, rec) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("WatchRevocations: %v", err)
		}
	})
	return rec
}

// A watcher loads what is stored, then sees revocations and removals as they happen; tickctl
// lists and removes them.
func TestWatchRevocations(t *testing.T) {
	s := bustest.Start(t)
	ctx := ctxT(t)
	tc := bustest.ConnectAs(t, s, string(bus.RoleTickctl))
	feed := bustest.ConnectAs(t, s, string(bus.RoleFeed))
	if list, err := tc.Revocations(ctx); err != nil || len(list) != 0 {
		t.Fatalf("list before any bucket: %v %v", list, err)
	}
	if ok, err := tc.Unrevoke(ctx, bus.RevokeJTI, "nothing"); ok || err != nil {
		t.Fatalf("unrevoke before any bucket: %v %v", ok, err)
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	if err := tc.Revoke(ctx, bus.RevocationConfig{}, bus.Revocation{Kind: bus.RevokeSubject, ID: "bot.eu-1", At: at, Reason: "left the desk"}); err != nil {
		t.Fatal(err)
	}
	if err := tc.Revoke(ctx, bus.RevocationConfig{}, bus.Revocation{Kind: bus.RevokeJTI, ID: "gone"}); err != nil {
		t.Fatal(err)
	}
	if ok, err := tc.Unrevoke(ctx, bus.RevokeJTI, "gone"); !ok || err != nil {
		t.Fatalf("unrevoke: %v %v", ok, err)
	}

	rec := watch(t, feed, bus.RevocationConfig{})
	rec.wait(t, "the first load", func(l [][]bus.Revocation, _ []change) bool { return len(l) == 1 })
	rec.mu.Lock()
	first := rec.loads[0]
	rec.mu.Unlock()
	if len(first) != 1 || first[0].Kind != bus.RevokeSubject || first[0].ID != "bot.eu-1" || !first[0].At.Equal(at) || first[0].Reason != "left the desk" {
		t.Fatalf("loaded %+v; want only the subject (the removed jti is not loaded)", first)
	}

	if err := tc.Revoke(ctx, bus.RevocationConfig{}, bus.Revocation{Kind: bus.RevokeJTI, ID: "tok-1"}); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, "the jti", func(_ [][]bus.Revocation, c []change) bool {
		return len(c) == 1 && c[0].r.Kind == bus.RevokeJTI && c[0].r.ID == "tok-1" && !c[0].removed && !c[0].r.At.IsZero()
	})
	list, err := tc.Revocations(ctx)
	if err != nil || len(list) != 2 || list[0].ID != "bot.eu-1" || list[1].ID != "tok-1" {
		t.Fatalf("list: %+v %v", list, err)
	}
	if ok, err := tc.Unrevoke(ctx, bus.RevokeSubject, "bot.eu-1"); !ok || err != nil {
		t.Fatalf("unrevoke: %v %v", ok, err)
	}
	rec.wait(t, "the removal", func(_ [][]bus.Revocation, c []change) bool {
		return len(c) == 2 && c[1].removed && c[1].r.Kind == bus.RevokeSubject && c[1].r.ID == "bot.eu-1"
	})
	if ok, err := tc.Unrevoke(ctx, bus.RevokeSubject, "bot.eu-1"); ok || err != nil {
		t.Fatalf("second unrevoke: %v %v, want false", ok, err)
	}

	// The longest reason fits the bucket's value limit however JSON escapes it; longer ones,
	// and ones that are not UTF-8, are refused before they are sent.
	if err := tc.Revoke(ctx, bus.RevocationConfig{}, bus.Revocation{Kind: bus.RevokeJTI, ID: "long", Reason: strings.Repeat("<", bus.MaxRevocationReasonLen)}); err != nil {
		t.Fatal(err)
	}
	for _, reason := range []string{strings.Repeat("x", bus.MaxRevocationReasonLen+1), "\xff"} {
		if err := tc.Revoke(ctx, bus.RevocationConfig{}, bus.Revocation{Kind: bus.RevokeJTI, ID: "bad", Reason: reason}); !errors.Is(err, bus.ErrRevocation) {
			t.Fatalf("reason %.20q: %v", reason, err)
		}
	}
}

// A revocation older than the bucket's TTL leaves it, and watchers are told.
func TestRevocationAgesOut(t *testing.T) {
	s := bustest.Start(t)
	ctx := ctxT(t)
	tc := bustest.ConnectAs(t, s, string(bus.RoleTickctl))
	cfg := bus.RevocationConfig{TTL: time.Second}
	rec := watch(t, bustest.ConnectAs(t, s, string(bus.RoleFeed)), cfg) // the feed creates the bucket
	rec.wait(t, "the first load", func(l [][]bus.Revocation, _ []change) bool { return len(l) == 1 })
	if err := tc.Revoke(ctx, cfg, bus.Revocation{Kind: bus.RevokeJTI, ID: "short"}); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, "the jti to come and go", func(_ [][]bus.Revocation, c []change) bool {
		return len(c) == 2 && !c[0].removed && c[1].removed && c[1].r.ID == "short"
	})
	if list, err := tc.Revocations(ctx); err != nil || len(list) != 0 {
		t.Fatalf("list after the TTL: %+v %v", list, err)
	}
}

// Only tickctl and admin write revocations; feed reads them; ingest does neither.
func TestRevocationPermissions(t *testing.T) {
	s := bustest.Start(t)
	ctx := ctxT(t)
	tc := bustest.ConnectAs(t, s, string(bus.RoleTickctl))
	if err := tc.Revoke(ctx, bus.RevocationConfig{}, bus.Revocation{Kind: bus.RevokeJTI, ID: "by-tickctl"}); err != nil {
		t.Fatal(err)
	}
	admin := bustest.ConnectAs(t, s, string(bus.RoleAdmin))
	if err := admin.Revoke(ctx, bus.RevocationConfig{}, bus.Revocation{Kind: bus.RevokeJTI, ID: "by-admin"}); err != nil {
		t.Fatal(err)
	}
	key, _ := bus.RevocationKey(bus.RevokeSubject, "victim")
	subj := "$KV." + bus.RevocationBucket + "." + key
	for _, role := range []bus.Role{bus.RoleFeed, bus.RoleIngest} {
		t.Run(string(role), func(t *testing.T) {
			b := bustest.ConnectAs(t, s, string(role))
			wctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			if err := b.Revoke(wctx, bus.RevocationConfig{}, bus.Revocation{Kind: bus.RevokeSubject, ID: "victim"}); err == nil {
				t.Fatal("revoked")
			}
			if _, err := b.Unrevoke(wctx, bus.RevokeJTI, "by-tickctl"); err == nil {
				t.Fatal("unrevoked")
			}
			rc, err := dialRaw(t, s, string(role))
			if err != nil {
				t.Fatal(err)
			}
			if err := rc.Publish(subj, []byte(`{"revoked_at":"2026-01-01T00:00:00Z"}`)); err != nil {
				t.Fatal(err)
			}
			rc.violated(t, subj)
			// Deleting a revocation is a publish on the same subject.
			del := "$KV." + bus.RevocationBucket + "." + strings.Replace(key, "sub.", "jti.", 1)
			if err := rc.Publish(del, nil); err != nil {
				t.Fatal(err)
			}
			rc.violated(t, del)
		})
	}
	// ingest may not read the list either.
	ingest := bustest.ConnectAs(t, s, string(bus.RoleIngest))
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := ingest.Revocations(rctx); err == nil {
		t.Fatal("ingest read the revocations")
	}
	// feed reads them (through a watch), and they are the two written above.
	rec := watch(t, bustest.ConnectAs(t, s, string(bus.RoleFeed)), bus.RevocationConfig{})
	rec.wait(t, "the feed's load", func(l [][]bus.Revocation, _ []change) bool { return len(l) == 1 })
	list, err := tc.Revocations(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("after the refused writes: %+v %v", list, err)
	}
	for _, r := range list {
		if r.ID == "victim" {
			t.Fatalf("a refused write was stored: %+v", r)
		}
	}
}

// Ending ctx ends the watch with nil: nats.go closes the watch's updates when ctx ends too, and
// that close raced the ctx case. TestWatchRevocations, which ends its watch that way, failed 8
// times in 40 under -race (once in CI) before the fix, 0 in 40 after; this loop ends 30 watches
// the same way.
func TestWatchRevocationsEndsWithCtx(t *testing.T) {
	s := bustest.Start(t)
	tc := bustest.ConnectAs(t, s, string(bus.RoleTickctl))
	feed := bustest.ConnectAs(t, s, string(bus.RoleFeed))
	for i := range 30 {
		rec := &recorder{}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- feed.WatchRevocations(ctx, bus.RevocationConfig{}, rec) }()
		rec.wait(t, "the first load", func(l [][]bus.Revocation, _ []change) bool { return len(l) == 1 })
		if err := tc.Revoke(ctxT(t), bus.RevocationConfig{}, bus.Revocation{Kind: bus.RevokeJTI, ID: fmt.Sprint("t", i)}); err != nil {
			t.Fatal(err)
		}
		rec.wait(t, "the change", func(_ [][]bus.Revocation, c []change) bool { return len(c) == 1 })
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("watch %d: WatchRevocations after its ctx ended: %v", i, err)
		}
	}
}
