package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/feed"
	"github.com/tickwire/tickwire/internal/profile"
)

// target is the ingest side and feed under load: where clients connect and events go, and the
// processes whose CPU and memory are measured.
type target struct {
	Mode    string // "spawn", "external" or "inprocess"
	WSURL   string
	HTTPURL string
	NATSURL string
	FeedPID int // process whose CPU/RSS is the feed's (self when in-process)
	NATSPID int // separate NATS server process, 0 if none (embedded in the feed, or external)
	Notes   []string
	close   func() error

	// NATSAuth is who the load generator publishes as (the ingest role).
	NATSAuth bus.Auth
	// AdminURL is where the feed serves /metrics ("" if unknown).
	AdminURL string
}

// Close stops whatever the target started. Safe to call more than once.
func (t *target) Close() error {
	if t.close == nil {
		return nil
	}
	f := t.close
	t.close = nil
	return f()
}

// checkLoopback refuses URLs whose host is not a loopback address: the tool loads one machine.
func checkLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: %q: %w", ErrConfig, raw, err)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%w: %s is not a loopback address (loopback only)", ErrConfig, raw)
	}
	return nil
}

// externalTarget uses a running feed and NATS.
func externalTarget(cfg *Config) (*target, error) {
	for _, u := range []string{cfg.FeedURL, cfg.NATSURL, cfg.FeedAdminURL} {
		if u == "" {
			continue
		}
		if err := checkLoopback(u); err != nil {
			return nil, err
		}
	}
	u, _ := url.Parse(cfg.FeedURL)
	t := &target{Mode: "external", WSURL: cfg.FeedURL, NATSURL: cfg.NATSURL, HTTPURL: "http://" + u.Host, FeedPID: cfg.FeedPID,
		NATSAuth: cfg.NATSAuth, AdminURL: strings.TrimRight(cfg.FeedAdminURL, "/")}
	if t.FeedPID == 0 {
		port, _ := strconv.Atoi(u.Port())
		pid, err := pidListeningOn(port)
		if err != nil {
			return nil, fmt.Errorf("%w (the feed's CPU and RSS need its pid)", err)
		}
		t.FeedPID = pid
		t.Notes = append(t.Notes, fmt.Sprintf("feed pid %d found by its listening port %d", pid, port))
	}
	return t, nil
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("loadgen: free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// child is a process this tool started; stop kills it by pid.
type child struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan error
}

func startChild(name, logPath, bin string, args ...string) (*child, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("loadgen: %s log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	// The child dies with this process even if it is killed before it can clean up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("loadgen: start %s (%s): %w", name, bin, err)
	}
	c := &child{name: name, cmd: cmd, log: logPath, done: make(chan error, 1)}
	go func() { c.done <- cmd.Wait(); lf.Close() }()
	return c, nil
}

// stop sends SIGTERM to the child's pid, waits up to grace, then SIGKILL, and waits.
func (c *child) stop(grace time.Duration) error {
	_ = syscall.Kill(c.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case err := <-c.done:
		return exitErr(c.name, err)
	case <-time.After(grace):
		_ = syscall.Kill(c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.done
		return fmt.Errorf("loadgen: %s did not stop within %s; killed", c.name, grace)
	}
}

func exitErr(name string, err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ProcessState != nil {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("loadgen: %s exited: %w", name, err)
	}
	return nil
}

// exited reports whether the child has exited (and why).
func (c *child) exited() (bool, error) {
	select {
	case err := <-c.done:
		c.done <- err
		return true, err
	default:
		return false, nil
	}
}

func tail(path string, n int) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// spawnTarget starts NATS (a child running this binary's serve-nats, or embedded in the feed)
// and the feed (bin/feed, with --cpu-profile when profiling) as child processes on
// random loopback ports with a temporary store, so that their CPU and memory are measured apart
// from the load generator's. Close kills them by pid.
func spawnTarget(ctx context.Context, cfg *Config) (_ *target, err error) {
	dir, err := os.MkdirTemp("", "loadgen-")
	if err != nil {
		return nil, fmt.Errorf("loadgen: temp dir: %w", err)
	}
	var children []*child
	t := &target{Mode: "spawn"}
	t.close = func() error {
		var errs []error
		for i := len(children) - 1; i >= 0; i-- { // feed first, then NATS
			errs = append(errs, children[i].stop(15*time.Second))
		}
		if !cfg.KeepTemp {
			errs = append(errs, os.RemoveAll(dir))
		}
		return errors.Join(errs...)
	}
	defer func() {
		if err != nil {
			for _, c := range children {
				if c.log != "" {
					err = fmt.Errorf("%w\n--- %s log (%s) ---\n%s", err, c.name, c.log, tail(c.log, 20))
				}
			}
			_ = t.Close()
		}
	}()
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("loadgen: own executable: %w", err)
	}
	natsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	feedPort, err := freePort()
	if err != nil {
		return nil, err
	}
	adminPort, err := freePort()
	if err != nil {
		return nil, err
	}
	t.NATSURL = fmt.Sprintf("nats://127.0.0.1:%d", natsPort)
	listen := fmt.Sprintf("127.0.0.1:%d", feedPort)
	adminListen := fmt.Sprintf("127.0.0.1:%d", adminPort)
	t.WSURL, t.HTTPURL, t.AdminURL = "ws://"+listen+"/ws", "http://"+listen, "http://"+adminListen
	// Whoever embeds NATS writes its users' passwords here; the feed and this process read theirs.
	authDir := filepath.Join(dir, "auth")
	t.NATSAuth = bus.Auth{User: string(bus.RoleIngest), PasswordFile: bus.PasswordFile(authDir, string(bus.RoleIngest))}

	if !cfg.FeedEmbedNATS {
		nargs := []string{"serve-nats", "--port", strconv.Itoa(natsPort), "--dir", filepath.Join(dir, "nats"), "--auth-dir", authDir}
		if cfg.NATSProfile != "" {
			nargs = append(nargs, "--profile", cfg.NATSProfile)
		}
		c, err := startChild("nats", filepath.Join(dir, "nats.log"), self, nargs...)
		if err != nil {
			return nil, err
		}
		children = append(children, c)
		t.NATSPID = c.cmd.Process.Pid
		if err := waitTCP(ctx, c, "127.0.0.1:"+strconv.Itoa(natsPort), 20*time.Second); err != nil {
			return nil, err
		}
	}
	// --auth-disabled: loadgen's clients carry no token, and a spawned feed listens on loopback
	// for this run only (an external feed with authentication needs clients with tokens).
	args := []string{"--listen", listen, "--admin-listen", adminListen, "--nats-auth-dir", authDir,
		"--max-conns-per-ip=-1", "--max-conns=-1", "--log-level", "warn", "--auth-disabled"}
	if cfg.FeedEmbedNATS {
		args = append(args, "--embed-nats", "--nats-listen", fmt.Sprintf("127.0.0.1:%d", natsPort),
			"--nats-data-dir", filepath.Join(dir, "nats"))
		t.Notes = append(t.Notes, "NATS embedded in the feed process: feed CPU and RSS include JetStream's")
	} else {
		args = append(args, "--nats-url", t.NATSURL)
	}
	if cfg.FeedProfile != "" {
		args = append(args, "--cpu-profile", cfg.FeedProfile)
	}
	args = append(args, cfg.FeedArgs...)
	fc, err := startChild("feed", filepath.Join(dir, "feed.log"), cfg.FeedBin, args...)
	t.Notes = append(t.Notes, "feed: "+cfg.FeedBin+" "+strings.Join(args, " "))
	if err != nil {
		return nil, err
	}
	children = append(children, fc)
	t.FeedPID = fc.cmd.Process.Pid
	if cfg.FeedEmbedNATS {
		if err := waitTCP(ctx, fc, "127.0.0.1:"+strconv.Itoa(natsPort), 20*time.Second); err != nil {
			return nil, err
		}
	}
	if err := waitTCP(ctx, fc, listen, 20*time.Second); err != nil {
		return nil, err
	}
	return t, nil
}

// waitTCP waits until addr accepts connections, the child exits, or d passes.
func waitTCP(ctx context.Context, c *child, addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		if done, werr := c.exited(); done {
			return fmt.Errorf("loadgen: %s exited before listening on %s: %v", c.name, addr, werr)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("loadgen: %s not listening on %s after %s", c.name, addr, d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// httpClient asks the feed's HTTP endpoints; Run closes its idle connections at the end.
var httpClient = &http.Client{Timeout: 5 * time.Second}

// waitReady polls the feed's /readyz until 200.
func waitReady(ctx context.Context, httpURL string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, httpURL+"/readyz", nil)
		resp, err := httpClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("loadgen: feed at %s not ready after %s", httpURL, d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// countInstruments returns how many instruments of venue the feed lists (GET /api/instruments).
func countInstruments(ctx context.Context, httpURL, venue string) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, httpURL+"/api/instruments", nil)
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("loadgen: list instruments: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("loadgen: list instruments: %w", err)
	}
	return bytes.Count(body, []byte(`"`+venue+`:`)), nil // only each instrument's "id" holds "venue:
}

// inprocessTarget runs an embedded NATS server and internal/feed in this process (for tests,
// and to profile without built binaries). The feed's CPU and RSS are this process's, load
// generator included.
func inprocessTarget(ctx context.Context, cfg *Config, logger *slog.Logger) (_ *target, err error) {
	dir, err := os.MkdirTemp("", "loadgen-")
	if err != nil {
		return nil, fmt.Errorf("loadgen: temp dir: %w", err)
	}
	emb, err := bus.StartEmbedded(bus.EmbeddedConfig{Port: -1, DataDir: dir}, nil)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	addr := make(chan string, 1)
	go func() {
		done <- runFeed(runCtx, emb.ClientURL(), emb.Auth(string(bus.RoleFeed)), "127.0.0.1:0", cfg.InProcessFeed, logger, addr)
	}()
	t := &target{Mode: "inprocess", NATSURL: emb.ClientURL(), NATSAuth: emb.Auth(string(bus.RoleIngest)), FeedPID: os.Getpid(),
		Notes: []string{"feed and NATS run inside the load generator: feed CPU and RSS include the load generator's"}}
	t.close = func() error {
		cancel()
		err := <-done
		emb.Shutdown()
		return errors.Join(err, os.RemoveAll(dir))
	}
	select {
	case a := <-addr:
		// runFeed serves /metrics on its one listener (no admin listener in-process).
		t.WSURL, t.HTTPURL, t.AdminURL = "ws://"+a+"/ws", "http://"+a, "http://"+a
	case err := <-done:
		done <- err
		_ = t.Close()
		return nil, err
	case <-ctx.Done():
		_ = t.Close()
		return nil, ctx.Err()
	}
	return t, nil
}

// runFeed wires internal/feed as cmd/feed does (bus, server, metrics, service) and runs it
// until ctx ends, connecting to NATS as auth. It sends the listen address on addr once
// listening. Unlike cmd/feed it serves /metrics on the same listener (a test's, on loopback).
func runFeed(ctx context.Context, natsURL string, auth bus.Auth, listen string, fcfg feed.Config, logger *slog.Logger, addr chan<- string) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	reg := prometheus.NewRegistry()
	b, err := bus.Connect(ctx, bus.Config{URL: natsURL, Name: "tickwire-feed", Auth: auth}, logger, reg)
	if err != nil {
		return err
	}
	defer b.Close()
	// As cmd/feed wires it, but /metrics on the one listener (no admin listener in-process).
	svc, err := feed.Assemble(feed.Setup{Config: fcfg, Bus: b, Listen: listen, Logger: logger, Registry: reg, PublicMetrics: true})
	if err != nil {
		return err
	}
	addr <- svc.Addr().String()
	err = svc.Run(ctx, 10*time.Second)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// ServeNATS runs an embedded NATS server with JetStream on 127.0.0.1:port storing in dir, its
// users' passwords in authDir, until SIGTERM or SIGINT (the serve-nats child of --spawn). With
// profilePath set it writes a CPU profile of the run there, and the heap when stopping to
// profilePath+".heap".
func ServeNATS(port int, dir, authDir, profilePath string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return serveNATS(ctx, port, dir, authDir, profilePath, nil)
}

// serveNATS is ServeNATS until ctx ends; ready, if not nil, gets the client URL once serving.
func serveNATS(ctx context.Context, port int, dir, authDir, profilePath string, ready chan<- string) (err error) {
	if profilePath != "" {
		stop, perr := profile.StartCPU(profilePath)
		if perr != nil {
			return fmt.Errorf("loadgen: nats: %w", perr)
		}
		defer func() { err = errors.Join(err, stop()) }()
	}
	emb, err := bus.StartEmbedded(bus.EmbeddedConfig{Port: port, DataDir: dir, AuthDir: authDir}, nil)
	if err != nil {
		return err
	}
	if ready != nil {
		ready <- emb.ClientURL()
	}
	<-ctx.Done()
	if profilePath != "" {
		err = profile.WriteHeap(profilePath + ".heap")
	}
	emb.Shutdown()
	return err
}

// feedCounters are counters the feed exposes on /metrics, as the feed sees them.
type feedCounters struct {
	ok          bool
	conflations float64
	closes      map[string]float64 // by close code
	// hists are the cumulative latency histograms of latencyHists, by name: upper bound (s) ->
	// count.
	hists map[string]map[float64]float64
}

// The feed's latency histograms the load tool reads, each a part of the publish-to-receipt
// latency it measures (its publisher stamps the ingest time at the publish call).
const (
	histApply     = "tickwire_feed_ingest_to_apply_seconds"                     // publish to the feed applying it
	histToStore   = `tickwire_bus_consume_lag_seconds{part="ingest_to_store"}`  // publish to JetStream storing it
	histFromStore = `tickwire_bus_consume_lag_seconds{part="store_to_consume"}` // stored to the feed's consumer reading it
)

// histSeries returns the histogram series name of a bucket line's name (name_bucket{...,le="x"}),
// and its upper bound.
func histSeries(name string) (string, float64, bool) {
	i := strings.Index(name, "_bucket{")
	j := strings.LastIndex(name, `le="`)
	if i < 0 || j < i {
		return "", 0, false
	}
	le, err := strconv.ParseFloat(strings.TrimSuffix(name[j+4:], `"}`), 64)
	if err != nil {
		return "", 0, false
	}
	labels := strings.TrimSuffix(name[i+len("_bucket{"):j], ",")
	series := name[:i]
	if labels != "" {
		series += "{" + labels + "}"
	}
	return series, le, true
}

// histQuantile returns the q quantile of the observations between two scrapes of the
// cumulative histogram (before, after: upper bound -> count), interpolated linearly within its
// bucket; 0 if nothing was observed or it lies past the last finite bound.
func histQuantile(before, after map[float64]float64, q float64) time.Duration {
	bounds := make([]float64, 0, len(after))
	for le := range after {
		bounds = append(bounds, le)
	}
	slices.Sort(bounds)
	if len(bounds) == 0 {
		return 0
	}
	total := after[bounds[len(bounds)-1]] - before[bounds[len(bounds)-1]] // +Inf holds every observation
	if total <= 0 {
		return 0
	}
	rank := q * total
	lo, below := 0.0, 0.0
	for _, le := range bounds {
		n := after[le] - before[le]
		if n >= rank {
			if math.IsInf(le, 1) {
				return 0
			}
			frac := 0.0
			if n > below {
				frac = (rank - below) / (n - below)
			}
			return time.Duration((lo + frac*(le-lo)) * 1e9)
		}
		lo, below = le, n
	}
	return 0
}

// scrapeFeed reads the feed's conflation and close counters from its /metrics (text format) on
// its admin listener adminURL ("": unknown, not ok).
func scrapeFeed(ctx context.Context, adminURL string) feedCounters {
	fc := feedCounters{closes: map[string]float64{}, hists: map[string]map[float64]float64{}}
	if adminURL == "" {
		return fc
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, adminURL+"/metrics", nil)
	resp, err := httpClient.Do(req)
	if err != nil {
		return fc
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return fc
	}
	fc.ok = true
	for _, line := range strings.Split(string(body), "\n") {
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			continue
		}
		switch {
		case name == "tickwire_feed_conflations_total":
			fc.conflations = v
		case strings.Contains(name, "_bucket{"):
			if series, le, ok := histSeries(name); ok && (series == histApply || series == histToStore || series == histFromStore) {
				if fc.hists[series] == nil {
					fc.hists[series] = map[float64]float64{}
				}
				fc.hists[series][le] = v
			}
		case strings.HasPrefix(name, `tickwire_feed_closes_total{code="`):
			fc.closes[strings.TrimSuffix(strings.TrimPrefix(name, `tickwire_feed_closes_total{code="`), `"}`)] = v
		}
	}
	return fc
}

// closesSince returns the closes by code between two scrapes.
func (fc feedCounters) closesSince(before feedCounters) map[string]int {
	out := map[string]int{}
	for code, v := range fc.closes {
		if d := int(v - before.closes[code]); d > 0 {
			out[code] = d
		}
	}
	return out
}
