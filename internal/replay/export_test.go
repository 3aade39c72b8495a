package replay_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/bus/bustest"
	"github.com/tickwire/tickwire/internal/replay"
	"github.com/tickwire/tickwire/internal/replay/replaytest"
	"github.com/tickwire/tickwire/pkg/history"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func export(t *testing.T, b *bus.Bus, win replay.Window, f history.Format) ([]byte, replay.ExportStats) {
	t.Helper()
	var buf bytes.Buffer
	w, err := history.NewWriter(&buf, f)
	if err != nil {
		t.Fatal(err)
	}
	st, err := replay.Export(ctxT(t), replay.BusSource{Bus: b}, win, w)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), st
}

func importBytes(t *testing.T, b *bus.Bus, data []byte) replay.ImportStats {
	t.Helper()
	r, err := history.Open(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var store replay.Store
	if b != nil {
		store = b
	}
	st, err := replay.Import(ctxT(t), r, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func inWindow(evs []*pb.Event, win replay.Window) []*pb.Event {
	var out []*pb.Event
	for _, ev := range evs {
		if tm := replay.EventTime(ev); tm >= win.From.UnixNano() && tm <= win.To.UnixNano() {
			if len(win.Instruments) == 0 || contains(win.Instruments, ev.Instrument) {
				out = append(out, ev)
			}
		}
	}
	return out
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestExportImportExport: a window exported from a store, imported into a fresh store and
// exported again gives the same bytes, in both formats; importing twice stores once.
func TestExportImportExport(t *testing.T) {
	srcBus := bustest.Connect(t, bustest.Start(t))
	stored := replaytest.Fill(t, srcBus, replaytest.Config{Instruments: 5, Events: 3000})
	win := replay.Window{From: replaytest.T0.Add(500 * time.Millisecond), To: replaytest.T0.Add(2500 * time.Millisecond)}
	want := inWindow(stored, win)

	for _, f := range []history.Format{history.NDJSON, history.Binary} {
		t.Run(f.String(), func(t *testing.T) {
			first, st := export(t, srcBus, win, f)
			if st.Written != uint64(len(want)) {
				t.Fatalf("exported %d events, want %d", st.Written, len(want))
			}
			r, _ := history.Open(bytes.NewReader(first))
			i := 0
			for ev, err := range history.All(r) {
				if err != nil {
					t.Fatal(err)
				}
				if !proto.Equal(ev, want[i]) {
					t.Fatalf("event %d: %v, want %v", i, ev, want[i])
				}
				i++
			}

			dst := bustest.Connect(t, bustest.Start(t))
			ist := importBytes(t, dst, first)
			if ist.Read != uint64(len(want)) || ist.Published != ist.Read || ist.Rejected != 0 || ist.Skipped != 0 {
				t.Fatalf("import: %+v", ist)
			}
			again, _ := export(t, dst, win, f)
			if !bytes.Equal(first, again) {
				t.Fatal("export -> import -> export is not byte-identical")
			}
			// Importing again stores nothing new.
			ist = importBytes(t, dst, first)
			if ist.Published != 0 || ist.Skipped != uint64(len(want)) {
				t.Fatalf("second import: %+v", ist)
			}
			if n := bustest.StoredEvents(t, dst); n != len(want) {
				t.Fatalf("store holds %d events after two imports, want %d", n, len(want))
			}
		})
	}
}

func TestExportInstruments(t *testing.T) {
	b := bustest.Connect(t, bustest.Start(t))
	stored := replaytest.Fill(t, b, replaytest.Config{Instruments: 5, Events: 1000})
	win := replay.Window{From: replaytest.T0, To: replaytest.T0.Add(time.Second),
		Instruments: []string{stored[0].Instrument, stored[2].Instrument}}
	data, st := export(t, b, win, history.NDJSON)
	if want := inWindow(stored, win); st.Written != uint64(len(want)) || len(want) == 0 {
		t.Fatalf("wrote %d, want %d", st.Written, len(want))
	}
	if n := strings.Count(string(data), "\n"); uint64(n) != st.Written {
		t.Fatalf("%d lines", n)
	}
	if _, err := replay.Export(ctxT(t), replay.BusSource{Bus: b}, replay.Window{From: win.From, To: win.To, Instruments: []string{"bad"}}, history.NewNDJSONWriter(&bytes.Buffer{})); err == nil {
		t.Fatal("bad instrument accepted")
	}
}

// TestImportValidates: bad events are counted and skipped; the rest is published.
func TestImportValidates(t *testing.T) {
	good := replaytest.Events(t, replaytest.Config{Instruments: 2, Events: 200})
	var buf bytes.Buffer
	w := history.NewNDJSONWriter(&buf)
	for i, ev := range good {
		_ = w.Write(ev)
		if i == 50 {
			_ = w.Write(&pb.Event{Instrument: ev.Instrument, Epoch: ev.Epoch, Seq: ev.Seq}) // stale and bodiless
			_ = w.Flush()
			buf.WriteString("{\"instrument\":\"x:A\",\"bogus\":true}\n") // undecodable line
		}
		if i == 60 {
			_ = w.Write(&pb.Event{Instrument: "no-colon", Epoch: 1, Seq: 1, Body: &pb.Event_Quote{Quote: &pb.Quote{}}})
			_ = w.Write(&pb.Event{Instrument: ev.Instrument, Epoch: ev.Epoch, Seq: 9999, Body: &pb.Event_Trade{Trade: &pb.Trade{Price: -1, Size: 1}}})
		}
		if i == 50 || i == 60 {
			_ = w.Flush()
		}
	}
	_ = w.Close()

	dry := importBytes(t, nil, buf.Bytes())
	if dry.Read != 203 || dry.Rejected != 4 || dry.Published != 0 {
		t.Fatalf("dry run: %+v", dry)
	}
	b := bustest.Connect(t, bustest.Start(t))
	st := importBytes(t, b, buf.Bytes())
	if st.Read != 203 || st.Rejected != 4 || st.Published != 200 {
		t.Fatalf("import: %+v", st)
	}
}
