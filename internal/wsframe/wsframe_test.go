package wsframe

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
)

// frame builds one frame as a peer would send it: masked with key when masked is set.
func frame(b0 byte, payload []byte, masked bool, key [4]byte) []byte {
	out := []byte{b0}
	mbit := byte(0)
	if masked {
		mbit = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		out = append(out, mbit|byte(n))
	case n <= 0xFFFF:
		out = append(out, mbit|126, byte(n>>8), byte(n))
	default:
		out = append(out, mbit|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	p := append([]byte(nil), payload...)
	if masked {
		out = append(out, key[:]...)
		Mask(p, key, 0)
	}
	return append(out, p...)
}

var key = [4]byte{0x12, 0x34, 0x56, 0x78}

// client builds a masked frame (client to server).
func client(b0 byte, payload []byte) []byte { return frame(b0, payload, true, key) }

// The crash of issue 14: a 64-bit length with the top bit set, then a mask key.
var topBitLength = []byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}

func closePayload(code int, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

func TestReader(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 300)
	tests := []struct {
		name     string
		in       []byte
		max      int
		want     []Frame // frames before the end
		wantCode int     // close code of the error that ends it, 0 for io.EOF
	}{
		{name: "binary", in: client(0x82, []byte("hello")), want: []Frame{{OpBinary, []byte("hello")}}},
		{name: "text", in: client(0x81, []byte(`{"id":1}`)), want: []Frame{{OpText, []byte(`{"id":1}`)}}},
		{name: "16-bit length", in: client(0x82, big), want: []Frame{{OpBinary, big}}},
		{name: "empty", in: client(0x82, nil), want: []Frame{{OpBinary, []byte{}}}},
		{name: "fragmented with a ping between",
			in:   cat(client(0x02, []byte("ab")), client(0x89, []byte("p")), client(0x80, []byte("cd"))),
			want: []Frame{{OpPing, []byte("p")}, {OpBinary, []byte("abcd")}}},
		{name: "close", in: client(0x88, closePayload(1000, "bye")), want: []Frame{{OpClose, closePayload(1000, "bye")}}},
		{name: "close without status", in: client(0x88, nil), want: []Frame{{OpClose, []byte{}}}},
		{name: "pong", in: client(0x8A, []byte("x")), want: []Frame{{OpPong, []byte("x")}}},
		{name: "top bit of the 64-bit length", in: topBitLength, wantCode: CloseProtocolError},
		{name: "64-bit length over the limit", in: []byte{0x82, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4}, wantCode: CloseTooLarge},
		{name: "frame at the limit", in: client(0x82, big[:100]), max: 100, want: []Frame{{OpBinary, big[:100]}}},
		{name: "message at the limit", max: 200,
			in:   cat(client(0x02, big[:100]), client(0x80, big[:100])),
			want: []Frame{{OpBinary, big[:200]}}},
		{name: "message past the limit", max: 200, in: cat(client(0x02, big[:100]), client(0x80, big[:101])), wantCode: CloseTooLarge},
		{name: "frame past the limit", max: 200, in: client(0x82, big[:201]), wantCode: CloseTooLarge},
		{name: "control frame over 125", in: client(0x89, big[:126]), wantCode: CloseProtocolError},
		{name: "control frame at 125", in: client(0x89, big[:125]), want: []Frame{{OpPing, big[:125]}}},
		{name: "fragmented control frame", in: client(0x09, nil), wantCode: CloseProtocolError},
		{name: "reserved bit", in: client(0xC2, []byte("x")), wantCode: CloseProtocolError},
		{name: "unknown opcode", in: client(0x83, []byte("x")), wantCode: CloseProtocolError},
		{name: "unmasked", in: frame(0x82, []byte("x"), false, key), wantCode: CloseProtocolError},
		{name: "continuation first", in: client(0x80, []byte("x")), wantCode: CloseProtocolError},
		{name: "new message inside a fragmented one", in: cat(client(0x02, []byte("a")), client(0x82, []byte("b"))), wantCode: CloseProtocolError},
		{name: "text not UTF-8", in: client(0x81, []byte{0xff, 0xfe}), wantCode: CloseInvalidData},
		{name: "close of one byte", in: client(0x88, []byte{3}), wantCode: CloseProtocolError},
		{name: "close code 1005 on the wire", in: client(0x88, closePayload(1005, "")), wantCode: CloseProtocolError},
		{name: "close code 999", in: client(0x88, closePayload(999, "")), wantCode: CloseProtocolError},
		{name: "close code 4500", in: client(0x88, closePayload(4500, "")), want: []Frame{{OpClose, closePayload(4500, "")}}},
		{name: "close reason not UTF-8", in: client(0x88, closePayload(1000, "\xff")), wantCode: CloseInvalidData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			max := tt.max
			if max == 0 {
				max = 4096
			}
			r := NewReader(bytes.NewReader(tt.in), ServerSide, max)
			for i, want := range tt.want {
				got, err := r.Next()
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if got.Opcode != want.Opcode || !bytes.Equal(got.Payload, want.Payload) {
					t.Fatalf("frame %d: got op %#x %q, want op %#x %q", i, got.Opcode, got.Payload, want.Opcode, want.Payload)
				}
			}
			_, err := r.Next()
			var pe *Error
			switch {
			case tt.wantCode == 0 && err != io.EOF:
				t.Fatalf("end: got %v, want io.EOF", err)
			case tt.wantCode != 0 && !errors.As(err, &pe):
				t.Fatalf("end: got %v, want a protocol error %d", err, tt.wantCode)
			case tt.wantCode != 0 && pe.Code != tt.wantCode:
				t.Fatalf("end: got code %d (%v), want %d", pe.Code, err, tt.wantCode)
			}
		})
	}
}

