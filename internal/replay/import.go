package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/pkg/history"
	"github.com/tickwire/tickwire/pkg/market"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// Store is where Import publishes; bus.Bus implements it.
type Store interface {
	Publish(ctx context.Context, ev *tickwirev1.Event) error
	Flush(ctx context.Context) error
	LastPosition(ctx context.Context, instrument string) (epoch, seq uint64, found bool, err error)
}

var _ Store = (*bus.Bus)(nil)

// ImportStats counts an import.
type ImportStats struct {
	// Read counts events decoded from the file.
	Read uint64
	// Published counts events handed to the store (JetStream stores an event once however
	// often it is published within its de-duplication window).
	Published uint64
	// Rejected counts the rows not imported because they are bad, whatever the reason (see
	// RejectReason); RejectedBy splits it by reason, and Rejections lists the first of them.
	Rejected   uint64
	RejectedBy map[RejectReason]uint64
	// Rejections are the first MaxListedRejections rejected rows, in file order.
	Rejections []Rejection
	// Skipped counts valid events at or before the position the store already holds for
	// their instrument: already imported, or older than what is stored. Appending them would
	// put an older position after a newer one on the instrument's subject, which consumers
	// ignore and which would mislead ingest's sequencer after a restart.
	Skipped uint64
}

// MaxListedRejections bounds ImportStats.Rejections, so that a file of garbage costs counts,
// not memory; an operator fixes the first hundred bad rows before needing the next.
const MaxListedRejections = 100

// RejectReason says why a row was not imported.
type RejectReason string

// The reasons.
const (
	// RejectUndecodable: an NDJSON line that is not one Event (not JSON, unknown fields, a
	// value its field cannot hold, such as a price with more decimals than an int64 mantissa,
	// or longer than history.MaxRecordSize).
	RejectUndecodable RejectReason = "undecodable"
	// RejectInvalid: an Event that feed would not apply (pkg/market State.Apply): an invalid
	// instrument id, no body, impossible values, or a position at or before the instrument's
	// previous event in the file.
	RejectInvalid RejectReason = "invalid"
	// RejectTooLarge: an Event larger than the store takes (the NATS server's max_payload;
	// a dry run assumes the default, bus.DefaultMaxPayload).
	RejectTooLarge RejectReason = "too large"
)

// Rejection is one row Import did not import.
type Rejection struct {
	// Line is the 1-based line of an NDJSON file (0 in a binary file).
	Line int
	// Record is the 1-based record of a binary file (0 in an NDJSON file).
	Record uint64
	// Instrument, Epoch and Seq are the event's, when it was decoded.
	Instrument string
	Epoch, Seq uint64
	Reason     RejectReason
	Err        error
}

// maxReasonLen bounds the error text String shows: decoders quote the offending value, which
// may be megabytes long.
const maxReasonLen = 200

// String is "line 13: undecodable: <error>" (or "record 13: ..."), the error cut to a few
// hundred bytes.
func (r Rejection) String() string {
	var where string
	switch {
	case r.Line > 0:
		where = "line " + strconv.Itoa(r.Line)
	case r.Record > 0:
		where = "record " + strconv.FormatUint(r.Record, 10)
	default:
		where = "row"
	}
	msg := ""
	if r.Err != nil {
		msg = r.Err.Error()
	}
	if len(msg) > maxReasonLen {
		msg = strings.ToValidUTF8(msg[:maxReasonLen], "") + fmt.Sprintf("... (%d bytes)", len(msg))
	}
	if r.Instrument != "" {
		return fmt.Sprintf("%s: %s: %s %d/%d: %s", where, r.Reason, r.Instrument, r.Epoch, r.Seq, msg)
	}
	return fmt.Sprintf("%s: %s: %s", where, r.Reason, msg)
}

func (st *ImportStats) reject(r Rejection) {
	st.Rejected++
	if st.RejectedBy == nil {
		st.RejectedBy = map[RejectReason]uint64{}
	}
	st.RejectedBy[r.Reason]++
	if len(st.Rejections) < MaxListedRejections {
		st.Rejections = append(st.Rejections, r)
	}
}

// position returns where the reader's last event was: its line (NDJSON) or record (binary).
func position(r history.Reader) (line int, record uint64) {
	switch r := r.(type) {
	case interface{ Line() int }:
		return r.Line(), 0
	case interface{ Count() uint64 }:
		return 0, r.Count()
	}
	return 0, 0
}

// Import publishes the events of r to store verbatim (same instrument, epoch, seq and times,
// so JetStream's message ids de-duplicate them), after validating each with a market.State per
// instrument. A bad row (RejectReason: undecodable, invalid, or too large for the store) is
// rejected: counted, listed with its line or record, logged at debug level and skipped, and the
// import goes on with the next row. Any other error (a read error, a binary file that is
// corrupt or truncated, a store that fails) stops the import; what was published before stays.
// With a nil store it only validates and counts (a dry run; events over bus.DefaultMaxPayload
// count as too large). It flushes before returning.
func Import(ctx context.Context, r history.Reader, store Store, logger *slog.Logger) (ImportStats, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var st ImportStats
	reject := func(rej Rejection) {
		st.reject(rej)
		logger.Debug("import: row rejected", "row", rej.String())
	}
	states := map[string]*market.State{}
	type pos struct{ epoch, seq uint64 }
	stored := map[string]*pos{} // last stored position per instrument, nil entry: none
	for {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if le := (*history.LineError)(nil); errors.As(err, &le) {
			reject(Rejection{Line: le.Line, Reason: RejectUndecodable, Err: le.Err})
			continue
		}
		if err != nil {
			return st, fmt.Errorf("replay: import: after %d events: %w", st.Read, err)
		}
		st.Read++
		line, record := position(r)
		rejectEvent := func(reason RejectReason, err error) {
			reject(Rejection{Line: line, Record: record, Instrument: ev.GetInstrument(), Epoch: ev.GetEpoch(),
				Seq: ev.GetSeq(), Reason: reason, Err: err})
		}
		id := ev.GetInstrument()
		s := states[id]
		if s == nil {
			if _, err := bus.EventSubject(id); err != nil {
				rejectEvent(RejectInvalid, err)
				continue
			}
			s = market.NewState(id, market.Config{})
			states[id] = s
		}
		if _, err := s.Apply(ev); err != nil {
			rejectEvent(RejectInvalid, err)
			continue
		}
		if store == nil {
			if n := proto.Size(ev); n > bus.DefaultMaxPayload {
				rejectEvent(RejectTooLarge, fmt.Errorf("%w: %d bytes, default max_payload %d", bus.ErrTooLarge, n, bus.DefaultMaxPayload))
			}
			continue
		}
		p, seen := stored[id]
		if !seen {
			epoch, seq, found, err := store.LastPosition(ctx, id)
			if err != nil {
				return st, fmt.Errorf("replay: import: %w", err)
			}
			if found {
				p = &pos{epoch, seq}
			}
			stored[id] = p
		}
		if p != nil && (ev.Epoch < p.epoch || ev.Epoch == p.epoch && ev.Seq <= p.seq) {
			st.Skipped++
			continue
		}
		if err := store.Publish(ctx, ev); err != nil {
			if errors.Is(err, bus.ErrTooLarge) {
				rejectEvent(RejectTooLarge, err) // not sent; the rows after it go on
				continue
			}
			return st, fmt.Errorf("replay: import: %w", err)
		}
		st.Published++
	}
	if store != nil {
		if err := store.Flush(ctx); err != nil {
			return st, fmt.Errorf("replay: import: %w", err)
		}
	}
	return st, nil
}
