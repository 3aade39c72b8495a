package feed

// Warm start: state checkpoints.
//
// A feed replica restarting does not replay the whole event stream (tens of minutes at the
// default 24 h retention): it loads the latest state checkpoint and consumes only the tail
// after it (docs/OPERATIONS.md, Warm start).
//
// A checkpoint is every instrument's market.State (reference data, the whole book, the trades,
// candles and session statistics the state keeps, its epoch, seq and stream chains) at one
// event-stream sequence S, with the shape of the states (depths, histories), the stream's
// creation time and when it was taken: a FeedCheckpoint (proto/tickwire/v1/checkpoint.proto,
// internal, never sent to clients), in an envelope of a magic, a format version and a CRC-32C of
// the encoding, so that corruption is detected before anything is loaded.
//
// Consistency: it is taken on the consumer's goroutine after the handler dispatched message S
// (bus.ConsumeOptions.AfterEach), while no later event can be dispatched: every owner is asked
// for its instruments' states by a command, which it handles after applying every event queued
// before it (see owner.run). So the checkpoint is exactly the state after S, and consuming from
// S+1 gives the state a full replay gives (TestWarmStartEqualsFullReplay). Each owner encodes its
// own instruments; the consumer waits only for that (milliseconds for hundreds of instruments),
// and the write to JetStream runs behind, one at a time.
//
// Where: the bus's checkpoint store (internal/bus, checkpoint.go): a JetStream stream beside the
// event stream, with bus.CheckpointSlots slots; each write replaces the oldest. Every replica
// writes, at most once per --checkpoint-interval and only once ready; replicas racing each other
// is harmless since each checkpoint is whole and self-consistent (two writing the same slot at
// once leave it unreadable, and a reader takes the next).
//
// Loading: the newest checkpoint first; one that cannot be read, fails its checksum, is of
// another format, shape or stream, is ahead of the stream, or whose next event the stream no
// longer holds is skipped with a warning naming why, for the previous one; with none usable the
// whole stream is replayed, as on a first start, and the log says so. Resume history (the
// deltas a reconnecting client is sent) is rebuilt from the tail only: a client positioned
// before the checkpoint gets a snapshot, as after any history it missed (PROTOCOL.md).

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/pkg/market"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// checkpointFormat is the FeedCheckpoint format this feed writes and loads.
const checkpointFormat = 1

// checkpointMagic starts every stored checkpoint: magic, format (uint32 BE), CRC-32C of the rest
// (uint32 BE), then the FeedCheckpoint.
const checkpointMagic = "TWCK"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CheckpointStore keeps state checkpoints; *bus.Bus is one.
type CheckpointStore interface {
	Checkpoints(ctx context.Context) ([]bus.CheckpointInfo, error)
	ReadCheckpoint(ctx context.Context, ci bus.CheckpointInfo) ([]byte, error)
	PutCheckpoint(ctx context.Context, streamSeq uint64, taken time.Time, data []byte) (bus.CheckpointInfo, error)
	StreamState(ctx context.Context) (bus.StreamState, error)
}

// sealCheckpoint wraps an encoded FeedCheckpoint in its envelope.
func sealCheckpoint(payload []byte) []byte {
	out := make([]byte, 12, 12+len(payload))
	copy(out, checkpointMagic)
	binary.BigEndian.PutUint32(out[4:], checkpointFormat)
	binary.BigEndian.PutUint32(out[8:], crc32.Checksum(payload, castagnoli))
	return append(out, payload...)
}

// openCheckpoint checks a stored checkpoint's envelope and decodes it.
func openCheckpoint(data []byte) (*pb.FeedCheckpoint, error) {
	if len(data) < 12 || string(data[:4]) != checkpointMagic {
		return nil, errors.New("not a checkpoint (no magic)")
	}
	if f := binary.BigEndian.Uint32(data[4:]); f != checkpointFormat {
		return nil, fmt.Errorf("format %d, this feed reads %d", f, checkpointFormat)
	}
	payload := data[12:]
	if sum := crc32.Checksum(payload, castagnoli); sum != binary.BigEndian.Uint32(data[8:]) {
		return nil, fmt.Errorf("checksum %08x, stored %08x: corrupt", sum, binary.BigEndian.Uint32(data[8:]))
	}
	var cp pb.FeedCheckpoint
	if err := proto.Unmarshal(payload, &cp); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if cp.Format != checkpointFormat {
		return nil, fmt.Errorf("format %d inside, this feed reads %d", cp.Format, checkpointFormat)
	}
	return &cp, nil
}

