package bus

import (
	"errors"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// errSlowPath stops the direct decoder at anything it leaves to the protobuf library.
var errSlowPath = errors.New("bus: not a plain event")

// eventDecoder decodes Events as proto.Unmarshal does, with the same results and the same
// errors. Book updates, trades and quotes in their plain encoding (the only one ingest writes)
// are read directly, without reflection, with one allocation for all of an update's levels and
// none for an instrument id seen before; everything else (reference data, unknown fields, a
// body given twice, malformed input) goes to proto.Unmarshal. Every event a feed consumes
// passes here, and every stored event on its warm start. Not safe for concurrent use.
type eventDecoder struct {
	ids map[string]string // instrument ids seen, to share one string per id
}

// maxInternedIDs bounds the ids kept: past it, ids are allocated per event as before.
const maxInternedIDs = 1 << 16

// decode decodes b into ev, which must be empty.
func (d *eventDecoder) decode(b []byte, ev *tickwirev1.Event) error {
	if err := d.direct(b, ev); err == nil {
		return nil
	}
	proto.Reset(ev)
	return proto.Unmarshal(b, ev)
}

// decodeMessage decodes a stream message's events (one, or a batch: batch.go) and calls fn
// with each, in order. An event that does not decode is passed to bad and skipped; a batch
// whose header or framing is broken is passed to bad once, after the events before the break.
// fn's error stops the message and is returned.
func (d *eventDecoder) decodeMessage(h nats.Header, data []byte, fn func(*tickwirev1.Event) error, bad func(error)) error {
	n, err := batchCount(h)
	if err != nil {
		bad(err)
		return nil
	}
	if n == 1 {
		ev := new(tickwirev1.Event)
		if err := d.decode(data, ev); err != nil {
			bad(err)
			return nil
		}
		return fn(ev)
	}
	var fnErr error
	err = splitBatch(data, n, func(b []byte) error {
		ev := new(tickwirev1.Event)
		if err := d.decode(b, ev); err != nil {
			bad(err)
			return nil
		}
		fnErr = fn(ev)
		return fnErr
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		bad(err)
	}
	return nil
}

func (d *eventDecoder) id(v []byte) string {
	if s, ok := d.ids[string(v)]; ok {
		return s
	}
	s := string(v)
	if d.ids == nil {
		d.ids = map[string]string{}
	}
	if len(d.ids) < maxInternedIDs {
		d.ids[s] = s
	}
	return s
}

func (d *eventDecoder) direct(b []byte, ev *tickwirev1.Event) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errSlowPath
		}
		b = b[n:]
		switch {
		case num >= 2 && num <= 5 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return errSlowPath
			}
			b = b[n:]
			switch num {
			case 2:
				ev.Epoch = v
			case 3:
				ev.Seq = v
			case 4:
				ev.VenueTimeNs = int64(v)
			case 5:
				ev.IngestTimeNs = int64(v)
			}
		case typ == protowire.BytesType && (num == 1 || (num >= 10 && num <= 12)):
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return errSlowPath
			}
			b = b[n:]
			if num == 1 {
				if !utf8.Valid(v) {
					return errSlowPath
				}
				ev.Instrument = d.id(v)
				continue
			}
			if ev.Body != nil {
				return errSlowPath // a second body: protobuf's merge rules
			}
			var err error
			switch num {
			case 10:
				ev.Body, err = decodeBook(v)
			case 11:
				ev.Body, err = decodeTrade(v)
			case 12:
				ev.Body, err = decodeQuote(v)
			}
			if err != nil {
				return err
			}
		default:
			return errSlowPath
		}
	}
	return nil
}

// varints reads a message made only of varint fields numbered 1..len(dst) into dst.
func varints(b []byte, dst []uint64) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.VarintType || num < 1 || int(num) > len(dst) {
			return errSlowPath
		}
		b = b[n:]
		v, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return errSlowPath
		}
		b = b[n:]
		dst[num-1] = v
	}
	return nil
}

func decodeQuote(b []byte) (*tickwirev1.Event_Quote, error) {
	var f [4]uint64
	if err := varints(b, f[:]); err != nil {
		return nil, err
	}
	return &tickwirev1.Event_Quote{Quote: &tickwirev1.Quote{BidPrice: int64(f[0]), BidSize: int64(f[1]),
		AskPrice: int64(f[2]), AskSize: int64(f[3])}}, nil
}

func decodeTrade(b []byte) (*tickwirev1.Event_Trade, error) {
	t := &tickwirev1.Trade{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, errSlowPath
		}
		b = b[n:]
		switch {
		case num >= 1 && num <= 3 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, errSlowPath
			}
			b = b[n:]
			switch num {
			case 1:
				t.Price = int64(v)
			case 2:
				t.Size = int64(v)
			case 3:
				t.Side = tickwirev1.Side(int32(v))
			}
		case num == 5 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 || v > 1 {
				return nil, errSlowPath
			}
			b = b[n:]
			t.History = v == 1
		case num == 4 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 || !utf8.Valid(v) {
				return nil, errSlowPath
			}
			b = b[n:]
			t.TradeId = string(v)
		default:
			return nil, errSlowPath
		}
	}
	return &tickwirev1.Event_Trade{Trade: t}, nil
}

func decodeBook(b []byte) (*tickwirev1.Event_Book, error) {
	// Count the levels first: one backing array for all of them.
	var nb, na int
	rest := b
	for len(rest) > 0 {
		num, typ, n := protowire.ConsumeTag(rest)
		if n < 0 {
			return nil, errSlowPath
		}
		rest = rest[n:]
		if n = protowire.ConsumeFieldValue(num, typ, rest); n < 0 {
			return nil, errSlowPath
		}
		rest = rest[n:]
		switch num {
		case 2:
			nb++
		case 3:
			na++
		}
	}
	u := &tickwirev1.BookUpdate{}
	backing := make([]tickwirev1.Level, nb+na)
	if nb > 0 {
		u.Bids = make([]*tickwirev1.Level, 0, nb)
	}
	if na > 0 {
		u.Asks = make([]*tickwirev1.Level, 0, na)
	}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			b = b[n:]
			u.Snapshot = protowire.DecodeBool(v)
		case (num == 2 || num == 3) && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			b = b[n:]
			var f [3]uint64
			if err := varints(v, f[:]); err != nil {
				return nil, err
			}
			l := &backing[0]
			backing = backing[1:]
			l.Price, l.Size, l.Venues = int64(f[0]), int64(f[1]), uint32(f[2])
			if num == 2 {
				u.Bids = append(u.Bids, l)
			} else {
				u.Asks = append(u.Asks, l)
			}
		default:
			return nil, errSlowPath
		}
	}
	return &tickwirev1.Event_Book{Book: u}, nil
}
