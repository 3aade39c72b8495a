// Package coinbase adapts Coinbase's public market data into normalized events: the Advanced
// Trade feed (level2 snapshot and updates, ticker, market_trades, heartbeats; sequence_num
// counts every message of a connection) and the older Exchange feed (snapshot, l2update,
// ticker, match).
package coinbase

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/tickwire/tickwire/internal/source"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// Kind is the kind of a parsed message.
type Kind uint8

const (
	KindOther Kind = iota // subscription acks, status
	KindSnapshot
	KindUpdate
	KindTicker
	KindTrade
	KindHeartbeat
	KindError
	// KindUnknown: a message type (Exchange) or channel (Advanced Trade) the handler does not
	// handle ("received"/"open"/"done" of the full channel, "candles", "user", ...);
	// Frame.Channel names it.
	KindUnknown
)

// Change is one level change: side "bid" or "ask", price and new size as written.
type Change struct {
	Bid         bool
	Price, Size string
}

// Msg is one product's part of a frame.
type Msg struct {
	Kind    Kind
	Product string
	// Seq is the Exchange feed's per-product sequence (ticker, match, heartbeat); 0 if none.
	Seq int64
	// TimeNs is the venue time, Unix ns (0 if none).
	TimeNs int64
	// Book: snapshot levels or update changes.
	Bids, Asks []source.RawLevel
	Changes    []Change
	// Ticker.
	BidPrice, BidSize, AskPrice, AskSize string
	// Trade: Side is the aggressor's ("buy"/"sell"; "" unknown).
	Price, Size, Side, TradeID string
	Last                       bool // Exchange last_match: the latest trade before subscribing
	Err                        string
}

// Frame is one parsed frame. Advanced Trade frames carry a connection-wide SequenceNum and
// may hold several products.
type Frame struct {
	Advanced    bool
	SequenceNum int64
	Channel     string
	Msgs        []Msg
}

func ts(s string) int64 {
	if s == "" {
		return 0
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0
	}
	return t.UnixNano()
}

type exchangeMsg struct {
	Type        string      `json:"type"`
	ProductID   string      `json:"product_id"`
	Sequence    int64       `json:"sequence"`
	Time        string      `json:"time"`
	Bids        [][2]string `json:"bids"`
	Asks        [][2]string `json:"asks"`
	Changes     [][3]string `json:"changes"`
	Price       string      `json:"price"`
	Size        string      `json:"size"`
	Side        string      `json:"side"`
	TradeID     json.Number `json:"trade_id"`
	BestBid     string      `json:"best_bid"`
	BestBidSize string      `json:"best_bid_size"`
	BestAsk     string      `json:"best_ask"`
	BestAskSize string      `json:"best_ask_size"`
	Message     string      `json:"message"`
	Reason      string      `json:"reason"`
}

func levels(rows [][2]string) []source.RawLevel {
	out := make([]source.RawLevel, len(rows))
	for i, r := range rows {
		out[i] = source.RawLevel{Price: r[0], Size: r[1]}
	}
	return out
}

// ParseExchange parses a frame of the Exchange feed.
func ParseExchange(data []byte) (Frame, error) {
	var m exchangeMsg
	if err := json.Unmarshal(data, &m); err != nil {
		return Frame{}, fmt.Errorf("%w: %v", source.ErrFrame, err)
	}
	out := Msg{Product: m.ProductID, Seq: m.Sequence, TimeNs: ts(m.Time)}
	switch m.Type {
	case "snapshot":
		out.Kind, out.Bids, out.Asks = KindSnapshot, levels(m.Bids), levels(m.Asks)
	case "l2update":
		out.Kind = KindUpdate
		for _, c := range m.Changes {
			switch c[0] {
			case "buy":
				out.Changes = append(out.Changes, Change{Bid: true, Price: c[1], Size: c[2]})
			case "sell":
				out.Changes = append(out.Changes, Change{Price: c[1], Size: c[2]})
			default:
				return Frame{}, fmt.Errorf("%w: l2update side %q", source.ErrFrame, c[0])
			}
		}
	case "ticker":
		out.Kind = KindTicker
		out.BidPrice, out.BidSize, out.AskPrice, out.AskSize = m.BestBid, m.BestBidSize, m.BestAsk, m.BestAskSize
	case "match", "last_match":
		out.Kind, out.Price, out.Size, out.TradeID, out.Last = KindTrade, m.Price, m.Size, string(m.TradeID), m.Type == "last_match"
		// side is the maker's order side: a sell maker means a buyer took it.
		switch m.Side {
		case "sell":
			out.Side = "buy"
		case "buy":
			out.Side = "sell"
		}
	case "heartbeat":
		out.Kind = KindHeartbeat
	case "error":
		out.Kind, out.Err = KindError, m.Message+": "+m.Reason
	case "subscriptions", "status", "subscribe", "unsubscribe":
		out.Kind = KindOther
	case "":
		return Frame{}, fmt.Errorf("%w: no type", source.ErrFrame)
	default:
		out.Kind = KindUnknown
	}
	if (out.Kind == KindSnapshot || out.Kind == KindUpdate || out.Kind == KindTicker || out.Kind == KindTrade) && out.Product == "" {
		return Frame{}, fmt.Errorf("%w: %s without product_id", source.ErrFrame, m.Type)
	}
	return Frame{Channel: m.Type, Msgs: []Msg{out}}, nil
}

