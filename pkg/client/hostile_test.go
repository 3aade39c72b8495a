package client_test

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/tickwire/tickwire/pkg/client"
)

// rawServer accepts WebSocket connections, answers the handshake by hand, and then sends each
// connection the same bytes: a server that may be malicious, or a stream intercepted on ws://.
type rawServer struct {
	ln   net.Listener
	send []byte
	wg   sync.WaitGroup
	mu   sync.Mutex
	n    int // connections answered
}

func startRawServer(t testing.TB, send []byte) *rawServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln, send: send}
	s.wg.Go(s.serve)
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *rawServer) serve() {
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Go(func() {
			defer nc.Close()
			_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
			req, err := http.ReadRequest(bufio.NewReader(nc))
			if err != nil {
				return
			}
			sum := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
			resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(sum[:]) + "\r\n" +
				"Sec-WebSocket-Protocol: " + req.Header.Get("Sec-WebSocket-Protocol") + "\r\n\r\n"
			s.mu.Lock()
			s.n++
			s.mu.Unlock()
			if _, err := nc.Write([]byte(resp)); err != nil {
				return
			}
			// Apart from the response, so that the frames are read by the connection, not left in
			// the handshake's buffer.
			time.Sleep(20 * time.Millisecond)
			if _, err := nc.Write(s.send); err != nil {
				return
			}
			// Then nothing: the client ends the connection (or its heartbeat timeout does).
			_, _ = nc.Read(make([]byte, 1))
		})
	}
}

func (s *rawServer) connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// The frame header that killed every bot of issue 14: binary, a 64-bit length with its top bit
// set (unmasked, as a server sends it). gws turned it into a negative length and panicked
// slicing with it.
var topBitLength = []byte{0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0}

// TestHostileServerFrame: an invalid frame from the server ends the connection with
// ErrProtocol, counted, and the client reconnects; the process does not panic.
func TestHostileServerFrame(t *testing.T) {
	for _, tc := range []struct {
		name string
		send []byte
	}{
		{"64-bit length with the top bit set", topBitLength},
		{"the same after a good frame", append([]byte{0x82, 0x00}, topBitLength...)},
		{"masked frame from a server", []byte{0x82, 0x80, 1, 2, 3, 4}},
		{"ping of 126 bytes", append([]byte{0x89, 126}, make([]byte, 126)...)},
		{"frame over MaxFrameSize", []byte{0x82, 0x7f, 0, 0, 0, 0, 0x40, 0, 0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startRawServer(t, tc.send)
			r := startClient(t, client.Options{URL: "ws://" + srv.ln.Addr().String() + "/ws",
				BackoffMin: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond, HeartbeatTimeout: 10 * time.Second})
			eventually(t, "a reconnect after the bad frame", func() error {
				return errorf(srv.connections() >= 2, "%d connections", srv.connections())
			})
			st := r.c.Stats()
			if st.ProtocolErrors == 0 || st.Panics != 0 {
				t.Fatalf("stats %+v: want protocol errors, no panics", st)
			}
			rec := r.rec.snapshot()
			if len(rec.stateErrs) < 2 || !errors.Is(rec.stateErrs[1], client.ErrProtocol) {
				t.Fatalf("disconnect reasons %v, want ErrProtocol", rec.stateErrs)
			}
		})
	}
}

// FuzzClientFrames: whatever a server sends after the handshake, the client neither panics nor
// hangs: the connection ends and Run reconnects.
func FuzzClientFrames(f *testing.F) {
	f.Add(topBitLength)
	f.Add([]byte{0x82, 0x80, 1, 2, 3, 4})
	f.Add([]byte{0x88, 0x02, 0x03, 0xe8})
	f.Add([]byte{0x82, 0x7e, 0xff, 0xff})
	f.Add([]byte{0x89, 0x00, 0x81, 0x01, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		srv := startRawServer(t, in)
		r := startClient(t, client.Options{URL: "ws://" + srv.ln.Addr().String() + "/ws",
			BackoffMin: time.Millisecond, BackoffMax: 2 * time.Millisecond, HeartbeatTimeout: 200 * time.Millisecond})
		eventually(t, "the connection to end", func() error {
			return errorf(srv.connections() >= 2 || r.c.Stats().Disconnects > 0 || len(r.done) > 0, "still connected")
		})
		if st := r.c.Stats(); st.Panics != 0 {
			t.Fatalf("%d panics", st.Panics)
		}
	})
}
