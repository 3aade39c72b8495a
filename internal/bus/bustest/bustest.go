// Package bustest runs a real NATS server with JetStream in-process for tests.
package bustest

import (
	"context"
	"log/slog"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/chaos"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// TestUser is the user Connect connects as: the ingest, feed and tickctl roles together, so
// that one Bus can create the stream, publish, consume and run replays. Not the admin role, and
// like every user it may not purge or delete anything.
const TestUser = "test"

// Users are the servers' users: one per role (bus.DefaultUsers) and TestUser.
func Users() []bus.User {
	return append(bus.DefaultUsers(), bus.User{Name: TestUser, Roles: []bus.Role{bus.RoleIngest, bus.RoleFeed, bus.RoleTickctl}})
}

// Start starts an embedded NATS server with JetStream on a random port of 127.0.0.1, storing
// in t.TempDir(), and shuts it down in t.Cleanup. Connect to s.ClientURL() with s.Auth(user);
// anonymous connections are refused, as by every Tickwire server.
func Start(t testing.TB) *bus.Embedded {
	t.Helper()
	return StartDir(t, t.TempDir())
}

// StartDir is Start with a given store directory, to restart a server on the same store. The
// users' password files are in <dir>/auth (s.AuthDir()), kept across restarts so that
// connections reconnect.
func StartDir(t testing.TB, dir string) *bus.Embedded {
	t.Helper()
	s, err := bus.StartEmbedded(bus.EmbeddedConfig{Port: -1, DataDir: dir, AuthDir: filepath.Join(dir, "auth"), Users: Users()}, nil)
	if err != nil {
		t.Fatalf("bustest: start embedded NATS: %v", err)
	}
	url := s.ClientURL()
	authDirs.Store(url, s.AuthDir())
	t.Cleanup(func() {
		authDirs.Delete(url)
		s.Shutdown()
	})
	return s
}

// authDirs maps the URL of each running server to its AuthDir.
var authDirs sync.Map

// AuthDirOf returns the password directory of the running server at url ("" if none): for
// tests that run a command with only a --nats-url, to add its --nats-auth-dir.
func AuthDirOf(url string) string {
	d, _ := authDirs.Load(url)
	s, _ := d.(string)
	return s
}

// Proxy starts a TCP proxy in front of s that the test can cut (chaos.TCPProxy), closed in
// t.Cleanup; connect to "nats://"+proxy.Addr().
func Proxy(t testing.TB, s *bus.Embedded) *chaos.TCPProxy {
	t.Helper()
	u, err := url.Parse(s.ClientURL())
	if err != nil {
		t.Fatalf("bustest: server URL: %v", err)
	}
	proxy, err := chaos.NewTCPProxy("nats", "127.0.0.1:0", u.Host, nil)
	if err != nil {
		t.Fatalf("bustest: proxy: %v", err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	return proxy
}

// Connect connects a Bus to s as TestUser with a fresh metrics registry, ensures the event
// stream exists, and closes the Bus in t.Cleanup (before the server shuts down).
func Connect(t testing.TB, s *bus.Embedded) *bus.Bus {
	t.Helper()
	b := ConnectAs(t, s, TestUser)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.EnsureStream(ctx, bus.StreamConfig{}); err != nil {
		t.Fatalf("bustest: ensure stream: %v", err)
	}
	return b
}

// ConnectAs connects a Bus to s as user (a role's name, or TestUser) and closes it in
// t.Cleanup. It does not touch the stream.
func ConnectAs(t testing.TB, s *bus.Embedded, user string) *bus.Bus {
	t.Helper()
	auth := s.Auth(user)
	if auth.User == "" {
		t.Fatalf("bustest: the server has no user %q", user)
	}
	b, err := bus.Connect(context.Background(), bus.Config{URL: s.ClientURL(), Name: t.Name(), Auth: auth},
		slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("bustest: connect: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// StoredEvents returns the number of events b's stream holds, read through b (which must be
// allowed to consume). It differs from the stream's message count: a message may carry several
// events of an instrument (internal/bus/batch.go).
func StoredEvents(t testing.TB, b *bus.Bus) int {
	t.Helper()
	var n atomic.Int64
	c, err := b.ConsumeEvents(context.Background(), bus.ConsumeOptions{}, func(*tickwirev1.Event) error { n.Add(1); return nil })
	if err != nil {
		t.Fatalf("bustest: read the stored events: %v", err)
	}
	defer c.Stop()
	AwaitCaughtUp(t, c)
	return int(n.Load())
}

// AwaitCaughtUp waits up to 30 s until c has handled every event stored when it started; it
// fails t if c stops with an error first, or the time runs out.
func AwaitCaughtUp(t testing.TB, c *bus.Consumer) {
	t.Helper()
	select {
	case <-c.CaughtUp():
	case <-c.Done():
		t.Fatalf("bustest: consumer stopped before catching up: %v", c.Err())
	case <-time.After(30 * time.Second):
		t.Fatal("bustest: consumer not caught up after 30 s")
	}
}
