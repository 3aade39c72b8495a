package feed

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tickwire/tickwire/internal/fanout"
	"github.com/tickwire/tickwire/internal/testwait"
	"github.com/tickwire/tickwire/internal/wsframe"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// rawConn is a client that speaks WebSocket byte by byte: it sends whatever a test gives it,
// and reads the server's frames with the validating reader, so a test sees exactly what is on
// the wire.
type rawConn struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

// rawDial makes the opening handshake by hand. version is the Sec-WebSocket-Version to send.
func rawDial(t *testing.T, addr, subprotocol, version string) (*rawConn, *http.Response) {
	t.Helper()
	return rawDialHeader(t, addr, subprotocol, version, nil)
}

// rawDialHeader is rawDial with extra request headers.
func rawDialHeader(t *testing.T, addr, subprotocol, version string, h http.Header) (*rawConn, *http.Response) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	req := "GET /ws HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: " + version + "\r\n"
	if subprotocol != "" {
		req += "Sec-WebSocket-Protocol: " + subprotocol + "\r\n"
	}
	for k, vs := range h {
		for _, v := range vs {
			req += k + ": " + v + "\r\n"
		}
	}
	if _, err := io.WriteString(nc, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &rawConn{t: t, nc: nc, br: br}, resp
}

func mustRawDial(t *testing.T, e *env, subprotocol string) *rawConn {
	t.Helper()
	c, resp := rawDial(t, e.svc.Addr().String(), subprotocol, "13")
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %s", resp.Status)
	}
	return c
}

// maskedFrame is a client frame: FIN, op, masked payload.
func maskedFrame(op byte, payload []byte) []byte {
	var b []byte
	switch n := len(payload); {
	case n < 126:
		b = []byte{0x80 | op, 0x80 | byte(n)}
	case n <= 0xFFFF:
		b = []byte{0x80 | op, 0x80 | 126, byte(n >> 8), byte(n)}
	default:
		b = binary.BigEndian.AppendUint64([]byte{0x80 | op, 0x80 | 127}, uint64(n))
	}
	key := [4]byte{1, 2, 3, 4}
	p := append([]byte(nil), payload...)
	wsframe.Mask(p, key, 0)
	return append(append(b, key[:]...), p...)
}

func (c *rawConn) write(b []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawConn) send(m *pb.ClientMessage) {
	c.t.Helper()
	b, err := wire.EncodeClientMessage(m, wire.SubprotocolProto)
	if err != nil {
		c.t.Fatal(err)
	}
	c.write(maskedFrame(wsframe.OpBinary, b))
}

// closeCode reads frames until the server's close frame and returns its code; every frame
// before it must be valid. -1: the connection ended without a close frame.
func (c *rawConn) closeCode(d time.Duration) int {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(d))
	r := wsframe.NewReader(c.br, wsframe.ClientSide, 64<<20)
	for {
		f, err := r.Next()
		if err != nil {
			var fe *wsframe.Error
			if errors.As(err, &fe) {
				c.t.Fatalf("invalid frame from the server: %v", err)
			}
			return -1
		}
		if f.Opcode == wsframe.OpClose {
			code, _, err := wsframe.ParseClose(f.Payload)
			if err != nil {
				c.t.Fatalf("close frame: %v", err)
			}
			return code
		}
	}
}

// badFrames are client frames that break RFC 6455, and the close code each must get. The first
// one killed the whole feed process through gws's reader (issue 14).
var badFrames = []struct {
	name string
	in   []byte
	code int
}{
	{"64-bit length with the top bit set", []byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, wire.CloseBadFrame},
	{"64-bit length of 2^63-1", []byte{0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4}, wire.CloseMessageTooBig},
	{"unmasked frame", []byte{0x82, 0x01, 0x00}, wire.CloseBadFrame},
	{"reserved bit (compression, never negotiated)", []byte{0xC2, 0x80, 1, 2, 3, 4}, wire.CloseBadFrame},
	{"ping of 126 bytes", maskedFrame(wsframe.OpPing, make([]byte, 126)), wire.CloseBadFrame},
	{"fragmented ping", []byte{0x09, 0x80, 1, 2, 3, 4}, wire.CloseBadFrame},
	{"unknown opcode", []byte{0x83, 0x80, 1, 2, 3, 4}, wire.CloseBadFrame},
	{"continuation without a start", []byte{0x80, 0x80, 1, 2, 3, 4}, wire.CloseBadFrame},
	{"close of one byte", maskedFrame(wsframe.OpClose, []byte{3}), wire.CloseBadFrame},
}

