// Package fakeexchange is a venue on loopback for tests: it replays recorded frames over a
// WebSocket (gws) as Kraken v1 or Binance would, answers subscriptions with snapshots of the
// venue's true book at that moment, serves Binance's REST depth snapshot over HTTP, and injects
// faults: dropped, duplicated and corrupted frames, disconnects.
//
// The true book is kept by the project's own venue Handler fed with every recorded frame,
// including the frames a fault keeps from the client, so a snapshot sent after a fault is what
// the venue would send.
package fakeexchange

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/lxzan/gws"

	"github.com/tickwire/tickwire/internal/source"
	"github.com/tickwire/tickwire/internal/source/binance"
	"github.com/tickwire/tickwire/internal/source/kraken"
	"github.com/tickwire/tickwire/pkg/book"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// FaultKind is a fault injected at one frame.
type FaultKind int

const (
	Drop       FaultKind = iota + 1 // the frame is not sent (the true book still changes)
	Duplicate                       // the frame is sent twice
	Corrupt                         // Kraken: the checksum is altered; Binance: the frame is cut short (unparseable)
	Disconnect                      // the frame is sent, then the connection is dropped
)

// Fault injects Kind at frame index At of the replayed frames (0-based, see Server.Frames).
type Fault struct {
	At   int
	Kind FaultKind
}

// Config configures a Server.
type Config struct {
	// Frames are the recorded frames, in order (all of a capture's received frames).
	Frames []source.Frame
	Faults []Fault
	// Interval paces the replay (0: as fast as the client reads).
	Interval time.Duration
	// Hold keeps the replay at its start until Release is called (snapshots are still sent).
	Hold bool
	// WaitResync makes the venue deterministic for tests: after a Drop, Corrupt or Disconnect
	// the replay sends the faulted stream's next frame (which shows the break) and then waits
	// until a client took a snapshot (a REST depth request, or a book subscription). A Binance
	// venue also waits so after its first depth frame: a client's first REST snapshot, however
	// slow, comes before the replay reaches the first fault.
	WaitResync bool
	// ExchangeInfo (Binance) is the body served at /api/v3/exchangeInfo and
	// /fapi/v1/exchangeInfo, whatever the query; nil: 404 (a venue whose reference data
	// cannot be had).
	ExchangeInfo []byte
}

// venue is what differs between the Kraken and Binance fakes.
type venue interface {
	// truth returns the handler keeping the true books.
	truth() source.Handler
	// key returns the subscription key a frame belongs to ("" for none: always sent).
	key(f *source.Frame) string
	// control handles a client frame: keys to subscribe and unsubscribe, and replies.
	control(msg []byte) (sub, unsub []string, replies [][]byte)
	// snapshot returns the frame sent when key is subscribed (nil for none).
	snapshot(key string) []byte
	// corrupt returns a corrupted copy of a frame.
	corrupt(data []byte) []byte
	// subscribeURL returns the keys a connection subscribes to by its URL (Binance streams).
	subscribeURL(r *http.Request) []string
}

// Server is a fake venue.
type Server struct {
	cfg    Config
	v      venue
	srv    *httptest.Server
	faults map[int]FaultKind
	start  int // first frame replayed to clients (the ones before only build the true book)

	mu       sync.Mutex // guards the fields below and the truth handler
	pos      int
	conns    int
	sent     int
	held     chan struct{}
	released bool
	wg       sync.WaitGroup
	quit     chan struct{}
	closing  bool
	waiting  bool          // WaitResync: no frame until a snapshot was taken
	armed    string        // WaitResync: wait after the next frame of this key
	resynced chan struct{} // signalled when waiting ends
}

