package loadgen

// The Centrifugo client mode (issue 13): the same load shape, step rule, histogram, /proc
// sampling and report as for Tickwire, against a running Centrifugo (v6, memory engine), so that
// one tool measures both servers and their figures can be read as ratios.
//
//   - Clients speak Centrifugo's bidirectional protobuf protocol over WebSocket
//     (github.com/centrifugal/protocol; subprotocol centrifuge-protobuf): a Connect command with
//     an HS256 connection token, then one Subscribe per channel once connected; the server's
//     pings (empty replies) are answered with empty commands.
//   - Channel j of the run is "<namespace>:<j>"; client i subscribes channels (i*k + j) mod K,
//     j < k, the layout of the Tickwire clients, so every channel has exactly S subscribers.
//   - The publisher publishes through the server HTTP API's batch endpoint (POST <api>/batch),
//     paced every cfPacePeriod at the step's rate of publications/s. Each payload is the JSON
//     object {"t":<publish time, Unix ns>,"c":<the channel's counter>,"p":"<padding>"}: t gives
//     publish-to-receipt latency, c (1, 2, ... per channel) lets each client detect gaps and
//     duplicates. Publisher worker w owns the channels j with j mod W == w and sends its batches
//     one after another, so each channel's counters reach the API in order.
//   - Expected deliveries: every publication the API accepted, times the subscribers of its
//     channel (exact, like the shadow states on the Tickwire side).

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/centrifugal/protocol"
	"github.com/lxzan/gws"
)

// Targets: the server under load.
const (
	TargetTickwire   = "tickwire"
	TargetCentrifugo = "centrifugo"
)

// CentrifugoConfig is how to reach a running Centrifugo (Config.Centrifugo; with
// Target == TargetCentrifugo only).
type CentrifugoConfig struct {
	// URL is the WebSocket endpoint, e.g. ws://127.0.0.1:8000/connection/websocket.
	URL string `json:"url"`
	// API is the HTTP API's base URL, e.g. http://127.0.0.1:8000/api (publications go to
	// API + "/batch").
	API string `json:"api"`
	// APIKey is the http_api.key (sent as X-API-Key).
	APIKey string `json:"-"`
	// TokenSecret is client.token.hmac_secret_key: clients connect with HS256 tokens signed with
	// it. Empty: no token (a server that allows anonymous or insecure clients).
	TokenSecret string `json:"-"`
	// PID is the server's process, for its CPU and RSS (0: found by the WebSocket URL's port).
	PID int `json:"pid,omitempty"`
	// Namespace of the run's channels (its options, e.g. history, are the server's config).
	Namespace string `json:"namespace"`
	// Publishers is the number of API workers, each sending one batch at a time.
	Publishers int `json:"publishers"`
	// Batch is the most publications per API request.
	Batch int `json:"batch"`
}

// Defaults of the Centrifugo mode.
const (
	// Four workers, each sending what fell due every cfPacePeriod in one request of up to 100
	// publications: at most 800 requests/s whatever the rate. Pacing every 1 ms as the NATS
	// publisher does made requests of 1-3 publications (3,000 requests/s for 3,000
	// publications/s in S2), so Centrifugo spent its CPU on HTTP requests rather than on
	// fan-out, and the publisher fell short of the rate once Centrifugo was busy; a NATS client
	// batches its writes by itself.
	defaultCFPublishers = 4
	defaultCFBatch      = 100
	cfPacePeriod        = 5 * time.Millisecond
	// cfPad pads each payload to about 60 bytes, the size of a Tickwire quote delta.
	cfPad = "................"
	// cfTokenTTL outlives any run (--duration is capped well below).
	cfTokenTTL = 2 * time.Hour
)

func (c CentrifugoConfig) withDefaults() CentrifugoConfig {
	if c.Namespace == "" {
		c.Namespace = "md"
	}
	if c.Publishers == 0 {
		c.Publishers = defaultCFPublishers
	}
	if c.Batch == 0 {
		c.Batch = defaultCFBatch
	}
	return c
}

