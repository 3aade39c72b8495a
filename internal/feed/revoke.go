package feed

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/pkg/wire"
)

// Token revocation (docs/PROTOCOL.md, "Authentication"; docs/OPERATIONS.md, "Revoking tokens").
//
// The list is a NATS key-value bucket (bus/revoke.go) that every replica watches. It is kept in
// AuthConfig.Revocations, which is also the Verifier's Config.Revoked: a revoked token is
// refused at every sign-in, refresh and /api request. The watcher here also closes the open
// connections whose current token a new revocation names, with 4006 (wire.CloseTokenRevoked),
// as soon as the bucket delivers it (milliseconds; the promise is a second).
//
// Failure policy. Until the list has been read once, the feed fails closed: /readyz says not
// ready, and upgrades, and /api requests that carry a token, get 503 (retry), since a token
// revoked because it leaked must not get in because a replica restarted while NATS was away.
// Once read, it fails static: while NATS is unreachable the last list stays in force (nothing
// can be revoked meanwhile either: tickctl writes through NATS) and the watch is retried,
// every 250 ms at first and every 5 s at most, with an error logged at each attempt.
//
// Races. A connection publishes its credential (sessAuth.live) before it checks the list
// (showCredential), and the watcher updates the list before it scans the connections: a sign-in
// that overlaps a revocation is seen by one side or the other, never missed by both.

// RevocationSource watches the revocation list; *bus.Bus is one.
type RevocationSource interface {
	WatchRevocations(ctx context.Context, cfg bus.RevocationConfig, h bus.RevocationHandler) error
}

// ErrNoRevocations is returned by EnableRevocations on a server without a Verifier or without
// AuthConfig.Revocations.
var ErrNoRevocations = errors.New("feed: revocation needs authentication and AuthConfig.Revocations")

// Watch retries: soon at first (a feed often starts alongside NATS), then backing off so that a
// long outage costs a request every few seconds, not a stream of them.
const (
	revocationRetryMin = 250 * time.Millisecond
	revocationRetryMax = 5 * time.Second
)

// revocationState is the server's side of the revocation watch.
type revocationState struct {
	// enabled is set once by EnableRevocations; loaded once the list was first read. Atomic:
	// read by every request.
	enabled, loaded atomic.Bool
	closed          prometheus.Counter // tickwire_feed_revoked_connections_total
	entries         prometheus.Gauge   // tickwire_feed_revocations
	loadedGauge     prometheus.Gauge   // tickwire_feed_revocations_loaded
}

func newRevocationState(reg prometheus.Registerer) *revocationState {
	r := &revocationState{
		closed: prometheus.NewCounter(prometheus.CounterOpts{Name: "tickwire_feed_revoked_connections_total",
			Help: "Open connections closed with 4006 because their token was revoked."}),
		entries: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tickwire_feed_revocations",
			Help: "Revoked token ids and subjects known to this replica."}),
		loadedGauge: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tickwire_feed_revocations_loaded",
			Help: "1 once the revocation list was read from NATS (until then the feed is not ready); 0 before, or without revocation."}),
	}
	if reg != nil {
		reg.MustRegister(r.closed, r.entries, r.loadedGauge)
	}
	return r
}

// EnableRevocations makes the server watch the revocation list in src (creating its bucket with
// cfg if missing), refuse clients until it has read it once, and close connections whose token
// is revoked. Call it once, before serving; the watch stops with Shutdown.
func (s *Server) EnableRevocations(src RevocationSource, cfg bus.RevocationConfig) error {
	if s.cfg.Auth.Verifier == nil || s.cfg.Auth.Revocations == nil {
		return ErrNoRevocations
	}
	if s.stopping.Load() {
		return ErrServerClosed
	}
	if !s.rev.enabled.CompareAndSwap(false, true) {
		return errors.New("feed: revocations already enabled")
	}
	s.launch(func() { s.watchRevocations(src, cfg) })
	return nil
}

// revocationsReady reports whether clients may be served as far as revocation goes: the list
// was read, or revocation is not enabled.
func (s *Server) revocationsReady() bool { return !s.rev.enabled.Load() || s.rev.loaded.Load() }

