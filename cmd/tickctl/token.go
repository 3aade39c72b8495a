package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/tickwire/tickwire/internal/auth"
)

// tokenCmd mints a feed token signed with an HS256 key file (docs/OPERATIONS.md, "Tokens").
type tokenCmd struct {
	KeyFile          string        `name:"key-file" required:"" placeholder:"FILE" help:"HS256 secret (the feed's --auth-hs256-key-file)."`
	NewKey           bool          `name:"new-key" help:"Create --key-file with a random secret (mode 0600) when it does not exist."`
	Sub              string        `required:"" help:"Subject (sub): who the token is for."`
	Instruments      []string      `default:"*" placeholder:"PATTERN" help:"Instrument patterns: *, venue:* or venue:SYMBOL (comma-separated or repeated)."`
	Channels         []string      `placeholder:"CH" help:"Channels: quote, book, trades, candles, stats (default: every channel)."`
	MaxDepth         uint32        `name:"max-depth" help:"Deepest book per side (0: the feed's deepest)."`
	Replay           bool          `help:"May watch replay sessions."`
	ReplayControl    bool          `name:"replay-control" help:"May pause, seek and change the speed of any replay session (implies --replay)."`
	MaxRate          float64       `name:"max-rate" placeholder:"N" help:"Updates per second per stream, as conflated snapshots (0: every update; else 0.01..100)."`
	Delay            time.Duration `placeholder:"D" help:"Live streams lag real time by this much (whole seconds, at most 24h; 0: real time)."`
	MaxSubscriptions int           `name:"max-subscriptions" help:"Instruments per connection (0: the feed's cap)."`
	MaxConnections   int           `name:"max-connections" help:"Concurrent connections of this subject per feed replica (0: no cap of its own)."`
	Issuer           string        `help:"iss (the feed's --auth-issuer, if it checks one)."`
	Audience         string        `help:"aud (the feed's --auth-audience, if it checks one)."`
	TTL              time.Duration `default:"1h" help:"Lifetime from now (exp)."`
}

func (c *tokenCmd) Help() string {
	return `Prints a signed token (JWT, HS256) on stdout. Its "tw" claim carries the entitlements (docs/PROTOCOL.md, "Authentication").

Examples:
  tickctl token --key-file .data/feed-hs256.key --sub alice --instruments 'coinbase:*,binance:BTCUSDT' --channels quote,book --max-depth 10 --ttl 8h
  TICKWIRE_TOKEN=$(tickctl token --key-file .data/feed-hs256.key --sub bot-1 --ttl 1h) tickctl tail
  tickctl token --key-file .data/feed-hs256.key --sub retail-1 --max-rate 1 --delay 15m --ttl 24h   # delayed, one update a second`
}

func (c *tokenCmd) Run(e *env) error {
	if c.NewKey {
		if err := createKey(c.KeyFile); err != nil {
			return err
		}
	}
	secret, err := auth.ReadSecret(c.KeyFile)
	if err != nil {
		return fmt.Errorf("--key-file: %w", err)
	}
	if c.Delay%time.Second != 0 || c.Delay < 0 {
		return usageErr("--delay %v: a whole number of seconds, not negative", c.Delay)
	}
	tok, err := auth.MintHS256(secret, auth.MintOptions{Subject: c.Sub, Issuer: c.Issuer, Audience: c.Audience, TTL: c.TTL,
		Grant: auth.Grant{Instruments: c.Instruments, Channels: c.Channels, MaxDepth: c.MaxDepth,
			Replay: c.Replay || c.ReplayControl, ReplayControl: c.ReplayControl,
			MaxSubscriptions: c.MaxSubscriptions, MaxConnections: c.MaxConnections,
			MaxRate: c.MaxRate, Delay: int64(c.Delay / time.Second)}})
	if err != nil {
		return usageErr("%v", err)
	}
	fmt.Fprintln(e.stdout, tok)
	return nil
}

// createKey writes a random HS256 secret to path (0600) unless the file exists.
func createKey(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(append(auth.NewSecret(), '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
