// Package certreload serves a TLS certificate and key from files that can be replaced while
// connections are open: Reload (on SIGHUP, or Watch when the files change) reads them again,
// and the new pair is swapped in atomically. Handshakes from then on get it; connections
// already established keep theirs (a certificate is only used during a handshake).
package certreload

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Pair is a certificate file and its key file, the current pair loaded from them.
type Pair struct {
	certFile, keyFile string
	log               *slog.Logger
	cur               atomic.Pointer[tls.Certificate]

	mu   sync.Mutex // serialises Reload
	seen [2]fileStamp
}

// fileStamp is a file's content hash: modification times can be equal across a renewal (a
// coarse file system clock, a copy that keeps them), contents cannot.
type fileStamp [sha256.Size]byte

// Load reads certFile (PEM, the leaf first, then any intermediates) and keyFile (its PEM
// private key). logger may be nil.
func Load(certFile, keyFile string, logger *slog.Logger) (*Pair, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := &Pair{certFile: certFile, keyFile: keyFile, log: logger}
	if err := p.Reload(); err != nil {
		return nil, err
	}
	return p, nil
}

// Reload reads the files again and, when they hold a valid pair, serves it from the next
// handshake on. On an error the previous pair stays.
func (p *Pair) Reload() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen = p.stamps() // before reading: a change during the read is seen by the next Watch tick
	cert, err := tls.LoadX509KeyPair(p.certFile, p.keyFile)
	if err != nil {
		return fmt.Errorf("tls: load %s and %s: %w", p.certFile, p.keyFile, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return fmt.Errorf("tls: %s: %w", p.certFile, err)
		}
	}
	leaf := cert.Leaf
	old := p.cur.Swap(&cert)
	attrs := []any{"cert", p.certFile, "subject", leaf.Subject.String(), "serial", leaf.SerialNumber.Text(16),
		"dns", leaf.DNSNames, "ips", leaf.IPAddresses, "not_after", leaf.NotAfter.UTC().Format(time.RFC3339)}
	switch now := time.Now(); {
	case now.After(leaf.NotAfter):
		p.log.Error("TLS certificate loaded has expired: clients will refuse it", attrs...)
	case now.Before(leaf.NotBefore):
		p.log.Warn("TLS certificate loaded is not valid yet", append(attrs, "not_before", leaf.NotBefore)...)
	case old == nil:
		p.log.Info("TLS certificate loaded", attrs...)
	default:
		p.log.Info("TLS certificate reloaded: new connections get it, open ones keep theirs", attrs...)
	}
	return nil
}

func (p *Pair) stamps() [2]fileStamp {
	var s [2]fileStamp
	for i, name := range []string{p.certFile, p.keyFile} {
		if b, err := os.ReadFile(name); err == nil { // follows symlinks (a Kubernetes secret volume)
			s[i] = sha256.Sum256(b)
		}
	}
	return s
}

// Certificate returns the pair served now.
func (p *Pair) Certificate() *tls.Certificate { return p.cur.Load() }

// GetCertificate is tls.Config.GetCertificate: the pair loaded last.
func (p *Pair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return p.cur.Load(), nil
}

// ServerConfig returns a server configuration serving p, TLS 1.2 at least (minVersion, if
// higher, instead), and HTTP/1.1 only: WebSocket upgrades need it.
func (p *Pair) ServerConfig(minVersion uint16) *tls.Config {
	return &tls.Config{
		MinVersion:     max(minVersion, tls.VersionTLS12),
		GetCertificate: p.GetCertificate,
		NextProtos:     []string{"http/1.1"},
	}
}

// Watch calls Reload whenever either file's content changes, reading both every interval until ctx ends. A failed reload is logged and retried at the next change.
func (p *Pair) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.mu.Lock()
		changed := p.stamps() != p.seen
		p.mu.Unlock()
		if changed {
			if err := p.Reload(); err != nil {
				p.log.Error("TLS files changed but not reloaded; keeping the previous certificate", "err", err)
			}
		}
	}
}

// ParseVersion parses "1.2" or "1.3".
func ParseVersion(s string) (uint16, error) {
	switch s {
	case "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, errors.New("want 1.2 or 1.3")
}
