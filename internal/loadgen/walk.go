package loadgen

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of the frames walked (proto/tickwire/v1/stream.proto). walk_test.go checks the
// walker against proto.Unmarshal on frames encoded by pkg/wire, so a renumbering fails there.
const (
	fFrameMessages = 1
	fFrameSendTime = 2

	fMsgSnapshot     = 1
	fMsgDelta        = 2
	fMsgSubscribed   = 3
	fMsgError        = 8
	fMsgCompactQuote = 11

	// Delta and Snapshot share handle = 1 and their bodies at 10..14 (quote, book, trades or
	// trade, candles, stats): body field - 9 is the Channel number.
	fHandle    = 1
	fBodyFirst = 10
	fBodyLast  = 14

	fDeltaEpoch    = 2
	fDeltaSeq      = 3
	fDeltaPrevSeq  = 4
	fDeltaIngestNs = 7

	fSnapChannel = 2
	fSnapEpoch   = 3
	fSnapSeq     = 4
	fSnapReason  = 6
	fSnapIngest  = 7

	fCompactSeq        = 2
	fCompactSeqStep    = 3
	fCompactIngestStep = 4
)

var errMalformed = errors.New("loadgen: malformed frame")

// deltaInfo is what the load client needs of a Delta: its stream, position and ingest time.
type deltaInfo struct {
	Handle   uint32
	Channel  uint8 // pb.Channel number, from the body's field number; 0 if no known body
	Epoch    uint64
	Seq      uint64
	PrevSeq  uint64
	IngestNs int64
	// Compact: a CompactQuote. Epoch is 0 and IngestNs the step in microseconds from the
	// stream's previous update: the client completes both from what it holds.
	Compact bool
}

// snapInfo is what the load client needs of a Snapshot.
type snapInfo struct {
	Handle  uint32
	Channel uint8
	Epoch   uint64
	Seq     uint64
	Reason  uint8
	// IngestNs is the stream's last_ingest_time_ns: the base of the next CompactQuote.
	IngestNs int64
}

// frameVisitor receives the messages of a frame in order. The structs passed are reused: copy
// what must outlive the call. other gets every message kind besides snapshots and deltas with
// its encoded body (subscribed, errors, heartbeats...), which is rare enough to decode fully.
type frameVisitor interface {
	delta(d *deltaInfo)
	snapshot(s *snapInfo)
	other(kind protowire.Number, body []byte)
}

// walker holds the structs passed to a visitor, so that walking allocates nothing (a struct
// passed through an interface method escapes: it is allocated once here, not per message).
type walker struct {
	d deltaInfo
	s snapInfo
}

// walkFrame walks a frame with a fresh walker (tests; the client keeps one).
func walkFrame(b []byte, v frameVisitor) (int64, error) {
	var w walker
	return w.walk(b, v)
}

// walk walks a binary ServerFrame without allocating: for each ServerMessage it reads only the
// fields above and calls v. It returns the frame's send_time_ns.
func (w *walker) walk(b []byte, v frameVisitor) (sendNs int64, err error) {
	d, s := &w.d, &w.s
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, fmt.Errorf("%w: tag: %w", errMalformed, protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case num == fFrameMessages && typ == protowire.BytesType:
			msg, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return 0, fmt.Errorf("%w: message: %w", errMalformed, protowire.ParseError(n))
			}
			b = b[n:]
			if err := walkMessage(msg, v, d, s); err != nil {
				return 0, err
			}
		case num == fFrameSendTime && typ == protowire.VarintType:
			x, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return 0, fmt.Errorf("%w: send time: %w", errMalformed, protowire.ParseError(n))
			}
			b = b[n:]
			sendNs = int64(x)
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return 0, fmt.Errorf("%w: field %d: %w", errMalformed, num, protowire.ParseError(n))
			}
			b = b[n:]
		}
	}
	return sendNs, nil
}

