package client_test

import (
	"context"
	"fmt"
	"time"

	"github.com/tickwire/tickwire/pkg/client"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// quotePrinter prints the instrument's quote at its exact decimal precision, and stops the
// client after the first one.
type quotePrinter struct {
	client.BaseHandler
	stop context.CancelFunc
}

func (p *quotePrinter) OnStateChange(_ *client.Client, s client.ConnState, _ error) {
	fmt.Println(s)
}

func (p *quotePrinter) OnSubscribed(_ *client.Client, s *pb.Subscribed) {
	fmt.Println("subscribed", s.Info.GetId(), "price scale", s.Info.GetPriceScale(), "size scale", s.Info.GetSizeScale())
}

func (p *quotePrinter) OnSnapshot(_ *client.Client, u client.Update) {
	q, info := u.Replica.Quote(), u.Info
	fmt.Printf("%s bid %s x %s ask %s x %s\n", u.Instrument,
		client.FormatDecimal(q.BidPrice, info.PriceScale), client.FormatDecimal(q.BidSize, info.SizeScale),
		client.FormatDecimal(q.AskPrice, info.PriceScale), client.FormatDecimal(q.AskSize, info.SizeScale))
	p.stop()
}

func (p *quotePrinter) OnUpdate(c *client.Client, u client.Update) {
	// Deltas come here, with u.Latency = now - the event's ingest time.
}

// A bot subscribes to the quote of one instrument and prints it. The feed here is the test
// stand-in; a real bot dials ws://HOST:PORT/ws.
func ExampleClient() {
	feed := newFakeServer("synthetic:ACME")
	defer feed.Close()
	feed.step(100)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := client.New(client.Options{URL: feed.URL, Handler: &quotePrinter{stop: cancel}})
	if err != nil {
		fmt.Println(err)
		return
	}
	// Safe before Run: the subscription is sent on every (re)connect.
	_ = c.Subscribe(client.Subscription{
		Instruments: []string{"synthetic:ACME"},
		Channels:    []pb.Channel{pb.Channel_CHANNEL_QUOTE},
	})
	// Run owns this goroutine: it returns nil when ctx ends, or an error when the server closes
	// the connection for good.
	if err := c.Run(ctx); err != nil {
		fmt.Println("stopped:", err)
	}
	// Output:
	// connected
	// subscribed synthetic:ACME price scale 2 size scale 3
	// synthetic:ACME bid 100.00 x 0.588 ask 100.07 x 0.126
	// disconnected
}

// View gives other goroutines a consistent copy of an instrument's state.
func ExampleClient_View() {
	feed := newFakeServer("synthetic:ACME")
	defer feed.Close()
	feed.step(100)

	c, _ := client.New(client.Options{URL: feed.URL})
	_ = c.Subscribe(client.Subscription{Instruments: []string{"synthetic:ACME"}, Depth: 10})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()

	for {
		v, _ := c.View("synthetic:ACME")
		if v.Synced() {
			best := v.Book.Bids()[0]
			fmt.Println("depth", v.Depth, "bid levels", len(v.Book.Bids()), "best bid",
				client.FormatDecimal(best.Price, v.Info.PriceScale), "book position", v.Streams[pb.Channel_CHANNEL_BOOK].Seq)
			fmt.Println("trades", len(v.Trades), "last", client.FormatDecimal(v.Stats.Last, v.Info.PriceScale))
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	fmt.Println(<-done)
	// Output:
	// depth 10 bid levels 10 best bid 100.00 book position 100
	// trades 14 last 100.06
	// <nil>
}

// haltWatcher reports halts: implementing client.InstrumentHandler next to Handler is enough
// for the client to call it.
type haltWatcher struct {
	client.BaseHandler
	stop context.CancelFunc
}

func (h *haltWatcher) OnInstrument(_ *client.Client, info *pb.InstrumentInfo) {
	fmt.Println(info.GetId(), info.GetStatus())
	h.stop()
}

// A bot learns that an instrument stopped trading from an InstrumentUpdate, pushed by the feed
// in order with the instrument's updates.
func ExampleInstrumentHandler() {
	feed := newFakeServer("synthetic:ACME")
	defer feed.Close()
	feed.step(100)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := &haltWatcher{stop: cancel}
	c, err := client.New(client.Options{URL: feed.URL, Handler: h})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = c.Subscribe(client.Subscription{Instruments: []string{"synthetic:ACME"}, Channels: []pb.Channel{pb.Channel_CHANNEL_QUOTE}})
	go func() {
		// The stand-in feed halts the instrument once the client holds it.
		for {
			if v, ok := c.View("synthetic:ACME"); ok && v.Info != nil {
				halted := v.Info
				halted.Status = pb.InstrumentStatus_INSTRUMENT_STATUS_HALTED
				feed.announce("synthetic:ACME", "synthetic:ACME", halted)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	_ = c.Run(ctx)
	// Output:
	// synthetic:ACME INSTRUMENT_STATUS_HALTED
}

// compactCounter prints the first quote updates a compact subscription brings: each arrives as
// a CompactQuote of about 20 bytes and reaches the handler as the whole Delta it stands for.
type compactCounter struct {
	client.BaseHandler
	ready chan struct{}
	n     int
	stop  context.CancelFunc
}

func (h *compactCounter) OnSnapshot(_ *client.Client, u client.Update) {
	select {
	case <-h.ready: // a later snapshot (a resync): already going
	default:
		close(h.ready)
	}
}

func (h *compactCounter) OnUpdate(_ *client.Client, u client.Update) {
	if h.n++; h.n > 3 {
		return
	}
	q := u.Delta.GetQuote()
	fmt.Printf("seq %d bid %s ask %s, ingest time set: %v\n", u.Delta.Seq,
		client.FormatDecimal(q.BidPrice, u.Info.PriceScale), client.FormatDecimal(q.AskPrice, u.Info.PriceScale),
		u.Delta.IngestTimeNs > 0)
	if h.n == 3 {
		h.stop()
	}
}

// A bot that only needs quotes asks for them in the compact form, a third of the bytes.
func ExampleOptions_compactQuotes() {
	feed := newFakeServer("synthetic:ACME")
	defer feed.Close()
	feed.step(100)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := &compactCounter{ready: make(chan struct{}), stop: cancel}
	c, err := client.New(client.Options{URL: feed.URL, Handler: h, CompactQuotes: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = c.Subscribe(client.Subscription{Instruments: []string{"synthetic:ACME"}, Channels: []pb.Channel{pb.Channel_CHANNEL_QUOTE}})
	go func() {
		select {
		case <-h.ready: // subscribed: now the market moves
		case <-ctx.Done():
			return
		}
		for ctx.Err() == nil {
			feed.step(20)
			time.Sleep(10 * time.Millisecond)
		}
	}()
	_ = c.Run(ctx)
	fmt.Println("compact quotes sent:", feed.compactSent() >= 3)
	// Output:
	// seq 101 bid 99.98 ask 100.07, ingest time set: true
	// seq 106 bid 99.97 ask 100.07, ingest time set: true
	// seq 107 bid 99.95 ask 100.07, ingest time set: true
	// compact quotes sent: true
}

// venuePrinter prints each instrument a venue wildcard brings, and stops once it has n.
type venuePrinter struct {
	client.BaseHandler
	n    int
	stop context.CancelFunc
}

func (p *venuePrinter) OnSnapshot(_ *client.Client, u client.Update) {
	q, info := u.Replica.Quote(), u.Info
	fmt.Printf("%s bid %s ask %s\n", u.Instrument, client.FormatDecimal(q.BidPrice, info.PriceScale),
		client.FormatDecimal(q.AskPrice, info.PriceScale))
	if p.n--; p.n == 0 {
		p.stop()
	}
}

// A venue wildcard ("venue:*") follows every instrument of a venue: those listed now and those
// listed later, each with its own replica, without listing the venue first.
func ExampleSubscription_venueWildcard() {
	feed := newFakeServer("synthetic:ACME", "synthetic:BOLT", "other:XYZ")
	defer feed.Close()
	feed.step(100)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, _ := client.New(client.Options{URL: feed.URL, Handler: &venuePrinter{n: 2, stop: cancel}})
	_ = c.Subscribe(client.Subscription{Instruments: []string{"synthetic:*"}, Channels: []pb.Channel{pb.Channel_CHANNEL_QUOTE}})
	_ = c.Run(ctx)
	fmt.Println(c.Instruments())
	// Output:
	// synthetic:ACME bid 99.98 ask 100.04
	// synthetic:BOLT bid 99.93 ask 100.03
	// [synthetic:ACME synthetic:BOLT]
}
