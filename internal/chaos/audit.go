package chaos

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/tickwire/tickwire/internal/bus"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// AuditInstrument is the instrument of the audit's own events.
const AuditInstrument = "audit:ACKS"

// Audit publishes events of its own into the event stream, one at a time, each retried
// (under the same message id, so the store keeps one) until the store acknowledges it, and
// remembers every position acknowledged. Lost then lists those the stream does not hold: an
// acknowledged write that a fault lost.
type Audit struct {
	js    jetstream.JetStream
	epoch uint64

	mu      sync.Mutex
	acked   []uint64            // guarded by mu
	seen    map[uint64]struct{} // guarded by mu: seqs read back from the stream
	retries uint64              // guarded by mu: publishes that were not acknowledged at first
}

// NewAudit returns an Audit publishing on nc (a user allowed to publish events).
func NewAudit(nc *nats.Conn) (*Audit, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	return &Audit{js: js, epoch: uint64(time.Now().Unix()), seen: map[uint64]struct{}{}}, nil
}

// Run publishes every interval until ctx ends.
func (a *Audit) Run(ctx context.Context, interval time.Duration) {
	subj, _ := bus.EventSubject(AuditInstrument)
	t := time.NewTicker(interval)
	defer t.Stop()
	for seq := uint64(1); ; seq++ {
		ev := &pb.Event{Instrument: AuditInstrument, Epoch: a.epoch, Seq: seq, IngestTimeNs: time.Now().UnixNano()}
		if seq == 1 {
			ev.Body = &pb.Event_Info{Info: &pb.InstrumentInfo{Id: AuditInstrument, Venue: "audit", Symbol: "ACKS", Base: "ACK", Quote: "ACK",
				PriceScale: 0, SizeScale: 0, TickSize: 1, LotSize: 1}}
		} else {
			ev.Body = &pb.Event_Trade{Trade: &pb.Trade{Price: int64(seq), Size: 1, Side: pb.Side_SIDE_BUY, TradeId: strconv.FormatUint(seq, 10)}}
		}
		data, err := proto.Marshal(ev)
		if err != nil {
			return
		}
		msg := &nats.Msg{Subject: subj, Data: data, Header: nats.Header{jetstream.MsgIDHeader: []string{bus.MsgID(AuditInstrument, a.epoch, seq)}}}
		for {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := a.js.PublishMsg(pctx, msg)
			cancel()
			if err == nil {
				a.mu.Lock()
				a.acked = append(a.acked, seq)
				a.mu.Unlock()
				break
			}
			if ctx.Err() != nil {
				return
			}
			a.mu.Lock()
			a.retries++
			a.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Seen records an audit event read back from the stream (others are ignored).
func (a *Audit) Seen(ev *pb.Event) {
	if ev.GetInstrument() != AuditInstrument || ev.GetEpoch() != a.epoch {
		return
	}
	a.mu.Lock()
	a.seen[ev.GetSeq()] = struct{}{}
	a.mu.Unlock()
}

// Result returns how many writes were acknowledged, which of them the stream does not hold,
// and how many publishes had to be retried.
func (a *Audit) Result() (acked int, lost []uint64, retries uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range a.acked {
		if _, ok := a.seen[s]; !ok {
			lost = append(lost, s)
		}
	}
	return len(a.acked), slices.Clip(lost), a.retries
}
