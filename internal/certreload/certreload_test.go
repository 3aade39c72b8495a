package certreload_test

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tickwire/tickwire/internal/certreload"
	"github.com/tickwire/tickwire/internal/certreload/certtest"
)

func serial(p *certreload.Pair) int64 {
	c, _ := p.GetCertificate(nil)
	return c.Leaf.SerialNumber.Int64()
}

// Watch: a half-replaced pair (new certificate, old key) is not served; once the key follows,
// the new pair is.
func TestWatchHalfReplacedPair(t *testing.T) {
	dir := t.TempDir()
	ca := certtest.NewCA(t, dir)
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	ca.Issue(cert, key, 1)
	p, err := certreload.Load(cert, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Watch(ctx, 10*time.Millisecond)

	next := filepath.Join(dir, "next")
	if err := os.Mkdir(next, 0o700); err != nil {
		t.Fatal(err)
	}
	ncert, nkey := filepath.Join(next, "c.pem"), filepath.Join(next, "k.pem")
	ca.Issue(ncert, nkey, 2)
	if err := os.Rename(ncert, cert); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if got := serial(p); got != 1 {
		t.Fatalf("serial %d served with a mismatched key", got)
	}
	if err := os.Rename(nkey, key); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); serial(p) != 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the completed pair was not loaded")
		}
	}
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
