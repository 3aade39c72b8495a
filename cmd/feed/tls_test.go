package main

import (
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/bus/bustest"
)

// --nats-tls-cert: the embedded server takes TLS connections only; the feed reaches it with
// --nats-ca, a client without the CA is refused.
func TestEmbeddedNATSOverTLS(t *testing.T) {
	ca, cert, key, _, _ := bustest.PKI(t, t.TempDir())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	public, _, authDir := startFeed(t, "--nats-listen", addr, "--nats-tls-cert", cert, "--nats-tls-key", key, "--nats-ca", ca)
	if code, _ := get(t, public+"/healthz"); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	pw, err := bus.ReadPasswordFile(bus.PasswordFile(authDir, "ingest"))
	if err != nil {
		t.Fatal(err)
	}
	url := "nats://" + addr
	if nc, err := nats.Connect(url, nats.UserInfo("ingest", pw), nats.Timeout(time.Second)); err == nil {
		nc.Close()
		t.Fatal("connected without trusting the server's CA")
	}
	nc, err := nats.Connect(url, nats.UserInfo("ingest", pw), nats.RootCAs(ca))
	if err != nil {
		t.Fatalf("with the CA: %v", err)
	}
	if !nc.TLSRequired() {
		t.Error("server does not require TLS")
	}
	nc.Close()
}

func TestNATSTLSFlagsValidated(t *testing.T) {
	var cfg config
	for _, args := range [][]string{
		{"--embed-nats", "--nats-tls-cert", "c.pem"},
		{"--embed-nats", "--nats-tls-cert", "c.pem", "--nats-tls-key", "k.pem"},
		{"--embed-nats", "--nats-tls-cert", "c.pem", "--nats-tls-key", "k.pem", "--nats-ca", "ca.pem", "--nats-tls-client-ca", "ca.pem"},
	} {
		cfg = config{}
		cfg.NATSTLS.Cert, cfg.NATSTLS.Key, cfg.NATS.CA, cfg.NATSTLS.ClientCA = flag(args, "--nats-tls-cert"), flag(args, "--nats-tls-key"), flag(args, "--nats-ca"), flag(args, "--nats-tls-client-ca")
		if err := cfg.NATSTLS.Validate(&cfg.NATS); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

func flag(args []string, name string) string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == name {
			return args[i+1]
		}
	}
	return ""
}
