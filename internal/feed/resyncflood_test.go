package feed

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lxzan/gws"

	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// TestResyncFloodFigures measures what clients hammering Resync within the command rate make a
// running feed send, and the feed's CPU meanwhile (docs/BENCHMARKS.md, "Resync flood"). It runs
// only against a feed named by the environment, e.g. one started by scripts/run.sh:
//
//	TICKWIRE_FLOOD_URL=ws://127.0.0.1:8080/ws TICKWIRE_FLOOD_PID=<feed pid> \
//	  go test -count=1 -v -run TestResyncFloodFigures ./internal/feed
//
// TICKWIRE_FLOOD_CONNS (5), TICKWIRE_FLOOD_RATE (Resync/s per connection, 50),
// TICKWIRE_FLOOD_SECONDS (10) and TICKWIRE_FLOOD_WINDOWS (3) shape the run. Each connection
// subscribes to every instrument (all channels, depth 50), waits a second, is measured idle for
// one window, then sends Resync of the instruments in turn at the rate for the given number of
// windows in a row, each reported on its own (the first spends the snapshot budget's burst, the
// later ones show its rate).
func TestResyncFloodFigures(t *testing.T) {
	url := os.Getenv("TICKWIRE_FLOOD_URL")
	if url == "" {
		t.Skip("TICKWIRE_FLOOD_URL not set: needs a running feed (see the doc comment)")
	}
	pid, _ := strconv.Atoi(os.Getenv("TICKWIRE_FLOOD_PID"))
	conns := envInt("TICKWIRE_FLOOD_CONNS", 5)
	perSec := envInt("TICKWIRE_FLOOD_RATE", 50)
	window := time.Duration(envInt("TICKWIRE_FLOOD_SECONDS", 10)) * time.Second
	windows := envInt("TICKWIRE_FLOOD_WINDOWS", 3)

	lister := mustDial(t, url, wire.SubprotocolProto)
	lister.send(&pb.ClientMessage{Id: 1, Command: &pb.ClientMessage_ListInstruments{ListInstruments: &pb.ListInstruments{}}})
	var ids []string
	for ids == nil {
		for _, m := range lister.next(5 * time.Second) {
			if l := m.GetInstrumentList(); l != nil {
				for _, info := range l.Instruments {
					ids = append(ids, info.Id)
				}
			}
		}
	}
	if len(ids) == 0 {
		t.Fatal("the feed lists no instruments")
	}
	if len(ids) > 1000 {
		ids = ids[:1000]
	}
	var counters []*floodCounter
	for range conns {
		c := dialCounting(t, url)
		c.send(t, subscribe(1, ids, 50))
		counters = append(counters, c)
	}
	time.Sleep(time.Second) // the subscriptions' snapshots
	var sent atomic.Int64
	measure := func(flood bool) (bytes, snaps, errs int64, cpu time.Duration) {
		var b0, s0, e0 int64
		for _, c := range counters {
			b0, s0, e0 = b0+c.bytes.Load(), s0+c.snapshots.Load(), e0+c.errors.Load()
		}
		cpu0 := procCPU(t, pid)
		var wg sync.WaitGroup
		if flood {
			for _, c := range counters {
				wg.Add(1)
				go func() {
					defer wg.Done()
					tick := time.NewTicker(time.Second / time.Duration(perSec))
					defer tick.Stop()
					end := time.Now().Add(window)
					for i := 0; time.Now().Before(end); i++ {
						<-tick.C
						c.send(t, &pb.ClientMessage{Id: uint32(i + 2), Command: &pb.ClientMessage_Resync{
							Resync: &pb.Resync{Instrument: ids[i%len(ids)]}}})
						sent.Add(1)
					}
				}()
			}
			wg.Wait()
		} else {
			time.Sleep(window)
		}
		time.Sleep(200 * time.Millisecond) // what was answered within the window arrives
		for _, c := range counters {
			bytes, snaps, errs = bytes+c.bytes.Load(), snaps+c.snapshots.Load(), errs+c.errors.Load()
		}
		return bytes - b0, snaps - s0, errs - e0, procCPU(t, pid) - cpu0
	}
	report := func(what string, bytes, snaps, errs int64, cpu time.Duration) {
		t.Logf("%s: %d connections, %v: received %.1f MB (%.2f MB/s), %d snapshots, %d errors; feed CPU %v (%.0f %% of a core)",
			what, conns, window, float64(bytes)/1e6, float64(bytes)/1e6/window.Seconds(), snaps, errs,
			cpu.Round(10*time.Millisecond), 100*cpu.Seconds()/(window.Seconds()+0.2))
	}
	b, s, e, cpu := measure(false)
	report("idle (subscribed, no Resync)", b, s, e, cpu)
	for w := range windows {
		sent.Store(0)
		b, s, e, cpu = measure(true)
		report(fmt.Sprintf("flood window %d (%d Resync sent)", w+1, sent.Load()), b, s, e, cpu)
	}
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// procCPU is a process's user+system CPU time so far (0 without a pid).
func procCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	if pid == 0 {
		return 0
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// floodCounter is a binary client that only counts what it receives: frame payload bytes,
// snapshots and errors.
type floodCounter struct {
	gws.BuiltinEventHandler
	conn                     *gws.Conn
	mu                       sync.Mutex // serialises writes
	bytes, snapshots, errors atomic.Int64
}

func (c *floodCounter) OnMessage(_ *gws.Conn, m *gws.Message) {
	c.bytes.Add(int64(m.Data.Len()))
	var f pb.ServerFrame
	if err := wire.DecodeFrame(m.Bytes(), wire.SubprotocolProto, &f); err == nil {
		for _, msg := range f.Messages {
			switch {
			case msg.GetSnapshot() != nil:
				c.snapshots.Add(1)
			case msg.GetError() != nil:
				c.errors.Add(1)
			}
		}
	}
	m.Close()
}

func (c *floodCounter) send(t *testing.T, m *pb.ClientMessage) {
	b, err := wire.EncodeClientMessage(m, wire.SubprotocolProto)
	if err != nil {
		t.Error(err)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.conn.WriteMessage(gws.OpcodeBinary, b)
}

func dialCounting(t *testing.T, url string) *floodCounter {
	t.Helper()
	c := &floodCounter{}
	header := http.Header{}
	header.Set("Sec-WebSocket-Protocol", wire.SubprotocolProto)
	conn, _, err := gws.NewClient(c, &gws.ClientOption{Addr: url, RequestHeader: header, ReadMaxPayloadSize: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	c.conn = conn
	go conn.ReadLoop()
	t.Cleanup(func() { _ = conn.WriteClose(1000, nil) })
	return c
}
