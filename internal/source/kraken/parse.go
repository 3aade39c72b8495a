// Package kraken adapts Kraken's public Spot WebSocket market data, v1 (array frames,
// book-N with string prices and a checksum on updates) and v2 (JSON objects, JSON-number
// prices, a checksum on snapshots and updates), into normalized events.
//
// Books are verified on every message against Kraken's CRC32 checksum of the top 10 levels,
// computed from the integer book at the pair's precision (the decimals Kraken writes), never
// from re-formatted floats. A failed checksum marks the book out of sync and asks for a resync
// (live: unsubscribe and subscribe the pair's book again).
package kraken

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/tickwire/tickwire/internal/source"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// Kind is the kind of a parsed message.
type Kind uint8

const (
	KindOther Kind = iota // status, subscription acks, pongs: nothing to normalize
	KindHeartbeat
	KindBook
	KindTicker
	KindTrade
	KindInstrument // v2 instrument channel: reference data
	KindError      // the venue reported an error (subscription refused, ...)
	// KindUnknown: a channel (v1 array frame's channel name, v2 "channel") or v1 event the
	// handler does not handle ("spread", "ohlc-5", a channel added later); Event names it.
	KindUnknown
)

// v1Control are the v1 event objects that are control frames (acks, status, keepalive).
var v1Control = map[string]bool{"systemStatus": true, "subscriptionStatus": true, "pong": true, "ping": true,
	"subscribe": true, "unsubscribe": true}

// Level is one book row: price and size as written, its venue time (v1) and whether Kraken
// republished it (v1 "r": a level re-entering the top after another left; not new activity).
type Level struct {
	Price, Size string
	Time        string
	Republish   bool
}

// BookMsg is a book snapshot or update of one pair.
type BookMsg struct {
	Snapshot    bool
	Bids, Asks  []Level
	Checksum    uint32
	HasChecksum bool
	Depth       int    // v1: from the channel name "book-N"; 0 if unknown
	Timestamp   string // v2 RFC 3339
}

// Ticker is the best bid and offer.
type Ticker struct {
	BidPrice, BidSize, AskPrice, AskSize string
	Timestamp                            string // v2, when present
}

// Trade is one trade.
type Trade struct {
	Price, Size string
	Time        string // v1: Unix seconds with decimals; v2: RFC 3339
	Side        string // v1 "b"/"s"; v2 "buy"/"sell"
	ID          string // v2 trade_id
}

// PairInfo is v2 instrument-channel reference data.
type PairInfo struct {
	Symbol                       string
	PricePrecision, QtyPrecision int32
	PriceIncrement, QtyIncrement string
}

// Msg is one parsed frame. Pair is set for book, ticker and trade messages. A v2 frame may
// carry several pairs: ParseV2 returns one Msg per data entry.
type Msg struct {
	Kind   Kind
	Pair   string
	Event  string // v1 event / v2 method or channel
	Book   *BookMsg
	Ticker *Ticker
	Trades []Trade
	Pairs  []PairInfo
	Err    string
}

