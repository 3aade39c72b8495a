package feed

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tickwire/tickwire/internal/bus/bustest"
	"github.com/tickwire/tickwire/internal/certreload"
	"github.com/tickwire/tickwire/internal/certreload/certtest"
	"github.com/tickwire/tickwire/internal/testwait"
	"github.com/tickwire/tickwire/pkg/client"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// tlsEnv is a feed serving wss:// with a certificate that can be reloaded.
type tlsEnv struct {
	*env
	ca                *certtest.CA
	certFile, keyFile string
	pair              *certreload.Pair
	addr              string
}

func startTLSEnv(t *testing.T, cfg Config) *tlsEnv {
	t.Helper()
	dir := t.TempDir()
	te := &tlsEnv{ca: certtest.NewCA(t, dir), certFile: filepath.Join(dir, "feed.pem"), keyFile: filepath.Join(dir, "feed-key.pem")}
	te.ca.Issue(te.certFile, te.keyFile, 100)
	var err error
	if te.pair, err = certreload.Load(te.certFile, te.keyFile, nil); err != nil {
		t.Fatal(err)
	}
	nats := bustest.Start(t)
	te.env = &env{t: t, bus: bustest.Connect(t, nats), tls: te.pair.ServerConfig(0)}
	te.startFeed(cfg)
	te.addr = te.svc.Addr().String()
	return te
}

// serial returns the serial number of the certificate a new TLS connection to the feed gets.
func (te *tlsEnv) serial(t *testing.T) int64 {
	t.Helper()
	pool, err := client.LoadCAFile(te.ca.File)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.Dial("tcp", te.addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// counter counts the updates a client applies.
type counter struct {
	client.BaseHandler
	updates atomic.Int64
}

func (h *counter) OnSnapshot(*client.Client, client.Update) { h.updates.Add(1) }
func (h *counter) OnUpdate(*client.Client, client.Update)   { h.updates.Add(1) }

// The feed over TLS: a Go client that trusts the CA (Options.CAFile) subscribes and streams
// over wss://; one that does not is refused with a certificate error; TLS 1.1 is refused; a
// reloaded certificate is what new connections get, while the connection made before the
// reload keeps streaming.
func TestFeedOverTLS(t *testing.T) {
	te := startTLSEnv(t, Config{})
	p := newPublisher(t, te.bus, 3)
	p.publish(50)
	te.waitApplied(p)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := &counter{}
	cl, err := client.Dial(ctx, client.Options{URL: te.url, CAFile: te.ca.File, Handler: h})
	if err != nil {
		t.Fatalf("client with the CA: %v", err)
	}
	runDone := make(chan error, 1)
	go func() { runDone <- cl.Run(ctx) }()
	defer func() { cancel(); <-runDone }()
	if err := cl.Subscribe(client.Subscription{Instruments: p.instruments(),
		Channels: []pb.Channel{pb.Channel_CHANNEL_QUOTE, pb.Channel_CHANNEL_BOOK, pb.Channel_CHANNEL_TRADES}, Depth: 10}); err != nil {
		t.Fatal(err)
	}
	streams := func(what string) {
		t.Helper()
		before := h.updates.Load()
		stop := make(chan struct{})
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
					p.publish(5)
				}
			}
		}()
		defer close(stop)
		testwait.For(t, 10*time.Second, what, func() bool { return h.updates.Load() >= before+100 })
	}
	streams("updates over wss")

	// No CA: the system roots do not know the test CA.
	_, err = client.Dial(ctx, client.Options{URL: te.url, HandshakeTimeout: 5 * time.Second})
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("client without the CA: %v, want a certificate verification error", err)
	}
	// The right CA but another name: host names are checked.
	_, err = client.Dial(ctx, client.Options{URL: te.url, CAFile: te.ca.File, TLSConfig: &tls.Config{ServerName: "feed.example.com"}})
	var hostErr x509.HostnameError
	if !errors.As(err, &hostErr) {
		t.Fatalf("client expecting another host name: %v, want a host name error", err)
	}
	// TLS 1.1 is refused.
	pool, _ := client.LoadCAFile(te.ca.File)
	if c, err := tls.Dial("tcp", te.addr, &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11}); err == nil {
		c.Close()
		t.Fatal("TLS 1.1 handshake accepted")
	}

	// Reload: new files, new serial for new connections; the old connection streams on.
	if got := te.serial(t); got != 100 {
		t.Fatalf("serial %d before the reload, want 100", got)
	}
	te.ca.Issue(te.certFile, te.keyFile, 200)
	if err := te.pair.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := te.serial(t); got != 200 {
		t.Fatalf("serial %d after the reload, want 200", got)
	}
	streams("updates on the connection made before the reload")
	if s := cl.Stats(); s.Connects != 1 || s.Disconnects != 0 {
		t.Fatalf("the client reconnected across the reload: %+v", s)
	}
	// A bad file is not loaded: the previous certificate stays.
	certtest.Write(t, te.keyFile, "EC PRIVATE KEY", []byte("garbage"))
	if err := te.pair.Reload(); err == nil {
		t.Fatal("a broken key loaded")
	}
	if got := te.serial(t); got != 200 {
		t.Fatalf("serial %d after a failed reload, want 200", got)
	}
}