// ownerCheckpoint carries a checkpoint or restore command's data to an owner.
type ownerCheckpoint struct {
	restore []*market.State // cmdRestore: install these
	out     []byte          // cmdCheckpoint: the owner's instruments, as FeedCheckpoint.instruments entries
	err     error
}

// fieldInstruments is FeedCheckpoint.instruments' field number: entries encoded apart and
// joined form the repeated field.
const fieldInstruments = 6

// checkpoint encodes every instrument of the owner into c.out.
func (o *owner) checkpoint(c *ownerCheckpoint) {
	for _, in := range o.instruments {
		b, err := proto.Marshal(in.st.Checkpoint())
		if err != nil {
			c.err = fmt.Errorf("checkpoint %s: %w", in.st.ID(), err)
			return
		}
		c.out = protowire.AppendTag(c.out, fieldInstruments, protowire.BytesType)
		c.out = protowire.AppendBytes(c.out, b)
	}
}

// restore installs restored states as the owner's instruments (before any event).
func (o *owner) restore(c *ownerCheckpoint) {
	for _, st := range c.restore {
		in := o.addInstrument(st.ID(), st)
		if info := st.Info(); info != nil {
			o.hub.setInfo(st.ID(), info)
		}
		_ = in
	}
}

// addInstrument adds an instrument with state st to the owner.
func (o *owner) addInstrument(id string, st *market.State) *instrument {
	in := &instrument{st: st, bySess: make(map[*session][]*sub), hist: newDeltaHistory(o.hub.cfg.ResumeHistory, o.hub.cfg.ResumeHistoryBytes)}
	in.streams = make([][]*sub, o.hub.cfg.Market.NumStreams())
	in.handle = o.hub.register(id)
	if old := o.instruments[id]; old != nil {
		o.histBytes.Add(-int64(old.hist.bytes)) // its history goes with it
	}
	o.instruments[id] = in
	return in
}

