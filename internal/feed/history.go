package feed

import (
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// deltaHistory keeps an instrument's most recent deltas of every stream, oldest first, so a
// client that reconnects with its position gets exactly what it missed instead of a snapshot.
// Deltas are kept encoded (the binary ServerMessage every protobuf subscriber was sent): a
// byte slice holds no pointers for the garbage collector to scan, and is half the memory of
// the message objects. Owned by the instrument's owner goroutine.
type deltaHistory struct {
	entries []histEntry // ring
	head    int         // oldest entry once full
	max     int
}

type histEntry struct {
	stream       int
	seq, prevSeq uint64
	msg          []byte // wire.AppendDeltaMessage
}

func newDeltaHistory(max int) *deltaHistory { return &deltaHistory{max: max} }

// push keeps d of stream, encoded as msg.
func (h *deltaHistory) push(stream int, d *pb.Delta, msg []byte) {
	if h.max <= 0 {
		return
	}
	e := histEntry{stream: stream, seq: d.Seq, prevSeq: d.PrevSeq, msg: msg}
	if len(h.entries) < h.max {
		h.entries = append(h.entries, e)
		return
	}
	h.entries[h.head] = e
	h.head = (h.head + 1) % h.max
}

func (h *deltaHistory) reset() {
	clear(h.entries)
	h.entries, h.head = h.entries[:0], 0
}

// since returns the encoded deltas of stream with seq > pos, oldest first, given that the
// stream's latest delta is last. ok is false when deltas after pos are no longer held.
func (h *deltaHistory) since(stream int, pos, last uint64) (out [][]byte, ok bool) {
	if last <= pos {
		return nil, true // nothing happened on the stream since pos
	}
	n := len(h.entries)
	for i := range n {
		e := h.entries[(h.head+i)%n]
		if e.stream != stream || e.seq <= pos {
			continue
		}
		if len(out) == 0 && e.prevSeq > pos {
			return nil, false // the delta right after pos was evicted
		}
		out = append(out, e.msg)
	}
	return out, len(out) > 0
}

// encodeDelta is the binary ServerMessage of d, as history keeps it and protobuf subscribers
// get it.
func encodeDelta(d *pb.Delta) []byte { return wire.AppendDeltaMessage(make([]byte, 0, 64), d) }
