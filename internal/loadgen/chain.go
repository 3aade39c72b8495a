package loadgen

// chain is one stream's position as a client holds it (docs/PROTOCOL.md §7.4): a delta
// follows on from position p in the same epoch exactly when prev_seq <= p < seq.
type chain struct {
	epoch  uint64
	pos    uint64
	synced bool
	// ingestNs is the ingest time of the stream's latest update: the base of a CompactQuote.
	ingestNs int64
}

// deltaVerdict is what a delta did to its stream.
type deltaVerdict uint8

const (
	deltaApplied   deltaVerdict = iota // followed on: p = seq
	deltaUnsynced                      // ignored: the stream waits for a snapshot
	deltaDuplicate                     // ignored: seq <= p
	deltaGap                           // prev_seq > p or another epoch: the stream broke
)

// snapshot replaces the stream's position.
func (c *chain) snapshot(epoch, seq uint64) {
	c.epoch, c.pos, c.synced = epoch, seq, true
}

// delta checks a delta against the position, in the order of §7.4 (epoch first), and moves
// the position on when it applies. On a gap the stream is unsynced until its next snapshot;
// the caller asks for a resync once.
func (c *chain) delta(epoch, seq, prevSeq uint64) deltaVerdict {
	switch {
	case !c.synced:
		return deltaUnsynced
	case epoch != c.epoch:
		c.synced = false
		return deltaGap
	case seq <= c.pos:
		return deltaDuplicate
	case prevSeq > c.pos:
		c.synced = false
		return deltaGap
	}
	c.pos = seq
	return deltaApplied
}
