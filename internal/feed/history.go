package feed

import (
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// deltaHistory keeps an instrument's most recent deltas of every stream, oldest first, so a
// client that reconnects with its position gets exactly what it missed instead of a snapshot.
// Deltas are kept encoded (the binary ServerMessage every protobuf subscriber was sent): a
// byte slice holds no pointers for the garbage collector to scan, and is half the memory of
// the message objects. It holds at most max deltas and, with maxBytes > 0, at most maxBytes
// of memory (histEntrySize plus the encoding, each), evicting the oldest first. Owned by the
// instrument's owner goroutine.
type deltaHistory struct {
	entries  []histEntry // ring: n entries from head, grown up to max
	head, n  int
	bytes    int // memory held: histEntrySize + len(msg) per entry
	max      int
	maxBytes int
}

type histEntry struct {
	stream       int
	seq, prevSeq uint64
	msg          []byte // wire.AppendDeltaMessage
}

// histEntrySize is what an entry costs besides its encoding, on 64-bit platforms
// (TestHistoryEntrySize).
const histEntrySize = 48

// newDeltaHistory keeps up to max deltas (none if max <= 0) in up to maxBytes (no byte bound
// if maxBytes <= 0).
func newDeltaHistory(max, maxBytes int) *deltaHistory {
	return &deltaHistory{max: max, maxBytes: maxBytes}
}

// push keeps d of stream, encoded as msg, evicting the oldest deltas past either bound. A
// delta larger than maxBytes by itself is not kept, and empties the history: resuming across
// it is impossible.
func (h *deltaHistory) push(stream int, d *pb.Delta, msg []byte) {
	if h.max <= 0 {
		return
	}
	size := histEntrySize + len(msg)
	if h.maxBytes > 0 && size > h.maxBytes {
		h.reset()
		return
	}
	for h.n > 0 && (h.n == h.max || h.maxBytes > 0 && h.bytes+size > h.maxBytes) {
		h.evict()
	}
	if h.n == len(h.entries) {
		h.grow()
	}
	h.entries[(h.head+h.n)%len(h.entries)] = histEntry{stream: stream, seq: d.Seq, prevSeq: d.PrevSeq, msg: msg}
	h.n++
	h.bytes += size
}

// evict drops the oldest delta.
func (h *deltaHistory) evict() {
	e := &h.entries[h.head]
	h.bytes -= histEntrySize + len(e.msg)
	*e = histEntry{}
	h.head = (h.head + 1) % len(h.entries)
	h.n--
}

// grow makes room for one more entry: twice the room, but never more than max, so a full
// history holds exactly max entries (append's growth would leave up to a quarter unused).
func (h *deltaHistory) grow() {
	size := min(max(2*len(h.entries), 16), h.max)
	grown := make([]histEntry, size)
	for i := range h.n {
		grown[i] = h.entries[(h.head+i)%len(h.entries)]
	}
	h.entries, h.head = grown, 0
}

func (h *deltaHistory) reset() {
	clear(h.entries)
	h.head, h.n, h.bytes = 0, 0, 0
}

// since returns the encoded deltas of stream with seq > pos, oldest first, given that the
// stream's latest delta is last. ok is false when deltas after pos are no longer held.
func (h *deltaHistory) since(stream int, pos, last uint64) (out [][]byte, ok bool) {
	if last <= pos {
		return nil, true // nothing happened on the stream since pos
	}
	for i := range h.n {
		e := h.entries[(h.head+i)%len(h.entries)]
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
