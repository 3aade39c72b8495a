package binance

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/tickwire/tickwire/internal/source"
	"github.com/tickwire/tickwire/internal/source/sourcetest"
)

// A frame of an event type the handler does not handle is counted (dropped, unknown_channel)
// and its type named in the log; a subscription result is not. The frames are written by hand
// from Binance's documented shapes (stream events {"e":..,"E":..,"s":..}, the combined-stream
// envelope {"stream":..,"data":..}, the result {"result":null,"id":1}); "madeUpEvent" and the
// "@madeup" stream are made up.
func TestUnknownChannel(t *testing.T) {
	for _, tc := range []struct {
		market Market
		frames []string
		names  []string
	}{
		{Spot, []string{
			`{"result":null,"id":1}`,
			`{"e":"kline","E":1672515782136,"s":"BNBBTC","k":{"t":1672515780000,"T":1672515839999,"s":"BNBBTC","i":"1m","o":"0.0010","c":"0.0020","h":"0.0025","l":"0.0015","v":"1000","x":false}}`,
			`{"e":"madeUpEvent","E":1672515782136,"s":"BTCUSDT"}`,
			`{"stream":"btcusdt@madeup","data":{"x":1}}`,
		}, []string{"kline", "madeUpEvent", "btcusdt@madeup"}},
		{Futures, []string{
			`{"result":null,"id":2}`,
			`{"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSDT","p":"11794.15000000","i":"11784.62659091","P":"11784.25641265","r":"0.00038167","T":1562306400000}`,
			`{"stream":"btcusdt@madeup","data":{"e":"madeUpEvent","E":1,"s":"BTCUSDT"}}`,
			`{"stream":"btcusdt@madeup","data":{"x":1}}`,
		}, []string{"markPriceUpdate", "madeUpEvent", "btcusdt@madeup"}},
	} {
		t.Run(string(tc.market), func(t *testing.T) {
			var logs bytes.Buffer
			h, err := New(Config{Market: tc.market}, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
			if err != nil {
				t.Fatal(err)
			}
			var col sourcetest.Collector
			for i, d := range tc.frames {
				if err := h.Handle(&source.Frame{Conn: "1", N: int64(i + 1), Data: []byte(d)}, col.Emit); err != nil {
					t.Fatal(err)
				}
			}
			st := h.Stats().Snapshot()
			if st.Dropped[source.ReasonUnknownChannel] != int64(len(tc.frames)-1) || len(st.Rejects) != 0 || len(col.Events) != 0 {
				t.Errorf("%s; events %d", st, len(col.Events))
			}
			for _, n := range tc.names {
				if !strings.Contains(logs.String(), "channel="+n) {
					t.Errorf("channel %q not named in the log:\n%s", n, logs.String())
				}
			}
		})
	}
}

// The cryptofeed capture holds two kline frames (a channel the handler does not handle): they
// are counted, and nothing else is.
func TestCaptureSpotCryptofeedUnknown(t *testing.T) {
	dir := "binance-spot-2021-cryptofeed"
	res := replay(t, Spot, sourcetest.Path(t, dir, "ws_frames.ndjson"), sourcetest.Path(t, dir, "rest_depth_snapshots.ndjson"))
	if n := res.stats.Dropped[source.ReasonUnknownChannel]; n != 2 {
		t.Errorf("unknown_channel %d, want 2 (the kline frames); %s", n, res.stats)
	}
}