// validate checks the Centrifugo target: both URLs set and on loopback, sane worker counts.
func (c CentrifugoConfig) validate() error {
	if c.URL == "" || c.API == "" {
		return fmt.Errorf("%w: --target centrifugo needs --centrifugo-url and --centrifugo-api", ErrConfig)
	}
	for _, u := range []string{c.URL, c.API} {
		if err := checkLoopback(u); err != nil {
			return err
		}
	}
	if u, _ := url.Parse(c.URL); u.Scheme != "ws" {
		return fmt.Errorf("%w: --centrifugo-url %q: want ws://", ErrConfig, c.URL)
	}
	if u, _ := url.Parse(c.API); u.Scheme != "http" {
		return fmt.Errorf("%w: --centrifugo-api %q: want http://", ErrConfig, c.API)
	}
	switch {
	case c.Publishers < 1 || c.Publishers > 64:
		return fmt.Errorf("%w: centrifugo publishers %d not in 1..64", ErrConfig, c.Publishers)
	case c.Batch < 1 || c.Batch > 10_000:
		return fmt.Errorf("%w: centrifugo batch %d not in 1..10000", ErrConfig, c.Batch)
	case c.PID < 0:
		return fmt.Errorf("%w: centrifugo pid %d", ErrConfig, c.PID)
	case strings.ContainsAny(c.Namespace, ":\"\\ "):
		return fmt.Errorf("%w: centrifugo namespace %q", ErrConfig, c.Namespace)
	}
	return nil
}

// channel returns the name of the run's channel j.
func (c CentrifugoConfig) channel(j int) string { return c.Namespace + ":" + strconv.Itoa(j) }

// cfToken returns an HS256 connection JWT for user sub, valid for ttl.
func cfToken(secret, sub string, ttl time.Duration) string {
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims := enc.EncodeToString(fmt.Appendf(nil, `{"sub":%q,"exp":%d}`, sub, time.Now().Add(ttl).Unix()))
	return head + "." + claims + "." + cfSign(head+"."+claims, secret)
}

// cfSign returns the base64url HS256 signature of a JWT's signing input.
func cfSign(input, secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(input))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// appendCFPayload appends a publication's JSON payload.
func appendCFPayload(b []byte, tNs int64, counter uint64) []byte {
	b = append(b, `{"t":`...)
	b = strconv.AppendInt(b, tNs, 10)
	b = append(b, `,"c":`...)
	b = strconv.AppendUint(b, counter, 10)
	b = append(b, `,"p":"`+cfPad+`"}`...)
	return b
}

// errCFPayload is a publication whose payload is not one of this tool's.
var errCFPayload = errors.New("loadgen: not a loadgen payload")

// parseCFPayload reads t and c from a payload appendCFPayload wrote, without allocating.
func parseCFPayload(b []byte) (tNs int64, counter uint64, err error) {
	num := func(key string) (uint64, bool) {
		i := bytes.Index(b, []byte(key))
		if i < 0 {
			return 0, false
		}
		i += len(key)
		var v uint64
		start := i
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9' && i-start < 20; i++ {
			v = v*10 + uint64(b[i]-'0')
		}
		return v, i > start && i < len(b) && (b[i] == ',' || b[i] == '}')
	}
	t, ok1 := num(`"t":`)
	c, ok2 := num(`"c":`)
	if !ok1 || !ok2 || t > math.MaxInt64 || c == 0 {
		return 0, 0, errCFPayload
	}
	return int64(t), c, nil
}

// cfStats are one Centrifugo client's counters: its reader goroutine writes them, the collector
// reads them at any time (atomics, cumulative).
type cfStats struct {
	frames     atomic.Uint64
	bytes      atomic.Uint64
	updates    atomic.Uint64 // publications received (in order or not)
	gaps       atomic.Uint64 // publications whose counter skipped ahead of last+1
	dups       atomic.Uint64 // publications at or before the channel's last counter
	errs       atomic.Uint64 // error replies (a refused connect or subscribe)
	malformed  atomic.Uint64 // frames that did not decode, or payloads not ours
	pings      atomic.Uint64 // server pings answered
	subscribed atomic.Int64  // subscribe replies without error
	closeCode  atomic.Int32  // 0 while open; closeByUs; else the code (1006: no close frame)
	hist       Histogram     // publish (payload t) to receipt, per publication
}

