package feed

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/tickwire/tickwire/internal/fanout"
	"github.com/tickwire/tickwire/pkg/market"
)

// Config configures the feed server. The zero value is a working default for one machine.
type Config struct {
	// AllowedOrigins lists the browser origins ("http://host:port") allowed to connect; "*"
	// allows any. With none, a browser must come from the same host it connects to. Requests
	// without an Origin header (bots) are always allowed: origin checks protect browsers only.
	AllowedOrigins []string
	// TrustedProxies are the load balancers in front of the feed (addresses or prefixes): a
	// request whose TCP peer is one of them is counted, by the per-address limits, under the
	// client address the proxy appended to X-Forwarded-For (clientaddr.go). None: the peer.
	TrustedProxies []netip.Prefix
	// MaxConnsPerIP caps concurrent connections from one address (0: 256, negative: none).
	// Enough for a few hundred bots behind one NAT; one host cannot take the whole server.
	MaxConnsPerIP int
	// MaxConns caps concurrent connections in all (0: 50,000, negative: none): about 650 MiB of
	// idle connections, far from what one replica should carry.
	MaxConns int
	// IdleTimeout closes a connection that has held no subscription for this long, answering
	// pings or not (0: 60 s; negative: never).
	IdleTimeout time.Duration
	// MaxSubscriptions caps the instruments one connection may hold (0: 10000).
	MaxSubscriptions int
	// ReadLimit is the largest client frame accepted, in bytes (0: 16 KiB). Commands are small.
	ReadLimit int
	// ReadTimeout closes a connection from which nothing arrived (not even a pong) for this
	// long (0: 45 s: three ping intervals).
	ReadTimeout time.Duration
	// CommandRate and CommandBurst rate-limit client commands per connection (0: 50/s, burst 200).
	CommandRate  float64
	CommandBurst int
	// SnapshotRate and SnapshotBurst are each connection's budget for the snapshots it asks for
	// (Subscribe, Resync), in encoded bytes: a bucket of SnapshotBurst bytes that refills at
	// SnapshotRate bytes/s (0: 256 KiB/s, burst 2 MiB or the queue's hard limit if less; a
	// negative rate: no budget; a burst set above the hard limit is invalid). A snapshot
	// whose bytes the bucket does not hold is deferred until it does (see owner.request), so a
	// client resyncing in a loop costs at most the rate, however cheap its commands are. The
	// burst fits a dashboard's first subscribe (50 instruments, every channel, a 50-level book,
	// full trade and candle history: 1.2 MB as protobuf, TestDefaultSnapshotBurstCoversDashboard);
	// the rate is a full-history instrument's every channel ten times a second, far above what
	// a client that applies what it gets needs, and a tenth of what the Resync flood of
	// issue 14 drew. Snapshots the server sends on its own (conflation, a new epoch, a book
	// reset) are not charged.
	SnapshotRate  int
	SnapshotBurst int
	// Owners is the number of goroutines that own instruments (0: 8). Instruments are sharded
	// over them by a hash of their id; a fixed count keeps an instrument's owner stable.
	Owners int
	// OwnerQueue bounds the events waiting for one owner (0: 8192); a full queue holds back the
	// NATS consumer instead of growing.
	OwnerQueue int
	// SocketWriteBuffer sets each connection's kernel send buffer, in bytes (0: 256 KiB;
	// negative: the system default). Small on purpose: a backlog should build in the bounded,
	// accounted queue where conflation can act, not in megabytes of kernel memory.
	SocketWriteBuffer int
	// ResumeHistory is how many recent deltas (all streams together) each instrument keeps so a
	// reconnecting client can resume from its position (0: 2048; negative: none). It is the
	// resume window: a client away longer than that gets a HISTORY_GONE snapshot instead.
	ResumeHistory int
	// ResumeHistoryBytes bounds the memory of each instrument's resume history as well (0: no
	// bound but ResumeHistory): the deltas' encodings plus 48 bytes each. Book deltas are
	// larger than quotes, so the same count can cost several times the memory; with many
	// instruments this is most of a feed's memory (docs/SCALING.md).
	ResumeHistoryBytes int
	// ResumeWait is how long a resume whose position this feed has not reached yet waits for
	// it (0: 2 s; negative: not at all). Such a client comes from a replica that is ahead:
	// answered at once it would get a HISTORY_GONE snapshot older than what it holds, and then
	// deltas it already had.
	ResumeWait time.Duration
	// StaleAfter is how long an instrument that should be live (not halted or closed) may go
	// without an event before it counts as stale (stale.go) (0: DefaultStaleAfter, a minute;
	// negative: never). StaleRules override it for the instruments they match. /readyz
	// reports not ready ("stale") while every live instrument is stale.
	StaleAfter time.Duration
	StaleRules []StaleRule
	// Market shapes each instrument's state (book depths offered, history kept).
	Market market.Config
	// Conn bounds each connection's outbound queue.
	Conn fanout.Config
	// Candles bounds what GET /api/candles may cost (candles.go).
	Candles CandlesConfig
	// Auth verifies tokens and grants anonymous access (auth.go). The zero value turns
	// authentication off: for tests and embedding; cmd/feed always turns it on.
	Auth AuthConfig
	// MaxDelayTiers bounds the distinct token delays served at once (delayed.go): each runs its
	// own state, fed by its own reader of the stored stream (0: 4; negative: none, and delayed
	// tokens are refused).
	MaxDelayTiers int
}

