package client

import (
	"slices"
	"sync/atomic"

	"google.golang.org/protobuf/proto"

	"github.com/tickwire/tickwire/pkg/book"
	"github.com/tickwire/tickwire/pkg/market"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// View is a copy of the state the client holds for one instrument. It shares nothing with the
// client: keep it, modify it, pass it to other goroutines.
type View struct {
	Instrument string
	// Info is the reference data from the latest Subscribed; nil before the first.
	Info *pb.InstrumentInfo
	// Depth is the book depth the server granted.
	Depth uint32
	// Streams holds the position of every subscribed channel. Fields of channels that are not
	// subscribed are zero.
	Streams map[pb.Channel]Stream
	Quote   *pb.Quote
	Book    *book.Book
	Trades  []*pb.TradeRecord
	Candles []*pb.Candle
	Stats   *pb.Stats
	// Resyncs counts the Resync requests the client sent for this instrument on its own.
	Resyncs uint64
}

// Stream is the client's position on one (instrument, channel) stream.
type Stream struct {
	market.Position
	// Synced: the stream holds a snapshot and every delta since. False while waiting for a
	// snapshot (after subscribing, a break or a reconnect).
	Synced bool
}

// Synced reports whether every subscribed stream of the instrument is synced.
func (v *View) Synced() bool {
	for _, s := range v.Streams {
		if !s.Synced {
			return false
		}
	}
	return len(v.Streams) > 0
}

// View returns a copy of the state held for instrument, or false if it is not subscribed.
// Safe from any goroutine.
func (c *Client) View(instrument string) (View, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.subs[instrument]
	if st == nil {
		return View{}, false
	}
	r := &st.replica
	v := View{Instrument: st.id, Depth: st.granted, Streams: make(map[pb.Channel]Stream), Resyncs: st.resyncs}
	if st.info != nil {
		v.Info = proto.CloneOf(st.info)
	}
	for i, ok := range st.channels {
		if !ok {
			continue
		}
		ch := pb.Channel(i)
		v.Streams[ch] = Stream{Position: r.Position(ch), Synced: r.Synced(ch) && !st.await[ch] && !st.stale[ch]}
		switch ch {
		case pb.Channel_CHANNEL_QUOTE:
			v.Quote = r.Quote()
		case pb.Channel_CHANNEL_BOOK:
			v.Book = r.Book().Clone()
		case pb.Channel_CHANNEL_TRADES:
			v.Trades = cloneAll(r.Trades())
		case pb.Channel_CHANNEL_CANDLES:
			v.Candles = cloneAll(r.Candles())
		case pb.Channel_CHANNEL_STATS:
			if s := r.Stats(); s != nil {
				v.Stats = proto.CloneOf(s)
			}
		}
	}
	return v, true
}

// Instruments returns the ids of the instruments the client holds, sorted. Safe from any
// goroutine.
func (c *Client) Instruments() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]string, 0, len(c.subs))
	for id := range c.subs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func cloneAll[M proto.Message](in []M) []M {
	out := make([]M, len(in))
	for i, m := range in {
		out[i] = proto.CloneOf(m)
	}
	return out
}

// Stats are the client's counters since it was created.
type Stats struct {
	// Connects and Disconnects count connections established and lost (or closed).
	Connects, Disconnects uint64
	// HeartbeatTimeouts counts connections dropped because nothing arrived in time.
	HeartbeatTimeouts uint64
	// WriteTimeouts counts connections dropped because a frame could not be written in time
	// (Options.WriteTimeout).
	WriteTimeouts uint64
	// Frames counts server frames read; Snapshots and Deltas count those applied.
	Frames, Snapshots, Deltas uint64
	// Stale counts deltas already held (ignored, harmless).
	Stale uint64
	// Gaps, EpochChanges and ChecksumFailures count broken streams by cause.
	Gaps, EpochChanges, ChecksumFailures uint64
	// Resyncs counts Resync commands sent.
	Resyncs uint64
	// DecodeErrors counts frames or messages that could not be used.
	DecodeErrors uint64
	// ServerErrors counts Error messages from the server.
	ServerErrors uint64
	// Resumed counts streams resumed after a reconnect without a snapshot (the server sent
	// exactly the deltas missed).
	Resumed uint64
	// CompactQuotes counts quote deltas that arrived as CompactQuote (Options.CompactQuotes)
	// and were expanded; those applied are in Deltas too.
	CompactQuotes uint64
	// ProtocolErrors counts connections ended because the server broke the WebSocket protocol
	// (a frame header refused before it was used); Panics, those ended by a panic while reading
	// (in a handler, or a bug), which is logged with its stack.
	ProtocolErrors, Panics uint64
}

type counters struct {
	connects, disconnects, heartbeatTimeouts      atomic.Uint64
	writeTimeouts                                 atomic.Uint64
	frames, snapshots, deltas, stale              atomic.Uint64
	gaps, epochChanges, checksumFailures, resyncs atomic.Uint64
	decodeErrors, serverErrors, resumes           atomic.Uint64
	compactQuotes                                 atomic.Uint64
	protocolErrors, panics                        atomic.Uint64
}

// Stats returns the client's counters. Safe from any goroutine.
func (c *Client) Stats() Stats {
	s := &c.stats
	return Stats{
		Connects: s.connects.Load(), Disconnects: s.disconnects.Load(), HeartbeatTimeouts: s.heartbeatTimeouts.Load(),
		WriteTimeouts: s.writeTimeouts.Load(), Frames: s.frames.Load(), Snapshots: s.snapshots.Load(), Deltas: s.deltas.Load(), Stale: s.stale.Load(),
		Gaps: s.gaps.Load(), EpochChanges: s.epochChanges.Load(), ChecksumFailures: s.checksumFailures.Load(),
		Resyncs: s.resyncs.Load(), DecodeErrors: s.decodeErrors.Load(), ServerErrors: s.serverErrors.Load(),
		Resumed: s.resumes.Load(), CompactQuotes: s.compactQuotes.Load(),
		ProtocolErrors: s.protocolErrors.Load(), Panics: s.panics.Load(),
	}
}
