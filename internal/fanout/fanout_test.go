package fanout

import (
	"errors"
	"sync"
	"testing"
	"time"

	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// fakeSocket records frames; block makes every write wait until unblocked or the deadline.
type fakeSocket struct {
	mu      sync.Mutex
	frames  [][]byte
	pings   int
	code    int
	closed  chan struct{}
	block   chan struct{}
	written chan struct{}
}

func newFakeSocket() *fakeSocket {
	return &fakeSocket{closed: make(chan struct{}), written: make(chan struct{}, 1024)}
}

func (f *fakeSocket) WriteFrame(b []byte, deadline time.Time) error {
	if f.block != nil {
		select {
		case <-f.block:
		case <-time.After(time.Until(deadline)):
			return errors.New("i/o timeout")
		}
	}
	f.mu.Lock()
	f.frames = append(f.frames, append([]byte(nil), b...))
	f.mu.Unlock()
	f.written <- struct{}{}
	return nil
}

func (f *fakeSocket) WritePing(time.Time) error {
	f.mu.Lock()
	f.pings++
	f.mu.Unlock()
	return nil
}

func (f *fakeSocket) Close(code int, _ string) {
	f.mu.Lock()
	f.code = code
	f.mu.Unlock()
	close(f.closed)
}

func msg(t *testing.T, seq uint64) []byte {
	t.Helper()
	b, err := wire.AppendMessage(nil, &pb.ServerMessage{Kind: &pb.ServerMessage_Delta{Delta: &pb.Delta{Seq: seq}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func start(t *testing.T, sock Socket, cfg Config, hooks Hooks) *Conn {
	t.Helper()
	c := New(sock, cfg, hooks)
	c.Start(func(f func()) { go f() })
	t.Cleanup(func() {
		c.Close(wire.CloseNormal, "")
		<-c.Done()
	})
	return c
}

func decode(t *testing.T, frame []byte) *pb.ServerFrame {
	t.Helper()
	var f pb.ServerFrame
	if err := wire.DecodeFrame(frame, wire.SubprotocolProto, &f); err != nil {
		t.Fatal(err)
	}
	return &f
}

// TestCoalesces: messages queued while the writer is busy leave in one frame, in order.
func TestCoalesces(t *testing.T) {
	sock := newFakeSocket()
	sock.block = make(chan struct{})
	c := start(t, sock, Config{}, Hooks{})
	for i := range uint64(50) {
		if r := c.Enqueue(msg(t, i+1), Delta, 0); r != Queued {
			t.Fatalf("enqueue %d: %v", i, r)
		}
	}
	close(sock.block)
	for range 2 {
		select {
		case <-sock.written:
		case <-time.After(5 * time.Second):
			t.Fatal("no write")
		}
		sock.mu.Lock()
		n := 0
		for _, f := range sock.frames {
			n += len(decode(t, f).Messages)
		}
		sock.mu.Unlock()
		if n == 50 {
			break
		}
	}
	sock.mu.Lock()
	defer sock.mu.Unlock()
	if len(sock.frames) > 2 {
		t.Fatalf("50 messages took %d frames, want 1 or 2 (the first may leave alone)", len(sock.frames))
	}
	var seq uint64
	for _, f := range sock.frames {
		fr := decode(t, f)
		if fr.SendTimeNs == 0 {
			t.Fatal("frame without send time")
		}
		for _, m := range fr.Messages {
			seq++
			if m.GetDelta().Seq != seq {
				t.Fatalf("message %d has seq %d", seq, m.GetDelta().Seq)
			}
		}
	}
}

func TestMaxFrameSplits(t *testing.T) {
	sock := newFakeSocket()
	sock.block = make(chan struct{})
	one := msg(t, 1)
	c := start(t, sock, Config{MaxFrame: 3 * len(one)}, Hooks{})
	for range 10 {
		c.Enqueue(one, Delta, 0)
	}
	close(sock.block)
	deadline := time.Now().Add(5 * time.Second)
	for {
		sock.mu.Lock()
		total := 0
		for _, f := range sock.frames {
			n := len(decode(t, f).Messages)
			if n > 3 {
				t.Fatalf("frame with %d messages, max 3", n)
			}
			total += n
		}
		sock.mu.Unlock()
		if total == 10 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 10 messages written", total)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestConflation: past the soft limit a delta is refused, deltas and snapshots pending are
// dropped, control messages kept, and the generation moves on.
func TestConflation(t *testing.T) {
	sock := newFakeSocket()
	sock.block = make(chan struct{}) // writer stuck on its first frame
	conflated := 0
	m := msg(t, 1)
	c := New(sock, Config{SoftLimit: 10 * len(m), HardLimit: 100 * len(m)}, Hooks{Conflated: func() { conflated++ }})
	// not started: nothing is written, everything stays pending
	c.Enqueue([]byte("ctl"), Control, 0)
	for range 9 {
		if r := c.Enqueue(m, Delta, 0); r != Queued {
			t.Fatalf("under the soft limit: %v", r)
		}
	}
	if r := c.Enqueue(m, Delta, 0); r != Conflated {
		t.Fatalf("over the soft limit: %v", r)
	}
	if conflated != 1 || c.Gen() != 1 || c.Pending() != 3 {
		t.Fatalf("after conflation: hooks %d gen %d pending %d", conflated, c.Gen(), c.Pending())
	}
	if r := c.Enqueue(m, Delta, 0); r != Stale {
		t.Fatalf("delta at the old generation: %v", r)
	}
	for range 20 { // snapshots may pass the soft limit, up to the hard one
		if r := c.Enqueue(m, Snapshot, 1); r != Queued {
			t.Fatalf("snapshot: %v", r)
		}
	}
	for c.Pending()+len(m) <= 100*len(m) {
		c.Enqueue(m, Snapshot, 1)
	}
	if r := c.Enqueue(m, Snapshot, 1); r != Closed {
		t.Fatalf("over the hard limit: %v", r)
	}
	<-sock.closed
	if sock.code != wire.CloseSlowConsumer {
		t.Fatalf("close code %d", sock.code)
	}
	if r := c.Enqueue([]byte("x"), Control, 0); r != Closed {
		t.Fatalf("after close: %v", r)
	}
}

func TestTooManyConflationsClose(t *testing.T) {
	sock := newFakeSocket()
	m := msg(t, 1)
	c := New(sock, Config{SoftLimit: len(m), MaxConflations: 3}, Hooks{})
	var last Result
	for i := 0; i < 20 && last != Closed; i++ {
		c.Enqueue(m, Delta, c.Gen())
		last = c.Enqueue(m, Delta, c.Gen())
	}
	if last != Closed || sock.code != wire.CloseSlowConsumer {
		t.Fatalf("last %v code %d", last, sock.code)
	}
}

func TestWriteTimeoutCloses(t *testing.T) {
	sock := newFakeSocket()
	sock.block = make(chan struct{}) // never unblocked
	c := start(t, sock, Config{WriteTimeout: 50 * time.Millisecond}, Hooks{})
	c.Enqueue(msg(t, 1), Delta, 0)
	select {
	case <-sock.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("not closed")
	}
	if sock.code != wire.CloseWriteTimeout {
		t.Fatalf("close code %d", sock.code)
	}
	<-c.Done()
}

func TestHeartbeatWhenIdleAndPings(t *testing.T) {
	sock := newFakeSocket()
	hb := msg(t, 99)
	start(t, sock, Config{Heartbeat: 20 * time.Millisecond, PingInterval: 15 * time.Millisecond},
		Hooks{Heartbeat: func(bool) []byte { return hb }})
	select {
	case <-sock.written:
	case <-time.After(5 * time.Second):
		t.Fatal("no heartbeat")
	}
	sock.mu.Lock()
	first := sock.frames[0]
	sock.mu.Unlock()
	if got := decode(t, first).Messages[0].GetDelta().GetSeq(); got != 99 {
		t.Fatalf("first idle frame is not the heartbeat: %d", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		sock.mu.Lock()
		pings := sock.pings
		sock.mu.Unlock()
		if pings > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no ping")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCloseIdempotent(t *testing.T) {
	sock := newFakeSocket()
	calls := 0
	c := start(t, sock, Config{}, Hooks{Closed: func(int, string) { calls++ }})
	c.Close(wire.CloseGoingAway, "bye")
	c.Close(wire.CloseNormal, "again")
	<-c.Done()
	if calls != 1 || sock.code != wire.CloseGoingAway {
		t.Fatalf("closed %d times, code %d", calls, sock.code)
	}
}

func TestJSONFrames(t *testing.T) {
	sock := newFakeSocket()
	c := start(t, sock, Config{JSON: true}, Hooks{})
	m1, _ := wire.MarshalJSONMessage(&pb.ServerMessage{Kind: &pb.ServerMessage_Heartbeat{Heartbeat: &pb.Heartbeat{TimeNs: 1}}})
	c.Enqueue(m1, Control, 0)
	<-sock.written
	sock.mu.Lock()
	defer sock.mu.Unlock()
	var f pb.ServerFrame
	if err := wire.DecodeFrame(sock.frames[0], wire.SubprotocolJSON, &f); err != nil || len(f.Messages) != 1 {
		t.Fatalf("%v %s", err, sock.frames[0])
	}
}

// BenchmarkEnqueue measures queuing one shared message for one connection: the per-subscriber
// cost of the fan-out path. It must not allocate.
func BenchmarkEnqueue(b *testing.B) {
	sock := newFakeSocket()
	m, _ := wire.AppendMessage(nil, &pb.ServerMessage{Kind: &pb.ServerMessage_Delta{Delta: &pb.Delta{Seq: 1, Handle: 3}}})
	c := New(sock, Config{SoftLimit: 1 << 30, HardLimit: 1 << 30}, Hooks{})
	c.pending = make([]item, 0, 1<<16)
	b.ReportAllocs()
	for b.Loop() {
		if c.Enqueue(m, Delta, 0) != Queued {
			b.Fatal("not queued")
		}
		if len(c.pending) == cap(c.pending) {
			c.pending, c.pendingSize = c.pending[:0], 0
		}
	}
}

// TestFlushIntervalGathers: the first update to a quiet connection leaves at once; updates that
// follow within the flush interval are gathered into one frame.
func TestFlushIntervalGathers(t *testing.T) {
	sock := newFakeSocket()
	c := start(t, sock, Config{FlushInterval: 100 * time.Millisecond}, Hooks{})
	c.Enqueue(msg(t, 1), Delta, 0)
	select {
	case <-sock.written:
	case <-time.After(50 * time.Millisecond):
		t.Fatal("the first update to a quiet connection waited")
	}
	for i := range uint64(10) {
		c.Enqueue(msg(t, i+2), Delta, 0)
	}
	select {
	case <-sock.written:
	case <-time.After(5 * time.Second):
		t.Fatal("no second write")
	}
	sock.mu.Lock()
	defer sock.mu.Unlock()
	if n := len(decode(t, sock.frames[1]).Messages); len(sock.frames) != 2 || n != 10 {
		t.Fatalf("%d frames, the second with %d messages; want the 10 gathered in one", len(sock.frames), n)
	}
}

// nullSocket accepts every write at once.
type nullSocket struct{ frames chan int }

func (s nullSocket) WriteFrame(b []byte, _ time.Time) error { s.frames <- len(b); return nil }
func (s nullSocket) WritePing(time.Time) error              { return nil }
func (s nullSocket) Close(int, string)                      {}

// BenchmarkDeliver measures one update's whole way through a connection: queued, joined into a
// frame with the send time, written. Allocations per op must be 0: the frame buffer and the
// batch are reused.
func BenchmarkDeliver(b *testing.B) {
	sock := nullSocket{frames: make(chan int, 1)}
	m, _ := wire.AppendMessage(nil, &pb.ServerMessage{Kind: &pb.ServerMessage_Delta{Delta: &pb.Delta{Seq: 1, Handle: 3,
		Body: &pb.Delta_Quote{Quote: &pb.Quote{BidPrice: 1234500, BidSize: 10, AskPrice: 1234600, AskSize: 20}}}}})
	c := New(sock, Config{FlushInterval: -1}, Hooks{})
	c.Start(func(f func()) { go f() })
	defer c.Close(wire.CloseNormal, "")
	b.ReportAllocs()
	for b.Loop() {
		c.Enqueue(m, Delta, 0)
		<-sock.frames
	}
}