type advancedEnvelope struct {
	Channel     string            `json:"channel"`
	Timestamp   string            `json:"timestamp"`
	SequenceNum *int64            `json:"sequence_num"`
	Events      []json.RawMessage `json:"events"`
	Type        string            `json:"type"`
	Message     string            `json:"message"`
}

// ParseAdvanced parses a frame of the Advanced Trade feed.
func ParseAdvanced(data []byte) (Frame, error) {
	var env advancedEnvelope
	if err := json.Unmarshal(data, &env); err != nil {
		return Frame{}, fmt.Errorf("%w: %v", source.ErrFrame, err)
	}
	if env.Type == "error" {
		return Frame{Advanced: true, Channel: "error", Msgs: []Msg{{Kind: KindError, Err: env.Message}}}, nil
	}
	if env.SequenceNum == nil || env.Channel == "" {
		return Frame{}, fmt.Errorf("%w: no channel or sequence_num", source.ErrFrame)
	}
	fr := Frame{Advanced: true, SequenceNum: *env.SequenceNum, Channel: env.Channel}
	switch env.Channel {
	case "l2_data", "ticker", "ticker_batch", "market_trades", "heartbeats":
	case "subscriptions", "status":
		return fr, nil
	default:
		fr.Msgs = []Msg{{Kind: KindUnknown}}
		return fr, nil
	}
	envTime := ts(env.Timestamp)
	for _, raw := range env.Events {
		switch env.Channel {
		case "l2_data":
			var ev struct {
				Type      string `json:"type"`
				ProductID string `json:"product_id"`
				Updates   []struct {
					Side        string `json:"side"`
					EventTime   string `json:"event_time"`
					PriceLevel  string `json:"price_level"`
					NewQuantity string `json:"new_quantity"`
				} `json:"updates"`
			}
			if err := json.Unmarshal(raw, &ev); err != nil {
				return Frame{}, fmt.Errorf("%w: l2_data: %v", source.ErrFrame, err)
			}
			if ev.ProductID == "" {
				return Frame{}, fmt.Errorf("%w: l2_data without product_id", source.ErrFrame)
			}
			m := Msg{Kind: KindUpdate, Product: ev.ProductID, TimeNs: envTime}
			snapshot := ev.Type == "snapshot"
			if snapshot {
				m.Kind = KindSnapshot
			}
			for _, u := range ev.Updates {
				var bid bool
				switch u.Side {
				case "bid":
					bid = true
				case "offer", "ask":
				default:
					return Frame{}, fmt.Errorf("%w: l2_data side %q", source.ErrFrame, u.Side)
				}
				if t := ts(u.EventTime); !snapshot && t > 0 {
					m.TimeNs = t
				}
				l := source.RawLevel{Price: u.PriceLevel, Size: u.NewQuantity}
				switch {
				case !snapshot:
					m.Changes = append(m.Changes, Change{Bid: bid, Price: u.PriceLevel, Size: u.NewQuantity})
				case bid:
					m.Bids = append(m.Bids, l)
				default:
					m.Asks = append(m.Asks, l)
				}
			}
			fr.Msgs = append(fr.Msgs, m)
		case "ticker", "ticker_batch":
			var ev struct {
				Tickers []struct {
					ProductID       string `json:"product_id"`
					BestBid         string `json:"best_bid"`
					BestBidQuantity string `json:"best_bid_quantity"`
					BestAsk         string `json:"best_ask"`
					BestAskQuantity string `json:"best_ask_quantity"`
				} `json:"tickers"`
			}
			if err := json.Unmarshal(raw, &ev); err != nil {
				return Frame{}, fmt.Errorf("%w: ticker: %v", source.ErrFrame, err)
			}
			for _, t := range ev.Tickers {
				if t.ProductID == "" {
					return Frame{}, fmt.Errorf("%w: ticker without product_id", source.ErrFrame)
				}
				fr.Msgs = append(fr.Msgs, Msg{Kind: KindTicker, Product: t.ProductID, TimeNs: envTime,
					BidPrice: t.BestBid, BidSize: t.BestBidQuantity, AskPrice: t.BestAsk, AskSize: t.BestAskQuantity})
			}
		case "market_trades":
			var ev struct {
				Type   string `json:"type"`
				Trades []struct {
					TradeID   string `json:"trade_id"`
					ProductID string `json:"product_id"`
					Price     string `json:"price"`
					Size      string `json:"size"`
					Side      string `json:"side"`
					Time      string `json:"time"`
				} `json:"trades"`
			}
			if err := json.Unmarshal(raw, &ev); err != nil {
				return Frame{}, fmt.Errorf("%w: market_trades: %v", source.ErrFrame, err)
			}
			for _, t := range ev.Trades {
				if t.ProductID == "" {
					return Frame{}, fmt.Errorf("%w: trade without product_id", source.ErrFrame)
				}
				side := ""
				switch t.Side {
				case "BUY":
					side = "buy"
				case "SELL":
					side = "sell"
				}
				fr.Msgs = append(fr.Msgs, Msg{Kind: KindTrade, Product: t.ProductID, TimeNs: ts(t.Time),
					Price: t.Price, Size: t.Size, Side: side, TradeID: t.TradeID, Last: ev.Type == "snapshot"})
			}
		case "heartbeats":
			fr.Msgs = append(fr.Msgs, Msg{Kind: KindHeartbeat})
		}
	}
	return fr, nil
}

