// Package feed is the feed server: it keeps every instrument's state from the events it is
// given, and streams snapshots and deltas to WebSocket clients (docs/PROTOCOL.md).
//
// Goroutines: one per owner (instrument shards), the fanout.Writer's shards (each writes its
// share of the connections), and per connection its read loop (readLoop: our own validating
// frame reader; gws only does the handshake). All are started through Server.launch and awaited
// by Shutdown. Every write to a connection goes through its fanout.Conn (pongs and close frames
// too), so its shard is the socket's only writer.
//
// Start (Service.Run): a replica is ready once it holds the state after every stored event. It
// gets there from the latest state checkpoint in JetStream plus the events after it, or from the
// whole stream on a first start or when no checkpoint is usable, and takes a checkpoint itself at
// most every Setup.CheckpointInterval once ready. checkpoint.go has the design: what a checkpoint
// holds, why it is exactly the state after its stream sequence, where it is kept, who writes it,
// and the fallbacks.
package feed

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/fanout"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// Server is the feed server. Create it with New; it is ready to take events at once, and
// reports ready on /readyz after SetReady(true).
type Server struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	hub     *Hub
	writer  *fanout.Writer // writes every connection
	candles *candles       // GET /api/candles: the candle store and the request limits
	stale   *staleness     // when each instrument last had an event: /readyz (stale.go)

	upgradeNamed *gws.Upgrader // for requests that name subprotocols
	upgradePlain *gws.Upgrader // for requests that name none: binary protobuf

	wg       sync.WaitGroup
	quit     chan struct{}
	ready    atomic.Bool
	warmup   atomic.Pointer[warmup] // progress through the stored events (Service.Run; checkpoint.go)
	stopping atomic.Bool
	nextID   atomic.Uint64

	mu sync.Mutex
	// guarded by mu:
	sessions  map[*session]struct{}
	perIP     map[string]int // connections per client address
	conns     int            // connections in all (admitted, not yet released)
	replaySrc ReplaySource
	history   EventSource
	replays   map[string]*replaySession
	// replayStart, when set, starts replay sessions on POST /api/replays (replaystart.go).
	replayStart *replayStarter
	delays      map[time.Duration]*delayTier // running delay tiers (delayed.go)
	subjects    map[string]int               // connections per token subject (auth.go)

	// httpRefused counts /api requests refused by authentication or entitlement, by reason.
	httpRefused *prometheus.CounterVec

	// rev is the token revocation watch (revoke.go).
	rev *revocationState

	shutdownOnce sync.Once
	shutdownErr  error
}

// ErrServerClosed is returned by Shutdown when called again after a completed shutdown.
var ErrServerClosed = errors.New("feed: server closed")

// New builds a server and starts its owners. A nil logger discards logs; a nil registerer
// skips metric registration.
func New(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:      cfg,
		log:      logger,
		metrics:  newMetrics(reg),
		quit:     make(chan struct{}),
		sessions: make(map[*session]struct{}),
		perIP:    make(map[string]int),
		replays:  make(map[string]*replaySession),
		delays:   make(map[time.Duration]*delayTier),
		subjects: make(map[string]int),
		rev:      newRevocationState(reg),
		httpRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tickwire_feed_http_refused_total",
			Help: "/api requests refused: unauthorized (no or a bad token), not_entitled, token_in_url."}, []string{"reason"}),
	}
	s.hub = newHub(cfg, logger, s.metrics)
	if reg != nil {
		reg.MustRegister(s.httpRefused, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tickwire_feed_resume_history_bytes",
			Help: "Memory held by the live instruments' resume histories: the kept deltas' encodings plus 48 bytes each (--resume-history, --resume-history-bytes)."},
			func() float64 { return float64(s.hub.resumeHistoryBytes()) }))
	}
	s.candles = newCandles(cfg.Candles, reg)
	// gws does the handshake only: readLoop reads the frames, and the connection's fanout.Conn
	// writes them, so gws's read options (limits, buffers, parallelism) do not apply.
	opt := func(protocols []string) *gws.ServerOption {
		return &gws.ServerOption{
			SubProtocols:     protocols,
			HandshakeTimeout: 5 * time.Second,
			Logger:           gwsLogger{logger},
		}
	}
	s.upgradeNamed = gws.NewUpgrader(gws.BuiltinEventHandler{}, opt([]string{wire.SubprotocolProto, wire.SubprotocolJSON}))
	s.upgradePlain = gws.NewUpgrader(gws.BuiltinEventHandler{}, opt(nil))
	s.stale = newStaleness(cfg, nil, logger, reg)
	s.launch(func() { s.stale.run(s.quit) })
	s.hub.start(s.launch, s.quit)
	s.writer = fanout.NewWriter(cfg.Conn)
	s.writer.Start(s.launch, s.quit)
	if v := cfg.Auth.Verifier; v != nil {
		s.launch(func() { v.Watch(s.quit) }) // the JWKS file reloads when it changes
	}
	return s, nil
}

