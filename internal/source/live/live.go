// Package live is the live transport of venue adapters: it connects to a venue's WebSocket,
// subscribes, answers pings, feeds every frame to the venue Handler, acts on the Handler's
// resync decisions (send frames, or fetch a REST snapshot), and reconnects with jittered
// backoff after any failure, subscribing again (every book then restarts from a snapshot).
//
// Goroutines: Run's own (the only one that touches the Handler), the gws read loop of the
// current connection, and at most one REST fetch per symbol at a time; all are owned by Run and
// awaited before it returns. The queue from the read loop to Run is bounded (Config.QueueLen):
// when it is full the read loop waits, and TCP pushes back on the venue.
package live

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/lxzan/gws"

	"github.com/tickwire/tickwire/internal/source"
	"github.com/tickwire/tickwire/internal/source/capture"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// Venue is what a live connection needs from a venue adapter beyond its Handler.
type Venue interface {
	source.Handler
	// URL returns the WebSocket URL to dial.
	URL() string
	// Subscribe returns the frames to send after connecting.
	Subscribe() [][]byte
	// Resync returns how to resync symbol's book: frames to send on the connection, or a URL to
	// GET whose body is handed to Handle as a Frame with URL set (Binance's REST snapshot).
	Resync(symbol string) (send [][]byte, fetch string)
	// Ping returns the venue's application-level ping frame, or nil to send a WebSocket ping.
	Ping() []byte
}

// ReferenceSource is a Venue whose reference data (tick, lot) is fetched over REST: each URL's
// body is handed to Handle as a Frame with URL set (and recorded), once before each
// connection and again every ReferenceInterval, so a changed grid is announced.
type ReferenceSource interface {
	ReferenceURLs() []string
}

// Defaults of Config. The backoff doubles from MinBackoff to MaxBackoff with full jitter, so
// many ingest processes do not reconnect in step after a venue outage.
const (
	DefaultPingInterval      = 15 * time.Second
	DefaultReadTimeout       = 60 * time.Second // every venue sends something (heartbeats) within 60 s
	DefaultMinBackoff        = 250 * time.Millisecond
	DefaultMaxBackoff        = 30 * time.Second
	DefaultQueueLen          = 1024 // frames; ~100 ms of a busy multi-pair feed
	DefaultFetchTimeout      = 10 * time.Second
	DefaultResyncMinInterval = time.Second // per symbol: a book that keeps failing does not hammer the venue
	DefaultReferenceInterval = time.Hour   // reference data refetched (tick sizes change rarely)
	// stableAfter: a connection that lived this long resets the backoff.
	stableAfter = 30 * time.Second
)

// Config configures a Source.
type Config struct {
	PingInterval      time.Duration
	ReadTimeout       time.Duration
	MinBackoff        time.Duration
	MaxBackoff        time.Duration
	QueueLen          int
	FetchTimeout      time.Duration
	ResyncMinInterval time.Duration
	ReferenceInterval time.Duration
	// HTTPClient fetches REST snapshots (default: a client with FetchTimeout).
	HTTPClient *http.Client
	// Recorder, if set, records every frame received and sent (a capture of the live run).
	Recorder *capture.Recorder
}

func (c *Config) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.PingInterval, DefaultPingInterval)
	def(&c.ReadTimeout, DefaultReadTimeout)
	def(&c.MinBackoff, DefaultMinBackoff)
	def(&c.MaxBackoff, DefaultMaxBackoff)
	def(&c.FetchTimeout, DefaultFetchTimeout)
	def(&c.ResyncMinInterval, DefaultResyncMinInterval)
	def(&c.ReferenceInterval, DefaultReferenceInterval)
	if c.QueueLen <= 0 {
		c.QueueLen = DefaultQueueLen
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: c.FetchTimeout}
	}
}

// Source runs a Venue live. It implements ingest.Source, ingest.SnapshotRequester and
// ingest.BreakReporter.
type Source struct {
	v      Venue
	cfg    Config
	logger *slog.Logger
	reqs   source.Requests

	frames     int64                // Run's goroutine only
	lastResync map[string]time.Time // Run's goroutine only
	deferred   map[string]bool      // Run's goroutine only: resyncs waiting for ResyncMinInterval
	fetching   map[string]bool      // Run's goroutine only

	mu    sync.Mutex
	conns int // guarded by mu: connections made (for tests and logs)
}

// New returns a Source.
func New(v Venue, cfg Config, logger *slog.Logger) *Source {
	cfg.defaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Source{v: v, cfg: cfg, logger: logger.With("component", "live", "source", v.Stats().Name()),
		lastResync: map[string]time.Time{}, deferred: map[string]bool{}, fetching: map[string]bool{}}
}

// Name implements ingest.Source.
func (s *Source) Name() string { return s.v.Stats().Name() }

