package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"

	"github.com/tickwire/tickwire/internal/wsframe"
	"github.com/tickwire/tickwire/pkg/market"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// Client is a connection to a Tickwire feed that survives disconnects. It holds the desired
// subscriptions and a replica of every subscribed instrument, built from the server's snapshots
// and deltas with their sequence and checksum checks. Create one with New or Dial and call Run;
// its other methods are safe from any goroutine.
type Client struct {
	opts Options
	log  *slog.Logger
	h    Handler

	reqID   atomic.Uint32
	running atomic.Bool
	closed  atomic.Bool
	stats   counters

	// Lock order: wmu before mu. wmu serializes the commands written to the connection and
	// guards which connection that is, so a command is either written to the live connection or
	// recorded as desired state that the next connection is given. Frames not sent by a command
	// (pongs from the read goroutine, close frames) are not under wmu: gws writes every frame
	// whole under its own write mutex, through deadlineConn, which bounds each write on its
	// own. mu guards the subscriptions, their replicas and the pending requests. A replica is
	// written only on Run's goroutine (under mu), so Run's goroutine, and the Handler on it,
	// reads replicas without mu.
	wmu    sync.Mutex
	conn   *gws.Conn          // guarded by wmu; nil when disconnected
	sess   *session           // guarded by wmu; the session of conn
	dialed *session           // guarded by wmu; a connection made by Dial, not yet served by Run
	cancel context.CancelFunc // guarded by wmu; ends the current Run

	mu   sync.Mutex
	subs map[string]*sub // guarded by mu; by instrument id
	// venues are the venue wildcards held ("venue:*" in Subscribe), by venue; guarded by mu.
	// Their instruments get a sub when the server subscribes them (onSubscribed).
	venues map[string]*venueWant
	byHnd  map[uint32]string          // guarded by mu; handles of the current connection
	lists  map[uint32]chan listResult // guarded by mu; pending ListInstruments by request id
}

// sub is one instrument the client holds: what to ask for, and the replica.
type sub struct {
	id       string
	channels chanSet // desired channels
	depth    uint32  // requested book depth, 0 for the server default
	info     *pb.InstrumentInfo
	granted  uint32 // book depth granted by the server
	replica  market.Replica
	resync   chanSet // channels with a Resync sent and no snapshot since
	// await holds channels added by Subscribe and not yet given a snapshot: deltas still in
	// flight from an earlier subscription of the channel must not be applied to its old state.
	await chanSet
	// stale holds channels whose state was kept from a lost connection, to resume from: not in
	// sync until the next connection resumes them or sends a snapshot.
	stale   chanSet
	resyncs uint64
}

// venueWant is a venue wildcard the client holds: what it asked for.
type venueWant struct {
	channels chanSet
	depth    uint32
}

// chanSet is a set of channels, indexed by pb.Channel.
type chanSet [6]bool

func newChanSet(chans []pb.Channel) chanSet {
	var s chanSet
	if len(chans) == 0 {
		chans = wire.AllChannels()
	}
	for _, ch := range chans {
		s[ch] = true
	}
	return s
}

func (s *chanSet) list() []pb.Channel {
	var out []pb.Channel
	for ch, ok := range s {
		if ok {
			out = append(out, pb.Channel(ch))
		}
	}
	return out
}

func (s *chanSet) empty() bool { return *s == chanSet{} }

type listResult struct {
	list []*pb.InstrumentInfo
	err  error
}

// New returns a Client that connects when Run is called. It checks opts but does no I/O.
func New(opts Options) (*Client, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Client{
		opts:   o,
		log:    o.Logger,
		h:      o.Handler,
		subs:   make(map[string]*sub),
		venues: make(map[string]*venueWant),
		byHnd:  make(map[uint32]string),
		lists:  make(map[uint32]chan listResult),
	}, nil
}

