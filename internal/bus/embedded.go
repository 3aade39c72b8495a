package bus

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
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
}

// Embedded is a running in-process NATS server.
type Embedded struct {
	srv  *server.Server
	once sync.Once
}

// StartEmbedded starts nats-server in this process with JetStream storing in cfg.DataDir and
// returns once it accepts connections. The server's logs go to logger (component=nats).
// Call Shutdown to stop it.
func StartEmbedded(cfg EmbeddedConfig, logger *slog.Logger) (*Embedded, error) {
	if cfg.DataDir == "" {
		return nil, fmt.Errorf("%w: DataDir is required", ErrEmbedded)
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
	opts := &server.Options{
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
	if logger != nil {
		srv.SetLoggerV2(&natsLogger{l: logger.With("component", "nats")}, cfg.Debug, false, false)
	}
	srv.Start()
	if !srv.ReadyForConnections(cfg.ReadyTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("%w: not ready for connections on %s:%d within %s", ErrEmbedded, cfg.Host, cfg.Port, cfg.ReadyTimeout)
	}
	return &Embedded{srv: srv}, nil
}

// ClientURL returns the URL clients connect to, e.g. "nats://127.0.0.1:4222".
func (e *Embedded) ClientURL() string { return e.srv.ClientURL() }

// Shutdown stops the server and waits until it has stopped. Safe to call more than once.
func (e *Embedded) Shutdown() {
	e.once.Do(func() {
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
