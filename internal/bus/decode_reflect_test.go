// Tests that prove the hand decoder of decode.go (eventDecoder) reads every field of an Event as
// proto.Unmarshal does, and reads it itself rather than handing it to the library. The events
// are filled by reflection over their descriptors (internal/prototest): every field, every body
// case, nested messages and repeated fields. A field added to the .proto later is filled too:
// the direct path does not know it, gives the event to proto.Unmarshal, and the test fails until
// decode.go reads it (or the body case is named in libraryBodies). No update is needed when a
// field is added.
package bus

import (
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tickwire/tickwire/internal/prototest"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// libraryBodies are the Event body cases that the decoder leaves to proto.Unmarshal on purpose
// (reference data is rare; session statistics start a replay chain only); every other case, and
// no body, must take the direct path.
var libraryBodies = map[string]bool{"info": true, "stats": true}

// TestDecodeEventEveryField: for every body case of Event (and none), with every field filled
// (and, sparse, about a third left zero), the decoder gives what the library encoded, through
// the direct path unless the body is in libraryBodies.
func TestDecodeEventEveryField(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 3))
	var d eventDecoder
	direct := map[string]int{}
	for round := range 400 {
		for _, v := range prototest.Variants(&tickwirev1.Event{}, r, round%2 == 1) {
			b, err := proto.Marshal(v.Msg)
			if err != nil {
				t.Fatal(err)
			}
			var got tickwirev1.Event
			if err := d.decode(b, &got); err != nil {
				t.Fatalf("%s: %v", v.Name, err)
			}
			if !proto.Equal(&got, v.Msg) {
				t.Fatalf("%s: decoded\n %v\nwant\n %v", v.Name, &got, v.Msg)
			}
			body := strings.TrimPrefix(v.Name, "body=")
			var probe tickwirev1.Event
			err = d.direct(b, &probe)
			switch {
			case libraryBodies[body] && err == nil:
				t.Fatalf("%s: took the direct path; drop %q from libraryBodies", v.Name, body)
			case !libraryBodies[body] && err != nil:
				t.Fatalf("%s: the direct path gave up (%v): decode.go does not read a field of it\n %v", v.Name, err, v.Msg)
			case err == nil && !proto.Equal(&probe, v.Msg):
				t.Fatalf("%s: direct path decoded\n %v\nwant\n %v", v.Name, &probe, v.Msg)
			}
			if err == nil {
				direct[body]++
			}
		}
	}
	t.Logf("direct decodes per body case: %v", direct)
}
