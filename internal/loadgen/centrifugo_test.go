package loadgen

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/centrifugal/protocol"
	"github.com/lxzan/gws"

	"github.com/tickwire/tickwire/pkg/market"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// fakeOpts are a fake Centrifugo's misbehaviours.
type fakeOpts struct {
	// skip reports whether to drop (not push) the n-th publication (1, 2, ...) of a channel.
	skip func(channel string, n int) bool
	// garbage, if set, is sent as one frame to every subscriber before each publication.
	garbage []byte
	// foreign, if set, pushes one publication with a payload not of loadgen's after each one.
	foreign bool
	// secret, if set, is the HS256 key a connect token must be signed with.
	secret string
}

// fakeCentrifugo is a Centrifugo stand-in on loopback: a real WebSocket endpoint speaking the
// protobuf protocol (connect, subscribe replies, a ping, publications pushed) and an HTTP API
// batch endpoint whose publications it pushes to the subscribers of their channel.
type fakeCentrifugo struct {
	fakeOpts

	ws, api *httptest.Server
	mu      sync.Mutex
	subs    map[string][]*gws.Conn // guarded by mu
	conns   []*gws.Conn            // guarded by mu
	counts  map[string]int         // guarded by mu: publications per channel
	readers sync.WaitGroup         // the server connections' read loops
	pongs   atomic.Int64           // empty commands received (answers to pings)
}

func startFakeCentrifugo(t *testing.T, opts fakeOpts) *fakeCentrifugo {
	t.Helper()
	f := &fakeCentrifugo{fakeOpts: opts}
	f.subs, f.counts = map[string][]*gws.Conn{}, map[string]int{}
	up := gws.NewUpgrader(&fakeCFHandler{f: f}, &gws.ServerOption{SubProtocols: []string{"centrifuge-protobuf"}})
	f.ws = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r)
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conns = append(f.conns, conn)
		f.mu.Unlock()
		f.readers.Add(1)
		go func() {
			defer f.readers.Done()
			conn.ReadLoop()
		}()
	}))
	f.api = httptest.NewServer(http.HandlerFunc(f.batch))
	t.Cleanup(func() {
		f.api.Close()
		f.ws.Close()
		f.mu.Lock()
		for _, c := range f.conns {
			_ = c.NetConn().Close()
		}
		f.mu.Unlock()
		f.readers.Wait()
	})
	return f
}

func (f *fakeCentrifugo) wsURL() string {
	return "ws" + strings.TrimPrefix(f.ws.URL, "http") + "/connection/websocket"
}

// push sends replies to conn in one frame, each prefixed with its length.
func push(conn *gws.Conn, replies ...*protocol.Reply) {
	var frame []byte
	for _, r := range replies {
		b, err := protocol.NewProtobufReplyEncoder().Encode(r)
		if err != nil {
			panic(err)
		}
		frame = binary.AppendUvarint(frame, uint64(len(b)))
		frame = append(frame, b...)
	}
	_ = conn.WriteMessage(gws.OpcodeBinary, frame)
}

// batch is POST /api/batch: {"commands":[{"publish":{"channel":..,"data":{..}}}, ...]}.
func (f *fakeCentrifugo) batch(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Commands []struct {
			Publish struct {
				Channel string          `json:"channel"`
				Data    json.RawMessage `json:"data"`
			} `json:"publish"`
		} `json:"commands"`
	}
	if r.URL.Path != "/api/batch" || r.Header.Get("X-API-Key") != "test-key" {
		http.Error(w, "no", http.StatusUnauthorized)
		return
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var replies []string
	for _, c := range req.Commands {
		p := c.Publish
		f.mu.Lock()
		f.counts[p.Channel]++
		n := f.counts[p.Channel]
		subs := append([]*gws.Conn(nil), f.subs[p.Channel]...)
		f.mu.Unlock()
		replies = append(replies, `{"publish":{}}`)
		if f.skip != nil && f.skip(p.Channel, n) {
			continue
		}
		for _, s := range subs {
			if f.garbage != nil {
				_ = s.WriteMessage(gws.OpcodeBinary, f.garbage)
			}
			push(s, &protocol.Reply{Push: &protocol.Push{Channel: p.Channel, Pub: &protocol.Publication{Data: protocol.Raw(p.Data)}}})
		}
		if f.foreign {
			for _, s := range subs {
				push(s, &protocol.Reply{Push: &protocol.Push{Channel: p.Channel, Pub: &protocol.Publication{Data: protocol.Raw(`{"hello":1}`)}}})
			}
		}
	}
	fmt.Fprintf(w, `{"replies":[%s]}`, strings.Join(replies, ","))
}

type fakeCFHandler struct{ f *fakeCentrifugo }

func (h *fakeCFHandler) OnOpen(*gws.Conn)                         {}
func (h *fakeCFHandler) OnClose(*gws.Conn, error)                 {}
func (h *fakeCFHandler) OnPing(c *gws.Conn, payload []byte)       { _ = c.WritePong(payload) }
func (h *fakeCFHandler) OnPong(*gws.Conn, []byte)                 {}
func (h *fakeCFHandler) OnMessage(conn *gws.Conn, m *gws.Message) { h.f.commands(conn, m) }

