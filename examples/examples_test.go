// Package examples_test runs every example of examples/ against a real Tickwire system on
// loopback and checks what it printed.
//
// TestExamples builds the binaries once (go build into a temporary directory: cmd/feed,
// cmd/ingest and cmd/tickctl, then every examples/<name>/main.go), mints a token with tickctl,
// starts the feed (embedded NATS and JetStream, random ports, a data directory of its own) and
// ingest with a synthetic market, and then runs each case of cases: one command line, run to its
// end (it must exit with status 0), and a check of its output. Cases run in parallel, except
// those marked Alone (they disturb the system: the feed restart of "resume"), which run after,
// one at a time. Every process is killed by its PID when the test ends. go test -short skips it.
//
// # Adding a case
//
// Append a Case to cases (or return one from a function, like replayCase, when its command and
// its check share state):
//
//   - Name names the subtest.
//   - Command(t, sys) returns the command line: argv[0] is a program, either a path (sys.Bin
//     gives a built Go example's) or a name looked up in PATH, then its arguments. It may set
//     things up first: sys.StartReplay starts a replay session. sys.URL is the feed's ws://
//     endpoint, sys.Token a token with every right, sys.IDs the instrument ids and
//     sys.Instruments their reference data (price and size scales).
//   - Check(t, sys, out) asserts on what the program printed (out.Stdout, out.Stderr), after it
//     exited with status 0.
//   - During(t, sys, p), if set, runs while the program runs: it may wait for its output so far
//     (p.Stdout, with waitOutput), act on the system (sys.RestartFeed), and stop the program
//     (p.Interrupt), which must then exit with status 0.
//   - Alone runs the case after the parallel ones, by itself; Timeout bounds the program's run
//     (default 30 s); Needs names programs that must be installed (in PATH), else the case is
//     skipped: a Node example is {Needs: []string{"node"}}. With node installed, TestExamples
//     fails at once (it does not skip) when web/client/dist or an examples/node-*/node_modules
//     is missing: `make node-examples` makes them, and `make test` runs it first.
//
// A case for a Node example of the same output format reuses a Go example's check (nodeExample
// gives the command line "node node-<name>/main.mjs --url --token --instruments" and the extra
// flags; the working directory of every command is examples/):
//
//	{Name: "node quotes", Needs: []string{"node"}, Command: nodeExample("quotes", "--duration", "3"), Check: checkQuotes}
//
// and a new Node example goes into NODE_EXAMPLES in the Makefile too.
package examples_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tickwire/tickwire/internal/testwait"
	"github.com/tickwire/tickwire/pkg/client"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// The synthetic market the system runs: a few instruments, a few hundred events a second.
const (
	instruments = 3
	rate        = 300
)

// Case is one program run against the system, and what it must have printed (see the package
// comment).
type Case struct {
	Name    string
	Needs   []string      // programs that must be in PATH, else the case is skipped
	Alone   bool          // run after the parallel cases, by itself (it disturbs the system)
	Timeout time.Duration // how long the program may run; 0: 30 s
	// Command returns the command line, run in examples/.
	Command func(t *testing.T, s *System) []string
	// During, if set, runs while the program runs.
	During func(t *testing.T, s *System, p *Proc)
	// Check asserts on the output of the program, which exited with status 0.
	Check func(t testing.TB, s *System, out Output)
}

// Output is what a program printed.
type Output struct {
	Stdout, Stderr string
}

