// Command book keeps a local L2 order book of one or more instruments and proves, as it goes,
// that it is the feed's book: it prints the top levels of each book every -interval, and the
// integrity counters that say why you can trust them.
//
//	go run ./examples/book -instruments synthetic:ACME
//	go run ./examples/book -instruments synthetic:ACME,synthetic:BOLT -depth 50 -levels 3 -duration 10s
//
// What it shows:
//
//   - The client keeps the book for you. client.Client holds a market.Replica per instrument:
//     it applies the book snapshot, then every delta that follows on from it (docs/PROTOCOL.md
//     §7.4: same epoch, prev_seq <= position < seq), and checks the CRC32 checksum of the top 10
//     levels a side and the full-depth hash after each one. A stream that breaks (a gap, an
//     epoch change, a checksum mismatch) is resynced on its own: OnResync says so, and its
//     deltas are ignored until the new snapshot.
//   - Handler methods run on Run's goroutine and may read u.Replica directly; any other
//     goroutine (here the printer) takes a copy with Client.View.
//   - The checks can be redone by hand with pkg/book: Book.Checksum and book.Hash are the
//     reference implementations. This example recomputes both after every book update and
//     counts them (checksum_ok, hash_ok), so you can see what a client in another language
//     must compute (docs/PROTOCOL.md §9).
//
// Every -interval it prints, per instrument:
//
//	book synthetic:ACME depth 10 at 1796227417/5123 synced
//	  1  bid 9.18 x 0.0269  ask 9.21 x 0.9289
//	  2  bid 9.17 x 1.2000  ask 9.22 x 0.5000
//
// (levels best first; "-" for a side with no level there; "stale" instead of "synced" while the
// book waits for a snapshot after a break, or for a connection) and then one line of counters over
// every instrument:
//
//	integrity snapshots=3 deltas=1200 checksum_ok=1203 hash_ok=1203 recheck_failures=0 checksum_failures=0 gaps=0 epoch_changes=0 resyncs=0
//
// snapshots and deltas are the book updates applied; checksum_ok and hash_ok those whose
// checksum and full-depth hash this program recomputed and found equal to the server's (a
// hash of 0 is not sent by older servers, and not checked); recheck_failures those it found
// different; checksum_failures, gaps, epoch_changes and resyncs are the client's own counters
// (client.Stats), each a break it repaired with a resync. The last block is printed on exit,
// with "integrity final".
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
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tickwire/tickwire/pkg/book"
	"github.com/tickwire/tickwire/pkg/client"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

func main() {
	url := flag.String("url", "ws://127.0.0.1:8080/ws", "feed WebSocket `URL`")
	token := flag.String("token", os.Getenv("TICKWIRE_TOKEN"), "feed `token` (default $TICKWIRE_TOKEN)")
	instruments := flag.String("instruments", "", "comma-separated instrument `ids`; empty means every instrument the feed lists")
	depth := flag.Uint("depth", 10, "book `depth` per side to hold (the feed rounds up to a depth it offers)")
	levels := flag.Int("levels", 5, "how many top `levels` of each side to print")
	interval := flag.Duration("interval", time.Second, "how often to print the books")
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
	if err := run(ctx, log, *url, *token, *instruments, uint32(*depth), *levels, *interval); err != nil {
		log.Error("book: stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, url, token, instruments string, depth uint32, levels int, interval time.Duration) error {
	h := &checker{log: log}
	opts := client.Options{URL: url, Logger: log, Handler: h}
	if token != "" {
		opts.TokenSource = func(context.Context) (string, error) { return token, nil }
	}
	c, err := client.New(opts)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- c.Run(ctx) }()

	ids, err := instrumentIDs(ctx, c, instruments)
	if err != nil {
		cancel()
		<-runDone
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if err := c.Subscribe(client.Subscription{Instruments: ids, Channels: []pb.Channel{pb.Channel_CHANNEL_BOOK}, Depth: depth}); err != nil {
		return err
	}

	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			printBooks(c, h, ids, levels, "")
		case err := <-runDone:
			printBooks(c, h, ids, levels, "final ")
			return err
		}
	}
}

// instrumentIDs returns the ids of -instruments, or every instrument the feed lists (asked once
// Run is connected).
func instrumentIDs(ctx context.Context, c *client.Client, instruments string) ([]string, error) {
	if instruments != "" {
		ids := strings.Split(instruments, ",")
		for i := range ids {
			ids[i] = strings.TrimSpace(ids[i])
		}
		return ids, nil
	}
	list, err := c.ListInstruments(ctx)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("the feed lists no instruments")
	}
	ids := make([]string, len(list))
	for i, info := range list {
		ids[i] = info.GetId()
	}
	return ids, nil
}

