package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// MsgID returns the JetStream de-duplication id of an event position:
// "<instrument>|<epoch>|<seq>".
func MsgID(instrument string, epoch, seq uint64) string {
	b := make([]byte, 0, len(instrument)+42)
	b = append(b, instrument...)
	b = append(b, '|')
	b = strconv.AppendUint(b, epoch, 10)
	b = append(b, '|')
	b = strconv.AppendUint(b, seq, 10)
	return string(b)
}

// parseMsgID is the inverse of MsgID (instrument ids contain no '|'... but may; split from
// the right).
func parseMsgID(id string) (instrument string, epoch, seq uint64, ok bool) {
	i := strings.LastIndexByte(id, '|')
	if i < 0 {
		return "", 0, 0, false
	}
	j := strings.LastIndexByte(id[:i], '|')
	if j < 0 {
		return "", 0, 0, false
	}
	e, err1 := strconv.ParseUint(id[j+1:i], 10, 64)
	s, err2 := strconv.ParseUint(id[i+1:], 10, 64)
	return id[:j], e, s, err1 == nil && err2 == nil
}

// DefaultMaxPayload is a NATS server's default max_payload (1 MiB), the largest message it
// takes, headers included; the embedded server keeps it. An event is refused above the limit
// of the server it is published to (ErrTooLarge); this constant is for checks without one.
const DefaultMaxPayload = 1 << 20

// stallWait is how long one PublishMsgAsync call waits for a free in-flight slot before the
// batcher checks whether the Bus is closing and tries again; the message was not sent, so
// retrying keeps the order.
const stallWait = 250 * time.Millisecond

// Publish queues ev to be sent on its instrument's subject with its (instrument, epoch, seq)
// as de-duplication id, so that a retried publish is stored once; ev must already carry its
// position. ev is encoded before Publish returns: changing it afterwards changes nothing
// sent. Events of one instrument reach the stream in the order of the Publish calls that
// queued them. Events of several instruments queued together and less than
// Config.MaxReorder apart in ingest time and in event time (venue time, or ingest time
// without one) may be reordered so that each instrument's are sent as one message
// (batch.go); events further apart, or without an ingest time, keep their order. Publish
// blocks while the queue is full (Config.MaxPendingPublishes events queued, which happens
// when as many messages await acks), until room frees or ctx ends.
//
// An event larger than the server's max_payload is refused at once with ErrTooLarge (not
// sent; later events are unaffected); after Close, Publish returns ErrClosed.
//
// A nil return means the event was queued, not that it was stored: failures to send or to be
// acknowledged are counted (tickwire_bus_publish_errors_total, per event), passed to the
// SetPublishErrorHandler callback, and reported by the next Flush.
func (b *Bus) Publish(ctx context.Context, ev *tickwirev1.Event) error {
	inst := ev.GetInstrument()
	subj, err := EventSubject(inst)
	if err != nil {
		return err
	}
	data, err := proto.Marshal(ev)
	if err != nil {
		return fmt.Errorf("bus: encode event of %s: %w", inst, err)
	}
	if limit := b.nc.MaxPayload(); limit > 0 && int64(len(data)+len(inst)+batchOverhead) > limit {
		b.m.publishErrors.Inc()
		return fmt.Errorf("bus: publish %s %d/%d: %w: %d bytes, max_payload %d", inst, ev.GetEpoch(), ev.GetSeq(), ErrTooLarge, len(data), limit)
	}
	eventNs := ev.GetVenueTimeNs()
	if eventNs <= 0 {
		eventNs = ev.GetIngestTimeNs()
	}
	return b.enqueue(ctx, pubItem{inst: inst, subj: subj, epoch: ev.GetEpoch(), seq: ev.GetSeq(),
		ingestNs: ev.GetIngestTimeNs(), eventNs: eventNs, data: data})
}

// enqueue hands it to the batcher, waiting for room while ctx lasts.
func (b *Bus) enqueue(ctx context.Context, it pubItem) error {
	b.queueMu.RLock()
	defer b.queueMu.RUnlock()
	if b.queueClosed {
		return fmt.Errorf("bus: publish %s: %w", it.inst, ErrClosed)
	}
	if it.flushed == nil {
		b.queued.Add(1)
	}
	it.gen = b.fenceGen.Load()
	select {
	case b.queue <- it:
		return nil
	default:
	}
	select {
	case b.queue <- it:
		return nil
	case <-ctx.Done():
		if it.flushed == nil {
			b.queued.Add(-1)
			return fmt.Errorf("bus: publish %s: %w", it.inst, ctx.Err())
		}
		return ctx.Err()
	}
}

// publishFailed records the failure of the events first..last of instrument (one message).
func (b *Bus) publishFailed(inst string, epoch, first, last uint64, err error) {
	b.m.publishErrors.Add(float64(last - first + 1))
	// The first failure after a healthy time is a warning; the rest are counted and the
	// store health logs their cause once (health.go), instead of a line per event.
	level := slog.LevelDebug
	if b.health.publishFailed(err) {
		level = slog.LevelWarn
	}
	b.logPublishError(level, inst, epoch, first, err)
	b.mu.Lock()
	b.pubErrs += int(last - first + 1)
	if b.firstErr == nil {
		b.firstErr = fmt.Errorf("%s %d/%d: %w", inst, epoch, first, err)
	}
	b.mu.Unlock()
	if f := b.onPubErr.Load(); f != nil {
		for seq := first; seq <= last; seq++ {
			(*f)(inst, epoch, seq, err)
		}
	}
}

// onPublishError is the store's failure to take a message sent on p (or its ack timing out).
// A fenced connection's failures are what Fence gave up, not the store's.
func (b *Bus) onPublishError(p *pubConn, msg *nats.Msg, err error) {
	p.answer(b)
	if p.fenced.Load() {
		return
	}
	inst, epoch, first, last, _ := msgPositions(msg.Header)
	b.publishFailed(inst, epoch, first, last, err)
}

// Flush waits until every event queued so far is sent and acknowledged (or failed), or ctx
// ends. It
// returns an error wrapping ErrPublish if any publish failed since the previous Flush, and
// resets that record.
func (b *Bus) Flush(ctx context.Context) error {
	marker := pubItem{inst: "(flush)", flushed: make(chan struct{})}
	if err := b.enqueue(ctx, marker); err != nil && !errors.Is(err, ErrClosed) {
		return fmt.Errorf("bus: flush: %d events queued: %w", b.queued.Load(), err)
	} else if err == nil {
		select {
		case <-marker.flushed:
		case <-ctx.Done():
			return fmt.Errorf("bus: flush: %d events queued: %w", b.queued.Load(), ctx.Err())
		}
	}
	if p := b.pub.Load(); p != nil {
		select {
		case <-p.js.PublishAsyncComplete():
		case <-p.cutCh: // fenced: its acks will not come
		case <-ctx.Done():
			return fmt.Errorf("bus: flush: %d publishes still pending: %w", p.js.PublishAsyncPending(), ctx.Err())
		}
	}
	b.mu.Lock()
	n, first := b.pubErrs, b.firstErr
	b.pubErrs, b.firstErr = 0, nil
	b.mu.Unlock()
	if n > 0 {
		return fmt.Errorf("%w: %d since last flush, first: %w", ErrPublish, n, first)
	}
	return nil
}

// PublishPending returns the number of messages awaiting an ack plus the events queued to be
// sent.
func (b *Bus) PublishPending() int {
	n := int(b.queued.Load())
	if p := b.pub.Load(); p != nil {
		n += p.js.PublishAsyncPending()
	}
	return n
}