var cases = []Case{
	{Name: "quotes", Command: goExample("quotes", "-duration", "3s"), Check: checkQuotes},
	{Name: "book", Command: goExample("book", "-duration", "3s", "-interval", "500ms", "-levels", "5"), Check: checkBook},
	{Name: "tape", Command: goExample("tape", "-duration", "3s"), Check: checkTape},
	replayCase("replay", "examples-replay", func(s *System, session string) []string {
		return []string{s.Bin("replay"), "-url", s.URL, "-token", s.Token, "-session", session, "-duration", "20s"}
	}),
	resumeCase("resume", goExample("resume")),

	// The Node.js examples (examples/node-*, TypeScript client), checked as their Go twins.
	{Name: "node quotes", Needs: []string{"node"}, Command: nodeExample("quotes", "--duration", "3"), Check: checkQuotes},
	{Name: "node book", Needs: []string{"node"}, Command: nodeExample("book", "--duration", "3", "--interval", "0.5", "--levels", "5"), Check: checkBook},
	{Name: "node tape", Needs: []string{"node"}, Command: nodeExample("tape", "--duration", "3"), Check: checkTape},
	withNeeds(replayCase("node replay", "examples-node-replay", func(s *System, session string) []string {
		return []string{"node", "node-replay/main.mjs", "--url", s.URL, "--token", s.Token, "--session", session, "--duration", "20"}
	}), "node"),
	withNeeds(resumeCase("node resume", nodeExample("resume")), "node"),
}

// goExample is the Command of the Go example name, with the feed's URL, the token, every
// instrument and the extra flags.
func goExample(name string, extra ...string) func(*testing.T, *System) []string {
	return func(_ *testing.T, s *System) []string {
		return append([]string{s.Bin(name), "-url", s.URL, "-token", s.Token, "-instruments", strings.Join(s.IDs, ",")}, extra...)
	}
}

// nodeExample is the Command of the Node example node-<name> (run by node from examples/), with
// the feed's URL, the token, every instrument and the extra flags.
func nodeExample(name string, extra ...string) func(*testing.T, *System) []string {
	return func(_ *testing.T, s *System) []string {
		return append([]string{"node", "node-" + name + "/main.mjs", "--url", s.URL, "--token", s.Token, "--instruments", strings.Join(s.IDs, ",")}, extra...)
	}
}

// withNeeds returns c needing the programs progs too.
func withNeeds(c Case, progs ...string) Case {
	c.Needs = append(slices.Clone(c.Needs), progs...)
	return c
}

// nodeReady fails the test when the Node examples cannot run: node is installed, so they must
// run (a check that cannot fail is a defect), and they need the client's build
// (web/client/dist) and each example's modules, which `make node-examples` makes (`make test`
// runs it first).
func nodeReady(t *testing.T) {
	t.Helper()
	var missing []string
	if _, err := os.Stat(filepath.Join("..", "web", "client", "dist", "index.js")); err != nil {
		missing = append(missing, "web/client/dist/index.js")
	}
	pkgs, _ := filepath.Glob(filepath.Join("node-*", "package.json"))
	if len(pkgs) == 0 {
		t.Fatal("no Node example (examples/node-*/package.json)")
	}
	for _, p := range pkgs {
		mods := filepath.Join(filepath.Dir(p), "node_modules", ".package-lock.json")
		if _, err := os.Stat(mods); err != nil {
			missing = append(missing, "examples/"+filepath.ToSlash(mods))
		}
	}
	if len(missing) > 0 {
		t.Fatalf("node is installed but the Node examples are not set up (missing %s): run `make node-examples` first", strings.Join(missing, ", "))
	}
}

func TestExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the whole system")
	}
	// Before the system starts: Node examples that cannot run fail the test at once.
	if _, err := exec.LookPath("node"); err == nil && slices.ContainsFunc(cases, func(c Case) bool { return slices.Contains(c.Needs, "node") }) {
		nodeReady(t)
	}
	start := time.Now()
	sys := startSystem(t)
	t.Logf("system up in %v", time.Since(start).Round(time.Millisecond))
	t.Run("shared", func(t *testing.T) {
		for _, c := range cases {
			if !c.Alone {
				t.Run(c.Name, func(t *testing.T) {
					t.Parallel()
					runCase(t, sys, c)
				})
			}
		}
	})
	for _, c := range cases {
		if c.Alone {
			t.Run(c.Name, func(t *testing.T) { runCase(t, sys, c) })
		}
	}
	t.Logf("harness: %v", time.Since(start).Round(time.Millisecond))
}

