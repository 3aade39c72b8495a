package bus_test

import (
	"testing"
	"time"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/bus/bustest"
)

// TestSnapshotRequestsFeedToIngest: as their own NATS users, a feed's snapshot request reaches
// ingest with the instrument id intact (any id a subject can carry), and ingest may not send one.
func TestSnapshotRequestsFeedToIngest(t *testing.T) {
	s := bustest.Start(t)
	feed := bustest.ConnectAs(t, s, string(bus.RoleFeed))
	ingest := bustest.ConnectAs(t, s, string(bus.RoleIngest))
	got := make(chan string, 8)
	stop, err := ingest.ServeSnapshotRequests(func(instrument string) { got <- instrument })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for _, id := range []string{"coinbase:BTC-USD", "kraken:XBT/USD", "binance-futures:BTCUSDT"} {
		if err := feed.RequestSnapshot(id); err != nil {
			t.Fatal(err)
		}
		select {
		case g := <-got:
			if g != id {
				t.Fatalf("ingest got a request for %q, want %q", g, id)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no request for %s reached ingest", id)
		}
	}
	// Ingest's own request is refused by the server's permissions and never delivered.
	_ = ingest.RequestSnapshot("x:FROM-INGEST")
	select {
	case g := <-got:
		t.Fatalf("ingest's own request delivered: %s", g)
	case <-time.After(300 * time.Millisecond):
	}
	if err := feed.RequestSnapshot("not an id"); err == nil {
		t.Fatal("a request for an invalid id was sent")
	}
}
