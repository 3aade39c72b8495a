package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tickwire/tickwire/internal/testwait"
)

// TestMakeCluster runs scripts/cluster.sh (what `make cluster` runs) on random ports in a
// temporary directory: 3 nats-server nodes, ingest, 3 feeds and HAProxy. A client tails two
// instruments through HAProxy; the feed serving it is killed -9; HAProxy must mark it down and
// the client must reconnect through HAProxy to another replica with no gap and no checksum
// failure. Then SIGINT must stop every process. It needs bin/ built (make build, and
// bin/nats-server: make bin/nats-server) and HAProxy, takes about a minute, and runs only with
// TICKWIRE_CLUSTER_TEST=1.
func TestMakeCluster(t *testing.T) {
	if os.Getenv("TICKWIRE_CLUSTER_TEST") != "1" {
		t.Skip("set TICKWIRE_CLUSTER_TEST=1 to run scripts/cluster.sh (needs bin/, bin/nats-server and haproxy)")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"feed", "ingest", "tickctl", "nats-server"} {
		if _, err := os.Stat(filepath.Join(root, "bin", b)); err != nil {
			t.Fatalf("bin/%s missing: make build bin/nats-server", b)
		}
	}
	if _, err := exec.LookPath("haproxy"); err != nil {
		t.Fatal("haproxy not installed (apt-get install -y haproxy)")
	}
	dir := t.TempDir()

	out := &syncBuffer{}
	script := exec.Command(filepath.Join(root, "scripts", "cluster.sh"))
	script.Dir = root
	script.Env = append(os.Environ(), "PORTS=random", "CLUSTER_DIR="+dir, "INSTRUMENTS=10", "RATE=300")
	script.Stdout, script.Stderr = out, out
	started := time.Now()
	if err := script.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{}) // closed when the script has ended, with scriptErr
	var scriptErr error
	go func() { scriptErr = script.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = script.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(60 * time.Second):
			}
		}
		killRecorded(dir) // whatever is left, by its recorded pid
		if t.Failed() {
			t.Logf("cluster.sh output:\n%s", out.String())
		}
	})
	testwait.For(t, 3*time.Minute, "cluster up", func() bool {
		select {
		case <-exited:
			t.Fatalf("cluster.sh ended during start-up: %v\n%s", scriptErr, out.String())
		default:
		}
		return strings.Contains(out.String(), "Tickwire cluster up")
	})
	t.Logf("cluster up after %v", time.Since(started).Round(100*time.Millisecond))
	env := readEnv(t, filepath.Join(dir, "cluster.env"))
	lb := env["LB_URL"]
	for _, path := range []string{"/readyz", "/"} {
		if code := httpStatus(lb + path); code != 200 {
			t.Fatalf("GET %s%s through HAProxy: %d", lb, path, code)
		}
	}

	// The stream at R3.
	streamOut, err := exec.Command(filepath.Join(root, "bin", "tickctl"), "--nats-url", env["NATS_URLS"],
		"--nats-auth-dir", env["NATS_AUTH_DIR"], "stream").CombinedOutput()
	if err != nil || !strings.Contains(string(streamOut), "replicas 3") {
		t.Fatalf("tickctl stream: %v %s", err, streamOut)
	}

	// A client through HAProxy.
	token, err := exec.Command(filepath.Join(root, "bin", "tickctl"), "token", "--key-file", env["KEY_FILE"],
		"--sub", "cluster-test", "--ttl", "10m").Output()
	if err != nil {
		t.Fatal(err)
	}
	tailOut := &syncBuffer{}
	tail := exec.Command(filepath.Join(root, "bin", "tickctl"), "tail", "--url", strings.Replace(lb, "http://", "ws://", 1)+"/ws",
		"--instrument", "synthetic:ACME,synthetic:BOLT", "--channel", "quote,book")
	tail.Dir = root
	tail.Env = append(os.Environ(), "TICKWIRE_TOKEN="+strings.TrimSpace(string(token)))
	tail.Stdout, tail.Stderr = tailOut, tailOut
	if err := tail.Start(); err != nil {
		t.Fatal(err)
	}
	tailDone := make(chan struct{})
	go func() { _ = tail.Wait(); close(tailDone) }()
	t.Cleanup(func() { _ = tail.Process.Kill(); <-tailDone })
	t.Logf("tailing at %v", time.Since(started).Round(100*time.Millisecond))
	testwait.For(t, 20*time.Second, "deltas through HAProxy", func() bool { return strings.Count(tailOut.String(), " delta ") >= 20 })

	// Kill -9 the replica that serves it.
	stats := env["LB_STATS_URL"]
	var victim string
	testwait.For(t, 10*time.Second, "the client's replica in HAProxy's stats", func() bool {
		for name, s := range haproxyServers(stats) {
			if s.cur > 0 {
				victim = name
				return true
			}
		}
		return false
	})
	pid := readPid(t, filepath.Join(dir, "procs", victim+".pid"))
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	testwait.For(t, 10*time.Second, victim+" DOWN in HAProxy", func() bool { return haproxyServers(stats)[victim].status == "DOWN" })
	t.Logf("%s marked down %v after kill -9", victim, time.Since(killedAt).Round(10*time.Millisecond))
	if code := httpStatus(lb + "/readyz"); code != 200 {
		t.Fatalf("/readyz through HAProxy after killing %s: %d", victim, code)
	}
	before := strings.Count(tailOut.String(), " delta ")
	testwait.For(t, 20*time.Second, "the client reconnected and receiving", func() bool {
		s := tailOut.String()
		return strings.Count(s, "# connected") >= 2 && strings.Count(s, " delta ") >= before+20
	})
	testwait.For(t, 5*time.Second, "the script's report", func() bool {
		return strings.Contains(out.String(), fmt.Sprintf("%s (pid %d) killed by signal 9", victim, pid))
	})
	t.Logf("reconnected at %v", time.Since(started).Round(100*time.Millisecond))
	_ = tail.Process.Signal(syscall.SIGINT)
	<-tailDone
	summary := regexp.MustCompile(`(\d+) gaps, \d+ epoch changes, (\d+) checksum failures.*?(\d+) reconnects`).FindStringSubmatch(tailOut.String())
	if summary == nil || summary[1] != "0" || summary[2] != "0" || summary[3] == "0" {
		t.Fatalf("tail summary: %v\n%s", summary, lastLines(tailOut.String(), 20))
	}

	// Ctrl-C stops everything.
	pids := map[string]int{}
	files, _ := filepath.Glob(filepath.Join(dir, "procs", "*.pid"))
	for _, f := range files {
		pids[strings.TrimSuffix(filepath.Base(f), ".pid")] = readPid(t, f)
	}
	stopAt := time.Now()
	if err := script.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		t.Logf("stopped %v after SIGINT", time.Since(stopAt).Round(100*time.Millisecond))
	case <-time.After(60 * time.Second):
		t.Fatal("cluster.sh still running 60 s after SIGINT")
	}
	if !strings.Contains(out.String(), "every process exited") {
		t.Errorf("no \"every process exited\" after SIGINT")
	}
	for name, p := range pids {
		if syscall.Kill(p, 0) == nil {
			t.Errorf("%s (pid %d) still running after the script stopped", name, p)
		}
	}
}

type lbServer struct {
	status string
	cur    int
}

// haproxyServers reads the feeds backend's servers from HAProxy's stats CSV.
func haproxyServers(statsURL string) map[string]lbServer {
	res, err := http.Get(strings.TrimSuffix(statsURL, "/") + "/;csv")
	if err != nil {
		return nil
	}
	defer res.Body.Close()
	m := map[string]lbServer{}
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		f := strings.Split(sc.Text(), ",")
		if len(f) < 18 || f[0] != "feeds" || f[1] == "BACKEND" {
			continue
		}
		cur, _ := strconv.Atoi(f[4]) // scur
		m[f[1]] = lbServer{status: f[17], cur: cur}
	}
	return m
}

func httpStatus(url string) int {
	c := http.Client{Timeout: 5 * time.Second}
	res, err := c.Get(url)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

func readEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// killRecorded kills -9 every process still running under a pid file of the cluster in dir.
func killRecorded(dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "procs", "*.pid"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if p, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && p > 1 {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	}
}

func lastLines(s string, n int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
