package client_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lxzan/gws"
	"google.golang.org/protobuf/proto"

	"github.com/tickwire/tickwire/pkg/book"
	"github.com/tickwire/tickwire/pkg/client"
	"github.com/tickwire/tickwire/pkg/market"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// fakeServer speaks the feed's side of the protocol from market.State values fed with generated
// events: Subscribed and snapshots on Subscribe, deltas (encoded with wire.AppendMessage) as
// events are stepped, snapshots on Resync. Faults are injected on request.
type fakeServer struct {
	URL string
	srv *httptest.Server
	up  *gws.Upgrader
	wg  sync.WaitGroup // ReadLoops and the heartbeat goroutine

	mu         sync.Mutex
	ids        []string
	states     map[string]*market.State
	gens       map[string]*eventGen
	conns      map[*gws.Conn]*fconn
	next       int
	connects   []time.Time
	subscribes int
	waits      int // subscribes with Subscribe.wait
	resyncs    map[streamKey]int
	snapshots  map[string]int // snapshots sent per instrument
	deltas     int            // deltas sent, over every connection
	compact    int            // of which CompactQuotes
	drop       map[streamKey]bool
	corrupt    map[string]bool
	badStep    map[string]bool // the next CompactQuote of an instrument names no previous delta
	quiet      map[string]bool // skip the snapshots a new epoch calls for
	hbStop     chan struct{}
	hbSent     int // heartbeats written, over every connection
}

type streamKey struct {
	id string
	ch pb.Channel
}

type fconn struct {
	conn    *gws.Conn
	json    bool
	base    uint32 // handles of this connection start here, so each connection numbers differently
	subs    map[string]*fsub
	handles map[string]uint32
	pongs   []time.Time // when each WebSocket pong arrived
}

type fsub struct {
	handle   uint32
	depthIdx int
	chans    [6]bool
	sent     [6]bool // a snapshot of the channel was sent (deltas may follow)
	compact  bool    // quote deltas as CompactQuote
}

var allChannels = wire.AllChannels()

func newFakeServer(ids ...string) *fakeServer {
	s := &fakeServer{
		states:    map[string]*market.State{},
		gens:      map[string]*eventGen{},
		conns:     map[*gws.Conn]*fconn{},
		resyncs:   map[streamKey]int{},
		snapshots: map[string]int{},
		drop:      map[streamKey]bool{},
		corrupt:   map[string]bool{},
		badStep:   map[string]bool{},
		quiet:     map[string]bool{},
	}
	for i, id := range ids {
		s.ids = append(s.ids, id)
		s.states[id] = market.NewState(id, market.Config{})
		s.gens[id] = newEventGen(id, uint64(i+1))
	}
	s.up = gws.NewUpgrader(&fakeHandler{s: s}, &gws.ServerOption{
		SubProtocols: []string{wire.SubprotocolProto, wire.SubprotocolJSON},
	})
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ws" {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		conn, err := s.up.Upgrade(w, r)
		if err != nil {
			return
		}
		s.mu.Lock()
		s.connects = append(s.connects, time.Now())
		s.conns[conn] = &fconn{conn: conn, json: conn.SubProtocol() == wire.SubprotocolJSON,
			base: uint32(len(s.connects)) * 1000, subs: map[string]*fsub{}, handles: map[string]uint32{}}
		s.mu.Unlock()
		s.wg.Go(conn.ReadLoop)
	}))
	s.URL = "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/ws"
	return s
}

