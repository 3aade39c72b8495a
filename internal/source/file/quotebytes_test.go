package file

import (
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tickwire/tickwire/internal/source/sourcetest"
	"github.com/tickwire/tickwire/internal/source/synthetic"
	"github.com/tickwire/tickwire/pkg/market"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// quoteSizes are the bytes each quote delta of a run takes in a frame, in both forms.
type quoteSizes struct{ delta, compact []int }

// quoteDeltaSizes runs events through the feed's state machine as the feed would (one epoch,
// gapless seqs, ingest time = venue time + 20-25 ms) and encodes every quote delta both ways. It
// checks that each compact quote, expanded by a client replica that followed every quote, gives
// exactly the Delta.
func quoteDeltaSizes(tb testing.TB, evs []*tickwirev1.Event) quoteSizes {
	tb.Helper()
	rng := rand.New(rand.NewPCG(5, 5))
	states := map[string]*market.State{}
	replicas := map[string]*market.Replica{}
	seqs := map[string]uint64{}
	var sz quoteSizes
	var cq tickwirev1.CompactQuote
	for _, ev := range evs {
		ev = proto.CloneOf(ev)
		st := states[ev.Instrument]
		if st == nil {
			st = market.NewState(ev.Instrument, market.Config{})
			states[ev.Instrument] = st
		}
		seqs[ev.Instrument]++
		ev.Epoch, ev.Seq = 1_800_000_000_000, seqs[ev.Instrument]
		ev.IngestTimeNs = ev.VenueTimeNs + int64(20*time.Millisecond) + rng.Int64N(int64(5*time.Millisecond))
		res, err := st.Apply(ev)
		if err != nil {
			tb.Fatal(err)
		}
		r := replicas[ev.Instrument]
		if r == nil {
			if snap := st.Snapshot(tickwirev1.Channel_CHANNEL_QUOTE, 0, 0); snap != nil {
				r = &market.Replica{}
				if err := r.ApplySnapshot(snap); err != nil {
					tb.Fatal(err)
				}
				replicas[ev.Instrument] = r
			}
			continue
		}
		if !res.CompactQuote(&cq) {
			continue
		}
		res.Quote.Handle, cq.Handle = 17, 17
		sz.delta = append(sz.delta, len(wire.AppendDeltaMessage(nil, res.Quote)))
		sz.compact = append(sz.compact, len(wire.AppendCompactQuoteMessage(nil, &cq)))
		d, err := r.ExpandCompactQuote(&cq)
		if err != nil {
			tb.Fatal(err)
		}
		if err := r.ApplyDelta(d); err != nil {
			tb.Fatal(err)
		}
		want := proto.CloneOf(res.Quote)
		want.VenueTimeNs, want.IngestTimeNs = market.TruncateTimes(want.VenueTimeNs, want.IngestTimeNs)
		if !proto.Equal(d, want) {
			tb.Fatalf("%s %d: compact expands to %v, want %v", ev.Instrument, ev.Seq, d, want)
		}
	}
	return sz
}

func mean(v []int) float64 {
	n := 0
	for _, x := range v {
		n += x
	}
	return float64(n) / float64(len(v))
}

func pct(v []int, p float64) int {
	s := slices.Sorted(slices.Values(v))
	return s[int(p*float64(len(s)-1))]
}

type quoteData struct {
	name string
	evs  func(testing.TB) []*tickwirev1.Event
}

func quoteDataSets() []quoteData {
	read := func(tb testing.TB, cfg Config) []*tickwirev1.Event {
		src, err := Open(cfg, nil)
		if err != nil {
			tb.Fatal(err)
		}
		defer src.Close()
		evs, err := ReadAll(src.Reader())
		if err != nil {
			tb.Fatal(err)
		}
		return evs
	}
	return []quoteData{
		{"truefx-usdjpy", func(tb testing.TB) []*tickwirev1.Event {
			return read(tb, Config{Format: FormatFXQuotes, Instrument: "truefx:USD/JPY",
				Paths: []string{sourcetest.Path(tb, "truefx-usdjpy-2013", "usdjpy-ticks.csv")}})
		}},
		{"lobster-amzn", func(tb testing.TB) []*tickwirev1.Event {
			dir := sourcetest.Path(tb, "lobster-amzn-2012-06-21-level1")
			return read(tb, Config{Format: FormatLobsterLevel1, Paths: []string{
				filepath.Join(dir, "AMZN_2012-06-21_34200000_57600000_message_1.first10000.csv"),
				filepath.Join(dir, "AMZN_2012-06-21_34200000_57600000_orderbook_1.first10000.csv")}})
		}},
		{"synthetic-100", func(tb testing.TB) []*tickwirev1.Event {
			// 100 instruments at 50,000 events/s, the load tool's market.
			m, err := synthetic.NewMarket(synthetic.Config{Instruments: 100, Seed: 3})
			if err != nil {
				tb.Fatal(err)
			}
			var evs []*tickwirev1.Event
			for i := range 100_000 {
				evs = append(evs, m.Next(1_800_000_000e9+int64(i)*20_000))
			}
			return evs
		}},
	}
}

// TestCompactQuotesOnRecordedData: on recorded quotes (TrueFX, LOBSTER) and the synthetic
// market, every compact quote expands to exactly the Delta; the sizes are logged (the figures
// are BenchmarkQuoteDeltaBytes's).
func TestCompactQuotesOnRecordedData(t *testing.T) {
	for _, ds := range quoteDataSets() {
		t.Run(ds.name, func(t *testing.T) {
			sz := quoteDeltaSizes(t, ds.evs(t))
			if len(sz.compact) < 500 {
				t.Fatalf("only %d quote deltas", len(sz.compact))
			}
			t.Logf("%d quote deltas: Delta mean %.1f bytes, CompactQuote mean %.1f (p50 %d, p90 %d, max %d)",
				len(sz.delta), mean(sz.delta), mean(sz.compact), pct(sz.compact, 0.5), pct(sz.compact, 0.9), pct(sz.compact, 1))
		})
	}
}

// BenchmarkQuoteDeltaBytes reports the mean bytes a quote delta takes in a frame (its
// ServerFrame.messages entry), as Delta and as CompactQuote, on recorded and synthetic quotes.
// The time per op is not the point (it is the whole run through the state machine).
func BenchmarkQuoteDeltaBytes(b *testing.B) {
	for _, ds := range quoteDataSets() {
		b.Run(ds.name, func(b *testing.B) {
			evs := ds.evs(b)
			var sz quoteSizes
			for b.Loop() {
				sz = quoteDeltaSizes(b, evs)
			}
			b.ReportMetric(mean(sz.delta), "delta-bytes")
			b.ReportMetric(mean(sz.compact), "compact-bytes")
			b.ReportMetric(float64(pct(sz.compact, 0.9)), "compact-p90-bytes")
		})
	}
}
