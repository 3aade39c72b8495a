package loadgen

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/bus/bustest"
	"github.com/tickwire/tickwire/internal/testwait"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// TestRunInProcess runs the tool end to end against an in-process NATS server (bustest) and
// feed (internal/feed): 20 clients, every channel, a low rate for 2 s. Nothing may be lost, so
// after settling every expected update is delivered, with no gap, and the report adds up.
func TestRunInProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	for _, compact := range []bool{false, true} {
		t.Run(fmt.Sprintf("compact quotes %v", compact), func(t *testing.T) { testRunInProcess(t, compact) })
	}
}

func testRunInProcess(t *testing.T, compact bool) {
	before := runtime.NumGoroutine()
	nats := bustest.Start(t)
	cfg := Config{
		// The external mode against in-process servers: the feed's pid is this process.
		FeedPID: 1, Clients: 20, Instruments: 10, Subscribers: 4, Channels: []pb.Channel{1, 2, 3, 4, 5}, Depth: 10,
		Mode: ModeFixed, Rate: 300, Warmup: 500 * time.Millisecond, Hold: 2 * time.Second, Duration: 25 * time.Second,
		Venue: "lgtest", CompactQuotes: compact,
		// This test proves delivery (every update, in order, no gap), not speed: a loaded CI
		// machine under -race reaches p99s of hundreds of ms, and the load tool's own targets
		// are measured by benchmarks side by side with Centrifugo (docs/BENCHMARKS.md).
		MaxP99: time.Minute,
	}
	feedURL, stop := startFeed(t, nats)
	cfg.FeedURL, cfg.NATSURL, cfg.NATSAuth = feedURL, nats.ClientURL(), nats.Auth(string(bus.RoleIngest))
	cfg.FeedPID = pidSelf()
	rep, err := Run(context.Background(), cfg, nil, nil)
	stop()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	rep.WriteTable(&b)
	t.Log("\n" + b.String())

	if rep.Setup.Connected != 20 || rep.Setup.StreamsSynced != rep.Setup.StreamsWanted || rep.Setup.StreamsWanted != 20*2*5 {
		// 20 clients x 2 instruments x 5 channels
		t.Fatalf("setup %+v", rep.Setup)
	}
	tot := rep.Totals
	if tot.Expected == 0 || tot.Delivered != tot.Expected {
		t.Errorf("delivered %d of %d expected updates", tot.Delivered, tot.Expected)
	}
	if tot.Gaps != 0 || tot.Conflations != 0 || tot.Closes != 0 || tot.Malformed != 0 || tot.Duplicates != 0 || tot.Errors != 0 {
		t.Errorf("totals %+v", tot)
	}
	if len(rep.Steps) != 1 {
		t.Fatalf("%d steps", len(rep.Steps))
	}
	s := rep.Steps[0]
	if s.Ratio > 1.1 || s.Latency.Count == 0 || s.Latency.P50 <= 0 || s.FramesPerSec == 0 {
		t.Errorf("step %+v", s)
	}
	if s.Latency.Max > 10*time.Second { // a CompactQuote counted from the wrong base shows here
		t.Errorf("latency max %v", s.Latency.Max)
	}
	// Every event went in a NATS message of one or more events.
	if s.EventsPerMessage < 1 || s.EventsPerMessage > 100 {
		t.Errorf("%.2f events per NATS message", s.EventsPerMessage)
	}
	if pub := s.PublishedRate; pub > 350 {
		t.Errorf("published %.0f events/s at a target of 300", pub)
	}
	// Speed within the step (the verdict, the share delivered within it, the rate reached)
	// needs a machine that keeps up: loaded, under -race, the publisher reached 96 and 205 of
	// 300 events/s and the step was "behind" while every update was delivered after settling.
	// Checked when the publisher reached its target; when it did not, the load tool says so
	// (PublisherLimited) and the test logs it: it proves delivery, not speed.
	if s.PublisherLimited {
		t.Logf("publisher limited (%.0f of 300 events/s, verdict %q): the machine is too busy for the speed checks", s.PublishedRate, s.Verdict)
	} else {
		if !s.OK || s.Ratio < 0.9 || s.PublishedRate < 250 {
			t.Errorf("step %+v", s)
		}
		if rep.Best == nil {
			t.Error("no sustained step")
		}
	}
	// Goroutines back to baseline (the NATS server stops in Cleanup: allow its own).
	if !testwait.Until(5*time.Second, func() bool { return runtime.NumGoroutine() <= before+40 }) {
		n := runtime.NumGoroutine()
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines after the run, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

func pidSelf() int { return ownPID }

// startFeed runs internal/feed against nats as cmd/feed wires it, on a random port.
func startFeed(t *testing.T, nats *bus.Embedded) (string, func()) {
	t.Helper()
	bustest.Connect(t, nats) // creates the stream, as ingest would
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- runFeed(ctx, nats.ClientURL(), nats.Auth(string(bus.RoleFeed)), "127.0.0.1:0", feedTestConfig, nil, addr)
	}()
	var a string
	select {
	case a = <-addr:
	case err := <-done:
		cancel()
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("feed: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	return "ws://" + a + "/ws", stop
}