// cfClient is one Centrifugo connection of the load: a gws reader goroutine that decodes each
// frame's replies, checks each channel's counters, counts and records latency.
type cfClient struct {
	conn     *gws.Conn
	token    string
	channels []string
	stats    cfStats

	// Reader goroutine only (OnOpen runs before the reader starts).
	index  map[string]int // channel -> slot in last
	last   []uint64       // per channel: the highest counter received
	nextID uint32
	dec    protocol.ProtobufReplyDecoder

	closeOnce sync.Once
	done      chan struct{} // closed when ReadLoop returns
}

// cfCmdEncoder is shared: it is safe for concurrent use.
var cfCmdEncoder = protocol.NewProtobufCommandEncoder()

// dialCF connects one client; it sends Connect at once and subscribes when the server accepts
// it. The reader goroutine runs until Close, which waits for it.
func dialCF(ctx context.Context, wsURL, token string, channels []string, readBuf int) (*cfClient, error) {
	c := &cfClient{token: token, channels: channels, index: make(map[string]int, len(channels)),
		last: make([]uint64, len(channels)), done: make(chan struct{})}
	for i, ch := range channels {
		c.index[ch] = i
	}
	header := http.Header{}
	header.Set("Sec-WebSocket-Protocol", "centrifuge-protobuf")
	conn, resp, err := gws.NewClient(c, &gws.ClientOption{
		Addr: wsURL, RequestHeader: header, ReadBufferSize: readBuf, ReadMaxPayloadSize: 16 << 20,
		HandshakeTimeout: 10 * time.Second,
		NewDialer:        func() (gws.Dialer, error) { return &net.Dialer{Timeout: 10 * time.Second}, nil },
	})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, fmt.Errorf("loadgen: centrifugo connect %s: HTTP %d: %w", wsURL, resp.StatusCode, err)
		}
		return nil, fmt.Errorf("loadgen: centrifugo connect %s: %w", wsURL, err)
	}
	c.conn = conn
	if err := c.send(&protocol.Command{Id: c.id(), Connect: &protocol.ConnectRequest{Token: token, Name: "tickwire-loadgen"}}); err != nil {
		_ = conn.NetConn().Close()
		return nil, err
	}
	go func() {
		defer close(c.done)
		conn.ReadLoop()
	}()
	return c, ctx.Err()
}

func (c *cfClient) id() uint32 { c.nextID++; return c.nextID }

// send writes commands in one frame.
func (c *cfClient) send(cmds ...*protocol.Command) error {
	var frame []byte
	for _, cmd := range cmds {
		b, err := cfCmdEncoder.Encode(cmd)
		if err != nil {
			return fmt.Errorf("loadgen: encode centrifugo command: %w", err)
		}
		frame = append(frame, b...)
	}
	if err := c.conn.WriteMessage(gws.OpcodeBinary, frame); err != nil {
		return fmt.Errorf("loadgen: centrifugo write: %w", err)
	}
	return nil
}

// Close closes the connection and waits for the reader. Safe to call more than once.
func (c *cfClient) Close() {
	c.closeOnce.Do(func() {
		c.stats.closeCode.CompareAndSwap(0, closeByUs)
		_ = c.conn.WriteClose(1000, nil)
		_ = c.conn.NetConn().Close()
		<-c.done
	})
}

func (c *cfClient) OnOpen(*gws.Conn) {}

func (c *cfClient) OnClose(_ *gws.Conn, err error) {
	code := int32(1006)
	var ce *gws.CloseError
	if errors.As(err, &ce) {
		code = int32(ce.Code)
	}
	c.stats.closeCode.CompareAndSwap(0, code)
}

func (c *cfClient) OnPing(conn *gws.Conn, payload []byte) { _ = conn.WritePong(payload) }

func (c *cfClient) OnPong(*gws.Conn, []byte) {}

