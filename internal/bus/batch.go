package bus

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protowire"
)

// Batches: several events of one instrument in one NATS message.
//
// JetStream's cost is mostly per message (store write, de-duplication entry, ack, consumer
// delivery), not per byte: at one event per message ingest topped out near 110 k events/s
// on two cores (docs/BENCHMARKS.md). So Publish does not send each event as it comes: a
// batcher goroutine takes everything queued since its last pass, groups each instrument's
// events that are close in ingest and event time (Config.MaxReorder) and sends each group as
// one message (grouper). Nothing waits to fill a batch: when events come slowly each pass finds
// one and sends it alone, as before, and batches grow only when events queue up behind a
// busy connection, which is when they help.
//
// A batch is a message with the header BatchHeader set to its event count n (2 or more) and
// the body of
//
//	message EventBatch { repeated tickwire.v1.Event events = 1; }
//
// that is, each event's encoding as field 1, length-delimited. Its events share instrument
// and epoch and have consecutive seqs in order; its Nats-Msg-Id is
// "<instrument>|<epoch>|<first seq>-<last seq>". A message without the header is one Event,
// with the id "<instrument>|<epoch>|<seq>" (MsgID). Readers of the stream (ConsumeEvents,
// LastEvent) take both.
//
// De-duplication covers a whole batch: the same events sent again in the same grouping are
// stored once. Sent again in another grouping (a re-import after a crash), they are stored
// twice, and readers drop the second copy as stale (its positions are already held); they
// are never lost, as they could be if a batch were known by its first seq alone.

// BatchHeader is the header of a batch message: its number of events.
const BatchHeader = "Tickwire-Events"

// Batching limits (Config.MaxBatchEvents, MaxBatchBytes default to these).
const (
	defaultMaxBatchEvents = 256
	defaultMaxBatchBytes  = 64 << 10
	defaultMaxReorder     = time.Millisecond
	// maxInFlight and maxAckWait: the batcher waits for acks while this many messages await
	// them, for at most this long (awaitAcks).
	maxInFlight = 16
	maxAckWait  = 2 * time.Millisecond
	// maxDrain bounds what one batcher pass takes off the queue.
	maxDrain = 4096
	// batchOverhead is an upper bound on a message's headers and framing beyond its events'
	// bytes, for the max_payload check.
	batchOverhead = 128
)

// batchMsgID returns a batch's de-duplication id: MsgID of its first event, then "-<last>".
func batchMsgID(instrument string, epoch, first, last uint64) string {
	return MsgID(instrument, epoch, first) + "-" + strconv.FormatUint(last, 10)
}

// msgPositions returns the instrument, epoch and seqs of the events a published message
// carries, from its headers (one event, or a batch).
func msgPositions(h nats.Header) (instrument string, epoch, first, last uint64, ok bool) {
	id := h.Get(jetstream.MsgIDHeader)
	if h.Get(BatchHeader) == "" {
		inst, e, s, ok := parseMsgID(id)
		return inst, e, s, s, ok
	}
	i := strings.LastIndexByte(id, '|')
	if i < 0 {
		return "", 0, 0, 0, false
	}
	fs, ls, found := strings.Cut(id[i+1:], "-")
	if !found {
		return "", 0, 0, 0, false
	}
	inst, e, f, ok1 := parseMsgID(id[:i+1] + fs)
	l, err := strconv.ParseUint(ls, 10, 64)
	if !ok1 || err != nil || l < f {
		return "", 0, 0, 0, false
	}
	return inst, e, f, l, true
}

