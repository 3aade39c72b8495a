package feed

// Snapshots, stream statuses and rate tiers of an owner's subscribers: what each is sent
// instead of, or before, the deltas (owner.go has the event path, owner_subs.go the commands).

import (
	"time"

	"github.com/tickwire/tickwire/internal/fanout"
	"github.com/tickwire/tickwire/pkg/market"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// retryPending sends a first snapshot to subscribers that had none because the instrument had
// no state yet (its first event was rejected, say). Book subscribers wait for BookReset instead.
func (o *owner) retryPending(in *instrument) {
	var now time.Time
	for stream, subs := range in.streams {
		if stream >= market.StreamBook0 {
			continue
		}
		for _, s := range subs {
			if s.pending {
				if now.IsZero() {
					now = time.Now()
				}
				o.request(in, s, pb.SnapshotReason_SNAPSHOT_REASON_SUBSCRIBE, now)
			}
		}
	}
}

// snapshot queues a fresh snapshot of one stream for one subscriber, at the connection's
// current generation, outside its snapshot budget: for snapshots the server sends on its own. A
// book that is not whole leaves the subscriber pending.
func (o *owner) snapshot(in *instrument, s *sub, stream int, reason pb.SnapshotReason) {
	if b := o.snapshotBytes(in, s, stream, reason); b != nil {
		o.queueSnapshot(in, s, b, reason)
	}
}

// snapshotBytes returns a stream's snapshot encoded for s's connection, encoded once per
// stream, reason and format between two changes of the state; nil if there is none: a book
// that is not whole leaves the subscriber pending.
func (o *owner) snapshotBytes(in *instrument, s *sub, stream int, reason pb.SnapshotReason) []byte {
	key := snapKey{in: in, stream: stream, reason: reason, json: s.sess.out.JSON()}
	if b, ok := o.snapCache[key]; ok {
		return b
	}
	snap := in.st.Snapshot(s.ch, max(stream-market.StreamBook0, 0), reason)
	if snap == nil {
		if !s.pending {
			s.pending = true
			in.pending++
		}
		return nil
	}
	snap.Handle = in.handle
	b := o.encode(&pb.ServerMessage{Kind: &pb.ServerMessage_Snapshot{Snapshot: snap}}, key.json)
	o.snapCache[key] = b
	return b
}

// queueSnapshot queues an encoded snapshot of s's stream at the connection's current generation.
func (o *owner) queueSnapshot(in *instrument, s *sub, b []byte, reason pb.SnapshotReason) {
	out := s.sess.out
	gen := out.Gen()
	if out.Enqueue(b, fanout.Snapshot, gen) == fanout.Queued {
		s.gen = gen
		s.based = true
		if s.interval > 0 { // whatever the reason, the stream's next update waits its interval
			s.next = time.Now().Add(s.interval)
			s.dirty = false
		}
		s.deferred = 0 // a deferred one has nothing left to add
		if s.pending {
			s.pending = false
			in.pending--
		}
		o.hub.metrics.snapshots.WithLabelValues(reasonLabel(reason)).Inc()
	}
	// Otherwise the generation moved on again (a cmdConflated follows) or the connection
	// closed (a cmdClosed follows).
}

// request answers a client's ask for a stream's snapshot (Subscribe, Resync) within its
// connection's snapshot budget (Config.SnapshotRate): the snapshot is queued now if the budget
// holds its encoded bytes, which are charged, or else deferred until it does (releaseDeferred).
// A stream whose snapshot waits already keeps that one: asking again adds nothing, and it will
// carry the state of when it goes. So a client asking in a loop gets the budget's rate in
// snapshots, and costs an encoding per stream per deferral, not one per command.
func (o *owner) request(in *instrument, s *sub, reason pb.SnapshotReason, now time.Time) {
	if s.deferred != 0 {
		return
	}
	if s.interval > 0 && reason == pb.SnapshotReason_SNAPSHOT_REASON_RESYNC && now.Before(s.next) {
		// A resync does not beat the rate tier: the latest state goes when the interval is up.
		o.markDirty(in, s)
		return
	}
	b := o.snapshotBytes(in, s, s.stream, reason)
	if b == nil {
		return // pending (or unencodable, logged): a book's snapshot comes when it is whole
	}
	if !s.sess.snaps.take(now, len(b), o.hub.cfg.snapshotLimits()) {
		s.deferred, s.need = reason, len(b)
		o.deferred = append(o.deferred, deferral{in: in, s: s})
		o.hub.metrics.snapsDeferred.WithLabelValues(askedBy(reason)).Inc()
		o.startTicker()
		return
	}
	o.queueSnapshot(in, s, b, reason)
}

// askedBy labels a requested snapshot by the command that asked for it.
func askedBy(reason pb.SnapshotReason) string {
	if reason == pb.SnapshotReason_SNAPSHOT_REASON_RESYNC {
		return "resync"
	}
	return "subscribe" // SUBSCRIBE, or HISTORY_GONE or NEW_EPOCH for a resume
}

// releaseDeferred queues the deferred snapshots whose session's budget now holds them, oldest
// first, and forgets those answered meanwhile (by a snapshot the server sent on its own) or
// unsubscribed. The snapshot cache is current: it is cleared at every change of the state.
func (o *owner) releaseDeferred(now time.Time) {
	if len(o.deferred) == 0 {
		return
	}
	limits := o.hub.cfg.snapshotLimits()
	kept := o.deferred[:0]
	for _, d := range o.deferred {
		s := d.s
		if s.deferred == 0 {
			continue
		}
		if !s.sess.snaps.holds(now, s.need, limits) {
			kept = append(kept, d)
			continue
		}
		reason := s.deferred
		b := o.snapshotBytes(d.in, s, s.stream, reason)
		if b != nil && !s.sess.snaps.take(now, len(b), limits) {
			s.need = len(b) // it grew since
			kept = append(kept, d)
			continue
		}
		// Answered whatever becomes of it: pending (sent when the book is whole), queued, or
		// refused as stale by the connection (the cmdConflated that follows sends it).
		s.deferred = 0
		if b != nil {
			o.queueSnapshot(d.in, s, b, reason)
		}
	}
	clear(o.deferred[len(kept):])
	o.deferred = kept
}

// bookBroke tells the instrument's book subscribers that their stream stopped: the feed's copy of
// the book broke (it missed an event), and no delta comes until the RESYNC snapshot that heals it.
func (o *owner) bookBroke(in *instrument) {
	var subs []*sub
	for i := range o.hub.cfg.Market.Depths {
		for _, s := range in.streams[market.StreamBook0+i] {
			if !s.pending {
				subs = append(subs, s)
			}
		}
	}
	o.sendStatus(in, subs, awaitingBook)
}

// sendStatus sends AWAITING_SNAPSHOT for the book to subs, encoded once per format.
func (o *owner) sendStatus(in *instrument, subs []*sub, reason string) {
	if len(subs) == 0 {
		return
	}
	o.hub.metrics.bookWaits.Inc()
	status := controlMessage{m: &pb.ServerMessage{Kind: &pb.ServerMessage_StreamStatus{StreamStatus: &pb.StreamStatus{Handle: in.handle,
		Channel: pb.Channel_CHANNEL_BOOK, State: pb.StreamState_STREAM_STATE_AWAITING_SNAPSHOT, Reason: reason}}}}
	for _, s := range subs {
		status.queue(o.log, s.sess)
	}
}

// askSnapshot asks ingest for a fresh snapshot of the instrument's book, when someone is
// subscribed to it and it was not asked within askSnapshotEvery (a request may be lost, or
// ingest down: it is asked again on a later event). Without a snapshot source (tests,
// embedding) nothing is asked and the book heals at the source's next snapshot.
func (o *owner) askSnapshot(in *instrument) {
	ask := o.hub.snapshots.Load()
	if ask == nil || !o.hasBookSubscribers(in) {
		return
	}
	now := time.Now()
	if now.Sub(in.askedAt) < askSnapshotEvery {
		return
	}
	in.askedAt = now
	if err := (*ask)(in.st.ID()); err != nil {
		o.log.Debug("snapshot request not sent", "instrument", in.st.ID(), "err", err)
	}
}

func (o *owner) hasBookSubscribers(in *instrument) bool {
	for i := range o.hub.cfg.Market.Depths {
		if len(in.streams[market.StreamBook0+i]) > 0 {
			return true
		}
	}
	return false
}

// throttle serves a change of a rate-limited stream (sub.interval): a RATE_LIMITED snapshot of
// the latest state now if the interval since the last one is up, else the stream is marked and
// the snapshot goes when it is (releaseThrottled). Never a queue of deltas: however many changes
// come within an interval, one snapshot of the state at its end carries them.
func (o *owner) throttle(in *instrument, s *sub, now time.Time) {
	if now.Before(s.next) {
		o.markDirty(in, s)
		return
	}
	s.dirty = false
	o.snapshot(in, s, s.stream, pb.SnapshotReason_SNAPSHOT_REASON_RATE_LIMITED)
}

// markDirty notes that a rate-limited stream has a change waiting for its interval.
func (o *owner) markDirty(in *instrument, s *sub) {
	s.dirty = true
	if !s.listed {
		s.listed = true
		o.throttled = append(o.throttled, throttled{in: in, s: s})
		o.startTicker()
	}
}

// releaseThrottled sends the waiting changes of rate-limited streams whose interval is up (at
// most a tick late), and forgets the streams answered meanwhile or unsubscribed.
func (o *owner) releaseThrottled(now time.Time) {
	if len(o.throttled) == 0 {
		return
	}
	kept := o.throttled[:0]
	for _, t := range o.throttled {
		s := t.s
		switch {
		case !s.dirty, s.pending, s.deferred != 0:
			// Answered meanwhile, unsubscribed, or waiting for a snapshot that will carry the
			// latest state when it goes.
			s.listed, s.dirty = false, false
		case now.Before(s.next):
			kept = append(kept, t)
		default:
			s.listed, s.dirty = false, false
			o.snapshot(t.in, s, s.stream, pb.SnapshotReason_SNAPSHOT_REASON_RATE_LIMITED)
		}
	}
	clear(o.throttled[len(kept):])
	o.throttled = kept
}

func reasonLabel(r pb.SnapshotReason) string {
	switch r {
	case pb.SnapshotReason_SNAPSHOT_REASON_SUBSCRIBE:
		return "subscribe"
	case pb.SnapshotReason_SNAPSHOT_REASON_RESYNC:
		return "resync"
	case pb.SnapshotReason_SNAPSHOT_REASON_CONFLATED:
		return "conflated"
	case pb.SnapshotReason_SNAPSHOT_REASON_NEW_EPOCH:
		return "new_epoch"
	case pb.SnapshotReason_SNAPSHOT_REASON_RATE_LIMITED:
		return "rate_limited"
	case pb.SnapshotReason_SNAPSHOT_REASON_HISTORY_GONE:
		return "history_gone"
	}
	return "unspecified"
}
