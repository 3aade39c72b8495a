package loadgen

import "testing"

func TestChainFollowsProtocolRule(t *testing.T) {
	var c chain
	check := func(epoch, seq, prev uint64, want deltaVerdict, wantPos uint64) {
		t.Helper()
		if got := c.delta(epoch, seq, prev); got != want || c.pos != wantPos {
			t.Fatalf("delta(%d, %d, prev %d) = %v pos %d, want %v pos %d", epoch, seq, prev, got, c.pos, want, wantPos)
		}
	}
	check(1, 5, 4, deltaUnsynced, 0) // before any snapshot
	c.snapshot(1, 6)
	// The worked example of docs/PROTOCOL.md §7.4.
	check(1, 7, 5, deltaApplied, 7) // prev_seq below p is allowed
	check(1, 8, 7, deltaApplied, 8)
	check(1, 8, 7, deltaDuplicate, 8)
	check(1, 5, 3, deltaDuplicate, 8)
	check(1, 12, 10, deltaGap, 8) // a delta between 8 and 12 was missed
	check(1, 13, 12, deltaUnsynced, 8)
	c.snapshot(1, 13)
	check(1, 14, 13, deltaApplied, 14)
	check(2, 1, 0, deltaGap, 14) // another epoch breaks, even with a lower seq
	c.snapshot(2, 3)
	check(2, 4, 0, deltaApplied, 4) // first delta of the stream in the epoch
}