func newServer(cfg Config, v venue, start int) *Server {
	s := &Server{cfg: cfg, v: v, faults: map[int]FaultKind{}, start: start, held: make(chan struct{}), quit: make(chan struct{}),
		resynced: make(chan struct{}, 1)}
	for _, f := range cfg.Faults {
		s.faults[f.At] = f.Kind
	}
	var col discard
	for i := 0; i < start; i++ {
		_ = v.truth().Handle(&cfg.Frames[i], col.emit)
	}
	s.pos = start
	if !cfg.Hold {
		s.released = true
		close(s.held)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", s.serveWS)
	if bv, ok := v.(*binanceVenue); ok {
		mux.HandleFunc("/api/v3/depth", func(w http.ResponseWriter, r *http.Request) { s.serveDepth(w, r, bv) })
		mux.HandleFunc("/fapi/v1/depth", func(w http.ResponseWriter, r *http.Request) { s.serveDepth(w, r, bv) })
		info := func(w http.ResponseWriter, _ *http.Request) {
			if cfg.ExchangeInfo == nil {
				http.NotFound(w, nil)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(cfg.ExchangeInfo)
		}
		mux.HandleFunc("/api/v3/exchangeInfo", info)
		mux.HandleFunc("/fapi/v1/exchangeInfo", info)
	}
	s.srv = httptest.NewServer(mux)
	return s
}

type discard struct{}

func (discard) emit(*tickwirev1.Event) error { return nil }

// URL returns the WebSocket base URL (ws://127.0.0.1:port).
func (s *Server) URL() string { return "ws" + strings.TrimPrefix(s.srv.URL, "http") }

// HTTPURL returns the HTTP base URL (REST snapshots).
func (s *Server) HTTPURL() string { return s.srv.URL }

// Start returns the index of the first frame replayed to clients.
func (s *Server) Start() int { return s.start }

// Release starts a held replay.
func (s *Server) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.released {
		s.released = true
		close(s.held)
	}
}

// Position returns the index of the next frame to replay.
func (s *Server) Position() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pos
}

// Done reports whether every frame was replayed.
func (s *Server) Done() bool { return s.Position() >= len(s.cfg.Frames) }

// Connections returns how many WebSocket connections were accepted.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// Close stops every connection and the server.
func (s *Server) Close() {
	s.mu.Lock()
	if !s.closing {
		s.closing = true
		close(s.quit)
	}
	s.mu.Unlock()
	s.srv.CloseClientConnections()
	s.srv.Close()
	s.wg.Wait()
}

// conn is one client connection.
type conn struct {
	gws.BuiltinEventHandler
	s       *Server
	ctl     chan []byte // client frames, to the streamer; bounded
	closed  chan struct{}
	subs    map[string]bool // streamer only
	started bool            // streamer only: a subscription arrived
}

func (c *conn) OnMessage(_ *gws.Conn, m *gws.Message) {
	b := append([]byte(nil), m.Bytes()...)
	m.Close()
	select {
	case c.ctl <- b:
	case <-c.closed:
	}
}

func (c *conn) OnPing(sock *gws.Conn, p []byte) { _ = sock.WritePong(p) }

func (c *conn) OnClose(*gws.Conn, error) { close(c.closed) }

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	c := &conn{s: s, ctl: make(chan []byte, 64), closed: make(chan struct{}), subs: map[string]bool{}}
	up := gws.NewUpgrader(c, &gws.ServerOption{})
	sock, err := up.Upgrade(w, r)
	if err != nil {
		return
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		_ = sock.NetConn().Close()
		return
	}
	s.conns++
	s.wg.Add(2)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		sock.ReadLoop()
	}()
	go func() {
		defer s.wg.Done()
		defer sock.NetConn().Close()
		for _, k := range s.v.subscribeURL(r) {
			c.subs[k] = true
			c.started = true
		}
		s.stream(c, sock)
	}()
}