// batchCount returns the number of events a message carries according to its headers: 1
// without BatchHeader, or an error if the header is not a count of 2 or more.
func batchCount(h nats.Header) (int, error) {
	v := h.Get(BatchHeader)
	if v == "" {
		return 1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 2 {
		return 0, fmt.Errorf("bus: %s header %q is not a count of 2 or more", BatchHeader, v)
	}
	return n, nil
}

var errBatchFraming = errors.New("bus: malformed batch")

// splitBatch calls fn with each event's encoding in a batch body of n events, in order. It
// returns an error if the body is not n events as field 1 (fn's own errors are returned as
// they are).
func splitBatch(body []byte, n int, fn func([]byte) error) error {
	for i := 0; i < n; i++ {
		num, typ, k := protowire.ConsumeTag(body)
		if k < 0 || num != 1 || typ != protowire.BytesType {
			return fmt.Errorf("%w: event %d of %d: not field 1 length-delimited", errBatchFraming, i+1, n)
		}
		body = body[k:]
		ev, k := protowire.ConsumeBytes(body)
		if k < 0 {
			return fmt.Errorf("%w: event %d of %d: bad length", errBatchFraming, i+1, n)
		}
		body = body[k:]
		if err := fn(ev); err != nil {
			return err
		}
	}
	if len(body) != 0 {
		return fmt.Errorf("%w: %d bytes after %d events", errBatchFraming, len(body), n)
	}
	return nil
}

// pubItem is one queued event, or a flush marker.
type pubItem struct {
	inst       string
	subj       string
	epoch, seq uint64
	ingestNs   int64 // the event's ingest time (0: unknown, never reordered)
	eventNs    int64 // the event's time: its venue time, or its ingest time without one
	data       []byte
	gen        uint64 // the fence generation it was queued in (fence.go)
	// flushed, on a marker, is closed once every event queued before it is handed to the
	// connection.
	flushed chan struct{}
}

// batcher is the goroutine that sends queued events (see the top of this file). It owns the
// grouping state; it ends when b.queue is closed and drained.
func (b *Bus) batcher() {
	defer close(b.batcherDone)
	items := make([]pubItem, 0, 64)
	g := grouper{maxEvents: b.cfg.MaxBatchEvents, window: int64(b.cfg.MaxReorder), emit: b.sendRun}
	hold := time.NewTimer(time.Hour)
	hold.Stop()
	for it := range b.queue {
		if b.cfg.beforePass != nil {
			b.cfg.beforePass()
		}
		b.awaitAcks(hold)
		items = append(items[:0], it)
	drain:
		for len(items) < maxDrain {
			select {
			case it, ok := <-b.queue:
				if !ok {
					break drain
				}
				items = append(items, it)
			default:
				break drain
			}
		}
		events := 0 // flush markers are not counted in queued
		for i := range items {
			if items[i].flushed == nil {
				events++
			}
		}
		b.queued.Add(-int64(events))
		items = b.dropFenced(items)
		g.maxBytes = b.batchBytes() // the server's max_payload is known once connected
		for len(items) > 0 {
			// Up to the first flush marker: sent, then the marker released.
			i := 0
			for i < len(items) && items[i].flushed == nil {
				i++
			}
			g.send(items[:i])
			if i < len(items) {
				close(items[i].flushed)
				i++
			}
			items = items[i:]
		}
	}
}

// awaitAcks waits, at most maxAckWait, while maxInFlight or more messages await an answer
// from the store, so that what comes meanwhile queues up and goes in batches: otherwise the
// publisher, which keeps up easily, sends one message per event however far behind the store
// is. Measured: BenchmarkPipeline 290 k -> 316 k events/s (3.7 -> 4.7 events per message). It
// does not help where few events of one instrument come within MaxReorder (the firehose's
// 1,000 instruments: docs/BENCHMARKS.md).
func (b *Bus) awaitAcks(t *time.Timer) {
	p := b.pub.Load()
	if p == nil || p.inFlight.Load() < maxInFlight {
		return
	}
	t.Reset(maxAckWait)
	defer t.Stop()
	for p.inFlight.Load() >= maxInFlight && b.pub.Load() == p {
		select {
		case <-b.answered:
		case <-t.C:
			return
		case <-b.closing:
			return
		}
	}
}

// dropFenced removes from items the events queued before the latest Fence (their order kept)
// and counts them; flush markers stay.
func (b *Bus) dropFenced(items []pubItem) []pubItem {
	gen := b.fenceGen.Load()
	kept := items[:0]
	dropped := 0
	for _, it := range items {
		if it.gen != gen && it.flushed == nil {
			dropped++
			continue
		}
		kept = append(kept, it)
	}
	clear(items[len(kept):])
	if dropped > 0 {
		b.m.fenced.Add(float64(dropped))
	}
	return kept
}

// grouper cuts one pass's events into runs that can each be one message. Within a window
// (MaxReorder) of ingest time and of event time (venue time, or ingest time without one) it
// groups each instrument's events together, which reorders events of different instruments
// less than the window apart in both; an instrument's own order is never changed, and events
// further apart than the window in either time are never swapped. So the stream's order across
// instruments follows both times to within MaxReorder (replays, exports and time windows go by
// event time, and a source may publish a long stretch of venue time in a moment), and an
// instrument's order is exact.
type grouper struct {
	maxEvents, maxBytes int
	window              int64               // MaxReorder, ns; 0: never reorder
	emit                func(run []pubItem) // sends one run: one instrument and epoch, consecutive seqs

	index   map[string]int // instrument -> its group in the current window
	groups  [][]pubItem
	grouped []pubItem // the current window's events, grouped
}

// send emits items as runs: a window's events grouped by instrument (in the order of each
// instrument's first event in the window), then cut at an epoch change, a seq that does not
// follow on, or the size limits.
func (g *grouper) send(items []pubItem) {
	if len(items) == 1 || g.window <= 0 {
		g.runs(items)
		return
	}
	for start := 0; start < len(items); {
		first := items[start].ingestNs
		end := start + 1
		if first == 0 {
			// Without ingest times: in order (consecutive events of one instrument still
			// make one run).
			for end < len(items) && items[end].ingestNs == 0 {
				end++
			}
			g.runs(items[start:end])
		} else {
			firstEv := items[start].eventNs
			for end < len(items) && items[end].ingestNs != 0 && abs(items[end].ingestNs-first) < g.window &&
				abs(items[end].eventNs-firstEv) < g.window {
				end++
			}
			g.runs(g.group(items[start:end]))
		}
		start = end
	}
}

func abs(d int64) int64 {
	if d < 0 {
		return -d
	}
	return d
}

// group returns items grouped by instrument, each instrument's events in their order.
func (g *grouper) group(items []pubItem) []pubItem {
	if len(items) <= 2 {
		return items // two events either differ in instrument or already follow on
	}
	if g.index == nil {
		g.index = map[string]int{}
	}
	clear(g.index)
	n := 0
	for _, it := range items {
		i, ok := g.index[it.inst]
		if !ok {
			i = n
			n++
			g.index[it.inst] = i
			if i == len(g.groups) {
				g.groups = append(g.groups, nil)
			}
			g.groups[i] = g.groups[i][:0]
		}
		g.groups[i] = append(g.groups[i], it)
	}
	g.grouped = g.grouped[:0]
	for _, grp := range g.groups[:n] {
		g.grouped = append(g.grouped, grp...)
		clear(grp) // drop the event bytes for the collector
	}
	return g.grouped
}

// runs emits items, in order, cut into runs.
func (g *grouper) runs(items []pubItem) {
	start, size := 0, 0
	for j, it := range items {
		if j > start {
			prev := items[j-1]
			if j-start >= g.maxEvents || size+len(it.data)+8 > g.maxBytes ||
				it.inst != prev.inst || it.epoch != prev.epoch || it.seq != prev.seq+1 {
				g.emit(items[start:j])
				start, size = j, 0
			}
		}
		size += len(it.data) + 8
	}
	if start < len(items) {
		g.emit(items[start:])
	}
	clear(items) // drop the event bytes for the collector
}

// batchBytes is the largest batch body: Config.MaxBatchBytes, at most half the server's
// max_payload.
func (b *Bus) batchBytes() int {
	if mp := int(b.nc.MaxPayload()) / 2; mp > 0 && mp < b.cfg.MaxBatchBytes {
		return mp
	}
	return b.cfg.MaxBatchBytes
}

// runMsg returns the message of run (one instrument's events, one epoch, consecutive seqs).
func runMsg(run []pubItem) *nats.Msg {
	first, last := run[0], run[len(run)-1]
	msg := &nats.Msg{Subject: first.subj, Header: nats.Header{}}
	if len(run) == 1 {
		msg.Data = first.data
		msg.Header[jetstream.MsgIDHeader] = []string{MsgID(first.inst, first.epoch, first.seq)}
	} else {
		size := 0
		for _, it := range run {
			size += 1 + protowire.SizeVarint(uint64(len(it.data))) + len(it.data)
		}
		body := make([]byte, 0, size)
		for _, it := range run {
			body = protowire.AppendTag(body, 1, protowire.BytesType)
			body = protowire.AppendBytes(body, it.data)
		}
		msg.Data = body
		msg.Header[jetstream.MsgIDHeader] = []string{batchMsgID(first.inst, first.epoch, first.seq, last.seq)}
		msg.Header[BatchHeader] = []string{strconv.Itoa(len(run))}
	}
	return msg
}

// sendRun sends run as one message (runMsg), failing its events if it cannot be sent.
func (b *Bus) sendRun(run []pubItem) {
	first, last := run[0], run[len(run)-1]
	msg := runMsg(run)
	var err error
	var p *pubConn
	for {
		if p, err = b.publisher(); err != nil {
			break
		}
		// Checked after publisher: a Fence while it opened the connection had none to cut.
		if run[0].gen != b.fenceGen.Load() {
			// Fenced during this pass (every event of a pass has the generation current
			// at its start: dropFenced).
			b.m.fenced.Add(float64(len(run)))
			return
		}
		// No retries inside nats.go: a retried message would land after later ones.
		p.inFlight.Add(1)
		_, err = p.js.PublishMsgAsync(msg, jetstream.WithRetryAttempts(0), jetstream.WithStallWait(stallWait))
		if err != nil {
			p.inFlight.Add(-1) // not sent: no answer will come
		}
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			break
		}
		select {
		case <-b.closing:
			// Closing while the store takes nothing: these events' fate is a failure, not
			// a hang.
			err = fmt.Errorf("%w: closing with %d publishes awaiting acks: %w", ErrClosed, p.js.PublishAsyncPending(), err)
		default:
			continue // a Fence meanwhile drops the run above
		}
		break
	}
	if p != nil && p.fenced.Load() {
		if err != nil {
			b.m.fenced.Add(float64(len(run))) // refused by the connection Fence closed
		}
		return
	}
	if err != nil {
		if errors.Is(err, nats.ErrConnectionClosed) {
			err = fmt.Errorf("%w: %w", ErrClosed, err)
		}
		b.publishFailed(first.inst, first.epoch, first.seq, last.seq, err)
	}
}
