package client_test

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tickwire/tickwire/internal/testwait"
	"github.com/tickwire/tickwire/pkg/client"
)

// pingEvery sends a WebSocket ping to every connection every interval until the test ends, as
// the feed does: each one makes the client write a pong from its read goroutine.
func (s *fakeServer) pingEvery(t *testing.T, interval time.Duration) {
	t.Helper()
	s.every(t, interval, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, fc := range s.conns {
			_ = fc.conn.WritePing(nil)
		}
	})
}

// flow steps a few events every interval until the test ends: data arrives all the time.
func (s *fakeServer) flow(t *testing.T, interval time.Duration) {
	t.Helper()
	s.every(t, interval, func() { s.step(4) })
}

// every calls f every interval on its own goroutine, stopped and awaited when the test ends
// (before the server closes: cleanups run last first).
func (s *fakeServer) every(t *testing.T, interval time.Duration, f func()) {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tk := time.NewTicker(interval)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				f()
			}
		}
	})
	t.Cleanup(func() { close(stop); wg.Wait() })
}

// waitPongAfter waits until the first connection has sent a pong later than after, failing at
// once if the client connected a second time (or lost its connection).
func (s *fakeServer) waitPongAfter(t *testing.T, r *run, after time.Time) {
	t.Helper()
	var last time.Time
	if !testwait.Until(20*time.Second, func() bool { // a generous bound for -race on 2 shared cores
		s.mu.Lock()
		for _, fc := range s.conns {
			if n := len(fc.pongs); n > 0 {
				last = fc.pongs[n-1]
			}
		}
		connects := len(s.connects)
		s.mu.Unlock()
		if rec := r.rec.snapshot(); connects != 1 || len(rec.states) != 1 {
			t.Fatalf("%d connections; the client's state changes %v, errors %v; stats %+v",
				connects, rec.states, rec.stateErrs, r.c.Stats())
		}
		return last.After(after)
	}) {
		t.Fatalf("no pong after %v (last %v)", after.Format(time.StampMicro), last.Format(time.StampMicro))
	}
}

// TestHealthyConnectionIsKept: with data and pings flowing, a connection must outlive many
// write timeouts and heartbeat timeouts after each command, without a reconnect. A write
// deadline set for a command and never cleared failed the next pong once it passed, and the
// client reported "heartbeat timeout" while updates arrived every few milliseconds.
func TestHealthyConnectionIsKept(t *testing.T) {
	const writeTimeout, heartbeat = 50 * time.Millisecond, 200 * time.Millisecond
	s, r := newSyncedClient(t, client.Options{WriteTimeout: writeTimeout, HeartbeatTimeout: heartbeat,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond})
	s.pingEvery(t, writeTimeout/4)
	s.flow(t, 2*time.Millisecond)
	window := max(8*writeTimeout, 3*heartbeat)

	// The subscribe was the last command written: pongs must go out long after it.
	deltas := r.c.Stats().Deltas
	s.waitPongAfter(t, r, time.Now().Add(window))
	// A command in the middle of the run, then as long again.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if list, err := r.c.ListInstruments(ctx); err != nil || len(list) != len(testIDs) {
		t.Fatalf("ListInstruments: %d, %v", len(list), err)
	}
	s.waitPongAfter(t, r, time.Now().Add(window))

	st := r.c.Stats()
	if st.Connects != 1 || st.Disconnects != 0 || st.HeartbeatTimeouts != 0 || st.WriteTimeouts != 0 {
		t.Errorf("stats %+v", st)
	}
	if st.Deltas < deltas+100 {
		t.Errorf("%d deltas during the run: data did not flow", st.Deltas-deltas)
	}
	eventually(t, "in sync", func() error { return s.mismatch(r.c, 0) })
}

// stuckServer accepts WebSocket upgrades (subprotocol echoed) and then never reads, with a small
// receive buffer: a client's writes soon block.
func stuckServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
			_ = nc.(*net.TCPConn).SetReadBuffer(4 << 10)
			req, err := http.ReadRequest(bufio.NewReader(nc))
			if err != nil {
				continue
			}
			h := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
			_, _ = fmt.Fprintf(nc, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
				"Sec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: %s\r\n\r\n",
				base64.StdEncoding.EncodeToString(h[:]), req.Header.Get("Sec-WebSocket-Protocol"))
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, nc := range conns {
			_ = nc.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "ws://" + ln.Addr().String() + "/ws"
}

// TestStuckWriteTimesOut: the deadline still bounds every write. Against a server that stopped
// reading, a command write fails after WriteTimeout, and the connection is dropped for that
// reason (not reported as a heartbeat timeout); the client reconnects.
func TestStuckWriteTimesOut(t *testing.T) {
	const writeTimeout = 100 * time.Millisecond
	r := startClient(t, client.Options{URL: stuckServer(t), WriteTimeout: writeTimeout, HeartbeatTimeout: time.Minute,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond})
	eventually(t, "connected", func() error {
		return errorf(r.c.Stats().Connects >= 1, "not connected")
	})
	// Subscribe to many instruments, again and again (about 30 KB a call), until a write blocks.
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprintf("synthetic:I%07d", i)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			if err := r.c.Subscribe(client.Subscription{Instruments: ids}); err != nil {
				t.Error(err)
				return
			}
		}
	})
	defer func() { close(done); wg.Wait() }()
	eventually(t, "a disconnect", func() error {
		return errorf(len(r.rec.snapshot().states) >= 2, "stats %+v", r.c.Stats())
	})
	if rec := r.rec.snapshot(); rec.states[1] != client.Disconnected || !errors.Is(rec.stateErrs[1], client.ErrWriteTimeout) {
		t.Errorf("state changes %v %v", rec.states, rec.stateErrs)
	}
	if st := r.c.Stats(); st.WriteTimeouts < 1 || st.HeartbeatTimeouts != 0 {
		t.Errorf("stats %+v", st)
	}
	eventually(t, "reconnect", func() error {
		return errorf(r.c.Stats().Connects >= 2, "stats %+v", r.c.Stats())
	})
}

// TestStopWhileWriteStuck: ending Run while a write is stuck returns within the write timeouts
// of that write and of the close frame after it: the close frame has a deadline of its own.
func TestStopWhileWriteStuck(t *testing.T) {
	const writeTimeout = 500 * time.Millisecond
	r := startClient(t, client.Options{URL: stuckServer(t), WriteTimeout: writeTimeout, HeartbeatTimeout: time.Minute})
	eventually(t, "connected", func() error {
		return errorf(r.c.Stats().Connects >= 1, "not connected")
	})
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprintf("synthetic:I%07d", i)
	}
	var calling atomic.Int64 // when the Subscribe in progress started, unix ns
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		for r.c.Stats().Disconnects == 0 {
			calling.Store(time.Now().UnixNano())
			_ = r.c.Subscribe(client.Subscription{Instruments: ids})
		}
	})
	eventually(t, "a stuck write", func() error {
		return errorf(time.Since(time.Unix(0, calling.Load())) > writeTimeout/5, "no write stuck")
	})
	stopped := time.Now()
	r.stop()
	if err := r.wait(t, 10*time.Second); err != nil {
		t.Errorf("Run returned %v", err)
	}
	if d := time.Since(stopped); d > 2*writeTimeout+time.Second {
		t.Errorf("Run returned %v after the stop", d)
	}
}