// askOwners posts a checkpoint or restore command to each owner with its part (nil: an empty
// one) and waits until every owner handled its own.
func (h *Hub) askOwners(ctx context.Context, kind commandKind, parts []*ownerCheckpoint) error {
	dones := make([]chan struct{}, len(h.owners))
	for i, o := range h.owners {
		if parts[i] == nil {
			parts[i] = &ownerCheckpoint{}
		}
		dones[i] = make(chan struct{})
		o.post(command{kind: kind, ckpt: parts[i], done: dones[i]})
	}
	for _, d := range dones {
		select {
		case <-d:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for _, p := range parts {
		if p.err != nil {
			return p.err
		}
	}
	return nil
}

// takeCheckpoint returns the sealed checkpoint of every instrument at stream sequence seq. The
// caller guarantees that the events dispatched so far are exactly those up to seq, and that none
// is dispatched until it returns.
func (s *Server) takeCheckpoint(ctx context.Context, seq uint64, created time.Time) ([]byte, error) {
	parts := make([]*ownerCheckpoint, len(s.hub.owners))
	if err := s.hub.askOwners(ctx, cmdCheckpoint, parts); err != nil {
		return nil, err
	}
	hdr := &pb.FeedCheckpoint{Format: checkpointFormat, StreamSeq: seq, StreamCreatedNs: created.UnixNano(),
		TakenNs: time.Now().UnixNano(), Shape: s.cfg.Market.Shape()}
	if st := s.candles.store; st != nil {
		// At S too: the store takes trades in Dispatch, on the caller's goroutine.
		hdr.CandleStoreIntervalNs, hdr.CandleStore = st.ivNs, st.export()
	}
	head, err := proto.Marshal(hdr)
	if err != nil {
		return nil, err
	}
	size := len(head)
	for _, p := range parts {
		size += len(p.out)
	}
	payload := make([]byte, 0, size)
	payload = append(payload, head...)
	for _, p := range parts {
		payload = append(payload, p.out...)
	}
	return sealCheckpoint(payload), nil
}

// restoreCheckpoint builds every instrument's state from cp and installs them (the server must
// have no instrument yet). Nothing is installed when a state does not restore.
func (s *Server) restoreCheckpoint(ctx context.Context, cp *pb.FeedCheckpoint) error {
	if !s.cfg.Market.SameShape(cp.Shape) {
		return fmt.Errorf("taken with another market shape (depths %v, trade history %d, candle intervals %v, candle history %d)",
			cp.Shape.GetDepths(), cp.Shape.GetTradeHistory(), cp.Shape.GetCandleIntervals(), cp.Shape.GetCandleHistory())
	}
	parts := make([]*ownerCheckpoint, len(s.hub.owners))
	idx := make(map[*owner]int, len(s.hub.owners))
	for i, o := range s.hub.owners {
		idx[o] = i
		parts[i] = &ownerCheckpoint{}
	}
	seen := make(map[string]bool, len(cp.Instruments))
	for _, is := range cp.Instruments {
		if seen[is.GetId()] {
			return fmt.Errorf("instrument %s twice", is.GetId())
		}
		seen[is.GetId()] = true
		st, err := market.RestoreState(s.cfg.Market, is)
		if err != nil {
			return err
		}
		p := parts[idx[s.hub.ownerOf(st.ID())]]
		p.restore = append(p.restore, st)
	}
	if st := s.candles.store; st != nil {
		if cp.CandleStoreIntervalNs != st.ivNs {
			return fmt.Errorf("taken with another candle store interval (%ds)", cp.CandleStoreIntervalNs/1e9)
		}
		if err := st.load(cp.CandleStore); err != nil {
			return err
		}
	}
	return s.hub.askOwners(ctx, cmdRestore, parts)
}

// WarmupStatus is a feed's progress through the stored events before it is ready, as
// /readyz?verbose and the log show it.
type WarmupStatus struct {
	// FromCheckpoint: the state came from the checkpoint at CheckpointSeq; the events are the
	// tail after it. Otherwise the whole stream is replayed.
	FromCheckpoint bool   `json:"from_checkpoint"`
	CheckpointSeq  uint64 `json:"checkpoint_seq,omitempty"`
	// Events consumed so far of Total (the stream's messages from the start position up to its
	// last one when consuming began).
	Events  uint64  `json:"events"`
	Total   uint64  `json:"total"`
	Percent float64 `json:"percent"`
	// ETASeconds at the rate so far (absent until there is one).
	ETASeconds *float64 `json:"eta_seconds,omitempty"`
	Elapsed    float64  `json:"elapsed_seconds"`
}

// warmup counts a feed's progress through the stored events. Updated on the consumer's
// goroutine, read by /readyz and the progress log.
type warmup struct {
	fromCheckpoint bool
	checkpointSeq  uint64
	from, target   uint64 // stream sequences: the first to consume, the last stored at the start
	started        time.Time
	seq            atomic.Uint64 // the last stream sequence consumed
	events         atomic.Uint64
}

func (w *warmup) status() WarmupStatus {
	st := WarmupStatus{FromCheckpoint: w.fromCheckpoint, CheckpointSeq: w.checkpointSeq, Events: w.events.Load(),
		Elapsed: time.Since(w.started).Seconds()}
	if w.target >= w.from {
		st.Total = w.target - w.from + 1
	}
	done := uint64(0)
	if seq := w.seq.Load(); seq >= w.from {
		done = min(seq-w.from+1, st.Total)
	}
	if st.Total == 0 {
		st.Percent = 100
	} else {
		st.Percent = math.Round(1000*float64(done)/float64(st.Total)) / 10
	}
	if done > 0 && st.Elapsed > 0 {
		eta := math.Round(float64(st.Total-done)/(float64(done)/st.Elapsed)*10) / 10
		st.ETASeconds = &eta
	}
	return st
}

// checkpointer takes a checkpoint at most once per interval once the feed is ready, from the
// consumer's goroutine (Service.afterEach), and writes it behind, one write at a time.
type checkpointer struct {
	store    CheckpointStore
	interval time.Duration
	created  time.Time // the event stream's creation

	last    time.Time     // when the latest checkpoint was taken (or loaded)
	written atomic.Uint64 // stream seq of the latest checkpoint written (or loaded)
	writing atomic.Bool   // a write is running
	wg      sync.WaitGroup
}

// EnableCheckpoints makes Run start from the latest usable checkpoint in store plus the events
// after it, and take a checkpoint at most once per interval once ready. interval 0 leaves
// checkpoints off: neither loaded nor taken. Call before Run.
func (s *Service) EnableCheckpoints(store CheckpointStore, interval time.Duration) {
	if store == nil || interval <= 0 {
		s.ckpt = nil
		return
	}
	s.ckpt = &checkpointer{store: store, interval: interval}
}

// prepare finds where consuming starts and loads a checkpoint when there is a usable one. It
// returns nil when the event stream does not exist yet.
func (s *Service) prepare(ctx context.Context) (*warmup, error) {
	w := &warmup{started: time.Now()}
	var states interface {
		StreamState(ctx context.Context) (bus.StreamState, error)
	}
	if s.ckpt != nil {
		states = s.ckpt.store
	} else if ss, ok := s.src.(interface {
		StreamState(ctx context.Context) (bus.StreamState, error)
	}); ok {
		states = ss
	}
	if states == nil {
		return w, nil // progress unknown: a source without stream state (tests)
	}
	st, err := states.StreamState(ctx)
	if errors.Is(err, bus.ErrNoStream) {
		return nil, nil
	}
	if err != nil {
		s.log.Warn("cannot read the event stream's state; replaying it whole", "err", err)
		return w, nil
	}
	w.from, w.target = max(st.FirstSeq, 1), st.LastSeq
	if s.ckpt == nil {
		return w, nil
	}
	s.ckpt.created = st.Created
	cp, err := s.loadCheckpoint(ctx, st)
	if err != nil {
		return nil, err
	}
	if cp != nil {
		w.fromCheckpoint, w.checkpointSeq, w.from = true, cp.StreamSeq, cp.StreamSeq+1
		s.ckpt.last = time.Unix(0, cp.TakenNs)
		s.ckpt.written.Store(cp.StreamSeq)
		s.Server.metrics.checkpointSeq.Set(float64(cp.StreamSeq))
	}
	return w, nil
}

// loadCheckpoint installs the newest usable checkpoint and returns it; nil (the whole stream
// is to be replayed) when none is usable, each skipped one logged with why.
func (s *Service) loadCheckpoint(ctx context.Context, st bus.StreamState) (*pb.FeedCheckpoint, error) {
	list, err := s.ckpt.store.Checkpoints(ctx)
	if err != nil {
		s.log.Warn("cannot list state checkpoints; replaying the full stream", "err", err)
		return nil, nil
	}
	if len(list) == 0 {
		s.log.Info("no state checkpoint stored yet (a first start): replaying the full stream", "events", st.Msgs)
		return nil, nil
	}
	for i, ci := range list {
		cp, err := s.tryCheckpoint(ctx, ci, st)
		if err == nil {
			s.log.Info("warm start from the state checkpoint", "stream_seq", cp.StreamSeq, "instruments", len(cp.Instruments),
				"bytes", ci.Size, "taken", time.Unix(0, cp.TakenNs).UTC().Format(time.RFC3339),
				"tail_events", st.LastSeq-min(st.LastSeq, cp.StreamSeq))
			return cp, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		next := "the previous one"
		if i == len(list)-1 {
			next = "the full stream"
		}
		s.log.Warn("state checkpoint unusable; falling back to "+next, "stream_seq", ci.StreamSeq, "slot", ci.Slot, "err", err)
	}
	s.log.Warn("no usable state checkpoint: replaying the full stream", "checkpoints", len(list), "events", st.Msgs)
	return nil, nil
}

// tryCheckpoint reads, checks and installs one checkpoint.
func (s *Service) tryCheckpoint(ctx context.Context, ci bus.CheckpointInfo, st bus.StreamState) (*pb.FeedCheckpoint, error) {
	data, err := s.ckpt.store.ReadCheckpoint(ctx, ci)
	if err != nil {
		return nil, err
	}
	cp, err := openCheckpoint(data)
	switch {
	case err != nil:
		return nil, err
	case cp.StreamSeq != ci.StreamSeq:
		return nil, fmt.Errorf("holds stream seq %d, its head says %d", cp.StreamSeq, ci.StreamSeq)
	case cp.StreamCreatedNs != st.Created.UnixNano():
		return nil, fmt.Errorf("taken of another event stream (created %s; this one %s)",
			time.Unix(0, cp.StreamCreatedNs).UTC().Format(time.RFC3339Nano), st.Created.UTC().Format(time.RFC3339Nano))
	case cp.StreamSeq > st.LastSeq:
		return nil, fmt.Errorf("ahead of the stream (last seq %d)", st.LastSeq)
	case st.Msgs > 0 && cp.StreamSeq+1 < st.FirstSeq:
		return nil, fmt.Errorf("the stream no longer holds the events after it (first seq %d): retention dropped them", st.FirstSeq)
	}
	if err := s.Server.restoreCheckpoint(ctx, cp); err != nil {
		return nil, err
	}
	return cp, nil
}

// afterEach runs after each consumed message, on the consumer's goroutine: it counts progress
// and, once ready, takes a checkpoint when one is due.
func (s *Service) afterEach(ctx context.Context, w *warmup) func(seq uint64) {
	return func(seq uint64) {
		w.seq.Store(seq)
		w.events.Add(1)
		c := s.ckpt
		if c == nil || !s.Server.ready.Load() || c.writing.Load() || time.Since(c.last) < c.interval {
			return
		}
		c.last = time.Now()
		data, err := s.Server.takeCheckpoint(ctx, seq, c.created)
		if err != nil {
			if ctx.Err() == nil {
				s.Server.metrics.checkpoints.WithLabelValues("failed").Inc()
				s.log.Error("take state checkpoint", "stream_seq", seq, "err", err)
			}
			return
		}
		took := time.Since(c.last)
		c.writing.Store(true)
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			defer c.writing.Store(false)
			start := time.Now()
			ci, err := c.store.PutCheckpoint(ctx, seq, c.last, data)
			if err != nil {
				if ctx.Err() == nil {
					s.Server.metrics.checkpoints.WithLabelValues("failed").Inc()
					s.log.Warn("write state checkpoint", "stream_seq", seq, "err", err)
				}
				return
			}
			s.written(seq, len(data))
			s.log.Info("state checkpoint written", "stream_seq", seq, "bytes", len(data), "slot", ci.Slot,
				"chunks", ci.Chunks, "took", took.Round(time.Microsecond), "write_took", time.Since(start).Round(time.Millisecond))
		}()
	}
}

// finalCheckpoint writes, when a feed that was ready stops gracefully, a checkpoint at the last
// event it applied (the consumer is stopped: nothing more is dispatched), so that its next start
// has no tail to replay, however long the interval. It waits for a periodic write in flight
// first, and writes nothing when the latest checkpoint is already at that event. Bounded by ctx.
func (s *Service) finalCheckpoint(ctx context.Context, w *warmup) {
	c := s.ckpt
	if c == nil || w == nil {
		return
	}
	c.wg.Wait()
	seq := w.seq.Load()
	if seq == 0 || seq == c.written.Load() {
		return
	}
	start := time.Now()
	data, err := s.Server.takeCheckpoint(ctx, seq, c.created)
	if err == nil {
		var ci bus.CheckpointInfo
		if ci, err = c.store.PutCheckpoint(ctx, seq, start, data); err == nil {
			s.written(seq, len(data))
			s.log.Info("final state checkpoint written", "stream_seq", seq, "bytes", len(data), "slot", ci.Slot,
				"took", time.Since(start).Round(time.Millisecond))
			return
		}
	}
	s.Server.metrics.checkpoints.WithLabelValues("failed").Inc()
	s.log.Warn("final state checkpoint not written: the next start replays the events since the previous one",
		"stream_seq", seq, "err", err)
}

// written records a checkpoint written at seq.
func (s *Service) written(seq uint64, size int) {
	s.ckpt.written.Store(seq)
	s.Server.metrics.checkpoints.WithLabelValues("written").Inc()
	s.Server.metrics.checkpointSeq.Set(float64(seq))
	s.Server.metrics.checkpointSize.Set(float64(size))
}

// logProgress logs the warm-up's progress every s.progressEvery until done closes.
func (s *Service) logProgress(w *warmup, done <-chan struct{}) {
	every := s.progressEvery
	if every <= 0 {
		every = 5 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			st := w.status()
			args := []any{"events", st.Events, "of", st.Total, "percent", st.Percent, "from_checkpoint", st.FromCheckpoint}
			if st.ETASeconds != nil {
				args = append(args, "eta", (time.Duration(*st.ETASeconds * float64(time.Second))).Round(100*time.Millisecond).String())
			}
			s.log.Info("warming up: consuming stored events", args...)
		}
	}
}

// export returns every instrument's bars. Call it where trades are folded in (Dispatch's
// goroutine), so that none is meanwhile.
func (c *candleStore) export() []*pb.StoredBars {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]*pb.StoredBars, 0, len(c.insts))
	for id, sb := range c.insts {
		sb.mu.Lock()
		live := sb.bars[sb.head:]
		bars := make([]*pb.StoredBar, len(live))
		backing := make([]pb.StoredBar, len(live))
		for i, b := range live {
			backing[i] = pb.StoredBar{StartNs: b.startNs, Open: b.open, High: b.high, Low: b.low, Close: b.close,
				Volume: b.volume, Count: b.count, FirstNs: b.firstNs, LastNs: b.lastNs}
			bars[i] = &backing[i]
		}
		sb.mu.Unlock()
		out = append(out, &pb.StoredBars{Instrument: id, Bars: bars})
	}
	return out
}

