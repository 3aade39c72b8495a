package e2e

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/bus/bustest"
	"github.com/tickwire/tickwire/internal/ingest"
	"github.com/tickwire/tickwire/internal/source/consolidated"
	"github.com/tickwire/tickwire/internal/source/synthetic"
	"github.com/tickwire/tickwire/internal/testwait"
	"github.com/tickwire/tickwire/pkg/book"
	"github.com/tickwire/tickwire/pkg/client"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// runPipeline runs src into b as ingest does, answering the feeds' snapshot requests.
func runPipeline(t *testing.T, src ingest.Source, b *bus.Bus) *runner {
	t.Helper()
	p, err := ingest.New(src, b, b, ingest.Config{}, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	b.SetPublishErrorHandler(p.OnPublishError)
	var stopReq func()
	if sr := ingest.NewSnapshotRequests(src, 100*time.Millisecond, nil); sr != nil {
		if stopReq, err = b.ServeSnapshotRequests(sr.Handle); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{cancel: cancel, done: make(chan error, 1)}
	go func() {
		err := p.Run(ctx)
		if stopReq != nil {
			stopReq()
		}
		r.done <- err
	}()
	return r
}

// storedBooks rebuilds every instrument's book from the stored events.
func storedBooks(t *testing.T, b *bus.Bus) map[string]*book.Book {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var mu sync.Mutex
	books := map[string]*book.Book{}
	c, err := b.ConsumeEvents(ctx, bus.ConsumeOptions{}, func(ev *pb.Event) error {
		u := ev.GetBook()
		if u == nil {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		bk := books[ev.Instrument]
		if bk == nil {
			bk = &book.Book{}
			books[ev.Instrument] = bk
		}
		if u.Snapshot {
			bk.Reset()
		}
		for side, levels := range [2][]*pb.Level{u.Bids, u.Asks} {
			for _, l := range levels {
				bk.SetLevel(book.Side(side), book.Level{Price: l.Price, Size: l.Size, Venues: l.Venues})
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	select {
	case <-c.CaughtUp():
	case <-ctx.Done():
		t.Fatal("reading the stream: timed out")
	}
	mu.Lock()
	defer mu.Unlock()
	return books
}

// merged is the consolidated book the members' books make: every price's total size and the
// bit of each member quoting it.
func merged(members ...*book.Book) *book.Book {
	sum := [2]map[int64]book.Level{{}, {}}
	for i, m := range members {
		if m == nil {
			continue
		}
		for side := range 2 {
			for _, l := range m.Levels(book.Side(side)) {
				s := sum[side][l.Price]
				s.Price, s.Size, s.Venues = l.Price, s.Size+l.Size, s.Venues|1<<i
				sum[side][l.Price] = s
			}
		}
	}
	var out book.Book
	for side := range 2 {
		for _, l := range sum[side] {
			out.SetLevel(book.Side(side), l)
		}
	}
	return &out
}

// TestConsolidatedInstrument runs a synthetic market on two venues, a consolidated ingest
// (as the NATS user consolidator) merging two cross-listed tickers, and a feed. The
// consolidated stream stored in JetStream, and a Go bot's replica of it through the feed
// (checksums and full-depth hashes verified by the client), end equal to the merge of the
// members' own stored books, level by level with the venues quoting there.
func TestConsolidatedInstrument(t *testing.T) {
	nats := bustest.Start(t)
	b := bustest.Connect(t, nats)
	venues := []string{"synthetic", "other"}
	syn, err := synthetic.NewSource(synthetic.Config{Instruments: 3, CrossListed: 2, Venues: venues, Seed: 9, Rate: 1500}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The consolidated ingest starts first: it waits for its members' reference data (asking
	// their ingest for snapshots), then starts each instrument.
	specs := []consolidated.Spec{
		{ID: "consolidated:ACME", Members: []string{"synthetic:ACME", "other:ACME"}},
		{ID: "consolidated:BOLT", Members: []string{"synthetic:BOLT", "other:BOLT"}},
	}
	cb := bustest.ConnectAs(t, nats, string(bus.RoleConsolidator))
	cons, err := consolidated.NewSource(consolidated.Config{Specs: specs}, consolidated.BusMembers(cb), nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	consRun := runPipeline(t, cons, cb)
	synRun := runPipeline(t, syn, bustest.ConnectAs(t, nats, string(bus.RoleIngest)))
	fd, addr := startFeed(t, b, "127.0.0.1:0")
	defer fd.stop(t)

	c, err := client.New(client.Options{URL: "ws://" + addr + "/ws", WaitForInstruments: true, // it may not exist yet
		BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(client.Subscription{Instruments: []string{"consolidated:ACME"},
		Channels: []pb.Channel{pb.Channel_CHANNEL_BOOK, pb.Channel_CHANNEL_QUOTE}, Depth: 50}); err != nil {
		t.Fatal(err)
	}
	_, stopClient := runClient(t, c)
	defer stopClient()
	var info *pb.InstrumentInfo
	defer func() {
		if t.Failed() {
			v, ok := c.View("consolidated:ACME")
			t.Logf("view ok=%v info=%v streams=%v book=%v stats=%+v", ok, v.Info, v.Streams, v.Book, c.Stats())
			for id, bk := range storedBooks(t, b) {
				t.Logf("stored %s: %d/%d levels", id, bk.Len(book.Bid), bk.Len(book.Ask))
			}
		}
	}()
	testwait.For(t, 20*time.Second, "the bot's consolidated book", func() bool {
		v, ok := c.View("consolidated:ACME")
		info = v.Info
		return ok && v.Book != nil && v.Book.Len(book.Bid) > 0 && v.Streams[pb.Channel_CHANNEL_BOOK].Synced && info != nil && len(info.Members) == 2
	})
	if info.Venue != "consolidated" || info.Members[0] != "synthetic:ACME" || info.Members[1] != "other:ACME" || info.PriceScale != synthetic.PriceScale {
		t.Fatalf("consolidated reference data %v", info)
	}
	// Let the market run, then stop it; the consolidated ingest drains what it read.
	testwait.For(t, 20*time.Second, "both venues in the consolidated book", func() bool {
		v, _ := c.View("consolidated:ACME")
		var seen uint32
		for _, l := range append(v.Book.Bids(), v.Book.Asks()...) {
			seen |= l.Venues
		}
		return seen == 3
	})
	v, _ := c.View("consolidated:ACME")
	mark := v.Streams[pb.Channel_CHANNEL_BOOK].Seq
	testwait.For(t, 20*time.Second, "300 more consolidated book updates", func() bool {
		v, _ := c.View("consolidated:ACME")
		return v.Streams[pb.Channel_CHANNEL_BOOK].Seq >= mark+300
	})
	synRun.stop(t)

	var stored map[string]*book.Book
	testwait.For(t, 20*time.Second, "the stored consolidated books to equal the merged members' books", func() bool {
		stored = storedBooks(t, b)
		for _, sp := range specs {
			want, got := merged(stored[sp.Members[0]], stored[sp.Members[1]]), stored[sp.ID]
			if got == nil || !got.Equal(want) || want.Len(book.Bid) == 0 {
				return false
			}
		}
		return true
	})
	want := merged(stored["synthetic:ACME"], stored["other:ACME"])
	want.Truncate(50)
	testwait.For(t, 20*time.Second, "the bot's replica to equal the merged book", func() bool {
		v, _ := c.View("consolidated:ACME")
		return v.Book.Equal(want)
	})
	if st := c.Stats(); st.ChecksumFailures != 0 || st.Gaps != 0 {
		t.Fatalf("client stats %+v", st)
	}
	consRun.stop(t)
}
