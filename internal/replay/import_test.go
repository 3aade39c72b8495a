package replay_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tickwire/tickwire/internal/bus/bustest"
	"github.com/tickwire/tickwire/internal/replay"
	"github.com/tickwire/tickwire/internal/replay/replaytest"
	"github.com/tickwire/tickwire/pkg/history"
)

// TestImportRejectsBadRowsKeepsGoodOnes: one bad row among good ones is rejected with its line
// number and reason and counted; every other row is stored.
func TestImportRejectsBadRowsKeepsGoodOnes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mangle func(string) string
		reason replay.RejectReason
		read   uint64 // events decoded: the over-precise row never is
	}{
		{"over-precise price", replaytest.OverPrecise, replay.RejectUndecodable, 99},
		{"5 MB field", replaytest.HugeTradeID, replay.RejectTooLarge, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines := replaytest.NDJSONLines(t, replaytest.Config{Instruments: 2, Events: 100})
			bad := replaytest.TradeLine(t, lines, 40)
			lines[bad] = tc.mangle(lines[bad])
			data := []byte(strings.Join(lines, "\n") + "\n")

			b := bustest.Connect(t, bustest.Start(t))
			r, err := history.Open(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			st, err := replay.Import(ctxT(t), r, b, nil)
			if err != nil {
				t.Fatalf("import failed instead of rejecting one row: %v (stats %+v)", err, st)
			}
			if st.Read != tc.read || st.Rejected != 1 || st.Published != 99 || st.Skipped != 0 {
				t.Fatalf("stats %+v; want read %d, 1 rejected, 99 published", st, tc.read)
			}
			if len(st.Rejections) != 1 {
				t.Fatalf("rejections %v; want one", st.Rejections)
			}
			rej := st.Rejections[0]
			if rej.Line != bad+1 || rej.Reason != tc.reason || rej.Err == nil {
				t.Fatalf("rejection %+v; want line %d, reason %s", rej, bad+1, tc.reason)
			}
			if s := rej.String(); !strings.HasPrefix(s, "line ") || len(s) > 400 {
				t.Fatalf("rejection text %q: want it to start with the line and stay short", s)
			}
			if st.RejectedBy[tc.reason] != 1 {
				t.Fatalf("rejected by reason %v", st.RejectedBy)
			}
			if n := bustest.StoredEvents(t, b); n != 99 {
				t.Fatalf("stored %d events; want the 99 good ones", n)
			}

			// A dry run finds the same row (the size check assumes NATS's default max_payload).
			r, _ = history.Open(bytes.NewReader(data))
			dry, err := replay.Import(ctxT(t), r, nil, nil)
			if err != nil || dry.Rejected != 1 || len(dry.Rejections) != 1 || dry.Rejections[0].Line != bad+1 {
				t.Fatalf("dry run: %+v, %v", dry, err)
			}
		})
	}
}

// TestImportRejectionsListBounded: a file of garbage keeps at most MaxListedRejections
// rejections in memory while counting all of them.
func TestImportRejectionsListBounded(t *testing.T) {
	var buf bytes.Buffer
	n := replay.MaxListedRejections + 50
	for range n {
		buf.WriteString(`{"instrument":"x:A","seq":"1.5"}` + "\n")
	}
	r, err := history.Open(&buf)
	if err != nil {
		t.Fatal(err)
	}
	st, err := replay.Import(ctxT(t), r, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Rejected != uint64(n) || len(st.Rejections) != replay.MaxListedRejections {
		t.Fatalf("rejected %d, listed %d; want %d and %d", st.Rejected, len(st.Rejections), n, replay.MaxListedRejections)
	}
	if last := st.Rejections[len(st.Rejections)-1]; last.Line != replay.MaxListedRejections {
		t.Fatalf("last listed rejection at line %d; want the first ones in file order", last.Line)
	}
}

// TestImportBinaryRecordNumbers: a binary file's rejections name the record.
func TestImportBinaryRecordNumbers(t *testing.T) {
	evs := replaytest.Events(t, replaytest.Config{Instruments: 2, Events: 20})
	var buf bytes.Buffer
	w := history.NewBinaryWriter(&buf)
	for i, ev := range evs {
		if i == 10 {
			ev.Seq = 0 // invalid: zero position
		}
		if err := w.Write(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := history.Open(&buf)
	if err != nil {
		t.Fatal(err)
	}
	st, err := replay.Import(ctxT(t), r, nil, nil)
	if err != nil || st.Rejected != 1 || len(st.Rejections) != 1 {
		t.Fatalf("%+v, %v", st, err)
	}
	if rej := st.Rejections[0]; rej.Record != 11 || rej.Line != 0 || rej.Reason != replay.RejectInvalid ||
		!strings.HasPrefix(rej.String(), "record 11: ") {
		t.Fatalf("rejection %+v (%s); want record 11, invalid", rej, rej)
	}
}