// ParseV1 parses a v1 frame.
func ParseV1(data []byte) (Msg, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return Msg{}, fmt.Errorf("%w: empty", source.ErrFrame)
	}
	if data[0] == '{' {
		var ev struct {
			Event        string `json:"event"`
			Status       string `json:"status"`
			ErrorMessage string `json:"errorMessage"`
		}
		if err := json.Unmarshal(data, &ev); err != nil {
			return Msg{}, fmt.Errorf("%w: %v", source.ErrFrame, err)
		}
		switch {
		case ev.Event == "heartbeat":
			return Msg{Kind: KindHeartbeat, Event: ev.Event}, nil
		case ev.Status == "error" || ev.ErrorMessage != "":
			return Msg{Kind: KindError, Event: ev.Event, Err: ev.ErrorMessage}, nil
		case !v1Control[ev.Event]:
			return Msg{Kind: KindUnknown, Event: ev.Event}, nil
		}
		return Msg{Kind: KindOther, Event: ev.Event}, nil
	}
	var parts []json.RawMessage
	if err := json.Unmarshal(data, &parts); err != nil {
		return Msg{}, fmt.Errorf("%w: %v", source.ErrFrame, err)
	}
	if len(parts) < 4 {
		return Msg{}, fmt.Errorf("%w: array of %d elements", source.ErrFrame, len(parts))
	}
	var channel, pair string
	if err := json.Unmarshal(parts[len(parts)-2], &channel); err != nil {
		return Msg{}, fmt.Errorf("%w: channel name: %v", source.ErrFrame, err)
	}
	if err := json.Unmarshal(parts[len(parts)-1], &pair); err != nil || pair == "" {
		return Msg{}, fmt.Errorf("%w: pair: %v", source.ErrFrame, err)
	}
	payload := parts[1 : len(parts)-2]
	m := Msg{Pair: pair, Event: channel}
	switch {
	case strings.HasPrefix(channel, "book"):
		b, err := parseV1Book(channel, payload)
		if err != nil {
			return Msg{}, err
		}
		m.Kind, m.Book = KindBook, b
	case channel == "ticker":
		var t struct {
			A []json.RawMessage `json:"a"`
			B []json.RawMessage `json:"b"`
		}
		if len(payload) != 1 || json.Unmarshal(payload[0], &t) != nil || len(t.A) < 3 || len(t.B) < 3 {
			return Msg{}, fmt.Errorf("%w: ticker", source.ErrFrame)
		}
		var tk Ticker
		for _, x := range []struct {
			dst *string
			src json.RawMessage
		}{{&tk.AskPrice, t.A[0]}, {&tk.AskSize, t.A[2]}, {&tk.BidPrice, t.B[0]}, {&tk.BidSize, t.B[2]}} {
			if err := json.Unmarshal(x.src, x.dst); err != nil {
				return Msg{}, fmt.Errorf("%w: ticker: %v", source.ErrFrame, err)
			}
		}
		m.Kind, m.Ticker = KindTicker, &tk
	case channel == "trade":
		var rows [][]json.RawMessage
		if len(payload) != 1 || json.Unmarshal(payload[0], &rows) != nil {
			return Msg{}, fmt.Errorf("%w: trade", source.ErrFrame)
		}
		for _, r := range rows {
			if len(r) < 4 {
				return Msg{}, fmt.Errorf("%w: trade row of %d", source.ErrFrame, len(r))
			}
			var t Trade
			for i, dst := range []*string{&t.Price, &t.Size, &t.Time, &t.Side} {
				if err := json.Unmarshal(r[i], dst); err != nil {
					return Msg{}, fmt.Errorf("%w: trade: %v", source.ErrFrame, err)
				}
			}
			m.Trades = append(m.Trades, t)
		}
		m.Kind = KindTrade
	default:
		m.Kind = KindUnknown
	}
	return m, nil
}

func parseV1Book(channel string, payload []json.RawMessage) (*BookMsg, error) {
	b := &BookMsg{}
	if _, n, ok := strings.Cut(channel, "-"); ok {
		b.Depth, _ = strconv.Atoi(n)
	}
	for _, p := range payload {
		var d struct {
			As [][]string `json:"as"`
			Bs [][]string `json:"bs"`
			A  [][]string `json:"a"`
			B  [][]string `json:"b"`
			C  *string    `json:"c"`
		}
		if err := json.Unmarshal(p, &d); err != nil {
			return nil, fmt.Errorf("%w: book: %v", source.ErrFrame, err)
		}
		if d.As != nil || d.Bs != nil {
			b.Snapshot = true
		}
		var err error
		for _, x := range []struct {
			dst *[]Level
			src [][]string
		}{{&b.Asks, d.As}, {&b.Bids, d.Bs}, {&b.Asks, d.A}, {&b.Bids, d.B}} {
			if *x.dst, err = appendV1Levels(*x.dst, x.src); err != nil {
				return nil, err
			}
		}
		if d.C != nil {
			c, err := strconv.ParseUint(*d.C, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("%w: checksum %q", source.ErrFrame, *d.C)
			}
			b.Checksum, b.HasChecksum = uint32(c), true
		}
	}
	return b, nil
}

func appendV1Levels(dst []Level, rows [][]string) ([]Level, error) {
	for _, r := range rows {
		if len(r) < 3 {
			return nil, fmt.Errorf("%w: book row of %d", source.ErrFrame, len(r))
		}
		dst = append(dst, Level{Price: r[0], Size: r[1], Time: r[2], Republish: len(r) > 3 && r[3] == "r"})
	}
	return dst, nil
}

// number keeps a JSON number's text exactly as written (v2 sends prices as JSON numbers).
type number string

func (n *number) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 1 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*n = number(s)
		return nil
	}
	if len(b) == 0 || !(b[0] == '-' || b[0] >= '0' && b[0] <= '9') {
		return fmt.Errorf("not a number: %.20q", b)
	}
	*n = number(b)
	return nil
}

