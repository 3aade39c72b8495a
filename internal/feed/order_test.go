package feed

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickwire/tickwire/internal/replay/replaytest"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// TestSubscribeSeesQueuedEvents: a subscription is answered from the state after every event
// the feed had already taken in, even while those still wait in the owner's queue. Otherwise a
// feed that just caught up with the store would answer from the past: a resuming client with a
// newer position would get a snapshot older than what it holds, and see deltas twice.
func TestSubscribeSeesQueuedEvents(t *testing.T) {
	for round := range 3 {
		srv, err := New(Config{Owners: 1, OwnerQueue: 1 << 16}, nil, prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(srv.Handler(nil))
		evs := replaytest.Events(t, replaytest.Config{Instruments: 1, Events: 30000})
		ctx := context.Background()
		// The first event makes the instrument known; the rest wait in the owner's queue (or
		// are being applied) when the subscription comes.
		if err := srv.Dispatch(ctx, evs[0]); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "the instrument", func() bool { return srv.hub.known(evs[0].Instrument) })
		srv.SetReady(true)
		c := mustDial(t, "ws"+strings.TrimPrefix(hs.URL, "http")+"/ws", wire.SubprotocolProto)
		for _, ev := range evs[1:] {
			if err := srv.Dispatch(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		last := evs[len(evs)-1].Seq
		c.send(subscribe(1, []string{evs[0].Instrument}, 10, pb.Channel_CHANNEL_STATS))
		var snap *pb.Snapshot
		for snap == nil {
			for _, m := range c.next(10 * time.Second) {
				if s := m.GetSnapshot(); s != nil {
					snap = s
				}
			}
		}
		if snap.Seq != last {
			t.Fatalf("round %d: snapshot at seq %d, but events up to %d were taken in before the subscription", round, snap.Seq, last)
		}
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = srv.Shutdown(sctx)
		cancel()
		hs.Close()
	}
}
