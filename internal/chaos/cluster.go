package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tickwire/tickwire/internal/auth"
	"github.com/tickwire/tickwire/internal/bus"
)

// ErrPrerequisite is wrapped by StartCluster's error when something the cluster needs is
// missing: a binary in BinDir, HAProxy, or a configuration file under ConfigDir.
var ErrPrerequisite = errors.New("chaos: prerequisite missing")

// ErrStopped is returned by the Cluster's methods that start or change processes after Stop.
var ErrStopped = errors.New("chaos: cluster stopped")

// ClusterConfig says where the cluster's pieces are and how to run it. The processes and their
// flags are those of `make cluster` (scripts/cluster.sh); the zero value of each field picks
// that script's default.
type ClusterConfig struct {
	// ConfigDir is the repository root: the processes run there and read deploy/nats/cluster/
	// nats.conf, deploy/nats/tickwire-auth.conf and deploy/haproxy/haproxy.cfg from it.
	// Default ".".
	ConfigDir string
	// BinDir holds nats-server, ingest, feed and tickctl; relative to ConfigDir unless absolute.
	// Default "bin".
	BinDir string
	// HAProxy is the haproxy binary; default "haproxy" from PATH, else /usr/sbin/haproxy.
	HAProxy string
	// WorkDir receives everything the cluster writes: nats-N/ (each node's JetStream store),
	// auth/ (the NATS users' passwords), feed-hs256.key, logs/<name>.log. Created if missing;
	// what a previous run left there is reused (the stores keep the stream). Required.
	WorkDir string
	// Host is the address every listener binds, an IP literal; default 127.0.0.1.
	Host string
	// BasePort, if not 0, fixes the ports: BasePort+0..18 (NATS client 3, NATS route 3, NATS
	// monitoring 3, feed 3, feed admin 3, ingest metrics 2, HAProxy, HAProxy stats). 0: free
	// ports are picked at start, below the kernel's ephemeral range (so that no outgoing
	// connection takes the port of a killed process before its restart). The route proxies
	// always listen on kernel-picked ports (they live as long as the Cluster).
	BasePort int
	// Instruments and Rate (events/s) of the synthetic ingest source; default 50 and 1000.
	Instruments int
	Rate        int
	// LeaseTTL of the ingest lease (both ingest processes hold --lease synthetic); default 5s.
	LeaseTTL time.Duration
	// StreamMaxAge and StreamMaxBytes limit the event stream (R3); default 2h and 1 GiB.
	StreamMaxAge   time.Duration
	StreamMaxBytes int64
	// FeedArgs and IngestArgs are appended to every feed's and ingest's command line (e.g.
	// "--log-level=debug").
	FeedArgs, IngestArgs []string
	// StartTimeout bounds StartCluster (on top of its ctx); default 3 minutes.
	StartTimeout time.Duration
	// Logger receives the Cluster's own events (starts, exits, cuts); default none.
	Logger *slog.Logger
}

// Process names, in start order.
var procNames = []string{"nats-1", "nats-2", "nats-3", "ingest-1", "ingest-2", "feed-1", "feed-2", "feed-3", "haproxy"}

const (
	natsNodes  = 3
	feedCount  = 3
	ingestProc = 2
	portCount  = 19
	// natsConfFile, haproxyCfgFile: relative to ConfigDir, as scripts/cluster.sh passes them.
	natsConfFile   = "deploy/nats/cluster/nats.conf"
	natsAuthFile   = "deploy/nats/tickwire-auth.conf"
	haproxyCfgFile = "deploy/haproxy/haproxy.cfg"
	// pollEvery is how often readiness and state are polled.
	pollEvery = 200 * time.Millisecond
)

type procKind int

const (
	kindNATS procKind = iota
	kindIngest
	kindFeed
	kindHAProxy
)

// Cluster is a running Tickwire cluster of real processes: 3 nats-server nodes (JetStream, the
// event stream at R3) whose route links all pass through TCPProxy instances owned by the
// Cluster, 2 ingest processes under one lease, 3 feeds and HAProxy in front of the feeds. It
// is started by StartCluster and must be stopped with Stop. Its methods are safe for concurrent
// use.
type Cluster struct {
	cfg    ClusterConfig // resolved: absolute paths, defaults applied
	logger *slog.Logger
	host   string

	natsClient, natsRoute, natsHTTP [natsNodes]int
	feedPort, feedAdmin             [feedCount]int
	ingestMetrics                   [ingestProc]int
	lbPort, lbStats                 int

	authDir, keyFile, logDir string

	// proxies[i][j], i != j: node i's route link to node j (listens on a free port, forwards to
	// node j's route port). advertise[i]: node i's advertised cluster address, a refusing port.
	proxies   [natsNodes][natsNodes]*TCPProxy
	advertise [natsNodes]*refusingPort

	procs map[string]*proc
	http  *http.Client

	mu          sync.Mutex
	partitioned [natsNodes]bool // guarded by mu

	exitsMu sync.Mutex
	exits   []Exit // guarded by exitsMu

	wg sync.WaitGroup // every goroutine of the Cluster (process waiters)
	// life orders starts against Stop: a start holds it shared and checks stopping; Stop sets
	// stopping holding it exclusively, so no process starts after Stop has begun.
	life     sync.RWMutex
	stopping atomic.Bool
	stopOnce sync.Once
	stopErr  error
}

// proc is one process of the cluster, started (again) from a fixed command line and
// environment.
type proc struct {
	name    string
	kind    procKind
	idx     int // 0-based index within its kind
	path    string
	args    []string
	env     []string
	dir     string
	logFile string

	mu      sync.Mutex
	cmd     *exec.Cmd     // guarded by mu: the current (or last) run
	done    chan struct{} // guarded by mu: closed when the current run has exited
	exitErr error         // guarded by mu: the last run's exit status
	starts  int           // guarded by mu
	ending  bool          // guarded by mu: the Cluster sent the current run a signal that ends it
}