// TestHostileFrames: a frame that breaks the protocol closes its connection with the code that
// says why, and nothing else: the server and its other clients go on.
func TestHostileFrames(t *testing.T) {
	e := startEnv(t, Config{ReadLimit: 1024})
	p := newPublisher(t, e.bus, 2)
	p.publish(50)
	testwait.For(t, 10*time.Second, "instruments", func() bool { return len(e.srv.Instruments()) == 2 })
	good := mustDial(t, e.url, wire.SubprotocolProto)
	good.send(subscribe(1, p.instruments(), 0))
	good.next(5 * time.Second)

	cases := append(badFrames[:len(badFrames):len(badFrames)],
		struct {
			name string
			in   []byte
			code int
		}{"text not UTF-8 (JSON subprotocol)", maskedFrame(wsframe.OpText, []byte{'"', 0xff, '"'}), wire.CloseInvalidUTF8},
		struct {
			name string
			in   []byte
			code int
		}{"frame over the read limit", maskedFrame(wsframe.OpBinary, make([]byte, 1025)), wire.CloseMessageTooBig})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			proto := wire.SubprotocolProto
			if strings.Contains(tc.name, "JSON") {
				proto = wire.SubprotocolJSON
			}
			c := mustRawDial(t, e, proto)
			c.write(tc.in)
			if code := c.closeCode(5 * time.Second); code != tc.code {
				t.Fatalf("close code %d, want %d", code, tc.code)
			}
		})
	}
	// The server is alive and its other client still gets data.
	p.publish(20)
	good.next(5 * time.Second)
	if got := testutil.ToFloat64(e.srv.metrics.panics); got != 0 {
		t.Fatalf("%v panics recovered", got)
	}
}

// TestReadTimeoutOnTheWire: a client that sends nothing (no pong either) is closed with 4002
// on the wire, the code the docs, logs and metrics give; gws used to send 1000, which clients
// take as final.
func TestReadTimeoutOnTheWire(t *testing.T) {
	e := startEnv(t, Config{ReadTimeout: 300 * time.Millisecond, IdleTimeout: -1,
		Conn: fanout.Config{PingInterval: 100 * time.Millisecond}})
	c := mustRawDial(t, e, wire.SubprotocolProto)
	if code := c.closeCode(5 * time.Second); code != wire.ClosePingTimeout {
		t.Fatalf("close code %d, want %d", code, wire.ClosePingTimeout)
	}
}

// TestIdleUnsubscribed: a connection that answers pings but holds no subscription is closed
// after the idle timeout with 4004; one that subscribed stays, and so does one whose last
// subscription is younger than the timeout.
func TestIdleUnsubscribed(t *testing.T) {
	e := startEnv(t, Config{IdleTimeout: 400 * time.Millisecond})
	p := newPublisher(t, e.bus, 1)
	p.publish(10)
	testwait.For(t, 10*time.Second, "instruments", func() bool { return len(e.srv.Instruments()) == 1 })
	idle := mustRawDial(t, e, wire.SubprotocolProto)
	idle.send(&pb.ClientMessage{Id: 1, Command: &pb.ClientMessage_Ping{Ping: &pb.Ping{}}}) // activity, not a subscription
	busy := mustDial(t, e.url, wire.SubprotocolProto)
	busy.send(subscribe(1, p.instruments(), 0))
	start := time.Now()
	if code := idle.closeCode(5 * time.Second); code != wire.CloseIdle {
		t.Fatalf("idle connection: close code %d, want %d", code, wire.CloseIdle)
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Fatalf("closed after %v, before the idle timeout", waited)
	}
	// The subscribed client is still served, well past the idle timeout.
	// Events keep coming; not every one changes what the connection holds (a synthetic step
	// may leave the quote as it was), so publish until frames come, for at most 5 s each.
	frames := 0
	lastFrame := time.Now()
	for time.Since(start) < time.Second || frames == 0 {
		p.publish(5)
		select {
		case <-busy.frames:
			frames++
			lastFrame = time.Now()
		case err := <-busy.closeCh:
			t.Fatalf("subscribed connection closed: %v", err)
		case <-time.After(100 * time.Millisecond):
			if time.Since(lastFrame) > 5*time.Second {
				t.Fatal("subscribed connection got nothing for 5 s")
			}
		}
	}
}

