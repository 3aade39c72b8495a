package feed

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lxzan/gws"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/bus/bustest"
	"github.com/tickwire/tickwire/internal/source/synthetic"
	"github.com/tickwire/tickwire/internal/testwait"
	"github.com/tickwire/tickwire/pkg/market"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// env is a real NATS server, a bus connection and a running feed service on loopback.
type env struct {
	t    testing.TB
	bus  *bus.Bus
	srv  *Server
	svc  *Service
	reg  *prometheus.Registry
	url  string      // ws://.../ws (wss:// with tls)
	http string      // http://... (https://)
	tls  *tls.Config // set before startFeed: the feed serves TLS with it
	stop func()
}

func startEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	nats := bustest.Start(t)
	b := bustest.Connect(t, nats)
	e := &env{t: t, bus: b}
	e.startFeed(cfg)
	return e
}

func (e *env) startFeed(cfg Config) {
	t := e.t
	t.Helper()
	e.reg = prometheus.NewRegistry()
	srv, err := New(cfg, nil, e.reg)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := NewService(srv, e.bus, "127.0.0.1:0", srv.Handler(FallbackUI()), nil)
	if err != nil {
		t.Fatal(err)
	}
	scheme := ""
	if e.tls != nil {
		svc.ServeTLS(e.tls)
		scheme = "s"
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx, 5*time.Second) }()
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("feed Run: %v", err)
			}
		})
	}
	t.Cleanup(e.stop)
	e.srv, e.svc = srv, svc
	e.http = "http" + scheme + "://" + svc.Addr().String()
	e.url = "ws" + scheme + "://" + svc.Addr().String() + "/ws"
	testwait.For(t, 10*time.Second, "feed ready", srv.ready.Load)
}

// waitApplied waits until the feed has applied every event p published.
func (e *env) waitApplied(p *publisher) {
	e.t.Helper()
	p.mu.Lock()
	total := 0
	for _, evs := range p.events {
		total += len(evs)
	}
	p.mu.Unlock()
	testwait.For(e.t, 20*time.Second, "feed to apply every event", func() bool {
		return int(testutil.ToFloat64(e.srv.metrics.events)) >= total
	})
}

// publisher feeds a synthetic market into NATS as ingest would, and keeps every event so tests
// can build reference states.
type publisher struct {
	t      *testing.T
	bus    *bus.Bus
	m      *synthetic.Market
	epoch  uint64
	seq    map[string]uint64
	events map[string][]*pb.Event // per instrument, index seq-1
	clock  int64
	mu     sync.Mutex
}

