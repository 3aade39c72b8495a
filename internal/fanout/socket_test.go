package fanout

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/tickwire/tickwire/internal/testwait"
)

// TestNetSocket: both kinds of socket take what fits without waiting, report a full buffer as a
// short write with no error, and fail once the peer is gone.
func TestNetSocket(t *testing.T) {
	tcp := func(t *testing.T) (net.Conn, net.Conn) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		return s, c
	}
	for _, tc := range []struct {
		name string
		pair func(*testing.T) (net.Conn, net.Conn)
		want string // the Socket NetSocket picks
	}{
		{"tcp", tcp, "*fanout.rawSocket"},
		{"pipe", func(*testing.T) (net.Conn, net.Conn) { return net.Pipe() }, "*fanout.deadlineSocket"},
		{"tls", tlsPair, "*fanout.tlsSocket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			server, client := tc.pair(t)
			defer client.Close()
			sock := NetSocket(server)
			if got := typeName(sock); got != tc.want {
				t.Fatalf("NetSocket gave %s, want %s", got, tc.want)
			}
			// Nobody reads: writes are taken until the buffers are full, then come back short
			// (and quickly: a full socket must never park the writer).
			chunk := make([]byte, 64<<10)
			full := false
			for range 1000 {
				start := time.Now()
				n, err := sock.TryWrite(chunk)
				if err != nil {
					t.Fatalf("write to a live peer: %v", err)
				}
				if d := time.Since(start); d > time.Second {
					t.Fatalf("a write waited %v", d)
				}
				if n < len(chunk) {
					full = true
					break
				}
			}
			if !full {
				t.Fatal("64 MiB taken with nobody reading")
			}
			// The peer reads: what was refused is taken again.
			go func() { _, _ = io.Copy(io.Discard, client) }()
			deadline := time.Now().Add(5 * time.Second)
			for n := 0; n < len(chunk); {
				if time.Now().After(deadline) {
					t.Fatal("the socket did not drain")
				}
				m, err := sock.TryWrite(chunk[n:])
				if err != nil {
					t.Fatalf("write while the peer reads: %v", err)
				}
				n += m
			}
			// The peer is gone: an error, not a short write forever.
			client.Close()
			testwait.For(t, 5*time.Second, "an error writing to the closed peer", func() bool {
				_, err := sock.TryWrite(chunk)
				return err != nil
			})
			if err := sock.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
		})
	}
}

func typeName(v any) string {
	switch v.(type) {
	case *rawSocket:
		return "*fanout.rawSocket"
	case *deadlineSocket:
		return "*fanout.deadlineSocket"
	case *tlsSocket:
		return "*fanout.tlsSocket"
	}
	return "other"
}
