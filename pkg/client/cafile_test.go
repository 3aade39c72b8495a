package client_test

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tickwire/tickwire/internal/certreload/certtest"
	"github.com/tickwire/tickwire/pkg/client"
)

// Options.CAFile is read by New: a missing file, one without a certificate, or RootCAs set
// too, is an error; a TLSConfig given with it is not changed. (A client with and without the
// CA against a wss:// feed: internal/feed TestFeedOverTLS.)
func TestCAFileOption(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ca := certtest.NewCA(t, dir).File
	for name, o := range map[string]client.Options{
		"missing":      {URL: "wss://127.0.0.1/ws", CAFile: filepath.Join(dir, "nope.pem")},
		"no cert":      {URL: "wss://127.0.0.1/ws", CAFile: empty},
		"with RootCAs": {URL: "wss://127.0.0.1/ws", CAFile: ca, TLSConfig: &tls.Config{RootCAs: x509.NewCertPool()}},
	} {
		if _, err := client.New(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	given := &tls.Config{ServerName: "feed.example.com"}
	if _, err := client.New(client.Options{URL: "wss://127.0.0.1/ws", CAFile: ca, TLSConfig: given}); err != nil {
		t.Fatal(err)
	}
	if given.RootCAs != nil {
		t.Fatal("the caller's TLSConfig was changed")
	}
	if _, err := client.LoadCAFile(empty); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("LoadCAFile of a file without certificates: %v", err)
	}
}
