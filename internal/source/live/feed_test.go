package live_test

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/lxzan/gws"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickwire/tickwire/internal/bus/bustest"
	"github.com/tickwire/tickwire/internal/feed"
	"github.com/tickwire/tickwire/internal/ingest"
	"github.com/tickwire/tickwire/internal/source/fakeexchange"
	"github.com/tickwire/tickwire/internal/source/kraken"
	"github.com/tickwire/tickwire/internal/source/live"
	"github.com/tickwire/tickwire/internal/testwait"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// feedClient is a bare protocol client of the feed.
type feedClient struct {
	gws.BuiltinEventHandler
	frames chan []byte
}

func (c *feedClient) OnMessage(_ *gws.Conn, m *gws.Message) {
	c.frames <- append([]byte(nil), m.Bytes()...)
	m.Close()
}

// TestFaultResyncsOneInstrument runs the whole path: fake Kraken -> live adapter -> ingest
// pipeline -> embedded NATS -> feed -> WebSocket client. One update of XMR/USD is dropped by the
// venue: the adapter's checksum fails, it resyncs that pair, ingest starts a new epoch for it,
// and the client gets a fresh book snapshot of XMR/USD and none of SC/EUR.
func TestFaultResyncsOneInstrument(t *testing.T) {
	frames, changing := krakenFrames(t)
	xmr := changing["XMR/USD"]
	fake, err := fakeexchange.NewKrakenV1(fakeexchange.Config{Frames: frames, Hold: true, WaitResync: true,
		Faults: []fakeexchange.Fault{{At: xmr[len(xmr)/2], Kind: fakeexchange.Drop}}})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()

	nats := bustest.Start(t)
	b := bustest.Connect(t, nats)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	h, err := kraken.New(kraken.Config{Version: 1, Depth: 1000, Symbols: []string{"XMR/USD", "SC/EUR"}, Channels: []string{"book"}, URL: fake.URL()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	src := live.New(h, fastConfig(), nil)
	p, err := ingest.New(src, b, b, ingest.Config{}, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	b.SetPublishErrorHandler(p.OnPublishError)
	pipeDone := make(chan error, 1)
	go func() { pipeDone <- p.Run(ctx) }()

	srv, err := feed.New(feed.Config{}, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	svc, err := feed.NewService(srv, b, "127.0.0.1:0", srv.Handler(feed.FallbackUI()), nil)
	if err != nil {
		t.Fatal(err)
	}
	feedDone := make(chan error, 1)
	go func() { feedDone <- svc.Run(ctx, 5*time.Second) }()
	defer func() {
		cancel()
		if err := <-pipeDone; err != nil {
			t.Errorf("pipeline: %v", err)
		}
		if err := <-feedDone; err != nil {
			t.Errorf("feed: %v", err)
		}
	}()

	// Both books are published (InstrumentInfo + snapshot each) while the venue holds.
	testwait.For(t, 10*time.Second, "both snapshots published", func() bool { return h.Stats().Snapshot().Events >= 4 })

	c := &feedClient{frames: make(chan []byte, 1<<14)}
	conn, _, err := gws.NewClient(c, &gws.ClientOption{Addr: "ws://" + svc.Addr().String() + "/ws",
		RequestHeader: http.Header{"Sec-WebSocket-Protocol": {wire.SubprotocolProto}}, ReadMaxPayloadSize: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.WriteClose(1000, nil)
	go conn.ReadLoop()
	subscribe := func(ids ...string) {
		sub, err := wire.EncodeClientMessage(&pb.ClientMessage{Id: 1, Command: &pb.ClientMessage_Subscribe{Subscribe: &pb.Subscribe{
			Instruments: ids, Channels: []pb.Channel{pb.Channel_CHANNEL_BOOK}, Depth: 10}}}, wire.SubprotocolProto)
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.WriteMessage(gws.OpcodeBinary, sub); err != nil {
			t.Fatal(err)
		}
	}
	// One command per instrument: a command's unknown instruments get one error naming only the
	// first, and the retry below asks again for the instrument it names.
	subscribe("kraken:XMR/USD")
	subscribe("kraken:SC/EUR")

	handles := map[uint32]string{}
	snapshots := map[string][]pb.SnapshotReason{}
	deltas := map[string]int{}
	read := func(d time.Duration) bool {
		select {
		case fr := <-c.frames:
			var f pb.ServerFrame
			if err := wire.DecodeFrame(fr, wire.SubprotocolProto, &f); err != nil {
				t.Fatal(err)
			}
			for _, m := range f.Messages {
				switch k := m.Kind.(type) {
				case *pb.ServerMessage_Subscribed:
					handles[k.Subscribed.Handle] = k.Subscribed.Info.GetId()
				case *pb.ServerMessage_Snapshot:
					id := handles[k.Snapshot.Handle]
					snapshots[id] = append(snapshots[id], k.Snapshot.Reason)
				case *pb.ServerMessage_Delta:
					deltas[handles[k.Delta.Handle]]++
				case *pb.ServerMessage_Error:
					if k.Error.GetCode() != pb.ErrorCode_ERROR_CODE_UNKNOWN_INSTRUMENT {
						t.Fatalf("feed error: %v", k.Error)
					}
					// The feed has not consumed the instrument's first events yet: ask again.
					time.Sleep(20 * time.Millisecond)
					subscribe(k.Error.GetInstrument())
				}
			}
			return true
		case <-time.After(d):
			return false
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(snapshots["kraken:XMR/USD"]) < 1 || len(snapshots["kraken:SC/EUR"]) < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("no subscribe snapshots: %v", snapshots)
		}
		read(100 * time.Millisecond)
	}

	fake.Release()
	testwait.For(t, 20*time.Second, "replay and resync", func() bool {
		return fake.Done() && h.Stats().Snapshot().Resyncs["kraken:XMR/USD"] == 1
	})
	for read(500 * time.Millisecond) { // drain until quiet
	}
	t.Logf("snapshots %v, deltas %v; source %s", snapshots, deltas, h.Stats().Snapshot())
	if got := snapshots["kraken:XMR/USD"]; len(got) != 2 || got[1] != pb.SnapshotReason_SNAPSHOT_REASON_NEW_EPOCH {
		t.Errorf("XMR/USD snapshots %v: want the subscribe snapshot, then one for the new epoch", got)
	}
	if got := snapshots["kraken:SC/EUR"]; len(got) != 1 {
		t.Errorf("SC/EUR snapshots %v: want only the subscribe snapshot", got)
	}
	if deltas["kraken:XMR/USD"] == 0 || deltas["kraken:SC/EUR"] == 0 {
		t.Errorf("deltas %v", deltas)
	}
}
