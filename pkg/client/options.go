package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/tickwire/tickwire/pkg/wire"
)

// Defaults of Options. Each is chosen for a bot talking to a feed over the internet.
const (
	// DefaultBackoffMin is the shortest wait before a reconnect: long enough that a fleet of bots
	// does not hammer a feed that is restarting, short enough to lose little data.
	DefaultBackoffMin = 250 * time.Millisecond
	// DefaultBackoffMax caps the wait between reconnects, so recovery after a long outage is
	// never more than this late.
	DefaultBackoffMax = 30 * time.Second
	// DefaultHeartbeatTimeout is three times the feed's default heartbeat interval (5 s): a
	// connection that delivered nothing for three intervals is dead even if TCP has not noticed.
	DefaultHeartbeatTimeout = 15 * time.Second
	// DefaultHandshakeTimeout bounds the TCP connect, TLS and WebSocket upgrade together.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultWriteTimeout bounds the write of one frame (a command, a pong, a close); a frame
	// that cannot be written in this time means the connection is stuck: it is dropped and the
	// client reconnects.
	DefaultWriteTimeout = 10 * time.Second
	// DefaultMaxFrameSize bounds one server frame. The feed coalesces every pending update of a
	// connection into one frame; the answer to subscribing to every instrument with deep books is
	// the largest frame, a few MiB.
	DefaultMaxFrameSize = 16 << 20
)

// Options configure a Client. The zero value of every field but URL means its default.
type Options struct {
	// URL of the feed's WebSocket endpoint, ws://host:port/ws or wss://host/ws. Required.
	URL string
	// Subprotocol is wire.SubprotocolProto (default: binary protobuf) or wire.SubprotocolJSON.
	Subprotocol string
	// Header is sent with the upgrade request.
	Header http.Header
	// TokenSource, when set, is called before every connect (the first and each reconnect) and
	// by Refresh; its token is sent as "Authorization: Bearer <token>" on the upgrade (never in
	// the URL). Return a fresh token each time: a feed closes a connection whose token lapses
	// with 4005 (wire.CloseTokenExpired), and Run reconnects with a new one. An error fails
	// the connect and counts as a retryable failure. While connected, the client asks it again
	// before the token's exp (a fifth of its remaining life, at least 5 s, before) and sends the
	// new token in band, so a connection outlives its first token. See docs/PROTOCOL.md,
	// "Authentication".
	TokenSource func(ctx context.Context) (string, error)
	// Origin, when set, is sent as the Origin header; feeds check it against an allow-list.
	Origin string
	// TLSConfig is used for wss:// URLs; nil means the system roots and the URL's host name.
	// The server's certificate is always verified against the URL's host name (or
	// TLSConfig.ServerName) unless TLSConfig.InsecureSkipVerify is set.
	TLSConfig *tls.Config
	// CAFile, when set, is a PEM file of the CA certificate(s) that sign the feed's certificate
	// (a private CA): they replace the system roots for wss:// URLs. It is read by New; it
	// cannot be combined with TLSConfig.RootCAs.
	CAFile string

	// Handler receives the client's events on Run's goroutine. Nil means none.
	Handler Handler
	// Logger receives the client's own log records (connects, resyncs, decode errors). Nil
	// discards them: the package never prints.
	Logger *slog.Logger

	// BackoffMin and BackoffMax bound the wait before a reconnect: the n-th consecutive attempt
	// waits a uniformly random time in [BackoffMin, min(BackoffMax, BackoffMin*2^n)] ("full
	// jitter" above a floor). The count restarts once a connection delivers a frame.
	BackoffMin, BackoffMax time.Duration
	// HeartbeatTimeout: when nothing arrives for this long, the connection is dropped and the
	// client reconnects. Set it to three times the feed's heartbeat interval.
	HeartbeatTimeout time.Duration
	// HandshakeTimeout bounds connecting and upgrading.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds writing one frame: a command, a pong or a close. Each write has its own
	// deadline, cleared after it; a write that misses it drops the connection (ErrWriteTimeout).
	WriteTimeout time.Duration
	// MaxFrameSize is the largest server frame accepted, in bytes; a larger one drops the
	// connection.
	MaxFrameSize int
	// CompactQuotes asks the feed for quote deltas in their compact form (about a third of the
	// bytes; binary subprotocol only). Updates carry the whole Delta either way: the client
	// expands each CompactQuote against the quote it holds (docs/PROTOCOL.md, "Compact quotes").
	CompactQuotes bool
	// WaitForInstruments subscribes with Subscribe.wait: an instrument that does not exist yet
	// (a venue not connected, a new listing) is answered with Pending instead of an
	// UNKNOWN_INSTRUMENT error, and its OnSubscribed and snapshots come when its first event
	// reaches the feed. It applies to every Subscribe, and again on every reconnect.
	WaitForInstruments bool
}

// withDefaults returns o with its defaults applied, or an error for an invalid field.
func (o Options) withDefaults() (Options, error) {
	if o.URL == "" {
		return o, errors.New("client: Options.URL is required")
	}
	u, err := url.Parse(o.URL)
	if err != nil {
		return o, fmt.Errorf("client: Options.URL: %w", err)
	}
	if (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return o, fmt.Errorf("client: Options.URL %q is not ws://host/... or wss://host/...", o.URL)
	}
	if o.CAFile != "" {
		if o.TLSConfig != nil && o.TLSConfig.RootCAs != nil {
			return o, errors.New("client: Options.CAFile and TLSConfig.RootCAs both set")
		}
		pool, err := LoadCAFile(o.CAFile)
		if err != nil {
			return o, err
		}
		cfg := &tls.Config{}
		if o.TLSConfig != nil {
			cfg = o.TLSConfig.Clone()
		}
		cfg.RootCAs = pool
		o.TLSConfig = cfg
	}
	switch o.Subprotocol {
	case "":
		o.Subprotocol = wire.SubprotocolProto
	case wire.SubprotocolProto, wire.SubprotocolJSON:
	default:
		return o, fmt.Errorf("client: unknown subprotocol %q", o.Subprotocol)
	}
	if o.Handler == nil {
		o.Handler = BaseHandler{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.BackoffMin <= 0 {
		o.BackoffMin = DefaultBackoffMin
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = max(DefaultBackoffMax, o.BackoffMin)
	}
	if o.BackoffMax < o.BackoffMin {
		return o, fmt.Errorf("client: BackoffMax %v below BackoffMin %v", o.BackoffMax, o.BackoffMin)
	}
	if o.HeartbeatTimeout <= 0 {
		o.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.MaxFrameSize <= 0 {
		o.MaxFrameSize = DefaultMaxFrameSize
	}
	return o, nil
}

// LoadCAFile reads a PEM file of CA certificates into a pool, for tls.Config.RootCAs.
func LoadCAFile(name string) (*x509.CertPool, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("client: CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("client: CA file %s holds no PEM certificate", name)
	}
	return pool, nil
}

// backoff returns the wait before reconnect attempt n (0 for the first after a loss).
func (o *Options) backoff(n int) time.Duration {
	ceil := o.BackoffMax
	if n < 30 {
		if c := o.BackoffMin << (n + 1); c > 0 && c < ceil {
			ceil = c
		}
	}
	return o.BackoffMin + rand.N(ceil-o.BackoffMin+1)
}
