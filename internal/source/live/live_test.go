package live_test

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/tickwire/tickwire/internal/source"
	"github.com/tickwire/tickwire/internal/source/binance"
	"github.com/tickwire/tickwire/internal/source/coinbase"
	"github.com/tickwire/tickwire/internal/source/fakeexchange"
	"github.com/tickwire/tickwire/internal/source/kraken"
	"github.com/tickwire/tickwire/internal/source/live"
	"github.com/tickwire/tickwire/internal/source/sourcetest"
	"github.com/tickwire/tickwire/internal/testwait"
	"github.com/tickwire/tickwire/pkg/book"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

var (
	_ live.Venue = (*kraken.Handler)(nil)
	_ live.Venue = (*binance.Handler)(nil)
	_ live.Venue = (*coinbase.Handler)(nil)
)

// fastConfig makes reconnects and resyncs quick for tests. The read timeout is long: the fake
// venues go quiet only while they wait for the client's snapshot or once their frames ran out,
// and a timeout there (a loaded machine: 5 s was within reach) is a reconnect the tests count.
func fastConfig() live.Config {
	return live.Config{MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, ResyncMinInterval: 10 * time.Millisecond, ReadTimeout: time.Minute}
}

// rebuilt rebuilds books from the events a live Source emits (from its Run goroutine).
type rebuilt struct {
	mu     sync.Mutex
	books  *sourcetest.Books
	err    error
	events int
}

func (r *rebuilt) emit(ev *tickwirev1.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events++
	if err := r.books.Apply(ev); err != nil && r.err == nil {
		r.err = err
	}
	return nil
}

func (r *rebuilt) book(id string) *book.Book {
	r.mu.Lock()
	defer r.mu.Unlock()
	if b := r.books.Books[id]; b != nil {
		return b.Clone()
	}
	return nil
}

// run starts src and returns a stop function that waits for Run.
func run(t *testing.T, src *live.Source, emit func(*tickwirev1.Event) error) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, emit) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// krakenFrames returns the 2021 v1 capture's received frames and the indices of book updates
// of pair whose checksum differs from that pair's previous one (so losing one shows at the
// next update).
func krakenFrames(t *testing.T) ([]source.Frame, map[string][]int) {
	frames := sourcetest.Frames(sourcetest.Records(t, sourcetest.Path(t, "kraken-v1-2021-cryptofeed", "ws_frames.ndjson")))
	changing := map[string][]int{}
	last := map[string]uint32{}
	for i, f := range frames {
		m, err := kraken.ParseV1(f.Data)
		if err != nil || m.Kind != kraken.KindBook || !m.Book.HasChecksum {
			continue
		}
		if prev, ok := last[m.Pair]; ok && prev != m.Book.Checksum {
			changing[m.Pair] = append(changing[m.Pair], i)
		}
		last[m.Pair] = m.Book.Checksum
	}
	return frames, changing
}

var krakenPairs = []string{"WAVES/EUR", "XMR/USD", "KSM/XBT", "GRT/ETH", "SC/EUR", "ETH/CHF", "OCEAN/XBT", "OMG/USD", "XBT/CHF", "ADA/XBT"}

// checkKrakenTruth compares every rebuilt book with the fake venue's true book.
func equalBooks(t *testing.T, got *book.Book, want *source.Book) bool {
	t.Helper()
	return got != nil && want != nil && got.Equal(&want.Book)
}