// OnMessage handles one frame: one or more length-prefixed replies. A frame that does not
// decode is counted as malformed and skipped, never fatal.
func (c *cfClient) OnMessage(_ *gws.Conn, m *gws.Message) {
	defer m.Close()
	now := time.Now().UnixNano()
	data := m.Bytes()
	c.stats.frames.Add(1)
	c.stats.bytes.Add(uint64(len(data)))
	_ = c.dec.Reset(data)
	for {
		r, err := c.dec.Decode()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			c.stats.malformed.Add(1)
			return
		}
		c.reply(r, now)
	}
}

func (c *cfClient) reply(r *protocol.Reply, now int64) {
	switch {
	case r.Push != nil:
		if r.Push.Pub != nil {
			c.publication(r.Push.Channel, r.Push.Pub.Data, now)
		}
	case r.Error != nil:
		c.stats.errs.Add(1)
	case r.Connect != nil:
		cmds := make([]*protocol.Command, len(c.channels))
		for i, ch := range c.channels {
			cmds[i] = &protocol.Command{Id: c.id(), Subscribe: &protocol.SubscribeRequest{Channel: ch}}
		}
		if c.send(cmds...) != nil {
			c.stats.errs.Add(1)
		}
	case r.Subscribe != nil:
		c.stats.subscribed.Add(1)
	case r.Id == 0: // an empty reply is the server's ping: answer with an empty command
		c.stats.pings.Add(1)
		if c.send(&protocol.Command{}) != nil {
			c.stats.errs.Add(1)
		}
	}
}

// publication checks a publication's counter against its channel's last and records its latency.
func (c *cfClient) publication(channel string, data []byte, now int64) {
	slot, ok := c.index[channel]
	if !ok {
		c.stats.malformed.Add(1)
		return
	}
	t, n, err := parseCFPayload(data)
	if err != nil {
		c.stats.malformed.Add(1)
		return
	}
	last := c.last[slot]
	switch {
	case n <= last:
		c.stats.dups.Add(1)
		return
	case n > last+1:
		c.stats.gaps.Add(1)
	}
	c.last[slot] = n
	c.stats.updates.Add(1)
	c.stats.hist.Record(now - t)
}

// cfPublisher publishes through the HTTP API's batch endpoint at a settable rate.
type cfPublisher struct {
	cfg       CentrifugoConfig
	channels  int
	http      *http.Client
	rate      atomic.Uint64   // float64 bits: publications/s
	published []atomic.Uint64 // per channel: publications the API accepted
	dropped   atomic.Uint64   // publications skipped because a worker fell behind by maxBacklog
	apiErrs   atomic.Uint64   // failed requests and error replies
	firstErr  atomic.Pointer[string]
}

func newCFPublisher(cfg CentrifugoConfig, channels int) *cfPublisher {
	return &cfPublisher{cfg: cfg, channels: channels, published: make([]atomic.Uint64, channels),
		http: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			MaxIdleConnsPerHost: cfg.Publishers, MaxConnsPerHost: cfg.Publishers}}}
}

// SetRate sets the publications/s of every worker together.
func (p *cfPublisher) SetRate(r float64) { p.rate.Store(math.Float64bits(r)) }

func (p *cfPublisher) totalPublished() uint64 {
	var n uint64
	for i := range p.published {
		n += p.published[i].Load()
	}
	return n
}

// Run runs the workers until ctx ends; it returns when they all have.
func (p *cfPublisher) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for w := range min(p.cfg.Publishers, p.channels) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.worker(ctx, w, min(p.cfg.Publishers, p.channels))
		}()
	}
	wg.Wait()
	p.http.CloseIdleConnections()
}

