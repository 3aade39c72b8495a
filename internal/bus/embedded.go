package bus

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"
)

// EmbeddedConfig configures an in-process NATS server with JetStream.
type EmbeddedConfig struct {
	// Host to listen on; default "127.0.0.1".
	Host string
	// Port to listen on; 0 means the NATS default 4222, -1 a random free port (tests).
	Port int
	// DataDir is the JetStream store directory (required).
	DataDir string
	// ServerName; default "tickwire-embedded".
	ServerName string
	// SyncInterval is how often JetStream fsyncs its files; 0 is the server default (2 min).
	// Acknowledged writes since the last sync can be lost on power loss (not on a process
	// crash: the OS still holds them). SyncAlways fsyncs every write instead, at a large
	// throughput cost; see BENCH_NOTES.md.
	SyncInterval time.Duration
	SyncAlways   bool
	// ReadyTimeout bounds the wait for the server to accept connections; default 10 s.
	ReadyTimeout time.Duration
	// Debug enables the server's debug logs.
	Debug bool
	// Metrics receives tickwire_nats_store_* (the store watch: a store that cannot write, its
	// restarts); nil: none.
	Metrics prometheus.Registerer

	// AuthDir keeps the users' passwords, one file per user (PasswordFile: <user>.password,
	// mode 0600, directory 0700), generated on the first start and reused after; clients
	// on this machine read theirs from there. Empty: passwords are generated for this run and
	// kept in memory only (tests); Auth returns them. Anonymous connections are always refused.
	AuthDir string
	// Users of the server; default DefaultUsers() (one per role).
	Users []User
	// Stream is the event stream the users' permissions name; default DefaultStreamName.
	Stream string
	// TLSCert and TLSKey, if set, make the server require TLS (1.2 or later) from every client;
	// with TLSCA it also requires a client certificate signed by that CA.
	TLSCert, TLSKey, TLSCA string
}

// Embedded is a running in-process NATS server.
type Embedded struct {
	srv       *server.Server
	watch     *storeWatch
	once      sync.Once
	authDir   string
	passwords map[string]string // user -> password; read-only after start
}

// StartEmbedded starts nats-server in this process with JetStream storing in cfg.DataDir and
// returns once it accepts connections. The server's logs go to logger (component=nats).
// Call Shutdown to stop it.
func StartEmbedded(cfg EmbeddedConfig, logger *slog.Logger) (*Embedded, error) {
	if cfg.DataDir == "" {
		return nil, fmt.Errorf("%w: DataDir is required", ErrEmbedded)
	}
	if err := checkDataDir(cfg.DataDir); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEmbedded, err)
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.ServerName == "" {
		cfg.ServerName = "tickwire-embedded"
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 10 * time.Second
	}
	users, passwords, err := embeddedUsers(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEmbedded, err)
	}
	tlsConfig, err := embeddedTLS(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEmbedded, err)
	}
	opts := &server.Options{
		Users:        users, // and no NoAuthUser: anonymous connections are refused
		TLS:          tlsConfig != nil,
		TLSConfig:    tlsConfig,
		TLSVerify:    cfg.TLSCA != "",
		ServerName:   cfg.ServerName,
		Host:         cfg.Host,
		Port:         cfg.Port,
		JetStream:    true,
		StoreDir:     cfg.DataDir,
		SyncInterval: cfg.SyncInterval,
		SyncAlways:   cfg.SyncAlways,
		NoSigs:       true, // the process owns signals; main shuts us down
		Debug:        cfg.Debug,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEmbedded, err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "nats")
	// The store watch (storewatch.go) sees the server's logs: a fatal start-up error is
	// returned at once, and a store that cannot write is reported and restarted.
	watch, err := newStoreWatch(cfg.DataDir, logger, cfg.Metrics)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEmbedded, err)
	}
	if err := watch.startServer(srv, logger, cfg.Debug, cfg.ReadyTimeout, fmt.Sprintf("%s:%d", cfg.Host, cfg.Port)); err != nil {
		return nil, err
	}
	return &Embedded{srv: srv, watch: watch, authDir: cfg.AuthDir, passwords: passwords}, nil
}