// Dial is New followed by one connection attempt, so that a wrong URL, a refused upgrade or an
// unreachable feed is reported at once. Run then starts on that connection. Call Run (or Close)
// afterwards, or the connection stays open.
func Dial(ctx context.Context, opts Options) (*Client, error) {
	c, err := New(opts)
	if err != nil {
		return nil, err
	}
	s, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	c.wmu.Lock()
	c.dialed = s
	c.wmu.Unlock()
	return c, nil
}

// Subscription is what Subscribe asks for.
type Subscription struct {
	// Instruments are canonical ids, "venue:SYMBOL", or venue wildcards, "venue:*": every
	// instrument of the venue the token entitles, those listed now and those listed later, each
	// with its own replica (docs/PROTOCOL.md §6.3).
	Instruments []string
	// Channels to receive; empty means all five.
	Channels []pb.Channel
	// Depth is the book depth per side; 0 means the smallest depth the server offers (10 by
	// default). The server rounds it up to a depth it offers (see Subscribed.depth).
	Depth uint32
}

// Subscribe adds instruments and channels to the client's subscriptions. Channels already held
// for an instrument are kept; when Channels include the book, Depth replaces its depth. Safe from any goroutine, and
// before Run: the subscription is sent now if connected, and on every (re)connect.
// It returns an error only for an invalid subscription.
func (c *Client) Subscribe(s Subscription) error {
	if len(s.Instruments) == 0 {
		return errors.New("client: subscribe: no instruments")
	}
	for _, id := range s.Instruments {
		if _, ok := wire.VenueWildcard(id); ok {
			continue
		}
		if err := wire.CheckInstrumentID(id); err != nil {
			return fmt.Errorf("client: subscribe: %w", err)
		}
	}
	if err := checkChannels(s.Channels); err != nil {
		return fmt.Errorf("client: subscribe: %w", err)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	for _, id := range s.Instruments {
		if venue, ok := wire.VenueWildcard(id); ok {
			w := c.venues[venue]
			if w == nil {
				w = &venueWant{}
				c.venues[venue] = w
			}
			for ch, ok := range newChanSet(s.Channels) {
				w.channels[ch] = w.channels[ch] || ok
			}
			w.depth = s.Depth
			continue
		}
		st := c.subs[id]
		if st == nil {
			st = &sub{id: id}
			c.subs[id] = st
		}
		add := newChanSet(s.Channels)
		for ch, ok := range add {
			if ok && !st.channels[ch] {
				st.channels[ch] = true
				st.await[ch] = true
			}
		}
		if add[pb.Channel_CHANNEL_BOOK] {
			st.depth = s.Depth
		}
	}
	c.mu.Unlock()
	for ids := range slices.Chunk(s.Instruments, subscribeChunk) {
		c.sendLocked(&pb.ClientMessage{Command: &pb.ClientMessage_Subscribe{Subscribe: &pb.Subscribe{
			Instruments: slices.Clone(ids), Channels: slices.Clone(s.Channels), Depth: s.Depth,
			CompactQuotes: c.opts.CompactQuotes, Wait: c.opts.WaitForInstruments}}})
	}
	return nil
}

// subscribeChunk is how many instruments one Subscribe carries: with a resume position for each
// of five channels (about 180 bytes an instrument), 50 stay well under the server's 16 KiB read
// limit and its 1000-instrument cap.
const subscribeChunk = 50

// Unsubscribe removes channels (all when none are given) of instruments from the client's
// subscriptions; an instrument left with no channel is dropped with its replica. Safe from any
// goroutine.
func (c *Client) Unsubscribe(instruments []string, channels ...pb.Channel) error {
	if err := checkChannels(channels); err != nil {
		return fmt.Errorf("client: unsubscribe: %w", err)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	var held []string
	drop := newChanSet(channels)
	for _, id := range instruments {
		if venue, ok := wire.VenueWildcard(id); ok {
			// The wildcard loses the channels, and so does every instrument of the venue held
			// (the server does the same).
			w := c.venues[venue]
			if w != nil {
				for ch, ok := range drop {
					if ok {
						w.channels[ch] = false
					}
				}
				if w.channels.empty() {
					delete(c.venues, venue)
				}
			}
			found := w != nil
			for inst, st := range c.subs {
				if v, _, _ := strings.Cut(inst, ":"); v != venue {
					continue
				}
				found = true
				for ch, ok := range drop {
					if ok {
						st.channels[ch] = false
					}
				}
				if st.channels.empty() {
					delete(c.subs, inst)
				}
			}
			if found {
				held = append(held, id)
			}
			continue
		}
		st := c.subs[id]
		if st == nil {
			continue
		}
		held = append(held, id)
		for ch, ok := range drop {
			if ok {
				st.channels[ch] = false
			}
		}
		if st.channels.empty() {
			delete(c.subs, id)
		}
	}
	c.mu.Unlock()
	if len(held) > 0 {
		c.sendLocked(&pb.ClientMessage{Command: &pb.ClientMessage_Unsubscribe{Unsubscribe: &pb.Unsubscribe{
			Instruments: held, Channels: slices.Clone(channels)}}})
	}
	return nil
}

// Resync asks the server for fresh snapshots of channels (all held when none are given) of one
// instrument. The client does this on its own when it sees a break; call it only to force one.
// Safe from any goroutine; without a connection there is nothing to do, as the next connection
// starts from snapshots anyway.
func (c *Client) Resync(instrument string, channels ...pb.Channel) error {
	if err := checkChannels(channels); err != nil {
		return fmt.Errorf("client: resync: %w", err)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	_, ok := c.subs[instrument]
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %s", ErrNotSubscribed, instrument)
	}
	c.stats.resyncs.Add(1)
	c.sendLocked(&pb.ClientMessage{Command: &pb.ClientMessage_Resync{Resync: &pb.Resync{
		Instrument: instrument, Channels: slices.Clone(channels)}}})
	return nil
}

// ListInstruments asks the server for the reference data of every instrument it has and waits
// for the answer. It needs Run to be running (it may be called before Run connects: the request
// is sent once connected, and again after a reconnect until answered). Do not call it from a
// Handler method: the answer is delivered by the goroutine that is running the handler.
func (c *Client) ListInstruments(ctx context.Context) ([]*pb.InstrumentInfo, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	id := c.nextID()
	done := make(chan listResult, 1)
	c.wmu.Lock()
	c.mu.Lock()
	c.lists[id] = done
	c.mu.Unlock()
	c.sendLocked(&pb.ClientMessage{Id: id, Command: &pb.ClientMessage_ListInstruments{ListInstruments: &pb.ListInstruments{}}})
	c.wmu.Unlock()
	select {
	case r := <-done:
		return r.list, r.err
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.lists, id)
		c.mu.Unlock()
		return nil, ctx.Err()
	}
}

// Close ends a Run in progress as if its context had ended, closes a connection made by Dial
// that Run has not taken, and makes later Runs return ErrClosed. It does not wait for Run to
// return. Calling it more than once is harmless.
func (c *Client) Close() error {
	c.closed.Store(true)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.cancel != nil {
		c.cancel()
	}
	if c.dialed != nil {
		_ = c.dialed.conn.NetConn().Close()
		c.dialed = nil
	}
	return nil
}

// Run connects, keeps the subscriptions and replicas up to date and calls the Handler, until
// ctx ends (it returns nil), Close is called (nil), or the server closes the connection with a
// code that says not to reconnect (a *CloseError) or refuses the upgrade for good (a
// *HandshakeError). Lost connections and network errors are retried with jittered exponential
// backoff; after each reconnect every subscription is sent again and the replicas start over
// from the new snapshots.
//
// Every Handler method runs on the goroutine that calls Run. Run may be called again after it
// returns, but not concurrently (ErrRunning). Every goroutine Run starts has ended when it
// returns.
func (c *Client) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer c.running.Store(false)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.wmu.Lock()
	c.cancel = cancel
	c.wmu.Unlock()
	if c.closed.Load() {
		return ErrClosed
	}
	err := c.loop(ctx)
	c.wmu.Lock()
	c.cancel = nil
	if c.dialed != nil { // Run ended before using it
		_ = c.dialed.conn.NetConn().Close()
		c.dialed = nil
	}
	c.wmu.Unlock()
	c.failLists(ErrStopped)
	return err
}