func (f *fakeCentrifugo) commands(conn *gws.Conn, m *gws.Message) {
	defer m.Close()
	dec := protocol.NewProtobufCommandDecoder(m.Bytes())
	for {
		cmd, err := dec.Decode() // the last command comes with io.EOF
		if cmd == nil {
			return
		}
		switch {
		case cmd.Connect != nil:
			if f.secret != "" && !validToken(cmd.Connect.Token, f.secret) {
				push(conn, &protocol.Reply{Id: cmd.Id, Error: &protocol.Error{Code: 109, Message: "token expired"}})
				continue
			}
			// The connect result, then a ping (an empty reply) the client must answer.
			push(conn, &protocol.Reply{Id: cmd.Id, Connect: &protocol.ConnectResult{Client: "c", Version: "fake", Ping: 25, Pong: true}})
			push(conn, &protocol.Reply{})
		case cmd.Subscribe != nil:
			f.mu.Lock()
			f.subs[cmd.Subscribe.Channel] = append(f.subs[cmd.Subscribe.Channel], conn)
			f.mu.Unlock()
			push(conn, &protocol.Reply{Id: cmd.Id, Subscribe: &protocol.SubscribeResult{}})
		case cmd.Id == 0:
			f.pongs.Add(1)
		}
		if err != nil {
			return
		}
	}
}

// validToken checks an HS256 token's signature the way cfToken makes it.
func validToken(token, secret string) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return false
	}
	want := cfSign(parts[0]+"."+parts[1], secret)
	return parts[2] == want
}

