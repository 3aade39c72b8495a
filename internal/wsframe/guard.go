package wsframe

import (
	"net"
)

// Guard wraps the connection a WebSocket library reads frames from, and checks every frame
// header in the byte stream before the library sees it: the library never sees a byte of a
// header that ParseHeader refuses (gws v1.9.1 turns a 64-bit length with the top bit set into a
// negative int and panics slicing with it), nor of a header not yet complete. What came before a
// refused header is passed on, then every Read returns the *Error. Writes pass through.
//
// The stream starts at a frame boundary (NewGuard) or, for a client that does its handshake
// through the guard (NewClientGuard), with the HTTP response, whose header is passed on up to its
// blank line.
type Guard struct {
	net.Conn
	role       Role
	maxPayload int

	inHTTP   bool // still in the handshake response's header
	crlfSeen int  // bytes of "\r\n\r\n" matched at the end of what was seen

	// buf[start:ok] is checked and not yet passed on; buf[ok:end] is the start of a header
	// still incomplete.
	buf            []byte
	start, ok, end int
	remain         int   // payload bytes of the current frame not yet checked over
	err, readErr   error // the refused header; the connection's own error
}

// guardBuffer is the guard's read size: the library reads through its own buffer too.
const guardBuffer = 4 << 10

// NewGuard returns c guarded for role, refusing frames of more than maxPayload bytes.
func NewGuard(c net.Conn, role Role, maxPayload int) *Guard {
	return &Guard{Conn: c, role: role, maxPayload: maxPayload}
}

// NewClientGuard returns c guarded for a client that sends its handshake request through it:
// what the server sends is an HTTP response header, then frames.
func NewClientGuard(c net.Conn, maxPayload int) *Guard {
	return &Guard{Conn: c, role: ClientSide, maxPayload: maxPayload, inHTTP: true}
}

// Err returns the protocol error the guard found, or nil.
func (g *Guard) Err() error { return g.err }

// Read passes on checked bytes, reading from the connection when it has none.
func (g *Guard) Read(p []byte) (int, error) {
	for g.ok == g.start {
		switch {
		case g.err != nil:
			return 0, g.err
		case g.readErr != nil:
			return 0, g.readErr
		}
		if g.buf == nil {
			g.buf = make([]byte, guardBuffer)
		}
		// What is left is an incomplete header (at most MaxHeader-1 bytes): move it to the front.
		g.end = copy(g.buf, g.buf[g.start:g.end])
		g.start, g.ok = 0, 0
		n, err := g.Conn.Read(g.buf[g.end:])
		g.end += n
		g.readErr = err
		g.scan()
	}
	n := copy(p, g.buf[g.start:g.ok])
	g.start += n
	return n, nil
}

// scan checks buf[ok:end] and moves ok past what is fine, up to an incomplete header or the
// first refused one (recorded in err).
func (g *Guard) scan() {
	for g.ok < g.end && g.err == nil {
		b := g.buf[g.ok:g.end]
		switch {
		case g.inHTTP:
			const end = "\r\n\r\n"
			switch {
			case b[0] == end[g.crlfSeen]:
				g.crlfSeen++
			case b[0] == '\r':
				g.crlfSeen = 1
			default:
				g.crlfSeen = 0
			}
			g.ok++
			g.inHTTP = g.crlfSeen < len(end)
		case g.remain > 0:
			k := min(g.remain, len(b))
			g.remain -= k
			g.ok += k
		default:
			if len(b) < 2 {
				return
			}
			if err := checkStart(b[0], b[1], g.role); err != nil {
				g.err = err
				return
			}
			size := headerSize(b[1])
			if len(b) < size {
				return
			}
			n, err := checkLength(b[1], b[2:], g.maxPayload)
			if err != nil {
				g.err = err
				return
			}
			g.remain = n
			g.ok += size
		}
	}
}
