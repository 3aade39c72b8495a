package natsflags

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickwire/tickwire/internal/bus"
)

// Embed are the flags of a NATS server with JetStream run inside the process (feed and ingest
// both offer it, with these names): the zero-config run on one machine. Embed it in a kong
// config with `embed:""`.
type Embed struct {
	On      bool   `name:"embed-nats" help:"Run a NATS server with JetStream inside this process and use it." group:"NATS"`
	Listen  string `name:"nats-listen" default:"127.0.0.1:4222" help:"host:port the embedded NATS server listens on (port -1: a random one)." group:"NATS"`
	DataDir string `name:"nats-data-dir" default:".data/nats" type:"path" help:"JetStream store directory of the embedded server." group:"NATS"`
	Sync    string `name:"nats-sync" default:"2m" help:"Embedded JetStream fsync: an interval (2m, the server default) or always (every write; ~10x slower, see docs/OPERATIONS.md)." group:"NATS"`
}

// Validate checks the flags when On.
func (e *Embed) Validate() error {
	if !e.On {
		return nil
	}
	if _, _, err := e.hostPort(); err != nil {
		return err
	}
	if e.DataDir == "" {
		return errors.New("--nats-data-dir is empty")
	}
	if _, _, err := bus.ParseSync(e.Sync); err != nil {
		return fmt.Errorf("--nats-sync: %w", err)
	}
	return nil
}

func (e *Embed) hostPort() (string, int, error) {
	host, p, err := net.SplitHostPort(e.Listen)
	if err != nil {
		return "", 0, fmt.Errorf("--nats-listen %q: %w", e.Listen, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < -1 || port > 65535 {
		return "", 0, fmt.Errorf("--nats-listen %q: bad port %q", e.Listen, p)
	}
	return host, port, nil
}

// Start starts the embedded server (Validate first) with the users' passwords in f.AuthDir and
// the TLS files of tls, and returns it with how this process connects to it as role. The caller
// shuts it down after closing its own connection.
func (e *Embed) Start(f *Flags, tls *ServerTLS, role bus.Role, reg prometheus.Registerer, log *slog.Logger) (*bus.Embedded, string, bus.Auth, error) {
	host, port, err := e.hostPort()
	if err != nil {
		return nil, "", bus.Auth{}, err
	}
	interval, always, err := bus.ParseSync(e.Sync)
	if err != nil {
		return nil, "", bus.Auth{}, fmt.Errorf("--nats-sync: %w", err)
	}
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{Host: host, Port: port, DataDir: e.DataDir,
		SyncInterval: interval, SyncAlways: always, AuthDir: f.AuthDir, Metrics: reg,
		TLSCert: tls.Cert, TLSKey: tls.Key, TLSCA: tls.ClientCA}, log)
	if err != nil {
		return nil, "", bus.Auth{}, err
	}
	log.Info("embedded NATS server running", "url", srv.ClientURL(), "store", e.DataDir, "passwords", f.AuthDir)
	return srv, srv.ClientURL(), f.Embedded(srv.Auth(string(role))), nil
}
