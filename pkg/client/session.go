package client

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/lxzan/gws"

	"github.com/tickwire/tickwire/internal/wsframe"
	"github.com/tickwire/tickwire/pkg/market"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// extend pushes the read deadline one heartbeat timeout ahead: any frame proves the connection
// alive. A read that hits the deadline ends ReadLoop, and Run reconnects.
func (s *session) extend() {
	_ = s.conn.SetReadDeadline(time.Now().Add(s.c.opts.HeartbeatTimeout))
}

func (s *session) OnOpen(*gws.Conn) {}

func (s *session) OnClose(_ *gws.Conn, err error) {
	var ce *gws.CloseError
	var ne net.Error
	switch {
	case errors.As(err, &ce):
		code := int(ce.Code)
		if code == 0 {
			code = 1005 // no status received
		}
		s.err = &CloseError{Code: code, Reason: string(ce.Reason)}
	case errors.As(err, new(*wsframe.Error)):
		s.c.stats.protocolErrors.Add(1)
		s.err = fmt.Errorf("%w: %w", ErrProtocol, err)
	case errors.Is(err, ErrWriteTimeout): // a net.Error timeout too: tell it from a read's
		s.c.stats.writeTimeouts.Add(1)
		s.err = err
	case errors.As(err, &ne) && ne.Timeout():
		s.c.stats.heartbeatTimeouts.Add(1)
		s.err = fmt.Errorf("%w: nothing received for %v", ErrHeartbeatTimeout, s.c.opts.HeartbeatTimeout)
	default:
		s.err = err
	}
}

// OnPing answers at once, from the read goroutine. The pong's write is bounded by
// deadlineConn like every frame; a failed one fails the connection, and OnClose says why.
func (s *session) OnPing(conn *gws.Conn, payload []byte) {
	s.extend()
	_ = conn.WritePong(payload)
}

func (s *session) OnPong(*gws.Conn, []byte) { s.extend() }

func (s *session) OnMessage(_ *gws.Conn, m *gws.Message) {
	defer m.Close()
	received := time.Now()
	s.extend()
	s.gotFrame = true
	c := s.c
	c.stats.frames.Add(1)
	f := &s.frame
	f.Reset()
	if err := wire.DecodeFrame(m.Bytes(), s.subprotocol, f); err != nil {
		// Dropping the frame is safe: a lost snapshot or delta shows up as a gap and is resynced.
		c.stats.decodeErrors.Add(1)
		c.log.Warn("tickwire client: undecodable frame", "bytes", m.Data.Len(), "err", err)
		return
	}
	var sent time.Time
	if f.SendTimeNs > 0 {
		sent = time.Unix(0, f.SendTimeNs)
	}
	for _, msg := range f.Messages {
		c.dispatch(msg, received, sent)
	}
}

// dispatch handles one server message, on Run's goroutine.
func (c *Client) dispatch(m *pb.ServerMessage, received, sent time.Time) {
	switch k := m.Kind.(type) {
	case *pb.ServerMessage_Snapshot:
		c.onSnapshot(k.Snapshot, received, sent)
	case *pb.ServerMessage_Delta:
		c.onDelta(k.Delta, received, sent)
	case *pb.ServerMessage_CompactQuote:
		c.onCompactQuote(k.CompactQuote, received, sent)
	case *pb.ServerMessage_Subscribed:
		c.onSubscribed(k.Subscribed)
	case *pb.ServerMessage_InstrumentList:
		c.mu.Lock()
		done := c.lists[k.InstrumentList.RequestId]
		delete(c.lists, k.InstrumentList.RequestId)
		c.mu.Unlock()
		if done != nil {
			done <- listResult{list: k.InstrumentList.Instruments}
		}
	case *pb.ServerMessage_Error:
		c.onError(k.Error)
	case *pb.ServerMessage_InstrumentUpdate:
		c.onInstrumentUpdate(k.InstrumentUpdate)
	case *pb.ServerMessage_StreamStatus:
		c.mu.Lock()
		id := c.byHnd[k.StreamStatus.Handle]
		c.mu.Unlock()
		if sh, ok := c.h.(StreamStatusHandler); ok && id != "" {
			sh.OnStreamStatus(c, id, k.StreamStatus)
		}
	case *pb.ServerMessage_ReplayStatus:
		if rh, ok := c.h.(ReplayStatusHandler); ok {
			rh.OnReplayStatus(c, k.ReplayStatus)
		}
	case *pb.ServerMessage_Unsubscribed, *pb.ServerMessage_Heartbeat, *pb.ServerMessage_Pong:
		// Nothing to do: the desired state already changed, and any frame extends the deadline.
	}
}

