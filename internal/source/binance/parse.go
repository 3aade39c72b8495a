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
	"strings"

	"github.com/tickwire/tickwire/internal/source"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
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
	// KindExchangeInfo: a REST exchangeInfo answer (reference data: tick and lot per symbol).
	KindExchangeInfo
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
	Symbols []SymbolInfo // KindExchangeInfo
}

// SymbolInfo is one symbol of an exchangeInfo answer: its status, assets, and the grid of its
// PRICE_FILTER (tickSize) and LOT_SIZE (stepSize) filters as written ("0.01000000"); empty
// when the filter is absent. PricePrecision/QuantityPrecision are futures' fields (-1 absent).
type SymbolInfo struct {
	Symbol, Status, BaseAsset, QuoteAsset string
	TickSize, StepSize                    string
	PricePrecision, QuantityPrecision     int32
}

// InstrumentStatus maps the symbol's status: TRADING, BREAK (delisted, or not yet listed):
// CLOSED, HALT and the session states without continuous trading (PRE_TRADING, POST_TRADING,
// END_OF_DAY, AUCTION_MATCH): HALTED; anything else: UNSPECIFIED (not known).
func (s SymbolInfo) InstrumentStatus() tickwirev1.InstrumentStatus {
	switch s.Status {
	case "TRADING":
		return tickwirev1.InstrumentStatus_INSTRUMENT_STATUS_TRADING
	case "BREAK":
		return tickwirev1.InstrumentStatus_INSTRUMENT_STATUS_CLOSED
	case "HALT", "PRE_TRADING", "POST_TRADING", "END_OF_DAY", "AUCTION_MATCH":
		return tickwirev1.InstrumentStatus_INSTRUMENT_STATUS_HALTED
	}
	return tickwirev1.InstrumentStatus_INSTRUMENT_STATUS_UNSPECIFIED
}

// IsExchangeInfo reports whether rawURL is an exchangeInfo request (spot or futures).
func IsExchangeInfo(rawURL string) bool {
	u, err := url.Parse(rawURL)
	return err == nil && strings.HasSuffix(u.Path, "/exchangeInfo")
}

// ParseExchangeInfo parses a REST exchangeInfo answer.
func ParseExchangeInfo(data []byte) ([]SymbolInfo, error) {
	var doc struct {
		Symbols []struct {
			Symbol            string `json:"symbol"`
			Status            string `json:"status"`
			BaseAsset         string `json:"baseAsset"`
			QuoteAsset        string `json:"quoteAsset"`
			PricePrecision    *int32 `json:"pricePrecision"`
			QuantityPrecision *int32 `json:"quantityPrecision"`
			Filters           []struct {
				FilterType string `json:"filterType"`
				TickSize   string `json:"tickSize"`
				StepSize   string `json:"stepSize"`
			} `json:"filters"`
		} `json:"symbols"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%w: exchangeInfo: %v", source.ErrFrame, err)
	}
	if doc.Symbols == nil {
		return nil, fmt.Errorf("%w: exchangeInfo without symbols", source.ErrFrame)
	}
	out := make([]SymbolInfo, 0, len(doc.Symbols))
	for _, s := range doc.Symbols {
		if s.Symbol == "" {
			return nil, fmt.Errorf("%w: exchangeInfo symbol without name", source.ErrFrame)
		}
		si := SymbolInfo{Symbol: s.Symbol, Status: s.Status, BaseAsset: s.BaseAsset, QuoteAsset: s.QuoteAsset,
			PricePrecision: -1, QuantityPrecision: -1}
		if s.PricePrecision != nil {
			si.PricePrecision = *s.PricePrecision
		}
		if s.QuantityPrecision != nil {
			si.QuantityPrecision = *s.QuantityPrecision
		}
		for _, f := range s.Filters {
			switch f.FilterType {
			case "PRICE_FILTER":
				si.TickSize = f.TickSize
			case "LOT_SIZE":
				si.StepSize = f.StepSize
			}
		}
		out = append(out, si)
	}
	return out, nil
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
// {"stream":..,"data":..}, a REST depth snapshot, or a REST exchangeInfo answer (rawURL is the
// request URL of a REST answer, if known).
func Parse(data []byte, rawURL string) (Msg, error) {
	data = bytes.TrimSpace(data)
	if rawURL != "" && IsExchangeInfo(rawURL) {
		syms, err := ParseExchangeInfo(data)
		if err != nil {
			return Msg{}, err
		}
		return Msg{Kind: KindExchangeInfo, Symbols: syms}, nil
	}
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