// TestCentrifugoMode runs the tool's Centrifugo client mode end to end against the fake: every
// publication the API accepted must be delivered to each subscriber of its channel, and what
// the fake does wrong must show in the counters (gaps, malformed frames), never as a crash.
func TestCentrifugoMode(t *testing.T) {
	const secret = "test-secret"
	tests := []struct {
		name      string
		fake      fakeOpts
		secret    string // the tool's token secret
		wantGaps  bool
		wantBad   bool
		wantAll   bool // delivered == expected after settling
		wantError bool // error replies (refused connects)
	}{
		{name: "in order", fake: fakeOpts{secret: secret}, secret: secret, wantAll: true},
		{name: "every 7th publication of md:1 lost",
			fake: fakeOpts{skip: func(ch string, n int) bool { return ch == "md:1" && n%7 == 0 }}, wantGaps: true},
		{name: "a garbage frame before each publication", fake: fakeOpts{garbage: []byte{0xff, 0xff, 0xff, 0x01, 0x02}},
			wantBad: true, wantAll: true},
		{name: "publications not of loadgen's", fake: fakeOpts{foreign: true}, wantBad: true, wantAll: true},
		{name: "wrong token secret", fake: fakeOpts{secret: secret}, secret: "wrong", wantError: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := startFakeCentrifugo(t, tc.fake)
			cfg := Config{Target: TargetCentrifugo, Centrifugo: CentrifugoConfig{URL: f.wsURL(), API: f.api.URL + "/api",
				APIKey: "test-key", TokenSecret: tc.secret, PID: ownPID, Publishers: 2, Batch: 7},
				Clients: 10, Instruments: 5, Subscribers: 4, Mode: ModeFixed, Rate: 300,
				Warmup: 200 * time.Millisecond, Hold: time.Second, Duration: 20 * time.Second,
				MaxP99: time.Minute} // delivery is under test here, not speed (-race on a shared machine)
			rep, err := Run(context.Background(), cfg, nil, nil)
			if tc.wantError {
				if err == nil || !strings.Contains(err.Error(), "no centrifugo subscription") || !strings.Contains(err.Error(), "error replies") {
					t.Fatalf("err %v: want the connects refused", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			rep.WriteTable(&b)
			t.Log("\n" + b.String())
			if rep.Server != TargetCentrifugo || rep.Setup.Connected != 10 || rep.Setup.StreamsSynced != 20 || rep.Setup.StreamsWanted != 20 {
				t.Fatalf("server %q setup %+v", rep.Server, rep.Setup)
			}
			if len(rep.Steps) != 1 {
				t.Fatalf("%d steps", len(rep.Steps))
			}
			tot := rep.Totals
			if tot.Published == 0 || tot.Expected != 4*tot.Published {
				t.Errorf("published %d, expected %d: want 4 subscribers x published", tot.Published, tot.Expected)
			}
			if all := tot.Delivered == tot.Expected; all != tc.wantAll {
				t.Errorf("delivered %d of %d expected", tot.Delivered, tot.Expected)
			}
			if (tot.Gaps > 0) != tc.wantGaps || (tot.Malformed > 0) != tc.wantBad {
				t.Errorf("gaps %d, malformed %d: want gaps %v, malformed %v", tot.Gaps, tot.Malformed, tc.wantGaps, tc.wantBad)
			}
			if tc.wantGaps && tot.Delivered >= tot.Expected {
				t.Errorf("with publications lost, delivered %d of %d", tot.Delivered, tot.Expected)
			}
			if tot.Duplicates != 0 || tot.Errors != 0 || tot.Closes != 0 {
				t.Errorf("totals %+v", tot)
			}
			s := rep.Steps[0]
			if s.Latency.Count == 0 || s.Latency.P50 <= 0 || s.Latency.Max > 10*time.Second || s.PublishedRate > 350 {
				t.Errorf("step %+v", s)
			}
			if tc.wantGaps == s.OK && tc.wantGaps {
				t.Errorf("a step with gaps judged sustained: %s", s.Verdict)
			}
			if f.pongs.Load() < 10 {
				t.Errorf("%d pings answered of 10", f.pongs.Load())
			}
		})
	}
}

func TestParseCFPayload(t *testing.T) {
	tests := []struct {
		in      string
		t       int64
		c       uint64
		wantErr bool
	}{
		{in: string(appendCFPayload(nil, 1733200000123456789, 42)), t: 1733200000123456789, c: 42},
		{in: `{"t":5,"c":1}`, t: 5, c: 1},
		{in: `{"t":5}`, wantErr: true},
		{in: `{"t":5,"c":0}`, wantErr: true},
		{in: `{"t":x,"c":1}`, wantErr: true},
		{in: `{"t":5,"c":1`, wantErr: true},
		{in: `{"t":99999999999999999999999,"c":1}`, wantErr: true},
		{in: ``, wantErr: true},
	}
	for _, tc := range tests {
		gotT, gotC, err := parseCFPayload([]byte(tc.in))
		if (err != nil) != tc.wantErr || !tc.wantErr && (gotT != tc.t || gotC != tc.c) {
			t.Errorf("parseCFPayload(%q) = %d, %d, %v", tc.in, gotT, gotC, err)
		}
		if err != nil && !errors.Is(err, errCFPayload) {
			t.Errorf("parseCFPayload(%q): error %v is not errCFPayload", tc.in, err)
		}
	}
}

func TestCentrifugoConfigValidate(t *testing.T) {
	good := Config{Target: TargetCentrifugo, Centrifugo: CentrifugoConfig{URL: "ws://127.0.0.1:8000/connection/websocket",
		API: "http://127.0.0.1:8000/api"}, Clients: 10, Instruments: 5, Subscribers: 4}
	tests := []struct {
		name string
		edit func(*Config)
		ok   bool
	}{
		{"valid", func(*Config) {}, true},
		{"delivered steps", func(c *Config) { c.DeliveredSteps = []float64{1000, 2000} }, true},
		{"steps not increasing", func(c *Config) { c.DeliveredSteps = []float64{2000, 1000} }, false},
		{"not loopback", func(c *Config) { c.Centrifugo.URL = "ws://10.0.0.1:8000/connection/websocket" }, false},
		{"api not loopback", func(c *Config) { c.Centrifugo.API = "http://example.com/api" }, false},
		{"wss", func(c *Config) { c.Centrifugo.URL = "wss://127.0.0.1:8000/connection/websocket" }, false},
		{"no api", func(c *Config) { c.Centrifugo.API = "" }, false},
		{"with --spawn", func(c *Config) { c.Spawn = true }, false},
		{"stalled mode", func(c *Config) { c.Mode = ModeStalled }, false},
		{"namespace with colon", func(c *Config) { c.Centrifugo.Namespace = "a:b" }, false},
		{"tickwire with centrifugo flags", func(c *Config) { c.Target = TargetTickwire; c.Spawn = true }, false},
		{"unknown target", func(c *Config) { c.Target = "nchan" }, false},
	}
	for _, tc := range tests {
		c := good
		tc.edit(&c)
		m, err := c.Merge()
		if err == nil {
			err = m.Validate()
		}
		if (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// TestQuoteMarketOneDeltaPerEvent: with --market quotes every event after the checkpoint is
// one quote delta (what makes a Tickwire event the same unit as a Centrifugo publication), and
// the checkpoint is each instrument's info then its first quote.
func TestQuoteMarketOneDeltaPerEvent(t *testing.T) {
	for _, n := range []int{1, 7, 100} {
		cfg := publisherConfig{Instruments: n, Venue: "q", Seed: 1, Epoch: 1, Channels: []pb.Channel{pb.Channel_CHANNEL_QUOTE},
			Market: market.Config{}.WithDefaults(), Source: MarketQuotes}
		upe, err := calibrate(cfg, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if upe != 1 {
			t.Errorf("%d instruments: %.3f quote deltas per event, want 1", n, upe)
		}
		q := newQuoteMarket(n)
		for i := range n {
			info, quote := q.Next(1), q.Next(1)
			if info.GetInfo() == nil || info.Instrument != q.infos[i].Id || quote.GetQuote() == nil || quote.Instrument != info.Instrument {
				t.Fatalf("%d instruments: checkpoint %d is %v, %v", n, i, info, quote)
			}
		}
	}
}
