package feed

import (
	"testing"
	"time"

	"github.com/tickwire/tickwire/internal/auth"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// TestSubscribeWait: a bot subscribes with wait before an instrument exists (ingest not yet
// started); it gets Pending, holds a place under its cap, and when the instrument's first
// events arrive it gets Subscribed, a snapshot and deltas, with no polling. Unsubscribe ends a
// wait; without wait an unknown instrument is still UNKNOWN_INSTRUMENT.
func TestSubscribeWait(t *testing.T) {
	e := startEnv(t, Config{MaxSubscriptions: 2})
	p := newPublisher(t, e.bus, 3)
	ids := p.instruments()
	c := mustDial(t, e.url, wire.SubprotocolProto)

	c.send(&pb.ClientMessage{Id: 1, Command: &pb.ClientMessage_Subscribe{Subscribe: &pb.Subscribe{
		Instruments: []string{ids[0], ids[1], ids[2]}, Channels: []pb.Channel{pb.Channel_CHANNEL_QUOTE}, Wait: true}}})
	var over *pb.Error
	var pending *pb.Pending
	for end := time.Now().Add(5 * time.Second); over == nil || pending == nil; {
		if time.Now().After(end) {
			t.Fatalf("error %v, pending %v", over, pending)
		}
		for _, m := range c.within(100 * time.Millisecond) {
			if m.GetError() != nil {
				over = m.GetError()
			}
			if m.GetPending() != nil {
				pending = m.GetPending()
			}
		}
	}
	// The cap (2) holds pending instruments too.
	if over.Code != pb.ErrorCode_ERROR_CODE_TOO_MANY_SUBSCRIPTIONS || over.Instrument != ids[2] {
		t.Fatalf("third instrument: %v, want TOO_MANY_SUBSCRIPTIONS", over)
	}
	if pending.RequestId != 1 || len(pending.Instruments) != 2 || pending.Instruments[0] != ids[0] || pending.Instruments[1] != ids[1] {
		t.Fatalf("Pending %v, want %s and %s", pending, ids[0], ids[1])
	}
	// The second stops waiting.
	c.send(&pb.ClientMessage{Id: 2, Command: &pb.ClientMessage_Unsubscribe{Unsubscribe: &pb.Unsubscribe{Instruments: []string{ids[1]}}}})
	waitMsg(t, c, "Unsubscribed", func(m *pb.ServerMessage) bool { return m.GetUnsubscribed().GetRequestId() == 2 })

	// Without wait, an unknown instrument is refused as before.
	other := mustDial(t, e.url, wire.SubprotocolProto)
	other.send(subscribe(1, []string{ids[0]}, 10, pb.Channel_CHANNEL_QUOTE))
	if err := other.waitError(5 * time.Second); err.Code != pb.ErrorCode_ERROR_CODE_UNKNOWN_INSTRUMENT {
		t.Fatalf("without wait: %v", err)
	}

	// Ingest starts: the first instrument's events reach the waiting client as snapshot + deltas.
	p.publish(300)
	var sub *pb.Subscribed
	var snap *pb.Snapshot
	deltas := 0
	for end := time.Now().Add(10 * time.Second); deltas < 5; {
		if time.Now().After(end) {
			t.Fatalf("subscribed %v, snapshot %v, %d deltas", sub, snap, deltas)
		}
		p.publish(10)
		for _, m := range c.within(200 * time.Millisecond) {
			switch {
			case m.GetSubscribed() != nil:
				sub = m.GetSubscribed()
				if sub.RequestId != 1 || sub.Info.GetId() != ids[0] {
					t.Fatalf("Subscribed %v, want request 1 for %s", sub, ids[0])
				}
			case m.GetSnapshot() != nil:
				if sub == nil {
					t.Fatal("a snapshot before Subscribed")
				}
				snap = m.GetSnapshot()
			case m.GetDelta() != nil:
				if snap == nil {
					t.Fatal("a delta before the snapshot")
				}
				deltas++
			}
			if h := m.GetSubscribed(); h != nil && h.Info.GetId() == ids[1] {
				t.Fatalf("the unsubscribed wait for %s was subscribed", ids[1])
			}
		}
	}
}

// TestListInstrumentsWatch: a connection that lists with watch hears of every instrument listed
// later (an InstrumentUpdate with its handle and reference data), within its token's
// entitlements; one that lists without watch hears nothing more.
func TestListInstrumentsWatch(t *testing.T) {
	k := newAuthKeys(t)
	e := startEnv(t, k.authConfig(t, nil))
	p := newPublisher(t, e.bus, 3)
	ids := p.instruments()
	dialAs := func(g auth.Grant) *wsClient {
		c, err := dial(t, e.url, wire.SubprotocolProto, bearerHeader(k.token(t, "lister", time.Minute, g)))
		if err != nil {
			t.Fatal(err)
		}
		go c.conn.ReadLoop()
		return c
	}
	all := dialAs(allGrant)
	some := dialAs(auth.Grant{Instruments: []string{ids[1]}})
	plain := dialAs(allGrant)
	for _, c := range []*wsClient{all, some} {
		c.send(&pb.ClientMessage{Id: 1, Command: &pb.ClientMessage_ListInstruments{ListInstruments: &pb.ListInstruments{Watch: true}}})
	}
	plain.send(&pb.ClientMessage{Id: 1, Command: &pb.ClientMessage_ListInstruments{ListInstruments: &pb.ListInstruments{}}})
	for _, c := range []*wsClient{all, some, plain} {
		if l := waitMsg(t, c, "the list", func(m *pb.ServerMessage) bool { return m.GetInstrumentList() != nil }); len(l.GetInstrumentList().Instruments) != 0 {
			t.Fatalf("list before any event: %v", l)
		}
	}
	p.publish(300) // ingest starts: three instruments are listed
	listed := func(c *wsClient) map[string]bool {
		got := map[string]bool{}
		for _, m := range c.within(time.Second) {
			if u := m.GetInstrumentUpdate(); u != nil {
				if u.Handle == 0 || u.Info.GetId() == "" {
					t.Fatalf("update without handle or id: %v", u)
				}
				got[u.Info.Id] = true
			}
		}
		return got
	}
	if got := listed(all); len(got) != 3 {
		t.Fatalf("watching with every instrument entitled: told of %v, want all three", got)
	}
	if got := listed(some); len(got) != 1 || !got[ids[1]] {
		t.Fatalf("watching with %s entitled: told of %v", ids[1], got)
	}
	if got := listed(plain); len(got) != 0 {
		t.Fatalf("listed without watch, told of %v", got)
	}
}

// TestFirstInfoAfterSubscribe: an instrument subscribed before its reference data reached the
// feed (a wait, a venue wildcard, a feed that starts mid-stream) was answered with an id-only
// InstrumentInfo; when the reference data comes, the subscriber is sent it (InstrumentUpdate),
// once, and so are listeners that do not hold the instrument.
func TestFirstInfoAfterSubscribe(t *testing.T) {
	e := startEnv(t, Config{})
	p := newPublisher(t, e.bus, 1)
	c := mustDial(t, e.url, wire.SubprotocolProto)
	watcher := mustDial(t, e.url, wire.SubprotocolProto)
	watcher.send(&pb.ClientMessage{Id: 1, Command: &pb.ClientMessage_ListInstruments{ListInstruments: &pb.ListInstruments{Watch: true}}})
	waitMsg(t, watcher, "the list", func(m *pb.ServerMessage) bool { return m.GetInstrumentList() != nil })
	c.send(&pb.ClientMessage{Id: 1, Command: &pb.ClientMessage_Subscribe{Subscribe: &pb.Subscribe{
		Instruments: []string{"x:LATE"}, Channels: []pb.Channel{pb.Channel_CHANNEL_TRADES}, Wait: true}}})
	waitMsg(t, c, "Pending", func(m *pb.ServerMessage) bool { return m.GetPending() != nil })

	p.publishEvent(&pb.Event{Instrument: "x:LATE", VenueTimeNs: 1, Body: &pb.Event_Trade{Trade: &pb.Trade{Price: 100, Size: 1, Side: pb.Side_SIDE_BUY}}})
	sub := waitMsg(t, c, "Subscribed", func(m *pb.ServerMessage) bool { return m.GetSubscribed() != nil }).GetSubscribed()
	if sub.Info.GetPriceScale() != 0 {
		t.Fatalf("Subscribed before any reference data: %v", sub.Info)
	}
	info := &pb.InstrumentInfo{Id: "x:LATE", Venue: "x", Symbol: "LATE", PriceScale: 2, SizeScale: 4, TickSize: 1, LotSize: 1}
	p.publishEvent(&pb.Event{Instrument: "x:LATE", VenueTimeNs: 2, Body: &pb.Event_Info{Info: info}})
	for _, cl := range []*wsClient{c, watcher} {
		u := waitMsg(t, cl, "InstrumentUpdate", func(m *pb.ServerMessage) bool { return m.GetInstrumentUpdate() != nil }).GetInstrumentUpdate()
		if u.Handle != sub.Handle || u.Info.GetPriceScale() != 2 || u.Info.GetSizeScale() != 4 {
			t.Fatalf("InstrumentUpdate %v, want handle %d with the reference data", u, sub.Handle)
		}
	}
	// The same reference data again is no change: nothing more is sent.
	p.publishEvent(&pb.Event{Instrument: "x:LATE", VenueTimeNs: 3, Body: &pb.Event_Info{Info: info}})
	p.publishEvent(&pb.Event{Instrument: "x:LATE", VenueTimeNs: 4, Body: &pb.Event_Trade{Trade: &pb.Trade{Price: 101, Size: 1, Side: pb.Side_SIDE_BUY}}})
	e.waitApplied(p)
	for _, m := range c.within(300 * time.Millisecond) {
		if m.GetInstrumentUpdate() != nil {
			t.Fatalf("a repeat of the same reference data was announced: %v", m)
		}
	}
}
