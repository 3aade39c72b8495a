package feed

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lxzan/gws"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/tickwire/tickwire/internal/fanout"
	"github.com/tickwire/tickwire/internal/testwait"
	"github.com/tickwire/tickwire/pkg/market"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// follower applies everything one client receives to replicas, and checks every snapshot and
// delta against a reference state rebuilt from the published events at the same seq.
type follower struct {
	c          *wsClient
	depthIndex int
	ref        *reference
	handles    map[uint32]string
	replicas   map[string]*market.Replica
	trades     map[string]uint64
	deltas     int
	compact    int // deltas that came as CompactQuote
	snapshots  int
	reasons    map[pb.SnapshotReason]int
	resumed    []pb.Channel
}

func newFollower(c *wsClient, p *publisher, cfg market.Config, depth uint32) *follower {
	cfg = cfg.WithDefaults()
	return &follower{c: c, depthIndex: cfg.DepthIndex(depth), ref: &reference{p: p, cfg: cfg, state: map[string]*market.State{}},
		handles: map[uint32]string{}, replicas: map[string]*market.Replica{}, trades: map[string]uint64{},
		reasons: map[pb.SnapshotReason]int{}}
}

func (f *follower) check(t *testing.T, id string, ch pb.Channel, seq uint64) error {
	r := f.replicas[id]
	snap := f.ref.at(t, id, seq).Snapshot(ch, f.depthIndex, 0)
	var want market.Replica
	want.TradeHistory, want.CandleHistory = r.TradeHistory, r.CandleHistory
	if err := want.ApplySnapshot(snap); err != nil {
		return err
	}
	if !want.EqualChannel(r, ch) {
		return fmt.Errorf("%s %v at seq %d differs from the reference", id, ch, seq)
	}
	return nil
}

// follow reads until every instrument's trades stream reached last[id].
func (f *follower) follow(t *testing.T, last map[string]uint64, d time.Duration) error {
	deadline := time.Now().Add(d)
	done := func() bool {
		for id, seq := range last {
			if f.trades[id] < seq {
				return false
			}
		}
		return true
	}
	for !done() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out; trades positions %v, want %v", f.trades, last)
		}
		var frame []byte
		select {
		case frame = <-f.c.frames:
		case err := <-f.c.closeCh:
			return fmt.Errorf("closed: %w", err)
		case <-time.After(time.Until(deadline)):
			continue
		}
		var fr pb.ServerFrame
		if err := wire.DecodeFrame(frame, f.c.proto, &fr); err != nil {
			return err
		}
		for _, m := range fr.Messages {
			switch k := m.Kind.(type) {
			case *pb.ServerMessage_Subscribed:
				id := k.Subscribed.Info.GetId()
				f.handles[k.Subscribed.Handle] = id
				f.resumed = append(f.resumed, k.Subscribed.Resumed...)
				if f.replicas[id] == nil { // kept across reconnects, to resume from
					f.replicas[id] = &market.Replica{TradeHistory: f.ref.cfg.TradeHistory, CandleHistory: f.ref.cfg.CandleHistory}
				}
			case *pb.ServerMessage_Snapshot:
				s := k.Snapshot
				id := f.handles[s.Handle]
				if err := f.replicas[id].ApplySnapshot(s); err != nil {
					return fmt.Errorf("%s snapshot: %w", id, err)
				}
				if err := f.check(t, id, s.Channel, s.Seq); err != nil {
					return err
				}
				if s.Channel == pb.Channel_CHANNEL_TRADES {
					f.trades[id] = s.Seq
				}
				f.snapshots++
				f.reasons[s.Reason]++
			case *pb.ServerMessage_Delta:
				d := k.Delta
				id := f.handles[d.Handle]
				if err := f.replicas[id].ApplyDelta(d); err != nil {
					return fmt.Errorf("%s delta: %w", id, err)
				}
				ch := market.ChannelOf(d)
				if err := f.check(t, id, ch, d.Seq); err != nil {
					return err
				}
				if ch == pb.Channel_CHANNEL_TRADES {
					f.trades[id] = d.Seq
				}
				f.deltas++
			case *pb.ServerMessage_CompactQuote:
				id := f.handles[k.CompactQuote.Handle]
				d, err := f.replicas[id].ExpandCompactQuote(k.CompactQuote)
				if err == nil {
					err = f.replicas[id].ApplyDelta(d)
				}
				if err != nil {
					return fmt.Errorf("%s compact quote: %w", id, err)
				}
				if err := f.check(t, id, pb.Channel_CHANNEL_QUOTE, d.Seq); err != nil {
					return err
				}
				want := f.ref.at(t, id, d.Seq).Snapshot(pb.Channel_CHANNEL_QUOTE, 0, 0)
				if _, ingest := market.TruncateTimes(0, want.LastIngestTimeNs); d.IngestTimeNs != ingest {
					return fmt.Errorf("%s compact quote %d: ingest time %d, want %d", id, d.Seq, d.IngestTimeNs, ingest)
				}
				f.deltas++
				f.compact++
			case *pb.ServerMessage_Error:
				return fmt.Errorf("server error: %v", k.Error)
			}
		}
	}
	return nil
}

