package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lxzan/gws"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tickwire/tickwire/pkg/market"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// maxPerSubscribe is how many instruments one Subscribe names: the protocol allows 1000, but
// 1000 ids of 15-20 bytes pass the feed's 16 KiB read limit.
const maxPerSubscribe = 500

// closeByUs marks a connection this tool closed, so it is not counted as a close by the feed.
const closeByUs = -1

// clientStats are one client's counters. The reader goroutine writes them; the collector
// reads them at any time (atomics, cumulative: windows are differences).
type clientStats struct {
	frames    atomic.Uint64
	bytes     atomic.Uint64
	updates   atomic.Uint64 // deltas that followed on (applied)
	snapshots atomic.Uint64
	reasons   [6]atomic.Uint64 // snapshots by pb.SnapshotReason
	gaps      atomic.Uint64    // deltas that broke their stream (a resync was asked)
	dups      atomic.Uint64    // deltas at or before the position
	unsynced  atomic.Uint64    // deltas ignored while waiting for a snapshot
	errs      atomic.Uint64    // Error messages (refused commands)
	malformed atomic.Uint64    // frames the walker could not read
	synced    atomic.Int64     // streams that had their first snapshot
	closeCode atomic.Int32     // 0 while open; closeByUs; else the code (1006: no close frame)
	hist      Histogram        // ingest_time_ns to receipt, per applied delta
}

// clientConfig is what one client subscribes to.
type clientConfig struct {
	URL         string
	Instruments []string
	Channels    []pb.Channel
	Depth       uint32
	// CompactQuotes asks for quote deltas as CompactQuote.
	CompactQuotes bool
	ReadBuffer    int
	// SocketReadBuffer, if set, is the kernel receive buffer (SO_RCVBUF) of the connection.
	SocketReadBuffer int
	// OnSnapshot, if set, is called on the reader goroutine for every snapshot, with the
	// instrument id, the receipt time (Unix ns) and the snapshot.
	OnSnapshot func(instrument string, nowNs int64, s *snapInfo)
}

// client is one WebSocket connection of the load: a gws reader goroutine doing the least work
// per message (walk the frame, check each stream's chain, count, record latency).
type client struct {
	cfg   clientConfig
	conn  *gws.Conn
	stats clientStats

	// Reader goroutine only.
	handles map[uint32]int // handle -> index of its first stream in chains
	chains  []chain        // 6 per handle, indexed by channel number (0 unused)
	names   []string       // per handle slot: instrument id (for Resync)
	nowNs   int64          // receipt time of the frame being walked
	walker  walker
	nextID  uint32

	stalled   atomic.Bool
	release   chan struct{} // closed when the client closes: a stalled reader returns
	closeOnce sync.Once
	done      chan struct{} // closed when ReadLoop returns
}

// dialClient connects, subscribes and starts the reader goroutine (its owner waits for it
// through Close).
func dialClient(ctx context.Context, cfg clientConfig) (*client, error) {
	c := &client{cfg: cfg, handles: make(map[uint32]int, len(cfg.Instruments)),
		release: make(chan struct{}), done: make(chan struct{})}
	header := http.Header{}
	header.Set("Sec-WebSocket-Protocol", wire.SubprotocolProto)
	conn, resp, err := gws.NewClient(c, &gws.ClientOption{
		Addr:               cfg.URL,
		RequestHeader:      header,
		ReadBufferSize:     cfg.ReadBuffer,
		ReadMaxPayloadSize: 16 << 20,
		HandshakeTimeout:   10 * time.Second,
		NewDialer: func() (gws.Dialer, error) {
			d := &net.Dialer{Timeout: 10 * time.Second}
			if n := cfg.SocketReadBuffer; n > 0 {
				d.Control = func(_, _ string, rc syscall.RawConn) error {
					var serr error
					err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n) })
					return errors.Join(err, serr)
				}
			}
			return d, nil
		},
	})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, fmt.Errorf("loadgen: connect %s: HTTP %d: %w", cfg.URL, resp.StatusCode, err)
		}
		return nil, fmt.Errorf("loadgen: connect %s: %w", cfg.URL, err)
	}
	c.conn = conn
	go func() {
		defer close(c.done)
		conn.ReadLoop()
	}()
	if err := c.subscribe(cfg.Instruments); err != nil {
		c.Close()
		return nil, err
	}
	return c, ctx.Err()
}

func (c *client) send(m *pb.ClientMessage) error {
	b, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("loadgen: encode command: %w", err)
	}
	if err := c.conn.WriteMessage(gws.OpcodeBinary, b); err != nil {
		return fmt.Errorf("loadgen: send command: %w", err)
	}
	return nil
}

// subscribe sends Subscribe commands for instruments (in chunks). Safe from any goroutine.
func (c *client) subscribe(instruments []string) error {
	for len(instruments) > 0 {
		n := min(len(instruments), maxPerSubscribe)
		if err := c.send(&pb.ClientMessage{Id: 1, Command: &pb.ClientMessage_Subscribe{Subscribe: &pb.Subscribe{
			Instruments: instruments[:n], Channels: c.cfg.Channels, Depth: c.cfg.Depth,
			CompactQuotes: c.cfg.CompactQuotes}}}); err != nil {
			return err
		}
		instruments = instruments[n:]
	}
	return nil
}

