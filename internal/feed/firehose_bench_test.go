package feed

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lxzan/gws"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tickwire/tickwire/internal/auth"
	"github.com/tickwire/tickwire/internal/profile"
	"github.com/tickwire/tickwire/internal/source/synthetic"
	"github.com/tickwire/tickwire/internal/testwait"
	"github.com/tickwire/tickwire/pkg/market"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// firehoseClient counts what one binary connection receives: frames, and the snapshots and
// deltas in them (walking only the frames' top level).
type firehoseClient struct {
	gws.BuiltinEventHandler
	frames, snapshots, deltas, other atomic.Int64
	closed                           atomic.Bool
	closeErr                         atomic.Value
}

func (c *firehoseClient) OnClose(_ *gws.Conn, err error) {
	c.closeErr.Store(err)
	c.closed.Store(true)
}

func (c *firehoseClient) OnMessage(_ *gws.Conn, m *gws.Message) {
	defer m.Close()
	c.frames.Add(1)
	b := m.Bytes()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return
		}
		b = b[n:]
		if num != 1 || typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return
			}
			b = b[n:]
			continue
		}
		msg, n := protowire.ConsumeBytes(b)
		if n < 0 || len(msg) == 0 {
			return
		}
		b = b[n:]
		switch msg[0] >> 3 { // the ServerMessage's one field: 1 snapshot, 2 delta
		case 1:
			c.snapshots.Add(1)
		case 2:
			c.deltas.Add(1)
		default:
			c.other.Add(1)
		}
	}
}

// BenchmarkFirehose measures the feed without NATS delivering everything to one connection
// (issue #6 target 5): b.N events of a 1,000-instrument synthetic market, each decoded from its
// protobuf bytes as the bus does, dispatched to the owners, applied (two depth tiers), encoded
// once, queued and written to one WebSocket client over loopback that subscribed to every
// channel of every instrument at depth 10. It reports delivered updates/s (end to end, the
// last update received) and the process's CPU per update, which includes the client reading
// in the same process. The queue limits are raised so that nothing is conflated: the rate is
// how fast the client receives everything. Run it with a fixed count: -benchtime 200000x.
// BenchmarkFirehose runs with authentication off and on (a token whose grant covers every
// instrument by a venue pattern and every channel): entitlements are checked on Subscribe only,
// so the two must not differ per delivered update (docs/BENCHMARKS.md, "Entitlements").
func BenchmarkFirehose(b *testing.B) {
	for _, auth := range []bool{false, true} {
		name := "auth=off"
		if auth {
			name = "auth=on"
		}
		b.Run(name, func(b *testing.B) { firehose(b, auth) })
	}
}

