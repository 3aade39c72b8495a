// Package client is the Go SDK for Tickwire bots: a WebSocket client of the feed that keeps an
// exact, verified copy of the instruments it subscribes to.
//
// A Client holds the desired subscriptions and, per instrument, a market.Replica built from the
// server's snapshots and deltas. Every delta is checked against the stream's position (epoch,
// seq, prev_seq) and, for the book, the checksum of the top levels; a stream that breaks is
// resynced on its own (one Resync for that instrument and channel; nothing else is disturbed).
// Lost connections are retried with jittered exponential backoff, and every subscription is
// sent again on the new connection, whose snapshots refill the replicas.
//
// The caller owns the loop, as with gws: Run reads and dispatches until its context ends, and
// calls the Handler on its own goroutine. Subscribe, Unsubscribe, Resync, ListInstruments,
// View and Stats are safe from any goroutine, before or during Run.
//
//	c, err := client.New(client.Options{URL: "ws://127.0.0.1:8080/ws", Handler: myHandler{}})
//	if err != nil { ... }
//	c.Subscribe(client.Subscription{Instruments: []string{"coinbase:BTC-USD"}})
//	err = c.Run(ctx) // nil when ctx ends; a *CloseError when the server says not to come back
//
// A Subscription may name a venue wildcard, "coinbase:*": every instrument of the venue that
// the token entitles, those listed now and those listed later, each with its own replica; the
// handler meets each at its OnSubscribed. With Options.WaitForInstruments, named instruments
// that do not exist yet are subscribed when they appear.
//
// Prices and sizes are integer mantissas at the instrument's scale (InstrumentInfo.price_scale,
// size_scale); FormatDecimal prints them exactly.
//
// Options.CompactQuotes asks for quote deltas in the compact form (about 22 bytes instead of
// about 55, for bots following many quotes over a thin link): the client expands each one
// against the quote it holds, checks it like any delta, and hands the handler the whole Delta,
// with its times truncated to the microsecond.
//
// A replay session (docs/PROTOCOL.md, "Replay sessions") is watched like live data, on
// ws://host/ws?replay=<session>: a handler that also implements ReplayStatusHandler follows the
// session's state (RUNNING, PAUSED, FINISHED). The session's instruments exist on that
// connection once the replay has reached them; ListInstruments lists them, with their
// reference data, from then on (see examples/replay).
package client