func runCase(t *testing.T, sys *System, c Case) {
	for _, prog := range c.Needs {
		if _, err := exec.LookPath(prog); err != nil {
			t.Skipf("%s is not installed", prog)
		}
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	argv := c.Command(t, sys)
	p := sys.start(t, c.Name, argv...)
	defer func() {
		if t.Failed() {
			t.Logf("%s stdout:\n%s", c.Name, tail(p.Stdout(), 4000))
			t.Logf("%s stderr:\n%s", c.Name, tail(p.Stderr(), 4000))
		}
	}()
	if c.During != nil {
		c.During(t, sys, p)
	}
	if err := p.Wait(timeout); err != nil {
		t.Fatalf("%s: %v", strings.Join(argv, " "), err)
	}
	c.Check(t, sys, Output{Stdout: p.Stdout(), Stderr: p.Stderr()})
}

// System is the feed (with embedded NATS and JetStream) and ingest, run as processes on
// loopback.
type System struct {
	Dir         string // binaries in Dir/bin, the feed's data in Dir/data
	URL         string // the feed's WebSocket endpoint, ws://127.0.0.1:port/ws
	HTTP        string // the feed's HTTP base, http://127.0.0.1:port
	Token       string // every instrument and channel, replay and replay control
	IDs         []string
	Instruments map[string]*pb.InstrumentInfo
	Started     time.Time // when ingest first started: history exists from here on

	feedAddr, natsAddr string
	root               *testing.T // the processes of the system live as long as it

	mu           sync.Mutex
	feed, ingest *Proc
}

// Bin returns the path of a built binary: "feed", "tickctl", or an example's name.
func (s *System) Bin(name string) string { return filepath.Join(s.Dir, "bin", name) }

func startSystem(t *testing.T) *System {
	t.Helper()
	s := &System{Dir: t.TempDir(), feedAddr: freeAddr(t), natsAddr: freeAddr(t), root: t}
	s.URL = "ws://" + s.feedAddr + "/ws"
	s.HTTP = "http://" + s.feedAddr
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	build(t, root, filepath.Join(s.Dir, "bin"), "./cmd/feed", "./cmd/ingest", "./cmd/tickctl")

	key := filepath.Join(s.Dir, "data", "hs256.key")
	if err := os.MkdirAll(filepath.Dir(key), 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(s.Bin("tickctl"), "token", "--key-file", key, "--new-key", "--sub", "examples",
		"--instruments", "*", "--replay-control", "--ttl", "1h").Output()
	if err != nil {
		t.Fatalf("tickctl token: %v", err)
	}
	s.Token = strings.TrimSpace(string(out))

	s.StartFeed(t)
	s.StartIngest(t)
	s.Started = time.Now()

	// The Go examples build while the market makes history to replay.
	var examples []string
	mains, _ := filepath.Glob(filepath.Join(root, "examples", "*", "main.go"))
	for _, m := range mains {
		examples = append(examples, "./examples/"+filepath.Base(filepath.Dir(m)))
	}
	build(t, root, filepath.Join(s.Dir, "bin"), examples...)
	s.listInstruments(t)
	return s
}

// build builds the main packages pkgs of the module at root into dir.
func build(t *testing.T, root, dir string, pkgs ...string) {
	t.Helper()
	// Without the symbol table and DWARF: they link faster, and panics still print their stacks.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-ldflags=-s -w", "-o", dir + string(filepath.Separator)}, pkgs...)...)
	cmd.Dir = root
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %v: %v\n%s", pkgs, err, out)
	}
	t.Logf("built %d binaries in %v", len(pkgs), time.Since(start).Round(time.Millisecond))
}

// StartFeed starts the feed on its address and data directory, and waits until it is ready.
func (s *System) StartFeed(t *testing.T) {
	t.Helper()
	data := filepath.Join(s.Dir, "data")
	p := s.startFor(t, s.root, "feed", s.Bin("feed"), "--listen", s.feedAddr, "--admin-listen", "",
		"--embed-nats", "--nats-listen", s.natsAddr, "--nats-data-dir", filepath.Join(data, "nats"),
		"--nats-auth-dir", filepath.Join(data, "nats-auth"), "--auth-hs256-key-file", filepath.Join(data, "hs256.key"))
	s.mu.Lock()
	s.feed = p
	s.mu.Unlock()
	testwait.For(t, 30*time.Second, "the feed to be ready", func() bool {
		if p.Exited() {
			t.Fatalf("feed exited: %v\n%s", p.Wait(0), tail(p.Stderr(), 2000))
		}
		resp, err := http.Get(s.HTTP + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// StopFeed stops the feed gracefully (SIGTERM: clients are told 1001, NATS is drained).
func (s *System) StopFeed(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	p := s.feed
	s.mu.Unlock()
	p.Terminate(t)
}

// RestartFeed stops the feed and starts it again on the same address and data directory.
func (s *System) RestartFeed(t *testing.T) {
	t.Helper()
	s.StopFeed(t)
	s.StartFeed(t)
}

// StartIngest starts ingest with the synthetic market, publishing to the feed's NATS.
func (s *System) StartIngest(t *testing.T) {
	t.Helper()
	p := s.startFor(t, s.root, "ingest", s.Bin("ingest"), "--nats-url", "nats://"+s.natsAddr,
		"--nats-auth-dir", filepath.Join(s.Dir, "data", "nats-auth"), "--source", "synthetic",
		"--synthetic-instruments", strconv.Itoa(instruments), "--synthetic-rate", strconv.Itoa(rate), "--metrics-listen", "")
	s.mu.Lock()
	s.ingest = p
	s.mu.Unlock()
}

// StopIngest stops ingest gracefully.
func (s *System) StopIngest(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	p := s.ingest
	s.mu.Unlock()
	p.Terminate(t)
}

// listInstruments waits until the feed lists every instrument and keeps their reference data.
func (s *System) listInstruments(t *testing.T) {
	t.Helper()
	c, err := client.New(client.Options{URL: s.URL,
		TokenSource: func(context.Context) (string, error) { return s.Token, nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	var list []*pb.InstrumentInfo
	testwait.For(t, 30*time.Second, fmt.Sprintf("the feed to list %d instruments", instruments), func() bool {
		lctx, lcancel := context.WithTimeout(ctx, 2*time.Second)
		defer lcancel()
		list, err = c.ListInstruments(lctx)
		return err == nil && len(list) == instruments
	})
	s.Instruments = map[string]*pb.InstrumentInfo{}
	for _, info := range list {
		s.IDs = append(s.IDs, info.GetId())
		s.Instruments[info.GetId()] = info
	}
	slices.Sort(s.IDs)
}

// StartReplay starts "tickctl replay" of [from, to] at speed, and returns the session id and
// the tickctl process (which runs until the test ends; it prints each status change).
func (s *System) StartReplay(t *testing.T, session string, from, to time.Time, speed float64) *Proc {
	t.Helper()
	p := s.start(t, "tickctl replay", s.Bin("tickctl"), "replay", "--nats-url", "nats://"+s.natsAddr,
		"--nats-auth-dir", filepath.Join(s.Dir, "data", "nats-auth"), "--session", session,
		"--from", from.UTC().Format(time.RFC3339Nano), "--to", to.UTC().Format(time.RFC3339Nano),
		"--speed", strconv.FormatFloat(speed, 'g', -1, 64), "--feed-url", s.HTTP, "--token", s.Token)
	waitOutput(t, p, 10*time.Second, "replay session "+session+":")
	return p
}

// Proc is a process started by the harness.
type Proc struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr lockedBuffer
	done           chan struct{}
	err            error // set before done is closed
}

// start starts argv as a process, killed (by its PID) when the test ends if it still runs.
func (s *System) start(t *testing.T, name string, argv ...string) *Proc {
	t.Helper()
	return s.startFor(t, t, name, argv...)
}

// startFor is start with the process killed when owner ends: the system's processes outlive
// the subtest that restarts them.
func (s *System) startFor(t, owner *testing.T, name string, argv ...string) *Proc {
	t.Helper()
	p := &Proc{name: name, done: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	owner.Cleanup(func() {
		if !p.Exited() {
			_ = p.cmd.Process.Kill()
		}
		<-p.done
	})
	return p
}

func (p *Proc) Stdout() string { return p.stdout.String() }
func (p *Proc) Stderr() string { return p.stderr.String() }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits up to d for the process to end and returns why it did (nil: status 0).
func (p *Proc) Wait(d time.Duration) error {
	if p.Exited() {
		return p.err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return p.err
	case <-t.C:
		return fmt.Errorf("%s still running after %v", p.name, d)
	}
}

// Interrupt sends SIGINT, as Ctrl-C does.
func (p *Proc) Interrupt(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatalf("interrupt %s: %v", p.name, err)
	}
}

// Terminate sends SIGTERM and waits for a clean exit.
func (p *Proc) Terminate(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("terminate %s: %v", p.name, err)
	}
	if err := p.Wait(30 * time.Second); err != nil {
		t.Fatalf("%s after SIGTERM: %v\n%s", p.name, err, tail(p.Stderr(), 2000))
	}
}

// waitOutput waits until p's stdout contains want.
func waitOutput(t testing.TB, p *Proc, d time.Duration, want string) {
	t.Helper()
	testwait.For(t, d, fmt.Sprintf("%s to print %q", p.name, want), func() bool {
		return strings.Contains(p.Stdout(), want)
	})
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// lines returns the non-empty lines of s.
func lines(s string) []string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// mantissa parses an exact decimal of exactly scale fractional digits ("225.55" at scale 2)
// into its integer mantissa (22555); ok is false for any other form ("225.5", "2.2555e2").
func mantissa(s string, scale int32) (m int64, ok bool) {
	digits := s
	if scale > 0 {
		i := strings.IndexByte(s, '.')
		if i < 1 || len(s)-i-1 != int(scale) {
			return 0, false
		}
		digits = s[:i] + s[i+1:]
	} else if strings.IndexByte(s, '.') >= 0 {
		return 0, false
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return 0, false
		}
	}
	m, err := strconv.ParseInt(digits, 10, 64)
	return m, err == nil
}

// priceSize parses "price x size" at info's scales.
func priceSize(t testing.TB, info *pb.InstrumentInfo, s, line string) (price, size int64) {
	t.Helper()
	ps, ss, ok := strings.Cut(s, " x ")
	if !ok {
		t.Fatalf("%q is not price x size, in %q", s, line)
	}
	price, okp := mantissa(ps, info.GetPriceScale())
	size, oks := mantissa(ss, info.GetSizeScale())
	if !okp || !oks || price <= 0 || size <= 0 {
		t.Fatalf("%q is not an exact price at scale %d x size at scale %d, in %q", s, info.GetPriceScale(), info.GetSizeScale(), line)
	}
	return price, size
}

func (s *System) info(t testing.TB, id, line string) *pb.InstrumentInfo {
	t.Helper()
	info := s.Instruments[id]
	if info == nil {
		t.Fatalf("unknown instrument %q in %q", id, line)
	}
	return info
}

var quoteLine = regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{3} (\S+) +bid (.+?)  ask (.+?)  (snapshot|latency \S+)$`)

// checkQuotes: every line is a quote of a known instrument with exact decimals at its scales
// and bid below ask; each instrument had a snapshot, and quotes changed after it.
func checkQuotes(t testing.TB, s *System, out Output) {
	snapshots, deltas := map[string]int{}, 0
	for _, line := range lines(out.Stdout) {
		m := quoteLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("not a quote line: %q", line)
		}
		info := s.info(t, m[1], line)
		var bid, ask int64
		if m[2] != "-" {
			bid, _ = priceSize(t, info, m[2], line)
		}
		if m[3] != "-" {
			ask, _ = priceSize(t, info, m[3], line)
		}
		if bid != 0 && ask != 0 && bid >= ask {
			t.Fatalf("bid not below ask: %q", line)
		}
		if m[4] == "snapshot" {
			snapshots[m[1]]++
		} else {
			deltas++
		}
	}
	if len(snapshots) != len(s.IDs) || deltas < 10 {
		t.Fatalf("snapshots of %v, %d quote changes: want one of each of the %d instruments, and 10 changes", snapshots, deltas, len(s.IDs))
	}
}

var (
	bookHeader    = regexp.MustCompile(`^book (\S+) depth (\d+) at (\d+)/(\d+) (synced|stale)$`)
	bookWaiting   = regexp.MustCompile(`^book (\S+) waiting for its snapshot$`)
	bookLevel     = regexp.MustCompile(`^  (\d+)  bid (.+?)  ask (.+)$`)
	integrityLine = regexp.MustCompile(`^integrity (final )?((?:\w+=\d+ ?)+)$`)
)

// checkBook: every block's levels are sorted (bids down, asks up) and bid < ask; every
// integrity line has no checksum failure, recheck failure or gap; the final one counts every
// instrument's snapshot, deltas, and a checksum and hash verified for each update.
func checkBook(t testing.TB, s *System, out Output) {
	var (
		cur            *pb.InstrumentInfo
		curLine        string
		level          int
		lastBid        int64
		lastAsk        int64
		synced         = map[string]int{} // synced blocks with levels, per instrument
		final          map[string]uint64
		integrityLines int
	)
	for _, line := range lines(out.Stdout) {
		if m := bookHeader.FindStringSubmatch(line); m != nil {
			cur, curLine, level, lastBid, lastAsk = s.info(t, m[1], line), line, 0, 0, 0
			if d, _ := strconv.Atoi(m[2]); d < 10 {
				t.Fatalf("depth below 10: %q", line)
			}
			if m[5] == "synced" {
				synced[m[1]]++
			}
			continue
		}
		if m := bookWaiting.FindStringSubmatch(line); m != nil {
			s.info(t, m[1], line)
			cur = nil
			continue
		}
		if m := bookLevel.FindStringSubmatch(line); m != nil {
			if cur == nil {
				t.Fatalf("a level outside a book: %q", line)
			}
			level++
			if n, _ := strconv.Atoi(m[1]); n != level {
				t.Fatalf("level %d numbered %q, after %q", level, line, curLine)
			}
			if m[2] != "-" {
				bid, _ := priceSize(t, cur, m[2], line)
				if lastBid != 0 && bid >= lastBid {
					t.Fatalf("bids not sorted best (highest) first: %q after %q", line, curLine)
				}
				lastBid = bid
			}
			if m[3] != "-" {
				ask, _ := priceSize(t, cur, m[3], line)
				if lastAsk != 0 && ask <= lastAsk {
					t.Fatalf("asks not sorted best (lowest) first: %q after %q", line, curLine)
				}
				lastAsk = ask
			}
			if level == 1 && lastBid != 0 && lastAsk != 0 && lastBid >= lastAsk {
				t.Fatalf("best bid not below best ask: %q in %q", line, curLine)
			}
			continue
		}
		m := integrityLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("unexpected line %q", line)
		}
		integrityLines++
		counts := map[string]uint64{}
		for kv := range strings.FieldsSeq(m[2]) {
			k, v, _ := strings.Cut(kv, "=")
			counts[k], _ = strconv.ParseUint(v, 10, 64)
		}
		for _, k := range []string{"checksum_failures", "recheck_failures", "gaps", "epoch_changes"} {
			if n, ok := counts[k]; !ok || n != 0 {
				t.Fatalf("%s: %q", k, line)
			}
		}
		if m[1] != "" {
			final = counts
		}
	}
	if final == nil || integrityLines < 3 {
		t.Fatalf("%d integrity lines, final %v: want several, and a final one", integrityLines, final)
	}
	updates := final["snapshots"] + final["deltas"]
	if final["snapshots"] < uint64(len(s.IDs)) || final["deltas"] < 10 || final["checksum_ok"] != updates || final["hash_ok"] == 0 {
		t.Fatalf("final counters %v: want a snapshot per instrument, deltas, and every update's checksum verified", final)
	}
	for _, id := range s.IDs {
		if synced[id] == 0 {
			t.Fatalf("no synced book of %s printed", id)
		}
	}
}

// checkTape: a CSV header, then well-formed rows of known instruments: an RFC 3339 time since
// the system started, buy or sell, exact decimals at the instrument's scales, a trade id.
func checkTape(t testing.TB, s *System, out Output) {
	r := csv.NewReader(strings.NewReader(out.Stdout))
	r.FieldsPerRecord = 6
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("not CSV of 6 fields: %v", err)
	}
	if len(recs) == 0 || strings.Join(recs[0], ",") != "time,instrument,side,price,size,trade_id" {
		t.Fatalf("no header: %v", recs)
	}
	if len(recs) < 4 {
		t.Fatalf("%d trades, want at least 3", len(recs)-1)
	}
	for _, rec := range recs[1:] {
		line := strings.Join(rec, ",")
		when, err := time.Parse(time.RFC3339Nano, rec[0])
		if err != nil || when.Before(s.Started.Add(-time.Minute)) || when.After(time.Now().Add(time.Minute)) {
			t.Fatalf("time %q: %v (system started at %v)", rec[0], err, s.Started)
		}
		info := s.info(t, rec[1], line)
		if rec[2] != "buy" && rec[2] != "sell" {
			t.Fatalf("side %q in %q", rec[2], line)
		}
		priceSize(t, info, rec[3]+" x "+rec[4], line)
		if rec[5] == "" {
			t.Fatalf("no trade id in %q", line)
		}
	}
}

var (
	replayStatus = regexp.MustCompile(`^status (\w+) clock (\S+) events (\d+) generation (\d+) speed (\S+) window (\S+)\.\.(\S+)$`)
	replayTrade  = regexp.MustCompile(`^trade (\S+) (\S+) (buy|sell|-) (\S+ x \S+) id (\S*)$`)
	replayQuote  = regexp.MustCompile(`^quote (\S+) (\S+) bid (.+?) ask (.+)$`)
	replayEnd    = regexp.MustCompile(`^finished session (\S+): (\d+) events replayed; printed (\d+) trades and (\d+) quotes$`)
)

// replayCase starts a replay session of a past window that has events (the last seconds of the
// synthetic market), runs a replay example (examples/replay, examples/node-replay) on it, and checks that the session finished and the
// example printed its statuses and the window's trades and quotes.
//
// command returns the example's command line, watching session.
func replayCase(name, session string, command func(s *System, session string) []string) Case {
	var (
		tickctl  *Proc
		from, to time.Time
	)
	return Case{
		Name: name,
		Command: func(t *testing.T, s *System) []string {
			// A window of 4 s of history, replayed at its original speed: the example has seconds
			// to connect and subscribe while the session runs.
			testwait.For(t, 10*time.Second, "5 s of history", func() bool { return time.Since(s.Started) > 5*time.Second })
			to = time.Now().Add(-500 * time.Millisecond)
			from = to.Add(-4 * time.Second)
			tickctl = s.StartReplay(t, session, from, to, 1)
			return command(s, session)
		},
		Check: func(t testing.TB, s *System, out Output) {
			waitOutput(t, tickctl, 5*time.Second, "session "+session+": FINISHED")
			var statuses []string
			trades, quotes := 0, 0
			inWindow := func(ts, line string) {
				t.Helper()
				when, err := time.Parse(time.RFC3339Nano, ts)
				if err != nil || when.Before(from) || when.After(to) {
					t.Fatalf("event time %q not in the window %v..%v: %q", ts, from, to, line)
				}
			}
			var end []string
			for _, line := range lines(out.Stdout) {
				if m := replayStatus.FindStringSubmatch(line); m != nil {
					statuses = append(statuses, m[1])
					continue
				}
				if m := replayTrade.FindStringSubmatch(line); m != nil {
					inWindow(m[1], line)
					priceSize(t, s.info(t, m[2], line), m[4], line)
					trades++
					continue
				}
				if m := replayQuote.FindStringSubmatch(line); m != nil {
					inWindow(m[1], line)
					info := s.info(t, m[2], line)
					for _, side := range []string{m[3], m[4]} {
						if side != "-" {
							priceSize(t, info, side, line)
						}
					}
					quotes++
					continue
				}
				if m := replayEnd.FindStringSubmatch(line); m != nil {
					end = m
					continue
				}
				t.Fatalf("unexpected line %q", line)
			}
			if len(statuses) == 0 || statuses[len(statuses)-1] != "FINISHED" {
				t.Fatalf("statuses %v: want the last FINISHED", statuses)
			}
			if trades == 0 || quotes == 0 {
				t.Fatalf("%d trades and %d quotes replayed: want some of each", trades, quotes)
			}
			if end == nil || end[1] != session || end[3] != strconv.Itoa(trades) || end[4] != strconv.Itoa(quotes) {
				t.Fatalf("summary %q: want session %s, %d trades, %d quotes", end, session, trades, quotes)
			}
		},
	}
}

// resumeCase runs a resume example (examples/resume, examples/node-resume) and restarts the feed under it: the example must print its
// reconnect, and every stream must have resumed without a snapshot. Ingest is stopped while
// the feed restarts: the feed embeds NATS, and ingest publishing into a NATS that is down
// starts new epochs (docs/PROTOCOL.md §7.6), which would make which streams resume a matter of
// timing; stopped, it continues its sequences in the same epoch when it starts again.
//
// command is the example's command line.
func resumeCase(name string, command func(*testing.T, *System) []string) Case {
	streams := func(s *System) []string {
		var out []string
		for _, id := range s.IDs {
			out = append(out, id+" quote", id+" book")
		}
		return out
	}
	return Case{
		Name:    name,
		Alone:   true,
		Command: command,
		During: func(t *testing.T, s *System, p *Proc) {
			for _, st := range streams(s) {
				waitOutput(t, p, 15*time.Second, "snapshot "+st+" SUBSCRIBE")
			}
			s.StopIngest(t)
			s.RestartFeed(t)
			s.StartIngest(t)
			waitOutput(t, p, 20*time.Second, "reconnected #2")
			for _, st := range streams(s) {
				waitOutput(t, p, 10*time.Second, "resumed "+st+" from ")
			}
			p.Interrupt(t)
		},
		Check: func(t testing.TB, s *System, out Output) {
			ls := lines(out.Stdout)
			if !slices.Contains(ls, "connected #1") || !strings.Contains(out.Stdout, "disconnected: ") {
				t.Fatalf("no first connect and disconnect printed")
			}
			want := fmt.Sprintf("summary connects=2 resumed=%d snapshots_after_reconnect=0 gaps=0 checksum_failures=0 resyncs=0", 2*len(s.IDs))
			if ls[len(ls)-1] != want {
				t.Fatalf("last line %q, want %q", ls[len(ls)-1], want)
			}
		},
	}
}