func firehose(b *testing.B, withAuth bool) {
	const instruments = 1000
	ctx := context.Background()
	mkt, err := synthetic.NewMarket(synthetic.Config{Instruments: instruments, Seed: 11})
	if err != nil {
		b.Fatal(err)
	}
	// Queues large enough never to conflate: the client receives everything, and the time it
	// takes is the pipeline's capacity (a slower reader shows as a lower rate, not as loss).
	cfg := Config{}
	cfg.Conn.SoftLimit, cfg.Conn.HardLimit = 1<<30, 2<<30
	var token string
	if withAuth {
		secret := auth.NewSecret()
		keyFile := filepath.Join(b.TempDir(), "hs256.key")
		if err := os.WriteFile(keyFile, secret, 0o600); err != nil {
			b.Fatal(err)
		}
		v, err := auth.New(auth.Config{HS256KeyFile: keyFile}, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		cfg.Auth.Verifier = v
		if token, err = auth.MintHS256(secret, auth.MintOptions{Subject: "bench", TTL: time.Hour,
			Grant: auth.Grant{Instruments: []string{"synthetic:*"}}}); err != nil {
			b.Fatal(err)
		}
	}
	srv, err := New(cfg, nil, prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = srv.Shutdown(ctx) }()
	ts := httptest.NewServer(srv.Handler(nil))
	defer ts.Close()

	// Shadow states count the updates the client should get.
	mcfg := srv.cfg.Market
	depthIndex := mcfg.DepthIndex(10)
	shadow := map[string]*market.State{}
	seqs := map[string]uint64{}
	clock := int64(1_800_000_000e9)
	next := func() (*pb.Event, int) {
		clock += 20_000 // 50,000 events/s of market time
		ev := mkt.Next(clock)
		seqs[ev.Instrument]++
		ev.Epoch, ev.Seq, ev.IngestTimeNs = 1, seqs[ev.Instrument], clock
		st := shadow[ev.Instrument]
		if st == nil {
			st = market.NewState(ev.Instrument, mcfg)
			shadow[ev.Instrument] = st
		}
		res, err := st.Apply(ev)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for _, d := range []*pb.Delta{res.Quote, res.Trades, res.Candles, res.Stats} {
			if d != nil {
				n++
			}
		}
		if len(res.Book) > 0 && res.Book[depthIndex] != nil && !res.BookReset {
			n++
		}
		return ev, n
	}
	for range 3 * instruments { // reference data and a book for every instrument
		ev, _ := next()
		if err := srv.Dispatch(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
	if err := srv.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	srv.SetReady(true)

	cl := &firehoseClient{}
	header := http.Header{}
	header.Set("Sec-WebSocket-Protocol", wire.SubprotocolProto)
	if token != "" {
		header.Set("Authorization", "Bearer "+token)
	}
	conn, _, err := gws.NewClient(cl, &gws.ClientOption{Addr: "ws" + ts.URL[len("http"):] + "/ws", RequestHeader: header,
		ReadMaxPayloadSize: 64 << 20, ReadBufferSize: 256 << 10})
	if err != nil {
		b.Fatal(err)
	}
	go conn.ReadLoop()
	defer func() { _ = conn.WriteClose(1000, nil) }()
	var ids []string
	for _, info := range srv.Instruments() {
		ids = append(ids, info.Id)
	}
	cmd, err := proto.Marshal(&pb.ClientMessage{Id: 1, Command: &pb.ClientMessage_Subscribe{Subscribe: &pb.Subscribe{
		Instruments: ids, Depth: 10}}})
	if err != nil {
		b.Fatal(err)
	}
	if err := conn.WriteMessage(gws.OpcodeBinary, cmd); err != nil {
		b.Fatal(err)
	}
	testwait.For(b, 20*time.Second, "the snapshots of every instrument", func() bool { return cl.snapshots.Load() == 5*instruments })

	frames := make([][]byte, b.N)
	want := int64(0)
	for i := range frames {
		ev, n := next()
		want += int64(n)
		if frames[i], err = proto.Marshal(ev); err != nil {
			b.Fatal(err)
		}
	}
	framesBefore, deltasBefore, snapsBefore := cl.frames.Load(), cl.deltas.Load(), cl.snapshots.Load()
	cpu0 := profile.CPUTime()
	b.ResetTimer()
	start := time.Now()
	for _, raw := range frames {
		ev := &pb.Event{}
		if err := proto.Unmarshal(raw, ev); err != nil {
			b.Fatal(err)
		}
		if err := srv.Dispatch(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
	testwait.For(b, 60*time.Second, "every update", func() bool { return cl.deltas.Load()-deltasBefore >= want || cl.closed.Load() })
	elapsed := time.Since(start)
	b.StopTimer()
	cpu := profile.CPUTime() - cpu0
	got := cl.deltas.Load() - deltasBefore
	if resyncs := cl.snapshots.Load() - snapsBefore; resyncs != 0 || got != want {
		b.Fatalf("client got %d of %d updates and %d snapshots (conflated?), closed %v", got, want, resyncs, cl.closeErr.Load())
	}
	b.ReportMetric(float64(got)/elapsed.Seconds(), "updates/s")
	b.ReportMetric(float64(got)/float64(cl.frames.Load()-framesBefore), "updates/frame")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(got), "cpu-ns/update")
	b.ReportMetric(float64(got)/float64(b.N), "updates/event")
}
