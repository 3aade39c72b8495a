package loadgen

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tickwire/tickwire/internal/source/synthetic"
	"github.com/tickwire/tickwire/pkg/market"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// recorder keeps what the walker saw.
type recorder struct {
	deltas []deltaInfo
	snaps  []snapInfo
	others []protowire.Number
}

func (r *recorder) delta(d *deltaInfo)                 { r.deltas = append(r.deltas, *d) }
func (r *recorder) snapshot(s *snapInfo)               { r.snaps = append(r.snaps, *s) }
func (r *recorder) other(k protowire.Number, _ []byte) { r.others = append(r.others, k) }

type nopVisitor struct{ n int }

func (v *nopVisitor) delta(*deltaInfo)               { v.n++ }
func (v *nopVisitor) snapshot(*snapInfo)             { v.n++ }
func (v *nopVisitor) other(protowire.Number, []byte) { v.n++ }

// realFrame encodes, as the feed does (wire.AppendMessage per message, then the send time),
// the messages of a synthetic market run through the feed's state machine: subscribed replies,
// snapshots of every channel, and every delta of n events.
func realFrame(t testing.TB, n int) []byte {
	t.Helper()
	mkt, err := synthetic.NewMarket(synthetic.Config{Instruments: 3, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	var cfg market.Config
	states := map[string]*market.State{}
	handles := map[string]uint32{}
	seqs := map[string]uint64{}
	var msgs []*pb.ServerMessage
	now := time.Now().UnixNano()
	for i := range n {
		ev := mkt.Next(now + int64(i)*1e6)
		st := states[ev.Instrument]
		if st == nil {
			st = market.NewState(ev.Instrument, cfg)
			states[ev.Instrument] = st
			handles[ev.Instrument] = uint32(len(handles) + 1)
			msgs = append(msgs, &pb.ServerMessage{Kind: &pb.ServerMessage_Subscribed{Subscribed: &pb.Subscribed{
				RequestId: 1, Handle: handles[ev.Instrument], Info: &pb.InstrumentInfo{Id: ev.Instrument},
				Channels: []pb.Channel{1, 2, 3, 4, 5}, Depth: 10}}})
		}
		seqs[ev.Instrument]++
		ev.Epoch, ev.Seq, ev.IngestTimeNs = 1_800_000_000, seqs[ev.Instrument], now+int64(i)
		res, err := st.Apply(ev)
		if err != nil {
			t.Fatal(err)
		}
		h := handles[ev.Instrument]
		if cq := new(pb.CompactQuote); i%2 == 1 && res.CompactQuote(cq) { // both forms, as for two subscribers
			cq.Handle = h
			msgs = append(msgs, &pb.ServerMessage{Kind: &pb.ServerMessage_CompactQuote{CompactQuote: cq}})
		}
		for _, d := range append([]*pb.Delta{res.Quote, res.Trades, res.Candles, res.Stats}, res.Book...) {
			if d != nil {
				d.Handle = h
				msgs = append(msgs, &pb.ServerMessage{Kind: &pb.ServerMessage_Delta{Delta: d}})
			}
		}
		if i%50 == 49 {
			for ch := pb.Channel(1); ch <= 5; ch++ {
				if s := st.Snapshot(ch, 0, pb.SnapshotReason_SNAPSHOT_REASON_RESYNC); s != nil {
					s.Handle = h
					msgs = append(msgs, &pb.ServerMessage{Kind: &pb.ServerMessage_Snapshot{Snapshot: s}})
				}
			}
		}
	}
	msgs = append(msgs,
		&pb.ServerMessage{Kind: &pb.ServerMessage_Heartbeat{Heartbeat: &pb.Heartbeat{TimeNs: now}}},
		&pb.ServerMessage{Kind: &pb.ServerMessage_Error{Error: &pb.Error{Code: pb.ErrorCode_ERROR_CODE_RATE_LIMITED}}},
		&pb.ServerMessage{})
	var frame []byte
	for _, m := range msgs {
		if frame, err = wire.AppendMessage(frame, m); err != nil {
			t.Fatal(err)
		}
	}
	return wire.AppendSendTime(frame, now+123)
}

func TestWalkFrameMatchesUnmarshal(t *testing.T) {
	frame := realFrame(t, 400)
	var want pb.ServerFrame
	if err := proto.Unmarshal(frame, &want); err != nil {
		t.Fatal(err)
	}
	var got recorder
	send, err := walkFrame(frame, &got)
	if err != nil {
		t.Fatal(err)
	}
	if send != want.SendTimeNs {
		t.Fatalf("send time %d, want %d", send, want.SendTimeNs)
	}
	var di, si, oi, cq int
	for _, m := range want.Messages {
		switch k := m.Kind.(type) {
		case *pb.ServerMessage_Delta:
			d, g := k.Delta, got.deltas[di]
			di++
			w := deltaInfo{Handle: d.Handle, Channel: uint8(market.ChannelOf(d)), Epoch: d.Epoch, Seq: d.Seq,
				PrevSeq: d.PrevSeq, IngestNs: d.IngestTimeNs}
			if g != w {
				t.Fatalf("delta %d: walked %+v, unmarshalled %+v", di-1, g, w)
			}
		case *pb.ServerMessage_CompactQuote:
			c, g := k.CompactQuote, got.deltas[di]
			di++
			cq++
			w := deltaInfo{Handle: c.Handle, Channel: 1, Seq: c.Seq, PrevSeq: c.Seq - c.SeqStep, IngestNs: c.IngestTimeStepUs, Compact: true}
			if g != w {
				t.Fatalf("compact quote %d: walked %+v, unmarshalled %+v", di-1, g, w)
			}
		case *pb.ServerMessage_Snapshot:
			s, g := k.Snapshot, got.snaps[si]
			si++
			w := snapInfo{Handle: s.Handle, Channel: uint8(s.Channel), Epoch: s.Epoch, Seq: s.Seq, Reason: uint8(s.Reason),
				IngestNs: s.LastIngestTimeNs}
			if g != w {
				t.Fatalf("snapshot %d: walked %+v, unmarshalled %+v", si-1, g, w)
			}
		default:
			oi++
		}
	}
	if di != len(got.deltas) || si != len(got.snaps) || oi-1 != len(got.others) { // the empty message has no kind to report
		t.Fatalf("walked %d deltas %d snapshots %d others; unmarshal has %d %d %d", len(got.deltas), len(got.snaps), len(got.others), di, si, oi)
	}
	if di < 300 || si < 10 || cq < 20 {
		t.Fatalf("frame too small to test: %d deltas (%d compact), %d snapshots", di, cq, si)
	}
}

func TestWalkFrameRejectsTruncated(t *testing.T) {
	frame := realFrame(t, 20)
	for _, cut := range []int{1, 7, len(frame) / 2, len(frame) - 3} {
		var v nopVisitor
		if _, err := walkFrame(frame[:cut], &v); err == nil {
			// A cut between two complete fields is a valid shorter frame; check it decodes too.
			var f pb.ServerFrame
			if proto.Unmarshal(frame[:cut], &f) != nil {
				t.Errorf("cut at %d: walker accepted what proto.Unmarshal refuses", cut)
			}
		} else if !errors.Is(err, errMalformed) {
			t.Errorf("cut at %d: %v", cut, err)
		}
	}
}

func TestWalkFrameDoesNotAllocate(t *testing.T) {
	frame := realFrame(t, 200)
	v := &nopVisitor{}
	w := &walker{}
	if n := testing.AllocsPerRun(20, func() { _, _ = w.walk(frame, v) }); n != 0 {
		t.Fatalf("%v allocations per frame", n)
	}
}

// The walker against the generic decoder on the same frame, per message.
func BenchmarkWalkFrame(b *testing.B) {
	frame := realFrame(b, 1000)
	var f pb.ServerFrame
	_ = proto.Unmarshal(frame, &f)
	msgs := len(f.Messages)
	b.Run("walk", func(b *testing.B) {
		v := &nopVisitor{}
		w := &walker{}
		b.SetBytes(int64(len(frame)))
		for b.Loop() {
			_, _ = w.walk(frame, v)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*msgs), "ns/msg")
	})
	b.Run("unmarshal", func(b *testing.B) {
		b.SetBytes(int64(len(frame)))
		for b.Loop() {
			var f pb.ServerFrame
			_ = proto.Unmarshal(frame, &f)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*msgs), "ns/msg")
	})
}

