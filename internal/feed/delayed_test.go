package feed

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tickwire/tickwire/internal/auth"
	"github.com/tickwire/tickwire/internal/testwait"
	"github.com/tickwire/tickwire/pkg/market"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// TestDelayTier: a token with a delay sees the market exactly that long ago: no update reaches
// it before its ingest time plus the delay (the licensing promise), none much later, nothing is
// lost (its state ends equal to the live state), and nothing real time leaks through replay or
// /api/candles. The tier warms up first (503, or 1013 after an in-band sign-in).
func TestDelayTier(t *testing.T) {
	k := newAuthKeys(t)
	e := startEnv(t, k.authConfig(t, nil))
	e.srv.EnableHistory(e.bus)
	e.srv.EnableReplay(e.bus)
	p := newPublisher(t, e.bus, 1)
	id := p.instruments()[0]

	const delay = 2 * time.Second
	delayed := auth.Grant{Instruments: []string{"*"}, Delay: int64(delay / time.Second)}
	tok := k.token(t, "delayed", time.Minute, delayed)

	// History older than the delay, then a market that keeps moving.
	p.publish(300)
	e.waitApplied(p)
	time.Sleep(delay + 200*time.Millisecond)
	ingest := map[uint64]time.Time{} // seq: ingest time, of every event
	var imu sync.Mutex
	record := func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		imu.Lock()
		defer imu.Unlock()
		for _, ev := range p.events[id] {
			ingest[ev.Seq] = time.Unix(0, ev.IngestTimeNs)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
			select {
			case <-stop:
				return
			case <-tick.C:
				p.publish(2)
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	// The first delayed upgrade starts the tier: 503 until it has read up to its lag.
	status, _ := upgradeStatus(t, e.http+"/ws", bearerHeader(tok))
	if status != http.StatusServiceUnavailable {
		t.Fatalf("first delayed upgrade: %d, want 503 while the tier warms up", status)
	}
	var c *wsClient
	testwait.For(t, 10*time.Second, "the delay tier", func() bool {
		var err error
		c, err = dial(t, e.url, wire.SubprotocolProto, bearerHeader(tok))
		return err == nil
	})
	go c.conn.ReadLoop()
	c.send(subscribe(1, []string{id}, 10, pb.Channel_CHANNEL_QUOTE, pb.Channel_CHANNEL_TRADES))
	var sub *pb.Subscribed
	var pending []*pb.ServerMessage // what came with Subscribed: its snapshots, perhaps deltas
	for sub == nil {
		for _, m := range c.next(5 * time.Second) {
			if sub != nil {
				pending = append(pending, m)
			}
			if m.GetSubscribed() != nil {
				sub = m.GetSubscribed()
			}
		}
	}
	if sub.DelayMs != uint64(delay/time.Millisecond) {
		t.Fatalf("Subscribed.delay_ms = %d, want %d", sub.DelayMs, delay/time.Millisecond)
	}

	// Every update, when it arrives, is at least the delay old and not much older.
	var rep market.Replica
	check := func(seq uint64, at time.Time) {
		t.Helper()
		record()
		imu.Lock()
		in, ok := ingest[seq]
		imu.Unlock()
		if !ok {
			t.Fatalf("update at seq %d that was never published", seq)
		}
		if age := at.Sub(in); age < delay {
			t.Fatalf("seq %d arrived %v after its ingest: earlier than the delay %v", seq, age, delay)
		} else if age > delay+10*time.Second { // following, not stuck (a loaded machine lags seconds)
			t.Errorf("seq %d arrived %v after its ingest: far behind the delay %v", seq, age, delay)
		}
	}
	updates := 0
	for end := time.Now().Add(4 * time.Second); time.Now().Before(end); {
		msgs := append(pending, c.within(200*time.Millisecond)...)
		pending = nil
		for _, m := range msgs {
			now := time.Now()
			if s := m.GetSnapshot(); s != nil {
				if err := rep.ApplySnapshot(s); err != nil {
					t.Fatal(err)
				}
				check(s.Seq, now)
			}
			if d := m.GetDelta(); d != nil {
				if err := rep.ApplyDelta(d); err != nil && !errors.Is(err, market.ErrStale) {
					t.Fatal(err)
				}
				check(d.Seq, now)
				updates++
			}
		}
	}
	if updates < 20 {
		t.Fatalf("%d delayed updates in 4 s of a moving market", updates)
	}

	// Nothing lost: once the market stops and the delay passes, it holds the live quote.
	close(stop)
	wg.Wait()
	stop = make(chan struct{})
	e.waitApplied(p)
	var liveQuote *pb.Quote
	{
		lc, err := dial(t, e.url, wire.SubprotocolProto, bearerHeader(k.token(t, "pro", time.Minute, allGrant)))
		if err != nil {
			t.Fatal(err)
		}
		go lc.conn.ReadLoop()
		lc.send(subscribe(1, []string{id}, 10, pb.Channel_CHANNEL_QUOTE))
		liveQuote = waitMsg(t, lc, "live snapshot", func(m *pb.ServerMessage) bool { return m.GetSnapshot() != nil }).GetSnapshot().GetQuote()
	}
	testwait.For(t, delay+3*time.Second, "the delayed quote to reach the live one", func() bool {
		for _, m := range c.within(100 * time.Millisecond) {
			if d := m.GetDelta(); d != nil {
				_ = rep.ApplyDelta(d)
			}
		}
		return proto.Equal(rep.Quote(), liveQuote)
	})

	// Nothing real time leaks elsewhere: replay sessions and /api/candles are refused.
	if status, _ := upgradeStatus(t, e.http+"/ws?replay=some-session", bearerHeader(tok)); status != http.StatusForbidden {
		t.Errorf("delayed replay watcher: %d, want 403", status)
	}
	req, _ := http.NewRequest("GET", e.http+"/api/candles?instrument="+id+"&interval=60", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("/api/candles with a delayed token: %d %s, want 403", resp.StatusCode, body)
	}

	// In band (a browser): the same tier, once warm, serves an Authenticate.
	b := mustDial(t, e.url, wire.SubprotocolProto)
	authed(b, tok, 1)
	waitMsg(t, b, "Authenticated", func(m *pb.ServerMessage) bool { return m.GetAuthenticated() != nil })
	b.send(subscribe(2, []string{id}, 10, pb.Channel_CHANNEL_QUOTE))
	if got := waitMsg(t, b, "Subscribed", func(m *pb.ServerMessage) bool { return m.GetSubscribed() != nil }).GetSubscribed(); got.DelayMs == 0 {
		t.Fatalf("in-band delayed sign-in got a real-time subscription: %v", got)
	}
}

// TestDelayTierRefusals: a feed without history cannot serve delayed data (501, or 4501 after
// an in-band sign-in), and MaxDelayTiers distinct delays run at most (at the limit and past it).
func TestDelayTierRefusals(t *testing.T) {
	k := newAuthKeys(t)
	delayed := func(s int64) string {
		return k.token(t, "delayed", time.Minute, auth.Grant{Instruments: []string{"*"}, Delay: s})
	}
	noHistory := startEnv(t, k.authConfig(t, nil))
	if status, body := upgradeStatus(t, noHistory.http+"/ws", bearerHeader(delayed(60))); status != http.StatusNotImplemented {
		t.Fatalf("no history: %d %s, want 501", status, body)
	}
	c := mustDial(t, noHistory.url, wire.SubprotocolProto)
	authed(c, delayed(60), 1)
	if code := c.closeCode(5 * time.Second); code != wire.CloseUnauthorized {
		t.Fatalf("in-band sign-in without history: close %d, want %d", code, wire.CloseUnauthorized)
	}

	cfg := k.authConfig(t, nil)
	cfg.MaxDelayTiers = 1
	e := startEnv(t, cfg)
	e.srv.EnableHistory(e.bus)
	if status, body := upgradeStatus(t, e.http+"/ws", bearerHeader(delayed(60))); status != http.StatusServiceUnavailable || !strings.Contains(body, "warming up") {
		t.Fatalf("first tier: %d %s, want 503 warming up", status, body)
	}
	if status, body := upgradeStatus(t, e.http+"/ws", bearerHeader(delayed(120))); status != http.StatusServiceUnavailable || !strings.Contains(body, "too many") {
		t.Fatalf("a second delay past the limit of 1: %d %s, want 503 too many", status, body)
	}
}
