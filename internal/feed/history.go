package feed

import (
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// deltaHistory keeps an instrument's most recent deltas of every stream, oldest first, so a
// client that reconnects with its position gets exactly what it missed instead of a snapshot.
// Owned by the instrument's owner goroutine.
type deltaHistory struct {
	entries []histEntry // ring
	head    int         // oldest entry once full
	max     int
}

type histEntry struct {
	stream int
	d      *pb.Delta
}

func newDeltaHistory(max int) *deltaHistory { return &deltaHistory{max: max} }

func (h *deltaHistory) push(stream int, d *pb.Delta) {
	if h.max <= 0 {
		return
	}
	if len(h.entries) < h.max {
		h.entries = append(h.entries, histEntry{stream, d})
		return
	}
	h.entries[h.head] = histEntry{stream, d}
	h.head = (h.head + 1) % h.max
}

func (h *deltaHistory) reset() {
	clear(h.entries)
	h.entries, h.head = h.entries[:0], 0
}

// since returns the deltas of stream with seq > pos, oldest first, given that the stream's
// latest delta is last. ok is false when deltas after pos are no longer held.
func (h *deltaHistory) since(stream int, pos, last uint64) (out []*pb.Delta, ok bool) {
	if last <= pos {
		return nil, true // nothing happened on the stream since pos
	}
	n := len(h.entries)
	for i := range n {
		e := h.entries[(h.head+i)%n]
		if e.stream != stream || e.d.Seq <= pos {
			continue
		}
		if len(out) == 0 && e.d.PrevSeq > pos {
			return nil, false // the delta right after pos was evicted
		}
		out = append(out, e.d)
	}
	return out, len(out) > 0
}