// embeddedUsers returns the server's users with their permissions, and their passwords (from
// cfg.AuthDir, generated there the first time, or generated for this run).
func embeddedUsers(cfg EmbeddedConfig) ([]*server.User, map[string]string, error) {
	us := cfg.Users
	if len(us) == 0 {
		us = DefaultUsers()
	}
	stream := cfg.Stream
	if stream == "" {
		stream = DefaultStreamName
	}
	var users []*server.User
	passwords := map[string]string{}
	for _, u := range us {
		if _, dup := passwords[u.Name]; dup {
			return nil, nil, fmt.Errorf("%w: user %q twice", ErrAuth, u.Name)
		}
		p, err := u.Permissions(stream)
		if err != nil {
			return nil, nil, err
		}
		var pw string
		if cfg.AuthDir != "" {
			pw, err = loadOrCreatePassword(cfg.AuthDir, u.Name)
		} else {
			pw, err = newPassword()
		}
		if err != nil {
			return nil, nil, err
		}
		passwords[u.Name] = pw
		users = append(users, &server.User{Username: u.Name, Password: pw, Permissions: p.server()})
	}
	return users, passwords, nil
}

// embeddedTLS returns the server's TLS configuration (nil: no TLS).
func embeddedTLS(cfg EmbeddedConfig) (*tls.Config, error) {
	if cfg.TLSCert == "" && cfg.TLSKey == "" && cfg.TLSCA == "" {
		return nil, nil
	}
	if cfg.TLSCert == "" || cfg.TLSKey == "" {
		return nil, fmt.Errorf("TLS needs both a certificate and its key")
	}
	c, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: cfg.TLSCert, KeyFile: cfg.TLSKey, CaFile: cfg.TLSCA,
		Verify: cfg.TLSCA != "", MinVersion: tls.VersionTLS12})
	if err != nil {
		return nil, fmt.Errorf("TLS: %w", err)
	}
	return c, nil
}

// server converts p to nats-server's form.
func (p Permissions) server() *server.Permissions {
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: p.PublishAllow, Deny: p.PublishDeny},
		Subscribe: &server.SubjectPermission{Allow: p.SubscribeAllow, Deny: p.SubscribeDeny},
	}
}

// Auth returns how user connects to this server: its name and password. The zero Auth
// (anonymous, refused) for a user the server does not have.
func (e *Embedded) Auth(user string) Auth {
	pw, ok := e.passwords[user]
	if !ok {
		return Auth{}
	}
	return Auth{User: user, Password: pw}
}

// AuthDir returns the directory holding the users' password files ("" if they are in memory
// only).
func (e *Embedded) AuthDir() string { return e.authDir }

// ClientURL returns the URL clients connect to, e.g. "nats://127.0.0.1:4222".
func (e *Embedded) ClientURL() string { return e.srv.ClientURL() }

// Shutdown stops the server and waits until it has stopped. Safe to call more than once.
func (e *Embedded) Shutdown() {
	e.once.Do(func() {
		e.watch.close()
		e.srv.Shutdown()
		e.srv.WaitForShutdown()
	})
}

// natsLogger adapts slog to nats-server's Logger.
type natsLogger struct{ l *slog.Logger }

func (n *natsLogger) log(level slog.Level, format string, v []any) {
	if !n.l.Enabled(context.Background(), level) {
		return
	}
	n.l.Log(context.Background(), level, fmt.Sprintf(format, v...))
}

func (n *natsLogger) Noticef(format string, v ...any) { n.log(slog.LevelInfo, format, v) }
func (n *natsLogger) Warnf(format string, v ...any)   { n.log(slog.LevelWarn, format, v) }
func (n *natsLogger) Fatalf(format string, v ...any)  { n.log(slog.LevelError, format, v) }
func (n *natsLogger) Errorf(format string, v ...any)  { n.log(slog.LevelError, format, v) }
func (n *natsLogger) Debugf(format string, v ...any)  { n.log(slog.LevelDebug, format, v) }
func (n *natsLogger) Tracef(format string, v ...any)  { n.log(slog.LevelDebug-4, format, v) }

// ParseSync reads a JetStream durability setting: "always" fsyncs every write; a duration
// ("2m", "10s") fsyncs at that interval. See docs/OPERATIONS.md, Durability.
func ParseSync(s string) (interval time.Duration, always bool, err error) {
	if s == "always" {
		return 0, true, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, false, fmt.Errorf("bus: sync %q: want \"always\" or a positive duration", s)
	}
	return d, false, nil
}