// worker w of nw publishes its share of the rate to the channels j with j mod nw == w, round
// robin, one request at a time (so each channel's counters reach the server in order).
func (p *cfPublisher) worker(ctx context.Context, w, nw int) {
	var own []int
	for j := w; j < p.channels; j += nw {
		own = append(own, j)
	}
	counters := make([]uint64, len(own)) // this worker's: next counter - 1, per own channel
	t := time.NewTicker(cfPacePeriod)
	defer t.Stop()
	last := time.Now()
	var due float64
	var next int
	var body []byte
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			r := math.Float64frombits(p.rate.Load()) * float64(len(own)) / float64(p.channels)
			due += r * now.Sub(last).Seconds()
			last = now
			if limit := r * maxBacklog.Seconds(); due > limit+1 {
				p.dropped.Add(uint64(due - limit))
				due = limit
			}
			for due >= 1 && ctx.Err() == nil {
				n := min(int(due), p.cfg.Batch)
				due -= float64(n)
				slots := make([]int, n)
				for i := range slots {
					slots[i] = next
					next = (next + 1) % len(own)
				}
				body = body[:0]
				body = append(body, `{"commands":[`...)
				ts := time.Now().UnixNano()
				for i, s := range slots {
					if i > 0 {
						body = append(body, ',')
					}
					counters[s]++
					body = append(body, `{"publish":{"channel":"`...)
					body = append(body, p.cfg.channel(own[s])...)
					body = append(body, `","data":`...)
					body = appendCFPayload(body, ts, counters[s])
					body = append(body, `}}`...)
				}
				body = append(body, `]}`...)
				// A request is never cancelled half way: the server may have published what it
				// carries, and only its reply says what to count as expected.
				ok, err := p.post(context.WithoutCancel(ctx), body, n)
				if err != nil {
					p.apiErrs.Add(1)
					msg := err.Error()
					p.firstErr.CompareAndSwap(nil, &msg)
				}
				for i, s := range slots {
					if ok[i] {
						p.published[own[s]].Add(1)
					}
				}
			}
		}
	}
}

// cfBatchReply is the API's answer to a batch: one reply per command, in order.
type cfBatchReply struct {
	Replies []struct {
		Error *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	} `json:"replies"`
}

