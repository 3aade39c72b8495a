// Command replay watches a replay session: a stored window of the past re-streamed at a chosen
// speed (docs/PROTOCOL.md §18). It prints each change of the session's status, then the
// replayed trades and quotes as they come, and exits when the session is FINISHED.
//
// Start a session, then watch it:
//
//	bin/tickctl replay --from -2m --to -1m --speed 10 --session last-minute
//	go run ./examples/replay -session last-minute
//	go run ./examples/replay -session last-minute -instruments synthetic:ACME
//
// What it shows:
//
//   - A replay is watched over the same protocol as live data, on another URL:
//     ws://host/ws?replay=<session>. Snapshots, deltas, positions and checksums work as live,
//     with the session's own epochs and sequences; so the same client.Client does it all.
//   - The session's status comes as ReplayStatus messages, which a handler hears by
//     implementing client.ReplayStatusHandler next to client.Handler: the latest one on
//     connecting, then every one the replayer publishes (every second and after a change).
//   - A replay's instruments exist on the feed only once the replay has reached them, with
//     their reference data (the price and size scales that Updates carry in Info). So it
//     subscribes once the feed lists them (Client.ListInstruments on the replay connection,
//     asked again every -list-interval until it does): those of -instruments, or else those the
//     session's status names.
//   - Times are the venue's times of the past window (Delta.venue_time_ns), not now.
//
// Its lines (times are RFC 3339 in UTC, to the nanosecond):
//
//	status RUNNING clock 2026-12-02T16:15:40.873042762Z events 0 generation 1 speed 1 window 2026-12-02T16:15:40.873042762Z..2026-12-02T16:15:43.873042762Z
//	trade 2026-12-02T16:15:41.330596802Z synthetic:ACME buy 9.21 x 1.6773 id 1042
//	quote 2026-12-02T16:15:41.330596802Z synthetic:ACME bid 9.20 x 0.0180 ask 9.21 x 0.2687
//	status FINISHED clock 2026-12-02T16:15:43.873042762Z events 906 generation 1 speed 1 window ...
//	finished session last-minute: 906 events replayed; printed 74 trades and 236 quotes
//
// A status line is printed when the state, the generation (a seek) or the speed changes. After
// FINISHED it keeps printing until nothing has arrived for -linger (the last events can arrive
// just after the status that says they were all sent), then exits with status 0.
//
// The feed wants a token with the replay right: -token (default $TICKWIRE_TOKEN). -duration
// bounds the run (0: until the session finishes, or SIGINT or SIGTERM).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tickwire/tickwire/pkg/client"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

