package fanout

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tickwire/tickwire/internal/testwait"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// fakeSocket takes writes into one byte stream. accept bounds what one TryWrite takes (nil:
// everything); a negative bound refuses everything.
type fakeSocket struct {
	mu      sync.Mutex
	stream  []byte
	writes  int
	accept  func(n int) int
	err     error
	closed  chan struct{}
	once    sync.Once
	written chan struct{} // a token per write that took bytes
}

func newFakeSocket() *fakeSocket {
	return &fakeSocket{closed: make(chan struct{}), written: make(chan struct{}, 1<<16)}
}

func (f *fakeSocket) TryWrite(b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return 0, f.err
	}
	n := len(b)
	if f.accept != nil {
		n = max(min(f.accept(n), n), 0)
	}
	if n > 0 {
		f.stream = append(f.stream, b[:n]...)
		f.writes++
		f.written <- struct{}{}
	}
	return n, nil
}

func (f *fakeSocket) Close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}

func (f *fakeSocket) setAccept(a func(int) int) {
	f.mu.Lock()
	f.accept = a
	f.mu.Unlock()
}

// frame is one parsed WebSocket frame.
type frame struct {
	op      byte
	payload []byte
}

// frames parses the stream written so far, leaving out pings (a connection's first write may
// carry one: ping phases are random) and a frame cut at the end.
func (f *fakeSocket) frames(t *testing.T) []frame {
	t.Helper()
	var out []frame
	for _, fr := range f.allFrames(t) {
		if fr.op != opPing {
			out = append(out, fr)
		}
	}
	return out
}

// allFrames is frames with the pings.
func (f *fakeSocket) allFrames(t *testing.T) []frame {
	t.Helper()
	f.mu.Lock()
	b := append([]byte(nil), f.stream...)
	f.mu.Unlock()
	var out []frame
	for len(b) >= 2 {
		if b[0]&0x80 == 0 || b[1]&0x80 != 0 {
			t.Fatalf("frame header %x: want FIN set and no mask", b[:2])
		}
		op, n, h := b[0]&0x0f, int(b[1]&0x7f), 2
		switch n {
		case 126:
			if len(b) < 4 {
				return out
			}
			n, h = int(binary.BigEndian.Uint16(b[2:])), 4
		case 127:
			if len(b) < 10 {
				return out
			}
			n, h = int(binary.BigEndian.Uint64(b[2:])), 10
		}
		if len(b) < h+n {
			return out
		}
		out = append(out, frame{op: op, payload: b[h : h+n]})
		b = b[h+n:]
	}
	return out
}

