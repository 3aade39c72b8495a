package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/pkg/client"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

type tailCmd struct {
	URL         string   `default:"ws://127.0.0.1:8080/ws" help:"The feed's WebSocket endpoint."`
	Replay      string   `placeholder:"SESSION" help:"Watch this replay session instead of live data (connects to <url>?replay=SESSION)."`
	Instrument  []string `placeholder:"ID" help:"Instrument id (venue:SYMBOL), or venue:* for every instrument of a venue, now and later; repeat or comma-separate. Default: every instrument the feed lists."`
	Channel     []string `default:"quote,book,trades,candles,stats" placeholder:"CH" help:"Channels: quote, book, trades, candles, stats (comma-separated)."`
	Depth       uint32   `default:"10" help:"Book depth per side (the feed rounds up to a depth it offers)."`
	Format      string   `enum:"text,json" default:"text" help:"text: one readable line per message, prices as exact decimals; json: protojson of each ServerMessage, one per line."`
	Subprotocol string   `enum:"proto,json" default:"proto" help:"WebSocket subprotocol to use (${enum})."`
	Origin      string   `help:"Origin header to send (feeds check it against an allow-list)."`
	Token       string   `help:"Bearer token for feeds that require auth (sent as Authorization)." env:"TICKWIRE_TOKEN"`
	CAFile      string   `name:"ca-file" type:"path" placeholder:"FILE" help:"PEM CA certificate(s) that sign the feed's certificate, for a wss:// feed with a private CA (default: the system roots). The host name is always checked."`
	Count       int      `help:"Stop after this many snapshots and deltas (0: until interrupted)."`
	Wait        bool     `help:"Wait for --instrument ids the feed does not list yet (a venue not connected, a new listing) instead of an unknown-instrument error: each is printed when its first event arrives."`
}

func (c *tailCmd) Help() string {
	return `Subscribes like a bot does (pkg/client: every delta is checked against its stream's position and the book checksum; a broken stream is resynced on its own) and prints each message on one line. On exit it prints the client's counters: gaps, epoch changes, checksum failures and resyncs.

Text lines are: time (a delta's venue time; when a snapshot was received), instrument, channel, snap|delta, epoch/seq, then the content with prices and sizes as exact decimals at the instrument's scale; lines starting with # are connection events, subscriptions, resyncs and errors.

Examples:
  tickctl tail --instrument synthetic:ACME --channel quote
  tickctl tail --url wss://feed.example.com/ws --token "$TOKEN" --instrument coinbase:BTC-USD --channel book --depth 5
  tickctl tail --url wss://feed.internal:8443/ws --ca-file ca.pem --channel quote
  tickctl tail --replay r-1a2b3c4d --format json | jq .
  tickctl tail --channel trades --count 100`
}

var channelNames = map[string]pb.Channel{
	"quote": pb.Channel_CHANNEL_QUOTE, "book": pb.Channel_CHANNEL_BOOK, "trades": pb.Channel_CHANNEL_TRADES,
	"candles": pb.Channel_CHANNEL_CANDLES, "stats": pb.Channel_CHANNEL_STATS,
}

