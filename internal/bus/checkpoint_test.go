package bus_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/bus/bustest"
)

// The feed role writes checkpoints (several chunks each) into CheckpointSlots slots, the oldest
// replaced first, and reads back exactly what it wrote; a slot caught mid-write is skipped.
func TestCheckpointStore(t *testing.T) {
	srv := bustest.Start(t)
	bustest.Connect(t, srv) // creates the event stream
	b := bustest.ConnectAs(t, srv, string(bus.RoleFeed))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if have, err := b.Checkpoints(ctx); err != nil || len(have) != 0 {
		t.Fatalf("Checkpoints before any: %v, %v", have, err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	data := map[uint64][]byte{}
	for i, size := range []int{0, 10, 600 << 10, 300 << 10, 5} { // 0 bytes to 3 chunks
		seq := uint64(100 * (i + 1))
		b2 := make([]byte, size)
		for j := range b2 {
			b2[j] = byte(rng.Uint32())
		}
		data[seq] = b2
		if _, err := b.PutCheckpoint(ctx, seq, time.Now(), b2); err != nil {
			t.Fatalf("put %d: %v", seq, err)
		}
	}
	have, err := b.Checkpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(have) != bus.CheckpointSlots || have[0].StreamSeq != 500 || have[1].StreamSeq != 400 || have[2].StreamSeq != 300 {
		t.Fatalf("Checkpoints = %+v, want 500, 400, 300", have)
	}
	for _, ci := range have {
		got, err := b.ReadCheckpoint(ctx, ci)
		if err != nil {
			t.Fatalf("read %d: %v", ci.StreamSeq, err)
		}
		if !bytes.Equal(got, data[ci.StreamSeq]) {
			t.Fatalf("read %d: %d bytes differ from the %d written", ci.StreamSeq, len(got), len(data[ci.StreamSeq]))
		}
	}
	// The oldest slot is written again: what was listed of it no longer reads.
	if _, err := b.PutCheckpoint(ctx, 600, time.Now(), []byte("six")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ReadCheckpoint(ctx, have[2]); err == nil {
		t.Fatal("read an overwritten checkpoint")
	}
	st, err := b.StreamState(ctx)
	if err != nil || st.Created.IsZero() {
		t.Fatalf("StreamState.Created: %v, %v", st.Created, err)
	}
}
