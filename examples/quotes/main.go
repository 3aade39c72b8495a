// Command quotes is a minimal Tickwire bot: it connects to a feed, subscribes to the quote
// channel of some instruments (all of them by default) and prints one line per quote change,
// with prices and sizes at each instrument's exact precision and the latency from ingest.
//
//	go run ./examples/quotes -url ws://127.0.0.1:8080/ws
//	go run ./examples/quotes -instruments coinbase:BTC-USD,synthetic:ACME
//	TICKWIRE_TOKEN=$(go run ./cmd/tickctl token --key-file .data/feed-hs256.key --sub bot) go run ./examples/quotes
//
// The feed wants a signed token: -token (default $TICKWIRE_TOKEN), or -token-file, read again
// before every connect so that whoever renews the file renews the bot's token.
//
// A feed serving wss:// with a certificate from a private CA: -ca-file names that CA's PEM
// file (the certificate and its host name are always verified).
//
//	go run ./examples/quotes -url wss://feed.internal:8443/ws -ca-file ca.pem
//
// Each line is the time received, the instrument, the best bid and ask as "price x size" ("-"
// for an empty side), and the latency from ingest (or "snapshot" for the first quote):
//
//	16:03:45.145 synthetic:ACME           bid 9.19 x 1.4341  ask 9.21 x 0.9289  latency 1.04ms
//
// It reconnects on its own when the feed restarts, and exits on SIGINT or SIGTERM, or after
// -duration (0: never).
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
	"syscall"
	"time"

	"github.com/tickwire/tickwire/pkg/client"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

func main() {
	url := flag.String("url", "ws://127.0.0.1:8080/ws", "feed WebSocket `URL`")
	instruments := flag.String("instruments", "", "comma-separated instrument `ids`; empty means every instrument the feed lists")
	useJSON := flag.Bool("json", false, "speak the JSON subprotocol instead of binary protobuf")
	token := flag.String("token", os.Getenv("TICKWIRE_TOKEN"), "feed `token` (default $TICKWIRE_TOKEN)")
	tokenFile := flag.String("token-file", "", "`file` holding the feed token, read before every connect")
	flag.StringVar(&caFile, "ca-file", "", "PEM `file` of the CA that signs a wss:// feed's certificate (default: the system roots)")
	duration := flag.Duration("duration", 0, "stop after this long (0: until SIGINT)")
	flag.Parse()
	tokens := tokenSource(*token, *tokenFile)

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	if err := run(ctx, log, *url, *instruments, *useJSON, tokens); err != nil {
		log.Error("quotes: stopped", "err", err)
		os.Exit(1)
	}
}

// caFile is -ca-file: client.Options.CAFile.
var caFile string

// tokenSource returns the token source for client.Options: the file's content when a file is
// named, else the fixed token, else none.
func tokenSource(token, file string) func(context.Context) (string, error) {
	switch {
	case file != "":
		return func(context.Context) (string, error) {
			b, err := os.ReadFile(file)
			return strings.TrimSpace(string(b)), err
		}
	case token != "":
		return func(context.Context) (string, error) { return token, nil }
	}
	return nil
}

func run(ctx context.Context, log *slog.Logger, url, instruments string, useJSON bool, tokens func(context.Context) (string, error)) error {
	opts := client.Options{URL: url, Logger: log, Handler: &printer{log: log}, TokenSource: tokens, CAFile: caFile}
	if useJSON {
		opts.Subprotocol = wire.SubprotocolJSON
	}
	c, err := client.New(opts)
	if err != nil {
		return err
	}
	quotes := []pb.Channel{pb.Channel_CHANNEL_QUOTE}
	if instruments != "" {
		ids := strings.Split(instruments, ",")
		for i := range ids {
			ids[i] = strings.TrimSpace(ids[i])
		}
		if err := c.Subscribe(client.Subscription{Instruments: ids, Channels: quotes}); err != nil {
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
			log.Info("quotes: subscribing", "instruments", len(ids))
			return c.Subscribe(client.Subscription{Instruments: ids, Channels: quotes})
		}()
	}()
	runErr := c.Run(ctx)
	cancel()
	if err := <-listed; err != nil && runErr == nil && ctx.Err() == nil {
		return err
	}
	return runErr
}

// printer prints every quote; it runs on Run's goroutine.
type printer struct {
	client.BaseHandler
	log  *slog.Logger
	line []byte
}

func (p *printer) OnStateChange(_ *client.Client, s client.ConnState, err error) {
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		p.log.Warn("quotes: "+s.String(), "err", err)
		return
	}
	p.log.Info("quotes: " + s.String())
}

func (p *printer) OnSnapshot(_ *client.Client, u client.Update) { p.print(u) }

func (p *printer) OnUpdate(_ *client.Client, u client.Update) { p.print(u) }

func (p *printer) OnResync(_ *client.Client, id string, ch pb.Channel, reason error) {
	p.log.Warn("quotes: resync", "instrument", id, "channel", ch, "err", reason)
}

func (p *printer) OnError(_ *client.Client, e *pb.Error) {
	p.log.Warn("quotes: feed error", "code", e.Code, "instrument", e.Instrument, "message", e.Message)
}

func (p *printer) print(u client.Update) {
	if u.Channel != pb.Channel_CHANNEL_QUOTE {
		return
	}
	q := u.Replica.Quote()
	ps, ss := u.Info.GetPriceScale(), u.Info.GetSizeScale()
	b := u.Received.AppendFormat(p.line[:0], "15:04:05.000 ")
	b = fmt.Appendf(b, "%-24s bid ", u.Instrument)
	b = side(b, q.BidPrice, q.BidSize, ps, ss)
	b = append(b, "  ask "...)
	b = side(b, q.AskPrice, q.AskSize, ps, ss)
	if u.Delta != nil {
		b = fmt.Appendf(b, "  latency %v", u.Latency.Round(10*time.Microsecond))
	} else {
		b = append(b, "  snapshot"...)
	}
	b = append(b, '\n')
	p.line = b
	_, _ = os.Stdout.Write(b)
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