// post sends one batch of n publish commands and returns which of them the server accepted.
func (p *cfPublisher) post(ctx context.Context, body []byte, n int) ([]bool, error) {
	ok := make([]bool, n)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(p.cfg.API, "/")+"/batch", bytes.NewReader(body))
	if err != nil {
		return ok, fmt.Errorf("loadgen: centrifugo api: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", p.cfg.APIKey)
	resp, err := p.http.Do(req)
	if err != nil {
		return ok, fmt.Errorf("loadgen: centrifugo api: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return ok, fmt.Errorf("loadgen: centrifugo api: read reply: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return ok, fmt.Errorf("loadgen: centrifugo api: HTTP %d: %.200s", resp.StatusCode, raw)
	}
	var rep cfBatchReply
	if err := json.Unmarshal(raw, &rep); err != nil {
		return ok, fmt.Errorf("loadgen: centrifugo api: reply: %w", err)
	}
	if len(rep.Replies) != n {
		return ok, fmt.Errorf("loadgen: centrifugo api: %d replies to %d commands", len(rep.Replies), n)
	}
	var firstErr error
	for i, r := range rep.Replies {
		ok[i] = r.Error == nil
		if r.Error != nil && firstErr == nil {
			firstErr = fmt.Errorf("loadgen: centrifugo api: publish error %d: %s", r.Error.Code, r.Error.Message)
		}
	}
	return ok, firstErr
}

// cfRunner is one run against Centrifugo.
type cfRunner struct {
	cfg      Config
	cf       CentrifugoConfig
	log      *slog.Logger
	progress io.Writer
	pid      int // the server's
	self     int
	pub      *cfPublisher
	clients  []*cfClient // nil where the connection failed
	chans    [][]int     // per client: channel indexes
	rss      rssTracker
	base     cfTotals // at the publisher's start
}

// cfTotals is every counter at one instant, summed over the clients.
type cfTotals struct {
	at                                       time.Time
	published, dropped, expected, apiErrs    uint64
	frames, bytes, updates, gaps, dups, errs uint64
	malformed                                uint64
	closes                                   int
	hist                                     *HistSnapshot // latencies since the previous totals
	server, self                             procSample
}

// runCentrifugo is Run for Target == TargetCentrifugo (cfg merged and valid).
func runCentrifugo(ctx context.Context, cfg Config, logger *slog.Logger, progress io.Writer, rep *Report) error {
	cf := cfg.Centrifugo
	r := &cfRunner{cfg: cfg, cf: cf, log: logger, progress: progress, self: os.Getpid(), pid: cf.PID}
	rep.Target = "external"
	if r.pid == 0 {
		u, _ := url.Parse(cf.URL)
		port, _ := strconv.Atoi(u.Port())
		pid, err := pidListeningOn(port)
		if err != nil {
			return fmt.Errorf("%w (the server's CPU and RSS need its pid: --centrifugo-pid)", err)
		}
		r.pid = pid
		rep.Notes = append(rep.Notes, fmt.Sprintf("centrifugo pid %d found by its listening port %d", pid, port))
	}
	if _, err := readProc(r.pid); err != nil {
		return fmt.Errorf("loadgen: centrifugo pid %d: %w", r.pid, err)
	}
	rep.Notes = append(rep.Notes, fmt.Sprintf("centrifugo at %s (pid %d), channels %s:0..%d, publications through %s/batch (%d workers, up to %d per request); \"feed\" columns are the centrifugo process",
		cf.URL, r.pid, cf.Namespace, cfg.Instruments-1, strings.TrimRight(cf.API, "/"), cf.Publishers, cf.Batch))
	r.pub = newCFPublisher(cf, cfg.Instruments)

	time.Sleep(500 * time.Millisecond)
	base, _ := readProc(r.pid)
	selfBase, _ := readProc(r.self)
	rep.Setup.FeedRSSBase, rep.Setup.LoadgenRSSBase = base.RSS, selfBase.RSS
	stopSampler := r.rss.sample(r.pid)
	defer stopSampler()
	err := r.connect(ctx, rep)
	defer r.closeClients()
	if err != nil {
		return err
	}
	recordConnRSS(rep, r.pid, r.self)

	rate := cfg.Rate
	if cfg.TargetDelivered > 0 && cfg.Mode == ModeFixed {
		rate = cfg.TargetDelivered / float64(cfg.Subscribers)
		rep.Notes = append(rep.Notes, fmt.Sprintf("rate %.0f publications/s for %.0f delivered updates/s (%d subscribers per channel)",
			rate, cfg.TargetDelivered, cfg.Subscribers))
	}
	r.base = r.totals()
	pctx, pcancel := context.WithCancel(ctx)
	var pwg sync.WaitGroup
	r.pub.SetRate(rate)
	pwg.Add(1)
	go func() {
		defer pwg.Done()
		r.pub.Run(pctx)
	}()
	defer func() { pcancel(); pwg.Wait() }()

	fmt.Fprintf(r.progress, "%s (centrifugo): %d clients connected, %d/%d subscriptions; running %s mode\n",
		rep.Scenario, rep.Setup.Connected, rep.Setup.StreamsSynced, rep.Setup.StreamsWanted, cfg.Mode)
	emit := func(s StepReport) {
		rep.Steps = append(rep.Steps, s)
		fmt.Fprintf(r.progress, "step %s: %s pub/s (published %s) -> %s upd/s delivered of %s expected, %s frames/s, p50 %s ms p99 %s ms, gaps %d closes %d, centrifugo %.2f cores %.0f ns/upd %s MiB: %s\n",
			s.Name, si(s.TargetRate), si(s.PublishedRate), si(s.DeliveredPerSec), si(s.ExpectedPerSec), si(s.FramesPerSec),
			ms(s.Latency.P50), ms(s.Latency.P99), s.Gaps, s.Closes, s.FeedCPU, s.FeedCPUPerUpdate, mib(s.FeedRSSMax), s.Verdict)
	}
	switch cfg.Mode {
	case ModeStep:
		err = stepLoop(pctx, r.cfg, r.stepRates(), rate, r.measure, emit, rep)
	case ModeFixed, ModeIdle:
		var s StepReport
		s, err = r.measure(pctx, cfg.Mode, rate, 0, cfg.Warmup, cfg.Hold)
		if err == nil {
			emit(s)
			if s.OK && cfg.Mode == ModeFixed {
				rep.Best = &rep.Steps[len(rep.Steps)-1]
			}
			if cfg.Mode == ModeIdle {
				rep.Setup.FeedRSSConns = s.FeedRSS
				rep.Setup.RSSPerConn = perConn(s.FeedRSS, rep.Setup.FeedRSSBase, rep.Setup.Connected)
				rep.Setup.LoadgenPerConn = perConn(s.LoadgenRSS, rep.Setup.LoadgenRSSBase, rep.Setup.Connected)
			}
		}
	}
	pcancel()
	pwg.Wait()
	rep.Totals = r.settle(ctx)
	rep.CloseCodes = map[int]int{}
	for _, c := range r.clients {
		if c != nil {
			if code := c.stats.closeCode.Load(); code != 0 && code != closeByUs {
				rep.CloseCodes[int(code)]++
			}
		}
	}
	if p := r.pub.firstErr.Load(); p != nil {
		rep.Notes = append(rep.Notes, fmt.Sprintf("centrifugo API: %d failed requests or refused publications; first: %s", r.pub.apiErrs.Load(), *p))
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		err = ctx.Err()
	}
	return err
}

// stepRates returns the step schedule: the delivered-rate list turned into publications/s (one
// publication is one update per subscriber), or nil for geometric steps from rate.
func (r *cfRunner) stepRates() []stepRate {
	var out []stepRate
	for _, d := range r.cfg.DeliveredSteps {
		out = append(out, stepRate{events: d / float64(r.cfg.Subscribers), delivered: d})
	}
	return out
}

// connect opens every client with bounded concurrency and waits for their subscriptions.
func (r *cfRunner) connect(ctx context.Context, rep *Report) error {
	cfg := r.cfg
	k := cfg.PerClient()
	r.clients, r.chans = dialAll(ctx, cfg, rep, func(i int, idx []int) (*cfClient, error) {
		names := make([]string, len(idx))
		for j, x := range idx {
			names[j] = r.cf.channel(x)
		}
		token := ""
		if r.cf.TokenSecret != "" {
			token = cfToken(r.cf.TokenSecret, "loadgen-"+strconv.Itoa(i), cfTokenTTL)
		}
		return dialCF(ctx, r.cf.URL, token, names, 4<<10)
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	if rep.Setup.Connected == 0 {
		return fmt.Errorf("loadgen: no centrifugo client connected: %s", rep.Setup.FirstError)
	}
	rep.Setup.StreamsWanted = int64(rep.Setup.Connected * k)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var subscribed int64
		var errs uint64
		for _, c := range r.clients {
			if c != nil {
				subscribed += c.stats.subscribed.Load()
				errs += c.stats.errs.Load()
			}
		}
		rep.Setup.StreamsSynced = subscribed
		// Done when every subscription is confirmed, or every client had an error reply (a
		// refused connect: no use waiting), or after 30 s.
		if subscribed >= rep.Setup.StreamsWanted || errs >= uint64(rep.Setup.Connected) || time.Now().After(deadline) {
			if errs > 0 && rep.Setup.FirstError == "" {
				rep.Setup.FirstError = fmt.Sprintf("%d error replies to connect or subscribe (token secret? namespace %q allowed?)", errs, r.cf.Namespace)
			}
			if subscribed == 0 {
				return fmt.Errorf("loadgen: no centrifugo subscription confirmed: %s", rep.Setup.FirstError)
			}
			return nil
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

func (r *cfRunner) closeClients() { closeAll(r.clients) }

// totals sums every counter now and takes the latencies recorded since the previous call.
func (r *cfRunner) totals() cfTotals {
	t := cfTotals{at: time.Now(), hist: NewHistSnapshot()}
	t.published = r.pub.totalPublished()
	t.dropped = r.pub.dropped.Load()
	t.apiErrs = r.pub.apiErrs.Load()
	for i, c := range r.clients {
		if c == nil {
			continue
		}
		for _, x := range r.chans[i] {
			t.expected += r.pub.published[x].Load()
		}
		s := &c.stats
		t.frames += s.frames.Load()
		t.bytes += s.bytes.Load()
		t.updates += s.updates.Load()
		t.gaps += s.gaps.Load()
		t.dups += s.dups.Load()
		t.errs += s.errs.Load()
		t.malformed += s.malformed.Load()
		if code := s.closeCode.Load(); code != 0 && code != closeByUs {
			t.closes++
		}
		s.hist.Take(t.hist)
	}
	t.server, _ = readProc(r.pid)
	t.self, _ = readProc(r.self)
	return t
}

// settle waits until the clients received every expected publication (or drainTimeout) and
// returns the run's totals.
func (r *cfRunner) settle(ctx context.Context) Totals {
	deadline := time.Now().Add(drainTimeout)
	var t cfTotals
	for {
		t = r.totals()
		if t.updates >= t.expected || time.Now().After(deadline) || sleepCtx(ctx, 50*time.Millisecond) != nil {
			break
		}
	}
	b := &r.base
	return Totals{Published: t.published - b.published, Expected: t.expected - b.expected, Delivered: t.updates - b.updates,
		Frames: t.frames - b.frames, Bytes: t.bytes - b.bytes, Gaps: t.gaps - b.gaps, Duplicates: t.dups - b.dups,
		Errors: t.errs - b.errs + t.apiErrs - b.apiErrs, Malformed: t.malformed - b.malformed, Closes: t.closes - b.closes}
}

// measure sets the rate, waits warmup and measures a window of hold, like runner.measure.
func (r *cfRunner) measure(ctx context.Context, name string, rate, delivered float64, warmup, hold time.Duration) (StepReport, error) {
	r.pub.SetRate(rate)
	if err := sleepCtx(ctx, warmup); err != nil {
		return StepReport{}, err
	}
	r.rss.max.Store(0)
	a := r.totals()
	if err := sleepCtx(ctx, hold); err != nil {
		return StepReport{}, err
	}
	b := r.totals()
	dt := b.at.Sub(a.at).Seconds()
	s := StepReport{Name: name, Seconds: dt, TargetRate: rate, TargetDelivered: delivered}
	per := func(x, y uint64) float64 { return float64(x-y) / dt }
	s.PublishedRate = per(b.published, a.published)
	s.PublishDropped = b.dropped - a.dropped
	s.ExpectedPerSec = per(b.expected, a.expected)
	s.DeliveredPerSec = per(b.updates, a.updates)
	s.Ratio = 1
	if b.expected > a.expected {
		s.Ratio = float64(b.updates-a.updates) / float64(b.expected-a.expected)
	}
	s.FramesPerSec = per(b.frames, a.frames)
	s.BytesPerSec = per(b.bytes, a.bytes)
	if b.frames > a.frames {
		s.UpdatesPerFrame = float64(b.updates-a.updates) / float64(b.frames-a.frames)
	}
	s.Latency = b.hist.Summary()
	s.Gaps = b.gaps - a.gaps
	s.Closes = b.closes - a.closes
	s.Duplicates = b.dups - a.dups
	s.Errors = b.errs - a.errs + b.apiErrs - a.apiErrs
	s.Malformed = b.malformed - a.malformed
	s.FeedCPU = (b.server.CPU - a.server.CPU).Seconds() / dt
	if d := b.updates - a.updates; d > 0 {
		s.FeedCPUPerUpdate = float64(b.server.CPU-a.server.CPU) / float64(d)
	}
	s.FeedRSS = b.server.RSS
	s.FeedRSSMax = max(r.rss.max.Load(), b.server.RSS, a.server.RSS)
	s.LoadgenCPU = (b.self.CPU - a.self.CPU).Seconds() / dt
	s.LoadgenRSS = b.self.RSS
	s.OK, s.PublisherLimited, s.Verdict = judge(window{Seconds: dt, TargetRate: rate, Published: b.published - a.published,
		Expected: b.expected - a.expected, Delivered: b.updates - a.updates, Gaps: s.Gaps, Closes: s.Closes, P99: s.Latency.P99},
		thresholds{MinRatio: r.cfg.MinRatio, MaxP99: r.cfg.MaxP99})
	if s.Errors > 0 && s.OK {
		s.OK, s.Verdict = false, fmt.Sprintf("%d errors", s.Errors)
	}
	return s, nil
}