// Product is a product's reference data from Coinbase's REST API: Advanced Trade's public
// GET /api/v3/brokerage/market/products/{product_id} ("product_id", "price_increment",
// "quote_increment", "base_increment") or the Exchange's GET /products/{product_id} ("id",
// "quote_increment", "base_increment"). PriceIncrement is price_increment where given, else
// quote_increment.
type Product struct {
	ID                            string
	PriceIncrement, BaseIncrement string
	Status                        string
	TradingDisabled               bool
}

// InstrumentStatus maps the product's status: "online" TRADING (HALTED when
// trading_disabled), "offline" HALTED, "delisted" CLOSED; anything else UNSPECIFIED (not
// known).
func (p Product) InstrumentStatus() tickwirev1.InstrumentStatus {
	switch {
	case p.Status == "delisted":
		return tickwirev1.InstrumentStatus_INSTRUMENT_STATUS_CLOSED
	case p.Status == "offline" || (p.Status == "online" && p.TradingDisabled):
		return tickwirev1.InstrumentStatus_INSTRUMENT_STATUS_HALTED
	case p.Status == "online":
		return tickwirev1.InstrumentStatus_INSTRUMENT_STATUS_TRADING
	}
	return tickwirev1.InstrumentStatus_INSTRUMENT_STATUS_UNSPECIFIED
}

// ParseProduct parses a REST product answer.
func ParseProduct(data []byte) (Product, error) {
	var p struct {
		ProductID      string `json:"product_id"`
		ID             string `json:"id"`
		PriceIncrement string `json:"price_increment"`
		QuoteIncrement string `json:"quote_increment"`
		BaseIncrement  string `json:"base_increment"`
		Status         string `json:"status"`
		// Advanced Trade: trading_disabled; the Exchange: trading_disabled as well.
		TradingDisabled bool `json:"trading_disabled"`
	}
	if err := json.Unmarshal(data, &p); err != nil {
		return Product{}, fmt.Errorf("%w: product: %v", source.ErrFrame, err)
	}
	out := Product{ID: p.ProductID, PriceIncrement: p.PriceIncrement, BaseIncrement: p.BaseIncrement, Status: p.Status,
		TradingDisabled: p.TradingDisabled}
	if out.ID == "" {
		out.ID = p.ID
	}
	if out.PriceIncrement == "" {
		out.PriceIncrement = p.QuoteIncrement
	}
	if out.ID == "" || out.PriceIncrement == "" || out.BaseIncrement == "" {
		return Product{}, fmt.Errorf("%w: product without id, price/quote_increment or base_increment", source.ErrFrame)
	}
	return out, nil
}