// TestWalkCompactQuoteRefuses: a compact quote whose step names no possible previous delta, or
// with a field that is not a varint, makes the frame malformed instead of a wrong position.
func TestWalkCompactQuoteRefuses(t *testing.T) {
	frame := func(c []byte) []byte {
		msg := protowire.AppendBytes(protowire.AppendTag(nil, fMsgCompactQuote, protowire.BytesType), c)
		return protowire.AppendBytes(protowire.AppendTag(nil, fFrameMessages, protowire.BytesType), msg)
	}
	varint := func(b []byte, num protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
	}
	ok := varint(varint(varint(nil, fHandle, 3), fCompactSeq, 10), fCompactSeqStep, 2)
	tests := []struct {
		name string
		c    []byte
		bad  bool
	}{
		{"follows", ok, false},
		{"no step", varint(varint(nil, fHandle, 3), fCompactSeq, 10), true},
		{"step past seq", varint(varint(nil, fCompactSeq, 10), fCompactSeqStep, 11), true},
		{"bytes field", protowire.AppendBytes(protowire.AppendTag(ok, 6, protowire.BytesType), []byte{1}), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got recorder
			_, err := walkFrame(frame(tt.c), &got)
			if tt.bad != errors.Is(err, errMalformed) {
				t.Fatalf("error %v, want malformed: %v", err, tt.bad)
			}
			if !tt.bad && (len(got.deltas) != 1 || got.deltas[0] != deltaInfo{Handle: 3, Channel: 1, Seq: 10, PrevSeq: 8, Compact: true}) {
				t.Fatalf("walked %+v", got.deltas)
			}
		})
	}
}
