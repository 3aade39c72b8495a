// Tests of the reflection filler: every field of every message reachable from a ServerFrame and
// an Event is set, and Variants takes every oneof case. They read the descriptors, so they need
// no update when a field or a message is added.
package prototest

import (
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// checkFull fails unless every field of m outside a oneof is set (lists with two elements or
// more), recursively through messages; it records the oneof cases set.
func checkFull(t *testing.T, m protoreflect.Message, seen map[protoreflect.FullName]bool) {
	t.Helper()
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if o := fd.ContainingOneof(); o != nil && !o.IsSynthetic() {
			if m.WhichOneof(o) == fd {
				seen[fd.FullName()] = true
			} else {
				continue
			}
		}
		if !m.Has(fd) {
			t.Fatalf("%s not set", fd.FullName())
		}
		switch {
		case fd.IsList():
			l := m.Get(fd).List()
			if l.Len() < 2 {
				t.Fatalf("%s has %d elements", fd.FullName(), l.Len())
			}
			if fd.Message() != nil {
				for j := range l.Len() {
					checkFull(t, l.Get(j).Message(), seen)
				}
			}
		case fd.Message() != nil && !fd.IsMap():
			checkFull(t, m.Get(fd).Message(), seen)
		}
	}
}

func TestVariantsFillEveryFieldAndCase(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, m := range []proto.Message{&pb.ServerFrame{}, &pb.Event{}, &pb.ClientMessage{}} {
		seen := map[protoreflect.FullName]bool{}
		vs := Variants(m, r, false)
		names := map[string]bool{}
		for _, v := range vs {
			if names[v.Name] {
				t.Fatalf("variant %q twice", v.Name)
			}
			names[v.Name] = true
			checkFull(t, v.Msg.ProtoReflect(), seen)
			if _, err := proto.Marshal(v.Msg); err != nil {
				t.Fatalf("%s: %v", v.Name, err)
			}
		}
		// Every case of every oneof reachable from m was taken by some variant.
		var walk func(md protoreflect.MessageDescriptor, depth int)
		walk = func(md protoreflect.MessageDescriptor, depth int) {
			if depth >= maxDepth {
				return
			}
			fields := md.Fields()
			for i := range fields.Len() {
				fd := fields.Get(i)
				if o := fd.ContainingOneof(); o != nil && !o.IsSynthetic() && !seen[fd.FullName()] {
					t.Errorf("%T: no variant sets %s", m, fd.FullName())
				}
				if fd.Message() != nil && !fd.IsMap() {
					walk(fd.Message(), depth+1)
				}
			}
		}
		walk(m.ProtoReflect().Descriptor(), 0)
		t.Logf("%T: %d variants", m, len(vs))
	}
}

func TestFillIsDeterministic(t *testing.T) {
	a, b := &pb.ServerFrame{}, &pb.ServerFrame{}
	Fill(a, rand.New(rand.NewPCG(5, 6)), true)
	Fill(b, rand.New(rand.NewPCG(5, 6)), true)
	if !proto.Equal(a, b) {
		t.Fatal("the same seed filled two different frames")
	}
}