func main() {
	feedURL := flag.String("url", "ws://127.0.0.1:8080/ws", "feed WebSocket `URL` (without ?replay=)")
	token := flag.String("token", os.Getenv("TICKWIRE_TOKEN"), "feed `token` with the replay right (default $TICKWIRE_TOKEN)")
	session := flag.String("session", "", "the replay `session` to watch (tickctl replay prints it)")
	instruments := flag.String("instruments", "", "comma-separated instrument `ids`; empty means every instrument the session replays")
	linger := flag.Duration("linger", 300*time.Millisecond, "after FINISHED, exit once nothing arrived for this long")
	listInterval := flag.Duration("list-interval", 100*time.Millisecond, "how often to ask the feed for the session's instruments until it lists them")
	duration := flag.Duration("duration", 0, "stop after this long (0: until the session finishes, or SIGINT)")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if *session == "" {
		log.Error("replay: -session is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	if err := run(ctx, log, *feedURL, *token, *session, *instruments, *linger, *listInterval); err != nil {
		log.Error("replay: stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, feedURL, token, session, instruments string, linger, listInterval time.Duration) error {
	u, err := url.Parse(feedURL)
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("replay", session)
	u.RawQuery = q.Encode()

	w := &watcher{log: log, finished: make(chan struct{})}
	w.last.Store(time.Now().UnixNano())
	opts := client.Options{URL: u.String(), Logger: log, Handler: w}
	if token != "" {
		opts.TokenSource = func(context.Context) (string, error) { return token, nil }
	}
	c, err := client.New(opts)
	if err != nil {
		return err
	}
	var want []string // nil: the instruments the session's status names
	if instruments != "" {
		for id := range strings.SplitSeq(instruments, ",") {
			want = append(want, strings.TrimSpace(id))
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- c.Run(ctx) }()
	subscribed := make(chan error, 1)
	go func() { subscribed <- subscribeListed(ctx, c, w, want, listInterval) }()
	select {
	case err := <-runDone:
		return err // ctx ended (nil), or the feed refused us for good (an unknown session: HTTP 404)
	case err := <-subscribed:
		if err != nil && ctx.Err() == nil {
			cancel()
			<-runDone
			return err
		}
	case <-w.finished:
	}
	select {
	case err := <-runDone:
		return err
	case <-w.finished:
	}
	// FINISHED: wait for the stream to go quiet, then stop.
	tick := time.NewTicker(linger / 4)
	defer tick.Stop()
	for time.Since(time.Unix(0, w.last.Load())) < linger && ctx.Err() == nil {
		<-tick.C
	}
	cancel()
	err = <-runDone
	w.mu.Lock()
	fmt.Printf("finished session %s: %d events replayed; printed %d trades and %d quotes\n", session, w.events, w.trades, w.quotes)
	w.mu.Unlock()
	return err
}

var channels = []pb.Channel{pb.Channel_CHANNEL_QUOTE, pb.Channel_CHANNEL_TRADES}

// subscribeListed subscribes to want (nil: the instruments the session's status names) once
// the feed lists every one of them for the session, asking every interval until it does.
func subscribeListed(ctx context.Context, c *client.Client, w *watcher, want []string, interval time.Duration) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		ids := want
		if ids == nil {
			ids = w.sessionInstruments()
		}
		if len(ids) > 0 {
			list, err := c.ListInstruments(ctx) // sent once Run is connected
			if err != nil {
				return err
			}
			listed := map[string]bool{}
			for _, info := range list {
				listed[info.GetId()] = true
			}
			all := true
			for _, id := range ids {
				all = all && listed[id]
			}
			if all {
				return c.Subscribe(client.Subscription{Instruments: ids, Channels: channels})
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// watcher prints the session. Its methods run on Run's goroutine; mu guards what run reads at
// the end.
type watcher struct {
	client.BaseHandler
	log      *slog.Logger
	prev     *pb.ReplayStatus
	finished chan struct{} // closed on the first FINISHED status
	last     atomic.Int64  // when the last message arrived, Unix ns

	mu                     sync.Mutex
	events, trades, quotes uint64
	instruments            []string // the session's, from its latest status
}

// sessionInstruments returns the instruments the latest status names. Safe from any goroutine.
func (w *watcher) sessionInstruments() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.instruments
}

var _ client.ReplayStatusHandler = (*watcher)(nil)

// OnReplayStatus prints the status when it changes, keeps the instruments it names, and notes
// the end.
func (w *watcher) OnReplayStatus(_ *client.Client, s *pb.ReplayStatus) {
	w.last.Store(time.Now().UnixNano())
	w.mu.Lock()
	w.events = s.Events
	if len(s.Instruments) > 0 {
		w.instruments = slices.Clone(s.Instruments)
	}
	w.mu.Unlock()
	if p := w.prev; p == nil || p.State != s.State || p.Generation != s.Generation || p.Speed != s.Speed {
		fmt.Printf("status %s clock %s events %d generation %d speed %g window %s..%s\n",
			strings.TrimPrefix(s.State.String(), "REPLAY_STATE_"), ts(s.ClockNs), s.Events, s.Generation, s.Speed, ts(s.FromNs), ts(s.ToNs))
	}
	w.prev = s
	if s.State == pb.ReplayState_REPLAY_STATE_FINISHED {
		select {
		case <-w.finished:
		default:
			close(w.finished)
		}
	}
}

func (w *watcher) OnSnapshot(_ *client.Client, u client.Update) {
	w.last.Store(time.Now().UnixNano())
}

// OnUpdate prints a replayed trade or quote, at its venue time in the window.
func (w *watcher) OnUpdate(_ *client.Client, u client.Update) {
	w.last.Store(time.Now().UnixNano())
	ps, ss := u.Info.GetPriceScale(), u.Info.GetSizeScale()
	var b []byte
	switch body := u.Delta.Body.(type) {
	case *pb.Delta_Trade:
		t := body.Trade
		aggressor := "-"
		switch t.Side {
		case pb.Side_SIDE_BUY:
			aggressor = "buy"
		case pb.Side_SIDE_SELL:
			aggressor = "sell"
		}
		b = fmt.Appendf(b, "trade %s %s %s ", ts(u.Delta.VenueTimeNs), u.Instrument, aggressor)
		b = client.AppendDecimal(b, t.Price, ps)
		b = append(b, " x "...)
		b = client.AppendDecimal(b, t.Size, ss)
		b = fmt.Appendf(b, " id %s\n", t.TradeId)
		w.mu.Lock()
		w.trades++
		w.mu.Unlock()
	case *pb.Delta_Quote:
		q := body.Quote
		b = fmt.Appendf(b, "quote %s %s bid ", ts(u.Delta.VenueTimeNs), u.Instrument)
		b = side(b, q.BidPrice, q.BidSize, ps, ss)
		b = append(b, " ask "...)
		b = side(b, q.AskPrice, q.AskSize, ps, ss)
		b = append(b, '\n')
		w.mu.Lock()
		w.quotes++
		w.mu.Unlock()
	default:
		return
	}
	_, _ = os.Stdout.Write(b)
}

func (w *watcher) OnStateChange(_ *client.Client, s client.ConnState, err error) {
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		w.log.Warn("replay: "+s.String(), "err", err)
		return
	}
	w.log.Info("replay: " + s.String())
}

func (w *watcher) OnError(_ *client.Client, e *pb.Error) {
	w.log.Warn("replay: feed error", "code", e.Code, "instrument", e.Instrument, "message", e.Message)
}

// side appends "price x size", or "-" for an empty side.
func side(b []byte, price, size int64, priceScale, sizeScale int32) []byte {
	if size == 0 {
		return append(b, '-')
	}
	b = client.AppendDecimal(b, price, priceScale)
	b = append(b, " x "...)
	return client.AppendDecimal(b, size, sizeScale)
}

// ts formats Unix nanoseconds as RFC 3339 in UTC.
func ts(ns int64) string {
	return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
}