// Close closes every connection, waits for their goroutines and stops the HTTP server.
func (s *fakeServer) Close() {
	s.mu.Lock()
	if s.hbStop != nil {
		close(s.hbStop)
		s.hbStop = nil
	}
	for c := range s.conns {
		_ = c.NetConn().Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	s.srv.Close()
}

type fakeHandler struct {
	gws.BuiltinEventHandler
	s *fakeServer
}

func (h *fakeHandler) OnClose(c *gws.Conn, _ error) {
	h.s.mu.Lock()
	delete(h.s.conns, c)
	h.s.mu.Unlock()
}

func (h *fakeHandler) OnPong(c *gws.Conn, _ []byte) {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	if fc := h.s.conns[c]; fc != nil {
		fc.pongs = append(fc.pongs, time.Now())
	}
}

func (h *fakeHandler) OnMessage(c *gws.Conn, m *gws.Message) {
	defer m.Close()
	h.s.command(c, m.Bytes())
}

// command answers one client command.
func (s *fakeServer) command(c *gws.Conn, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fc := s.conns[c]
	if fc == nil {
		return
	}
	m, err := wire.DecodeClientMessage(data, c.SubProtocol(), wire.Limits{})
	if err != nil {
		if ce, ok := err.(*wire.CommandError); ok {
			fc.write(&pb.ServerMessage{Kind: &pb.ServerMessage_Error{Error: &pb.Error{RequestId: ce.ID, Code: ce.Code, Message: ce.Message}}})
			return
		}
		_ = c.WriteClose(wire.CloseProtocolError, []byte("undecodable"))
		return
	}
	var out []*pb.ServerMessage
	switch cmd := m.Command.(type) {
	case *pb.ClientMessage_Subscribe:
		s.subscribes++
		if cmd.Subscribe.Wait {
			s.waits++
		}
		var ids []string
		for _, id := range cmd.Subscribe.Instruments {
			venue, ok := wire.VenueWildcard(id)
			if !ok {
				ids = append(ids, id)
				continue
			}
			// A venue wildcard: the venue's instruments, in id order (the fake lists no later ones).
			var of []string
			for known := range s.states {
				if v, _, _ := strings.Cut(known, ":"); v == venue {
					of = append(of, known)
				}
			}
			slices.Sort(of)
			ids = append(ids, of...)
			out = append(out, &pb.ServerMessage{Kind: &pb.ServerMessage_Pending{Pending: &pb.Pending{RequestId: m.Id, Instruments: []string{id}}}})
		}
		for _, id := range ids {
			st := s.states[id]
			if st == nil {
				out = append(out, &pb.ServerMessage{Kind: &pb.ServerMessage_Error{Error: &pb.Error{RequestId: m.Id,
					Code: pb.ErrorCode_ERROR_CODE_UNKNOWN_INSTRUMENT, Message: "unknown", Instrument: id}}})
				continue
			}
			fs := fc.subs[id]
			if fs == nil {
				h, ok := fc.handles[id]
				if !ok {
					h = fc.base + uint32(len(fc.handles))
					fc.handles[id] = h
				}
				fs = &fsub{handle: h}
				fc.subs[id] = fs
			}
			fs.depthIdx = st.Config().DepthIndex(cmd.Subscribe.Depth)
			fs.compact = cmd.Subscribe.CompactQuotes && !fc.json
			info := st.Info()
			if info == nil {
				info = &pb.InstrumentInfo{Id: id}
			}
			out = append(out, &pb.ServerMessage{Kind: &pb.ServerMessage_Subscribed{Subscribed: &pb.Subscribed{
				RequestId: m.Id, Handle: fs.handle, Info: info, Channels: cmd.Subscribe.Channels,
				Depth: st.Config().Depths[fs.depthIdx]}}})
			for _, ch := range cmd.Subscribe.Channels {
				fs.chans[ch] = true
				fs.sent[ch] = false
				out = s.appendSnapshot(out, id, fs, ch, pb.SnapshotReason_SNAPSHOT_REASON_SUBSCRIBE)
			}
		}
	case *pb.ClientMessage_Unsubscribe:
		for _, id := range cmd.Unsubscribe.Instruments {
			fs := fc.subs[id]
			if fs == nil {
				continue
			}
			chans := cmd.Unsubscribe.Channels
			if len(chans) == 0 {
				chans = allChannels
			}
			for _, ch := range chans {
				fs.chans[ch] = false
			}
			if fs.chans == [6]bool{} {
				delete(fc.subs, id)
			}
			out = append(out, &pb.ServerMessage{Kind: &pb.ServerMessage_Unsubscribed{Unsubscribed: &pb.Unsubscribed{
				RequestId: m.Id, Handle: fs.handle, Channels: chans}}})
		}
	case *pb.ClientMessage_Resync:
		id := cmd.Resync.Instrument
		fs := fc.subs[id]
		if fs == nil {
			out = append(out, &pb.ServerMessage{Kind: &pb.ServerMessage_Error{Error: &pb.Error{RequestId: m.Id,
				Code: pb.ErrorCode_ERROR_CODE_NOT_SUBSCRIBED, Instrument: id}}})
			break
		}
		chans := cmd.Resync.Channels
		if len(chans) == 0 {
			chans = allChannels
		}
		for _, ch := range chans {
			if fs.chans[ch] {
				s.resyncs[streamKey{id, ch}]++
				out = s.appendSnapshot(out, id, fs, ch, pb.SnapshotReason_SNAPSHOT_REASON_RESYNC)
			}
		}
	case *pb.ClientMessage_ListInstruments:
		list := &pb.InstrumentList{RequestId: m.Id}
		for _, id := range s.ids {
			if info := s.states[id].Info(); info != nil {
				list.Instruments = append(list.Instruments, info)
			}
		}
		out = append(out, &pb.ServerMessage{Kind: &pb.ServerMessage_InstrumentList{InstrumentList: list}})
	case *pb.ClientMessage_Ping:
		out = append(out, &pb.ServerMessage{Kind: &pb.ServerMessage_Pong{Pong: &pb.Pong{RequestId: m.Id, Nonce: cmd.Ping.Nonce}}})
	}
	fc.write(out...)
}

// appendSnapshot adds the snapshot of one stream, if the state can serve it yet.
func (s *fakeServer) appendSnapshot(out []*pb.ServerMessage, id string, fs *fsub, ch pb.Channel, reason pb.SnapshotReason) []*pb.ServerMessage {
	snap := s.states[id].Snapshot(ch, fs.depthIdx, reason)
	if snap == nil {
		return out
	}
	snap.Handle = fs.handle
	fs.sent[ch] = true
	s.snapshots[id]++
	return append(out, &pb.ServerMessage{Kind: &pb.ServerMessage_Snapshot{Snapshot: snap}})
}

// write sends msgs as one frame. s.mu must be held, which keeps frames in order.
func (fc *fconn) write(msgs ...*pb.ServerMessage) {
	if len(msgs) == 0 {
		return
	}
	now := time.Now().UnixNano()
	if fc.json {
		parts := make([][]byte, len(msgs))
		for i, m := range msgs {
			b, err := wire.MarshalJSONMessage(m)
			if err != nil {
				panic(err)
			}
			parts[i] = b
		}
		_ = fc.conn.WriteMessage(gws.OpcodeText, wire.JSONFrame(nil, parts, now))
		return
	}
	var b []byte
	for _, m := range msgs {
		var err error
		if b, err = wire.AppendMessage(b, m); err != nil {
			panic(err)
		}
	}
	_ = fc.conn.WriteMessage(gws.OpcodeBinary, wire.AppendSendTime(b, now))
}

// step applies n events, round robin over the instruments (or only to ids when given), and sends
// every subscriber its deltas, several events per frame.
func (s *fakeServer) step(n int, ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(ids) == 0 {
		ids = s.ids
	}
	out := map[*fconn][]*pb.ServerMessage{}
	flush := func() {
		for fc, msgs := range out {
			fc.write(msgs...)
		}
		clear(out)
	}
	for i := range n {
		id := ids[s.next%len(ids)]
		s.next++
		st := s.states[id]
		res, err := st.Apply(s.gens[id].next())
		if err != nil {
			panic(err)
		}
		used := map[streamKey]bool{}
		for _, fc := range s.conns {
			fs := fc.subs[id]
			if fs == nil {
				continue
			}
			for _, ch := range allChannels {
				if !fs.chans[ch] {
					continue
				}
				if !fs.sent[ch] || (ch == pb.Channel_CHANNEL_BOOK && res.BookReset) || (res.NewEpoch && !s.quiet[id]) {
					out[fc] = s.appendSnapshot(out[fc], id, fs, ch, pb.SnapshotReason_SNAPSHOT_REASON_SUBSCRIBE)
					continue
				}
				d := deltaOf(res, ch, fs.depthIdx)
				if d == nil {
					continue
				}
				k := streamKey{id, ch}
				if s.drop[k] {
					used[k] = true
					continue
				}
				d = proto.CloneOf(d)
				d.Handle = fs.handle
				if ch == pb.Channel_CHANNEL_BOOK && s.corrupt[id] {
					used[k] = true
					d.Checksum ^= 0xdeadbeef
				}
				s.deltas++
				var cq pb.CompactQuote
				if ch == pb.Channel_CHANNEL_QUOTE && fs.compact && res.CompactQuote(&cq) {
					cq.Handle = fs.handle
					if s.badStep[id] {
						delete(s.badStep, id)
						cq.SeqStep = 0
					}
					out[fc] = append(out[fc], &pb.ServerMessage{Kind: &pb.ServerMessage_CompactQuote{CompactQuote: &cq}})
					s.compact++
					continue
				}
				out[fc] = append(out[fc], &pb.ServerMessage{Kind: &pb.ServerMessage_Delta{Delta: d}})
			}
		}
		for k := range used {
			delete(s.drop, k)
			if k.ch == pb.Channel_CHANNEL_BOOK {
				delete(s.corrupt, k.id)
			}
		}
		if i%16 == 15 {
			flush()
		}
	}
	flush()
}

func deltaOf(res *market.Result, ch pb.Channel, depthIdx int) *pb.Delta {
	switch ch {
	case pb.Channel_CHANNEL_QUOTE:
		return res.Quote
	case pb.Channel_CHANNEL_BOOK:
		if res.Book != nil {
			return res.Book[depthIdx]
		}
	case pb.Channel_CHANNEL_TRADES:
		return res.Trades
	case pb.Channel_CHANNEL_CANDLES:
		return res.Candles
	case pb.Channel_CHANNEL_STATS:
		return res.Stats
	}
	return nil
}

// dropNext makes the next delta of one stream vanish, for every connection.
func (s *fakeServer) dropNext(id string, ch pb.Channel) {
	s.mu.Lock()
	s.drop[streamKey{id, ch}] = true
	s.mu.Unlock()
}

// newEpoch starts a new epoch of an instrument: continuity lost, state rebuilt from a book
// snapshot. With quiet set, subscribers get no NEW_EPOCH snapshots, only the deltas after.
func (s *fakeServer) newEpoch(id string, quiet bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.gens[id]
	g.epoch++
	g.seq = 0
	s.quiet[id] = quiet
}

// badStepNext sends the next compact quote of an instrument with seq_step 0.
func (s *fakeServer) badStepNext(id string) {
	s.mu.Lock()
	s.badStep[id] = true
	s.mu.Unlock()
}

// corruptNext gives the next book delta of an instrument a wrong checksum.
func (s *fakeServer) corruptNext(id string) {
	s.mu.Lock()
	s.corrupt[id] = true
	s.mu.Unlock()
}

// closeAll closes every connection with a close code.
func (s *fakeServer) closeAll(code uint16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		_ = c.WriteClose(code, []byte("test"))
	}
}