func (s *Server) stream(c *conn, sock *gws.Conn) {
	write := func(b []byte) bool { return sock.WriteMessage(gws.OpcodeText, b) == nil }
	control := func(msg []byte) bool {
		sub, unsub, replies := s.v.control(msg)
		for _, r := range replies {
			if !write(r) {
				return false
			}
		}
		for _, k := range unsub {
			delete(c.subs, k)
		}
		for _, k := range sub {
			c.subs[k] = true
			c.started = true
			s.mu.Lock()
			snap := s.v.snapshot(k)
			if snap != nil {
				s.snapshotTakenLocked()
			}
			s.mu.Unlock()
			if snap != nil && !write(snap) {
				return false
			}
		}
		return true
	}
	var tick <-chan time.Time
	if s.cfg.Interval > 0 {
		t := time.NewTicker(s.cfg.Interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		// Client frames first, so a resubscription is answered between two frames.
		select {
		case msg := <-c.ctl:
			if !control(msg) {
				return
			}
			continue
		case <-c.closed:
			return
		case <-s.quit:
			return
		default:
		}
		if !c.started || !s.isReleased() || s.Done() || s.isWaiting() {
			var held, resynced <-chan struct{}
			if !s.isReleased() {
				held = s.held
			}
			if s.isWaiting() {
				resynced = s.resynced
			}
			select {
			case msg := <-c.ctl:
				if !control(msg) {
					return
				}
			case <-c.closed:
				return
			case <-s.quit:
				return
			case <-held:
			case <-resynced:
			}
			continue
		}
		if tick != nil {
			select {
			case <-tick:
			case <-c.closed:
				return
			case <-s.quit:
				return
			}
		}
		s.mu.Lock()
		i := s.pos
		s.pos++
		f := s.cfg.Frames[i]
		var col discard
		_ = s.v.truth().Handle(&f, col.emit)
		s.mu.Unlock()
		key := s.v.key(&f)
		if key != "" && !c.subs[key] {
			continue
		}
		data := f.Data
		s.mu.Lock()
		if s.armed != "" && s.armed == key && s.faults[i] == 0 {
			s.armed, s.waiting = "", true // after this frame
		}
		// A Kraken client resubscribes (and gets snapshots) as it reconnects: no need to wait.
		_, isKraken := s.v.(*krakenVenue)
		if k := s.faults[i]; s.cfg.WaitResync && (k == Drop || k == Corrupt || (k == Disconnect && !isKraken)) {
			s.armed = key
		}
		s.mu.Unlock()
		switch s.faults[i] {
		case Drop:
			continue
		case Corrupt:
			data = s.v.corrupt(data)
		}
		if !write(data) {
			return
		}
		switch s.faults[i] {
		case Duplicate:
			if !write(data) {
				return
			}
		case Disconnect:
			return // the deferred close drops the connection without a close frame
		}
	}
}

// snapshotTaken ends a WaitResync pause. Call with s.mu held.
func (s *Server) snapshotTakenLocked() {
	if s.waiting {
		s.waiting = false
		select {
		case s.resynced <- struct{}{}:
		default:
		}
	}
}

func (s *Server) isWaiting() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waiting
}

func (s *Server) isReleased() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.released
}

// format writes a mantissa at scale with exactly prec decimals (prec >= the value's decimals).
func format(m int64, scale, prec int32) string {
	for scale > prec {
		m /= 10
		scale--
	}
	for scale < prec {
		m *= 10
		scale++
	}
	neg := m < 0
	if neg {
		m = -m
	}
	digits := fmt.Sprintf("%0*d", prec+1, m)
	out := digits
	if prec > 0 {
		out = digits[:len(digits)-int(prec)] + "." + digits[len(digits)-int(prec):]
	}
	if neg {
		out = "-" + out
	}
	return out
}

// ---- Kraken v1 ----

type krakenVenue struct {
	h        *kraken.Handler
	channels map[string]int // pair -> channel id
}

