// Package chaos runs Tickwire's cluster (3 NATS nodes, 2 ingest processes under a lease, 3
// feed replicas behind HAProxy) under load while a schedule kills and cuts its parts, and
// proves what clients saw: every client's book, at every position it reached, is compared with
// a reference built from the stored events themselves, and every event the store acknowledged
// is found in it at the end.
package chaos

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"

	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// Reference is every instrument's book as the event stream says, after each event: a plain
// map of price to size per side, written here rather than taken from pkg/book or pkg/market,
// so that a bug shared by the feed and the SDK cannot hide itself. Safe for concurrent use.
type Reference struct {
	depth int

	mu    sync.Mutex
	insts map[string]*refInstrument // guarded by mu
	n     uint64                    // events applied; guarded by mu
	gaps  []Gap                     // guarded by mu
	dups  uint64                    // guarded by mu
}

// Gap is a hole in one instrument's sequence within an epoch, as stored.
type Gap struct {
	Instrument    string
	Epoch         uint64
	After, Before uint64 // the seqs on either side
}

type refInstrument struct {
	bids, asks map[int64]int64
	epochs     map[uint64]*refEpoch
	cur        *refEpoch
}

// refEpoch holds the fingerprint of the book after each event of one epoch.
type refEpoch struct {
	epoch uint64
	first uint64   // seq of fps[0]
	fps   []uint64 // fingerprint after seq first+i; 0 where a gap left no event
}

func (e *refEpoch) last() uint64 { return e.first + uint64(len(e.fps)) - 1 }

// NewReference returns a Reference comparing the top depth levels of each side.
func NewReference(depth int) *Reference {
	return &Reference{depth: depth, insts: make(map[string]*refInstrument)}
}

// Apply applies the next stored event (in stream order).
func (r *Reference) Apply(ev *pb.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	in := r.insts[ev.GetInstrument()]
	if in == nil {
		in = &refInstrument{bids: map[int64]int64{}, asks: map[int64]int64{}, epochs: map[uint64]*refEpoch{}}
		r.insts[ev.GetInstrument()] = in
	}
	e := in.cur
	switch {
	case e == nil || ev.GetEpoch() != e.epoch:
		// A new epoch voids the state: what comes next starts from its snapshot.
		clear(in.bids)
		clear(in.asks)
		e = &refEpoch{epoch: ev.GetEpoch(), first: ev.GetSeq()}
		in.epochs[e.epoch] = e
		in.cur = e
	case ev.GetSeq() <= e.last():
		r.dups++
		return
	case ev.GetSeq() > e.last()+1:
		r.gaps = append(r.gaps, Gap{Instrument: ev.GetInstrument(), Epoch: e.epoch, After: e.last(), Before: ev.GetSeq()})
		for e.last()+1 < ev.GetSeq() {
			e.fps = append(e.fps, 0)
		}
	}
	if bu := ev.GetBook(); bu != nil {
		if bu.GetSnapshot() {
			clear(in.bids)
			clear(in.asks)
		}
		for _, l := range bu.GetBids() {
			set(in.bids, l)
		}
		for _, l := range bu.GetAsks() {
			set(in.asks, l)
		}
	}
	e.fps = append(e.fps, r.fingerprint(in))
}

func set(side map[int64]int64, l *pb.Level) {
	if l.GetSize() == 0 {
		delete(side, l.GetPrice())
		return
	}
	side[l.GetPrice()] = l.GetSize()
}

// fingerprint hashes the top depth levels of each side, best first.
func (r *Reference) fingerprint(in *refInstrument) uint64 {
	bids := top(in.bids, r.depth, func(a, b int64) int { return cmp.Compare(b, a) })
	asks := top(in.asks, r.depth, func(a, b int64) int { return cmp.Compare(a, b) })
	return Fingerprint(bids, asks)
}

func top(side map[int64]int64, depth int, order func(a, b int64) int) [][2]int64 {
	prices := make([]int64, 0, len(side))
	for p := range side {
		prices = append(prices, p)
	}
	slices.SortFunc(prices, order)
	prices = prices[:min(depth, len(prices))]
	out := make([][2]int64, len(prices))
	for i, p := range prices {
		out[i] = [2]int64{p, side[p]}
	}
	return out
}

// Fingerprint hashes a book's levels, each side best first, as (price, size) pairs. Never 0.
func Fingerprint(bids, asks [][2]int64) uint64 {
	h := fnv.New64a()
	var b [8]byte
	put := func(v int64) {
		for i := range 8 {
			b[i] = byte(uint64(v) >> (8 * i))
		}
		_, _ = h.Write(b[:])
	}
	for _, side := range [][][2]int64{bids, asks} {
		put(int64(len(side)))
		for _, l := range side {
			put(l[0])
			put(l[1])
		}
	}
	return max(h.Sum64(), 1)
}

// Verdict is the outcome of comparing a client's book with the reference.
type Verdict int

// The verdicts.
const (
	Match   Verdict = iota // the same book at that position
	Wrong                  // a different book at that position
	Ahead                  // the reference has not read that position yet
	Unknown                // no such position was stored (an epoch or seq never seen, or a gap)
)

func (v Verdict) String() string {
	return [...]string{"match", "wrong", "ahead", "unknown"}[v]
}

// Check compares a client's book fingerprint fp for instrument at (epoch, seq) with the
// reference's.
func (r *Reference) Check(instrument string, epoch, seq, fp uint64) Verdict {
	r.mu.Lock()
	defer r.mu.Unlock()
	in := r.insts[instrument]
	if in == nil {
		return Ahead
	}
	e := in.epochs[epoch]
	switch {
	case e == nil && epoch > in.cur.epoch:
		return Ahead
	case e == nil || seq < e.first:
		return Unknown
	case seq > e.last():
		if e == in.cur {
			return Ahead
		}
		return Unknown
	}
	want := e.fps[seq-e.first]
	switch {
	case want == 0:
		return Unknown
	case want == fp:
		return Match
	}
	return Wrong
}

// Head returns instrument's last stored position and the fingerprint of its book there.
func (r *Reference) Head(instrument string) (epoch, seq, fp uint64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	in := r.insts[instrument]
	if in == nil || in.cur == nil || len(in.cur.fps) == 0 {
		return 0, 0, 0, false
	}
	e := in.cur
	return e.epoch, e.last(), e.fps[len(e.fps)-1], true
}

// Stats returns the events applied, the gaps and the duplicates found in the stream.
func (r *Reference) Stats() (events uint64, gaps []Gap, dups uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n, slices.Clone(r.gaps), r.dups
}

// Instruments returns the instruments seen, sorted.
func (r *Reference) Instruments() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.insts))
	for k := range r.insts {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (g Gap) String() string {
	return fmt.Sprintf("%s epoch %d: seq %d then %d", g.Instrument, g.Epoch, g.After, g.Before)
}
