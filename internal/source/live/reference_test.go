package live_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tickwire/tickwire/internal/normalize"
	"github.com/tickwire/tickwire/internal/source/binance"
	"github.com/tickwire/tickwire/internal/source/capture"
	"github.com/tickwire/tickwire/internal/source/fakeexchange"
	"github.com/tickwire/tickwire/internal/source/live"
	"github.com/tickwire/tickwire/internal/source/sourcetest"
	"github.com/tickwire/tickwire/internal/testwait"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// binanceExchangeInfo is written by hand in the shape of Binance's documented
// GET /api/v3/exchangeInfo answer, with BTCUSDT's PRICE_FILTER tickSize and LOT_SIZE stepSize
// as Binance lists them (0.01 and 0.00001); the other fields are trimmed.
const binanceExchangeInfo = `{"timezone":"UTC","serverTime":1723075200000,"rateLimits":[],"exchangeFilters":[],"symbols":[` +
	`{"symbol":"BTCUSDT","status":"TRADING","baseAsset":"BTC","baseAssetPrecision":8,"quoteAsset":"USDT","quotePrecision":8,"quoteAssetPrecision":8,` +
	`"orderTypes":["LIMIT","MARKET"],"filters":[` +
	`{"filterType":"PRICE_FILTER","minPrice":"0.01000000","maxPrice":"1000000.00000000","tickSize":"0.01000000"},` +
	`{"filterType":"LOT_SIZE","minQty":"0.00001000","maxQty":"9000.00000000","stepSize":"0.00001000"}]}]}`

type infos struct {
	mu   sync.Mutex
	last map[string]*tickwirev1.InstrumentInfo
	n    int
}

func (c *infos) emit(ev *tickwirev1.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	if info := ev.GetInfo(); info != nil {
		c.last[ev.Instrument] = info
	}
	return nil
}

func (c *infos) get(id string) *tickwirev1.InstrumentInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last[id]
}

// A live Binance source fetches exchangeInfo before it streams: BTCUSDT's InstrumentInfo
// carries the real tick (0.01 at price scale 8: 1,000,000) and lot (0.00001 at size scale 8:
// 1,000), every recorded price and size is on that grid, and the recording holds the answer,
// so a replay of it carries the same reference data. Without exchangeInfo (404), tick and lot
// are not known (0) and the stream goes on.
func TestBinanceReferenceData(t *testing.T) {
	frames := sourcetest.Frames(sourcetest.Records(t, sourcetest.Path(t, "binance-spot-2024-hftbacktest", "btcusdt_first60s.ndjson")))
	frames = frames[:1000]
	for _, tc := range []struct {
		name      string
		body      []byte
		tick, lot int64
	}{
		{"exchangeInfo", []byte(binanceExchangeInfo), 1_000_000, 1_000},
		{"no exchangeInfo", nil, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake, err := fakeexchange.NewBinance(binance.Spot, fakeexchange.Config{Frames: frames, ExchangeInfo: tc.body})
			if err != nil {
				t.Fatal(err)
			}
			defer fake.Close()
			rec := filepath.Join(t.TempDir(), "rec.ndjson")
			f, err := os.Create(rec)
			if err != nil {
				t.Fatal(err)
			}
			recorder := capture.NewRecorder(f)
			h, err := binance.New(binance.Config{Market: binance.Spot, Symbols: []string{"BTCUSDT"}, URL: fake.URL(), RESTURL: fake.HTTPURL()}, nil)
			if err != nil {
				t.Fatal(err)
			}
			cfg := fastConfig()
			cfg.Recorder = recorder
			src := live.New(h, cfg, nil)
			got := &infos{last: map[string]*tickwirev1.InstrumentInfo{}}
			stop := run(t, src, got.emit)
			testwait.For(t, 30*time.Second, "replay done", func() bool {
				return fake.Done() && got.get("binance:BTCUSDT") != nil
			})
			stop()
			if err := recorder.Close(); err != nil {
				t.Fatal(err)
			}
			st := h.Stats().Snapshot()
			info := got.get("binance:BTCUSDT")
			if info.GetTickSize() != tc.tick || info.GetLotSize() != tc.lot || info.GetPriceScale() != 8 || info.GetSizeScale() != 8 {
				t.Errorf("live info %v, want tick %d lot %d at scales 8/8", info, tc.tick, tc.lot)
			}
			if st.Rejects[normalize.ReasonTick] != 0 || st.Rejects[normalize.ReasonLot] != 0 || st.Rejects["parse"] != 0 {
				t.Errorf("live: %s", st)
			}

			// The recording replays with the same reference data.
			r, closeFn, err := capture.Open(rec)
			if err != nil {
				t.Fatal(err)
			}
			defer closeFn()
			h2, _ := binance.New(binance.Config{Market: binance.Spot}, nil)
			replayed := &infos{last: map[string]*tickwirev1.InstrumentInfo{}}
			if err := capture.New(h2, r, capture.Config{}, nil).Run(context.Background(), replayed.emit); err != nil {
				t.Fatal(err)
			}
			if ri := replayed.get("binance:BTCUSDT"); ri.GetTickSize() != tc.tick || ri.GetLotSize() != tc.lot {
				t.Errorf("replayed info %v, want tick %d lot %d", ri, tc.tick, tc.lot)
			}
			if st2 := h2.Stats().Snapshot(); st2.Rejects[normalize.ReasonTick] != 0 || st2.Rejects[normalize.ReasonLot] != 0 {
				t.Errorf("replay: %s", st2)
			}
		})
	}
}
