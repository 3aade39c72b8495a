package source_test

import (
	"testing"

	"github.com/tickwire/tickwire/internal/normalize"
	"github.com/tickwire/tickwire/internal/source"
)

// Tick and lot are never invented: an inferred instrument, or a spec without them, says 0
// (not known) and any price and size at the scales passes; a known grid rejects (and counts)
// a price or size off it.
func TestGrid(t *testing.T) {
	specs := source.Specs{
		"kraken:XBT/USD": {PriceScale: 1, SizeScale: 8, Tick: "0.5", Lot: "0.001"},
		"kraken:ETH/USD": {PriceScale: 2, SizeScale: 8},
	}
	c := source.NewCore("kraken", "test", specs, nil)
	r := c.Instruments()
	inferred, _ := r.Define("SOL/USD", nil, 2, 3)
	unset, _ := r.Define("ETH/USD", nil, 0, 0)
	known, _ := r.Define("XBT/USD", nil, 0, 0)
	for _, in := range []*source.Instrument{inferred, unset} {
		if in.Info.GetTickSize() != 0 || in.Info.GetLotSize() != 0 {
			t.Errorf("%s (%s): tick %d lot %d, want 0 (not known)", in.ID, in.Origin, in.Info.GetTickSize(), in.Info.GetLotSize())
		}
		if err := normalize.ValidateInfo(in.Info); err != nil {
			t.Errorf("%s: %v", in.ID, err)
		}
	}
	if known.Info.GetTickSize() != 5 || known.Info.GetLotSize() != 100000 {
		t.Errorf("known: tick %d lot %d, want 5 and 100000", known.Info.GetTickSize(), known.Info.GetLotSize())
	}
	f := &source.Frame{N: 1}
	if _, _, ok := c.Level(f, inferred, "100.37", "0.001"); !ok {
		t.Error("inferred: a price at the scale rejected")
	}
	if _, _, ok := c.Level(f, known, "100.5", "0.002"); !ok {
		t.Error("known: a price on the grid rejected")
	}
	if _, _, ok := c.Level(f, known, "100.5", "0"); !ok {
		t.Error("known: a delete (size 0) rejected")
	}
	for _, bad := range [][2]string{{"100.3", "1"}, {"100.5", "0.0015"}} {
		if _, _, ok := c.Level(f, known, bad[0], bad[1]); ok {
			t.Errorf("known: %v off the grid accepted", bad)
		}
	}
	st := c.Stats().Snapshot()
	if st.RejectsBy["kraken:XBT/USD "+normalize.ReasonTick] != 1 || st.RejectsBy["kraken:XBT/USD "+normalize.ReasonLot] != 1 || len(st.Rejects) != 2 {
		t.Errorf("rejects %v", st.RejectsBy)
	}
}