// unsubscribe releases instruments entirely.
func (c *client) unsubscribe(instruments []string) error {
	return c.send(&pb.ClientMessage{Id: 2, Command: &pb.ClientMessage_Unsubscribe{Unsubscribe: &pb.Unsubscribe{
		Instruments: instruments}}})
}

// Stall makes the reader stop reading (it blocks in the next message until Close): the
// feed's queue for this connection grows, then conflates, then closes it.
func (c *client) Stall() { c.stalled.Store(true) }

// Close closes the connection (1000) and waits for the reader goroutine.
func (c *client) Close() {
	c.closeOnce.Do(func() {
		c.stats.closeCode.CompareAndSwap(0, closeByUs)
		close(c.release)
		_ = c.conn.WriteClose(wire.CloseNormal, nil)
		select {
		case <-c.done:
		case <-time.After(2 * time.Second):
			_ = c.conn.NetConn().Close()
			<-c.done
		}
	})
}

// gws event handler (called on the reader goroutine).

func (c *client) OnOpen(*gws.Conn) {}

func (c *client) OnClose(_ *gws.Conn, err error) {
	code := int32(1006)
	var ce *gws.CloseError
	if errors.As(err, &ce) {
		code = int32(ce.Code)
		if code == 0 {
			code = 1005
		}
	}
	c.stats.closeCode.CompareAndSwap(0, code)
}

func (c *client) OnPing(conn *gws.Conn, payload []byte) { _ = conn.WritePong(payload) }

func (c *client) OnPong(*gws.Conn, []byte) {}

func (c *client) OnMessage(_ *gws.Conn, m *gws.Message) {
	if c.stalled.Load() {
		<-c.release
		m.Close()
		return
	}
	c.nowNs = time.Now().UnixNano()
	data := m.Bytes()
	c.stats.frames.Add(1)
	c.stats.bytes.Add(uint64(len(data)))
	if _, err := c.walker.walk(data, c); err != nil {
		c.stats.malformed.Add(1)
	}
	m.Close()
}

// frameVisitor.

func (c *client) delta(d *deltaInfo) {
	base, ok := c.handles[d.Handle]
	if !ok || d.Channel == 0 || d.Channel > 5 {
		c.stats.unsynced.Add(1)
		return
	}
	ch := &c.chains[base+int(d.Channel)]
	if d.Compact { // relative to the stream's epoch and latest ingest time, in microseconds
		_, base := market.TruncateTimes(0, ch.ingestNs)
		d.Epoch, d.IngestNs = ch.epoch, base+d.IngestNs*1000
	}
	switch ch.delta(d.Epoch, d.Seq, d.PrevSeq) {
	case deltaApplied:
		ch.ingestNs = d.IngestNs
		c.stats.updates.Add(1)
		c.stats.hist.Record(c.nowNs - d.IngestNs)
	case deltaUnsynced:
		c.stats.unsynced.Add(1)
	case deltaDuplicate:
		c.stats.dups.Add(1)
	case deltaGap:
		c.stats.gaps.Add(1)
		// One Resync per break (§7.4); the stream ignores deltas until its snapshot.
		c.nextID++
		_ = c.send(&pb.ClientMessage{Id: c.nextID, Command: &pb.ClientMessage_Resync{Resync: &pb.Resync{
			Instrument: c.names[base/6], Channels: []pb.Channel{pb.Channel(d.Channel)}}}})
	}
}

func (c *client) snapshot(s *snapInfo) {
	c.stats.snapshots.Add(1)
	if int(s.Reason) < len(c.stats.reasons) {
		c.stats.reasons[s.Reason].Add(1)
	}
	base, ok := c.handles[s.Handle]
	if !ok || s.Channel == 0 || s.Channel > 5 {
		return
	}
	ch := &c.chains[base+int(s.Channel)]
	if !ch.synced && ch.epoch == 0 {
		c.stats.synced.Add(1)
	}
	ch.snapshot(s.Epoch, s.Seq)
	ch.ingestNs = s.IngestNs
	if c.cfg.OnSnapshot != nil {
		c.cfg.OnSnapshot(c.names[base/6], c.nowNs, s)
	}
}

func (c *client) other(kind protowire.Number, body []byte) {
	switch kind {
	case fMsgSubscribed:
		var sub pb.Subscribed
		if proto.Unmarshal(body, &sub) != nil {
			c.stats.malformed.Add(1)
			return
		}
		if _, ok := c.handles[sub.Handle]; !ok {
			c.handles[sub.Handle] = len(c.chains)
			c.chains = append(c.chains, make([]chain, 6)...)
			c.names = append(c.names, sub.GetInfo().GetId())
		}
	case 4: // Unsubscribed: the streams named wait for a new snapshot
		var un pb.Unsubscribed
		if proto.Unmarshal(body, &un) != nil {
			return
		}
		if base, ok := c.handles[un.Handle]; ok {
			for _, ch := range un.Channels {
				if ch > 0 && ch <= 5 && c.chains[base+int(ch)].epoch != 0 {
					c.chains[base+int(ch)] = chain{}
					c.stats.synced.Add(-1)
				}
			}
		}
	case fMsgError:
		c.stats.errs.Add(1)
	}
}
