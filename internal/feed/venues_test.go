package feed

import (
	"testing"
	"time"

	"github.com/tickwire/tickwire/internal/auth"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// venueWatch is what a connection heard about a venue wildcard subscription.
type venueWatch struct {
	pending    []*pb.Pending
	subscribed map[string]uint32 // instrument -> handle
	snapshots  map[uint32]int    // by handle
	deltas     map[uint32]int
	errors     []*pb.Error
	unsubs     []*pb.Unsubscribed
}

func (w *venueWatch) add(t *testing.T, ms []*pb.ServerMessage) {
	t.Helper()
	for _, m := range ms {
		switch {
		case m.GetPending() != nil:
			w.pending = append(w.pending, m.GetPending())
		case m.GetSubscribed() != nil:
			s := m.GetSubscribed()
			w.subscribed[s.Info.GetId()] = s.Handle
		case m.GetSnapshot() != nil:
			w.snapshots[m.GetSnapshot().Handle]++
		case m.GetDelta() != nil:
			h := m.GetDelta().Handle
			if w.snapshots[h] == 0 {
				t.Fatalf("a delta on handle %d before its snapshot", h)
			}
			w.deltas[h]++
		case m.GetError() != nil:
			w.errors = append(w.errors, m.GetError())
		case m.GetUnsubscribed() != nil:
			w.unsubs = append(w.unsubs, m.GetUnsubscribed())
		}
	}
}

func newVenueWatch() *venueWatch {
	return &venueWatch{subscribed: map[string]uint32{}, snapshots: map[uint32]int{}, deltas: map[uint32]int{}}
}

// TestVenueWildcard: "synthetic:*" subscribes every instrument of the venue, both those that
// exist (a connection subscribing late) and those that appear later (one subscribing before
// ingest starts), each with its own handle, snapshot and deltas, within the subscription cap;
// an instrument of another venue is not included; Unsubscribe "synthetic:*" ends it, and an
// instrument of the venue appearing after that is not subscribed.
func TestVenueWildcard(t *testing.T) {
	e := startEnv(t, Config{MaxSubscriptions: 3})
	p := newPublisher(t, e.bus, 5)
	early := mustDial(t, e.url, wire.SubprotocolProto)
	early.send(subscribe(1, []string{"synthetic:*"}, 10, pb.Channel_CHANNEL_QUOTE))
	we := newVenueWatch()
	pend := waitMsg(t, early, "Pending", func(m *pb.ServerMessage) bool { return m.GetPending() != nil }).GetPending()
	if pend.RequestId != 1 || len(pend.Instruments) != 1 || pend.Instruments[0] != "synthetic:*" {
		t.Fatalf("Pending %v, want request 1 for synthetic:*", pend)
	}

	// Ingest starts: five instruments appear; the early connection gets the first three (its
	// cap) as snapshot + deltas, and an error naming each of the two over the cap.
	p.publish(300)
	e.waitApplied(p)
	for end := time.Now().Add(10 * time.Second); len(we.errors) < 2 || len(we.deltas) < 3; {
		if time.Now().After(end) {
			t.Fatalf("early: subscribed %v, deltas %v, errors %v", we.subscribed, we.deltas, we.errors)
		}
		p.publish(20)
		we.add(t, early.within(200*time.Millisecond))
	}
	if len(we.subscribed) != 3 {
		t.Fatalf("early: subscribed %v, want 3 (the cap)", we.subscribed)
	}
	for _, err := range we.errors {
		if err.Code != pb.ErrorCode_ERROR_CODE_TOO_MANY_SUBSCRIPTIONS || err.RequestId != 1 || we.subscribed[err.Instrument] != 0 {
			t.Fatalf("early: error %v, want TOO_MANY_SUBSCRIPTIONS for an instrument not subscribed", err)
		}
	}

	// A connection subscribing now gets the instruments that exist, and one error for those
	// over its cap.
	late := mustDial(t, e.url, wire.SubprotocolProto)
	late.send(subscribe(1, []string{"synthetic:*"}, 10, pb.Channel_CHANNEL_QUOTE, pb.Channel_CHANNEL_TRADES))
	wl := newVenueWatch()
	for end := time.Now().Add(10 * time.Second); len(wl.subscribed) < 3 || len(wl.errors) < 1 || len(wl.pending) < 1; {
		if time.Now().After(end) {
			t.Fatalf("late: pending %v, subscribed %v, errors %v", wl.pending, wl.subscribed, wl.errors)
		}
		wl.add(t, late.within(200*time.Millisecond))
	}
	if err := wl.errors[0]; err.Code != pb.ErrorCode_ERROR_CODE_TOO_MANY_SUBSCRIPTIONS || len(wl.errors) != 1 {
		t.Fatalf("late: errors %v, want one TOO_MANY_SUBSCRIPTIONS", wl.errors)
	}

	// Another venue's instrument is not the wildcard's.
	p.publishEvent(&pb.Event{Instrument: "other:XYZ", VenueTimeNs: p.clock,
		Body: &pb.Event_Trade{Trade: &pb.Trade{Price: 100, Size: 1, Side: pb.Side_SIDE_BUY}}})
	e.waitApplied(p)

	// Unsubscribe the wildcard: the wildcard's own Unsubscribed (no handle), then each of its
	// instruments'.
	early.send(&pb.ClientMessage{Id: 2, Command: &pb.ClientMessage_Unsubscribe{Unsubscribe: &pb.Unsubscribe{Instruments: []string{"synthetic:*"}}}})
	for end := time.Now().Add(5 * time.Second); len(we.unsubs) < 4; {
		if time.Now().After(end) {
			t.Fatalf("early: unsubscribed %v, want 4", we.unsubs)
		}
		we.add(t, early.within(200*time.Millisecond))
	}
	handles := map[uint32]bool{}
	for _, u := range we.unsubs {
		handles[u.Handle] = true
	}
	for id, h := range we.subscribed {
		if !handles[h] {
			t.Fatalf("no Unsubscribed for %s (handle %d): %v", id, h, we.unsubs)
		}
	}
	if !handles[0] {
		t.Fatalf("no Unsubscribed for the wildcard itself: %v", we.unsubs)
	}

	// A new instrument of the venue reaches the late connection (it holds 3 of 3: refused with
	// an error naming it), not the early one (no wildcard any more).
	p.publishEvent(&pb.Event{Instrument: "synthetic:NEW", VenueTimeNs: p.clock,
		Body: &pb.Event_Trade{Trade: &pb.Trade{Price: 100, Size: 1, Side: pb.Side_SIDE_BUY}}})
	e.waitApplied(p)
	wl.errors = nil
	for end := time.Now().Add(5 * time.Second); len(wl.errors) == 0; {
		if time.Now().After(end) {
			t.Fatal("late: no error for synthetic:NEW over the cap")
		}
		wl.add(t, late.within(200*time.Millisecond))
	}
	if err := wl.errors[0]; err.Code != pb.ErrorCode_ERROR_CODE_TOO_MANY_SUBSCRIPTIONS || err.Instrument != "synthetic:NEW" {
		t.Fatalf("late: %v, want TOO_MANY_SUBSCRIPTIONS for synthetic:NEW", err)
	}
	before := len(we.subscribed)
	we.add(t, early.within(300*time.Millisecond))
	for _, c := range []*venueWatch{we, wl} {
		if _, ok := c.subscribed["other:XYZ"]; ok {
			t.Fatal("a synthetic:* wildcard subscribed other:XYZ")
		}
	}
	if len(we.subscribed) != before {
		t.Fatalf("early: subscribed %v after its wildcard ended", we.subscribed)
	}
}

// TestVenueWildcardEntitlements: a wildcard gives only the instruments the token covers, and is
// refused when the token covers nothing of the venue.
func TestVenueWildcardEntitlements(t *testing.T) {
	k := newAuthKeys(t)
	e := startEnv(t, k.authConfig(t, nil))
	p := newPublisher(t, e.bus, 3)
	ids := p.instruments()
	p.publish(200)
	e.waitApplied(p)
	dialAs := func(g auth.Grant) *wsClient {
		c, err := dial(t, e.url, wire.SubprotocolProto, bearerHeader(k.token(t, "bot", time.Minute, g)))
		if err != nil {
			t.Fatal(err)
		}
		go c.conn.ReadLoop()
		return c
	}
	one := dialAs(auth.Grant{Instruments: []string{ids[1]}})
	one.send(subscribe(1, []string{"synthetic:*"}, 10, pb.Channel_CHANNEL_QUOTE))
	w := newVenueWatch()
	for end := time.Now().Add(5 * time.Second); len(w.snapshots) < 1; {
		if time.Now().After(end) {
			t.Fatalf("subscribed %v", w.subscribed)
		}
		w.add(t, one.within(200*time.Millisecond))
	}
	w.add(t, one.within(300*time.Millisecond))
	if len(w.subscribed) != 1 || w.subscribed[ids[1]] == 0 || len(w.errors) != 0 {
		t.Fatalf("with %s entitled: subscribed %v, errors %v", ids[1], w.subscribed, w.errors)
	}
	// A wildcard neither held nor holding anything is not subscribed.
	one.send(&pb.ClientMessage{Id: 2, Command: &pb.ClientMessage_Unsubscribe{Unsubscribe: &pb.Unsubscribe{Instruments: []string{"other:*"}}}})
	if err := one.waitError(5 * time.Second); err.Code != pb.ErrorCode_ERROR_CODE_NOT_SUBSCRIBED || err.Instrument != "other:*" {
		t.Fatalf("unsubscribing a wildcard not held: %v, want NOT_SUBSCRIBED", err)
	}
	none := dialAs(auth.Grant{Instruments: []string{"other:*"}})
	none.send(subscribe(1, []string{"synthetic:*"}, 10, pb.Channel_CHANNEL_QUOTE))
	if err := none.waitError(5 * time.Second); err.Code != pb.ErrorCode_ERROR_CODE_NOT_ENTITLED || err.Instrument != "synthetic:*" {
		t.Fatalf("a venue not covered: %v, want NOT_ENTITLED", err)
	}
}

// TestVenueWildcardNotIdle: a connection whose only subscription is a venue wildcard of a venue
// with no instrument yet is not idle: it is not closed at the idle timeout, and gets the
// venue's first instrument when it appears. One with nothing is closed (4004) meanwhile.
func TestVenueWildcardNotIdle(t *testing.T) {
	e := startEnv(t, Config{IdleTimeout: 300 * time.Millisecond})
	p := newPublisher(t, e.bus, 1)
	waiting := mustDial(t, e.url, wire.SubprotocolProto)
	waiting.send(subscribe(1, []string{"synthetic:*"}, 10, pb.Channel_CHANNEL_QUOTE))
	waitMsg(t, waiting, "Pending", func(m *pb.ServerMessage) bool { return m.GetPending() != nil })
	idle := mustDial(t, e.url, wire.SubprotocolProto)
	// The idle one is closed at its timeout; the wildcard's connection, dialed before it, has
	// been idle as long by then.
	if code := idle.closeCode(5 * time.Second); code != wire.CloseIdle {
		t.Fatalf("a connection with nothing: close code %d, want %d", code, wire.CloseIdle)
	}
	p.publish(50)
	sub := waitMsg(t, waiting, "Subscribed", func(m *pb.ServerMessage) bool { return m.GetSubscribed() != nil }).GetSubscribed()
	if sub.Info.GetId() != p.instruments()[0] {
		t.Fatalf("Subscribed %v", sub)
	}
}
