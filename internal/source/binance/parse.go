// Package binance adapts Binance's public market data, spot and USD-M futures, into
// normalized events: diff depth (depthUpdate) joined to a REST depth snapshot by Binance's
// documented procedure (buffer, snapshot, drop stale events, require continuity of U/u, or of
// pu on futures, and start over on a break), bookTicker, trade and aggTrade.
package binance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"

	"github.com/tickwire/tickwire/internal/source"
)

// Kind is the kind of a parsed message.
type Kind uint8

const (
	KindOther Kind = iota // subscription results ({"result":..,"id":..})
	KindDepth
	KindSnapshot // REST depth snapshot
	KindBookTicker
	KindTrade
	KindAggTrade
	KindError
	// KindUnknown: an event type ("e") the handler does not handle (kline, 24hrTicker,
	// markPriceUpdate, ...); Msg.Channel names it (or the combined stream's name).
	KindUnknown
)

// Depth is a depthUpdate event.
type Depth struct {
	Symbol       string
	EventTime    int64 // E, ms
	TransactTime int64 // T, ms (futures)
	First, Final int64 // U, u
	PrevFinal    int64 // pu (futures); -1 when absent
	Bids, Asks   []source.RawLevel
}

// Snapshot is a REST depth snapshot.
type Snapshot struct {
	Symbol       string // from the request URL; "" for an unattributed inline snapshot
	LastUpdateID int64
	Bids, Asks   []source.RawLevel
	EventTime    int64 // futures E, ms
}

// BookTicker is the best bid and offer.
type BookTicker struct {
	Symbol                               string
	UpdateID                             int64
	BidPrice, BidSize, AskPrice, AskSize string
	EventTime                            int64 // futures only (E), ms
}

// Trade is a trade or an aggregate trade.
type Trade struct {
	Symbol       string
	ID           int64 // t (trade) or a (aggTrade)
	Price, Size  string
	Time         int64 // T, ms
	BuyerIsMaker bool  // m: the aggressor sold
}

// Msg is one parsed frame.
type Msg struct {
	Kind   Kind
	Depth  *Depth
	Snap   *Snapshot
	Ticker *BookTicker
	Trade  *Trade
	Err    string
	// Channel names an unknown message: its "e", else its combined stream name.
	Channel string
}

type level [2]string

func raws(ls []level) []source.RawLevel {
	out := make([]source.RawLevel, len(ls))
	for i, l := range ls {
		out[i] = source.RawLevel{Price: l[0], Size: l[1]}
	}
	return out
}

type event struct {
	E     string          `json:"e"`
	ETime int64           `json:"E"`
	T     int64           `json:"T"`
	S     string          `json:"s"`
	U     *int64          `json:"U"`
	LowU  *int64          `json:"u"`
	PU    *int64          `json:"pu"`
	B     json.RawMessage `json:"b"`
	A     json.RawMessage `json:"a"`
	BQ    string          `json:"B"`
	AQ    string          `json:"A"`
	TID   int64           `json:"t"`
	P     string          `json:"p"`
	Q     string          `json:"q"`
	M     bool            `json:"m"`
	// encoding/json matches keys case-insensitively when no field has the exact name: every
	// key that differs from another only in case needs its own field ("M" is not "m").
	Ignore bool `json:"M"`
	// REST snapshot
	LastUpdateID *int64  `json:"lastUpdateId"`
	Bids         []level `json:"bids"`
	Asks         []level `json:"asks"`
	// errors
	Code *int   `json:"code"`
	Msg  string `json:"msg"`
	// subscription results
	Result json.RawMessage `json:"result"`
	ID     json.RawMessage `json:"id"`
}

