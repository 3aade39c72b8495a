package fanout

import (
	"encoding/binary"
	"time"

	"github.com/tickwire/tickwire/pkg/wire"
)

// WebSocket opcodes (RFC 6455 section 5.2). Server frames are never masked, and this package
// never compresses, so a frame is a 2-10 byte header and the payload.
const (
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
	opPing   = 0x9
	opPong   = 0xA
)

// maxControlPayload is RFC 6455's bound on a control frame's payload.
const maxControlPayload = 125

// appendHeader appends the header of a final, unmasked frame with n bytes of payload.
func appendHeader(dst []byte, op byte, n int) []byte {
	switch {
	case n < 126:
		return append(dst, 0x80|op, byte(n))
	case n <= 0xFFFF:
		return append(dst, 0x80|op, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x80|op, 127)
		return binary.BigEndian.AppendUint64(dst, uint64(n))
	}
}

// appendControl appends a control frame, its payload cut to 125 bytes.
func appendControl(dst []byte, op byte, payload []byte) []byte {
	if len(payload) > maxControlPayload {
		payload = payload[:maxControlPayload]
	}
	return append(appendHeader(dst, op, len(payload)), payload...)
}

// appendClose appends a close frame with code and reason (cut so that the payload fits).
func appendClose(dst []byte, code int, reason string) []byte {
	if len(reason) > maxControlPayload-2 {
		reason = reason[:maxControlPayload-2]
	}
	dst = appendHeader(dst, opClose, 2+len(reason))
	dst = binary.BigEndian.AppendUint16(dst, uint16(code))
	return append(dst, reason...)
}

// framer joins queued messages into WebSocket frames of at most maxFrame payload bytes each,
// stamped with the send time. Its buffers are reused from one connection to the next.
type framer struct {
	jsonScratch []byte
	jsons       [][]byte
}

// appendFrames appends the frames carrying items to dst. A binary frame is the messages one
// after the other and the send time (pkg/wire's frame layout); a JSON frame is wire.JSONFrame.
func (f *framer) appendFrames(dst []byte, items []item, json bool, maxFrame int, now time.Time) []byte {
	ns := now.UnixNano()
	for start := 0; start < len(items); {
		n, size := 0, 0
		for start+n < len(items) && (n == 0 || size+len(items[start+n].b) <= maxFrame) {
			size += len(items[start+n].b)
			n++
		}
		batch := items[start : start+n]
		if json {
			f.jsons = f.jsons[:0]
			for _, it := range batch {
				f.jsons = append(f.jsons, it.b)
			}
			f.jsonScratch = wire.JSONFrame(f.jsonScratch[:0], f.jsons, ns)
			clear(f.jsons)
			dst = appendHeader(dst, opText, len(f.jsonScratch))
			dst = append(dst, f.jsonScratch...)
		} else {
			var tail [16]byte
			sendTime := wire.AppendSendTime(tail[:0], ns)
			dst = appendHeader(dst, opBinary, size+len(sendTime))
			for _, it := range batch {
				dst = append(dst, it.b...)
			}
			dst = append(dst, sendTime...)
		}
		start += n
	}
	return dst
}