func (c *Client) loop(ctx context.Context) error {
	attempt := 0
	for {
		c.wmu.Lock()
		s := c.dialed
		c.dialed = nil
		c.wmu.Unlock()
		var err error
		if s == nil {
			s, err = c.dial(ctx)
		}
		if ctx.Err() != nil {
			if s != nil {
				_ = s.conn.NetConn().Close()
			}
			return nil
		}
		if err != nil {
			var he *HandshakeError
			if errors.As(err, &he) && !he.retryable() || errors.Is(err, gws.ErrSubprotocolNegotiation) {
				return err
			}
			c.log.Warn("tickwire client: connect failed", "url", c.opts.URL, "attempt", attempt, "err", err)
		} else {
			err = c.serve(ctx, s)
			if ctx.Err() != nil {
				return nil
			}
			var ce *CloseError
			if errors.As(err, &ce) && !ce.Reconnectable() {
				c.log.Error("tickwire client: server closed the connection for good", "code", ce.Code, "reason", ce.Reason)
				return err
			}
			if s.gotFrame {
				attempt = 0
			}
			c.log.Warn("tickwire client: connection lost", "url", c.opts.URL, "err", err)
		}
		wait := c.opts.backoff(attempt)
		attempt++
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// session is one WebSocket connection: the gws event handler that feeds its frames to the
// client. Its fields are used only on Run's goroutine (gws calls the methods from ReadLoop,
// which Run calls).
type session struct {
	c           *Client
	conn        *gws.Conn
	subprotocol string
	gotFrame    bool
	err         error  // why the connection ended
	token       string // the token the connection was opened with ("" without a TokenSource)
	frame       pb.ServerFrame
}

// dial connects and upgrades one connection. Cancelling ctx aborts it.
func (c *Client) dial(ctx context.Context) (*session, error) {
	u, _ := url.Parse(c.opts.URL) // checked in New
	token, err := c.token(ctx)    // before the socket: a slow token source holds no connection
	if err != nil {
		return nil, err
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "wss" {
			port = "443"
		}
	}
	d := net.Dialer{Timeout: c.opts.HandshakeTimeout}
	nc, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("client: dial %s: %w", c.opts.URL, err)
	}
	if u.Scheme == "wss" {
		cfg := &tls.Config{}
		if c.opts.TLSConfig != nil {
			cfg = c.opts.TLSConfig.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = host
		}
		nc = tls.Client(nc, cfg)
	}
	// gws has no context for the handshake: cancel it by expiring the deadline, and wait for
	// the callback so that nothing of this call outlives it.
	aborted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(aborted)
		_ = nc.SetDeadline(time.Unix(1, 0))
	})
	header := http.Header{}
	for k, v := range c.opts.Header {
		header[k] = slices.Clone(v)
	}
	header.Set("Sec-WebSocket-Protocol", c.opts.Subprotocol)
	if token != "" {
		header.Set("Authorization", "Bearer "+token)
	}
	if c.opts.Origin != "" {
		header.Set("Origin", c.opts.Origin)
	}
	s := &session{c: c}
	conn, resp, err := gws.NewClientFromConn(s, &gws.ClientOption{
		Addr:               c.opts.URL,
		RequestHeader:      header,
		HandshakeTimeout:   c.opts.HandshakeTimeout,
		ReadMaxPayloadSize: c.opts.MaxFrameSize,
		Logger:             gwsLogger{c.log},
	}, &deadlineConn{Conn: wsframe.NewClientGuard(nc, c.opts.MaxFrameSize), timeout: c.opts.WriteTimeout})
	if !stop() {
		<-aborted
		if err == nil {
			_ = nc.Close()
		}
		return nil, ctx.Err()
	}
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, &HandshakeError{StatusCode: resp.StatusCode, Err: err}
		}
		return nil, fmt.Errorf("client: upgrade %s: %w", c.opts.URL, err)
	}
	s.conn = conn
	s.token = token
	s.subprotocol = conn.SubProtocol()
	if s.subprotocol == "" {
		s.subprotocol = wire.SubprotocolProto
	}
	return s, nil
}

