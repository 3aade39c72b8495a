package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"
	"github.com/nats-io/nats.go"

	"github.com/tickwire/tickwire/internal/auth"
	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/natsflags"
	"github.com/tickwire/tickwire/internal/testwait"
)

func parse(t *testing.T, args ...string) *config {
	t.Helper()
	var cfg config
	p, err := kong.New(&cfg, kong.Name("feed"), natsflags.Vars(bus.RoleFeed, envPrefix), kong.Exit(func(int) { t.Fatal("kong exit") }))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Parse(args); err != nil {
		t.Fatal(err)
	}
	return &cfg
}

// startFeed runs the feed with embedded NATS on random ports and returns its public and admin
// base URLs and the directory of its NATS users' passwords.
func startFeed(t *testing.T, extra ...string) (public, admin, authDir string) {
	t.Helper()
	dir := t.TempDir()
	authDir = filepath.Join(dir, "auth")
	key := filepath.Join(dir, "hs256.key")
	if err := os.WriteFile(key, auth.NewSecret(), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := parse(t, append([]string{"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--embed-nats",
		"--nats-listen", "127.0.0.1:-1", "--nats-data-dir", filepath.Join(dir, "nats"), "--nats-auth-dir", authDir,
		"--auth-hs256-key-file", key}, extra...)...)
	ctx, cancel := context.WithCancel(context.Background())
	type addrs struct{ public, admin net.Addr }
	ready := make(chan addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, cfg, slog.New(slog.DiscardHandler), func(p, a net.Addr) { ready <- addrs{p, a} })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("feed: %v", err)
		}
	})
	select {
	case a := <-ready:
		public = "http://" + a.public.String()
		if a.admin != nil {
			admin = "http://" + a.admin.String()
		}
	case err := <-done:
		t.Fatalf("feed stopped: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("feed not listening")
	}
	return public, admin, authDir
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestMetricsOnAdminListenerOnly(t *testing.T) {
	public, admin, _ := startFeed(t)
	for _, path := range []string{"/metrics", "/debug/pprof/", "/debug/pprof/goroutine"} {
		if code, _ := get(t, public+path); code != http.StatusNotFound {
			t.Errorf("public %s: %d, want 404", path, code)
		}
	}
	code, body := get(t, admin+"/metrics")
	if code != http.StatusOK || !strings.Contains(body, "tickwire_bus_published_total") || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("admin /metrics: %d\n%.300s", code, body)
	}
	if code, body := get(t, admin+"/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Fatalf("admin /debug/pprof/: %d", code)
	}
	if code, _ := get(t, public+"/healthz"); code != http.StatusOK {
		t.Fatalf("public /healthz: %d", code)
	}
	// Both answer /readyz?verbose; only the admin one would name stale instruments.
	for _, base := range []string{public, admin} {
		if code, body := get(t, base+"/readyz?verbose"); (code != http.StatusOK && code != http.StatusServiceUnavailable) || !strings.Contains(body, `"caught_up"`) {
			t.Fatalf("%s/readyz?verbose: %d %s", base, code, body)
		}
	}
}

func TestAdminListenerOff(t *testing.T) {
	public, admin, _ := startFeed(t, "--admin-listen", "")
	if admin != "" {
		t.Fatalf("admin listening on %s", admin)
	}
	if code, _ := get(t, public+"/metrics"); code != http.StatusNotFound {
		t.Fatalf("public /metrics: %d", code)
	}
}

// The feed's embedded server refuses anonymous clients; the password files it writes let the
// other processes in as their roles.
func TestEmbeddedNATSRequiresCredentials(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, _, authDir := startFeed(t, "--nats-listen", addr)
	url := "nats://" + addr
	if nc, err := nats.Connect(url); err == nil {
		nc.Close()
		t.Fatal("anonymous connection accepted")
	}
	pw, err := bus.ReadPasswordFile(bus.PasswordFile(authDir, "ingest"))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url, nats.UserInfo("ingest", pw))
	if err != nil {
		t.Fatalf("ingest with its generated password: %v", err)
	}
	nc.Close()
}

// Authentication is on unless turned off: without a key the feed does not start, and a started
// feed refuses an /api query without a token (internal/feed's tests cover the upgrade).
func TestAuthOnByDefault(t *testing.T) {
	var cfg config
	p, err := kong.New(&cfg, kong.Name("feed"), natsflags.Vars(bus.RoleFeed, envPrefix), kong.Exit(func(int) { t.Fatal("kong exit") }))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Parse([]string{"--listen", "127.0.0.1:0"}); err == nil || !strings.Contains(err.Error(), "no token keys") {
		t.Fatalf("no keys: %v", err)
	}
	public, _, _ := startFeed(t)
	if code, _ := get(t, public+"/api/instruments"); code != http.StatusUnauthorized {
		t.Fatalf("/api/instruments without a token: %d, want 401", code)
	}
}

// TestFeedFirstOnAFreshStore: a feed started before any ingest or import on an empty store
// creates the event stream itself (with its --stream-* limits) and becomes ready, instead of
// answering 503 until another process creates it.
func TestFeedFirstOnAFreshStore(t *testing.T) {
	public, _, _ := startFeed(t, "--stream-max-age", "3h")
	var code int
	var body string
	if !testwait.Until(15*time.Second, func() bool { code, body = get(t, public+"/readyz"); return code == http.StatusOK }) {
		t.Fatalf("/readyz on a fresh store: %d %s", code, body)
	}
}

// TestReplayStartFlags: --replay-start-max at its bounds and past them, --replay-start-ttl > 0.
func TestReplayStartFlags(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		ok   bool
	}{
		{[]string{"--replay-start"}, true},
		{[]string{"--replay-start-max", "1"}, true},
		{[]string{"--replay-start-max", "100"}, true},
		{[]string{"--replay-start-max", "0"}, false},
		{[]string{"--replay-start-max", "101"}, false},
		{[]string{"--replay-start-ttl", "1s"}, true},
		{[]string{"--replay-start-ttl", "0s"}, false},
		{[]string{"--resume-history", "100", "--resume-history-bytes", "65536"}, true},
		{[]string{"--resume-history-bytes", "0"}, true},
		{[]string{"--resume-history-bytes", "-1"}, false},
	} {
		var cfg config
		p, err := kong.New(&cfg, kong.Name("feed"), natsflags.Vars(bus.RoleFeed, envPrefix), kong.Exit(func(int) {}))
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Parse(append([]string{"--listen", "127.0.0.1:0", "--nats-password-file", pw, "--auth-disabled"}, tc.args...))
		if (err == nil) != tc.ok {
			t.Errorf("%v: %v, want ok %v", tc.args, err, tc.ok)
		}
	}
}
