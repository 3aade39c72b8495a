package coinbase

import (
	"encoding/json"
	"net/url"
	"strings"
)

// Coinbase's public WebSocket endpoints.
const (
	DefaultAdvancedURL = "wss://advanced-trade-ws.coinbase.com"
	DefaultExchangeURL = "wss://ws-feed.exchange.coinbase.com"
	// REST bases of the products' reference data (public, no key).
	DefaultAdvancedREST = "https://api.coinbase.com"
	DefaultExchangeREST = "https://api.exchange.coinbase.com"
)

// ReferenceURLs implements live.ReferenceSource: one product answer per configured product
// (Advanced Trade /api/v3/brokerage/market/products/{id}, Exchange /products/{id}).
func (h *Handler) ReferenceURLs() []string {
	if h.cfg.RESTURL == "" {
		return nil
	}
	path := "/api/v3/brokerage/market/products/"
	if h.feed == Exchange {
		path = "/products/"
	}
	out := make([]string, len(h.cfg.Symbols))
	for i, p := range h.cfg.Symbols {
		out[i] = strings.TrimRight(h.cfg.RESTURL, "/") + path + url.PathEscape(p)
	}
	return out
}

// URL implements live.Venue.
func (h *Handler) URL() string { return h.cfg.URL }

func (h *Handler) sub(subscribe bool, channels, products []string) [][]byte {
	typ := "subscribe"
	if !subscribe {
		typ = "unsubscribe"
	}
	if h.feed == Exchange {
		b, _ := json.Marshal(map[string]any{"type": typ, "product_ids": products, "channels": channels})
		return [][]byte{b}
	}
	// Advanced Trade takes one channel per request.
	var out [][]byte
	for _, c := range channels {
		m := map[string]any{"type": typ, "channel": c}
		if c != "heartbeats" {
			m["product_ids"] = products
		}
		b, _ := json.Marshal(m)
		out = append(out, b)
	}
	return out
}

// Subscribe implements live.Venue.
func (h *Handler) Subscribe() [][]byte { return h.sub(true, h.cfg.Channels, h.cfg.Symbols) }

// Resync implements live.Venue: subscribe the product's level2 channel again for a fresh
// snapshot.
func (h *Handler) Resync(product string) ([][]byte, string) {
	var book []string
	for _, c := range h.cfg.Channels {
		if strings.HasPrefix(c, "level2") {
			book = append(book, c)
		}
	}
	return append(h.sub(false, book, []string{product}), h.sub(true, book, []string{product})...), ""
}

// Ping implements live.Venue: heartbeats keep the connection busy; WebSocket pings do the rest.
func (h *Handler) Ping() []byte { return nil }
