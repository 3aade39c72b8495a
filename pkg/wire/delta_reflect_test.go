// Tests that prove the hand encoders of delta.go (AppendDeltaMessage, AppendCompactQuoteMessage)
// write every field of a Delta and of a CompactQuote exactly as the protobuf library does. The
// messages are filled by reflection over their descriptors (internal/prototest): every field,
// every body case, nested messages and repeated fields, so a field or a body added to the .proto
// later is filled too and fails here until delta.go writes it. No update is needed when a field
// is added.
package wire

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tickwire/tickwire/internal/prototest"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

var deterministic = proto.MarshalOptions{Deterministic: true}

// checkHandFrame fails unless got, the hand encoder's bytes for msg, equal the library's
// encoding of ServerFrame{messages: [msg]} and decode back to it.
func checkHandFrame(t *testing.T, name string, msg *pb.ServerMessage, got []byte) {
	t.Helper()
	frame := &pb.ServerFrame{Messages: []*pb.ServerMessage{msg}}
	want, err := deterministic.Marshal(frame)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: the hand encoder disagrees with proto.Marshal (a field it does not write?)\n msg %v\n got %x\nwant %x",
			name, msg, got, want)
	}
	var back pb.ServerFrame
	if err := proto.Unmarshal(got, &back); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if !proto.Equal(&back, frame) {
		t.Fatalf("%s: decoded %v, want %v", name, &back, frame)
	}
}

// TestAppendDeltaMessageEveryField: every body case of Delta (and none), every field filled
// (and, sparse, about a third of them left zero), with varied values.
func TestAppendDeltaMessageEveryField(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 1))
	cases := map[string]int{}
	for round := range 400 {
		for _, v := range prototest.Variants(&pb.Delta{}, r, round%2 == 1) {
			d := v.Msg.(*pb.Delta)
			cases[v.Name]++
			checkHandFrame(t, v.Name, &pb.ServerMessage{Kind: &pb.ServerMessage_Delta{Delta: d}}, AppendDeltaMessage(nil, d))
		}
	}
	if len(cases) != (&pb.Delta{}).ProtoReflect().Descriptor().Oneofs().ByName("body").Fields().Len()+1 {
		t.Fatalf("body cases tried: %v", cases)
	}
}

// TestAppendCompactQuoteMessageEveryField: the same for every field of CompactQuote.
func TestAppendCompactQuoteMessageEveryField(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 2))
	for round := range 2000 {
		for _, v := range prototest.Variants(&pb.CompactQuote{}, r, round%2 == 1) {
			c := v.Msg.(*pb.CompactQuote)
			checkHandFrame(t, "compact quote", &pb.ServerMessage{Kind: &pb.ServerMessage_CompactQuote{CompactQuote: c}},
				AppendCompactQuoteMessage(nil, c))
		}
	}
}
