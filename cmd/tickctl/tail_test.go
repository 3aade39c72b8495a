package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/tickwire/tickwire/internal/feed"
	"github.com/tickwire/tickwire/internal/replay/replaytest"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// startFeed runs a feed server fed directly (no NATS) with a synthetic market; more events
// are dispatched while the test runs so that tail sees deltas.
func startFeed(t *testing.T) (url string, instruments []string) {
	t.Helper()
	srv, err := feed.New(feed.Config{}, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	evs := replaytest.Events(t, replaytest.Config{Instruments: 3, Events: 20000})
	ctx, cancel := context.WithCancel(context.Background())
	for _, ev := range evs[:500] {
		if err := srv.Dispatch(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	// Dispatch only queues: let the owners apply everything (the instruments' reference data
	// among it) before serving, as the feed's service does.
	if err := srv.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	srv.SetReady(true)
	hs := httptest.NewServer(srv.Handler(nil))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, ev := range evs[500:] {
			if ctx.Err() != nil || srv.Dispatch(ctx, ev) != nil {
				return
			}
			time.Sleep(200 * time.Microsecond)
		}
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
		hs.Close()
	})
	listed := map[string]bool{}
	for _, ev := range evs[:500] {
		if !listed[ev.Instrument] {
			listed[ev.Instrument] = true
			instruments = append(instruments, ev.Instrument)
		}
	}
	return "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws", instruments
}

func TestTailText(t *testing.T) {
	url, insts := startFeed(t)
	out := mustRun(t, "tail", "--url", url, "--instrument", insts[0], "--channel", "quote,book,trades,stats", "--count", "40")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	quote := regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{6} ` + regexp.QuoteMeta(insts[0]) + ` quote (snap|delta) \d+/\d+( SUBSCRIBE)? bid \d+\.\d\d x \d+\.\d{4} ask \d+\.\d\d x \d+\.\d{4}$`)
	var quotes, deltas int
	for _, l := range lines {
		if quote.MatchString(l) {
			quotes++
		}
		if strings.Contains(l, " delta ") {
			deltas++
		}
	}
	if !strings.HasPrefix(lines[0], "# connected") || !strings.Contains(out, "# subscribed "+insts[0]+" ") ||
		quotes == 0 || deltas == 0 || !strings.Contains(out, " book snap ") {
		t.Fatalf("%d quote lines, %d deltas in:\n%s", quotes, deltas, out)
	}
}

func TestTailJSONAllInstruments(t *testing.T) {
	url, insts := startFeed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	// The three Subscribed replies may interleave with deltas of instruments already
	// subscribed (owners answer in parallel), so the count leaves room for many of them.
	code := run(ctx, []string{"tail", "--url", url, "--format", "json", "--channel", "quote", "--count", "150", "--subprotocol", "json"}, &out, &errOut)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	subscribed := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m pb.ServerMessage
		if err := protojson.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if s := m.GetSubscribed(); s != nil {
			subscribed[s.GetInfo().GetId()] = true
		}
	}
	if len(subscribed) != len(insts) {
		t.Fatalf("subscribed to %v, feed has %v", subscribed, insts)
	}
	if !regexp.MustCompile(`tail: \d+ frames, \d+ snapshots, \d+ deltas; 0 gaps, 0 epoch changes, 0 checksum failures, 0 resyncs`).MatchString(errOut.String()) {
		t.Fatalf("stats: %s", errOut.String())
	}
}

// TestTailVenueWildcard: --instrument venue:* tails every instrument of the venue.
func TestTailVenueWildcard(t *testing.T) {
	url, insts := startFeed(t)
	venue, _, _ := strings.Cut(insts[0], ":")
	out := mustRun(t, "tail", "--url", url, "--instrument", venue+":*", "--channel", "quote", "--count", "150")
	for _, id := range insts {
		if !strings.Contains(out, "# subscribed "+id+" ") {
			t.Fatalf("%s:* did not subscribe %s:\n%s", venue, id, out)
		}
	}
}

func TestTailUsage(t *testing.T) {
	for _, args := range [][]string{
		{"tail", "--url", "http://x/ws"},
		{"tail", "--channel", "bogus"},
		{"tail", "--replay", "Bad_Id"},
		{"tail", "--instrument", "Bad:*"},
	} {
		if code, _, errOut := tickctl(t, args...); code != exitConfig {
			t.Errorf("%v: exit %d %s", args, code, errOut)
		}
	}
}

// TestTailStreamStatus: a book that stops (StreamStatus) is printed as a # line in text, and as
// its ServerMessage in json.
func TestTailStreamStatus(t *testing.T) {
	st := &pb.StreamStatus{Handle: 3, Channel: pb.Channel_CHANNEL_BOOK, State: pb.StreamState_STREAM_STATE_AWAITING_SNAPSHOT,
		Reason: "the feed missed an event"}
	var text, js bytes.Buffer
	(&printer{w: &text}).OnStreamStatus(nil, "x:A", st)
	(&printer{w: &js, json: true}).OnStreamStatus(nil, "x:A", st)
	if got, want := text.String(), "# x:A book awaiting snapshot: the feed missed an event\n"; got != want {
		t.Fatalf("text %q, want %q", got, want)
	}
	var m pb.ServerMessage
	if err := protojson.Unmarshal(bytes.TrimSpace(js.Bytes()), &m); err != nil || m.GetStreamStatus().GetState() != st.State {
		t.Fatalf("json %q: %v", js.String(), err)
	}
}
