package feed

import (
	"bytes"
	"fmt"
	"testing"
	"unsafe"

	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

func TestHistoryEntrySize(t *testing.T) {
	if got := int(unsafe.Sizeof(histEntry{})); got != histEntrySize {
		t.Fatalf("histEntry is %d bytes, histEntrySize says %d", got, histEntrySize)
	}
}

// histMsg is a stand-in encoding of size bytes that names its seq.
func histMsg(seq uint64, size int) []byte {
	b := fmt.Appendf(nil, "%d:", seq)
	return append(b, bytes.Repeat([]byte{'x'}, size-len(b))...)
}

// TestDeltaHistoryBounds pushes deltas 1..pushed of one stream (each prevSeq the one before)
// and checks what the history holds: the count and byte bounds at their limit and past it.
func TestDeltaHistoryBounds(t *testing.T) {
	const size = 52 // + histEntrySize = 100 bytes a delta
	per := histEntrySize + size
	tests := []struct {
		name            string
		max, maxBytes   int
		pushed          int
		wantFirst       uint64 // oldest held; 0: none
		wantN, wantSize int
	}{
		{"count: below", 8, 0, 5, 1, 5, 5 * per},
		{"count: at the limit", 8, 0, 8, 1, 8, 8 * per},
		{"count: past it", 8, 0, 9, 2, 8, 8 * per},
		{"count: far past it, ring wrapped many times", 8, 0, 100, 93, 8, 8 * per},
		{"count: growth past 16 keeps exactly max", 20, 0, 50, 31, 20, 20 * per},
		{"bytes: at the limit", 100, 5 * per, 5, 1, 5, 5 * per},
		{"bytes: past it", 100, 5 * per, 6, 2, 5, 5 * per},
		{"bytes: one short of the limit holds one less", 100, 5*per - 1, 5, 2, 4, 4 * per},
		{"bytes: the tighter bound wins (count)", 3, 5 * per, 10, 8, 3, 3 * per},
		{"bytes: the tighter bound wins (bytes)", 10, 2 * per, 10, 9, 2, 2 * per},
		{"bytes: one delta exactly the bound", 100, per, 4, 4, 1, per},
		{"bytes: a delta above the bound is not kept", 100, per - 1, 4, 0, 0, 0},
		{"none kept (max 0)", 0, 0, 4, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newDeltaHistory(tt.max, tt.maxBytes)
			for seq := uint64(1); seq <= uint64(tt.pushed); seq++ {
				h.push(0, &pb.Delta{Seq: seq, PrevSeq: seq - 1}, histMsg(seq, size))
			}
			if h.n != tt.wantN || h.bytes != tt.wantSize {
				t.Fatalf("holds %d deltas in %d bytes, want %d in %d", h.n, h.bytes, tt.wantN, tt.wantSize)
			}
			if cap(h.entries) > max(tt.max, 0) {
				t.Fatalf("ring of %d entries, more than max %d", cap(h.entries), tt.max)
			}
			last := uint64(tt.pushed)
			if tt.wantFirst == 0 {
				if _, ok := h.since(0, 0, last); ok && last > 0 {
					t.Fatal("since(0) ok with nothing held")
				}
				return
			}
			// From the position before the oldest held: every held delta, in order.
			out, ok := h.since(0, tt.wantFirst-1, last)
			if !ok || len(out) != tt.wantN {
				t.Fatalf("since(%d) = %d deltas, ok %v; want %d", tt.wantFirst-1, len(out), ok, tt.wantN)
			}
			for i, m := range out {
				if want := histMsg(tt.wantFirst+uint64(i), size); !bytes.Equal(m, want) {
					t.Fatalf("delta %d is %.8q, want %.8q", i, m, want)
				}
			}
			// From an evicted position: not ok (the client gets a HISTORY_GONE snapshot).
			if tt.wantFirst > 1 {
				if out, ok := h.since(0, tt.wantFirst-2, last); ok {
					t.Fatalf("since(%d) = %d deltas, ok; the delta after it was evicted", tt.wantFirst-2, len(out))
				}
			}
		})
	}
}

// TestDeltaHistoryStreams: deltas of several streams share the bounds; since picks one
// stream's, and an eviction of another stream's deltas does not break its chain.
func TestDeltaHistoryStreams(t *testing.T) {
	h := newDeltaHistory(4, 0)
	// quote 1, book 1, quote 2, book 2, quote 3: the oldest (quote 1) is evicted.
	h.push(0, &pb.Delta{Seq: 1, PrevSeq: 0}, []byte("q1"))
	h.push(1, &pb.Delta{Seq: 1, PrevSeq: 0}, []byte("b1"))
	h.push(0, &pb.Delta{Seq: 2, PrevSeq: 1}, []byte("q2"))
	h.push(1, &pb.Delta{Seq: 2, PrevSeq: 1}, []byte("b2"))
	h.push(0, &pb.Delta{Seq: 3, PrevSeq: 2}, []byte("q3"))
	if out, ok := h.since(1, 0, 2); !ok || len(out) != 2 || string(out[0]) != "b1" || string(out[1]) != "b2" {
		t.Fatalf("book since 0: %q %v", out, ok)
	}
	if out, ok := h.since(0, 1, 3); !ok || len(out) != 2 || string(out[0]) != "q2" || string(out[1]) != "q3" {
		t.Fatalf("quote since 1: %q %v", out, ok)
	}
	if _, ok := h.since(0, 0, 3); ok {
		t.Fatal("quote since 0: q1 was evicted")
	}
	if out, ok := h.since(0, 3, 3); !ok || len(out) != 0 {
		t.Fatalf("quote since its last: %q %v, want nothing and ok", out, ok)
	}
	h.reset()
	if h.n != 0 || h.bytes != 0 {
		t.Fatalf("after reset: %d deltas, %d bytes", h.n, h.bytes)
	}
	if _, ok := h.since(0, 2, 3); ok {
		t.Fatal("since after reset: ok")
	}
	h.push(0, &pb.Delta{Seq: 1, PrevSeq: 0}, []byte("n1"))
	if out, ok := h.since(0, 0, 1); !ok || len(out) != 1 || string(out[0]) != "n1" {
		t.Fatalf("after reset and a push: %q %v", out, ok)
	}
}

func TestResumeHistoryBytesValidated(t *testing.T) {
	for _, tc := range []struct {
		bytes int
		ok    bool
	}{{0, true}, {1, true}, {64 << 10, true}, {-1, false}} {
		if err := (Config{ResumeHistoryBytes: tc.bytes}).Validate(); (err == nil) != tc.ok {
			t.Errorf("ResumeHistoryBytes %d: %v, want ok %v", tc.bytes, err, tc.ok)
		}
	}
}