func TestKrakenV1Faults(t *testing.T) {
	baseline := runtime.NumGoroutine()
	frames, changing := krakenFrames(t)
	xmr, sc := changing["XMR/USD"], changing["SC/EUR"]
	faults := []fakeexchange.Fault{
		{At: xmr[len(xmr)/4], Kind: fakeexchange.Drop},
		{At: sc[len(sc)/3], Kind: fakeexchange.Corrupt},
		{At: xmr[len(xmr)/2], Kind: fakeexchange.Duplicate},
		{At: sc[2*len(sc)/3], Kind: fakeexchange.Disconnect},
	}
	fake, err := fakeexchange.NewKrakenV1(fakeexchange.Config{Frames: frames, Faults: faults, WaitResync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	truth, _ := kraken.New(kraken.Config{Version: 1}, nil)
	var col sourcetest.Collector
	for i := range frames {
		_ = truth.Handle(&frames[i], col.Emit)
	}

	h, err := kraken.New(kraken.Config{Version: 1, Depth: 1000, Symbols: krakenPairs, URL: fake.URL()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	src := live.New(h, fastConfig(), nil)
	r := &rebuilt{books: sourcetest.NewBooks()}
	stop := run(t, src, r.emit)
	testwait.For(t, 20*time.Second, "books equal to the venue's at the end", func() bool {
		if !fake.Done() {
			return false
		}
		for _, p := range krakenPairs {
			tb, _, in := truth.BookOf(p)
			if !equalBooks(t, r.book(in.ID), tb) {
				return false
			}
		}
		return true
	})
	stop()
	fake.Close()
	// Every goroutine of the source (read loop, fetches) and of the fake is gone.
	testwait.For(t, 5*time.Second, "goroutines back to baseline", func() bool { return runtime.NumGoroutine() <= baseline })
	st := h.Stats().Snapshot()
	t.Logf("%s; connections %d", st, src.Connections())
	if r.err != nil {
		t.Fatal(r.err)
	}
	// The dropped update and the corrupted checksum each fail one check; the duplicate is
	// harmless (Kraken levels are absolute); the disconnect restarts every pair.
	if st.Checks["checksum fail"] != 2 || st.Rejects[source.ReasonChecksum] != 2 {
		t.Errorf("checks %v rejects %v", st.Checks, st.Rejects)
	}
	if src.Connections() != 2 || fake.Connections() != 2 {
		t.Errorf("connections: client %d, server %d", src.Connections(), fake.Connections())
	}
	if st.Resyncs["kraken:XMR/USD"] != 2 || st.Resyncs["kraken:SC/EUR"] != 2 || st.Resyncs["kraken:ADA/XBT"] != 1 {
		t.Errorf("resyncs %v", st.Resyncs)
	}
}

func TestBinanceSpotFaults(t *testing.T) {
	frames := sourcetest.Frames(sourcetest.Records(t, sourcetest.Path(t, "binance-spot-2024-hftbacktest", "btcusdt_first60s.ndjson")))
	frames = frames[:3000] // ~25 s of the capture: enough for four faults, quick under -race
	var depth []int
	for i, f := range frames {
		if m, err := binance.Parse(f.Data, ""); err == nil && m.Kind == binance.KindDepth && i > 10 {
			depth = append(depth, i)
		}
	}
	faults := []fakeexchange.Fault{
		{At: depth[40], Kind: fakeexchange.Drop},
		{At: depth[80], Kind: fakeexchange.Duplicate},
		{At: depth[120], Kind: fakeexchange.Corrupt},
		{At: depth[160], Kind: fakeexchange.Disconnect},
	}
	fake, err := fakeexchange.NewBinance(binance.Spot, fakeexchange.Config{Frames: frames, Faults: faults, WaitResync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	truth, _ := binance.New(binance.Config{Market: binance.Spot}, nil)
	var col sourcetest.Collector
	for i := range frames {
		_ = truth.Handle(&frames[i], col.Emit)
	}
	h, err := binance.New(binance.Config{Market: binance.Spot, Symbols: []string{"BTCUSDT"}, URL: fake.URL(), RESTURL: fake.HTTPURL()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	src := live.New(h, fastConfig(), nil)
	r := &rebuilt{books: sourcetest.NewBooks()}
	stop := run(t, src, r.emit)
	tb, _ := truth.BookOf("BTCUSDT")
	testwait.For(t, 20*time.Second, "book equal to the venue's at the end", func() bool {
		return fake.Done() && equalBooks(t, r.book("binance:BTCUSDT"), tb)
	})
	stop()
	st := h.Stats().Snapshot()
	t.Logf("%s; connections %d", st, src.Connections())
	if r.err != nil {
		t.Fatal(r.err)
	}
	// Drop: a gap. Corrupt: an unparseable frame, then a gap. Duplicate: a stale event.
	if st.Rejects[source.ReasonGap] != 2 || st.Rejects[source.ReasonStale] != 1 || st.Rejects[source.ReasonParse] != 1 {
		t.Errorf("rejects %v", st.Rejects)
	}
	// Three restarts from a REST snapshot: after the gap, the corrupted frame, the reconnect.
	if st.Resyncs["binance:BTCUSDT"] != 3 || src.Connections() != 2 {
		t.Errorf("resyncs %v, connections %d", st.Resyncs, src.Connections())
	}
}

func TestBackoff(t *testing.T) {
	for n := range 20 {
		d := live.Backoff(n, 100*time.Millisecond, 2*time.Second)
		if d < 50*time.Millisecond || d > 2*time.Second {
			t.Fatalf("Backoff(%d) = %s", n, d)
		}
	}
}