func (c Config) withDefaults() Config {
	if c.MaxConnsPerIP == 0 {
		c.MaxConnsPerIP = 256
	}
	if c.MaxConns == 0 {
		c.MaxConns = 50000
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = time.Minute
	}
	if c.MaxSubscriptions <= 0 {
		c.MaxSubscriptions = 10000
	}
	if c.ReadLimit <= 0 {
		c.ReadLimit = 16 << 10
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 45 * time.Second
	}
	if c.CommandRate <= 0 {
		c.CommandRate = 50
	}
	if c.CommandBurst <= 0 {
		c.CommandBurst = 200
	}
	if c.SnapshotRate == 0 {
		c.SnapshotRate = 256 << 10
	}
	if c.SnapshotBurst <= 0 {
		c.SnapshotBurst = min(2<<20, c.Conn.WithDefaults().HardLimit)
	}
	if c.Owners <= 0 {
		c.Owners = 8
	}
	if c.SocketWriteBuffer == 0 {
		c.SocketWriteBuffer = 256 << 10
	}
	if c.ResumeHistory == 0 {
		c.ResumeHistory = 2048
	}
	if c.ResumeWait == 0 {
		c.ResumeWait = 2 * time.Second
	}
	if c.OwnerQueue <= 0 {
		c.OwnerQueue = 8192
	}
	if c.StaleAfter == 0 {
		c.StaleAfter = DefaultStaleAfter
	}
	if c.MaxDelayTiers == 0 {
		c.MaxDelayTiers = 4
	}
	c.Market = c.Market.WithDefaults()
	c.Candles = c.Candles.withDefaults()
	return c
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	c = c.withDefaults()
	if err := c.Market.Validate(); err != nil {
		return fmt.Errorf("feed: %w", err)
	}
	if err := c.Candles.validate(); err != nil {
		return err
	}
	if c.Owners > 1024 {
		return fmt.Errorf("feed: %d owners is more than 1024", c.Owners)
	}
	if ping := c.Conn.WithDefaults().PingInterval; c.ReadTimeout <= ping {
		return fmt.Errorf("feed: read timeout %v must exceed the ping interval %v, or answering clients are closed", c.ReadTimeout, ping)
	}
	if hard := c.Conn.WithDefaults().HardLimit; c.SnapshotRate >= 0 && c.SnapshotBurst > hard {
		// The queue would close a client that takes the snapshots it is allowed at once.
		return fmt.Errorf("feed: snapshot burst %d above the queue hard limit %d", c.SnapshotBurst, hard)
	}
	if c.ResumeHistoryBytes < 0 {
		return fmt.Errorf("feed: resume history bytes %d is negative (0: no byte bound)", c.ResumeHistoryBytes)
	}
	if c.ReadLimit < 256 {
		return fmt.Errorf("feed: read limit %d below 256 bytes", c.ReadLimit)
	}
	for _, r := range c.StaleRules {
		if err := r.validate(); err != nil {
			return err
		}
	}
	return nil
}