// NewKrakenV1 returns a fake Kraken v1 venue replaying frames (a v1 capture's received
// frames). The replay to clients starts after the last book snapshot in the recording; a
// client subscribing a pair's book gets a snapshot of the true book at that moment.
func NewKrakenV1(cfg Config) (*Server, error) {
	h, err := kraken.New(kraken.Config{Version: 1}, nil)
	if err != nil {
		return nil, err
	}
	start := 0
	for i, f := range cfg.Frames {
		if m, err := kraken.ParseV1(f.Data); err == nil && m.Kind == kraken.KindBook && m.Book.Snapshot {
			start = i + 1
		}
	}
	return newServer(cfg, &krakenVenue{h: h, channels: map[string]int{}}, start), nil
}

func (k *krakenVenue) truth() source.Handler { return k.h }

func (k *krakenVenue) key(f *source.Frame) string {
	m, err := kraken.ParseV1(f.Data)
	if err != nil {
		return ""
	}
	switch m.Kind {
	case kraken.KindBook:
		return "book " + m.Pair
	case kraken.KindTicker, kraken.KindTrade:
		return m.Event + " " + m.Pair
	case kraken.KindHeartbeat:
		return ""
	}
	return "-" // status frames of the recording are not replayed
}

func (k *krakenVenue) channelID(pair string) int {
	id, ok := k.channels[pair]
	if !ok {
		id = 100 + len(k.channels)
		k.channels[pair] = id
	}
	return id
}

func (k *krakenVenue) control(msg []byte) (sub, unsub []string, replies [][]byte) {
	var req struct {
		Event        string   `json:"event"`
		ReqID        int64    `json:"reqid"`
		Pair         []string `json:"pair"`
		Subscription struct {
			Name  string `json:"name"`
			Depth int    `json:"depth"`
		} `json:"subscription"`
	}
	if json.Unmarshal(msg, &req) != nil {
		return nil, nil, [][]byte{[]byte(`{"event":"error","errorMessage":"Malformed request","status":"error"}`)}
	}
	switch req.Event {
	case "ping":
		return nil, nil, [][]byte{[]byte(fmt.Sprintf(`{"event":"pong","reqid":%d}`, req.ReqID))}
	case "subscribe", "unsubscribe":
		status := "subscribed"
		if req.Event == "unsubscribe" {
			status = "unsubscribed"
		}
		for _, p := range req.Pair {
			name := req.Subscription.Name
			key := name + " " + p
			chName := name
			if name == "book" {
				chName = "book-" + fmt.Sprint(req.Subscription.Depth)
			}
			b, _ := json.Marshal(map[string]any{"channelID": k.channelID(p), "channelName": chName, "event": "subscriptionStatus",
				"pair": p, "status": status, "subscription": req.Subscription})
			replies = append(replies, b)
			if req.Event == "subscribe" {
				sub = append(sub, key)
			} else {
				unsub = append(unsub, key)
			}
		}
	}
	return sub, unsub, replies
}

func (k *krakenVenue) snapshot(key string) []byte {
	pair, ok := strings.CutPrefix(key, "book ")
	if !ok {
		return nil
	}
	b, prec, in := k.h.BookOf(pair)
	if b == nil {
		return nil
	}
	rows := func(levels []book.Level) [][3]string {
		out := make([][3]string, 0, len(levels))
		for _, l := range levels {
			out = append(out, [3]string{format(l.Price, in.PriceScale, prec.Price), format(l.Size, in.SizeScale, prec.Size), "0.000000"})
		}
		return out
	}
	depth := b.Len(book.Bid) // the recorded depth: book-N is in the channel name
	snap, _ := json.Marshal([]any{k.channelID(pair), map[string]any{"as": rows(b.Asks()), "bs": rows(b.Bids())}, "book-" + fmt.Sprint(k.depth(pair, depth)), pair})
	return snap
}

// depth returns the recorded book depth of pair.
func (k *krakenVenue) depth(pair string, fallback int) int {
	if d := k.h.DepthOf(pair); d > 0 {
		return d
	}
	return fallback
}