func (c *tailCmd) Run(e *env) error {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") {
		return usageErr("--url %q: want ws://host:port/ws or wss://...", c.URL)
	}
	if c.Replay != "" {
		if err := bus.ValidSessionID(c.Replay); err != nil {
			return usageErr("--replay: %v", err)
		}
		q := u.Query()
		q.Set("replay", c.Replay)
		u.RawQuery = q.Encode()
	}
	var chans []pb.Channel
	for _, name := range c.Channel {
		ch, ok := channelNames[strings.TrimSpace(name)]
		if !ok {
			return usageErr("--channel %q: want quote, book, trades, candles or stats", name)
		}
		chans = append(chans, ch)
	}
	for _, id := range c.Instrument {
		if _, ok := wire.VenueWildcard(id); ok {
			continue
		}
		if err := wire.CheckInstrumentID(id); err != nil {
			return usageErr("--instrument: %v", err)
		}
	}
	sub := wire.SubprotocolProto
	if c.Subprotocol == "json" {
		sub = wire.SubprotocolJSON
	}
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	p := &printer{w: e.stdout, json: c.Format == "json", count: c.Count, stop: cancel}
	opts := client.Options{URL: u.String(), Subprotocol: sub, Origin: c.Origin, Handler: p, Logger: e.logger, CAFile: c.CAFile,
		WaitForInstruments: c.Wait}
	if c.Token != "" {
		opts.Header = http.Header{"Authorization": []string{"Bearer " + c.Token}}
	}
	cl, err := client.New(opts)
	if err != nil {
		return usageErr("%v", err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- cl.Run(ctx) }()

	insts := c.Instrument
	if len(insts) == 0 {
		lctx, lcancel := context.WithTimeout(ctx, 30*time.Second)
		list, err := cl.ListInstruments(lctx)
		lcancel()
		if err != nil {
			cancel()
			<-runErr
			if e.ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("list instruments of %s: %w", c.URL, err)
		}
		for _, info := range list {
			insts = append(insts, info.GetId())
		}
		if len(insts) == 0 {
			cancel()
			<-runErr
			return fmt.Errorf("%s lists no instruments", c.URL)
		}
	}
	if err := cl.Subscribe(client.Subscription{Instruments: insts, Channels: chans, Depth: c.Depth}); err != nil {
		cancel()
		<-runErr
		return usageErr("%v", err)
	}
	err = <-runErr
	s := cl.Stats()
	fmt.Fprintf(e.stderr, "tail: %d frames, %d snapshots, %d deltas; %d gaps, %d epoch changes, %d checksum failures, %d resyncs, %d decode errors, %d server errors, %d reconnects\n",
		s.Frames, s.Snapshots, s.Deltas, s.Gaps, s.EpochChanges, s.ChecksumFailures, s.Resyncs, s.DecodeErrors, s.ServerErrors, max(s.Connects, 1)-1)
	return err
}

// printer is tail's client.Handler: one line per message.
type printer struct {
	client.BaseHandler
	w     io.Writer
	json  bool
	count int // stop after this many snapshots and deltas (0: never)
	n     int
	stop  context.CancelFunc
	buf   []byte // Run's goroutine only, like every Handler call
}

var jsonOpts = protojson.MarshalOptions{}

func (p *printer) emit(m *pb.ServerMessage, line func() []byte) {
	if p.json {
		b, err := jsonOpts.Marshal(m)
		if err != nil {
			return
		}
		p.buf = append(append(p.buf[:0], b...), '\n')
	} else {
		p.buf = append(line(), '\n')
	}
	_, _ = p.w.Write(p.buf)
}

func (p *printer) counted() {
	if p.n++; p.count > 0 && p.n >= p.count {
		p.stop()
	}
}

func (p *printer) OnStateChange(_ *client.Client, s client.ConnState, err error) {
	if p.json {
		return
	}
	line := "# " + s.String()
	if err != nil {
		line += ": " + err.Error()
	}
	_, _ = io.WriteString(p.w, line+"\n")
}

func (p *printer) OnSubscribed(_ *client.Client, s *pb.Subscribed) {
	p.emit(&pb.ServerMessage{Kind: &pb.ServerMessage_Subscribed{Subscribed: s}}, func() []byte {
		info := s.GetInfo()
		chans := make([]string, len(s.Channels))
		for i, ch := range s.Channels {
			chans[i] = channelName(ch)
		}
		return fmt.Appendf(p.buf[:0], "# subscribed %s %s/%s price_scale %d size_scale %d tick %s lot %s channels %s depth %d",
			info.GetId(), info.GetBase(), info.GetQuote(), info.GetPriceScale(), info.GetSizeScale(),
			grid(info.GetTickSize(), info.GetPriceScale()), grid(info.GetLotSize(), info.GetSizeScale()),
			strings.Join(chans, ","), s.GetDepth())
	})
}

func (p *printer) OnSnapshot(_ *client.Client, u client.Update) {
	s := u.Snapshot
	p.emit(&pb.ServerMessage{Kind: &pb.ServerMessage_Snapshot{Snapshot: s}}, func() []byte {
		b := p.head(u, "snap", s.Epoch, s.Seq, u.Received)
		b = append(b, ' ')
		b = append(b, strings.TrimPrefix(s.Reason.String(), "SNAPSHOT_REASON_")...)
		return appendBody(b, u.Info, s.Body)
	})
	p.counted()
}

