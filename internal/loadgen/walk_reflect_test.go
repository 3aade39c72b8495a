// Tests that prove the frame walker of walk.go reads what proto.Unmarshal reads: on frames whose
// every field is filled by reflection over the descriptors (internal/prototest), one frame for
// each ServerMessage kind and, for deltas and snapshots, each body case, the positions, times,
// channels and kinds it passes on equal the library's, and every other message reaches the
// visitor whole. The walker reads a fixed part of each message by design, so a field added to
// the .proto later is filled here and must not disturb it; a kind or a body added later is
// covered too. No update is needed when a field is added.
package loadgen

import (
	"errors"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tickwire/tickwire/internal/prototest"
	"github.com/tickwire/tickwire/pkg/market"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// fullRecorder keeps what the walker passed on, with a copy of each other message's body.
type fullRecorder struct {
	deltas []deltaInfo
	snaps  []snapInfo
	others []protowire.Number
	bodies [][]byte
}

func (r *fullRecorder) delta(d *deltaInfo)   { r.deltas = append(r.deltas, *d) }
func (r *fullRecorder) snapshot(s *snapInfo) { r.snaps = append(r.snaps, *s) }
func (r *fullRecorder) other(k protowire.Number, body []byte) {
	r.others = append(r.others, k)
	r.bodies = append(r.bodies, append([]byte(nil), body...))
}

// TestWalkFrameEveryField walks filled frames (and, sparse, frames with about a third of the
// fields left zero) and compares with proto.Unmarshal of the same bytes.
func TestWalkFrameEveryField(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 4))
	kinds := map[string]int{}
	for round := range 300 {
		for _, v := range prototest.Variants(&pb.ServerFrame{}, r, round%2 == 1) {
			frame := v.Msg.(*pb.ServerFrame)
			// A compact quote's seq_step must not pass its seq (walk.go refuses it): keep the
			// filled values valid in most rounds, and check the refusal in the others.
			badCompact := false
			for _, m := range frame.Messages {
				if c := m.GetCompactQuote(); c != nil {
					if round%4 != 3 && c.SeqStep > c.Seq {
						c.Seq, c.SeqStep = c.SeqStep, c.Seq
					}
					badCompact = badCompact || c.SeqStep == 0 || c.SeqStep > c.Seq
				}
			}
			b, err := proto.MarshalOptions{Deterministic: true}.Marshal(frame)
			if err != nil {
				t.Fatal(err)
			}
			var want pb.ServerFrame
			if err := proto.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			var got fullRecorder
			send, err := walkFrame(b, &got)
			if badCompact {
				if !errors.Is(err, errMalformed) {
					t.Fatalf("%s: a compact quote with step > seq walked without errMalformed (%v)", v.Name, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s: %v", v.Name, err)
			}
			kinds[v.Name]++
			checkWalked(t, v.Name, &want, send, &got)
		}
	}
	if len(kinds) < len(prototest.Variants(&pb.ServerFrame{}, r, false)) {
		t.Fatalf("variants walked: %v", kinds)
	}
}

// checkWalked compares what the walker passed on with the unmarshalled frame.
func checkWalked(t *testing.T, name string, want *pb.ServerFrame, send int64, got *fullRecorder) {
	t.Helper()
	if send != want.SendTimeNs {
		t.Fatalf("%s: send time %d, want %d", name, send, want.SendTimeNs)
	}
	var di, si, oi int
	for i, m := range want.Messages {
		switch k := m.Kind.(type) {
		case *pb.ServerMessage_Delta:
			d := k.Delta
			w := deltaInfo{Handle: d.Handle, Channel: uint8(market.ChannelOf(d)), Epoch: d.Epoch, Seq: d.Seq,
				PrevSeq: d.PrevSeq, IngestNs: d.IngestTimeNs}
			if di >= len(got.deltas) {
				t.Fatalf("%s: message %d not passed on; unmarshalled %+v", name, i, w)
			}
			if got.deltas[di] != w {
				t.Fatalf("%s: message %d: walked %+v, unmarshalled %+v", name, i, got.deltas[di], w)
			}
			di++
		case *pb.ServerMessage_CompactQuote:
			c := k.CompactQuote
			w := deltaInfo{Handle: c.Handle, Channel: uint8(pb.Channel_CHANNEL_QUOTE), Seq: c.Seq, PrevSeq: c.Seq - c.SeqStep,
				IngestNs: c.IngestTimeStepUs, Compact: true}
			if di >= len(got.deltas) {
				t.Fatalf("%s: message %d not passed on; unmarshalled %+v", name, i, w)
			}
			if got.deltas[di] != w {
				t.Fatalf("%s: message %d: walked %+v, unmarshalled %+v", name, i, got.deltas[di], w)
			}
			di++
		case *pb.ServerMessage_Snapshot:
			s := k.Snapshot
			w := snapInfo{Handle: s.Handle, Channel: uint8(s.Channel), Epoch: s.Epoch, Seq: s.Seq, Reason: uint8(s.Reason),
				IngestNs: s.LastIngestTimeNs}
			if si >= len(got.snaps) {
				t.Fatalf("%s: message %d not passed on; unmarshalled %+v", name, i, w)
			}
			if got.snaps[si] != w {
				t.Fatalf("%s: message %d: walked %+v, unmarshalled %+v", name, i, got.snaps[si], w)
			}
			si++
		case nil: // no kind: nothing to pass on
		default:
			// Any other kind reaches other() with its number and its whole body.
			mr := m.ProtoReflect()
			fd := mr.WhichOneof(mr.Descriptor().Oneofs().ByName("kind"))
			if oi >= len(got.others) || got.others[oi] != fd.Number() {
				t.Fatalf("%s: message %d of kind %s not passed to other() (%v)", name, i, fd.Name(), got.others)
			}
			body := mr.Get(fd).Message().New()
			if err := proto.Unmarshal(got.bodies[oi], body.Interface()); err != nil {
				t.Fatalf("%s: message %d: %v", name, i, err)
			}
			if !proto.Equal(body.Interface(), mr.Get(fd).Message().Interface()) {
				t.Fatalf("%s: message %d: other() got %v, want %v", name, i, body, mr.Get(fd).Message())
			}
			oi++
		}
	}
	if di != len(got.deltas) || si != len(got.snaps) || oi != len(got.others) {
		t.Fatalf("%s: walked %d deltas %d snapshots %d others; unmarshal has %d %d %d", name,
			len(got.deltas), len(got.snaps), len(got.others), di, si, oi)
	}
}
