package feed

// The subscription commands an owner applies to its instruments (subscribe, unsubscribe,
// resume positions parked until the instrument reaches them), posted by sessions (commands.go).

import (
	"time"

	"github.com/tickwire/tickwire/internal/fanout"
	"github.com/tickwire/tickwire/pkg/market"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

func (o *owner) handle(c *command) {
	clear(o.snapCache) // snapshots now reflect the state after the last event
	switch c.kind {
	case cmdSubscribe:
		o.subscribe(c)
	case cmdUnsubscribe:
		o.unsubscribe(c)
	case cmdResync:
		in := o.instruments[c.instrument]
		if in == nil {
			return
		}
		now := time.Now()
		for _, s := range in.bySess[c.sess] {
			if len(c.channels) == 0 || containsChannel(c.channels, s.ch) {
				o.request(in, s, pb.SnapshotReason_SNAPSHOT_REASON_RESYNC, now)
			}
		}
	case cmdConflated:
		gen := c.sess.out.Gen()
		for in := range o.sessions[c.sess] {
			for _, s := range in.bySess[c.sess] {
				if s.gen != gen && !s.pending && s.deferred == 0 { // a deferred one goes at its gen
					o.snapshot(in, s, s.stream, pb.SnapshotReason_SNAPSHOT_REASON_CONFLATED)
				}
			}
		}
	case cmdBarrier:
		close(c.done) // the events queued before it were applied first (see run)
	case cmdCheckpoint:
		o.checkpoint(c.ckpt) // at the state after the events queued before it, as a barrier
		close(c.done)
	case cmdRestore:
		o.restore(c.ckpt)
		close(c.done)
	case cmdClosed:
		o.unpark(c.sess, "", nil)
		for in := range o.sessions[c.sess] {
			o.removeSubs(in, c.sess, nil)
		}
		delete(o.sessions, c.sess)
	}
}

func containsChannel(chans []pb.Channel, ch pb.Channel) bool {
	for _, c := range chans {
		if c == ch {
			return true
		}
	}
	return false
}

func (o *owner) subscribe(c *command) {
	in := o.instruments[c.instrument]
	if in == nil {
		c.sess.sendError(c.reqID, pb.ErrorCode_ERROR_CODE_UNKNOWN_INSTRUMENT, "unknown instrument", c.instrument)
		return
	}
	o.unpark(c.sess, c.instrument, nil) // a repeated subscribe replaces one still waiting
	if o.parkFuture(in, c) {
		return
	}
	o.removeSubs(in, c.sess, c.channels) // a repeated subscribe replaces (a new depth, say)
	depth := uint32(0)
	var subs []*sub
	for _, ch := range c.channels {
		s := &sub{sess: c.sess, ch: ch, stream: market.StreamOf(ch, c.depthIndex),
			compact: c.compact && ch == pb.Channel_CHANNEL_QUOTE && c.interval == 0, interval: c.interval}
		if ch == pb.Channel_CHANNEL_BOOK {
			depth = o.hub.cfg.Market.Depths[c.depthIndex]
		}
		s.idx = len(in.streams[s.stream])
		in.streams[s.stream] = append(in.streams[s.stream], s)
		in.bySess[c.sess] = append(in.bySess[c.sess], s)
		subs = append(subs, s)
	}
	if o.sessions[c.sess] == nil {
		o.sessions[c.sess] = make(map[*instrument]struct{})
	}
	o.sessions[c.sess][in] = struct{}{}
	info := in.st.Info()
	if info == nil { // no reference data yet (feed started between checkpoints): the id at least
		info = &pb.InstrumentInfo{Id: c.instrument}
	}
	// Work out which streams resume from the client's position before saying anything.
	type resumed struct {
		s      *sub
		deltas [][]byte // binary ServerMessages
	}
	var resumes []resumed
	var resumedChans []pb.Channel
	reasons := make(map[*sub]pb.SnapshotReason, len(subs))
	epoch, seq := in.st.Position()
	for _, s := range subs {
		reasons[s] = pb.SnapshotReason_SNAPSHOT_REASON_SUBSCRIBE
		pos, asked := c.resume[s.ch]
		if !asked {
			continue
		}
		switch {
		case pos.Epoch != epoch:
			reasons[s] = pb.SnapshotReason_SNAPSHOT_REASON_NEW_EPOCH
		case pos.Seq > seq, s.ch == pb.Channel_CHANNEL_BOOK && !in.st.BookSynced():
			// A position from the future is from another history; an unsynced book has no deltas.
			reasons[s] = pb.SnapshotReason_SNAPSHOT_REASON_HISTORY_GONE
		default:
			deltas, ok := in.hist.since(s.stream, pos.Seq, in.st.LastDeltaSeq(s.stream))
			if !ok {
				reasons[s] = pb.SnapshotReason_SNAPSHOT_REASON_HISTORY_GONE
				break
			}
			delete(reasons, s)
			resumes = append(resumes, resumed{s, deltas})
			resumedChans = append(resumedChans, s.ch)
		}
		if _, gone := reasons[s]; gone {
			o.hub.metrics.resumes.WithLabelValues("snapshot").Inc()
		} else {
			o.hub.metrics.resumes.WithLabelValues("resumed").Inc()
		}
	}
	c.sess.sendControl(&pb.ServerMessage{Kind: &pb.ServerMessage_Subscribed{Subscribed: &pb.Subscribed{
		RequestId: c.reqID, Handle: in.handle, Info: info, Channels: c.channels, Depth: depth,
		TradeHistory: uint32(o.hub.cfg.Market.TradeHistory), CandleHistory: uint32(o.hub.cfg.Market.CandleHistory),
		Resumed: resumedChans, UpdateIntervalMs: uint32(c.interval / time.Millisecond),
		DelayMs: uint64(o.hub.delay / time.Millisecond)}}})
	now := time.Now()
	for _, s := range subs {
		if reason, ok := reasons[s]; ok {
			o.request(in, s, reason, now)
		}
		if s.pending && s.ch == pb.Channel_CHANNEL_BOOK {
			o.sendStatus(in, []*sub{s}, awaitingBook)
			o.askSnapshot(in)
		}
	}
	for _, r := range resumes {
		out := r.s.sess.out
		r.s.gen = out.Gen()
		for _, b := range r.deltas {
			if r.s.sess.json {
				if b = o.jsonOf(b); b == nil {
					continue // logged; the client sees the gap and resyncs
				}
			}
			switch out.Enqueue(b, fanout.Delta, r.s.gen) {
			case fanout.Stale, fanout.Conflated:
				o.snapshot(in, r.s, r.s.stream, pb.SnapshotReason_SNAPSHOT_REASON_CONFLATED)
			case fanout.Queued:
				r.s.based = true // this feed's latest delta of the stream is the last one here
				continue
			case fanout.Closed:
			}
			break
		}
	}
}

// parkFuture holds a resume from positions of the instrument's current epoch that this feed
// has not reached yet: the client comes from a replica that is ahead. Answered now it would get a
// HISTORY_GONE snapshot older than what it holds, then deltas it already had; held, it is
// answered (resumed, no snapshot) once the instrument gets there, or after ResumeWait as before.
func (o *owner) parkFuture(in *instrument, c *command) bool {
	if c.waited || o.hub.cfg.ResumeWait < 0 || !aheadOf(in, c) {
		return false
	}
	o.parked = append(o.parked, parked{cmd: *c, until: time.Now().Add(o.hub.cfg.ResumeWait)})
	o.startTicker() // for the deadline
	return true
}

// aheadOf reports whether any of c's resume positions is in in's current epoch but past its
// position.
func aheadOf(in *instrument, c *command) bool {
	epoch, seq := in.st.Position()
	for _, ch := range c.channels {
		if pos, ok := c.resume[ch]; ok && pos.Epoch == epoch && pos.Seq > seq {
			return true
		}
	}
	return false
}

// releaseParked answers the parked resumes whose instrument reached their positions (or left
// their epoch), and those that waited long enough.
func (o *owner) releaseParked(now time.Time) {
	kept := o.parked[:0]
	var due []command
	for _, p := range o.parked {
		in := o.instruments[p.cmd.instrument]
		if in == nil || now.After(p.until) || !aheadOf(in, &p.cmd) {
			p.cmd.waited = true
			due = append(due, p.cmd)
		} else {
			kept = append(kept, p)
		}
	}
	clear(o.parked[len(kept):])
	o.parked = kept
	for i := range due {
		o.handle(&due[i])
	}
}

// unpark drops the given channels (all if chans is nil) from sess's parked resumes of
// instrument (every instrument if instrument is ""), and a resume left without channels.
func (o *owner) unpark(sess *session, instrument string, chans []pb.Channel) {
	if len(o.parked) == 0 {
		return
	}
	kept := o.parked[:0]
	for _, p := range o.parked {
		if p.cmd.sess == sess && (instrument == "" || p.cmd.instrument == instrument) {
			if chans == nil {
				continue
			}
			var left []pb.Channel
			for _, ch := range p.cmd.channels {
				if !containsChannel(chans, ch) {
					left = append(left, ch)
				}
			}
			if len(left) == 0 {
				continue
			}
			p.cmd.channels = left
		}
		kept = append(kept, p)
	}
	clear(o.parked[len(kept):])
	o.parked = kept
}

func (o *owner) unsubscribe(c *command) {
	o.unpark(c.sess, c.instrument, c.channels)
	in := o.instruments[c.instrument]
	if in == nil {
		return
	}
	removed := o.removeSubs(in, c.sess, c.channels)
	if len(in.bySess[c.sess]) == 0 {
		delete(o.sessions[c.sess], in)
	}
	c.sess.sendControl(&pb.ServerMessage{Kind: &pb.ServerMessage_Unsubscribed{Unsubscribed: &pb.Unsubscribed{
		RequestId: c.reqID, Handle: in.handle, Channels: removed}}})
}

// removeSubs removes the session's subscriptions to the given channels of in (all if chans is
// nil) and returns the channels removed.
func (o *owner) removeSubs(in *instrument, sess *session, chans []pb.Channel) []pb.Channel {
	var removed []pb.Channel
	kept := in.bySess[sess][:0]
	for _, s := range in.bySess[sess] {
		if chans != nil && !containsChannel(chans, s.ch) {
			kept = append(kept, s)
			continue
		}
		if s.pending {
			in.pending--
		}
		s.deferred = 0  // its entry in owner.deferred is dropped at the next release
		s.dirty = false // and its entry in owner.throttled
		list := in.streams[s.stream]
		last := list[len(list)-1]
		list[s.idx] = last
		last.idx = s.idx
		list[len(list)-1] = nil
		in.streams[s.stream] = list[:len(list)-1]
		removed = append(removed, s.ch)
	}
	if len(kept) == 0 {
		delete(in.bySess, sess)
	} else {
		in.bySess[sess] = kept
	}
	return removed
}
