package bus_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/bus/bustest"
	"github.com/tickwire/tickwire/internal/testwait"
)

// connected reports whether a Bus with auth reaches s within a second.
func connected(t *testing.T, s *bus.Embedded, auth bus.Auth) bool {
	t.Helper()
	b, err := bus.Connect(context.Background(), bus.Config{URL: s.ClientURL(), Auth: auth, ReconnectWait: 50 * time.Millisecond}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	return testwait.Until(time.Second, b.Connected)
}

func TestEmbeddedTLS(t *testing.T) {
	dir := t.TempDir()
	ca, srvCert, srvKey, cliCert, cliKey := bustest.PKI(t, dir)

	s, err := bus.StartEmbedded(bus.EmbeddedConfig{Port: -1, DataDir: filepath.Join(dir, "a"), TLSCert: srvCert, TLSKey: srvKey}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	feed := s.Auth("feed")
	if connected(t, s, feed) {
		t.Fatal("connected without trusting the server's CA")
	}
	feed.CAFile = ca
	if !connected(t, s, feed) {
		t.Fatal("not connected with --nats-ca")
	}

	// Client certificates required.
	m, err := bus.StartEmbedded(bus.EmbeddedConfig{Port: -1, DataDir: filepath.Join(dir, "b"), TLSCert: srvCert, TLSKey: srvKey, TLSCA: ca}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Shutdown()
	feed = m.Auth("feed")
	feed.CAFile = ca
	if connected(t, m, feed) {
		t.Fatal("connected without a client certificate")
	}
	feed.CertFile, feed.KeyFile = cliCert, cliKey
	if !connected(t, m, feed) {
		t.Fatal("not connected with a client certificate")
	}
	// TLS does not replace the password.
	if connected(t, m, bus.Auth{CAFile: ca, CertFile: cliCert, KeyFile: cliKey}) {
		t.Fatal("connected with a certificate and no user")
	}
}