// serve runs one connection until it ends and returns why.
func (c *Client) serve(ctx context.Context, s *session) error {
	conn := s.conn
	s.extend()
	c.attach(s)
	c.stats.connects.Add(1)
	c.log.Info("tickwire client: connected", "url", c.opts.URL, "subprotocol", s.subprotocol)
	c.h.OnStateChange(c, Connected, nil)

	// The token is refreshed in band before it expires, while the connection lasts (auth.go).
	stopRefresh := c.startRefresh(ctx, s.token)
	defer stopRefresh()

	// Ending ctx closes the connection, which ends ReadLoop; wait for that callback too.
	closed := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(closed)
		_ = conn.WriteClose(wire.CloseNormal, nil)
	})
	c.readLoop(s)
	if !stop() {
		<-closed
	}

	c.detach()
	c.stats.disconnects.Add(1)
	err := s.err
	switch {
	case ctx.Err() != nil: // we closed it: Run is ending
		err = context.Cause(ctx)
	case err == nil:
		err = errors.New("client: connection closed")
	}
	c.h.OnStateChange(c, Disconnected, err)
	return err
}

// readLoop runs gws's read loop for s. The guard under it (wsframe.NewClientGuard) keeps every
// frame header gws parses valid, so a hostile server cannot reach the parser's panic; a panic
// anyway (in gws, or in a handler called from OnMessage) ends this connection with an error
// instead of the program, and Run reconnects.
func (c *Client) readLoop(s *session) {
	defer func() {
		if v := recover(); v != nil {
			c.stats.panics.Add(1)
			c.log.Error("tickwire client: panic reading the connection", "panic", v, "stack", string(debug.Stack()))
			s.err = fmt.Errorf("%w: %v", ErrPanic, v)
			_ = s.conn.NetConn().Close()
		}
	}()
	s.conn.ReadLoop()
}