func TestReaderTruncated(t *testing.T) {
	in := client(0x82, []byte("hello"))
	for n := 1; n < len(in); n++ {
		_, err := NewReader(bytes.NewReader(in[:n]), ServerSide, 1024).Next()
		if err != io.ErrUnexpectedEOF {
			t.Errorf("cut at %d: got %v, want io.ErrUnexpectedEOF", n, err)
		}
	}
}

func TestParseClose(t *testing.T) {
	code, reason, err := ParseClose(closePayload(4002, "read timeout"))
	if err != nil || code != 4002 || reason != "read timeout" {
		t.Fatalf("got %d %q %v", code, reason, err)
	}
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// chunkConn is a net.Conn whose reads return at most chunk bytes of data.
type chunkConn struct {
	net.Conn
	r     *bytes.Reader
	chunk int
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(p) > c.chunk {
		p = p[:c.chunk]
	}
	return c.r.Read(p)
}

func TestGuard(t *testing.T) {
	server := func(b0 byte, p []byte) []byte { return frame(b0, p, false, key) }
	http := []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
	good := cat(server(0x82, []byte("one")), server(0x89, nil), server(0x82, bytes.Repeat([]byte("y"), 70000)))
	tests := []struct {
		name     string
		in       []byte
		http     bool
		passed   int // bytes the library may see
		wantCode int
	}{
		{name: "good frames", in: good, passed: len(good)},
		{name: "handshake then frames", in: cat(http, good), http: true, passed: len(http) + len(good)},
		{name: "top bit length after a good frame", in: cat(server(0x82, []byte("one")), []byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0}),
			passed: 5, wantCode: CloseProtocolError},
		{name: "handshake then the crash", in: cat(http, topBitLength[:10]), http: true, passed: len(http), wantCode: CloseProtocolError},
		{name: "masked from a server", in: frame(0x82, []byte("x"), true, key), wantCode: CloseProtocolError},
		{name: "over the limit", in: server(0x82, bytes.Repeat([]byte("y"), 1<<17+1)), wantCode: CloseTooLarge},
		{name: "reserved bits", in: server(0xF2, nil), wantCode: CloseProtocolError},
	}
	for _, tt := range tests {
		for _, chunk := range []int{1, 3, 7, 4096} {
			c := &chunkConn{r: bytes.NewReader(tt.in), chunk: chunk}
			var g *Guard
			if tt.http {
				g = NewClientGuard(c, 1<<17)
			} else {
				g = NewGuard(c, ClientSide, 1<<17)
			}
			got, err := io.ReadAll(g)
			var pe *Error
			switch {
			case tt.wantCode == 0 && err != nil:
				t.Errorf("%s, chunk %d: %v", tt.name, chunk, err)
			case tt.wantCode != 0 && (!errors.As(err, &pe) || pe.Code != tt.wantCode):
				t.Errorf("%s, chunk %d: got %v, want code %d", tt.name, chunk, err, tt.wantCode)
			}
			// The library sees nothing of a refused header.
			if len(got) != tt.passed || !bytes.Equal(got, tt.in[:len(got)]) {
				t.Errorf("%s, chunk %d: passed %d bytes, want %d", tt.name, chunk, len(got), tt.passed)
			}
		}
	}
}

// FuzzReader: whatever a client sends, the reader returns frames within its bounds or an error,
// and never panics.
func FuzzReader(f *testing.F) {
	f.Add(topBitLength)
	f.Add(client(0x82, []byte("hello")))
	f.Add(cat(client(0x02, []byte("ab")), client(0x89, []byte("p")), client(0x80, []byte("cd"))))
	f.Add(client(0x88, closePayload(1000, "bye")))
	f.Add([]byte{0x82, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4})
	f.Add(client(0x81, []byte{0xff}))
	f.Fuzz(func(t *testing.T, in []byte) {
		const max = 1024
		r := NewReader(bufio.NewReaderSize(bytes.NewReader(in), 64), ServerSide, max)
		for range 100 {
			fr, err := r.Next()
			if err != nil {
				return
			}
			if len(fr.Payload) > max || fr.Opcode >= OpClose && len(fr.Payload) > MaxControlPayload {
				t.Fatalf("frame op %#x of %d bytes past its bound", fr.Opcode, len(fr.Payload))
			}
		}
	})
}

// FuzzGuard: what the guard lets through parses without a header error, in pieces of any size.
func FuzzGuard(f *testing.F) {
	f.Add(topBitLength[:10], uint8(3))
	f.Add(frame(0x82, []byte("hello"), false, key), uint8(1))
	f.Add(cat(frame(0x82, []byte("a"), false, key), []byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0}), uint8(2))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		const max = 1024
		g := NewGuard(&chunkConn{r: bytes.NewReader(in), chunk: int(chunk%16) + 1}, ClientSide, max)
		passed, _ := io.ReadAll(g)
		r := NewReader(bytes.NewReader(passed), ClientSide, 1<<30)
		for {
			_, err := r.Next()
			var pe *Error
			if errors.As(err, &pe) && pe.Code != CloseInvalidData && pe.Reason != "close payload of one byte" &&
				!bytes.HasPrefix([]byte(pe.Reason), []byte("close code")) &&
				!bytes.HasPrefix([]byte(pe.Reason), []byte("continuation")) &&
				!bytes.HasPrefix([]byte(pe.Reason), []byte("new message")) {
				t.Fatalf("the guard let through a bad header: %v", err)
			}
			if err != nil {
				return
			}
		}
	})
}