// Venue returns the venue adapter.
func (s *Source) Venue() Venue { return s.v }

// Connections returns how many connections were made so far.
func (s *Source) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// RequestSnapshot implements ingest.SnapshotRequester.
func (s *Source) RequestSnapshot(instrument string) { s.reqs.Add(instrument) }

// SetBreakHandler implements ingest.BreakReporter.
func (s *Source) SetBreakHandler(f func(string)) { s.v.SetBreakHandler(f) }

// errEmit marks an emit failure: it ends Run (reconnecting would not help).
type errEmit struct{ err error }

func (e *errEmit) Error() string { return e.err.Error() }
func (e *errEmit) Unwrap() error { return e.err }

// Run implements ingest.Source: it returns nil when ctx ends, or emit's error.
func (s *Source) Run(ctx context.Context, emit func(*tickwirev1.Event) error) error {
	attempt := 0
	for {
		start := time.Now()
		err := s.session(ctx, emit)
		var ee *errEmit
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.As(err, &ee):
			return ee.err
		}
		s.v.Reset(strconv.Itoa(s.Connections()))
		clear(s.fetching)
		if time.Since(start) > stableAfter {
			attempt = 0
		}
		wait := Backoff(attempt, s.cfg.MinBackoff, s.cfg.MaxBackoff)
		attempt++
		s.logger.Warn("venue connection lost; reconnecting", "err", err, "in", wait.String(), "attempt", attempt)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Backoff returns the wait before reconnect attempt n (0-based): a uniformly random duration
// up to min(max, min*2^n) ("full jitter"), at least min/2.
func Backoff(n int, minD, maxD time.Duration) time.Duration {
	ceil := minD
	for i := 0; i < n && ceil < maxD; i++ {
		ceil *= 2
	}
	ceil = min(ceil, maxD)
	return minD/2 + time.Duration(rand.Int64N(int64(ceil-minD/2)+1))
}

type fetchResult struct {
	symbol, url string
	body        []byte
	recvNs      int64
}

// handler is the gws event handler of one connection.
type handler struct {
	gws.BuiltinEventHandler
	in     chan source.Frame
	done   chan struct{} // closed when the session ends: stop blocking on in
	closed chan error    // OnClose's error, once
	conn   string
}

func (h *handler) OnPing(c *gws.Conn, payload []byte) { _ = c.WritePong(payload) }

func (h *handler) OnMessage(_ *gws.Conn, m *gws.Message) {
	f := source.Frame{Conn: h.conn, RecvNs: time.Now().UnixNano(), Data: append([]byte(nil), m.Bytes()...)}
	m.Close()
	f.IngestNs = f.RecvNs
	select {
	case h.in <- f:
	case <-h.done:
	}
}

func (h *handler) OnClose(_ *gws.Conn, err error) { h.closed <- err }

func (s *Source) session(ctx context.Context, emit source.Emit) error {
	s.mu.Lock()
	s.conns++
	connID := strconv.Itoa(s.conns)
	s.mu.Unlock()
	h := &handler{in: make(chan source.Frame, s.cfg.QueueLen), done: make(chan struct{}), closed: make(chan error, 1), conn: connID}
	// Reference data before the stream, so the first frames find it. One attempt: a venue
	// whose reference data cannot be had is still streamed (tick and lot not known).
	var refs []fetchResult
	for _, u := range s.referenceURLs() {
		body, err := s.get(ctx, u)
		if err != nil {
			s.logger.Warn("reference data fetch failed; tick and lot not known until it succeeds", "url", u, "err", err)
			continue
		}
		refs = append(refs, fetchResult{url: u, body: body, recvNs: time.Now().UnixNano()})
	}
	url := s.v.URL()
	conn, _, err := gws.NewClient(h, &gws.ClientOption{Addr: url, ReadMaxPayloadSize: 64 << 20, HandshakeTimeout: 10 * time.Second})
	if err != nil {
		return fmt.Errorf("live: dial %s: %w", url, err)
	}
	s.logger.Info("connected", "url", url, "conn", connID)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		conn.ReadLoop()
	}()
	fetchCtx, cancelFetch := context.WithCancel(ctx)
	fetched := make(chan fetchResult)
	defer func() {
		cancelFetch()
		close(h.done)
		_ = conn.NetConn().Close()
		wg.Wait() // read loop and fetches
	}()

	send := func(b []byte) error {
		if s.cfg.Recorder != nil {
			_ = s.cfg.Recorder.Record(&source.Frame{Conn: connID, RecvNs: time.Now().UnixNano(), Data: b}, "send")
		}
		if err := conn.WriteMessage(gws.OpcodeText, b); err != nil {
			return fmt.Errorf("live: write: %w", err)
		}
		return nil
	}
	for _, b := range s.v.Subscribe() {
		if err := send(b); err != nil {
			return err
		}
	}
	handle := func(f *source.Frame) error {
		s.frames++
		f.N = s.frames
		if s.cfg.Recorder != nil {
			_ = s.cfg.Recorder.Record(f, "recv")
		}
		if err := s.v.Handle(f, emit); err != nil {
			return &errEmit{err}
		}
		if err := s.reqs.Serve(s.v, f.IngestNs, emit); err != nil {
			return &errEmit{err}
		}
		return s.resyncs(fetchCtx, &wg, fetched, send, s.v.TakeResyncs(), false)
	}

	for _, r := range refs {
		f := source.Frame{Conn: "rest", RecvNs: r.recvNs, IngestNs: r.recvNs, URL: r.url, Data: r.body}
		if err := handle(&f); err != nil {
			return err
		}
	}
	refresh := time.NewTicker(s.cfg.ReferenceInterval)
	defer refresh.Stop()
	ping := time.NewTicker(s.cfg.PingInterval)
	defer ping.Stop()
	retry := time.NewTicker(s.cfg.ResyncMinInterval / 4)
	defer retry.Stop()
	idle := time.NewTimer(s.cfg.ReadTimeout)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			_ = conn.WriteClose(1000, nil)
			return ctx.Err()
		case err := <-h.closed:
			if err == nil {
				err = io.EOF
			}
			return fmt.Errorf("live: connection closed: %w", err)
		case f := <-h.in:
			idle.Reset(s.cfg.ReadTimeout)
			if err := handle(&f); err != nil {
				return err
			}
		case r := <-fetched:
			delete(s.fetching, r.symbol)
			f := source.Frame{Conn: "rest", RecvNs: r.recvNs, IngestNs: r.recvNs, URL: r.url, Data: r.body}
			if err := handle(&f); err != nil {
				return err
			}
		case <-retry.C:
			var due []string
			for sym := range s.deferred {
				due = append(due, sym)
			}
			if err := s.resyncs(fetchCtx, &wg, fetched, send, due, true); err != nil {
				return err
			}
		case <-refresh.C:
			for _, u := range s.referenceURLs() {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s.fetch(fetchCtx, "", u, fetched)
				}()
			}
		case <-ping.C:
			var err error
			if p := s.v.Ping(); p != nil {
				err = send(p)
			} else {
				err = conn.WritePing(nil)
			}
			if err != nil {
				return fmt.Errorf("live: ping: %w", err)
			}
		case <-idle.C:
			return fmt.Errorf("live: no frame for %s", s.cfg.ReadTimeout)
		}
	}
}

