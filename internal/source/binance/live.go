package binance

import (
	"net/url"
	"strconv"
	"strings"
)

// Binance's public endpoints.
const (
	DefaultSpotURL     = "wss://stream.binance.com:9443"
	DefaultSpotREST    = "https://api.binance.com"
	DefaultFuturesURL  = "wss://fstream.binance.com"
	DefaultFuturesREST = "https://fapi.binance.com"
)

// SnapshotLimit is the depth of the REST snapshot fetched: 1000 levels, the documented
// procedure's choice (weight 10 on spot, 20 on futures).
const SnapshotLimit = 1000

// URL implements live.Venue: a combined stream of every configured symbol and channel.
func (h *Handler) URL() string {
	var streams []string
	for _, sym := range h.cfg.Symbols {
		s := strings.ToLower(sym)
		for _, c := range h.cfg.Channels {
			if c == "depth" {
				streams = append(streams, s+"@depth@100ms")
				continue
			}
			streams = append(streams, s+"@"+c)
		}
	}
	return strings.TrimRight(h.cfg.URL, "/") + "/stream?streams=" + strings.Join(streams, "/")
}

// Subscribe implements live.Venue: the streams are in the URL.
func (h *Handler) Subscribe() [][]byte { return nil }

// Resync implements live.Venue: fetch the REST depth snapshot; buffered events join it.
func (h *Handler) Resync(symbol string) ([][]byte, string) {
	path := "/api/v3/depth"
	if h.market == Futures {
		path = "/fapi/v1/depth"
	}
	q := url.Values{"symbol": {strings.ToUpper(symbol)}, "limit": {strconv.Itoa(SnapshotLimit)}}
	return nil, strings.TrimRight(h.cfg.RESTURL, "/") + path + "?" + q.Encode()
}

// ReferenceURLs implements live.ReferenceSource: exchangeInfo of the configured symbols (spot:
// /api/v3/exchangeInfo?symbols=[...]; futures: /fapi/v1/exchangeInfo, every symbol, as the
// endpoint takes no filter).
func (h *Handler) ReferenceURLs() []string {
	if h.market == Futures {
		return []string{strings.TrimRight(h.cfg.RESTURL, "/") + "/fapi/v1/exchangeInfo"}
	}
	if len(h.cfg.Symbols) == 0 {
		return nil
	}
	syms := make([]string, len(h.cfg.Symbols))
	for i, s := range h.cfg.Symbols {
		syms[i] = strconv.Quote(strings.ToUpper(s))
	}
	q := url.Values{"symbols": {"[" + strings.Join(syms, ",") + "]"}}
	return []string{strings.TrimRight(h.cfg.RESTURL, "/") + "/api/v3/exchangeInfo?" + q.Encode()}
}

// Ping implements live.Venue: Binance pings; the transport answers, and sends WebSocket pings.
func (h *Handler) Ping() []byte { return nil }
