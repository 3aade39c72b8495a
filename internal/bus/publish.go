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
	"github.com/nats-io/nats.go/jetstream"
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

// stallWait is how long one PublishMsgAsync call waits for a free in-flight slot before we
// re-check ctx and try again; the message was not sent, so retrying keeps the order.
const stallWait = 250 * time.Millisecond

// Publish sends ev on its instrument's subject, asynchronously, with Nats-Msg-Id set from
// its (instrument, epoch, seq) so that a retried publish is stored once. ev must already
// carry its position. Publish blocks while MaxPendingPublishes are in flight (until a slot
// frees or ctx ends). Events published from one goroutine reach the stream in call order.
//
// An event larger than the server's max_payload is refused at once with ErrTooLarge (not
// sent; later events are unaffected).
//
// A nil return means the event was handed to the connection, not that it was stored: ack
// failures are counted (tickwire_bus_publish_errors_total), passed to
// the SetPublishErrorHandler callback, and reported by the next Flush.
func (b *Bus) Publish(ctx context.Context, ev *tickwirev1.Event) error {
	subj, err := EventSubject(ev.GetInstrument())
	if err != nil {
		return err
	}
	data, err := proto.Marshal(ev)
	if err != nil {
		return fmt.Errorf("bus: encode event of %s: %w", ev.GetInstrument(), err)
	}
	msg := &nats.Msg{
		Subject: subj,
		Data:    data,
		Header:  nats.Header{jetstream.MsgIDHeader: []string{MsgID(ev.GetInstrument(), ev.GetEpoch(), ev.GetSeq())}},
	}
	for {
		// No retries inside nats.go: a retried message would land after later ones.
		_, err = b.js.PublishMsgAsync(msg, jetstream.WithRetryAttempts(0), jetstream.WithStallWait(stallWait))
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("bus: publish %s: %w", ev.GetInstrument(), ctx.Err())
		}
	}
	if err != nil {
		b.m.publishErrors.Inc()
		switch {
		case errors.Is(err, nats.ErrConnectionClosed):
			err = fmt.Errorf("%w: %w", ErrClosed, err)
		case errors.Is(err, nats.ErrMaxPayload):
			// Refused before sending: this event only, never the ones after it.
			err = fmt.Errorf("%w: %d bytes, max_payload %d: %w", ErrTooLarge, len(data), b.nc.MaxPayload(), err)
		}
		return fmt.Errorf("bus: publish %s %d/%d: %w", ev.GetInstrument(), ev.GetEpoch(), ev.GetSeq(), err)
	}
	return nil
}

func (b *Bus) onPublishError(_ jetstream.JetStream, msg *nats.Msg, err error) {
	b.m.publishErrors.Inc()
	inst, epoch, seq, _ := parseMsgID(msg.Header.Get(jetstream.MsgIDHeader))
	// The first failure after a healthy time is a warning; the rest are counted and the
	// store health logs their cause once (health.go), instead of a line per event.
	level := slog.LevelDebug
	if b.health.publishFailed(err) {
		level = slog.LevelWarn
	}
	b.logPublishError(level, inst, epoch, seq, err)
	b.mu.Lock()
	b.pubErrs++
	if b.firstErr == nil {
		b.firstErr = fmt.Errorf("%s %d/%d: %w", inst, epoch, seq, err)
	}
	b.mu.Unlock()
	if f := b.onPubErr.Load(); f != nil {
		(*f)(inst, epoch, seq, err)
	}
}

// Flush waits until every publish so far is acknowledged (or failed), or ctx ends. It
// returns an error wrapping ErrPublish if any publish failed since the previous Flush, and
// resets that record.
func (b *Bus) Flush(ctx context.Context) error {
	select {
	case <-b.js.PublishAsyncComplete():
	case <-ctx.Done():
		return fmt.Errorf("bus: flush: %d publishes still pending: %w", b.js.PublishAsyncPending(), ctx.Err())
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

// PublishPending returns the number of publishes awaiting an ack.
func (b *Bus) PublishPending() int { return b.js.PublishAsyncPending() }