// load fills an empty store with a checkpoint's bars (those within the span), after checking
// them all: nothing is loaded when one is out of order or off the store's bar boundaries.
func (c *candleStore) load(all []*pb.StoredBars) error {
	insts := make(map[string]*storedBars, len(all))
	held := 0
	for _, sbs := range all {
		if insts[sbs.GetInstrument()] != nil {
			return fmt.Errorf("candle store: %s twice", sbs.GetInstrument())
		}
		sb := &storedBars{bars: make([]storedBar, 0, len(sbs.Bars))}
		for i, b := range sbs.Bars {
			if b.StartNs%c.ivNs != 0 || (i > 0 && b.StartNs <= sbs.Bars[i-1].StartNs) || b.Count == 0 {
				return fmt.Errorf("candle store: %s: bar %d at %d out of order or off the %ds boundaries", sbs.Instrument, i, b.StartNs, c.ivS)
			}
			sb.bars = append(sb.bars, storedBar{startNs: b.StartNs, open: b.Open, high: b.High, low: b.Low, close: b.Close,
				volume: b.Volume, count: b.Count, firstNs: b.FirstNs, lastNs: b.LastNs})
		}
		if n := len(sb.bars); n > 0 {
			oldest := sb.bars[n-1].startNs - int64(c.keep-1)*c.ivNs
			for sb.head < n && sb.bars[sb.head].startNs < oldest {
				sb.head++
			}
		}
		held += len(sb.bars) - sb.head
		insts[sbs.Instrument] = sb
	}
	c.mu.Lock()
	c.insts = insts
	c.mu.Unlock()
	c.held.Add(int64(held))
	if c.onHeld != nil {
		c.onHeld(held)
	}
	return nil
}