func msg(t testing.TB, seq uint64) []byte {
	t.Helper()
	b, err := wire.AppendMessage(nil, &pb.ServerMessage{Kind: &pb.ServerMessage_Delta{Delta: &pb.Delta{Seq: seq}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// startWriter runs a Writer until the test ends.
func startWriter(t testing.TB, cfg Config) *Writer {
	t.Helper()
	w := NewWriter(cfg)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	w.Start(func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() }, quit)
	t.Cleanup(func() { close(quit); wg.Wait() })
	return w
}

// benchQuote is a typical quote delta as the feed queues it, for the benchmarks.
func benchQuote(tb testing.TB) []byte {
	tb.Helper()
	m, err := wire.AppendMessage(nil, &pb.ServerMessage{Kind: &pb.ServerMessage_Delta{Delta: &pb.Delta{Seq: 1, Handle: 3,
		Body: &pb.Delta_Quote{Quote: &pb.Quote{BidPrice: 1234500, BidSize: 10, AskPrice: 1234600, AskSize: 20}}}}})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func decode(t *testing.T, fr frame) *pb.ServerFrame {
	t.Helper()
	if fr.op != opBinary {
		t.Fatalf("opcode %d, want binary", fr.op)
	}
	var f pb.ServerFrame
	if err := wire.DecodeFrame(fr.payload, wire.SubprotocolProto, &f); err != nil {
		t.Fatal(err)
	}
	return &f
}

// dataFrames returns the binary frames written so far, decoded.
func dataFrames(t *testing.T, sock *fakeSocket) []*pb.ServerFrame {
	t.Helper()
	var out []*pb.ServerFrame
	for _, fr := range sock.frames(t) {
		if fr.op == opBinary {
			out = append(out, decode(t, fr))
		}
	}
	return out
}

// seqs lists the delta seqs carried by frames, in order.
func seqs(frames []*pb.ServerFrame) []uint64 {
	var out []uint64
	for _, f := range frames {
		for _, m := range f.Messages {
			out = append(out, m.GetDelta().GetSeq())
		}
	}
	return out
}

// TestCoalesces: messages queued while the socket is full leave in one frame, in order, after
// the frame the socket refused. In a synctest bubble: the writer's retries are timers, and the
// 20 ms the socket stays full are fake time in which every retry pass has run.
func TestCoalesces(t *testing.T) { synctest.Test(t, testCoalesces) }

func testCoalesces(t *testing.T) {
	sock := newFakeSocket()
	tries := 0
	sock.setAccept(func(int) int { tries++; return 0 })
	w := startWriter(t, Config{})
	c := w.NewConn(sock, false, Hooks{})
	for i := range uint64(50) {
		c.Enqueue(msg(t, i+1), Delta, 0)
	}
	time.Sleep(20 * time.Millisecond) // fake time: several passes find the socket full
	synctest.Wait()
	sock.mu.Lock()
	if tries < 2 {
		t.Errorf("%d writes tried while the socket was full", tries)
	}
	sock.accept = nil
	sock.mu.Unlock()
	time.Sleep(time.Second) // fake time: the next retry pass
	synctest.Wait()
	frames := dataFrames(t, sock)
	if n := len(seqs(frames)); n != 50 {
		t.Fatalf("%d messages out, want 50", n)
	}
	if len(frames) > 2 {
		t.Fatalf("50 messages took %d frames, want 1 or 2 (the first may leave alone)", len(frames))
	}
	for i, s := range seqs(frames) {
		if s != uint64(i+1) {
			t.Fatalf("message %d has seq %d", i, s)
		}
	}
	if frames[len(frames)-1].SendTimeNs == 0 {
		t.Fatal("frame without send time")
	}
}

func TestMaxFrameSplits(t *testing.T) {
	sock := newFakeSocket()
	w := NewWriter(Config{MaxFrame: 100}) // started after the queue is full
	c := w.NewConn(sock, false, Hooks{})
	m := msg(t, 1)
	for range 20 {
		c.Enqueue(m, Delta, 0)
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	w.Start(func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() }, quit)
	defer func() { close(quit); wg.Wait() }()
	testwait.For(t, 5*time.Second, "20 messages", func() bool { return len(seqs(dataFrames(t, sock))) == 20 })
	frames := sock.frames(t)
	per := 100 / len(m)
	if want := (20 + per - 1) / per; len(frames) != want {
		t.Fatalf("%d frames, want %d", len(frames), want)
	}
	sock.mu.Lock()
	writes := sock.writes
	sock.mu.Unlock()
	if writes != 1 {
		t.Fatalf("%d writes, want the frames in one", writes)
	}
	for _, fr := range frames {
		if len(fr.payload) > 100+16 { // 16: the send time
			t.Fatalf("frame payload of %d bytes", len(fr.payload))
		}
	}
}

// TestPartialWrites: a socket that takes a few bytes at a time still gets every message once,
// in order, in whole frames.
func TestPartialWrites(t *testing.T) {
	sock := newFakeSocket()
	rng := rand.New(rand.NewPCG(1, 2))
	var rmu sync.Mutex
	sock.setAccept(func(n int) int { rmu.Lock(); defer rmu.Unlock(); return rng.IntN(40) - 5 })
	w := startWriter(t, Config{FlushInterval: -1})
	c := w.NewConn(sock, false, Hooks{})
	const total = 2000
	for i := range uint64(total) {
		if r := c.Enqueue(msg(t, i+1), Delta, 0); r != Queued {
			t.Fatalf("enqueue %d: %v", i, r)
		}
		if i%100 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	testwait.For(t, 5*time.Second, "every message", func() bool { return len(seqs(dataFrames(t, sock))) == total })
	for i, s := range seqs(dataFrames(t, sock)) {
		if s != uint64(i+1) {
			t.Fatalf("message %d has seq %d", i, s)
		}
	}
}

// TestConflation: past the soft limit a delta is refused, deltas and snapshots pending are
// dropped, control messages kept, and the generation moves on.
func TestConflation(t *testing.T) {
	sock := newFakeSocket()
	conflated, code := 0, 0
	m := msg(t, 1)
	w := NewWriter(Config{SoftLimit: 10 * len(m), HardLimit: 100 * len(m)})
	// not started: nothing is written, everything stays pending
	c := w.NewConn(sock, false, Hooks{Conflated: func() { conflated++ }, Closed: func(c int, _ string) { code = c }})
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
	if code != wire.CloseSlowConsumer {
		t.Fatalf("close code %d", code)
	}
	if r := c.Enqueue([]byte("x"), Control, 0); r != Closed {
		t.Fatalf("after close: %v", r)
	}
}

func TestTooManyConflationsClose(t *testing.T) {
	sock := newFakeSocket()
	m := msg(t, 1)
	code := 0
	c := NewWriter(Config{SoftLimit: len(m), MaxConflations: 3}).NewConn(sock, false, Hooks{Closed: func(c int, _ string) { code = c }})
	var last Result
	for i := 0; i < 20 && last != Closed; i++ {
		c.Enqueue(m, Delta, c.Gen())
		last = c.Enqueue(m, Delta, c.Gen())
	}
	if last != Closed || code != wire.CloseSlowConsumer {
		t.Fatalf("last %v code %d", last, code)
	}
}

// TestWriteTimeoutCloses: a socket that takes nothing for WriteTimeout is closed, and the
// connection is done.
func TestWriteTimeoutCloses(t *testing.T) {
	sock := newFakeSocket()
	sock.setAccept(func(int) int { return 0 })
	var mu sync.Mutex
	code := 0
	w := startWriter(t, Config{WriteTimeout: 50 * time.Millisecond})
	c := w.NewConn(sock, false, Hooks{Closed: func(c int, _ string) { mu.Lock(); code = c; mu.Unlock() }})
	c.Enqueue(msg(t, 1), Delta, 0)
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("not closed")
	}
	<-sock.closed
	mu.Lock()
	defer mu.Unlock()
	if code != wire.CloseWriteTimeout {
		t.Fatalf("close code %d", code)
	}
}

// TestWriteErrorCloses: a socket error closes the connection at once.
func TestWriteErrorCloses(t *testing.T) {
	sock := newFakeSocket()
	sock.err = errors.New("broken pipe")
	w := startWriter(t, Config{})
	c := w.NewConn(sock, false, Hooks{})
	c.Enqueue(msg(t, 1), Delta, 0)
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("not closed")
	}
	if r := c.Enqueue(msg(t, 2), Delta, 0); r != Closed {
		t.Fatalf("after the error: %v", r)
	}
}

func TestHeartbeatWhenIdleAndPings(t *testing.T) {
	sock := newFakeSocket()
	hb := msg(t, 99)
	w := startWriter(t, Config{Heartbeat: 20 * time.Millisecond, PingInterval: 15 * time.Millisecond})
	w.NewConn(sock, false, Hooks{Heartbeat: func(bool) []byte { return hb }})
	var pings int
	var beat *pb.ServerFrame
	testwait.For(t, 5*time.Second, "a heartbeat and a ping", func() bool {
		pings = 0
		for _, fr := range sock.allFrames(t) {
			switch fr.op {
			case opPing:
				pings++
			case opBinary:
				if beat == nil {
					beat = decode(t, fr)
				}
			}
		}
		return pings > 0 && beat != nil
	})
	if got := beat.Messages[0].GetDelta().GetSeq(); got != 99 {
		t.Fatalf("first idle frame is not the heartbeat: %d", got)
	}
}

func TestPong(t *testing.T) {
	sock := newFakeSocket()
	w := startWriter(t, Config{})
	c := w.NewConn(sock, false, Hooks{})
	c.Pong([]byte("nonce"))
	testwait.For(t, 5*time.Second, "the pong", func() bool { return len(sock.frames(t)) == 1 })
	if fr := sock.frames(t)[0]; fr.op != opPong || string(fr.payload) != "nonce" {
		t.Fatalf("frame %d %q", fr.op, fr.payload)
	}
}

// TestCloseIdempotent: Close writes one close frame with the first code, closes the socket,
// and calls the hook once.
func TestCloseIdempotent(t *testing.T) {
	sock := newFakeSocket()
	calls := 0
	w := startWriter(t, Config{})
	c := w.NewConn(sock, false, Hooks{Closed: func(int, string) { calls++ }})
	c.Close(wire.CloseGoingAway, "bye")
	c.Close(wire.CloseNormal, "again")
	<-c.Done()
	<-sock.closed
	frames := sock.frames(t)
	if calls != 1 || len(frames) != 1 || frames[0].op != opClose ||
		binary.BigEndian.Uint16(frames[0].payload) != wire.CloseGoingAway || string(frames[0].payload[2:]) != "bye" {
		t.Fatalf("hook called %d times, frames %+v", calls, frames)
	}
}

// TestAbortSendsNoCloseFrame: a lost connection is closed without a frame (1006 is never sent),
// its queue dropped, its code recorded once; a later Close does nothing.
func TestAbortSendsNoCloseFrame(t *testing.T) {
	sock := newFakeSocket()
	var codes []int
	w := startWriter(t, Config{})
	c := w.NewConn(sock, false, Hooks{Closed: func(code int, _ string) { codes = append(codes, code) }})
	sock.setAccept(func(int) int { return 0 }) // nothing leaves before the abort
	c.Enqueue(msg(t, 7), Control, 0)
	c.Abort(1006, "connection lost")
	c.Close(wire.CloseNormal, "too late")
	<-c.Done()
	<-sock.closed
	if frames := sock.frames(t); len(frames) != 0 || len(codes) != 1 || codes[0] != 1006 || !c.Closing() {
		t.Fatalf("frames %+v, codes %v", frames, codes)
	}
}

// TestCloseAfterPartialFrame: a close frame waits for the end of a frame the socket took only
// part of.
func TestCloseAfterPartialFrame(t *testing.T) {
	sock := newFakeSocket()
	sock.setAccept(func(int) int { return 3 })
	w := startWriter(t, Config{})
	c := w.NewConn(sock, false, Hooks{})
	c.Enqueue(msg(t, 7), Delta, 0)
	testwait.For(t, 5*time.Second, "a partial write", func() bool { sock.mu.Lock(); defer sock.mu.Unlock(); return sock.writes > 0 })
	c.Close(wire.CloseSlowConsumer, "test")
	sock.setAccept(nil)
	<-c.Done()
	frames := sock.frames(t)
	if len(frames) != 2 || frames[0].op != opBinary || frames[1].op != opClose ||
		binary.BigEndian.Uint16(frames[1].payload) != wire.CloseSlowConsumer {
		t.Fatalf("frames %+v", frames)
	}
	if s := seqs([]*pb.ServerFrame{decode(t, frames[0])}); len(s) != 1 || s[0] != 7 {
		t.Fatalf("seqs %v", s)
	}
}

func TestJSONFrames(t *testing.T) {
	sock := newFakeSocket()
	w := startWriter(t, Config{})
	c := w.NewConn(sock, true, Hooks{})
	m1, _ := wire.MarshalJSONMessage(&pb.ServerMessage{Kind: &pb.ServerMessage_Heartbeat{Heartbeat: &pb.Heartbeat{TimeNs: 1}}})
	c.Enqueue(m1, Control, 0)
	testwait.For(t, 5*time.Second, "a frame", func() bool { return len(sock.frames(t)) == 1 })
	fr := sock.frames(t)[0]
	var f pb.ServerFrame
	if err := wire.DecodeFrame(fr.payload, wire.SubprotocolJSON, &f); fr.op != opText || err != nil || len(f.Messages) != 1 {
		t.Fatalf("op %d: %v %s", fr.op, err, fr.payload)
	}
}

// TestFlushIntervalGathers: the first update to a quiet shard leaves at once; updates that
// follow within the flush interval are gathered into one frame.
func TestFlushIntervalGathers(t *testing.T) {
	sock := newFakeSocket()
	// An interval far longer than any scheduling delay of a loaded test machine, so that
	// "at once" and "held" cannot be confused.
	w := startWriter(t, Config{FlushInterval: 3 * time.Second})
	c := w.NewConn(sock, false, Hooks{})
	start := time.Now()
	c.Enqueue(msg(t, 1), Delta, 0)
	select {
	case <-sock.written:
	case <-time.After(time.Second):
		t.Fatal("the first update to a quiet connection waited")
	}
	for i := range uint64(10) {
		c.Enqueue(msg(t, i+2), Delta, 0)
	}
	select {
	case <-sock.written:
	case <-time.After(10 * time.Second):
		t.Fatal("no second write")
	}
	if held := time.Since(start); held < 2*time.Second {
		t.Fatalf("the second write came %v after the first update, within the flush interval", held)
	}
	frames := dataFrames(t, sock)
	if len(frames) != 2 || len(frames[1].Messages) != 10 {
		t.Fatalf("%d frames; want the 10 later ones gathered in the second", len(frames))
	}
}

// TestSnapshotsAndRepliesNotHeld: within the flush interval deltas wait, but a snapshot or a
// control message (and the deltas queued before it) leaves at once, though its connection is
// already waiting on the held list (no housekeeping round comes within the test's patience).
// In a synctest bubble: "held" is checked after fake time passed with every goroutine of the
// writer idle, not after a real sleep a loaded machine may not give the writer.
func TestSnapshotsAndRepliesNotHeld(t *testing.T) {
	for _, kind := range []Kind{Snapshot, Control} {
		synctest.Test(t, func(t *testing.T) {
			sock := newFakeSocket()
			w := startWriter(t, Config{FlushInterval: time.Hour, Heartbeat: time.Minute, PingInterval: time.Minute, WriteTimeout: time.Minute})
			c := w.NewConn(sock, false, Hooks{})
			c.Enqueue(msg(t, 1), Delta, 0) // a quiet connection: written at once
			synctest.Wait()
			if n := len(seqs(dataFrames(t, sock))); n != 1 {
				t.Fatalf("kind %d: %d messages out, want the first at once", kind, n)
			}
			c.Enqueue(msg(t, 2), Delta, 0) // held for the interval (an hour)
			time.Sleep(20 * time.Second)   // fake time, below the heartbeat and ping intervals
			synctest.Wait()
			if n := len(seqs(dataFrames(t, sock))); n != 1 {
				t.Fatalf("kind %d: a delta within the interval was not held (%d messages out)", kind, n)
			}
			c.Enqueue(msg(t, 3), kind, 0)
			synctest.Wait()
			if n := len(seqs(dataFrames(t, sock))); n != 3 {
				t.Fatalf("kind %d: %d messages out after the urgent one, want 3 at once", kind, n)
			}
		})
	}
}

// TestStopClosesEverything: stopping the writer closes every socket after writing the close
// frames queued before, and a connection made afterwards is closed at once.
func TestStopClosesEverything(t *testing.T) {
	w := NewWriter(Config{})
	quit := make(chan struct{})
	var wg sync.WaitGroup
	w.Start(func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() }, quit)
	var socks []*fakeSocket
	var conns []*Conn
	for range 10 {
		s := newFakeSocket()
		socks = append(socks, s)
		conns = append(conns, w.NewConn(s, false, Hooks{}))
	}
	conns[0].Close(wire.CloseGoingAway, "server shutting down")
	close(quit)
	wg.Wait()
	for i, c := range conns {
		select {
		case <-c.Done():
		default:
			t.Fatalf("connection %d not done after stop", i)
		}
		<-socks[i].closed
	}
	if fr := socks[0].frames(t); len(fr) != 1 || fr[0].op != opClose {
		t.Fatalf("frames %+v", fr)
	}
	late := newFakeSocket()
	c := w.NewConn(late, false, Hooks{})
	<-c.Done()
	if r := c.Enqueue(msg(t, 1), Delta, 0); r != Closed {
		t.Fatalf("enqueue after stop: %v", r)
	}
}

// BenchmarkEnqueue measures queuing one shared message for one connection: the per-subscriber
// cost of the fan-out path. It must not allocate.
func BenchmarkEnqueue(b *testing.B) {
	sock := newFakeSocket()
	m, _ := wire.AppendMessage(nil, &pb.ServerMessage{Kind: &pb.ServerMessage_Delta{Delta: &pb.Delta{Seq: 1, Handle: 3}}})
	c := NewWriter(Config{SoftLimit: 1 << 30, HardLimit: 1 << 30}).NewConn(sock, false, Hooks{})
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

// nullSocket takes every write at once.
type nullSocket struct{ writes chan int }

func (s nullSocket) TryWrite(b []byte) (int, error) {
	if s.writes != nil {
		s.writes <- len(b)
	}
	return len(b), nil
}
func (s nullSocket) Close() error { return nil }

// BenchmarkDeliver measures one update's whole way through a connection: queued, marked,
// framed with the send time by the shard, written. Allocations per op must be 0.
func BenchmarkDeliver(b *testing.B) {
	sock := nullSocket{writes: make(chan int, 1)}
	m := benchQuote(b)
	w := startWriter(b, Config{FlushInterval: -1, Shards: 1})
	c := w.NewConn(sock, false, Hooks{})
	b.ReportAllocs()
	for b.Loop() {
		c.Enqueue(m, Delta, 0)
		<-sock.writes
	}
}

// BenchmarkPass measures one shard pass over 1,000 connections with one update each (socket
// cost excluded): the writer's own cost per connection written.
func BenchmarkPass(b *testing.B) {
	m := benchQuote(b)
	w := NewWriter(Config{Shards: 1, FlushInterval: -1}) // not started: the benchmark runs the passes
	s := w.shards[0]
	conns := make([]*Conn, 1000)
	for i := range conns {
		conns[i] = w.NewConn(nullSocket{}, false, Hooks{})
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, c := range conns {
			c.Enqueue(m, Delta, 0)
		}
		<-s.wake
		s.pass(time.Now())
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(conns)), "ns/conn")
}

// TestPingPhasesSpread: connections made together do not all ping together (thousands of
// pings in one pass would stall the shard): their phases cover the interval.
func TestPingPhasesSpread(t *testing.T) {
	w := NewWriter(Config{PingInterval: time.Second})
	lo, hi := time.Duration(1<<62), time.Duration(0)
	now := time.Now()
	for range 200 {
		c := w.NewConn(newFakeSocket(), false, Hooks{})
		age := now.Sub(c.lastPing)
		lo, hi = min(lo, age), max(hi, age)
	}
	if hi-lo < 800*time.Millisecond || hi > time.Second+100*time.Millisecond {
		t.Fatalf("ping ages of 200 new connections span %v..%v, want most of the 1 s interval", lo, hi)
	}
}
