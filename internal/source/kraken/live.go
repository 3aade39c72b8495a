package kraken

import (
	"encoding/json"
	"strings"
)

// Kraken's public WebSocket endpoints.
const (
	DefaultURLV1 = "wss://ws.kraken.com"
	DefaultURLV2 = "wss://ws.kraken.com/v2"
	// DefaultREST is Kraken's public REST base (AssetPairs).
	DefaultREST = "https://api.kraken.com"
)

// ReferenceURLs implements live.ReferenceSource: v1 fetches the public AssetPairs (every
// pair: the answer is keyed by Kraken's own pair names, read here by wsname); v2 has the
// instrument channel instead.
func (h *Handler) ReferenceURLs() []string {
	if h.version != 1 || h.cfg.RESTURL == "" {
		return nil
	}
	return []string{strings.TrimRight(h.cfg.RESTURL, "/") + "/0/public/AssetPairs"}
}

// URL implements live.Venue.
func (h *Handler) URL() string { return h.cfg.URL }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only maps, strings and ints
	}
	return b
}

// sub builds a (un)subscribe request of one channel for pairs.
func (h *Handler) sub(subscribe bool, channel string, pairs []string) []byte {
	if h.version == 1 {
		ev := "subscribe"
		if !subscribe {
			ev = "unsubscribe"
		}
		s := map[string]any{"name": channel}
		if channel == "book" {
			s["depth"] = h.depth
		}
		return mustJSON(map[string]any{"event": ev, "pair": pairs, "subscription": s})
	}
	method := "subscribe"
	if !subscribe {
		method = "unsubscribe"
	}
	p := map[string]any{"channel": channel, "symbol": pairs}
	if channel == "book" {
		p["depth"] = h.depth
	}
	return mustJSON(map[string]any{"method": method, "params": p})
}

// Subscribe implements live.Venue: v2 first asks for the instrument channel, so every pair's
// precision (for checksums and scales) is known before its book arrives.
func (h *Handler) Subscribe() [][]byte {
	var out [][]byte
	if h.version == 2 {
		out = append(out, mustJSON(map[string]any{"method": "subscribe", "params": map[string]any{"channel": "instrument", "snapshot": true}}))
	}
	for _, c := range h.cfg.Channels {
		out = append(out, h.sub(true, c, h.cfg.Symbols))
	}
	return out
}

// Resync implements live.Venue: unsubscribe and subscribe the pair's book again; Kraken then
// sends a fresh snapshot.
func (h *Handler) Resync(pair string) ([][]byte, string) {
	return [][]byte{h.sub(false, "book", []string{pair}), h.sub(true, "book", []string{pair})}, ""
}

// Ping implements live.Venue.
func (h *Handler) Ping() []byte {
	if h.version == 1 {
		return []byte(`{"event":"ping"}`)
	}
	return []byte(`{"method":"ping"}`)
}
