package source

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tickwire/tickwire/pkg/book"
)

func TestSpecs(t *testing.T) {
	specs := Specs{}
	if err := specs.ParseSpecFlags([]string{"kraken:XBT/USD=1,8,0.1,0.00000001", "binance:BTCUSDT=2,5"}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"kraken:XBT/USD=1", "nocolon=1,2", "kraken:X=19,2", "kraken:X=2,2,0.001", "kraken:X=a,b", "kraken:X"} {
		if err := (Specs{}).ParseSpecFlags([]string{bad}); !errors.Is(err, ErrSpec) {
			t.Errorf("%q: err %v, want ErrSpec", bad, err)
		}
	}
	path := filepath.Join(t.TempDir(), "specs.json")
	if err := os.WriteFile(path, []byte(`{"coinbase:BTC-USD":{"price_scale":2,"size_scale":8,"tick":"0.01"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadSpecs(path)
	if err != nil || loaded["coinbase:BTC-USD"].Tick != "0.01" {
		t.Fatalf("LoadSpecs: %v %v", loaded, err)
	}

	// Configured wins over venue-published, which wins over inferred.
	r := NewInstruments("kraken", specs, slogDiscard())
	in, err := r.Define("XBT/USD", &Spec{PriceScale: 5, SizeScale: 8}, 7, 7)
	if err != nil || in.Origin != OriginConfig || in.PriceScale != 1 || in.Info.GetTickSize() != 1 || in.Info.GetLotSize() != 1 {
		t.Errorf("configured: %+v %v", in, err)
	}
	if in.Info.GetBase() != "XBT" || in.Info.GetQuote() != "USD" {
		t.Errorf("base/quote %v", in.Info)
	}
	in, _ = r.Define("ETH/USD", &Spec{PriceScale: 2, SizeScale: 8}, 7, 7)
	if in.Origin != OriginVenue || in.PriceScale != 2 {
		t.Errorf("venue: %+v", in)
	}
	in, _ = r.Define("SOL/USD", nil, 3, 4)
	if in.Origin != OriginInferred || in.PriceScale != 3 || in.SizeScale != 4 || r.ByID("kraken:SOL/USD") != in {
		t.Errorf("inferred: %+v", in)
	}
	if _, err := r.Define("bad symbol", nil, 1, 1); !errors.Is(err, ErrUnknownSymbol) {
		t.Errorf("bad symbol: %v", err)
	}
	if b, q := splitPair("binance", "ETHUSDT"); b != "ETH" || q != "USDT" {
		t.Errorf("splitPair %q %q", b, q)
	}
}

func TestLevelsExact(t *testing.T) {
	c := NewCore("kraken", "test", nil, nil)
	in, _ := c.Instruments().Define("XBT/USD", nil, 1, 2)
	f := &Frame{N: 7}
	if got, ok := c.Levels(f, in, nil, []RawLevel{{"100.5", "1.25"}, {"100.0", "0"}}); !ok || got[0] != (book.Level{Price: 1005, Size: 125}) {
		t.Errorf("levels %v %t", got, ok)
	}
	for _, bad := range []RawLevel{{"100.55", "1"}, {"0", "1"}, {"-1", "1"}, {"1", "-1"}, {"1", "0.001"}, {"x", "1"}, {"1e30", "1"}} {
		if _, ok := c.Levels(f, in, nil, []RawLevel{bad}); ok {
			t.Errorf("%v accepted", bad)
		}
	}
	st := c.Stats().Snapshot()
	if st.Rejects["inexact"] != 2 || st.Rejects["price"] != 2 || st.Rejects["size"] != 1 || st.Rejects["syntax"] != 1 || st.Rejects["overflow"] != 1 {
		t.Errorf("rejects %v", st.Rejects)
	}
}

func TestPacer(t *testing.T) {
	ctx := context.Background()
	fast := Pacer{Speed: 0}
	start := time.Now()
	for i := range 1000 {
		if err := fast.Wait(ctx, int64(i)*int64(time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	p := Pacer{Speed: 100} // 2 s of recording in 20 ms
	for _, ts := range []int64{1e9, 2e9, 3e9, 2e9} {
		if err := p.Wait(ctx, ts); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d < 20*time.Millisecond || d > 2*time.Second {
		t.Errorf("paced replay took %s", d)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := (&Pacer{Speed: 1}).Wait(cancelled, 1); err == nil {
		t.Error("Wait on a cancelled context returned nil")
	}
}

func TestUpdateMerges(t *testing.T) {
	var u Update
	u.Set(book.Bid, 10, 1)
	u.Set(book.Bid, 10, 0)
	u.Set(book.Ask, 11, 2)
	if len(u.Bids) != 1 || u.Bids[0].Size != 0 || len(u.Asks) != 1 {
		t.Errorf("%+v", u)
	}
}

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }
