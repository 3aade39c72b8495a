// Command tape writes the trade tape of some instruments (all of them by default) to stdout as
// CSV, one row per trade as it happens:
//
//	time,instrument,side,price,size,trade_id
//	2026-12-02T16:03:45.311967Z,synthetic:CORA,buy,225.55,0.4298,45
//
//	go run ./examples/tape > trades.csv
//	go run ./examples/tape -instruments synthetic:ACME -duration 1m
//
// What it shows:
//
//   - Subscribing to CHANNEL_TRADES only. Its snapshot holds the instrument's recent trades
//     (up to Subscribed.trade_history): this tape starts after it and prints only the trades
//     that follow, each a Delta whose body is one Trade (docs/PROTOCOL.md §8.3). -history
//     prints the snapshot's trades first. A trade marked history (a venue's recent trades,
//     sent when the feed connected to it) is not new, and is skipped.
//   - Exact decimals: price and size are integer mantissas at the instrument's price_scale and
//     size_scale (from Subscribed.info); client.AppendDecimal writes them without a float, so
//     price 22555 at scale 2 is "225.55", never "225.54999".
//   - time is the venue's time of the trade (Delta.venue_time_ns), RFC 3339 in UTC; side is
//     the aggressor's, buy or sell ("" when the venue does not say); trade_id is the venue's
//     ("" when it gives none).
//   - After a reconnect the client resumes the stream where it was (the feed sends the trades
//     missed, docs/PROTOCOL.md §13.2), or sends a new snapshot when it cannot: trades in a gap
//     that no resume covers are then missing from the tape, and the tape logs it.
//
// The feed wants a token: -token (default $TICKWIRE_TOKEN). -duration bounds the run (0: until
// SIGINT or SIGTERM). Logs go to stderr, so stdout is only the CSV.
package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"log/slog"
	"os"
	"os/signal"
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
	history := flag.Bool("history", false, "print the recent trades of each instrument's snapshot first")
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
	out := bufio.NewWriter(os.Stdout)
	w := csv.NewWriter(out)
	err := run(ctx, log, w, *url, *token, *instruments, *history)
	w.Flush()
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		log.Error("tape: stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, w *csv.Writer, url, token, instruments string, history bool) error {
	if err := w.Write([]string{"time", "instrument", "side", "price", "size", "trade_id"}); err != nil {
		return err
	}
	w.Flush()
	t := &tape{log: log, w: w, history: history, seen: map[string]bool{}}
	opts := client.Options{URL: url, Logger: log, Handler: t}
	if token != "" {
		opts.TokenSource = func(context.Context) (string, error) { return token, nil }
	}
	c, err := client.New(opts)
	if err != nil {
		return err
	}
	trades := []pb.Channel{pb.Channel_CHANNEL_TRADES}
	if instruments != "" {
		ids := strings.Split(instruments, ",")
		for i := range ids {
			ids[i] = strings.TrimSpace(ids[i])
		}
		if err := c.Subscribe(client.Subscription{Instruments: ids, Channels: trades}); err != nil {
			return err
		}
		return c.Run(ctx)
	}

	// Every instrument: ask the feed for its list once Run is connected, then subscribe.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	listed := make(chan error, 1)
	go func() {
		listed <- func() error {
			list, err := c.ListInstruments(ctx)
			if err != nil {
				return err
			}
			if len(list) == 0 {
				return errors.New("the feed lists no instruments")
			}
			ids := make([]string, len(list))
			for i, info := range list {
				ids[i] = info.GetId()
			}
			return c.Subscribe(client.Subscription{Instruments: ids, Channels: trades})
		}()
	}()
	runErr := c.Run(ctx)
	cancel()
	if err := <-listed; err != nil && runErr == nil && ctx.Err() == nil {
		return err
	}
	return runErr
}

// tape writes rows; its methods run on Run's goroutine, the only writer of w.
type tape struct {
	client.BaseHandler
	log     *slog.Logger
	w       *csv.Writer
	history bool
	seen    map[string]bool // instruments given a snapshot
	row     [6]string
}

func (t *tape) OnSnapshot(_ *client.Client, u client.Update) {
	if u.Channel != pb.Channel_CHANNEL_TRADES {
		return
	}
	if t.seen[u.Instrument] {
		// Not the first: a break or a reconnect the feed could not resume. The trades between
		// the last row and this snapshot were not sent as deltas.
		t.log.Warn("tape: new snapshot: trades may be missing", "instrument", u.Instrument, "reason", u.Snapshot.Reason)
	}
	t.seen[u.Instrument] = true
	if !t.history {
		return
	}
	for _, r := range u.Snapshot.GetTrades().GetTrades() {
		t.write(u.Instrument, u.Info, r.GetTrade(), r.GetVenueTimeNs())
	}
	t.w.Flush()
}

func (t *tape) OnUpdate(_ *client.Client, u client.Update) {
	tr := u.Delta.GetTrade()
	if tr == nil || tr.GetHistory() {
		return
	}
	t.write(u.Instrument, u.Info, tr, u.Delta.GetVenueTimeNs())
	t.w.Flush() // a row as soon as it happens: a pipe reader sees it at once
}

func (t *tape) write(id string, info *pb.InstrumentInfo, tr *pb.Trade, venueTimeNs int64) {
	side := ""
	switch tr.GetSide() {
	case pb.Side_SIDE_BUY:
		side = "buy"
	case pb.Side_SIDE_SELL:
		side = "sell"
	}
	t.row = [6]string{
		time.Unix(0, venueTimeNs).UTC().Format(time.RFC3339Nano),
		id,
		side,
		client.FormatDecimal(tr.GetPrice(), info.GetPriceScale()),
		client.FormatDecimal(tr.GetSize(), info.GetSizeScale()),
		tr.GetTradeId(),
	}
	if err := t.w.Write(t.row[:]); err != nil {
		t.log.Error("tape: write", "err", err)
	}
}

func (t *tape) OnStateChange(_ *client.Client, s client.ConnState, err error) {
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		t.log.Warn("tape: "+s.String(), "err", err)
		return
	}
	t.log.Info("tape: " + s.String())
}

func (t *tape) OnResync(_ *client.Client, id string, ch pb.Channel, reason error) {
	t.log.Warn("tape: stream broken, resyncing: trades may be missing", "instrument", id, "channel", ch, "err", reason)
}

func (t *tape) OnError(_ *client.Client, e *pb.Error) {
	t.log.Warn("tape: feed error", "code", e.Code, "instrument", e.Instrument, "message", e.Message)
}