// attach makes s the live connection and sends it every subscription and pending request.
func (c *Client) attach(s *session) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.conn, c.sess = s.conn, s
	type key struct {
		ch    chanSet
		depth uint32
	}
	groups := map[key][]string{}
	var keys []key
	c.mu.Lock()
	clear(c.byHnd)
	// Streams still in sync (held when the last connection dropped) resume from their position:
	// the server sends what was missed, or a snapshot when it no longer can.
	resume := map[key][]*pb.StreamPosition{}
	for id, st := range c.subs {
		k := key{st.channels, st.depth}
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], id)
		for _, ch := range st.channels.list() {
			if st.replica.Synced(ch) && !st.await[ch] {
				p := st.replica.Position(ch)
				resume[k] = append(resume[k], &pb.StreamPosition{Instrument: id, Channel: ch, Epoch: p.Epoch, Seq: p.Seq})
			}
		}
	}
	for _, ps := range resume {
		slices.SortFunc(ps, func(a, b *pb.StreamPosition) int {
			if a.Instrument != b.Instrument {
				return strings.Compare(a.Instrument, b.Instrument)
			}
			return int(a.Channel) - int(b.Channel)
		})
	}
	lists := make([]uint32, 0, len(c.lists))
	for id := range c.lists {
		lists = append(lists, id)
	}
	c.mu.Unlock()
	for _, k := range keys {
		ids := groups[k]
		slices.Sort(ids)
		for chunk := range slices.Chunk(ids, subscribeChunk) {
			var positions []*pb.StreamPosition
			for _, p := range resume[k] {
				if _, in := slices.BinarySearch(chunk, p.Instrument); in {
					positions = append(positions, p)
				}
			}
			c.sendLocked(&pb.ClientMessage{Command: &pb.ClientMessage_Subscribe{Subscribe: &pb.Subscribe{
				Instruments: chunk, Channels: k.ch.list(), Depth: k.depth, Resume: positions,
				CompactQuotes: c.opts.CompactQuotes, Wait: c.opts.WaitForInstruments}}})
		}
	}
	// Venue wildcards after the instruments: the server leaves the instruments just resumed as
	// they are, and subscribes the venue's others (new listings while disconnected).
	venues := make([]string, 0, len(c.venues))
	wants := map[string]venueWant{}
	c.mu.Lock()
	for v, w := range c.venues {
		venues = append(venues, v)
		wants[v] = *w
	}
	c.mu.Unlock()
	slices.Sort(venues)
	for _, v := range venues {
		w := wants[v]
		c.sendLocked(&pb.ClientMessage{Command: &pb.ClientMessage_Subscribe{Subscribe: &pb.Subscribe{
			Instruments: []string{v + ":" + wire.VenueWildcardSymbol}, Channels: w.channels.list(), Depth: w.depth,
			CompactQuotes: c.opts.CompactQuotes}}})
	}
	slices.Sort(lists)
	for _, id := range lists {
		c.sendLocked(&pb.ClientMessage{Id: id, Command: &pb.ClientMessage_ListInstruments{ListInstruments: &pb.ListInstruments{}}})
	}
}