// TestConnectionCaps: per-address and global caps, at the limit and past it, answer 429 before
// the upgrade; a slot is free again when its connection closes.
func TestConnectionCaps(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"per address", Config{MaxConnsPerIP: 3, MaxConns: 100}},
		{"global", Config{MaxConnsPerIP: 100, MaxConns: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startEnv(t, tc.cfg)
			var held []*rawConn
			for i := 0; i < 3; i++ { // at the limit
				held = append(held, mustRawDial(t, e, wire.SubprotocolProto))
			}
			_, resp := rawDial(t, e.svc.Addr().String(), wire.SubprotocolProto, "13")
			if resp.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("past the limit: %s, want 429", resp.Status)
			}
			held[0].write(maskedFrame(wsframe.OpClose, binary.BigEndian.AppendUint16(nil, 1000)))
			if code := held[0].closeCode(5 * time.Second); code != wire.CloseNormal {
				t.Fatalf("close answered with %d", code)
			}
			testwait.For(t, 5*time.Second, "the slot to be free", func() bool {
				e.srv.mu.Lock()
				defer e.srv.mu.Unlock()
				return e.srv.conns == 2
			})
			mustRawDial(t, e, wire.SubprotocolProto)
		})
	}
}

// TestConnectionCapBehindTrustedProxy: behind a load balancer every connection comes from its
// address; with it trusted, the per-address cap counts the client address it forwards, at the
// limit and past it, and a client's own X-Forwarded-For does not buy it more connections.
func TestConnectionCapBehindTrustedProxy(t *testing.T) {
	lb, err := ParseTrustedProxies([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	e := startEnv(t, Config{MaxConnsPerIP: 2, MaxConns: 100, TrustedProxies: lb})
	addr := e.svc.Addr().String()
	from := func(xff string) int {
		_, resp := rawDialHeader(t, addr, wire.SubprotocolProto, "13", http.Header{"X-Forwarded-For": {xff}})
		return resp.StatusCode
	}
	for _, c := range []struct {
		xff  string
		want int
	}{
		{"203.0.113.1", http.StatusSwitchingProtocols},
		{"203.0.113.1", http.StatusSwitchingProtocols}, // at the limit
		{"203.0.113.2", http.StatusSwitchingProtocols}, // another client through the same proxy
		{"203.0.113.1", http.StatusTooManyRequests},    // past it
		{"198.51.100.7, 203.0.113.1", http.StatusTooManyRequests},
	} {
		if got := from(c.xff); got != c.want {
			t.Fatalf("X-Forwarded-For %q: %d, want %d", c.xff, got, c.want)
		}
	}

	// Not trusted: the header counts for nothing, the peer's address is the limit.
	e2 := startEnv(t, Config{MaxConnsPerIP: 1, MaxConns: 100})
	_, r1 := rawDialHeader(t, e2.svc.Addr().String(), wire.SubprotocolProto, "13", http.Header{"X-Forwarded-For": {"203.0.113.1"}})
	_, r2 := rawDialHeader(t, e2.svc.Addr().String(), wire.SubprotocolProto, "13", http.Header{"X-Forwarded-For": {"203.0.113.2"}})
	if r1.StatusCode != http.StatusSwitchingProtocols || r2.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("untrusted peer: %d then %d; want 101 then 429", r1.StatusCode, r2.StatusCode)
	}
}

// TestWebSocketVersion: only version 13 is spoken; another gets 426 naming it (RFC 6455 4.4).
func TestWebSocketVersion(t *testing.T) {
	e := startEnv(t, Config{})
	_, resp := rawDial(t, e.svc.Addr().String(), wire.SubprotocolProto, "8")
	if resp.StatusCode != http.StatusUpgradeRequired || resp.Header.Get("Sec-WebSocket-Version") != "13" {
		t.Fatalf("version 8: %s, Sec-WebSocket-Version %q; want 426 and 13", resp.Status, resp.Header.Get("Sec-WebSocket-Version"))
	}
	// A plain GET is no handshake: it learns why a replay connection would be refused (the
	// dashboard's probe), not 426.
	e.srv.EnableReplay(e.bus)
	resp2, err := http.Get(e.http + "/ws?replay=no-such-session")
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusNotFound {
		t.Fatalf("plain GET of an unknown replay session: %s, want 404", resp2.Status)
	}
}

// TestUnknownJSONKeyIgnored: an unknown key beside a command is skipped, as in binary (so a
// client of a later minor version still talks to this server); docs/PROTOCOL.md §3.2 and §6.5.
func TestUnknownJSONKeyIgnored(t *testing.T) {
	e := startEnv(t, Config{})
	c := mustRawDial(t, e, wire.SubprotocolJSON)
	c.write(maskedFrame(wsframe.OpText, []byte(`{"id":7,"ping":{"nonce":"5"},"extra":1}`)))
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := wsframe.NewReader(c.br, wsframe.ClientSide, 1<<20)
	for {
		f, err := r.Next()
		if err != nil {
			t.Fatalf("no pong: %v", err)
		}
		if f.Opcode == wsframe.OpClose {
			code, _, _ := wsframe.ParseClose(f.Payload)
			t.Fatalf("closed with %d", code)
		}
		var sf pb.ServerFrame
		if f.Opcode == wsframe.OpText && wire.DecodeFrame(f.Payload, wire.SubprotocolJSON, &sf) == nil {
			for _, m := range sf.Messages {
				if pong := m.GetPong(); pong != nil && pong.RequestId == 7 && pong.Nonce == 5 {
					return
				}
			}
		}
	}
}

// TestCloseDuringLargeFrame: when a client closes while the server is part way through writing
// a large frame, the bytes on the wire are still a valid frame stream ending in one close frame:
// the close is written by the connection's only writer, after the frame it had begun.
func TestCloseDuringLargeFrame(t *testing.T) {
	e := startEnv(t, Config{SocketWriteBuffer: 4096})
	p := newPublisher(t, e.bus, 20)
	p.publish(3000)
	testwait.For(t, 10*time.Second, "instruments", func() bool { return len(e.srv.Instruments()) == 20 })
	e.waitApplied(p)
	for range 5 {
		c := mustRawDial(t, e, wire.SubprotocolProto)
		// Every instrument's deep book: snapshots far larger than the socket buffers, so the
		// shard is left holding a partly written frame while nobody reads.
		c.send(subscribe(1, p.instruments(), 1000))
		time.Sleep(50 * time.Millisecond)
		c.write(maskedFrame(wsframe.OpClose, binary.BigEndian.AppendUint16(nil, 1000)))
		if code := c.closeCode(10 * time.Second); code != wire.CloseNormal {
			t.Fatalf("close code %d, want 1000 after a valid frame stream", code)
		}
		if _, err := c.br.ReadByte(); err != io.EOF && !isClosedErr(err) {
			t.Fatalf("bytes after the close frame (%v)", err)
		}
	}
}

func isClosedErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset")
}

