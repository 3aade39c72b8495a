package capture_test

import (
	"errors"
	"testing"

	"github.com/tickwire/tickwire/internal/source/capture"
)

// FuzzParseLine: any line parses or fails with capture.ErrRecord; seeds are lines of the captures.
func FuzzParseLine(f *testing.F) {
	f.Add([]byte(`{"local_ts":1618678132.83097,"conn":"KRAKEN.ws.48","dir":"send","msg":{"event":"subscribe"}}`))
	f.Add([]byte(`{"local_ts_ns":1723161253937085768,"msg":{"stream":"btcusdt@bookTicker","data":{}}}`))
	f.Add([]byte(`{"local_ts_ns":1,"msg_text":"not json"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		rec, err := capture.ParseLine(line, 7)
		if err != nil {
			if !errors.Is(err, capture.ErrRecord) {
				t.Fatalf("error %v is not capture.ErrRecord", err)
			}
			return
		}
		if rec.Line != 7 || len(rec.Msg) == 0 {
			t.Fatalf("record %+v", rec)
		}
	})
}