func newPublisher(t *testing.T, b *bus.Bus, instruments int) *publisher {
	m, err := synthetic.NewMarket(synthetic.Config{Instruments: instruments, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	return &publisher{t: t, bus: b, m: m, epoch: 1_700_000_000, seq: map[string]uint64{},
		events: map[string][]*pb.Event{}, clock: 1_700_000_000_000_000_000}
}

func (p *publisher) publishEvent(ev *pb.Event) {
	p.mu.Lock()
	p.seq[ev.Instrument]++
	ev.Epoch, ev.Seq = p.epoch, p.seq[ev.Instrument]
	ev.IngestTimeNs = time.Now().UnixNano()
	p.events[ev.Instrument] = append(p.events[ev.Instrument], ev)
	p.mu.Unlock()
	if err := p.bus.Publish(context.Background(), ev); err != nil {
		p.t.Errorf("publish: %v", err)
	}
}

// publish sends n synthetic events, 10 ms of market time apart.
func (p *publisher) publish(n int) {
	for range n {
		p.clock += 10e6
		p.publishEvent(p.m.Next(p.clock))
	}
}

// finish sends one trade per instrument, so every trades stream ends at the instrument's last
// seq, and returns the last seq of each instrument.
func (p *publisher) finish() map[string]uint64 {
	last := map[string]uint64{}
	for _, info := range p.m.Instruments() {
		p.clock += 1e6
		p.publishEvent(&pb.Event{Instrument: info.Id, VenueTimeNs: p.clock,
			Body: &pb.Event_Trade{Trade: &pb.Trade{Price: 100, Size: 1, Side: pb.Side_SIDE_BUY}}})
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, s := range p.seq {
		last[id] = s
	}
	return last
}

func (p *publisher) instruments() []string {
	var ids []string
	for _, info := range p.m.Instruments() {
		ids = append(ids, info.Id)
	}
	return ids
}

// reference is an instrument's state rebuilt from the published events, advanced on demand.
type reference struct {
	p     *publisher
	cfg   market.Config
	state map[string]*market.State
}

func (r *reference) at(t *testing.T, id string, seq uint64) *market.State {
	t.Helper()
	st := r.state[id]
	if st != nil {
		if _, cur := st.Position(); cur > seq { // streams may arrive out of seq order (a resume): rebuild
			st = nil
		}
	}
	if st == nil {
		st = market.NewState(id, r.cfg)
		r.state[id] = st
	}
	r.p.mu.Lock()
	evs := r.p.events[id]
	r.p.mu.Unlock()
	for _, cur := st.Position(); cur < seq; _, cur = st.Position() {
		if int(cur) >= len(evs) {
			t.Fatalf("%s: reference asked for seq %d, only %d published", id, seq, len(evs))
		}
		if _, err := st.Apply(evs[cur]); err != nil {
			t.Fatalf("%s: reference apply %d: %v", id, cur+1, err)
		}
	}
	return st
}

// wsClient is a bare protocol client for tests, independent of pkg/client.
type wsClient struct {
	t       *testing.T
	conn    *gws.Conn
	proto   string
	frames  chan []byte
	closeCh chan error
}

type wsHandler struct {
	gws.BuiltinEventHandler
	c *wsClient
}

func (h *wsHandler) OnMessage(_ *gws.Conn, m *gws.Message) {
	b := append([]byte(nil), m.Bytes()...)
	m.Close()
	h.c.frames <- b
}

func (h *wsHandler) OnClose(_ *gws.Conn, err error) { h.c.closeCh <- err }

func dial(t *testing.T, url, subprotocol string, header http.Header) (*wsClient, error) {
	return dialBuf(t, url, subprotocol, header, 0)
}

// dialBuf dials with a given socket receive buffer (0: system default).
func dialBuf(t *testing.T, url, subprotocol string, header http.Header, rcvBuf int) (*wsClient, error) {
	t.Helper()
	c := &wsClient{t: t, proto: subprotocol, frames: make(chan []byte, 1<<16), closeCh: make(chan error, 1)}
	if header == nil {
		header = http.Header{}
	}
	if subprotocol != "" {
		header.Set("Sec-WebSocket-Protocol", subprotocol)
	}
	opt := &gws.ClientOption{Addr: url, RequestHeader: header, ReadMaxPayloadSize: 64 << 20}
	if rcvBuf > 0 {
		opt.NewDialer = func() (gws.Dialer, error) {
			return &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
				var serr error
				err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvBuf) })
				return errors.Join(err, serr)
			}}, nil
		}
	}
	conn, resp, err := gws.NewClient(&wsHandler{c: c}, opt)
	if err != nil {
		if resp != nil {
			return nil, &httpError{resp.StatusCode}
		}
		return nil, err
	}
	c.conn = conn
	t.Cleanup(func() { _ = conn.WriteClose(1000, nil) })
	return c, nil
}

type httpError struct{ status int }

func (e *httpError) Error() string { return http.StatusText(e.status) }

func mustDial(t *testing.T, url, subprotocol string) *wsClient {
	t.Helper()
	c, err := dial(t, url, subprotocol, nil)
	if err != nil {
		t.Fatal(err)
	}
	go c.conn.ReadLoop()
	return c
}

func (c *wsClient) send(m *pb.ClientMessage) {
	c.t.Helper()
	b, err := wire.EncodeClientMessage(m, c.proto)
	if err != nil {
		c.t.Fatal(err)
	}
	op := gws.OpcodeBinary
	if c.proto == wire.SubprotocolJSON {
		op = gws.OpcodeText
	}
	if err := c.conn.WriteMessage(op, b); err != nil {
		c.t.Fatal(err)
	}
}

// next returns the next frame's messages, or fails the test after d.
func (c *wsClient) next(d time.Duration) []*pb.ServerMessage {
	c.t.Helper()
	select {
	case b := <-c.frames:
		var f pb.ServerFrame
		if err := wire.DecodeFrame(b, c.proto, &f); err != nil {
			c.t.Fatal(err)
		}
		if f.SendTimeNs == 0 {
			c.t.Fatal("frame without send time")
		}
		return f.Messages
	case err := <-c.closeCh:
		c.t.Fatalf("connection closed: %v", err)
	case <-time.After(d):
		c.t.Fatal("no frame in time")
	}
	return nil
}

// closeCode waits for the server to close the connection and returns the close code.
func (c *wsClient) closeCode(d time.Duration) int {
	c.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case <-c.frames:
		case err := <-c.closeCh:
			var ce *gws.CloseError
			if errors.As(err, &ce) {
				return int(ce.Code)
			}
			return -1
		case <-deadline:
			c.t.Fatal("connection not closed in time")
		}
	}
}

// waitError reads until an Error message arrives and returns it.
func (c *wsClient) waitError(d time.Duration) *pb.Error {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for _, m := range c.next(time.Until(deadline)) {
			if e := m.GetError(); e != nil {
				return e
			}
		}
	}
	c.t.Fatal("no error message")
	return nil
}

func subscribe(id uint32, ids []string, depth uint32, chans ...pb.Channel) *pb.ClientMessage {
	return &pb.ClientMessage{Id: id, Command: &pb.ClientMessage_Subscribe{Subscribe: &pb.Subscribe{Instruments: ids, Channels: chans, Depth: depth}}}
}
