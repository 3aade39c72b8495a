package auth

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// Grant is the entitlement claim, "tw" in a token (docs/PROTOCOL.md, "Authentication"):
//
//	"tw": {"instruments": ["coinbase:*", "binance:BTCUSDT"], "channels": ["quote", "book"],
//	       "max_depth": 50, "replay": true, "max_subscriptions": 100, "max_connections": 5,
//	       "max_rate": 1, "delay": 900}
//
// instruments: patterns, each "*" (every instrument), "venue:*" (every instrument of a venue)
// or an exact id; none means nothing may be subscribed. channels: "quote", "book", "trades",
// "candles", "stats"; omitted means every channel. max_depth: the deepest book per side (0:
// the server's deepest). replay: may watch replay sessions. replay_control: may pause, seek
// and change the speed of any replay session (without it, only of a session that names the
// token's subject as a controller). max_subscriptions: instruments one connection may hold (0:
// the server's cap; never above it). max_connections: concurrent connections of the token's
// subject on one feed replica (0: no cap of its own). max_rate: updates per second per stream
// (0: every update; else each stream gets at most this many conflated snapshots a second).
// delay: seconds the live streams lag real time (0: real time; served from stored history).
type Grant struct {
	Instruments      []string `json:"instruments,omitempty"`
	Channels         []string `json:"channels,omitempty"`
	MaxDepth         uint32   `json:"max_depth,omitempty"`
	Replay           bool     `json:"replay,omitempty"`
	ReplayControl    bool     `json:"replay_control,omitempty"`
	MaxSubscriptions int      `json:"max_subscriptions,omitempty"`
	MaxConnections   int      `json:"max_connections,omitempty"`
	MaxRate          float64  `json:"max_rate,omitempty"`
	Delay            int64    `json:"delay,omitempty"`
}

// Bounds of a grant's rate and delay. MaxRateCeiling: a rate above it is no tier at all (the
// feed's own conflation works at that grain); MaxDelay: a day, beyond which a stream is history,
// not a delayed feed.
const (
	MinRate        = 0.01 // one update per 100 s
	MaxRateCeiling = 100
	MaxDelay       = 24 * 60 * 60
)

// Entitlements is a Grant compiled for checking: each check is a map lookup or a bit test, and
// runs on a command (subscribe, resync, an HTTP query), never per delivered frame.
type Entitlements struct {
	all              bool                // "*"
	venues           map[string]struct{} // "venue:*"
	exact            map[string]struct{} // exact ids
	channels         uint32              // bit per pb.Channel number
	MaxDepth         uint32              // 0: no cap
	Replay           bool
	ReplayControl    bool
	MaxSubscriptions int           // 0: no cap of its own
	MaxConnections   int           // 0: no cap of its own
	Interval         time.Duration // per stream, between updates (max_rate); 0: every update
	Delay            time.Duration // 0: real time
}

// channelNames maps a claim's channel names to channels.
var channelNames = map[string]pb.Channel{
	"quote":   pb.Channel_CHANNEL_QUOTE,
	"book":    pb.Channel_CHANNEL_BOOK,
	"trades":  pb.Channel_CHANNEL_TRADES,
	"candles": pb.Channel_CHANNEL_CANDLES,
	"stats":   pb.Channel_CHANNEL_STATS,
}

// maxPatterns bounds a grant's instrument patterns: a token is a header, not a database.
const maxPatterns = 1000