// Parse parses a frame: a stream event, bare or in the combined-stream envelope
// {"stream":..,"data":..}, or a REST depth snapshot (rawURL is its request URL, if known).
func Parse(data []byte, rawURL string) (Msg, error) {
	data = bytes.TrimSpace(data)
	var env struct {
		Stream string          `json:"stream"`
		Data   json.RawMessage `json:"data"`
	}
	if bytes.HasPrefix(data, []byte(`{"stream"`)) {
		if err := json.Unmarshal(data, &env); err != nil {
			return Msg{}, fmt.Errorf("%w: %v", source.ErrFrame, err)
		}
		data = env.Data
	}
	var e event
	if err := json.Unmarshal(data, &e); err != nil {
		return Msg{}, fmt.Errorf("%w: %v", source.ErrFrame, err)
	}
	switch {
	case e.LastUpdateID != nil:
		s := &Snapshot{LastUpdateID: *e.LastUpdateID, Bids: raws(e.Bids), Asks: raws(e.Asks), EventTime: e.ETime}
		if rawURL != "" {
			u, err := url.Parse(rawURL)
			if err != nil {
				return Msg{}, fmt.Errorf("%w: snapshot url: %v", source.ErrFrame, err)
			}
			s.Symbol = u.Query().Get("symbol")
		}
		return Msg{Kind: KindSnapshot, Snap: s}, nil
	case e.Code != nil:
		return Msg{Kind: KindError, Err: fmt.Sprintf("code %d: %s", *e.Code, e.Msg)}, nil
	case e.E == "depthUpdate":
		if e.S == "" || e.U == nil || e.LowU == nil {
			return Msg{}, fmt.Errorf("%w: depthUpdate without s/U/u", source.ErrFrame)
		}
		d := &Depth{Symbol: e.S, EventTime: e.ETime, TransactTime: e.T, First: *e.U, Final: *e.LowU, PrevFinal: -1}
		if e.PU != nil {
			d.PrevFinal = *e.PU
		}
		var b, a []level
		if err := json.Unmarshal(orNull(e.B), &b); err != nil {
			return Msg{}, fmt.Errorf("%w: depth bids: %v", source.ErrFrame, err)
		}
		if err := json.Unmarshal(orNull(e.A), &a); err != nil {
			return Msg{}, fmt.Errorf("%w: depth asks: %v", source.ErrFrame, err)
		}
		d.Bids, d.Asks = raws(b), raws(a)
		return Msg{Kind: KindDepth, Depth: d}, nil
	case e.E == "trade" || e.E == "aggTrade":
		if e.S == "" || e.P == "" || e.Q == "" {
			return Msg{}, fmt.Errorf("%w: %s without s/p/q", source.ErrFrame, e.E)
		}
		t := &Trade{Symbol: e.S, ID: e.TID, Price: e.P, Size: e.Q, Time: e.T, BuyerIsMaker: e.M}
		kind := KindTrade
		if e.E == "aggTrade" {
			kind = KindAggTrade
			var agg struct {
				A int64 `json:"a"`
			}
			if err := json.Unmarshal(data, &agg); err != nil {
				return Msg{}, fmt.Errorf("%w: aggTrade id: %v", source.ErrFrame, err)
			}
			t.ID = agg.A
		}
		return Msg{Kind: kind, Trade: t}, nil
	case e.E == "bookTicker" || (e.E == "" && e.LowU != nil && e.S != ""):
		var bid, ask string
		if err := json.Unmarshal(orNull(e.B), &bid); err != nil {
			return Msg{}, fmt.Errorf("%w: bookTicker b: %v", source.ErrFrame, err)
		}
		if err := json.Unmarshal(orNull(e.A), &ask); err != nil {
			return Msg{}, fmt.Errorf("%w: bookTicker a: %v", source.ErrFrame, err)
		}
		if e.LowU == nil || bid == "" || ask == "" {
			return Msg{}, fmt.Errorf("%w: bookTicker without u/b/a", source.ErrFrame)
		}
		return Msg{Kind: KindBookTicker, Ticker: &BookTicker{Symbol: e.S, UpdateID: *e.LowU,
			BidPrice: bid, BidSize: e.BQ, AskPrice: ask, AskSize: e.AQ, EventTime: e.ETime}}, nil
	}
	if e.E == "" && (e.Result != nil || e.ID != nil) {
		return Msg{Kind: KindOther}, nil // subscription result
	}
	ch := e.E
	if ch == "" {
		ch = env.Stream
	}
	return Msg{Kind: KindUnknown, Channel: ch}, nil
}

func orNull(b json.RawMessage) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	return b
}