// Exit is one exit of a cluster process, as Exits reports it.
type Exit struct {
	Name   string
	PID    int
	At     time.Time
	Status string // e.g. "signal: killed", "exit status 1", "exit status 0"
	// Expected: the Cluster ended it (Kill, Stop, or Signal with SIGTERM, SIGINT, SIGQUIT or
	// SIGKILL). An unexpected exit is a process that crashed or gave up by itself.
	Expected bool
}

// StartCluster starts the whole cluster and returns once it serves: the NATS cluster formed with
// a JetStream meta leader, the event stream created at R3, every ingest healthy and one of them
// holding the lease, the 3 feeds ready (/readyz 200), HAProxy up with at least one feed UP
// behind it (/readyz through it answers 200). The order is scripts/cluster.sh's, except that
// ingest-2 starts once ingest-1 holds the lease (their lease bucket creation races), and an
// ingest or feed that exits before it is ready is started again (up to startRetries times, a
// warning each, and an unexpected entry in Exits). ctx bounds the start only; the processes run
// until Stop. On failure everything started is stopped and the error says which process failed
// and ends with the tail of its log; missing binaries or files wrap ErrPrerequisite.
func StartCluster(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	c, err := newCluster(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.StartTimeout)
	defer cancel()
	began := time.Now()
	if err := c.start(ctx); err != nil {
		_ = c.Stop()
		return nil, err
	}
	c.logger.Info("cluster up", "took", time.Since(began).Round(time.Millisecond), "lb", c.WSURL(),
		"nats", strings.Join(c.NATSURLs(), ","), "workdir", c.cfg.WorkDir)
	return c, nil
}