// onInstrumentUpdate keeps an instrument's new reference data (a halt, say): later updates and
// views carry it, and an InstrumentHandler hears of it.
func (c *Client) onInstrumentUpdate(m *pb.InstrumentUpdate) {
	c.mu.Lock()
	id := c.byHnd[m.Handle]
	st := c.subs[id]
	if st != nil && m.Info.GetId() == id {
		st.info = m.Info
	}
	c.mu.Unlock()
	if st == nil || m.Info.GetId() != id {
		return // not (or no longer) subscribed, or an update that does not match its handle
	}
	if ih, ok := c.h.(InstrumentHandler); ok {
		ih.OnInstrument(c, m.Info)
	}
}

func (c *Client) onSubscribed(m *pb.Subscribed) {
	id := m.GetInfo().GetId()
	if id == "" {
		c.log.Warn("tickwire client: Subscribed without instrument id", "handle", m.Handle)
		return
	}
	c.mu.Lock()
	c.byHnd[m.Handle] = id
	st := c.subs[id]
	if venue, _, _ := strings.Cut(id, ":"); st == nil && c.venues[venue] != nil {
		// An instrument of a venue wildcard: held from now on, with the wildcard's channels.
		w := c.venues[venue]
		st = &sub{id: id, channels: w.channels, depth: w.depth}
		c.subs[id] = st
	}
	if st != nil {
		st.info = m.Info
		st.granted = m.Depth
		// Channels not resumed get a snapshot next: until then their deltas are not ours to apply.
		for _, ch := range m.Channels {
			if !slices.Contains(m.Resumed, ch) && int(ch) < len(st.await) {
				st.await[ch] = true
			}
		}
		for _, ch := range m.Resumed {
			if int(ch) < len(st.stale) {
				st.stale[ch] = false
			}
		}
		c.stats.resumes.Add(uint64(len(m.Resumed)))
		// Trim history exactly as the server does, so the replica equals a fresh snapshot.
		st.replica.TradeHistory = int(m.TradeHistory)
		st.replica.CandleHistory = int(m.CandleHistory)
	}
	c.mu.Unlock()
	if st != nil {
		c.h.OnSubscribed(c, m)
	}
}

// lookupLocked returns the subscription that handle names on this connection, if ch is held.
func (c *Client) lookupLocked(handle uint32, ch pb.Channel) *sub {
	st := c.subs[c.byHnd[handle]]
	if st == nil || ch < 0 || int(ch) >= len(st.channels) || !st.channels[ch] {
		return nil
	}
	return st
}

func (c *Client) onSnapshot(snap *pb.Snapshot, received, sent time.Time) {
	ch := snap.Channel
	c.mu.Lock()
	st := c.lookupLocked(snap.Handle, ch)
	if st == nil {
		c.mu.Unlock()
		return
	}
	err := st.replica.ApplySnapshot(snap)
	if err == nil {
		st.resync[ch] = false
		st.await[ch] = false
		st.stale[ch] = false
		c.mu.Unlock()
		c.stats.snapshots.Add(1)
		c.h.OnSnapshot(c, Update{Instrument: st.id, Info: st.info, Channel: ch, Snapshot: snap,
			Replica: &st.replica, Received: received, SendTime: sent})
		return
	}
	if !errors.Is(err, market.ErrChecksum) {
		c.mu.Unlock()
		c.stats.decodeErrors.Add(1)
		c.log.Warn("tickwire client: bad snapshot", "instrument", st.id, "channel", ch, "err", err)
		return
	}
	// A snapshot that contradicts its own checksum: ask again, even if this was the answer to
	// an earlier Resync.
	c.stats.checksumFailures.Add(1)
	st.resync[ch] = true
	st.resyncs++
	c.mu.Unlock()
	c.resync(st.id, ch, err)
}