// TestReplicasMatchFeedAtEverySeq: events published to NATS reach clients (binary and JSON, two
// depths, compact quotes) whose replicas equal a reference built from the same events at every
// seq of every instrument, with every book checksum verified, over more than 10,000 events.
func TestReplicasMatchFeedAtEverySeq(t *testing.T) {
	cfg := Config{Market: market.Config{Depths: []uint32{10, 50}, TradeHistory: 30, CandleHistory: 60}}
	e := startEnv(t, cfg)
	p := newPublisher(t, e.bus, 20)
	p.publish(2000)
	testwait.For(t, 10*time.Second, "feed to know the instruments", func() bool { return len(e.srv.Instruments()) == 20 })
	testwait.For(t, 10*time.Second, "ready", e.srv.ready.Load)

	ids := p.instruments()
	clients := []struct {
		proto   string
		depth   uint32
		ids     []string
		compact bool
	}{
		{wire.SubprotocolProto, 10, ids, false},
		{wire.SubprotocolProto, 50, ids, false},
		{wire.SubprotocolJSON, 0, ids[:5], false},
		{wire.SubprotocolProto, 10, ids[5:], true},
	}
	var followers []*follower
	for i, c := range clients {
		ws := mustDial(t, e.url, c.proto)
		sub := subscribe(uint32(i+1), c.ids, c.depth)
		sub.GetSubscribe().CompactQuotes = c.compact
		ws.send(sub)
		followers = append(followers, newFollower(ws, p, cfg.Market, c.depth))
	}
	var pub sync.WaitGroup
	pub.Add(1)
	go func() { defer pub.Done(); p.publish(10000) }()
	pub.Wait()
	last := p.finish()

	var wg sync.WaitGroup
	errs := make([]error, len(followers))
	for i, f := range followers {
		want := map[string]uint64{}
		for _, id := range clients[i].ids {
			want[id] = last[id]
		}
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = f.follow(t, want, 60*time.Second) }()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		f := followers[i]
		t.Logf("client %d (%s depth %d): %d snapshots, %d deltas verified (%d compact quotes)", i, clients[i].proto, clients[i].depth, f.snapshots, f.deltas, f.compact)
		if f.deltas < 1000 {
			t.Fatalf("client %d verified only %d deltas", i, f.deltas)
		}
		if clients[i].compact != (f.compact > 100) {
			t.Fatalf("client %d (compact quotes %v) got %d compact quotes", i, clients[i].compact, f.compact)
		}
	}
	if total := len(p.events); total != 20 {
		t.Fatalf("%d instruments published", total)
	}
}