// heartbeat sends a Heartbeat to every connection every interval until Close.
func (s *fakeServer) heartbeat(interval time.Duration) {
	s.mu.Lock()
	stop := make(chan struct{})
	s.hbStop = stop
	s.mu.Unlock()
	s.wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				s.mu.Lock()
				for _, fc := range s.conns {
					fc.write(&pb.ServerMessage{Kind: &pb.ServerMessage_Heartbeat{Heartbeat: &pb.Heartbeat{TimeNs: now.UnixNano()}}})
					s.hbSent++
				}
				s.mu.Unlock()
			}
		}
	})
}

func (s *fakeServer) heartbeatsSent() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hbSent
}

func (s *fakeServer) connectTimes() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.connects)
}

func (s *fakeServer) deltasSent() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deltas
}

func (s *fakeServer) compactSent() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.compact
}

func (s *fakeServer) resyncCounts() map[streamKey]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[streamKey]int{}
	for k, v := range s.resyncs {
		out[k] = v
	}
	return out
}

func (s *fakeServer) snapshotCounts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.snapshots {
		out[k] = v
	}
	return out
}

// mismatch compares what the client holds for every instrument with the server's state (at
// depth index depthIdx) and describes the first difference, or returns nil.
func (s *fakeServer) mismatch(c *client.Client, depthIdx int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range s.ids {
		v, ok := c.View(id)
		if !ok {
			return fmt.Errorf("%s: not held", id)
		}
		if len(v.Streams) != len(allChannels) {
			return fmt.Errorf("%s: %d streams", id, len(v.Streams))
		}
		st := s.states[id]
		for ch, pos := range v.Streams {
			if !pos.Synced {
				return fmt.Errorf("%s %v: not synced", id, ch)
			}
			snap := st.Snapshot(ch, depthIdx, 0)
			if snap == nil {
				return fmt.Errorf("%s %v: server has no snapshot", id, ch)
			}
			if pos.Epoch != snap.Epoch {
				return fmt.Errorf("%s %v: epoch %d, server %d", id, ch, pos.Epoch, snap.Epoch)
			}
			var same bool
			switch ch {
			case pb.Channel_CHANNEL_QUOTE:
				same = proto.Equal(v.Quote, snap.GetQuote())
			case pb.Channel_CHANNEL_BOOK:
				var b book.Book
				for _, l := range snap.GetBook().GetBids() {
					b.Set(book.Bid, l.Price, l.Size)
				}
				for _, l := range snap.GetBook().GetAsks() {
					b.Set(book.Ask, l.Price, l.Size)
				}
				same = v.Book != nil && v.Book.Equal(&b) && v.Depth == snap.GetBook().GetDepth() && v.Book.Len(book.Bid) > 0
			case pb.Channel_CHANNEL_TRADES:
				same = slices.EqualFunc(v.Trades, snap.GetTrades().GetTrades(), func(a, b *pb.TradeRecord) bool { return proto.Equal(a, b) })
			case pb.Channel_CHANNEL_CANDLES:
				same = slices.EqualFunc(v.Candles, snap.GetCandles().GetCandles(), func(a, b *pb.Candle) bool { return proto.Equal(a, b) })
			case pb.Channel_CHANNEL_STATS:
				same = proto.Equal(v.Stats, snap.GetStats())
			}
			if !same {
				return fmt.Errorf("%s %v: client differs from server at %d/%d", id, ch, snap.Epoch, snap.Seq)
			}
		}
	}
	return nil
}