// EnableSnapshotRequests lets the feed ask for a fresh snapshot of an instrument whose book is
// not whole while someone is subscribed to it (a missed event, or a feed that joined the stream
// midway), at most once a second per instrument: ask is bus.Bus.RequestSnapshot, which ingest
// serves. Without it a broken book waits for the source's next snapshot.
func (s *Server) EnableSnapshotRequests(ask func(instrument string) error) {
	s.hub.snapshots.Store(&ask)
}

// launch runs f on a goroutine that Shutdown waits for.
func (s *Server) launch(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// Dispatch hands an event to its instrument's owner (see Hub.Dispatch), and a trade to the
// candle store.
func (s *Server) Dispatch(ctx context.Context, ev *pb.Event) error {
	s.candles.observe(ev)
	s.stale.observe(ev, s.ready.Load())
	return s.hub.Dispatch(ctx, ev)
}

// Sync returns once every event dispatched before the call has been applied (Dispatch only
// queues), or with ctx's error. Call it before SetReady(true), so that a ready server answers
// from the state after everything it has taken in.
func (s *Server) Sync(ctx context.Context) error { return s.hub.Sync(ctx) }

// Instruments returns the reference data of every known instrument.
func (s *Server) Instruments() []*pb.InstrumentInfo { return s.hub.Instruments() }

// Ready reports whether the server has caught up with stored history and serves clients.
func (s *Server) Ready() bool { return s.ready.Load() && !s.stopping.Load() && s.revocationsReady() }

// SetReady sets what /readyz reports.
func (s *Server) SetReady(ready bool) {
	s.ready.Store(ready)
	if ready {
		s.metrics.ready.Set(1)
	} else {
		s.metrics.ready.Set(0)
	}
}

// Handler returns the HTTP routes: /ws, /healthz, /readyz, /api/instruments, and ui at /.
// Mount /metrics yourself: the registry belongs to the caller.
func (s *Server) Handler(ui http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", s.serveWS)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if s.stopping.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.serveReadyz)               // caught up, not stopping, not stale (stale.go)
	mux.HandleFunc("GET /api/instruments", s.serveInstruments) // what the caller may see (auth.go)
	mux.HandleFunc("GET /api/candles", s.entitledCandles(s.serveCandles))
	mux.HandleFunc("POST /api/replays", s.serveReplayStart) // replaystart.go
	if ui != nil {
		mux.Handle("/", ui)
	}
	return mux
}

// checkOrigin applies the origin allow-list (see Config.AllowedOrigins).
func (s *Server) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	for _, allowed := range s.cfg.AllowedOrigins {
		if allowed == "*" || strings.EqualFold(allowed, origin) {
			return true
		}
	}
	if len(s.cfg.AllowedOrigins) > 0 {
		return false
	}
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	if s.refuseEarly(w, r) {
		return
	}
	// Credentials before anything costs: a refused token never reaches the upgrade. cred is nil
	// for a connection that will sign in in band (Authenticate).
	cred, err := s.requestCredential(r)
	if err != nil {
		s.metrics.connsRejected.WithLabelValues("unauthorized").Inc()
		refuseHTTP(w, err)
		return
	}
	rs, cred, ok := s.replayOf(w, r, cred)
	if !ok {
		return
	}
	hub := s.hub
	if rs != nil {
		hub = rs.hub
	}
	if cred != nil && cred.ent.Delay > 0 {
		if hub, ok = s.delayHub(w, cred); !ok {
			return
		}
	}
	ip := clientAddress(r, s.cfg.TrustedProxies)
	if refused := s.admit(ip); refused != "" {
		if rs != nil {
			s.leaveReplay(rs, nil)
		}
		s.metrics.connsRejected.WithLabelValues(refused).Inc()
		msg := "too many connections from this address"
		if refused == "global_limit" {
			msg = "server at its connection limit; retry later or elsewhere"
		}
		http.Error(w, msg, http.StatusTooManyRequests)
		return
	}
	up := s.upgradePlain
	if r.Header.Get("Sec-WebSocket-Protocol") != "" {
		up = s.upgradeNamed
	}
	conn, err := up.Upgrade(w, r)
	if err != nil {
		if rs != nil {
			s.leaveReplay(rs, nil)
		}
		s.release(ip)
		s.metrics.connsRejected.WithLabelValues("handshake").Inc()
		s.log.Debug("upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	sess := s.newSession(conn, hub, rs, ip)
	s.metrics.connections.Inc()
	// The read loop is counted in s.wg under s.mu, where Shutdown sets stopping before it waits:
	// a WaitGroup must not grow from zero while Wait runs.
	s.mu.Lock()
	stopping := s.stopping.Load()
	if !stopping {
		s.sessions[sess] = struct{}{}
		s.wg.Add(1)
	}
	s.mu.Unlock()
	if stopping { // Shutdown began while this connection was upgrading
		sess.out.Close(wire.CloseGoingAway, "server shutting down")
		s.endSession(sess)
		return
	}
	if cred != nil {
		// Signed in by header, anonymous, or authentication off. signIn adds a replay watcher.
		if code, reason := sess.signIn(cred, 0, false); code != 0 {
			sess.out.Close(code, reason)
		}
	} else {
		sess.startAuthTimer(s.cfg.Auth.timeout())
	}
	nc := conn.NetConn()
	go func() {
		defer s.wg.Done()
		s.readLoop(sess, nc)
	}()
}

// refuseEarly answers a request the feed cannot serve at all (stopping, not caught up, no
// revocation list yet, a foreign origin, another WebSocket version) and reports whether it did.
func (s *Server) refuseEarly(w http.ResponseWriter, r *http.Request) bool {
	switch {
	case s.stopping.Load():
		s.metrics.connsRejected.WithLabelValues("shutting_down").Inc()
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
	case !s.ready.Load():
		// Still rebuilding state from history: a snapshot now would show the past as current.
		s.metrics.connsRejected.WithLabelValues("not_ready").Inc()
		http.Error(w, "catching up with history; retry shortly", http.StatusServiceUnavailable)
	case !s.revocationsReady():
		// Fail closed: a revoked token must not get in because this replica has not read the
		// revocation list yet (revoke.go).
		s.metrics.connsRejected.WithLabelValues("revocations_not_loaded").Inc()
		http.Error(w, "revocation list not loaded yet; retry shortly", http.StatusServiceUnavailable)
	case !s.checkOrigin(r):
		s.metrics.connsRejected.WithLabelValues("origin").Inc()
		http.Error(w, "origin not allowed", http.StatusForbidden)
	case strings.EqualFold(r.Header.Get("Upgrade"), "websocket") && r.Header.Get("Sec-WebSocket-Version") != "13":
		// RFC 6455 section 4.4: name the version this server speaks. (A plain GET is not a
		// handshake: the dashboard asks /ws?replay=ID that way to learn why it was refused.)
		s.metrics.connsRejected.WithLabelValues("version").Inc()
		w.Header().Set("Sec-WebSocket-Version", "13")
		http.Error(w, "unsupported WebSocket version: this server speaks 13", http.StatusUpgradeRequired)
	default:
		return false
	}
	return true
}

// replayOf joins the replay session a request names (/ws?replay=ID), if any, after checking
// that cred may watch it. cred comes back nil when the anonymous policy does not cover replay
// (the client may sign in in band). ok false: refused, answered.
func (s *Server) replayOf(w http.ResponseWriter, r *http.Request, cred *credential) (rs *replaySession, _ *credential, ok bool) {
	id := r.URL.Query().Get("replay")
	if id == "" {
		return nil, cred, true
	}
	if cred != nil && !cred.ent.Replay {
		if !cred.anon {
			s.metrics.connsRejected.WithLabelValues("not_entitled").Inc()
			http.Error(w, "not entitled to replay sessions", http.StatusForbidden)
			return nil, nil, false
		}
		cred = nil
	}
	if cred != nil && cred.ent.Delay > 0 {
		// A replay window may reach the present.
		s.metrics.connsRejected.WithLabelValues("not_entitled").Inc()
		http.Error(w, "a delayed entitlement does not cover replay sessions", http.StatusForbidden)
		return nil, nil, false
	}
	rs, err := s.joinReplay(r.Context(), id)
	switch {
	case errors.Is(err, ErrNoReplay):
		http.Error(w, err.Error(), http.StatusNotFound)
	case errors.Is(err, ErrReplayDisabled):
		http.Error(w, err.Error(), http.StatusNotImplemented)
	case errors.Is(err, bus.ErrSessionID):
		http.Error(w, err.Error(), http.StatusBadRequest)
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadGateway)
	default:
		return rs, cred, true
	}
	return nil, nil, false
}

// newSession makes the session of an upgraded connection, with its outbound queue.
func (s *Server) newSession(conn *gws.Conn, hub *Hub, rs *replaySession, ip string) *session {
	sess := &session{
		id:      s.nextID.Add(1),
		hub:     hub,
		replay:  rs,
		server:  s,
		json:    conn.SubProtocol() == wire.SubprotocolJSON,
		ip:      ip,
		log:     s.log,
		limits:  wire.Limits{MaxDepth: s.cfg.Market.Depths[len(s.cfg.Market.Depths)-1]},
		limiter: rate.NewLimiter(rate.Limit(s.cfg.CommandRate), s.cfg.CommandBurst),
		subs:    make(map[string]chanSet),
	}
	sess.out = s.writer.NewConn(fanout.NetSocket(conn.NetConn()), sess.json, fanout.Hooks{
		Conflated: func() {
			s.metrics.conflations.Inc()
			sess.hub.postAll(command{kind: cmdConflated, sess: sess})
		},
		Wrote: func(n, bytes int) {
			s.metrics.frames.Inc()
			s.metrics.messages.Add(float64(n))
			s.metrics.bytes.Add(float64(bytes))
		},
		Closed: func(code int, reason string) {
			s.metrics.closes.WithLabelValues(strconv.Itoa(code)).Inc()
			if code != wire.CloseNormal && code != wire.CloseGoingAway && code != closeLost {
				s.log.Info("closing connection", "conn", sess.id, "remote", ip, "code", code, "reason", reason)
			}
		},
		Heartbeat: heartbeat,
	})
	tcp := conn.NetConn()
	if tc, ok := tcp.(*tls.Conn); ok {
		tcp = tc.NetConn() // wss://: the buffer is the TCP connection's under it
	}
	if tc, ok := tcp.(*net.TCPConn); ok && s.cfg.SocketWriteBuffer > 0 {
		_ = tc.SetWriteBuffer(s.cfg.SocketWriteBuffer)
	}
	return sess
}

// admit counts a connection from ip, or returns why it is refused (a metric label).
func (s *Server) admit(ip string) (refused string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.MaxConns > 0 && s.conns >= s.cfg.MaxConns {
		return "global_limit"
	}
	if s.cfg.MaxConnsPerIP > 0 && s.perIP[ip] >= s.cfg.MaxConnsPerIP {
		return "per_ip_limit"
	}
	s.perIP[ip]++
	s.conns++
	return ""
}

func (s *Server) release(ip string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns--
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
}

// Shutdown stops taking connections, closes every connection with 1001 (going away), stops the
// owners and waits for every goroutine, or for ctx. Later calls return the first result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() {
		s.SetReady(false)
		s.mu.Lock()
		s.stopping.Store(true)
		sessions := make([]*session, 0, len(s.sessions))
		for sess := range s.sessions {
			sessions = append(sessions, sess)
		}
		s.mu.Unlock()
		for _, sess := range sessions {
			sess.out.Close(wire.CloseGoingAway, "server shutting down")
		}
		s.mu.Lock()
		replays := s.replays
		s.replays = map[string]*replaySession{}
		s.mu.Unlock()
		for _, rs := range replays {
			rs.mu.Lock()
			already := rs.closed
			rs.closed = true
			rs.mu.Unlock()
			if !already {
				rs.close()
			}
		}
		close(s.quit)
		s.stopDelayTiers() // after quit: a consumer holding an event back waits on it
		done := make(chan struct{})
		go func() { s.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			s.shutdownErr = ctx.Err()
		}
	})
	return s.shutdownErr
}

// closeLost labels a connection that broke without a close handshake (RFC 6455's 1006, which
// is never sent on the wire).
const closeLost = 1006

// gwsLogger routes gws's own error logs to slog.
type gwsLogger struct{ log *slog.Logger }

func (l gwsLogger) Error(v ...any) { l.log.Error("gws", "detail", v) }
