package loadgen

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tickwire/tickwire/internal/fanout"
	"github.com/tickwire/tickwire/internal/feed"
)

// TestSoakInProcess runs a short soak against an in-process feed whose pings come every 100 ms,
// with SDK clients whose write timeout is 100 ms: a write deadline that outlived its command
// would fail the first pong after it and drop every client within a second. None may
// reconnect, and every expected update arrives once.
func TestSoakInProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	cfg := SoakConfig{InProcess: true, Clients: 20, Instruments: 10, Subscribers: 4, Rate: 300,
		Duration: 3 * time.Second, Interval: time.Second, HeartbeatTimeout: time.Second, WriteTimeout: 100 * time.Millisecond,
		InProcessFeed: feed.Config{MaxConnsPerIP: -1, ReadTimeout: 2 * time.Second,
			Conn: fanout.Config{PingInterval: 100 * time.Millisecond}}}
	var progress strings.Builder
	rep, err := Soak(context.Background(), cfg, nil, &progress)
	if rep != nil {
		var b strings.Builder
		rep.WriteTable(&b)
		t.Log("\n" + progress.String() + b.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	tot := rep.Totals
	if !rep.OK || tot.Reconnects != 0 || tot.Connects != 20 || tot.HeartbeatTimeouts != 0 || tot.WriteTimeouts != 0 {
		t.Errorf("verdict %q, totals %+v, lost %v", rep.Verdict, tot, rep.Disconnects)
	}
	if tot.Expected == 0 || tot.Delivered != tot.Expected || rep.StreamsSynced != 20*2*3 {
		t.Errorf("delivered %d of %d, %d streams synced", tot.Delivered, tot.Expected, rep.StreamsSynced)
	}
	if len(rep.Rows) != 3 || rep.Latency.Count == 0 {
		t.Errorf("%d rows, latency %+v", len(rep.Rows), rep.Latency)
	}
}
