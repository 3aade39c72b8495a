package capture_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/tickwire/tickwire/internal/source"
	"github.com/tickwire/tickwire/internal/source/capture"
	"github.com/tickwire/tickwire/internal/source/kraken"
	"github.com/tickwire/tickwire/internal/source/sourcetest"
)

// A recorded run reads back frame for frame, including frames that are not JSON.
func TestRecorderRoundTrip(t *testing.T) {
	frames := []source.Frame{
		{Conn: "1", RecvNs: 1_700_000_000_123456789, Data: []byte(`{"event":"heartbeat"}`)},
		{Conn: "1", RecvNs: 1_700_000_000_223456789, Data: []byte("not json\nwith a newline")},
		{Conn: "rest", RecvNs: 1_700_000_000_323456789, URL: "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000", Data: []byte(`{"lastUpdateId":1,"bids":[],"asks":[]}`)},
	}
	path := filepath.Join(t.TempDir(), "rec.ndjson")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	rec := capture.NewRecorder(f)
	for i := range frames {
		if err := rec.Record(&frames[i], "recv"); err != nil {
			t.Fatal(err)
		}
	}
	if err := rec.Record(&source.Frame{Conn: "1", RecvNs: 5, Data: []byte(`{"event":"subscribe"}`)}, "send"); err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	r, closeFn, err := capture.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	for i := 0; ; i++ {
		got, err := r.Next()
		if errors.Is(err, io.EOF) {
			if i != 4 {
				t.Fatalf("read %d records", i)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if i == 3 {
			if got.Dir != "send" {
				t.Errorf("record 4 dir %q", got.Dir)
			}
			continue
		}
		want := frames[i]
		if got.Conn != want.Conn || got.TsNs != want.RecvNs || got.URL != want.URL || !bytes.Equal(got.Msg, want.Data) || got.Dir != "recv" {
			t.Errorf("record %d = %+v, want %+v", i, got, want)
		}
	}
}

// A malformed line is counted and the next frame is replayed normally.
func TestReplayBadLine(t *testing.T) {
	lines := `{"local_ts":1,"msg":[336,{"as":[["1.0","1.0","1.0"]],"bs":[["0.5","1.0","1.0"]]},"book-10","XBT/USD"]}
{"local_ts":2,"msg":
{"local_ts":3,"msg":[336,{"a":[["1.0","2.0","2.0"]],"c":"2129425687"},"book-10","XBT/USD"]}
`
	h, _ := kraken.New(kraken.Config{Version: 1}, nil)
	src := capture.New(h, capture.NewLineReader(bytes.NewBufferString(lines)), capture.Config{}, nil)
	var col sourcetest.Collector
	if err := src.Run(context.Background(), col.Emit); err != nil {
		t.Fatal(err)
	}
	st := h.Stats().Snapshot()
	if st.Rejects[source.ReasonParse] != 1 || len(col.Events) != 3 {
		t.Fatalf("%s; events %v", st, col.Events)
	}
	if u := col.Events[2].GetBook(); u == nil || u.Snapshot || u.Asks[0].Size != 20 {
		t.Errorf("update after the bad line: %v (%s)", col.Events[2], st)
	}
}
