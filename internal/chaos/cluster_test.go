package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// repoRoot is the repository root seen from this package's directory.
const repoRoot = "../.."

// requireClusterPieces skips the test when HAProxy or bin/nats-server is missing, unless
// TICKWIRE_CHAOS is set: then a missing piece fails it. (The other binaries are make build's:
// StartCluster fails without them.)
func requireClusterPieces(t *testing.T) {
	t.Helper()
	var missing []string
	if _, err := findHAProxy("haproxy"); err != nil {
		missing = append(missing, "haproxy (apt-get install -y haproxy)")
	}
	if _, err := os.Stat(filepath.Join(repoRoot, "bin", "nats-server")); err != nil {
		missing = append(missing, "bin/nats-server")
	}
	if len(missing) == 0 {
		return
	}
	msg := "missing " + strings.Join(missing, ", ") +
		" (cd tools && go build -o ../bin/nats-server github.com/nats-io/nats-server/v2)"
	if os.Getenv("TICKWIRE_CHAOS") == "" {
		t.Skip(msg + "; set TICKWIRE_CHAOS=1 to make this a failure")
	}
	t.Fatal(msg)
}

// waitFor polls cond every 100 ms until it returns nil or d passes; it returns cond's last error.
func waitFor(ctx context.Context, d time.Duration, cond func() error) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		err := cond()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func TestTCPProxyCutAndRestore(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // echo server
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); buf := make([]byte, 64); n, _ := c.Read(buf); _, _ = c.Write(buf[:n]) }()
		}
	}()
	p, err := NewTCPProxy("test", "127.0.0.1:0", ln.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	echo := func() error {
		c, err := net.DialTimeout("tcp", p.Addr(), time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		buf := make([]byte, 4)
		if _, err := c.Read(buf); err != nil {
			return err
		}
		if string(buf) != "ping" {
			return errors.New("echo: got " + string(buf))
		}
		return nil
	}
	if err := echo(); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	// A live connection is closed by Cut.
	live, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if err := waitFor(t.Context(), 2*time.Second, func() error {
		if p.Live() != 1 {
			return errors.New("not live yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n := p.Cut(); n != 1 {
		t.Fatalf("Cut closed %d connections, want 1", n)
	}
	_ = live.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := live.Read(make([]byte, 1)); err == nil {
		t.Fatal("a live connection survived Cut")
	}
	if err := echo(); err == nil {
		t.Fatal("a new connection worked while cut")
	}
	p.Restore()
	if err := echo(); err != nil {
		t.Fatalf("after Restore: %v", err)
	}
	// The refusing port refuses.
	r, err := newRefusingPort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if c, err := net.DialTimeout("tcp", r.addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("dial %s (bound, not listening) succeeded", r.addr)
	}
}

// TestCluster starts the whole cluster as processes and exercises what the chaos schedule
// does: kill and restart a feed, kill the stream leader's node (the leadership moves),
// partition a NATS node off the others and heal it; then stops everything.
func TestCluster(t *testing.T) {
	requireClusterPieces(t)
	ctx, cancel := context.WithTimeout(t.Context(), 110*time.Second)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	work := os.Getenv("TICKWIRE_CHAOS_WORKDIR") // kept for a look afterwards; default a temp dir
	if work == "" {
		work = t.TempDir()
	}
	began := time.Now()
	c, err := StartCluster(ctx, ClusterConfig{ConfigDir: repoRoot, WorkDir: work, Instruments: 10, Rate: 100,
		LeaseTTL: 3 * time.Second, Logger: logger})
	if err != nil {
		t.Fatalf("StartCluster: %v", err)
	}
	t.Logf("cluster up in %v", time.Since(began).Round(time.Millisecond))
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = c.Stop()
		}
		if t.Failed() {
			for _, n := range c.Procs() {
				t.Logf("last lines of %s:\n%s", n, c.tail(n, 8))
			}
		}
	})
	if got := c.Procs(); !slices.Equal(got, procNames) {
		t.Errorf("Procs() = %v", got)
	}
	for _, n := range c.Procs() {
		if !c.Running(n) || c.PID(n) == 0 {
			t.Fatalf("%s not running after StartCluster", n)
		}
	}
	if !strings.HasPrefix(c.WSURL(), "ws://127.0.0.1:") || len(c.FeedWSURLs()) != 3 || len(c.NATSURLs()) != 3 {
		t.Errorf("addresses: %s %v %v", c.WSURL(), c.FeedWSURLs(), c.NATSURLs())
	}
	if a := c.Auth("feed"); a.User != "feed" || a.PasswordFile == "" {
		t.Errorf("Auth(feed) = %v", a)
	}
	if a := c.Auth("nobody"); a.User != "" {
		t.Errorf("Auth(nobody) = %v", a)
	}
	if _, err := os.Stat(c.SigningKeyFile()); err != nil {
		t.Errorf("signing key: %v", err)
	}
	active, err := c.ActiveIngest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("active ingest: %s", active)

	// Every route goes through the proxies; each node has routes to both others.
	for _, n := range []string{"nats-1", "nats-2", "nats-3"} {
		st, err := c.Routes(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Peers) != 2 {
			t.Errorf("%s: peers %v (%d routes), want both others", n, st.Peers, st.NumRoutes)
		}
	}
	if err := c.CheckRoutesProxied(ctx); err != nil {
		t.Fatal(err)
	}

	// A feed: killed, HAProxy keeps serving through the others; restarted, ready again.
	t0 := time.Now()
	if err := c.Kill("feed-2"); err != nil {
		t.Fatal(err)
	}
	if c.Running("feed-2") || c.PID("feed-2") != 0 {
		t.Fatal("feed-2 running after Kill")
	}
	if err := c.Kill("feed-2"); err == nil {
		t.Error("Kill of a dead process succeeded")
	}
	if err := c.WaitReady(ctx, "haproxy"); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart("feed-2"); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart("feed-2"); err == nil {
		t.Error("Restart of a running process succeeded")
	}
	if err := c.WaitReady(ctx, "feed-2"); err != nil {
		t.Fatal(err)
	}
	t.Logf("feed-2 killed and ready again in %v", time.Since(t0).Round(time.Millisecond))

	// The stream leader's node: killed, the leadership moves; restarted, it is healthy again.
	t0 = time.Now()
	leader, err := c.StreamLeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Kill(leader); err != nil {
		t.Fatal(err)
	}
	lctx, lcancel := context.WithTimeout(ctx, 20*time.Second)
	newLeader, err := c.StreamLeader(lctx)
	lcancel()
	if err != nil {
		t.Fatalf("no stream leader after killing %s: %v", leader, err)
	}
	if newLeader == leader {
		t.Fatalf("stream leader still %s after its kill", leader)
	}
	t.Logf("stream leader %s killed; %s leads after %v", leader, newLeader, time.Since(t0).Round(time.Millisecond))
	if err := c.Restart(leader); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReady(ctx, leader); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s restarted and healthy after %v", leader, time.Since(t0).Round(time.Millisecond))

	// Partition nats-3 (checks in partitionAndHeal); then, if nats-3 did not lead the stream,
	// the stream leader's node, as the chaos schedule does: the majority side elects another.
	leader, err = c.StreamLeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	partitionAndHeal(ctx, t, c, "nats-3")
	if leader != "nats-3" {
		if leader, err = c.StreamLeader(ctx); err != nil {
			t.Fatal(err)
		}
		partitionAndHeal(ctx, t, c, leader)
	}

	// Stop: every process gone, idempotent, nothing more can be started.
	t0 = time.Now()
	stopped = true
	if err := c.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	t.Logf("stopped in %v", time.Since(t0).Round(time.Millisecond))
	for _, n := range c.Procs() {
		if c.Running(n) {
			t.Errorf("%s running after Stop", n)
		}
	}
	for _, e := range c.Exits() {
		if !e.Expected {
			t.Errorf("%s (pid %d) exited on its own: %s", e.Name, e.PID, e.Status)
		}
	}
	if n := len(c.Exits()); n != 2+len(procNames) { // feed-2 and the leader killed, then all stopped
		t.Errorf("%d exits, want %d: %+v", n, 2+len(procNames), c.Exits())
	}
	err1 := c.Stop()
	if (err1 == nil) != (c.stopErr == nil) {
		t.Error("second Stop differs")
	}
	if err := c.Restart("feed-1"); !errors.Is(err, ErrStopped) {
		t.Errorf("Restart after Stop: %v, want ErrStopped", err)
	}
}

// partitionAndHeal cuts node off the other NATS nodes and checks: it loses every route
// within a few seconds and stays alone (no route around the proxies through gossip), the
// other two keep each other, and the majority side leads the stream (node, if it led, loses
// the lead to an election). Then it heals node and checks that it rejoins, every route through
// the proxies, and becomes healthy.
func partitionAndHeal(ctx context.Context, t *testing.T, c *Cluster, node string) {
	t.Helper()
	var others []string
	for _, n := range []string{"nats-1", "nats-2", "nats-3"} {
		if n != node {
			others = append(others, n)
		}
	}
	peersAre := func(n string, want []string) func() error {
		return func() error {
			st, err := c.Routes(ctx, n)
			if err == nil && !slices.Equal(st.Peers, want) {
				err = fmt.Errorf("%s: peers %v (%d routes), want %v", n, st.Peers, st.NumRoutes, want)
			}
			return err
		}
	}
	if err := waitFor(ctx, 10*time.Second, peersAre(node, others)); err != nil {
		t.Fatalf("before the partition: %v", err)
	}
	t0 := time.Now()
	if err := c.Partition(node); err != nil {
		t.Fatal(err)
	}
	if !c.Partitioned(node) {
		t.Errorf("Partitioned(%s) false", node)
	}
	if err := waitFor(ctx, 5*time.Second, peersAre(node, nil)); err != nil {
		t.Fatalf("partition: %v", err)
	}
	t.Logf("%s isolated after %v", node, time.Since(t0).Round(time.Millisecond))
	// Stays isolated (its route reconnects every second; a gossiped route would be at once)
	// while the other two see each other.
	time.Sleep(3 * time.Second)
	if st, err := c.Routes(ctx, node); err != nil || st.NumRoutes != 0 {
		t.Fatalf("%s during the partition: %+v %v", node, st, err)
	}
	for k, n := range others {
		if err := peersAre(n, others[1-k:2-k])(); err != nil {
			t.Errorf("during the partition: %v", err)
		}
	}
	lctx, lcancel := context.WithTimeout(ctx, 20*time.Second)
	leader, err := c.StreamLeader(lctx)
	lcancel()
	if err != nil || leader == node {
		t.Errorf("stream leader during the partition of %s: %q %v, want %v", node, leader, err, others)
	} else {
		t.Logf("stream leader during the partition of %s: %s (%v after the cut)", node, leader,
			time.Since(t0).Round(time.Millisecond))
	}
	t0 = time.Now()
	if err := c.Heal(node); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(ctx, 15*time.Second, peersAre(node, others)); err != nil {
		t.Fatalf("heal: %v", err)
	}
	t.Logf("%s rejoined after %v", node, time.Since(t0).Round(time.Millisecond))
	if err := c.CheckRoutesProxied(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReady(ctx, node); err != nil {
		t.Fatal(err)
	}
}

// The chaos schedule drives a Cluster.
var _ System = (*Cluster)(nil)

// tWriter sends log lines to t.Log.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
