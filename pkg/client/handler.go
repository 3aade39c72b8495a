package client

import (
	"time"

	"github.com/tickwire/tickwire/pkg/book"
	"github.com/tickwire/tickwire/pkg/market"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// Handler receives a Client's events. Every method is called on the goroutine running
// Client.Run, one at a time and in the order the server sent the messages, so a handler needs no
// locking of its own for state it keeps per client. A method must not block for long: while it
// runs, nothing else is read from the connection (and a heartbeat timeout may drop it).
// Handlers may call Subscribe, Unsubscribe, Resync, View and Stats; they must not call
// ListInstruments, which waits for Run to deliver its answer.
//
// Embed BaseHandler to implement only the methods you need; methods added to Handler in later
// versions will then keep compiling.
type Handler interface {
	// OnStateChange reports a connection established (Connected, err nil) or lost
	// (Disconnected, with the reason). After Connected, every held subscription has been sent
	// again; its snapshots follow.
	OnStateChange(c *Client, state ConnState, err error)
	// OnSubscribed reports the server's confirmation of one instrument's subscription, with its
	// reference data (price and size scale) in s.Info.
	OnSubscribed(c *Client, s *pb.Subscribed)
	// OnSnapshot reports a snapshot applied to one stream: u.Snapshot is set and u.Replica holds
	// the whole state of the instrument.
	OnSnapshot(c *Client, u Update)
	// OnUpdate reports a delta applied to one stream: u.Delta is set and u.Replica holds the state
	// after it.
	OnUpdate(c *Client, u Update)
	// OnResync reports a broken stream (a gap, an epoch change or a checksum mismatch, in
	// reason) for which the client has just asked the server for a fresh snapshot. Until it
	// arrives the stream is not synced and its deltas are ignored.
	OnResync(c *Client, instrument string, ch pb.Channel, reason error)
	// OnError reports an Error message from the server: a command that failed. The connection
	// stays.
	OnError(c *Client, e *pb.Error)
}

// InstrumentHandler is implemented by handlers that want to hear when a subscribed instrument's
// reference data changes (InstrumentInfo.status: a halt, a resumption, a close). It is
// optional: the client checks for it, so Handler itself is unchanged. OnInstrument is called
// like Handler's methods, in order with the instrument's updates; later Updates and Views carry
// the new data either way.
type InstrumentHandler interface {
	OnInstrument(c *Client, info *pb.InstrumentInfo)
}

// StreamStatusHandler is implemented by handlers that want to hear when the server says a stream
// has stopped: today the book, while the server's copy of it is not whole (s.State
// STREAM_STATE_AWAITING_SNAPSHOT). No delta of the stream comes until its next snapshot, which
// OnSnapshot reports; meanwhile the replica keeps the book it had, which is not live. Optional,
// like InstrumentHandler.
type StreamStatusHandler interface {
	OnStreamStatus(c *Client, instrument string, s *pb.StreamStatus)
}

// ReplayStatusHandler is implemented by handlers that watch a replay session (Options.URL
// ending in ?replay=<session>; docs/PROTOCOL.md, "Replay sessions") and want its status: the
// latest ReplayStatus on every connect, then each one the replayer publishes (every second and
// after every change). s.State REPLAY_STATE_FINISHED means everything in the window was
// replayed; a new s.Generation means a seek (every stream then gets a NEW_EPOCH snapshot). A
// live connection never receives one. Optional, like InstrumentHandler; s belongs to the
// client: read it during the call, and clone it (proto.CloneOf) to keep it.
type ReplayStatusHandler interface {
	OnReplayStatus(c *Client, s *pb.ReplayStatus)
}

// BaseHandler implements Handler with methods that do nothing.
type BaseHandler struct{}

func (BaseHandler) OnStateChange(*Client, ConnState, error)     {}
func (BaseHandler) OnSubscribed(*Client, *pb.Subscribed)        {}
func (BaseHandler) OnSnapshot(*Client, Update)                  {}
func (BaseHandler) OnUpdate(*Client, Update)                    {}
func (BaseHandler) OnResync(*Client, string, pb.Channel, error) {}
func (BaseHandler) OnError(*Client, *pb.Error)                  {}

// ConnState is the state of a Client's connection.
type ConnState int

const (
	// Disconnected: no connection; the client is waiting to reconnect or has stopped.
	Disconnected ConnState = iota
	// Connected: a connection is up and the subscriptions have been sent on it.
	Connected
)

func (s ConnState) String() string {
	if s == Connected {
		return "connected"
	}
	return "disconnected"
}

// Update is one snapshot or delta applied to an instrument's replica. It is passed by value; the
// messages and the replica it points to belong to the client: read them during the callback,
// do not modify or keep them (take a View for a copy).
type Update struct {
	// Instrument is the canonical id, "venue:SYMBOL".
	Instrument string
	// Info is the instrument's reference data from its Subscribed message (price_scale,
	// size_scale, ...).
	Info *pb.InstrumentInfo
	// Channel is the stream that changed.
	Channel pb.Channel
	// Snapshot is set for OnSnapshot, Delta for OnUpdate.
	Snapshot *pb.Snapshot
	Delta    *pb.Delta
	// Replica is the instrument's state after the change.
	Replica ReplicaView
	// Received is when the frame carrying the message was read; SendTime is when the feed wrote
	// it (from the frame's send_time_ns; zero if absent).
	Received, SendTime time.Time
	// Latency is Received minus the delta's ingest time: how long the event took from ingest to
	// this client, including clock skew between the two machines. Zero for snapshots and when
	// the ingest time is unknown.
	Latency time.Duration
}

// ReplicaView is the read-only side of a market.Replica: the state of one instrument as the
// client holds it. Values it returns are the replica's own: do not modify them, and do not use
// them after the callback returns.
type ReplicaView interface {
	// Synced reports whether channel ch holds a snapshot and every delta since.
	Synced(ch pb.Channel) bool
	// Position returns the (epoch, seq) of the last snapshot or delta applied on ch.
	Position(ch pb.Channel) market.Position
	Quote() *pb.Quote
	Book() *book.Book
	Depth() uint32
	Trades() []*pb.TradeRecord
	Candles() []*pb.Candle
	Stats() *pb.Stats
}

var _ ReplicaView = (*market.Replica)(nil)
