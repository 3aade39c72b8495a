package coinbase

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/tickwire/tickwire/internal/source"
	"github.com/tickwire/tickwire/internal/source/sourcetest"
)

// A frame of a type (Exchange) or channel (Advanced Trade) the handler does not handle is
// counted (dropped, unknown_channel) and named in the log; subscription acks and status are
// not. The frames are written by hand from Coinbase's documented shapes (Exchange
// {"type":..,"product_id":..}; Advanced Trade {"channel","client_id","timestamp",
// "sequence_num","events"}); "madeup" is made up.
func TestUnknownChannel(t *testing.T) {
	for _, tc := range []struct {
		feed    Feed
		frames  []string
		unknown int
		names   []string
	}{
		{Exchange, []string{
			`{"type":"subscriptions","channels":[{"name":"level2","product_ids":["BTC-USD"]}]}`,
			`{"type":"status","products":[],"currencies":[]}`,
			// full channel "received" (documented, not handled here).
			`{"type":"received","time":"2014-11-07T08:19:27.028459Z","product_id":"BTC-USD","sequence":10,"order_id":"d50ec984-77a8-460a-b958-66f114b0de9b","size":"1.34","price":"502.1","side":"buy","order_type":"limit"}`,
			`{"type":"madeup","product_id":"BTC-USD"}`,
		}, 2, []string{"received", "madeup"}},
		{Advanced, []string{
			`{"channel":"subscriptions","client_id":"","timestamp":"2023-02-09T20:29:49.753424311Z","sequence_num":0,"events":[{"subscriptions":{"level2":["BTC-USD"]}}]}`,
			`{"channel":"status","client_id":"","timestamp":"2023-02-09T20:29:49.753424311Z","sequence_num":1,"events":[{"type":"snapshot","products":[]}]}`,
			// candles (documented, not handled here).
			`{"channel":"candles","client_id":"","timestamp":"2023-06-09T20:19:35.39625135Z","sequence_num":2,"events":[{"type":"snapshot","candles":[{"start":"1688998200","high":"1867.72","low":"1865.63","open":"1867.38","close":"1866.81","volume":"0.20269406","product_id":"ETH-USD"}]}]}`,
			`{"channel":"madeup","client_id":"","timestamp":"2023-02-09T20:32:50.714964855Z","sequence_num":3,"events":[]}`,
		}, 2, []string{"candles", "madeup"}},
	} {
		t.Run(string(tc.feed), func(t *testing.T) {
			var logs bytes.Buffer
			h, err := New(Config{Feed: tc.feed}, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
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
			if st.Dropped[source.ReasonUnknownChannel] != int64(tc.unknown) || len(st.Rejects) != 0 || len(col.Events) != 0 {
				t.Errorf("%s; events %d", st, len(col.Events))
			}
			if tc.feed == Advanced && st.Checks["sequence_num ok"] != 3 {
				t.Errorf("sequence_num of unknown channels still checked: %v", st.Checks)
			}
			for _, n := range tc.names {
				if !strings.Contains(logs.String(), "channel="+n) {
					t.Errorf("channel %q not named in the log:\n%s", n, logs.String())
				}
			}
		})
	}
}