// TestSlowConsumer: a client that never reads is conflated or closed (4000/4001) with its queue
// bounded, while a reading client gets every update.
func TestSlowConsumer(t *testing.T) {
	cfg := Config{SocketWriteBuffer: 16 << 10,
		Conn: fanout.Config{SoftLimit: 128 << 10, HardLimit: 512 << 10, WriteTimeout: 300 * time.Millisecond, MaxConflations: 1000}}
	e := startEnv(t, cfg)
	p := newPublisher(t, e.bus, 10)
	p.publish(500)
	testwait.For(t, 10*time.Second, "instruments", func() bool { return len(e.srv.Instruments()) == 10 })

	stalled, err := dialBuf(t, e.url, wire.SubprotocolProto, nil, 4096) // no ReadLoop: never reads
	if err != nil {
		t.Fatal(err)
	}
	stalled.send(subscribe(1, p.instruments(), 50))
	healthy := mustDial(t, e.url, wire.SubprotocolProto)
	healthy.send(subscribe(1, p.instruments(), 50))
	f := newFollower(healthy, p, cfg.Market, 50)

	var sessions []*session
	e.srv.mu.Lock()
	for s := range e.srv.sessions {
		sessions = append(sessions, s)
	}
	e.srv.mu.Unlock()
	maxPending := 0
	done := make(chan struct{})
	var watcher sync.WaitGroup
	watcher.Add(1)
	go func() { // watch the queues while the market runs
		defer watcher.Done()
		for {
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
			for _, s := range sessions {
				maxPending = max(maxPending, s.out.Pending())
			}
		}
	}()
	for range 25 {
		p.publish(1000)
	}
	last := p.finish()
	if err := f.follow(t, last, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	close(done)
	watcher.Wait()
	t.Logf("bytes sent %v in %v frames", testutil.ToFloat64(e.srv.metrics.bytes), testutil.ToFloat64(e.srv.metrics.frames))
	conflated := testutil.ToFloat64(e.srv.metrics.conflations)
	closed := testutil.ToFloat64(e.srv.metrics.closes.WithLabelValues("4000")) +
		testutil.ToFloat64(e.srv.metrics.closes.WithLabelValues("4001"))
	if conflated == 0 && closed == 0 {
		mfs, _ := e.reg.Gather()
		for _, mf := range mfs {
			if strings.Contains(mf.GetName(), "closes") || strings.Contains(mf.GetName(), "connections") || strings.Contains(mf.GetName(), "snapshots") {
				t.Logf("%s", mf.String())
			}
		}
		t.Fatal("the stalled client was neither conflated nor closed")
	}
	if maxPending > cfg.Conn.HardLimit {
		t.Fatalf("a queue held %d bytes, above the hard limit %d", maxPending, cfg.Conn.HardLimit)
	}
	t.Logf("conflations %v, slow-consumer closes %v, max pending %d bytes, healthy client verified %d deltas",
		conflated, closed, maxPending, f.deltas)
}

// TestBadInput: each kind of bad input gets its documented answer, and a well-behaved client on
// the same server is not affected.
func TestBadInput(t *testing.T) {
	e := startEnv(t, Config{MaxSubscriptions: 2, ReadLimit: 1024})
	p := newPublisher(t, e.bus, 3)
	p.publish(200)
	testwait.For(t, 10*time.Second, "instruments", func() bool { return len(e.srv.Instruments()) == 3 })
	ids := p.instruments()
	good := mustDial(t, e.url, wire.SubprotocolProto)
	good.send(subscribe(1, ids[:1], 10, pb.Channel_CHANNEL_TRADES))

	errorCases := []struct {
		name string
		msg  *pb.ClientMessage
		code pb.ErrorCode
	}{
		{"unknown instrument", subscribe(5, []string{"nowhere:XYZ"}, 0), pb.ErrorCode_ERROR_CODE_UNKNOWN_INSTRUMENT},
		{"malformed id", subscribe(6, []string{"not an id"}, 0), pb.ErrorCode_ERROR_CODE_MALFORMED},
		{"no command", &pb.ClientMessage{Id: 7}, pb.ErrorCode_ERROR_CODE_MALFORMED},
		{"unknown channel", subscribe(8, ids[:1], 0, 42), pb.ErrorCode_ERROR_CODE_UNKNOWN_CHANNEL},
		{"too many subscriptions", subscribe(9, ids, 0, pb.Channel_CHANNEL_QUOTE), pb.ErrorCode_ERROR_CODE_TOO_MANY_SUBSCRIPTIONS},
		{"resync not subscribed", &pb.ClientMessage{Id: 10, Command: &pb.ClientMessage_Resync{Resync: &pb.Resync{Instrument: "nowhere:XYZ"}}}, pb.ErrorCode_ERROR_CODE_NOT_SUBSCRIBED},
	}
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			c := mustDial(t, e.url, wire.SubprotocolProto)
			c.t = t
			c.send(tc.msg)
			if got := c.waitError(5 * time.Second); got.Code != tc.code || got.RequestId != tc.msg.Id {
				t.Fatalf("error %v, want code %v for request %d", got, tc.code, tc.msg.Id)
			}
		})
	}

	closeCases := []struct {
		name  string
		proto string
		op    gws.Opcode
		data  []byte
		code  int
	}{
		{"garbage bytes", wire.SubprotocolProto, gws.OpcodeBinary, []byte{0xff, 0xff, 0xff, 0x07}, wire.CloseProtocolError},
		{"text on binary subprotocol", wire.SubprotocolProto, gws.OpcodeText, []byte(`{"ping":{}}`), wire.CloseProtocolError},
		{"garbage JSON", wire.SubprotocolJSON, gws.OpcodeText, []byte(`{"subscribe":[`), wire.CloseProtocolError},
		{"frame over the read limit", wire.SubprotocolProto, gws.OpcodeBinary, make([]byte, 4096), wire.CloseMessageTooBig},
	}
	for _, tc := range closeCases {
		t.Run(tc.name, func(t *testing.T) {
			c := mustDial(t, e.url, tc.proto)
			c.t = t
			if err := c.conn.WriteMessage(tc.op, tc.data); err != nil {
				t.Fatal(err)
			}
			if code := c.closeCode(5 * time.Second); code != tc.code {
				t.Fatalf("close code %d, want %d", code, tc.code)
			}
		})
	}

	t.Run("origin not allowed", func(t *testing.T) {
		_, err := dial(t, e.url, "", http.Header{"Origin": []string{"http://evil.example"}})
		if he, ok := err.(*httpError); !ok || he.status != http.StatusForbidden {
			t.Fatalf("dial from a foreign origin: %v, want 403", err)
		}
		if _, err := dial(t, e.url, "", http.Header{"Origin": []string{e.http}}); err != nil {
			t.Fatalf("same-origin dial: %v", err)
		}
	})
	t.Run("replay sessions", func(t *testing.T) {
		// This server has no replay source: 501; with one, a malformed id is 400.
		for _, tc := range []struct {
			enable bool
			query  string
			status int
		}{{false, "?replay=some-session", http.StatusNotImplemented}, {true, "?replay=Bad_ID", http.StatusBadRequest}} {
			if tc.enable {
				e.srv.EnableReplay(e.bus)
			}
			_, err := dial(t, e.url+tc.query, "", nil)
			if he, ok := err.(*httpError); !ok || he.status != tc.status {
				t.Fatalf("%s: %v, want %d", tc.query, err, tc.status)
			}
		}
	})
	t.Run("unknown subprotocol", func(t *testing.T) {
		if _, err := dial(t, e.url, "tickwire.v9", nil); err == nil {
			t.Fatal("handshake with an unknown subprotocol succeeded")
		}
	})

	// The good client still gets its trades.
	p.publish(10)
	last := p.finish()
	f := newFollower(good, p, market.Config{}, 10)
	if err := f.follow(t, map[string]uint64{ids[0]: last[ids[0]]}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestPingListAndResync(t *testing.T) {
	e := startEnv(t, Config{})
	p := newPublisher(t, e.bus, 4)
	p.publish(300)
	testwait.For(t, 10*time.Second, "instruments", func() bool { return len(e.srv.Instruments()) == 4 })
	c := mustDial(t, e.url, wire.SubprotocolJSON)
	c.send(&pb.ClientMessage{Id: 1, Command: &pb.ClientMessage_Ping{Ping: &pb.Ping{Nonce: 77}}})
	c.send(&pb.ClientMessage{Id: 2, Command: &pb.ClientMessage_ListInstruments{ListInstruments: &pb.ListInstruments{}}})
	var pong *pb.Pong
	var list *pb.InstrumentList
	for pong == nil || list == nil {
		for _, m := range c.next(5 * time.Second) {
			if m.GetPong() != nil {
				pong = m.GetPong()
			}
			if m.GetInstrumentList() != nil {
				list = m.GetInstrumentList()
			}
		}
	}
	if pong.Nonce != 77 || pong.RequestId != 1 || list.RequestId != 2 || len(list.Instruments) != 4 {
		t.Fatalf("pong %v list %v", pong, list)
	}
	id := list.Instruments[0].Id
	c.send(subscribe(3, []string{id}, 10, pb.Channel_CHANNEL_BOOK))
	c.send(&pb.ClientMessage{Id: 4, Command: &pb.ClientMessage_Resync{Resync: &pb.Resync{Instrument: id}}})
	reasons := map[pb.SnapshotReason]int{}
	for reasons[pb.SnapshotReason_SNAPSHOT_REASON_RESYNC] == 0 {
		for _, m := range c.next(5 * time.Second) {
			if s := m.GetSnapshot(); s != nil {
				reasons[s.Reason]++
			}
		}
	}
	if reasons[pb.SnapshotReason_SNAPSHOT_REASON_SUBSCRIBE] != 1 {
		t.Fatalf("snapshots by reason %v", reasons)
	}
	resp, err := http.Get(e.http + "/api/instruments")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var httpList pb.InstrumentList
	if err := protojson.Unmarshal(body, &httpList); resp.StatusCode != 200 || err != nil ||
		!proto.Equal(&httpList, &pb.InstrumentList{Instruments: list.Instruments}) {
		t.Fatalf("/api/instruments: %d %v %s; want the ListInstruments answer", resp.StatusCode, err, body)
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/": 200, "/nope": 404} {
		resp, err := http.Get(e.http + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}

// TestShutdownSays1001: clients are told the server is going away, and every goroutine ends.
func TestShutdownSays1001(t *testing.T) {
	e := startEnv(t, Config{})
	p := newPublisher(t, e.bus, 2)
	p.publish(100)
	testwait.For(t, 10*time.Second, "instruments", func() bool { return len(e.srv.Instruments()) == 2 })
	c := mustDial(t, e.url, wire.SubprotocolProto)
	c.send(subscribe(1, p.instruments(), 0))
	c.next(5 * time.Second)
	e.stop()
	if code := c.closeCode(5 * time.Second); code != wire.CloseGoingAway {
		t.Fatalf("close code %d, want 1001", code)
	}
	if err := e.srv.Shutdown(t.Context()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

// TestUnsubscribeChannelsFreesSlot: an instrument counts against the subscription cap until
// its last channel is unsubscribed, whether channel by channel or all at once.
func TestUnsubscribeChannelsFreesSlot(t *testing.T) {
	e := startEnv(t, Config{MaxSubscriptions: 2})
	p := newPublisher(t, e.bus, 3)
	p.publish(200)
	testwait.For(t, 10*time.Second, "instruments", func() bool { return len(e.srv.Instruments()) == 3 })
	ids := p.instruments()
	c := mustDial(t, e.url, wire.SubprotocolProto)
	unsubscribe := func(id uint32, inst string, chans ...pb.Channel) *pb.ClientMessage {
		return &pb.ClientMessage{Id: id, Command: &pb.ClientMessage_Unsubscribe{Unsubscribe: &pb.Unsubscribe{
			Instruments: []string{inst}, Channels: chans}}}
	}
	// answer waits for the reply to request id: its Error code, or 0 for a Subscribed. Replies
	// to other requests read meanwhile are kept (one frame may carry several).
	answers := map[uint32]pb.ErrorCode{}
	answer := func(id uint32) pb.ErrorCode {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if code, ok := answers[id]; ok {
				return code
			}
			for _, m := range c.next(5 * time.Second) {
				if s := m.GetSubscribed(); s != nil {
					answers[s.RequestId] = 0
				}
				if er := m.GetError(); er != nil {
					answers[er.RequestId] = er.Code
				}
			}
		}
		t.Fatalf("no answer to request %d", id)
		return 0
	}
	c.send(subscribe(1, ids[:1], 0, pb.Channel_CHANNEL_QUOTE, pb.Channel_CHANNEL_TRADES))
	c.send(subscribe(2, ids[1:2], 0, pb.Channel_CHANNEL_QUOTE))
	if a, b := answer(1), answer(2); a != 0 || b != 0 {
		t.Fatalf("first subscriptions: %v %v", a, b)
	}
	c.send(unsubscribe(3, ids[0], pb.Channel_CHANNEL_TRADES)) // quote still held
	c.send(subscribe(4, ids[2:3], 0, pb.Channel_CHANNEL_QUOTE))
	if got := answer(4); got != pb.ErrorCode_ERROR_CODE_TOO_MANY_SUBSCRIPTIONS {
		t.Fatalf("third instrument with two held: %v", got)
	}
	c.send(unsubscribe(5, ids[0], pb.Channel_CHANNEL_QUOTE)) // its last channel: slot freed
	c.send(subscribe(6, ids[2:3], 0, pb.Channel_CHANNEL_QUOTE))
	if got := answer(6); got != 0 {
		t.Fatalf("after the last channel went: %v", got)
	}
}

// TestInstrumentUpdate: a change of an instrument's reference data (a halt) reaches every
// connection subscribed to it, binary and JSON, with the handle of its Subscribed; a
// connection subscribed to another instrument gets none.
func TestInstrumentUpdate(t *testing.T) {
	e := startEnv(t, Config{})
	p := newPublisher(t, e.bus, 2)
	p.publish(200)
	testwait.For(t, 10*time.Second, "instruments", func() bool { return len(e.srv.Instruments()) == 2 })
	ids := p.instruments()
	var halted *pb.InstrumentInfo
	for _, info := range p.m.Instruments() {
		if info.Id == ids[0] {
			halted = proto.CloneOf(info)
		}
	}
	halted.Status = pb.InstrumentStatus_INSTRUMENT_STATUS_HALTED

	bin := mustDial(t, e.url, wire.SubprotocolProto)
	js := mustDial(t, e.url, wire.SubprotocolJSON)
	other := mustDial(t, e.url, wire.SubprotocolProto)
	bin.send(subscribe(1, ids[:1], 0, pb.Channel_CHANNEL_QUOTE, pb.Channel_CHANNEL_TRADES))
	js.send(subscribe(1, ids[:1], 0, pb.Channel_CHANNEL_TRADES))
	other.send(subscribe(1, ids[1:], 0, pb.Channel_CHANNEL_QUOTE, pb.Channel_CHANNEL_TRADES))
	// read until the client saw its Subscribed and an InstrumentUpdate, or the trade that
	// follows the halt in the stream.
	// Every client holds the trades channel; frames may carry several messages, so what
	// follows the one returned is kept for the next call.
	pending := map[*wsClient][]*pb.ServerMessage{}
	read := func(c *wsClient) *pb.InstrumentUpdate {
		t.Helper()
		for {
			if len(pending[c]) == 0 {
				pending[c] = c.next(5 * time.Second)
			}
			m := pending[c][0]
			pending[c] = pending[c][1:]
			if u := m.GetInstrumentUpdate(); u != nil {
				return u
			}
			if d := m.GetDelta(); d != nil && d.GetTrade().GetPrice() == 100 && d.GetTrade().GetSize() == 7 {
				return nil
			}
		}
	}
	// the first Subscribed of each, so that the halt comes after the subscriptions
	handles := map[*wsClient]uint32{}
	for _, c := range []*wsClient{bin, js, other} {
		handles[c] = waitForSubscribed(t, c).Handle
	}
	p.publishEvent(&pb.Event{Instrument: ids[0], Body: &pb.Event_Info{Info: halted}})
	p.publishEvent(&pb.Event{Instrument: ids[0], Body: &pb.Event_Info{Info: halted}}) // a repeat: no update
	for _, id := range ids {
		p.publishEvent(&pb.Event{Instrument: id, Body: &pb.Event_Trade{Trade: &pb.Trade{Price: 100, Size: 7, Side: pb.Side_SIDE_BUY}}})
	}
	for name, c := range map[string]*wsClient{"binary": bin, "json": js} {
		u := read(c)
		if u == nil || u.Info.GetStatus() != pb.InstrumentStatus_INSTRUMENT_STATUS_HALTED || u.Info.GetId() != ids[0] || u.Handle != handles[c] {
			t.Fatalf("%s: update %v, handle %d", name, u, handles[c])
		}
		if again := read(c); again != nil {
			t.Fatalf("%s: a repeat of the same data was announced: %v", name, again)
		}
	}
	if u := read(other); u != nil {
		t.Fatalf("a client of another instrument got %v", u)
	}
}

// waitForSubscribed reads c until a Subscribed arrives.
func waitForSubscribed(t *testing.T, c *wsClient) *pb.Subscribed {
	t.Helper()
	for {
		for _, m := range c.next(5 * time.Second) {
			if s := m.GetSubscribed(); s != nil {
				return s
			}
		}
	}
}
