package main

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tickwire/tickwire/internal/certreload/certtest"
	"github.com/tickwire/tickwire/internal/testwait"
)

// servedSerial returns the serial of the certificate a new connection to addr gets, or -1.
func servedSerial(t *testing.T, addr string, roots *x509.CertPool) int64 {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots})
	if err != nil {
		t.Logf("dial %s: %v", addr, err)
		return -1
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// --tls-cert: the feed serves https:// (and wss://) only, TLS 1.2 at least; SIGHUP, or a change
// of the files with --tls-watch, loads a new certificate for new connections.
func TestFeedTLSAndReload(t *testing.T) {
	for _, how := range []string{"sighup", "watch"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			ca := certtest.NewCA(t, dir)
			cert, key := filepath.Join(dir, "feed.pem"), filepath.Join(dir, "feed-key.pem")
			ca.Issue(cert, key, 100)
			watch := "0"
			if how == "watch" {
				watch = "50ms"
			}
			public, _, _ := startFeed(t, "--tls-cert", cert, "--tls-key", key, "--tls-watch", watch)
			addr := strings.TrimPrefix(public, "http://")
			roots := x509.NewCertPool()
			pem, _ := os.ReadFile(ca.File)
			roots.AppendCertsFromPEM(pem)
			hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
			resp, err := hc.Get("https://" + addr + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
				t.Fatalf("https healthz: %d %+v", resp.StatusCode, resp.TLS)
			}
			if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					t.Fatal("plain http served")
				}
			}
			if c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, MaxVersion: tls.VersionTLS11}); err == nil {
				c.Close()
				t.Fatal("TLS 1.1 accepted")
			}
			if got := servedSerial(t, addr, roots); got != 100 {
				t.Fatalf("serial %d, want 100", got)
			}
			ca.Issue(cert, key, 200)
			if how == "sighup" {
				if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
					t.Fatal(err)
				}
			}
			testwait.For(t, 10*time.Second, "the new certificate served", func() bool { return servedSerial(t, addr, roots) == 200 })
		})
	}
}

func TestTLSFlagsValidated(t *testing.T) {
	for _, f := range []tlsFlags{{Cert: "c.pem"}, {Key: "k.pem"}, {Cert: "c.pem", Key: "k.pem", Watch: -time.Second}} {
		if err := f.validate(); err == nil {
			t.Errorf("%+v accepted", f)
		}
	}
}