// eventGen makes a plausible event stream for one instrument: its reference data, a book
// snapshot, then level updates and trades around a drifting mid, with time passing.
type eventGen struct {
	id    string
	rng   *rand.Rand
	epoch uint64
	seq   uint64
	ts    int64
	mid   int64
}

func newEventGen(id string, seed uint64) *eventGen {
	return &eventGen{id: id, rng: rand.New(rand.NewPCG(seed, 7)), epoch: 1700000000, ts: 1_700_000_000e9, mid: 10_000}
}

func (g *eventGen) next() *pb.Event {
	g.seq++
	g.ts += int64(g.rng.IntN(300)) * 1e6
	ev := &pb.Event{Instrument: g.id, Epoch: g.epoch, Seq: g.seq, VenueTimeNs: g.ts, IngestTimeNs: g.ts + 1000}
	venue, symbol, _ := strings.Cut(g.id, ":")
	switch {
	case g.seq == 1:
		ev.Body = &pb.Event_Info{Info: &pb.InstrumentInfo{Id: g.id, Venue: venue, Symbol: symbol, PriceScale: 2,
			SizeScale: 3, TickSize: 1, LotSize: 1, Status: pb.InstrumentStatus_INSTRUMENT_STATUS_TRADING}}
	case g.seq == 2:
		u := &pb.BookUpdate{Snapshot: true}
		for i := range int64(30) {
			u.Bids = append(u.Bids, &pb.Level{Price: g.mid - 1 - i, Size: 100 + i})
			u.Asks = append(u.Asks, &pb.Level{Price: g.mid + 1 + i, Size: 100 + i})
		}
		ev.Body = &pb.Event_Book{Book: u}
	case g.rng.IntN(5) == 0:
		side := pb.Side(1 + g.rng.IntN(2))
		ev.Body = &pb.Event_Trade{Trade: &pb.Trade{Price: g.mid + int64(g.rng.IntN(5)) - 2, Size: int64(1 + g.rng.IntN(50)), Side: side}}
	default:
		// Bids stay below mid and asks above it: a level the mid moves onto goes.
		u := &pb.BookUpdate{}
		switch g.rng.IntN(3) {
		case 0:
			g.mid--
			u.Bids = append(u.Bids, &pb.Level{Price: g.mid, Size: 0})
		case 2:
			g.mid++
			u.Asks = append(u.Asks, &pb.Level{Price: g.mid, Size: 0})
		}
		for range 1 + g.rng.IntN(3) {
			off := int64(1 + g.rng.IntN(40))
			size := int64(g.rng.IntN(4)) * int64(1+g.rng.IntN(300))
			if g.rng.IntN(2) == 0 {
				u.Bids = append(u.Bids, &pb.Level{Price: g.mid - off, Size: size})
			} else {
				u.Asks = append(u.Asks, &pb.Level{Price: g.mid + off, Size: size})
			}
		}
		ev.Body = &pb.Event_Book{Book: u}
	}
	return ev
}

// announce sends an InstrumentUpdate with info to every connection subscribed to id, with the
// connection's handle for handleOf (id itself, or another instrument to test a mismatch).
// streamStatus tells the subscribers of id that its channel awaits a snapshot.
func (s *fakeServer) streamStatus(id string, ch pb.Channel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, fc := range s.conns {
		if fc.subs[id] != nil {
			fc.write(&pb.ServerMessage{Kind: &pb.ServerMessage_StreamStatus{StreamStatus: &pb.StreamStatus{
				Handle: fc.handles[id], Channel: ch, State: pb.StreamState_STREAM_STATE_AWAITING_SNAPSHOT, Reason: "test"}}})
		}
	}
}

func (s *fakeServer) announce(id, handleOf string, info *pb.InstrumentInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, fc := range s.conns {
		if fc.subs[id] != nil {
			fc.write(&pb.ServerMessage{Kind: &pb.ServerMessage_InstrumentUpdate{InstrumentUpdate: &pb.InstrumentUpdate{
				Handle: fc.handles[handleOf], Info: info}}})
		}
	}
}
