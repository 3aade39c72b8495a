package certreload_test

import (
	"context"
	"crypto/tls"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tickwire/tickwire/internal/certreload"
	"github.com/tickwire/tickwire/internal/certreload/certtest"
)

func serial(p *certreload.Pair) int64 {
	c, _ := p.GetCertificate(nil)
	return c.Leaf.SerialNumber.Int64()
}

// Watch: a half-replaced pair (new certificate, old key) is not served; once the key follows,
// the new pair is. In a synctest bubble: Watch is a ticker, and fake time passes only when the
// watcher is back waiting on it, so "not served" is checked after it has read the half pair
// (and logged that it kept the previous one), not after a sleep that hoped it had.
func TestWatchHalfReplacedPair(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 10 * time.Millisecond
		dir := t.TempDir()
		ca := certtest.NewCA(t, dir)
		cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
		ca.Issue(cert, key, 1)
		logs := &records{}
		p, err := certreload.Load(cert, key, slog.New(logs))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go p.Watch(ctx, interval)

		next := filepath.Join(dir, "next")
		if err := os.Mkdir(next, 0o700); err != nil {
			t.Fatal(err)
		}
		ncert, nkey := filepath.Join(next, "c.pem"), filepath.Join(next, "k.pem")
		ca.Issue(ncert, nkey, 2)
		if err := os.Rename(ncert, cert); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * interval) // fake time: ten ticks, each read the files
		synctest.Wait()
		if got := serial(p); got != 1 {
			t.Fatalf("serial %d served with a mismatched key", got)
		}
		if n := logs.count("TLS files changed but not reloaded"); n != 1 {
			t.Fatalf("the half-replaced pair was refused %d times, want once (at the first tick after it)", n)
		}
		if err := os.Rename(nkey, key); err != nil {
			t.Fatal(err)
		}
		time.Sleep(interval) // fake time: the next tick
		synctest.Wait()
		if got := serial(p); got != 2 {
			t.Fatalf("serial %d one tick after the completed pair, want 2", got)
		}
	})
}

// records is a slog.Handler keeping the messages logged.
type records struct {
	mu   sync.Mutex
	msgs []string
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Message)
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

// count returns how many messages began with msg.
func (r *records) count(msg string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		if strings.HasPrefix(m, msg) {
			n++
		}
	}
	return n
}

func TestLoadAndConfig(t *testing.T) {
	if _, err := certreload.Load("nope.pem", "nope-key.pem", nil); err == nil {
		t.Fatal("missing files loaded")
	}
	dir := t.TempDir()
	ca := certtest.NewCA(t, dir)
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	ca.Issue(cert, key, 1)
	p, err := certreload.Load(cert, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg := p.ServerConfig(0); cfg.MinVersion != tls.VersionTLS12 || len(cfg.NextProtos) != 1 || cfg.NextProtos[0] != "http/1.1" {
		t.Fatalf("config %+v", cfg)
	}
	if cfg := p.ServerConfig(tls.VersionTLS13); cfg.MinVersion != tls.VersionTLS13 {
		t.Fatal("min version 1.3 not kept")
	}
	for s, want := range map[string]uint16{"1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13, "1.1": 0} {
		if v, _ := certreload.ParseVersion(s); v != want {
			t.Errorf("ParseVersion(%q) = %x", s, v)
		}
	}
}