// watchRevocations runs the watch until Shutdown, restarting it when it breaks.
func (s *Server) watchRevocations(src RevocationSource, cfg bus.RevocationConfig) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.launch(func() { // ends the watch when the server stops
		select {
		case <-s.quit:
			cancel()
		case <-ctx.Done():
		}
	})
	wait := revocationRetryMin
	for {
		h := &revocationHandler{s: s}
		err := src.WatchRevocations(ctx, cfg, h)
		if ctx.Err() != nil {
			return
		}
		if h.loaded {
			wait = revocationRetryMin // it worked for a while: start over quickly
		}
		if s.rev.loaded.Load() {
			s.log.Error("revocation watch broke; keeping the last list and retrying", "err", err, "retry_in", wait)
		} else {
			s.log.Error("revocation list not read: not ready, WebSocket upgrades and /api requests with a token get 503 until it is; retrying",
				"err", err, "retry_in", wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(wait*2, revocationRetryMax)
	}
}

// revocationHandler applies one watch's news to the server. Called on the watching goroutine.
type revocationHandler struct {
	s      *Server
	loaded bool // this watch delivered the whole list
}

func (h *revocationHandler) LoadRevocations(all []bus.Revocation) {
	s := h.s
	ids := make(map[string]struct{})
	subjects := make(map[string]time.Time)
	for _, r := range all {
		switch r.Kind {
		case bus.RevokeJTI:
			ids[r.ID] = struct{}{}
		case bus.RevokeSubject:
			subjects[r.ID] = r.At
		}
	}
	list := s.cfg.Auth.Revocations
	list.Replace(ids, subjects)
	h.loaded = true
	first := !s.rev.loaded.Swap(true)
	s.rev.loadedGauge.Set(1)
	s.rev.entries.Set(float64(list.Len()))
	n := s.closeRevoked()
	if first {
		s.log.Info("revocation list read", "revoked_ids", len(ids), "revoked_subjects", len(subjects))
	} else {
		s.log.Info("revocation list read again", "revoked_ids", len(ids), "revoked_subjects", len(subjects), "connections_closed", n)
	}
}

func (h *revocationHandler) RevocationChanged(r bus.Revocation, removed bool) {
	s := h.s
	list := s.cfg.Auth.Revocations
	switch {
	case r.Kind == bus.RevokeJTI && removed:
		list.UnrevokeID(r.ID)
	case r.Kind == bus.RevokeJTI:
		list.RevokeID(r.ID)
	case r.Kind == bus.RevokeSubject && removed:
		list.UnrevokeSubject(r.ID)
	case r.Kind == bus.RevokeSubject:
		list.RevokeSubject(r.ID, r.At)
	}
	s.rev.entries.Set(float64(list.Len()))
	if removed {
		s.log.Info("revocation removed", "kind", r.Kind, "id", r.ID)
		return
	}
	n := s.closeRevoked()
	s.log.Info("token revoked", "kind", r.Kind, "id", r.ID, "revoked_at", r.At, "reason", r.Reason, "connections_closed", n)
}

// closeRevoked closes every connection whose credential the list revokes, and returns how many.
func (s *Server) closeRevoked() int {
	s.mu.Lock()
	sessions := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		sessions = append(sessions, sess)
	}
	s.mu.Unlock()
	n := 0
	for _, sess := range sessions {
		if sess.closeIfRevoked() {
			n++
		}
	}
	return n
}

// showCredential publishes cred for the revocation watcher, then checks it: a revocation that
// arrived after the token was verified closes the connection all the same. Read goroutine
// (signIn).
func (s *session) showCredential(cred *credential) {
	s.auth.live.Store(cred)
	s.closeIfRevoked()
}

// closeIfRevoked closes the connection with 4006 when its current credential is revoked, and
// reports whether it did. Any goroutine.
func (s *session) closeIfRevoked() bool {
	list := s.server.cfg.Auth.Revocations
	c := s.auth.live.Load()
	if list == nil || c == nil || !list.Match(c.jti, c.subject, c.issued) || s.out.Closing() {
		return false
	}
	if !s.auth.revoked.CompareAndSwap(false, true) {
		return false
	}
	s.server.rev.closed.Inc()
	s.out.Close(wire.CloseTokenRevoked, "token revoked")
	return true
}