func (p *printer) OnUpdate(_ *client.Client, u client.Update) {
	d := u.Delta
	p.emit(&pb.ServerMessage{Kind: &pb.ServerMessage_Delta{Delta: d}}, func() []byte {
		t := u.Received
		if d.VenueTimeNs > 0 {
			t = time.Unix(0, d.VenueTimeNs)
		}
		b := p.head(u, "delta", d.Epoch, d.Seq, t)
		return appendBody(b, u.Info, d.Body)
	})
	p.counted()
}

// OnInstrument prints a change of reference data (a halt, say): tail is a client.InstrumentHandler.
func (p *printer) OnInstrument(_ *client.Client, info *pb.InstrumentInfo) {
	p.emit(&pb.ServerMessage{Kind: &pb.ServerMessage_InstrumentUpdate{InstrumentUpdate: &pb.InstrumentUpdate{Info: info}}}, func() []byte {
		return fmt.Appendf(p.buf[:0], "# instrument %s status %s", info.GetId(), strings.TrimPrefix(info.GetStatus().String(), "INSTRUMENT_STATUS_"))
	})
}

// OnStreamStatus prints a stream that stopped (the feed's copy of a book broke): tail is a
// client.StreamStatusHandler.
func (p *printer) OnStreamStatus(_ *client.Client, instrument string, s *pb.StreamStatus) {
	p.emit(&pb.ServerMessage{Kind: &pb.ServerMessage_StreamStatus{StreamStatus: s}}, func() []byte {
		return fmt.Appendf(p.buf[:0], "# %s %s %s: %s", instrument, channelName(s.GetChannel()),
			strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(s.GetState().String(), "STREAM_STATE_"), "_", " ")), s.GetReason())
	})
}

func (p *printer) OnResync(_ *client.Client, instrument string, ch pb.Channel, reason error) {
	if !p.json {
		fmt.Fprintf(p.w, "# resync %s %s: %v\n", instrument, channelName(ch), reason)
	}
}

func (p *printer) OnError(_ *client.Client, e *pb.Error) {
	p.emit(&pb.ServerMessage{Kind: &pb.ServerMessage_Error{Error: e}}, func() []byte {
		return fmt.Appendf(p.buf[:0], "# error %s %s: %s", strings.TrimPrefix(e.Code.String(), "ERROR_CODE_"), e.Instrument, e.Message)
	})
}

func (p *printer) head(u client.Update, kind string, epoch, seq uint64, t time.Time) []byte {
	b := t.UTC().AppendFormat(p.buf[:0], "15:04:05.000000")
	b = append(b, ' ')
	b = append(b, u.Instrument...)
	b = append(b, ' ')
	b = append(b, channelName(u.Channel)...)
	b = append(b, ' ')
	b = append(b, kind...)
	b = append(b, ' ')
	b = strconv.AppendUint(b, epoch, 10)
	b = append(b, '/')
	return strconv.AppendUint(b, seq, 10)
}

// grid formats a tick or lot size: "unknown" for 0 (docs/PROTOCOL.md §5.2).
func grid(m int64, scale int32) string {
	if m == 0 {
		return "unknown"
	}
	return client.FormatDecimal(m, scale)
}

func channelName(ch pb.Channel) string {
	return strings.ToLower(strings.TrimPrefix(ch.String(), "CHANNEL_"))
}