func (k *krakenVenue) corrupt(data []byte) []byte {
	i := bytes.Index(data, []byte(`"c":"`))
	if i < 0 {
		return data
	}
	out := append([]byte(nil), data...)
	j := i + len(`"c":"`)
	if out[j] == '1' {
		out[j] = '2'
	} else {
		out[j] = '1'
	}
	return out
}

func (k *krakenVenue) subscribeURL(*http.Request) []string { return nil }

// ---- Binance ----

type binanceVenue struct {
	h *binance.Handler
}

// NewBinance returns a fake Binance venue replaying frames (a capture holding the REST
// snapshot inline, as hftbacktest records it). The replay to clients starts after the true
// book is in sync; clients fetch snapshots of it from /api/v3/depth (or /fapi/v1/depth).
func NewBinance(market binance.Market, cfg Config) (*Server, error) {
	h, err := binance.New(binance.Config{Market: market}, nil)
	if err != nil {
		return nil, err
	}
	start := 0
	var col discard
	for i := range cfg.Frames {
		_ = h.Handle(&cfg.Frames[i], col.emit)
		if m, err := binance.Parse(cfg.Frames[i].Data, cfg.Frames[i].URL); err == nil && m.Kind == binance.KindSnapshot {
			start = i + 1
			break
		}
	}
	h, _ = binance.New(binance.Config{Market: market}, nil) // newServer replays the prefix into it
	s := newServer(cfg, &binanceVenue{h: h}, start)
	if cfg.WaitResync {
		// The client's first snapshot is a resync too: without waiting for it, a client whose
		// REST request is slow (a loaded machine) is still buffering when the first fault
		// comes, and the snapshot covers the break (TestBinanceSpotFaults failed so).
		for i := start; i < len(cfg.Frames); i++ {
			if m, err := binance.Parse(cfg.Frames[i].Data, cfg.Frames[i].URL); err == nil && m.Kind == binance.KindDepth {
				s.mu.Lock()
				s.armed = s.v.key(&cfg.Frames[i])
				s.mu.Unlock()
				break
			}
		}
	}
	return s, nil
}

func (b *binanceVenue) truth() source.Handler { return b.h }

func (b *binanceVenue) key(f *source.Frame) string {
	var env struct {
		Stream string `json:"stream"`
	}
	if json.Unmarshal(f.Data, &env) != nil || env.Stream == "" {
		return "-" // REST snapshots of the recording are not replayed
	}
	return env.Stream
}

func (b *binanceVenue) control([]byte) (sub, unsub []string, replies [][]byte) { return nil, nil, nil }

func (b *binanceVenue) snapshot(string) []byte { return nil }

func (b *binanceVenue) corrupt(data []byte) []byte { return data[:len(data)/2] }

func (b *binanceVenue) subscribeURL(r *http.Request) []string {
	streams := r.URL.Query().Get("streams")
	if streams == "" {
		return nil
	}
	return strings.Split(streams, "/")
}

func (s *Server) serveDepth(w http.ResponseWriter, r *http.Request, b *binanceVenue) {
	sym := r.URL.Query().Get("symbol")
	s.mu.Lock()
	bk, last := b.h.BookOf(sym)
	var body []byte
	if bk != nil && bk.Synced {
		in := b.h.Instruments().Lookup(sym)
		rows := func(levels []book.Level) [][2]string {
			out := make([][2]string, 0, len(levels))
			for _, l := range levels {
				out = append(out, [2]string{format(l.Price, in.PriceScale, in.PriceScale), format(l.Size, in.SizeScale, in.SizeScale)})
			}
			return out
		}
		body, _ = json.Marshal(map[string]any{"lastUpdateId": last, "bids": rows(bk.Bids()), "asks": rows(bk.Asks())})
		s.snapshotTakenLocked()
	}
	s.mu.Unlock()
	if body == nil {
		http.Error(w, `{"code":-1121,"msg":"Invalid symbol."}`, http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// WaitDone waits until every frame was replayed or ctx ends.
func (s *Server) WaitDone(ctx context.Context) error {
	for !s.Done() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}