type v2Level struct {
	Price number `json:"price"`
	Qty   number `json:"qty"`
}

// ParseV2 parses a v2 frame into one Msg per data entry (one for control frames).
func ParseV2(data []byte) ([]Msg, error) {
	var env struct {
		Channel string          `json:"channel"`
		Type    string          `json:"type"`
		Method  string          `json:"method"`
		Success *bool           `json:"success"`
		Error   string          `json:"error"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("%w: %v", source.ErrFrame, err)
	}
	if env.Method != "" {
		if env.Success != nil && !*env.Success {
			return []Msg{{Kind: KindError, Event: env.Method, Err: env.Error}}, nil
		}
		return []Msg{{Kind: KindOther, Event: env.Method}}, nil
	}
	snapshot := env.Type == "snapshot"
	switch env.Channel {
	case "heartbeat":
		return []Msg{{Kind: KindHeartbeat, Event: env.Channel}}, nil
	case "book":
		var entries []struct {
			Symbol    string    `json:"symbol"`
			Bids      []v2Level `json:"bids"`
			Asks      []v2Level `json:"asks"`
			Checksum  *uint32   `json:"checksum"`
			Timestamp string    `json:"timestamp"`
		}
		if err := json.Unmarshal(env.Data, &entries); err != nil {
			return nil, fmt.Errorf("%w: book: %v", source.ErrFrame, err)
		}
		out := make([]Msg, 0, len(entries))
		for _, e := range entries {
			if e.Symbol == "" {
				return nil, fmt.Errorf("%w: book without symbol", source.ErrFrame)
			}
			b := &BookMsg{Snapshot: snapshot, Timestamp: e.Timestamp, Bids: v2Levels(e.Bids), Asks: v2Levels(e.Asks)}
			if e.Checksum != nil {
				b.Checksum, b.HasChecksum = *e.Checksum, true
			}
			out = append(out, Msg{Kind: KindBook, Pair: e.Symbol, Event: env.Channel, Book: b})
		}
		return out, nil
	case "ticker":
		var entries []struct {
			Symbol    string `json:"symbol"`
			Bid       number `json:"bid"`
			BidQty    number `json:"bid_qty"`
			Ask       number `json:"ask"`
			AskQty    number `json:"ask_qty"`
			Timestamp string `json:"timestamp"`
		}
		if err := json.Unmarshal(env.Data, &entries); err != nil {
			return nil, fmt.Errorf("%w: ticker: %v", source.ErrFrame, err)
		}
		out := make([]Msg, 0, len(entries))
		for _, e := range entries {
			if e.Symbol == "" {
				return nil, fmt.Errorf("%w: ticker without symbol", source.ErrFrame)
			}
			out = append(out, Msg{Kind: KindTicker, Pair: e.Symbol, Event: env.Channel, Ticker: &Ticker{
				BidPrice: string(e.Bid), BidSize: string(e.BidQty), AskPrice: string(e.Ask), AskSize: string(e.AskQty), Timestamp: e.Timestamp}})
		}
		return out, nil
	case "trade":
		var entries []struct {
			Symbol    string `json:"symbol"`
			Side      string `json:"side"`
			Price     number `json:"price"`
			Qty       number `json:"qty"`
			TradeID   number `json:"trade_id"`
			Timestamp string `json:"timestamp"`
		}
		if err := json.Unmarshal(env.Data, &entries); err != nil {
			return nil, fmt.Errorf("%w: trade: %v", source.ErrFrame, err)
		}
		var out []Msg
		for _, e := range entries {
			if e.Symbol == "" {
				return nil, fmt.Errorf("%w: trade without symbol", source.ErrFrame)
			}
			t := Trade{Price: string(e.Price), Size: string(e.Qty), Time: e.Timestamp, Side: e.Side, ID: string(e.TradeID)}
			if n := len(out); n > 0 && out[n-1].Pair == e.Symbol {
				out[n-1].Trades = append(out[n-1].Trades, t)
				continue
			}
			out = append(out, Msg{Kind: KindTrade, Pair: e.Symbol, Event: env.Channel, Trades: []Trade{t}})
		}
		return out, nil
	case "instrument":
		var d struct {
			Pairs []struct {
				Symbol         string `json:"symbol"`
				PricePrecision int32  `json:"price_precision"`
				QtyPrecision   int32  `json:"qty_precision"`
				PriceIncrement number `json:"price_increment"`
				QtyIncrement   number `json:"qty_increment"`
			} `json:"pairs"`
		}
		if err := json.Unmarshal(env.Data, &d); err != nil {
			return nil, fmt.Errorf("%w: instrument: %v", source.ErrFrame, err)
		}
		m := Msg{Kind: KindInstrument, Event: env.Channel}
		for _, p := range d.Pairs {
			m.Pairs = append(m.Pairs, PairInfo{Symbol: p.Symbol, PricePrecision: p.PricePrecision, QtyPrecision: p.QtyPrecision,
				PriceIncrement: string(p.PriceIncrement), QtyIncrement: string(p.QtyIncrement)})
		}
		return []Msg{m}, nil
	case "status":
		return []Msg{{Kind: KindOther, Event: env.Channel}}, nil
	case "":
		return nil, fmt.Errorf("%w: no channel or method", source.ErrFrame)
	}
	return []Msg{{Kind: KindUnknown, Event: env.Channel}}, nil
}

func v2Levels(in []v2Level) []Level {
	out := make([]Level, len(in))
	for i, l := range in {
		out[i] = Level{Price: string(l.Price), Size: string(l.Qty)}
	}
	return out
}

// AssetPair is one pair of Kraken's REST AssetPairs answer: its v1 WebSocket name, the
// decimals of prices (pair_decimals) and volumes (lot_decimals), and tick_size as written
// ("" in answers that predate it).
type AssetPair struct {
	WSName                    string
	PairDecimals, LotDecimals int32
	TickSize                  string
	Status                    string
}

// InstrumentStatus maps the pair's status: "online" (and the restricted order modes
// "post_only", "limit_only", "reduce_only", where trades still happen) TRADING,
// "cancel_only" and "maintenance" HALTED, "delisted" CLOSED; anything else UNSPECIFIED (not
// known).
func (a AssetPair) InstrumentStatus() tickwirev1.InstrumentStatus {
	switch a.Status {
	case "online", "post_only", "limit_only", "reduce_only":
		return tickwirev1.InstrumentStatus_INSTRUMENT_STATUS_TRADING
	case "cancel_only", "maintenance":
		return tickwirev1.InstrumentStatus_INSTRUMENT_STATUS_HALTED
	case "delisted":
		return tickwirev1.InstrumentStatus_INSTRUMENT_STATUS_CLOSED
	}
	return tickwirev1.InstrumentStatus_INSTRUMENT_STATUS_UNSPECIFIED
}

// Tick returns the price grid: tick_size, else one unit of pair_decimals.
func (a AssetPair) Tick() string {
	if a.TickSize != "" {
		return a.TickSize
	}
	return unit(a.PairDecimals)
}

// Lot returns the volume grid: one unit of lot_decimals.
func (a AssetPair) Lot() string { return unit(a.LotDecimals) }

func unit(decimals int32) string {
	if decimals <= 0 {
		return "1"
	}
	return "0." + strings.Repeat("0", int(decimals-1)) + "1"
}

// ParseAssetPairs parses a REST AssetPairs answer {"error":[],"result":{"XXBTZUSD":{...}}};
// pairs without a wsname (not on the WebSocket API) are left out.
func ParseAssetPairs(data []byte) ([]AssetPair, error) {
	var doc struct {
		Error  []string `json:"error"`
		Result map[string]struct {
			WSName       string `json:"wsname"`
			PairDecimals *int32 `json:"pair_decimals"`
			LotDecimals  *int32 `json:"lot_decimals"`
			TickSize     number `json:"tick_size"`
			Status       string `json:"status"`
		} `json:"result"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%w: AssetPairs: %v", source.ErrFrame, err)
	}
	if len(doc.Error) > 0 || doc.Result == nil {
		return nil, fmt.Errorf("%w: AssetPairs: error %v", source.ErrFrame, doc.Error)
	}
	out := make([]AssetPair, 0, len(doc.Result))
	for name, p := range doc.Result {
		if p.WSName == "" {
			continue
		}
		if p.PairDecimals == nil || p.LotDecimals == nil || *p.PairDecimals < 0 || *p.LotDecimals < 0 {
			return nil, fmt.Errorf("%w: AssetPairs %s: no pair_decimals/lot_decimals", source.ErrFrame, name)
		}
		out = append(out, AssetPair{WSName: p.WSName, PairDecimals: *p.PairDecimals, LotDecimals: *p.LotDecimals, TickSize: string(p.TickSize), Status: p.Status})
	}
	return out, nil
}
