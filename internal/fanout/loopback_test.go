package fanout

import (
	"io"
	"net"
	"sync"
	"testing"
)

// loopbackPairs returns n connected TCP pairs on loopback; the client ends are drained by
// reader goroutines until the benchmark ends.
func loopbackPairs(b *testing.B, n int) []net.Conn {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	servers := make([]net.Conn, n)
	var clients []net.Conn
	for i := range servers {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		clients = append(clients, c)
		if servers[i], err = ln.Accept(); err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = io.Copy(io.Discard, c) }()
	}
	b.Cleanup(func() {
		for i := range servers {
			servers[i].Close()
			clients[i].Close()
		}
		wg.Wait()
	})
	return servers
}

// BenchmarkLoopbackWrite is the floor under every delivered frame: one 40-byte write to a
// loopback TCP socket (100 sockets in turn, each drained by a reader in this process).
func BenchmarkLoopbackWrite(b *testing.B) {
	conns := loopbackPairs(b, 100)
	msg := make([]byte, 40)
	i := 0
	for b.Loop() {
		if _, err := conns[i%len(conns)].Write(msg); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkWriterLoopback measures the Writer over real loopback sockets: each op queues one
// quote delta on each of 100 connections and waits until a shard pass has written them all
// (one frame, one write each). Compare with 100 x BenchmarkLoopbackWrite.
func BenchmarkWriterLoopback(b *testing.B) {
	conns := loopbackPairs(b, 100)
	m := benchQuote(b)
	w := startWriter(b, Config{FlushInterval: -1, Shards: 1})
	written := make(chan int, len(conns))
	out := make([]*Conn, len(conns))
	for i, c := range conns {
		out[i] = w.NewConn(NetSocket(c), false, Hooks{Wrote: func(n, _ int) { written <- n }})
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, c := range out {
			c.Enqueue(m, Delta, 0)
		}
		for left := len(out); left > 0; left -= <-written {
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(out)), "ns/write")
}

// BenchmarkLoopbackWriteParallel is the machine's ceiling for small frames: every core writes
// 40-byte messages to its own loopback sockets, drained by readers in this process (as a load
// generator on the same machine would). frames/s is the total rate.
func BenchmarkLoopbackWriteParallel(b *testing.B) {
	conns := loopbackPairs(b, 1000)
	msg := make([]byte, 40)
	var next sync.Mutex
	slot := 0
	b.RunParallel(func(pb *testing.PB) {
		next.Lock()
		first := slot
		slot++
		next.Unlock()
		i := first * 97
		for pb.Next() {
			if _, err := conns[i%len(conns)].Write(msg); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}