// onCompactQuote expands a compact quote against the quote held and handles the Delta it
// stands for.
func (c *Client) onCompactQuote(q *pb.CompactQuote, received, sent time.Time) {
	c.mu.Lock()
	st := c.lookupLocked(q.Handle, pb.Channel_CHANNEL_QUOTE)
	if st == nil || st.await[pb.Channel_CHANNEL_QUOTE] {
		c.mu.Unlock()
		return
	}
	d, err := st.replica.ExpandCompactQuote(q)
	c.mu.Unlock()
	switch {
	case errors.Is(err, market.ErrNotSynced):
		return // waiting for a snapshot, as for a Delta
	case err != nil:
		c.stats.decodeErrors.Add(1)
		c.log.Warn("tickwire client: bad compact quote", "instrument", st.id, "err", err)
		return
	}
	c.stats.compactQuotes.Add(1)
	c.onDelta(d, received, sent)
}

func (c *Client) onDelta(d *pb.Delta, received, sent time.Time) {
	ch := market.ChannelOf(d)
	c.mu.Lock()
	st := c.lookupLocked(d.Handle, ch)
	if st == nil || st.await[ch] {
		c.mu.Unlock()
		return
	}
	err := st.replica.ApplyDelta(d)
	switch {
	case err == nil:
		c.mu.Unlock()
		c.stats.deltas.Add(1)
		var lat time.Duration
		if d.IngestTimeNs > 0 {
			lat = received.Sub(time.Unix(0, d.IngestTimeNs))
		}
		c.h.OnUpdate(c, Update{Instrument: st.id, Info: st.info, Channel: ch, Delta: d,
			Replica: &st.replica, Received: received, SendTime: sent, Latency: lat})
		return
	case errors.Is(err, market.ErrStale):
		c.mu.Unlock()
		c.stats.stale.Add(1)
		return
	case errors.Is(err, market.ErrNotSynced):
		// Waiting for a snapshot: the first after subscribing, or the answer to a Resync.
		c.mu.Unlock()
		return
	case errors.Is(err, market.ErrGap):
		c.stats.gaps.Add(1)
	case errors.Is(err, market.ErrEpoch):
		c.stats.epochChanges.Add(1)
	case errors.Is(err, market.ErrChecksum):
		c.stats.checksumFailures.Add(1)
	default:
		c.mu.Unlock()
		c.stats.decodeErrors.Add(1)
		c.log.Warn("tickwire client: bad delta", "instrument", st.id, "err", err)
		return
	}
	// The stream is broken. Ask once; its deltas are refused (ErrNotSynced) until the snapshot.
	first := !st.resync[ch]
	st.resync[ch] = true
	if first {
		st.resyncs++
	}
	c.mu.Unlock()
	if first {
		c.resync(st.id, ch, err)
	}
}

// resync sends Resync for one stream and reports it, on Run's goroutine.
func (c *Client) resync(id string, ch pb.Channel, reason error) {
	c.stats.resyncs.Add(1)
	c.log.Info("tickwire client: resync", "instrument", id, "channel", ch, "err", reason)
	c.wmu.Lock()
	c.sendLocked(&pb.ClientMessage{Command: &pb.ClientMessage_Resync{Resync: &pb.Resync{
		Instrument: id, Channels: []pb.Channel{ch}}}})
	c.wmu.Unlock()
	c.h.OnResync(c, id, ch, reason)
}

func (c *Client) onError(e *pb.Error) {
	c.stats.serverErrors.Add(1)
	c.log.Warn("tickwire client: server error", "code", e.Code, "message", e.Message, "instrument", e.Instrument)
	c.mu.Lock()
	if done := c.lists[e.RequestId]; done != nil && e.RequestId != 0 {
		delete(c.lists, e.RequestId)
		done <- listResult{err: fmt.Errorf("client: list instruments: %s: %s", e.Code, e.Message)}
	}
	// An instrument the feed does not know would be asked for again on every reconnect.
	if e.Code == pb.ErrorCode_ERROR_CODE_UNKNOWN_INSTRUMENT && e.Instrument != "" {
		delete(c.subs, e.Instrument)
	}
	c.mu.Unlock()
	c.h.OnError(c, e)
}