func (s *Source) referenceURLs() []string {
	if r, ok := s.v.(ReferenceSource); ok {
		return r.ReferenceURLs()
	}
	return nil
}

// resyncs acts on resync decisions: at most one per symbol per ResyncMinInterval (later ones
// wait in deferred), REST fetches one at a time per symbol.
func (s *Source) resyncs(ctx context.Context, wg *sync.WaitGroup, fetched chan<- fetchResult, send func([]byte) error, symbols []string, retry bool) error {
	now := time.Now()
	for _, sym := range symbols {
		if retry && !s.deferred[sym] {
			continue
		}
		if last, ok := s.lastResync[sym]; ok && now.Sub(last) < s.cfg.ResyncMinInterval {
			s.deferred[sym] = true
			continue
		}
		delete(s.deferred, sym)
		s.lastResync[sym] = now
		frames, fetch := s.v.Resync(sym)
		s.logger.Info("resyncing book", "symbol", sym, "fetch", fetch)
		for _, b := range frames {
			if err := send(b); err != nil {
				return err
			}
		}
		if fetch != "" && !s.fetching[sym] {
			s.fetching[sym] = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.fetch(ctx, sym, fetch, fetched)
			}()
		}
	}
	return nil
}

// fetch GETs url until it succeeds or ctx ends, with jittered backoff, and delivers the body.
func (s *Source) fetch(ctx context.Context, symbol, url string, out chan<- fetchResult) {
	for attempt := 0; ; attempt++ {
		body, err := s.get(ctx, url)
		if err == nil {
			select {
			case out <- fetchResult{symbol: symbol, url: url, body: body, recvNs: time.Now().UnixNano()}:
			case <-ctx.Done():
			}
			return
		}
		if ctx.Err() != nil {
			return
		}
		wait := Backoff(attempt, s.cfg.MinBackoff, s.cfg.MaxBackoff)
		s.logger.Warn("snapshot fetch failed; retrying", "symbol", symbol, "err", err, "in", wait.String())
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// maxSnapshot bounds a REST snapshot body (a 5000-level Binance snapshot is ~300 KB).
const maxSnapshot = 16 << 20

func (s *Source) get(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.FetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxSnapshot))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return body, nil
}