// appendBody appends a snapshot's or delta's content, prices and sizes as exact decimals.
func appendBody(b []byte, info *pb.InstrumentInfo, body any) []byte {
	ps, ss := info.GetPriceScale(), info.GetSizeScale()
	px := func(b []byte, v int64) []byte { return client.AppendDecimal(b, v, ps) }
	sz := func(b []byte, v int64) []byte { return client.AppendDecimal(b, v, ss) }
	switch x := body.(type) {
	case *pb.Snapshot_Quote:
		return appendQuote(b, x.Quote, px, sz)
	case *pb.Delta_Quote:
		return appendQuote(b, x.Quote, px, sz)
	case *pb.Snapshot_Book:
		bk := x.Book
		b = fmt.Appendf(b, " depth %d levels %d/%d", bk.Depth, len(bk.Bids), len(bk.Asks))
		if len(bk.Bids) > 0 {
			b = append(b, " best bid "...)
			b = sz(append(px(b, bk.Bids[0].Price), " x "...), bk.Bids[0].Size)
		}
		if len(bk.Asks) > 0 {
			b = append(b, " best ask "...)
			b = sz(append(px(b, bk.Asks[0].Price), " x "...), bk.Asks[0].Size)
		}
		return b
	case *pb.Delta_Book:
		for _, side := range []struct {
			tag    string
			levels []*pb.Level
		}{{"bid", x.Book.Bids}, {"ask", x.Book.Asks}} {
			for _, l := range side.levels {
				b = append(b, ' ')
				if l.Size == 0 {
					b = append(append(b, '-'), side.tag...)
					b = px(append(b, ' '), l.Price)
					continue
				}
				b = append(b, side.tag...)
				b = sz(append(px(append(b, ' '), l.Price), " x "...), l.Size)
			}
		}
		return b
	case *pb.Delta_Trade:
		return appendTrade(b, x.Trade, px, sz)
	case *pb.Snapshot_Trades:
		b = fmt.Appendf(b, " %d trades", len(x.Trades.Trades))
		if n := len(x.Trades.Trades); n > 0 {
			b = append(b, ", last"...)
			b = appendTrade(b, x.Trades.Trades[n-1].Trade, px, sz)
		}
		return b
	case *pb.Snapshot_Candles:
		b = fmt.Appendf(b, " %d bars", len(x.Candles.Candles))
		if n := len(x.Candles.Candles); n > 0 {
			b = append(b, ", last"...)
			b = appendCandle(b, x.Candles.Candles[n-1], px, sz)
		}
		return b
	case *pb.Delta_Candles:
		for _, c := range x.Candles.Candles {
			b = appendCandle(b, c, px, sz)
		}
		return b
	case *pb.Snapshot_Stats:
		return appendStats(b, x.Stats, px, sz)
	case *pb.Delta_Stats:
		return appendStats(b, x.Stats, px, sz)
	}
	return b
}

type decFn func([]byte, int64) []byte

func appendQuote(b []byte, q *pb.Quote, px, sz decFn) []byte {
	b = append(b, " bid "...)
	b = sz(append(px(b, q.GetBidPrice()), " x "...), q.GetBidSize())
	b = append(b, " ask "...)
	return sz(append(px(b, q.GetAskPrice()), " x "...), q.GetAskSize())
}

func appendTrade(b []byte, t *pb.Trade, px, sz decFn) []byte {
	b = append(b, ' ')
	b = append(b, strings.TrimPrefix(t.GetSide().String(), "SIDE_")...)
	b = append(b, ' ')
	b = px(append(sz(b, t.GetSize()), " @ "...), t.GetPrice())
	if t.GetTradeId() != "" {
		b = append(append(b, " id "...), t.GetTradeId()...)
	}
	return b
}

func appendCandle(b []byte, c *pb.Candle, px, sz decFn) []byte {
	b = fmt.Appendf(b, " %ds@", c.IntervalS)
	b = time.Unix(c.StartS, 0).UTC().AppendFormat(b, "15:04:05")
	b = px(append(b, " o "...), c.Open)
	b = px(append(b, " h "...), c.High)
	b = px(append(b, " l "...), c.Low)
	b = px(append(b, " c "...), c.Close)
	b = sz(append(b, " v "...), c.Volume)
	return fmt.Appendf(b, " n %d", c.TradeCount)
}

func appendStats(b []byte, s *pb.Stats, px, sz decFn) []byte {
	b = px(append(b, " open "...), s.GetOpen())
	b = px(append(b, " high "...), s.GetHigh())
	b = px(append(b, " low "...), s.GetLow())
	b = px(append(b, " last "...), s.GetLast())
	b = sz(append(b, " volume "...), s.GetVolume())
	b = px(append(b, " vwap "...), s.GetVwap())
	return fmt.Appendf(b, " trades %d", s.GetTradeCount())
}