// checker recomputes the checksum and the full-depth hash after every book update. Its methods
// run on Run's goroutine; the printer reads its counters under mu.
type checker struct {
	client.BaseHandler
	log *slog.Logger

	mu                                        sync.Mutex
	snapshots, deltas, crcOK, hashOK, recheck uint64
}

func (h *checker) OnSnapshot(_ *client.Client, u client.Update) {
	if u.Channel == pb.Channel_CHANNEL_BOOK {
		h.check(u, u.Snapshot.Checksum, u.Snapshot.BookHash, true)
	}
}

func (h *checker) OnUpdate(_ *client.Client, u client.Update) {
	if u.Channel == pb.Channel_CHANNEL_BOOK {
		h.check(u, u.Delta.Checksum, u.Delta.BookHash, false)
	}
}

// check recomputes what the replica has just verified: the CRC32 of the top 10 levels a side
// (book.Book.Checksum) and the hash of every level the stream carries (book.Hash).
func (h *checker) check(u client.Update, checksum uint32, hash uint64, snapshot bool) {
	b := u.Replica.Book()
	crc := b.Checksum()
	full := book.Hash(b.Bids(), b.Asks())
	h.mu.Lock()
	defer h.mu.Unlock()
	if snapshot {
		h.snapshots++
	} else {
		h.deltas++
	}
	if crc == checksum {
		h.crcOK++
	} else {
		h.recheck++
		h.log.Error("book: checksum differs", "instrument", u.Instrument, "have", crc, "server", checksum)
	}
	switch {
	case hash == 0: // not sent (an older server): nothing to compare
	case full == hash:
		h.hashOK++
	default:
		h.recheck++
		h.log.Error("book: full-depth hash differs", "instrument", u.Instrument, "have", full, "server", hash)
	}
}

func (h *checker) OnResync(_ *client.Client, id string, ch pb.Channel, reason error) {
	h.log.Warn("book: resync", "instrument", id, "channel", ch, "err", reason)
}

func (h *checker) OnStateChange(_ *client.Client, s client.ConnState, err error) {
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		h.log.Warn("book: "+s.String(), "err", err)
		return
	}
	h.log.Info("book: " + s.String())
}

func (h *checker) OnError(_ *client.Client, e *pb.Error) {
	h.log.Warn("book: feed error", "code", e.Code, "instrument", e.Instrument, "message", e.Message)
}

// printBooks prints the top levels of each book from a View (a copy: this is not Run's
// goroutine), then the counters.
func printBooks(c *client.Client, h *checker, ids []string, levels int, final string) {
	var b []byte
	for _, id := range ids {
		v, ok := c.View(id)
		s := v.Streams[pb.Channel_CHANNEL_BOOK]
		if !ok || v.Info == nil || s.Epoch == 0 {
			b = fmt.Appendf(b, "book %s waiting for its snapshot\n", id)
			continue
		}
		state := "synced"
		if !s.Synced {
			state = "stale" // waiting for a snapshot after a break, or for a connection
		}
		b = fmt.Appendf(b, "book %s depth %d at %d/%d %s\n", id, v.Depth, s.Epoch, s.Seq, state)
		ps, ss := v.Info.GetPriceScale(), v.Info.GetSizeScale()
		bids, asks := v.Book.Top(book.Bid, levels), v.Book.Top(book.Ask, levels)
		for i := range max(len(bids), len(asks)) {
			b = fmt.Appendf(b, "  %d  bid ", i+1)
			b = level(b, bids, i, ps, ss)
			b = append(b, "  ask "...)
			b = level(b, asks, i, ps, ss)
			b = append(b, '\n')
		}
	}
	st := c.Stats()
	h.mu.Lock()
	b = fmt.Appendf(b, "integrity %ssnapshots=%d deltas=%d checksum_ok=%d hash_ok=%d recheck_failures=%d checksum_failures=%d gaps=%d epoch_changes=%d resyncs=%d\n",
		final, h.snapshots, h.deltas, h.crcOK, h.hashOK, h.recheck, st.ChecksumFailures, st.Gaps, st.EpochChanges, st.Resyncs)
	h.mu.Unlock()
	_, _ = os.Stdout.Write(b)
}

// level appends levels[i] as "price x size", or "-" past the end of the side.
func level(b []byte, levels []book.Level, i int, priceScale, sizeScale int32) []byte {
	if i >= len(levels) {
		return append(b, '-')
	}
	b = client.AppendDecimal(b, levels[i].Price, priceScale)
	b = append(b, " x "...)
	return client.AppendDecimal(b, levels[i].Size, sizeScale)
}