// FuzzServerFrames sends raw bytes after a real handshake to a live feed: whatever they are,
// the server answers with valid frames, ends the connection, and does not panic.
func FuzzServerFrames(f *testing.F) {
	for _, tc := range badFrames {
		f.Add(tc.in)
	}
	ping, _ := wire.EncodeClientMessage(&pb.ClientMessage{Id: 1, Command: &pb.ClientMessage_Ping{Ping: &pb.Ping{Nonce: 1}}}, wire.SubprotocolProto)
	f.Add(maskedFrame(wsframe.OpBinary, ping))
	f.Add(append(maskedFrame(wsframe.OpPing, []byte("hi")), maskedFrame(wsframe.OpBinary, ping)...))
	f.Add(bytes.Repeat([]byte{0xff}, 32))
	e := startEnv(f, Config{ReadLimit: 4096})
	f.Fuzz(func(t *testing.T, in []byte) {
		c := mustRawDial(t, e, wire.SubprotocolProto)
		c.write(in)
		_ = c.nc.(*net.TCPConn).CloseWrite() // then end of stream: every input ends the connection
		c.closeCode(5 * time.Second)         // fails the test on an invalid frame from the server
		if got := testutil.ToFloat64(e.srv.metrics.panics); got != 0 {
			t.Fatalf("%v panics recovered", got)
		}
	})
}
