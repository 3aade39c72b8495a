// Command resume holds quote and book subscriptions across lost connections and feed restarts,
// and reports what each reconnect cost: which streams resumed without a snapshot, and which got
// a new one.
//
//	go run ./examples/resume -instruments synthetic:ACME,synthetic:BOLT
//	# then restart the feed (Ctrl-C "make run" and start it again): resume reports the reconnect
//
// What it shows (docs/PROTOCOL.md §13):
//
//   - client.Client reconnects on its own, with jittered exponential backoff, and sends every
//     subscription again. For each stream that was in sync it sends its position (epoch, seq)
//     in Subscribe.resume: it kept the replica across the disconnect.
//   - The feed answers each instrument with Subscribed, whose resumed field lists the channels
//     it resumed: for those it sends only the deltas missed since the position, then live ones,
//     and no snapshot. Every other channel gets a new snapshot, whose reason says why
//     (HISTORY_GONE: the feed no longer holds every delta since the position; NEW_EPOCH: the
//     instrument's sequence started over). A feed restarted on the same store rebuilds the same
//     state and history from it, so a bot usually resumes everything.
//   - All of that is visible from client.Handler alone: OnStateChange for the connection,
//     OnSubscribed for Subscribed.resumed, OnSnapshot for the snapshots; client.Stats counts
//     it (Connects, Resumed, Snapshots).
//
// Its lines (stdout):
//
//	connected #1
//	snapshot synthetic:ACME quote SUBSCRIBE at 1796227417/10363
//	snapshot synthetic:ACME book SUBSCRIBE at 1796227417/10363
//	disconnected: client: server closed the connection: code 1001 "server shutting down"
//	reconnected #2 after 1.312s
//	resumed synthetic:ACME quote from 1796227417/10501 without a snapshot
//	resumed synthetic:ACME book from 1796227417/10499 without a snapshot
//	snapshot synthetic:BOLT book HISTORY_GONE at 1796227417/11020 (after reconnect #2)
//	summary connects=2 resumed=3 snapshots_after_reconnect=1 gaps=0 checksum_failures=0 resyncs=0
//
// One line per connect, per stream resumed and per snapshot; the summary on exit.
//
// The feed wants a token: -token (default $TICKWIRE_TOKEN). -duration bounds the run (0: until
// SIGINT or SIGTERM).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/tickwire/tickwire/pkg/client"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

func main() {
	url := flag.String("url", "ws://127.0.0.1:8080/ws", "feed WebSocket `URL`")
	token := flag.String("token", os.Getenv("TICKWIRE_TOKEN"), "feed `token` (default $TICKWIRE_TOKEN)")
	instruments := flag.String("instruments", "", "comma-separated instrument `ids`; empty means every instrument the feed lists")
	depth := flag.Uint("depth", 10, "book `depth` per side")
	duration := flag.Duration("duration", 0, "stop after this long (0: until SIGINT)")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	if err := run(ctx, log, *url, *token, *instruments, uint32(*depth)); err != nil {
		log.Error("resume: stopped", "err", err)
		os.Exit(1)
	}
}

var channels = []pb.Channel{pb.Channel_CHANNEL_QUOTE, pb.Channel_CHANNEL_BOOK}

func run(ctx context.Context, log *slog.Logger, url, token, instruments string, depth uint32) error {
	r := &reporter{log: log}
	opts := client.Options{URL: url, Logger: log, Handler: r}
	if token != "" {
		opts.TokenSource = func(context.Context) (string, error) { return token, nil }
	}
	c, err := client.New(opts)
	if err != nil {
		return err
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- c.Run(ctx) }()

	var ids []string
	if instruments != "" {
		for id := range strings.SplitSeq(instruments, ",") {
			ids = append(ids, strings.TrimSpace(id))
		}
	} else {
		list, err := c.ListInstruments(ctx) // sent once Run is connected
		if err != nil {
			cancel()
			runErr := <-runDone
			if parent.Err() != nil { // stopped (SIGINT, -duration) before the list came
				return runErr
			}
			return errors.Join(err, runErr)
		}
		for _, info := range list {
			ids = append(ids, info.GetId())
		}
	}
	// Subscribed once: the client sends it again, with resume positions, on every reconnect.
	if err := c.Subscribe(client.Subscription{Instruments: ids, Channels: channels, Depth: depth}); err != nil {
		cancel()
		<-runDone
		return err
	}
	err = <-runDone
	st := c.Stats()
	fmt.Printf("summary connects=%d resumed=%d snapshots_after_reconnect=%d gaps=%d checksum_failures=%d resyncs=%d\n",
		st.Connects, st.Resumed, r.renewed, st.Gaps, st.ChecksumFailures, st.Resyncs)
	return err
}

// reporter prints the connection's story. Its methods run on Run's goroutine, one at a time;
// run reads renewed only after Run returned.
type reporter struct {
	client.BaseHandler
	log      *slog.Logger
	connects int
	lost     time.Time // when the last connection was lost
	renewed  int       // snapshots after a reconnect
}

func (r *reporter) OnStateChange(_ *client.Client, s client.ConnState, err error) {
	if s == client.Connected {
		r.connects++
		if r.connects == 1 {
			fmt.Printf("connected #1\n")
		} else {
			fmt.Printf("reconnected #%d after %v\n", r.connects, time.Since(r.lost).Round(time.Millisecond))
		}
		return
	}
	r.lost = time.Now()
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return // we are stopping
	}
	fmt.Printf("disconnected: %v\n", err)
}

// OnSubscribed reports the streams the feed resumed: Subscribed.resumed lists their channels.
// The position they resumed from is the one the client held, still in its View.
func (r *reporter) OnSubscribed(c *client.Client, s *pb.Subscribed) {
	id := s.GetInfo().GetId()
	v, _ := c.View(id)
	for _, ch := range s.Channels {
		if slices.Contains(s.Resumed, ch) {
			p := v.Streams[ch]
			fmt.Printf("resumed %s %s from %d/%d without a snapshot\n", id, name(ch), p.Epoch, p.Seq)
		}
	}
}

// OnSnapshot reports every snapshot: the first ones of a subscription, and after a reconnect
// those of the streams the feed could not resume.
func (r *reporter) OnSnapshot(_ *client.Client, u client.Update) {
	reason := strings.TrimPrefix(u.Snapshot.Reason.String(), "SNAPSHOT_REASON_")
	if r.connects > 1 {
		r.renewed++
		fmt.Printf("snapshot %s %s %s at %d/%d (after reconnect #%d)\n", u.Instrument, name(u.Channel), reason, u.Snapshot.Epoch, u.Snapshot.Seq, r.connects)
		return
	}
	fmt.Printf("snapshot %s %s %s at %d/%d\n", u.Instrument, name(u.Channel), reason, u.Snapshot.Epoch, u.Snapshot.Seq)
}

func (r *reporter) OnResync(_ *client.Client, id string, ch pb.Channel, reason error) {
	fmt.Printf("resync %s %s: %v\n", id, name(ch), reason)
}

func (r *reporter) OnError(_ *client.Client, e *pb.Error) {
	r.log.Warn("resume: feed error", "code", e.Code, "instrument", e.Instrument, "message", e.Message)
}

// name is a channel's short name: quote, book.
func name(ch pb.Channel) string {
	return strings.ToLower(strings.TrimPrefix(ch.String(), "CHANNEL_"))
}
