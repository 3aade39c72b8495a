package kraken

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/tickwire/tickwire/internal/source"
	"github.com/tickwire/tickwire/internal/source/sourcetest"
)

// unknownChannelCase runs frames through a handler of version v and checks that exactly the
// ones on an unknown channel are counted (dropped, unknown_channel), nothing is rejected or
// emitted, and each unknown channel is named in the log.
func unknownChannelCase(t *testing.T, v int, frames []string, unknown int, names ...string) {
	t.Helper()
	var logs bytes.Buffer
	h, err := New(Config{Version: v}, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	var col sourcetest.Collector
	for i, d := range frames {
		if err := h.Handle(&source.Frame{Conn: "1", N: int64(i + 1), Data: []byte(d)}, col.Emit); err != nil {
			t.Fatal(err)
		}
	}
	st := h.Stats().Snapshot()
	if st.Dropped[source.ReasonUnknownChannel] != int64(unknown) || len(st.Rejects) != 0 || len(col.Events) != 0 {
		t.Errorf("v%d: %s; events %d; want %d unknown_channel drops and nothing else", v, st, len(col.Events), unknown)
	}
	for _, n := range names {
		if !strings.Contains(logs.String(), "channel="+n) {
			t.Errorf("v%d: channel %q not named in the log:\n%s", v, n, logs.String())
		}
	}
}

// A frame on a channel the handler does not handle is counted and named; control frames are
// not. The frames are written by hand from Kraken's documented shapes (v1: array frames
// [channelID, payload, channelName, pair] and event objects; v2: {"channel","type","data"}
// and {"method",...} acks), with made-up channel and event names where marked.
func TestUnknownChannelV1(t *testing.T) {
	unknownChannelCase(t, 1, []string{
		`{"connectionID":1,"event":"systemStatus","status":"online","version":"1.9.1"}`,
		`{"channelID":336,"channelName":"book-10","event":"subscriptionStatus","pair":"XBT/USD","status":"subscribed","subscription":{"depth":10,"name":"book"}}`,
		`{"event":"heartbeat"}`,
		`{"event":"pong","reqid":1}`,
		// v1 "spread" (documented, not handled here).
		`[0,[["5698.40000","5700.00000","1542057299.545897","1.01234567","0.98765432"]],"spread","XBT/USD"]`,
		// made up: a channel and an event Kraken does not have.
		`[7,{"x":"1"},"madeup-5","XBT/USD"]`,
		`{"event":"madeUpEvent"}`,
	}, 3, "spread", "madeup-5", "madeUpEvent")
}

func TestUnknownChannelV2(t *testing.T) {
	unknownChannelCase(t, 2, []string{
		`{"channel":"status","type":"update","data":[{"version":"2.0.0","system":"online","api_version":"v2","connection_id":1}]}`,
		`{"method":"subscribe","result":{"channel":"book","symbol":"BTC/USD","depth":10,"snapshot":true},"success":true,"time_in":"2023-09-25T09:04:31.742599Z","time_out":"2023-09-25T09:04:31.742648Z"}`,
		`{"channel":"heartbeat"}`,
		`{"method":"pong","time_in":"2023-09-25T09:04:31.742599Z","time_out":"2023-09-25T09:04:31.742648Z"}`,
		// v2 "ohlc" (documented, not handled here).
		`{"channel":"ohlc","type":"update","timestamp":"2023-10-04T16:26:30.524394914Z","data":[{"symbol":"MATIC/USD","open":0.5624,"high":0.5628,"low":0.5622,"close":0.5627,"trades":12,"volume":30927.68066226,"vwap":0.5626,"interval_begin":"2023-10-04T16:25:00.000000000Z","interval":5}]}`,
		// made up.
		`{"channel":"madeup","type":"update","data":[{"symbol":"BTC/USD"}]}`,
	}, 2, "ohlc", "madeup")
}