// Compile checks a Grant and compiles it. A pattern other than "*", "venue:*" or an exact
// "venue:SYMBOL" id, or an unknown channel name, is an error: a grant is never read loosely.
func (g Grant) Compile() (*Entitlements, error) {
	e := &Entitlements{MaxDepth: g.MaxDepth, Replay: g.Replay, ReplayControl: g.ReplayControl,
		MaxSubscriptions: g.MaxSubscriptions, MaxConnections: g.MaxConnections,
		Delay: time.Duration(g.Delay) * time.Second}
	if g.MaxSubscriptions < 0 || g.MaxConnections < 0 {
		return nil, fmt.Errorf("auth: negative limit in grant")
	}
	if g.MaxRate != 0 {
		if !(g.MaxRate >= MinRate && g.MaxRate <= MaxRateCeiling) { // also refuses NaN
			return nil, fmt.Errorf("auth: max_rate %v outside %v..%v updates a second", g.MaxRate, MinRate, MaxRateCeiling)
		}
		e.Interval = time.Duration(float64(time.Second) / g.MaxRate)
	}
	if g.Delay < 0 || g.Delay > MaxDelay {
		return nil, fmt.Errorf("auth: delay %d s outside 0..%d", g.Delay, MaxDelay)
	}
	if len(g.Instruments) > maxPatterns {
		return nil, fmt.Errorf("auth: %d instrument patterns, more than %d", len(g.Instruments), maxPatterns)
	}
	for _, p := range g.Instruments {
		venue, sym, ok := strings.Cut(p, ":")
		switch {
		case p == "*":
			e.all = true
		case !ok || venue == "" || sym == "" || strings.ContainsAny(venue, "*: ") || strings.ContainsAny(sym, " "):
			return nil, fmt.Errorf("auth: instrument pattern %q is not *, venue:* or venue:SYMBOL", p)
		case sym == "*":
			if e.venues == nil {
				e.venues = map[string]struct{}{}
			}
			e.venues[venue] = struct{}{}
		case strings.Contains(sym, "*"):
			return nil, fmt.Errorf("auth: instrument pattern %q: * only as the whole symbol", p)
		default:
			if e.exact == nil {
				e.exact = map[string]struct{}{}
			}
			e.exact[p] = struct{}{}
		}
	}
	if len(g.Channels) == 0 {
		for _, ch := range channelNames {
			e.channels |= 1 << uint(ch)
		}
	}
	for _, name := range g.Channels {
		ch, ok := channelNames[name]
		if !ok {
			return nil, fmt.Errorf("auth: unknown channel %q in grant", name)
		}
		e.channels |= 1 << uint(ch)
	}
	return e, nil
}

// ParseGrant reads a Grant from JSON (the "tw" claim, or an anonymous policy) and compiles it.
func ParseGrant(b []byte) (*Entitlements, error) {
	var g Grant
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&g); err != nil {
		return nil, fmt.Errorf("auth: grant: %w", err)
	}
	return g.Compile()
}

// Instrument reports whether the instrument id may be seen.
func (e *Entitlements) Instrument(id string) bool {
	if e == nil {
		return false
	}
	if e.all {
		return true
	}
	if _, ok := e.exact[id]; ok {
		return true
	}
	if venue, _, ok := strings.Cut(id, ":"); ok && e.venues != nil {
		_, ok := e.venues[venue]
		return ok
	}
	return false
}

// Venue reports whether any instrument of the venue may be seen: a venue wildcard subscription
// is refused when none may.
func (e *Entitlements) Venue(venue string) bool {
	if e == nil {
		return false
	}
	if e.all {
		return true
	}
	if _, ok := e.venues[venue]; ok {
		return true
	}
	for id := range e.exact {
		if v, _, _ := strings.Cut(id, ":"); v == venue {
			return true
		}
	}
	return false
}

// Channel reports whether the channel may be subscribed.
func (e *Entitlements) Channel(ch pb.Channel) bool {
	return e != nil && ch >= 0 && ch < 32 && e.channels&(1<<uint(ch)) != 0
}

// Depth returns the book depth granted for a request: the request when it is within the cap,
// else the cap (0 asks for the server default, which is capped the same way).
func (e *Entitlements) Depth(requested, serverDefault uint32) uint32 {
	d := requested
	if d == 0 {
		d = serverDefault
	}
	if e != nil && e.MaxDepth > 0 && d > e.MaxDepth {
		d = e.MaxDepth
	}
	return d
}