// detach forgets the live connection. Streams in sync keep their state and position, to resume
// from on the next connection; streams that were waiting for a resync wait for a snapshot.
func (c *Client) detach() {
	c.wmu.Lock()
	c.conn, c.sess = nil, nil
	c.wmu.Unlock()
	c.mu.Lock()
	for _, st := range c.subs {
		for ch, resyncing := range st.resync {
			if resyncing {
				st.replica.Unsync(pb.Channel(ch))
			}
		}
		st.resync = chanSet{}
		st.stale = st.channels
	}
	clear(c.byHnd)
	c.mu.Unlock()
}

func (c *Client) failLists(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, done := range c.lists {
		done <- listResult{err: err}
		delete(c.lists, id)
	}
}

// sendLocked writes m to the live connection, if any. A failed write is only logged: the read
// side sees the broken connection, and the next connection is given the desired state anyway.
// The write's deadline is deadlineConn's, as for every frame. c.wmu must be held.
func (c *Client) sendLocked(m *pb.ClientMessage) {
	if c.conn == nil {
		return
	}
	b, err := wire.EncodeClientMessage(m, c.sess.subprotocol)
	if err != nil {
		c.log.Error("tickwire client: encode command", "err", err)
		return
	}
	op := gws.OpcodeBinary
	if c.sess.subprotocol == wire.SubprotocolJSON {
		op = gws.OpcodeText
	}
	if err := c.conn.WriteMessage(op, b); err != nil {
		c.log.Warn("tickwire client: write command", "err", err)
	}
}

func (c *Client) nextID() uint32 {
	for {
		if id := c.reqID.Add(1); id != 0 {
			return id
		}
	}
}

func checkChannels(chans []pb.Channel) error {
	for _, ch := range chans {
		if ch < pb.Channel_CHANNEL_QUOTE || ch > pb.Channel_CHANNEL_STATS {
			return fmt.Errorf("unknown channel %d", int32(ch))
		}
	}
	return nil
}

// gwsLogger sends gws's own error log lines to the client's logger.
type gwsLogger struct{ log *slog.Logger }

func (l gwsLogger) Error(v ...any) { l.log.Error("gws: " + fmt.Sprint(v...)) }