// walkMessage walks one ServerMessage (a oneof: one field, or none that this walker knows).
func walkMessage(b []byte, v frameVisitor, d *deltaInfo, s *snapInfo) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: message tag: %w", errMalformed, protowire.ParseError(n))
		}
		b = b[n:]
		if typ != protowire.BytesType {
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return fmt.Errorf("%w: message field %d: %w", errMalformed, num, protowire.ParseError(n))
			}
			b = b[n:]
			continue
		}
		body, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return fmt.Errorf("%w: message body: %w", errMalformed, protowire.ParseError(n))
		}
		b = b[n:]
		switch num {
		case fMsgDelta:
			*d = deltaInfo{}
			if err := walkDelta(body, d); err != nil {
				return err
			}
			v.delta(d)
		case fMsgCompactQuote:
			*d = deltaInfo{Channel: 1, Compact: true}
			if err := walkCompactQuote(body, d); err != nil {
				return err
			}
			v.delta(d)
		case fMsgSnapshot:
			*s = snapInfo{}
			if err := walkSnapshot(body, s); err != nil {
				return err
			}
			v.snapshot(s)
		default:
			v.other(num, body)
		}
	}
	return nil
}

// field is one field of a message as the walkers see it: number, wire type and, for a varint,
// its value (a field of another type is skipped).
type field struct {
	num protowire.Number
	typ protowire.Type
	x   uint64
}

// nextField reads the field at the start of b and returns it with the rest of b; what names
// the message in errors.
func nextField(b []byte, what string) (field, []byte, error) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return field{}, nil, fmt.Errorf("%w: %s tag: %w", errMalformed, what, protowire.ParseError(n))
	}
	b = b[n:]
	f := field{num: num, typ: typ}
	if typ == protowire.VarintType {
		f.x, n = protowire.ConsumeVarint(b)
	} else {
		n = protowire.ConsumeFieldValue(num, typ, b)
	}
	if n < 0 {
		return field{}, nil, fmt.Errorf("%w: %s field %d: %w", errMalformed, what, num, protowire.ParseError(n))
	}
	return f, b[n:], nil
}

func walkDelta(b []byte, d *deltaInfo) error {
	for len(b) > 0 {
		f, rest, err := nextField(b, "delta")
		if err != nil {
			return err
		}
		b = rest
		switch {
		case f.typ == protowire.VarintType:
			switch f.num {
			case fHandle:
				d.Handle = uint32(f.x)
			case fDeltaEpoch:
				d.Epoch = f.x
			case fDeltaSeq:
				d.Seq = f.x
			case fDeltaPrevSeq:
				d.PrevSeq = f.x
			case fDeltaIngestNs:
				d.IngestNs = int64(f.x)
			}
		case f.num >= fBodyFirst && f.num <= fBodyLast && f.typ == protowire.BytesType:
			d.Channel = uint8(f.num - fBodyFirst + 1)
		}
	}
	return nil
}

func walkSnapshot(b []byte, s *snapInfo) error {
	for len(b) > 0 {
		f, rest, err := nextField(b, "snapshot")
		if err != nil {
			return err
		}
		b = rest
		if f.typ != protowire.VarintType {
			continue
		}
		switch f.num {
		case fHandle:
			s.Handle = uint32(f.x)
		case fSnapChannel:
			s.Channel = uint8(f.x)
		case fSnapEpoch:
			s.Epoch = f.x
		case fSnapSeq:
			s.Seq = f.x
		case fSnapReason:
			s.Reason = uint8(f.x)
		case fSnapIngest:
			s.IngestNs = int64(f.x)
		}
	}
	return nil
}

// walkCompactQuote reads a CompactQuote's handle, seq, prev_seq (seq - seq_step) and ingest
// time step; the price changes are not needed to count and time updates. Every field of a
// CompactQuote is a varint.
func walkCompactQuote(b []byte, d *deltaInfo) error {
	var step uint64
	for len(b) > 0 {
		f, rest, err := nextField(b, "compact quote")
		if err != nil {
			return err
		}
		b = rest
		if f.typ != protowire.VarintType {
			return fmt.Errorf("%w: compact quote field %d of type %d", errMalformed, f.num, f.typ)
		}
		switch f.num {
		case fHandle:
			d.Handle = uint32(f.x)
		case fCompactSeq:
			d.Seq = f.x
		case fCompactSeqStep:
			step = f.x
		case fCompactIngestStep:
			d.IngestNs = protowire.DecodeZigZag(f.x)
		}
	}
	if step == 0 || step > d.Seq {
		return fmt.Errorf("%w: compact quote at %d with step %d", errMalformed, d.Seq, step)
	}
	d.PrevSeq = d.Seq - step
	return nil
}
