package coinbase

import (
	"encoding/json"
	"strings"
)

// Coinbase's public WebSocket endpoints.
const (
	DefaultAdvancedURL = "wss://advanced-trade-ws.coinbase.com"
	DefaultExchangeURL = "wss://ws-feed.exchange.coinbase.com"
)

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