// newCluster resolves cfg, checks the prerequisites, writes the secrets and sets up ports,
// proxies and the process table; it starts no process.
func newCluster(cfg ClusterConfig) (*Cluster, error) {
	if cfg.WorkDir == "" {
		return nil, errors.New("chaos: ClusterConfig.WorkDir is required")
	}
	if cfg.ConfigDir == "" {
		cfg.ConfigDir = "."
	}
	if cfg.BinDir == "" {
		cfg.BinDir = "bin"
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Instruments <= 0 {
		cfg.Instruments = 50
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 1000
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 5 * time.Second
	}
	if cfg.StreamMaxAge <= 0 {
		cfg.StreamMaxAge = 2 * time.Hour
	}
	if cfg.StreamMaxBytes <= 0 {
		cfg.StreamMaxBytes = 1 << 30
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 3 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	var err error
	if cfg.ConfigDir, err = filepath.Abs(cfg.ConfigDir); err != nil {
		return nil, fmt.Errorf("chaos: config dir: %w", err)
	}
	if !filepath.IsAbs(cfg.BinDir) {
		cfg.BinDir = filepath.Join(cfg.ConfigDir, cfg.BinDir)
	}
	if cfg.WorkDir, err = filepath.Abs(cfg.WorkDir); err != nil {
		return nil, fmt.Errorf("chaos: work dir: %w", err)
	}
	if net.ParseIP(cfg.Host) == nil {
		return nil, fmt.Errorf("chaos: Host %q is not an IP address", cfg.Host)
	}
	if cfg.HAProxy == "" {
		cfg.HAProxy = "haproxy"
	}
	if cfg.HAProxy, err = findHAProxy(cfg.HAProxy); err != nil {
		return nil, err
	}
	for _, b := range []string{"nats-server", "ingest", "feed", "tickctl"} {
		if fi, err := os.Stat(filepath.Join(cfg.BinDir, b)); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return nil, fmt.Errorf("%w: %s/%s (make build; nats-server: cd tools && go build -o ../bin/nats-server github.com/nats-io/nats-server/v2)",
				ErrPrerequisite, cfg.BinDir, b)
		}
	}
	for _, f := range []string{natsConfFile, natsAuthFile, haproxyCfgFile} {
		if _, err := os.Stat(filepath.Join(cfg.ConfigDir, f)); err != nil {
			return nil, fmt.Errorf("%w: %s under %s: %w", ErrPrerequisite, f, cfg.ConfigDir, err)
		}
	}

	c := &Cluster{cfg: cfg, logger: cfg.Logger.With("component", "chaos-cluster"), host: cfg.Host,
		authDir: filepath.Join(cfg.WorkDir, "auth"), keyFile: filepath.Join(cfg.WorkDir, "feed-hs256.key"),
		logDir: filepath.Join(cfg.WorkDir, "logs"), procs: map[string]*proc{},
		http: &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
	if err := os.MkdirAll(c.logDir, 0o755); err != nil {
		return nil, fmt.Errorf("chaos: work dir: %w", err)
	}
	if err := c.writeSecrets(); err != nil {
		return nil, err
	}
	if err := c.pickPorts(); err != nil {
		return nil, err
	}
	if err := c.setupRouting(); err != nil {
		c.closeRouting()
		return nil, err
	}
	c.defineProcs()
	return c, nil
}

// freePorts returns n distinct ports free on host now, found by listening on them (all at
// once) and closing. They are picked below the kernel's ephemeral port range when there is room:
// a port in that range, free while its process is down (killed, before its restart), can be
// taken meanwhile as the local port of any outgoing connection, and the restart then fails
// ("address already in use"). Otherwise (no room, or the range unknown) the kernel picks them.
func freePorts(host string, n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	var ports []int
	if lo := ephemeralLow(); lo-minPickedPort >= 1000 {
		start := minPickedPort + rand.IntN(lo-minPickedPort)
		for k := 0; k < lo-minPickedPort && len(ports) < n; k++ {
			port := minPickedPort + (start-minPickedPort+k)%(lo-minPickedPort)
			ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
			if err != nil {
				continue // in use
			}
			lns = append(lns, ln)
			ports = append(ports, port)
		}
	}
	for len(ports) < n {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, fmt.Errorf("chaos: pick a free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// minPickedPort is the lowest port freePorts picks (below it: well-known and registered
// services' usual ports).
const minPickedPort = 20000

// ephemeralLow returns the first port of Linux's ephemeral (local) port range, 0 if unknown.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 0
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil {
		return 0
	}
	return lo
}

func findHAProxy(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	if name == "haproxy" {
		if fi, err := os.Stat("/usr/sbin/haproxy"); err == nil && !fi.IsDir() {
			return "/usr/sbin/haproxy", nil
		}
	}
	return "", fmt.Errorf("%w: HAProxy (%s) not found (Debian: apt-get install -y haproxy)", ErrPrerequisite, name)
}

// writeSecrets creates the NATS users' password files (auth/<user>.password, mode 0600; kept
// when present) and the feeds' HS256 key (kept when present).
func (c *Cluster) writeSecrets() error {
	if err := os.MkdirAll(c.authDir, 0o700); err != nil {
		return fmt.Errorf("chaos: auth dir: %w", err)
	}
	if err := os.Chmod(c.authDir, 0o700); err != nil {
		return fmt.Errorf("chaos: auth dir: %w", err)
	}
	for _, u := range bus.DefaultUsers() {
		f := bus.PasswordFile(c.authDir, u.Name)
		if _, err := bus.ReadPasswordFile(f); err == nil {
			continue
		}
		// Letters and digits, starting with a letter: nats-server parses the environment
		// variable's value as config (see deploy/nats/cluster/nats.conf).
		pw := "tw" + string(auth.NewSecret())[:40]
		if err := os.WriteFile(f, []byte(pw+"\n"), 0o600); err != nil {
			return fmt.Errorf("chaos: write password of %s: %w", u.Name, err)
		}
		if err := os.Chmod(f, 0o600); err != nil {
			return fmt.Errorf("chaos: password of %s: %w", u.Name, err)
		}
	}
	if _, err := os.Stat(c.keyFile); err != nil {
		if err := os.WriteFile(c.keyFile, append(auth.NewSecret(), '\n'), 0o600); err != nil {
			return fmt.Errorf("chaos: write HS256 key: %w", err)
		}
	}
	return nil
}

// pickPorts assigns the processes' ports: BasePort+n, or free ports (freePorts).
func (c *Cluster) pickPorts() error {
	ports := make([]int, portCount)
	if c.cfg.BasePort > 0 {
		for i := range ports {
			ports[i] = c.cfg.BasePort + i
		}
	} else {
		var err error
		if ports, err = freePorts(c.host, portCount); err != nil {
			return err
		}
	}
	next := func() int { p := ports[0]; ports = ports[1:]; return p }
	for i := range natsNodes {
		c.natsClient[i] = next()
	}
	for i := range natsNodes {
		c.natsRoute[i] = next()
	}
	for i := range natsNodes {
		c.natsHTTP[i] = next()
	}
	for i := range feedCount {
		c.feedPort[i] = next()
	}
	for i := range feedCount {
		c.feedAdmin[i] = next()
	}
	for i := range ingestProc {
		c.ingestMetrics[i] = next()
	}
	c.lbPort, c.lbStats = next(), next()
	return nil
}

// setupRouting starts the route proxies p(i->j) and binds each node's advertised (refusing)
// cluster address.
func (c *Cluster) setupRouting() error {
	for i := range natsNodes {
		r, err := newRefusingPort(c.host)
		if err != nil {
			return err
		}
		c.advertise[i] = r
		for j := range natsNodes {
			if i == j {
				continue
			}
			p, err := NewTCPProxy(fmt.Sprintf("route nats-%d->nats-%d", i+1, j+1), net.JoinHostPort(c.host, "0"),
				c.addr(c.natsRoute[j]), c.logger)
			if err != nil {
				return err
			}
			c.proxies[i][j] = p
		}
	}
	return nil
}

func (c *Cluster) closeRouting() {
	for i := range natsNodes {
		for j := range natsNodes {
			if p := c.proxies[i][j]; p != nil {
				_ = p.Close()
			}
		}
		_ = c.advertise[i].Close()
	}
}

func (c *Cluster) addr(port int) string { return net.JoinHostPort(c.host, strconv.Itoa(port)) }

// baseEnv is this process's environment without the variables the cluster's processes read
// as settings (TICKWIRE_*, NATS_*, LB_*): each process gets exactly what scripts/cluster.sh
// gives it.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "TICKWIRE_") || strings.HasPrefix(kv, "NATS_") || strings.HasPrefix(kv, "LB_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// defineProcs writes the process table: the command lines and environments of
// scripts/cluster.sh, with the NATS routes through the proxies (plus --cluster_advertise).
func (c *Cluster) defineProcs() {
	bin := func(b string) string { return filepath.Join(c.cfg.BinDir, b) }
	var natsURLs []string
	for i := range natsNodes {
		natsURLs = append(natsURLs, "nats://"+c.addr(c.natsClient[i]))
	}
	urls := strings.Join(natsURLs, ",")
	lbURL := "http://" + c.addr(c.lbPort)
	streamFlags := []string{"--stream-replicas", "3", "--stream-max-age", c.cfg.StreamMaxAge.String(),
		"--stream-max-bytes", strconv.FormatInt(c.cfg.StreamMaxBytes, 10)}
	add := func(name string, kind procKind, idx int, path string, env []string, args ...string) {
		c.procs[name] = &proc{name: name, kind: kind, idx: idx, path: path, args: args,
			env: append(baseEnv(), env...), dir: c.cfg.ConfigDir, logFile: filepath.Join(c.logDir, name+".log")}
	}

	var pwEnv []string
	for _, u := range bus.DefaultUsers() {
		pw, _ := bus.ReadPasswordFile(bus.PasswordFile(c.authDir, u.Name)) // written by writeSecrets
		pwEnv = append(pwEnv, bus.PasswordEnvVar(u.Name)+"="+pw)
	}
	for i := range natsNodes {
		var routes []string
		for j := range natsNodes {
			if j != i {
				routes = append(routes, "nats://"+c.proxies[i][j].Addr())
			}
		}
		env := []string{
			"NATS_SERVER_NAME=" + natsName(i),
			"NATS_LISTEN=" + c.addr(c.natsClient[i]),
			"NATS_HTTP=" + c.addr(c.natsHTTP[i]),
			"NATS_CLUSTER_NAME=tickwire",
			"NATS_CLUSTER_LISTEN=" + c.addr(c.natsRoute[i]),
			"NATS_ROUTES=[" + strings.Join(routes, ", ") + "]",
			"NATS_STORE_DIR=" + filepath.Join(c.cfg.WorkDir, natsName(i)),
		}
		// --cluster_advertise: the address other nodes dial for a route they learn by gossip
		// (implicit routes) is one that refuses, so every route is one of the configured,
		// proxied ones. The flag overrides only that setting of the shared nats.conf.
		add(natsName(i), kindNATS, i, bin("nats-server"), append(env, pwEnv...),
			"-c", natsConfFile, "--cluster_advertise", c.advertise[i].addr)
	}
	for i := range ingestProc {
		args := []string{"--nats-url", urls, "--nats-auth-dir", c.authDir, "--source", "synthetic",
			"--synthetic-instruments", strconv.Itoa(c.cfg.Instruments), "--synthetic-rate", strconv.Itoa(c.cfg.Rate),
			"--metrics-listen", c.addr(c.ingestMetrics[i])}
		args = append(args, streamFlags...)
		args = append(args, "--lease", "synthetic", "--lease-ttl", c.cfg.LeaseTTL.String())
		args = append(args, c.cfg.IngestArgs...)
		add(fmt.Sprintf("ingest-%d", i+1), kindIngest, i, bin("ingest"), nil, args...)
	}
	for i := range feedCount {
		args := []string{"--listen", c.addr(c.feedPort[i]), "--admin-listen", c.addr(c.feedAdmin[i]),
			"--public-url", lbURL + "/", "--nats-url", urls, "--nats-auth-dir", c.authDir, "--auth-hs256-key-file", c.keyFile}
		args = append(args, streamFlags...)
		args = append(args, "--revocation-replicas", "3", "--replay-start", "--max-conns-per-ip=-1", "--candles-rate=-1")
		args = append(args, c.cfg.FeedArgs...)
		add(fmt.Sprintf("feed-%d", i+1), kindFeed, i, bin("feed"), nil, args...)
	}
	add("haproxy", kindHAProxy, 0, c.cfg.HAProxy, []string{
		"LB_BIND=" + c.addr(c.lbPort), "LB_STATS_BIND=" + c.addr(c.lbStats),
		"LB_FEED_1=" + c.addr(c.feedPort[0]), "LB_FEED_2=" + c.addr(c.feedPort[1]), "LB_FEED_3=" + c.addr(c.feedPort[2]),
	}, "-db", "-f", haproxyCfgFile)
}

func natsName(i int) string { return fmt.Sprintf("nats-%d", i+1) }

// start brings the cluster up (StartCluster says in which order).
func (c *Cluster) start(ctx context.Context) error {
	step := func(what string, began time.Time) {
		c.logger.Info(what, "took", time.Since(began).Round(time.Millisecond))
	}
	t := time.Now()
	for i := range natsNodes {
		if err := c.startProc(natsName(i)); err != nil {
			return err
		}
	}
	for i := range natsNodes {
		if err := c.WaitReady(ctx, natsName(i)); err != nil {
			return err
		}
	}
	leader, err := c.metaLeader(ctx)
	if err != nil {
		return err
	}
	step("NATS cluster formed, meta leader "+leader, t)

	t = time.Now()
	if err := c.createStream(ctx); err != nil {
		return err
	}
	step("event stream at R3", t)

	// ingest-1 first, until it holds the lease: two ingest processes creating the lease bucket
	// at once can fail ("lease: bucket TICKWIRE_LEASES status: ... stream not found": the R3
	// bucket created by the other is not yet readable), which exits the process.
	t = time.Now()
	if err := c.startProc("ingest-1"); err != nil {
		return err
	}
	if err := c.waitReadyStarting(ctx, "ingest-1"); err != nil {
		return err
	}
	if _, err := c.ActiveIngest(ctx); err != nil {
		return err
	}
	if err := c.startProc("ingest-2"); err != nil {
		return err
	}
	for i := range feedCount {
		if err := c.startProc(fmt.Sprintf("feed-%d", i+1)); err != nil {
			return err
		}
	}
	if err := c.waitReadyStarting(ctx, "ingest-2"); err != nil {
		return err
	}
	for i := range feedCount {
		if err := c.waitReadyStarting(ctx, fmt.Sprintf("feed-%d", i+1)); err != nil {
			return err
		}
	}
	if _, err := c.ActiveIngest(ctx); err != nil {
		return err
	}
	step("ingest active, feeds ready", t)

	t = time.Now()
	if err := c.startProc("haproxy"); err != nil {
		return err
	}
	if err := c.WaitReady(ctx, "haproxy"); err != nil {
		return err
	}
	step("HAProxy serving", t)
	return nil
}

// startRetries is how many times StartCluster starts an ingest or feed again that exits
// during the start (each time logged as a warning with the tail of its log): processes of the
// same kind starting at once race to create the JetStream buckets and streams they share.
const startRetries = 2

// waitReadyStarting is WaitReady during StartCluster: an ingest or feed that exits before it
// is ready is started again, up to startRetries times.
func (c *Cluster) waitReadyStarting(ctx context.Context, name string) error {
	for try := 0; ; try++ {
		err := c.WaitReady(ctx, name)
		if err == nil || c.Running(name) || try >= startRetries || ctx.Err() != nil {
			return err
		}
		c.logger.Warn("exited during the cluster's start; starting it again", "proc", name, "err", err)
		if err := c.startProc(name); err != nil {
			return err
		}
	}
}

// createStream creates the event stream at R3 as scripts/cluster.sh does (tickctl stream as
// admin), retrying while the JetStream API refuses just after an election.
func (c *Cluster) createStream(ctx context.Context) error {
	args := []string{"--nats-url", strings.Join(c.NATSURLs(), ","), "--nats-user", "admin", "--nats-auth-dir", c.authDir,
		"stream", "--replicas", "3", "--max-age", c.cfg.StreamMaxAge.String(),
		"--max-bytes", strconv.FormatInt(c.cfg.StreamMaxBytes, 10)}
	logf, err := os.OpenFile(filepath.Join(c.logDir, "tickctl.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("chaos: tickctl log: %w", err)
	}
	defer logf.Close()
	var last []byte
	for try := 1; ; try++ {
		tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		cmd := exec.CommandContext(tctx, filepath.Join(c.cfg.BinDir, "tickctl"), args...)
		cmd.Dir = c.cfg.ConfigDir
		cmd.Env = baseEnv()
		out, err := cmd.CombinedOutput()
		cancel()
		fmt.Fprintf(logf, "== %s tickctl stream (try %d)\n%s", time.Now().UTC().Format(time.RFC3339), try, out)
		if err == nil {
			return nil
		}
		last = out
		if try >= 20 || ctx.Err() != nil {
			return fmt.Errorf("chaos: create the event stream (tickctl stream, %d tries): %w: %s", try, err,
				bytes.TrimSpace(last))
		}
		if err := sleepCtx(ctx, time.Second); err != nil {
			return fmt.Errorf("chaos: create the event stream: %w: %s", err, bytes.TrimSpace(last))
		}
	}
}

// --- processes ---------------------------------------------------------------------------

func (c *Cluster) proc(name string) (*proc, error) {
	p, ok := c.procs[name]
	if !ok {
		return nil, fmt.Errorf("chaos: no process %q (want one of %s)", name, strings.Join(procNames, ", "))
	}
	return p, nil
}

// startProc starts name's process, its output appended to its log after a line marking the
// start. It fails if the process runs.
func (c *Cluster) startProc(name string) error {
	p, err := c.proc(name)
	if err != nil {
		return err
	}
	c.life.RLock()
	defer c.life.RUnlock()
	if c.stopping.Load() {
		return fmt.Errorf("chaos: start %s: %w", name, ErrStopped)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.runningLocked() {
		return fmt.Errorf("chaos: %s is running (pid %d)", name, p.cmd.Process.Pid)
	}
	logf, err := os.OpenFile(p.logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("chaos: start %s: log: %w", name, err)
	}
	defer logf.Close() // the child has its own descriptor
	fmt.Fprintf(logf, "== %s start %s: %s %s\n", time.Now().UTC().Format(time.RFC3339Nano), name, p.path,
		strings.Join(p.args, " "))
	cmd := exec.Command(p.path, p.args...)
	cmd.Dir = p.dir
	cmd.Env = p.env
	cmd.Stdout = logf
	cmd.Stderr = logf
	// Its own process group (a terminal's Ctrl-C reaches the test, which stops the cluster in
	// order), and killed if this process dies first: never an orphan cluster on the machine.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("chaos: start %s: %w", name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.exitErr = cmd, done, nil
	p.starts++
	c.logger.Info("started", "proc", name, "pid", cmd.Process.Pid, "start", p.starts)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		err := cmd.Wait()
		p.mu.Lock()
		p.exitErr = err
		expected := p.ending || c.stopping.Load()
		p.ending = false
		p.mu.Unlock()
		e := Exit{Name: name, PID: cmd.Process.Pid, At: time.Now(), Status: exitStatus(err), Expected: expected}
		c.exitsMu.Lock()
		c.exits = append(c.exits, e)
		c.exitsMu.Unlock()
		close(done)
		switch {
		case !expected:
			c.logger.Warn("exited on its own", "proc", name, "pid", e.PID, "status", e.Status,
				"log", p.logFile)
		case !c.stopping.Load():
			c.logger.Info("exited", "proc", name, "pid", e.PID, "status", e.Status)
		}
	}()
	return nil
}

func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

func (p *proc) runningLocked() bool {
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// current returns the current run's pid and done channel (0, nil: never started).
func (p *proc) current() (int, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0, nil
	}
	return p.cmd.Process.Pid, p.done
}

func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.runningLocked()
}

// signal sends sig to the process by its pid if it runs; it reports whether it did.
func (p *proc) signal(sig syscall.Signal) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.runningLocked() {
		return false, nil
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		if errors.Is(err, os.ErrProcessDone) {
			return false, nil
		}
		return false, fmt.Errorf("chaos: signal %v to %s (pid %d): %w", sig, p.name, p.cmd.Process.Pid, err)
	}
	switch sig {
	case syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGKILL:
		p.ending = true
	}
	return true, nil
}

// Procs returns the names of the cluster's processes: nats-1..3, ingest-1..2, feed-1..3,
// haproxy.
func (c *Cluster) Procs() []string { return slices.Clone(procNames) }

// Running reports whether name's process runs now (false for an unknown name).
func (c *Cluster) Running(name string) bool {
	p, err := c.proc(name)
	return err == nil && p.running()
}

// PID returns the pid of name's running process, 0 if it does not run.
func (c *Cluster) PID(name string) int {
	p, err := c.proc(name)
	if err != nil || !p.running() {
		return 0
	}
	pid, _ := p.current()
	return pid
}

// Exits returns every exit of the cluster's processes so far, in order; those not Expected
// are crashes or processes that gave up by themselves (each also logged as a warning).
func (c *Cluster) Exits() []Exit {
	c.exitsMu.Lock()
	defer c.exitsMu.Unlock()
	return slices.Clone(c.exits)
}

// LogFile returns the file name's process writes its output to (appended across restarts).
func (c *Cluster) LogFile(name string) string { return filepath.Join(c.logDir, name+".log") }

// Kill sends SIGKILL to name's process and waits until it has exited (at most 10 s). Killing a
// process that does not run is an error.
func (c *Cluster) Kill(name string) error {
	p, err := c.proc(name)
	if err != nil {
		return err
	}
	pid, done := p.current()
	sent, err := p.signal(syscall.SIGKILL)
	if err != nil {
		return err
	}
	if !sent {
		return fmt.Errorf("chaos: kill %s: not running", name)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("chaos: kill %s (pid %d): still running 10 s after SIGKILL", name, pid)
	}
	c.logger.Info("killed", "proc", name, "pid", pid)
	return nil
}

// Restart starts name's process again with the same command line and environment (for a NATS
// node: the same store directory, ports and proxied routes). It does not wait for readiness
// (WaitReady does); it fails if the process runs, or the cluster is stopping (ErrStopped).
func (c *Cluster) Restart(name string) error {
	return c.startProc(name)
}

// Signal sends sig to name's running process (e.g. SIGTERM for a graceful stop, SIGSTOP and
// SIGCONT to freeze and thaw it) without waiting; it is an error if the process does not run.
// Stop thaws a frozen process before stopping it.
func (c *Cluster) Signal(name string, sig syscall.Signal) error {
	p, err := c.proc(name)
	if err != nil {
		return err
	}
	sent, err := p.signal(sig)
	if err != nil {
		return err
	}
	if !sent {
		return fmt.Errorf("chaos: signal %v to %s: not running", sig, name)
	}
	c.logger.Info("signalled", "proc", name, "signal", sig.String())
	return nil
}

// WaitReady waits until name's process is ready: a NATS node's /healthz answers 200 (in
// clustered JetStream: its routes are up, the meta group has a leader and this node is
// current), an ingest's /healthz answers 200 (connected to NATS), a feed's /readyz answers 200,
// HAProxy's /readyz through it answers 200 (at least one feed UP behind it). It fails at once
// if the process is not running or exits meanwhile (with the tail of its log), and when ctx
// ends.
func (c *Cluster) WaitReady(ctx context.Context, name string) error {
	p, err := c.proc(name)
	if err != nil {
		return err
	}
	url := c.readyURL(p)
	var last string
	for {
		if !p.running() {
			return fmt.Errorf("chaos: %s is not running (%s); last lines of its log:\n%s", name, p.lastExit(), c.tail(name, 15))
		}
		code, body, err := c.get(ctx, url)
		if err == nil && code == http.StatusOK {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("%d %s", code, strings.TrimSpace(body))
		}
		if err := sleepCtx(ctx, pollEvery); err != nil {
			return fmt.Errorf("chaos: %s not ready (%s: %s): %w; last lines of its log:\n%s", name, url, last, err, c.tail(name, 15))
		}
	}
}

func (p *proc) lastExit() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		return "never started"
	}
	return exitStatus(p.exitErr)
}

func (c *Cluster) readyURL(p *proc) string {
	switch p.kind {
	case kindNATS:
		return "http://" + c.addr(c.natsHTTP[p.idx]) + "/healthz"
	case kindIngest:
		return "http://" + c.addr(c.ingestMetrics[p.idx]) + "/healthz"
	case kindFeed:
		return "http://" + c.addr(c.feedPort[p.idx]) + "/readyz"
	default:
		return "http://" + c.addr(c.lbPort) + "/readyz"
	}
}

// tail returns the last n lines of name's log, indented.
func (c *Cluster) tail(name string, n int) string {
	b, err := os.ReadFile(c.LogFile(name))
	if err != nil {
		return "    (no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}

// get fetches url; it returns the status code and up to 1 MB of the body.
func (c *Cluster) get(ctx context.Context, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b), err
}

func (c *Cluster) getJSON(ctx context.Context, url string, v any) error {
	code, body, err := c.get(ctx, url)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", url, code, strings.TrimSpace(body))
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// --- addresses and credentials ------------------------------------------------------------

// WSURL returns the WebSocket URL through HAProxy, ws://host:port/ws.
func (c *Cluster) WSURL() string { return "ws://" + c.addr(c.lbPort) + "/ws" }

// LBURL returns HAProxy's HTTP base URL (the dashboard, /readyz of whichever feed it picks).
func (c *Cluster) LBURL() string { return "http://" + c.addr(c.lbPort) }

// LBStatsURL returns HAProxy's stats page (/), with /healthz and /metrics under it.
func (c *Cluster) LBStatsURL() string { return "http://" + c.addr(c.lbStats) + "/" }

// FeedWSURLs returns each feed's own WebSocket URL, feed-1 first.
func (c *Cluster) FeedWSURLs() []string {
	var us []string
	for i := range feedCount {
		us = append(us, "ws://"+c.addr(c.feedPort[i])+"/ws")
	}
	return us
}

// FeedAdminURLs returns each feed's admin base URL (/metrics, /debug/pprof/), feed-1 first.
func (c *Cluster) FeedAdminURLs() []string {
	var us []string
	for i := range feedCount {
		us = append(us, "http://"+c.addr(c.feedAdmin[i]))
	}
	return us
}

// HTTPURL returns the base URL of name's HTTP endpoint: a NATS node's monitoring (/healthz,
// /jsz, /routez), an ingest's /metrics and /healthz, a feed's public listener, HAProxy's
// stats listener. "" for an unknown name.
func (c *Cluster) HTTPURL(name string) string {
	p, err := c.proc(name)
	if err != nil {
		return ""
	}
	switch p.kind {
	case kindNATS:
		return "http://" + c.addr(c.natsHTTP[p.idx])
	case kindIngest:
		return "http://" + c.addr(c.ingestMetrics[p.idx])
	case kindFeed:
		return "http://" + c.addr(c.feedPort[p.idx])
	default:
		return "http://" + c.addr(c.lbStats)
	}
}

// NATSURLs returns each NATS node's client URL, nats-1 first.
func (c *Cluster) NATSURLs() []string {
	var us []string
	for i := range natsNodes {
		us = append(us, "nats://"+c.addr(c.natsClient[i]))
	}
	return us
}

// Auth returns how user (one of bus.DefaultUsers: ingest, feed, tickctl, admin, consolidator)
// connects to the cluster's NATS: its name and its password file. The zero Auth (anonymous,
// refused) for a user the cluster does not have.
func (c *Cluster) Auth(user string) bus.Auth {
	for _, u := range bus.DefaultUsers() {
		if u.Name == user {
			return bus.Auth{User: user, PasswordFile: bus.PasswordFile(c.authDir, user)}
		}
	}
	return bus.Auth{}
}

// AuthDir returns the directory of the NATS users' password files (<user>.password), what the
// processes get as --nats-auth-dir.
func (c *Cluster) AuthDir() string { return c.authDir }

// SigningKeyFile returns the HS256 key file every feed verifies tokens with: mint tokens with
// internal/auth (ReadSecret, MintHS256) or `tickctl token --key-file`.
func (c *Cluster) SigningKeyFile() string { return c.keyFile }

// --- JetStream and lease state ------------------------------------------------------------

// jsz is the part of a NATS node's /jsz?accounts=true&streams=true that the Cluster reads.
type jsz struct {
	Meta *struct {
		Leader string `json:"leader"`
	} `json:"meta_cluster"`
	Accounts []struct {
		Streams []struct {
			Name    string `json:"name"`
			Cluster *struct {
				Leader string `json:"leader"`
			} `json:"cluster"`
		} `json:"stream_detail"`
	} `json:"account_details"`
}

// metaLeader waits until nats-1 names a JetStream meta leader and returns it.
func (c *Cluster) metaLeader(ctx context.Context) (string, error) {
	url := c.HTTPURL("nats-1") + "/jsz"
	var last error
	for {
		var j jsz
		err := c.getJSON(ctx, url, &j)
		if err == nil && j.Meta != nil && j.Meta.Leader != "" {
			return j.Meta.Leader, nil
		}
		if err == nil {
			err = errors.New("no meta leader yet")
		}
		last = err
		if err := sleepCtx(ctx, pollEvery); err != nil {
			return "", fmt.Errorf("chaos: JetStream meta leader: %w (last: %v)", err, last)
		}
	}
}

// StreamLeader returns the NATS node leading the event stream (TICKWIRE_EVENTS): a running node,
// not cut off by Partition, that says so itself and that a majority of the nodes (2 of 3) name
// as the stream's leader on their monitoring /jsz. It waits for such a node until ctx ends:
// during an election, and after a kill or a partition of the leader while the others still
// name it (until their election timeout, several seconds).
func (c *Cluster) StreamLeader(ctx context.Context) (string, error) {
	var last string
	for {
		votes := map[string]int{}
		self := map[string]bool{}
		var seen []string
		for i := range natsNodes {
			name := natsName(i)
			if !c.Running(name) {
				seen = append(seen, name+": not running")
				continue
			}
			var j jsz
			if err := c.getJSON(ctx, c.HTTPURL(name)+"/jsz?accounts=true&streams=true", &j); err != nil {
				seen = append(seen, name+": "+err.Error())
				continue
			}
			l := streamLeaderIn(j, bus.DefaultStreamName)
			seen = append(seen, name+": leader "+strconv.Quote(l))
			if l != "" {
				votes[l]++
				if l == name {
					self[name] = true
				}
			}
		}
		for l, n := range votes {
			if self[l] && n*2 > natsNodes && c.Running(l) && !c.Partitioned(l) {
				return l, nil
			}
		}
		last = strings.Join(seen, "; ")
		if err := sleepCtx(ctx, pollEvery); err != nil {
			return "", fmt.Errorf("chaos: stream leader of %s: %w (%s)", bus.DefaultStreamName, err, last)
		}
	}
}

func streamLeaderIn(j jsz, stream string) string {
	for _, a := range j.Accounts {
		for _, s := range a.Streams {
			if s.Name == stream && s.Cluster != nil {
				return s.Cluster.Leader
			}
		}
	}
	return ""
}

// ActiveIngest returns the ingest process holding the lease: the one whose /healthz answers
// 200 "ok active". It waits until exactly one running ingest says so (none, or two at once
// around a takeover, is not an answer) or ctx ends.
func (c *Cluster) ActiveIngest(ctx context.Context) (string, error) {
	var last string
	for {
		var active, seen []string
		for i := range ingestProc {
			name := fmt.Sprintf("ingest-%d", i+1)
			if !c.Running(name) {
				seen = append(seen, name+": not running")
				continue
			}
			code, body, err := c.get(ctx, c.HTTPURL(name)+"/healthz")
			switch {
			case err != nil:
				seen = append(seen, name+": "+err.Error())
			default:
				body = strings.TrimSpace(body)
				seen = append(seen, fmt.Sprintf("%s: %d %s", name, code, body))
				if code == http.StatusOK && body == "ok active" {
					active = append(active, name)
				}
			}
		}
		if len(active) == 1 {
			return active[0], nil
		}
		last = strings.Join(seen, "; ")
		if err := sleepCtx(ctx, pollEvery); err != nil {
			return "", fmt.Errorf("chaos: active ingest: %w (%s)", err, last)
		}
	}
}

// --- partitions ---------------------------------------------------------------------------

func natsIndex(node string) (int, error) {
	for i := range natsNodes {
		if natsName(i) == node {
			return i, nil
		}
	}
	return 0, fmt.Errorf("chaos: %q is not a NATS node (nats-1..nats-%d)", node, natsNodes)
}

// Partition cuts node (nats-1..3) off the other NATS nodes: every route link between it and
// the others (both directions, all through the Cluster's proxies) is closed now and new ones are
// refused until Heal. Its client and monitoring ports stay reachable. Partitioning a node that
// is partitioned already is not an error.
func (c *Cluster) Partition(node string) error {
	k, err := natsIndex(node)
	if err != nil {
		return err
	}
	if c.stopping.Load() {
		return fmt.Errorf("chaos: partition %s: %w", node, ErrStopped)
	}
	c.mu.Lock()
	c.partitioned[k] = true
	c.mu.Unlock()
	closed := 0
	for j := range natsNodes {
		if j != k {
			closed += c.proxies[k][j].Cut()
			closed += c.proxies[j][k].Cut()
		}
	}
	c.logger.Info("partitioned", "node", node, "closed_links", closed)
	return nil
}

// Heal undoes Partition(node): its route links are accepted again (the nodes' route reconnects,
// every second, re-form them). A link stays cut if its other end is partitioned too.
func (c *Cluster) Heal(node string) error {
	k, err := natsIndex(node)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.partitioned[k] = false
	for j := range natsNodes {
		if j != k && !c.partitioned[j] {
			c.proxies[k][j].Restore()
			c.proxies[j][k].Restore()
		}
	}
	c.logger.Info("healed", "node", node)
	return nil
}

// Partitioned reports whether node is cut off by Partition.
func (c *Cluster) Partitioned(node string) bool {
	k, err := natsIndex(node)
	if err != nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.partitioned[k]
}

// routez is the part of a NATS node's /routez that the Cluster reads.
type routez struct {
	NumRoutes int `json:"num_routes"`
	Routes    []struct {
		RemoteName string `json:"remote_name"`
		IP         string `json:"ip"`
		Port       int    `json:"port"`
	} `json:"routes"`
}

// RouteStatus is one NATS node's view of its routes (its monitoring /routez).
type RouteStatus struct {
	// NumRoutes counts route connections (with route pooling, several per peer).
	NumRoutes int
	// Peers are the distinct nodes it has a route with, sorted.
	Peers []string
}

// Routes returns node's routes as its /routez shows them now.
func (c *Cluster) Routes(ctx context.Context, node string) (RouteStatus, error) {
	if _, err := natsIndex(node); err != nil {
		return RouteStatus{}, err
	}
	var r routez
	if err := c.getJSON(ctx, c.HTTPURL(node)+"/routez", &r); err != nil {
		return RouteStatus{}, fmt.Errorf("chaos: routes of %s: %w", node, err)
	}
	st := RouteStatus{NumRoutes: r.NumRoutes}
	for _, rt := range r.Routes {
		if !slices.Contains(st.Peers, rt.RemoteName) {
			st.Peers = append(st.Peers, rt.RemoteName)
		}
	}
	slices.Sort(st.Peers)
	return st, nil
}

// CheckRoutesProxied verifies on every running node's /routez that each of its routes passes
// through the Cluster's proxies (so that Partition cuts it): the route's remote address is the
// node's own proxy to that peer (the node dialed it) or the local address of a connection the
// peer's proxy to the node dialed (the peer dialed it). An error names each route that bypasses them (e.g. one learned by gossip).
func (c *Cluster) CheckRoutesProxied(ctx context.Context) error {
	var bad []string
	for i := range natsNodes {
		name := natsName(i)
		if !c.Running(name) {
			continue
		}
		var r routez
		if err := c.getJSON(ctx, c.HTTPURL(name)+"/routez", &r); err != nil {
			return fmt.Errorf("chaos: routes of %s: %w", name, err)
		}
		for _, rt := range r.Routes {
			j, err := natsIndex(rt.RemoteName)
			if err != nil || j == i {
				bad = append(bad, fmt.Sprintf("%s: route to unknown node %q (%s:%d)", name, rt.RemoteName, rt.IP, rt.Port))
				continue
			}
			// (did_solicit does not tell the direction: a node marks an accepted route
			// solicited when it drops its own duplicate of it.)
			remote := net.JoinHostPort(rt.IP, strconv.Itoa(rt.Port))
			if remote != c.proxies[i][j].Addr() && !c.proxies[j][i].usedUpstreamLocal(remote) {
				bad = append(bad, fmt.Sprintf("%s: route with %s at %s is neither to its proxy %s nor from the proxy %s->%s",
					name, rt.RemoteName, remote, c.proxies[i][j].Addr(), rt.RemoteName, name))
			}
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("chaos: routes bypassing the proxies: %s", strings.Join(bad, "; "))
	}
	return nil
}

// --- stop ---------------------------------------------------------------------------------

// Stop stops the cluster gracefully, in scripts/cluster.sh's order: SIGTERM to the ingests
// (waiting up to 10 s), then the feeds (15 s, they drain), SIGUSR1 to HAProxy (soft stop, 5 s),
// SIGTERM to the NATS nodes (10 s); a process still running after its bound gets SIGKILL. Then
// it closes the route proxies and waits for every goroutine of the Cluster. It returns an error
// naming each process that had to be killed or did not exit; later calls return the same.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		c.life.Lock()
		c.stopping.Store(true)
		c.life.Unlock()
		var errs []error
		groups := []struct {
			sig   syscall.Signal
			bound time.Duration
			names []string
		}{
			{syscall.SIGTERM, 10 * time.Second, []string{"ingest-1", "ingest-2"}},
			{syscall.SIGTERM, 15 * time.Second, []string{"feed-1", "feed-2", "feed-3"}},
			{syscall.SIGUSR1, 5 * time.Second, []string{"haproxy"}},
			{syscall.SIGTERM, 10 * time.Second, []string{"nats-3", "nats-2", "nats-1"}},
		}
		for _, g := range groups {
			errs = append(errs, c.stopGroup(g.sig, g.bound, g.names)...)
		}
		c.closeRouting()
		c.wg.Wait()
		c.stopErr = errors.Join(errs...)
		c.logger.Info("cluster stopped", "err", c.stopErr)
	})
	return c.stopErr
}

// stopGroup signals the running processes of names, waits up to bound for all of them, then
// kills the rest.
func (c *Cluster) stopGroup(sig syscall.Signal, bound time.Duration, names []string) []error {
	var errs []error
	type waiting struct {
		p    *proc
		pid  int
		done chan struct{}
	}
	var ws []waiting
	for _, n := range names {
		p := c.procs[n]
		pid, done := p.current()
		_, _ = p.signal(syscall.SIGCONT) // one frozen by Signal(SIGSTOP) could not act on sig
		sent, err := p.signal(sig)
		if err != nil {
			errs = append(errs, err)
		}
		if sent {
			ws = append(ws, waiting{p, pid, done})
		}
	}
	deadline := time.NewTimer(bound)
	defer deadline.Stop()
	for _, w := range ws {
		select {
		case <-w.done:
			continue
		case <-deadline.C:
		}
		// Past the bound: kill this one and every other still running (deadline fired once).
		for _, w2 := range ws {
			if sent, _ := w2.p.signal(syscall.SIGKILL); sent {
				errs = append(errs, fmt.Errorf("chaos: stop %s (pid %d): still running %v after SIG%s: killed",
					w2.p.name, w2.pid, bound, strings.ToUpper(unixSignalName(sig))))
			}
		}
		for _, w2 := range ws {
			select {
			case <-w2.done:
			case <-time.After(5 * time.Second):
				errs = append(errs, fmt.Errorf("chaos: stop %s (pid %d): did not exit after SIGKILL", w2.p.name, w2.pid))
			}
		}
		break
	}
	return errs
}

func unixSignalName(s syscall.Signal) string {
	switch s {
	case syscall.SIGTERM:
		return "term"
	case syscall.SIGUSR1:
		return "usr1"
	case syscall.SIGKILL:
		return "kill"
	}
	return s.String()
}
