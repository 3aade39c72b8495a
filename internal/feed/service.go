package feed

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/tickwire/tickwire/internal/bus"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// EventSource delivers stored then live events in order; *bus.Bus is one.
type EventSource interface {
	ConsumeEvents(ctx context.Context, opts bus.ConsumeOptions, handle func(*pb.Event) error) (*bus.Consumer, error)
}

// Service runs a Server fed from an EventSource behind an HTTP listener.
type Service struct {
	Server *Server
	src    EventSource
	http   *http.Server
	ln     net.Listener
	log    *slog.Logger
	create func(context.Context) error // creates the event stream when it is missing; nil: wait for it
	ckpt   *checkpointer               // state checkpoints (checkpoint.go); nil: off
	// progressEvery is how often the warm-up's progress is logged; 0: every 5 s.
	progressEvery time.Duration
}

// CreateStreamWith makes Run create the event stream with create when it finds none, instead of
// waiting until another process (ingest, tickctl import) creates it. Call before Run.
func (s *Service) CreateStreamWith(create func(context.Context) error) { s.create = create }

// NewService listens on addr (":0" for a random port) and serves handler, which should include
// Server.Handler. Run starts consuming and serving.
func NewService(srv *Server, src EventSource, addr string, handler http.Handler, logger *slog.Logger) (*Service, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("feed: listen on %s: %w", addr, err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Service{
		Server: srv,
		src:    src,
		ln:     ln,
		log:    logger,
		http:   &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second},
	}, nil
}

// ServeTLS makes Run serve HTTPS and wss:// with cfg instead of plain HTTP (a
// certreload.Pair's ServerConfig: its certificate can be replaced while connections stay
// open). HTTP/2 is off: WebSocket upgrades need HTTP/1.1. Call it before Run.
func (s *Service) ServeTLS(cfg *tls.Config) {
	s.ln = tls.NewListener(s.ln, cfg)
	s.http.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	// A failed handshake (a scanner, a client that does not trust the certificate, TLS 1.1)
	// is the client's problem: debug, not the standard logger's stderr line each time.
	s.http.ErrorLog = log.New(serverLog{s.log}, "", 0)
}

// serverLog takes net/http's log lines: TLS handshake failures at debug, the rest as warnings.
type serverLog struct{ log *slog.Logger }

func (l serverLog) Write(b []byte) (int, error) {
	msg := strings.TrimSpace(string(b))
	level := slog.LevelWarn
	if strings.Contains(msg, "TLS handshake error") {
		level = slog.LevelDebug
	}
	l.log.Log(context.Background(), level, msg)
	return len(b), nil
}

// Close releases the listener of a Service that will not Run (its set-up failed after
// NewService). Run closes it otherwise.
func (s *Service) Close() error { return s.ln.Close() }

// Addr returns the address the service listens on.
func (s *Service) Addr() net.Addr { return s.ln.Addr() }

// Run consumes every stored event (or, with EnableCheckpoints, loads the latest usable state
// checkpoint and consumes the events after it), then reports ready and keeps consuming live
// ones, while serving HTTP and WebSocket clients. Meanwhile the log and /readyz?verbose show the
// progress. It returns when ctx ends, after a graceful shutdown
// bounded by shutdownTimeout, or when consuming or serving fails.
func (s *Service) Run(ctx context.Context, shutdownTimeout time.Duration) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	serveErr := make(chan error, 1)
	go func() { serveErr <- s.http.Serve(s.ln) }()
	// The stream may not exist yet (ingest creates it): keep trying, not ready meanwhile.
	var cons *bus.Consumer
	var w *warmup
	for {
		var err error
		if w == nil {
			// Where to start: a checkpoint's next event, or the stream's first (nil: no stream yet).
			w, err = s.prepare(ctx)
		}
		if err == nil {
			opts := bus.ConsumeOptions{Live: true}
			if w != nil {
				s.Server.warmup.Store(w)
				opts.AfterEach = s.afterEach(ctx, w)
				if w.fromCheckpoint {
					opts.StartSeq = w.from
				}
			}
			cons, err = s.src.ConsumeEvents(ctx, opts, func(ev *pb.Event) error {
				return s.Server.Dispatch(ctx, ev)
			})
			if err == nil && w == nil {
				// The stream appeared between prepare and ConsumeEvents: start with its state.
				cons.Stop()
				continue
			}
		}
		if err == nil {
			break
		}
		if errors.Is(err, bus.ErrNoStream) && s.create != nil {
			// A fresh store: whichever process starts first creates the stream.
			if cerr := s.create(ctx); cerr == nil {
				s.log.Info("created the event stream: no process had yet")
				continue
			} else {
				err = errors.Join(err, cerr)
			}
		}
		s.log.Warn("cannot consume events yet; retrying", "err", err)
		select {
		case <-ctx.Done():
			sctx, scancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer scancel()
			return errors.Join(s.http.Shutdown(sctx), s.Server.Shutdown(sctx))
		case <-time.After(time.Second):
		}
	}

	var runErr error
	caughtUp := cons.CaughtUp()
	warming := make(chan struct{})
	go s.logProgress(w, warming)
loop:
	for {
		select {
		case <-caughtUp:
			caughtUp = nil
			// Every stored event is dispatched; wait until the owners applied them too, so
			// that the instrument list and first snapshots show the present.
			if err := s.Server.Sync(ctx); err != nil {
				break loop
			}
			close(warming)
			s.Server.SetReady(true)
			ws := w.status()
			s.log.Info("caught up with stored events; ready", "took", time.Since(start).Round(time.Millisecond),
				"instruments", len(s.Server.Instruments()), "events", ws.Events, "from_checkpoint", ws.FromCheckpoint,
				"checkpoint_seq", ws.CheckpointSeq)
		case <-cons.Done():
			if err := cons.Err(); err != nil && ctx.Err() == nil {
				runErr = fmt.Errorf("feed: consumer stopped: %w", err)
			}
			break loop
		case err := <-serveErr:
			runErr = fmt.Errorf("feed: serve http: %w", err)
			serveErr = nil
			break loop
		case <-ctx.Done():
			break loop
		}
	}

	// Shut down: no new connections, clients told 1001, then stop consuming.
	sctx, scancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer scancel()
	s.Server.SetReady(false)
	httpErr := s.http.Shutdown(sctx)
	cons.Stop() // nothing is dispatched after this
	if caughtUp == nil && runErr == nil {
		s.finalCheckpoint(sctx, w) // the owners still run: the state at the last event applied
	}
	srvErr := s.Server.Shutdown(sctx)
	cancel()
	if caughtUp != nil {
		close(warming)
	}
	if s.ckpt != nil {
		s.ckpt.wg.Wait() // a checkpoint write ends with ctx
	}
	if serveErr != nil {
		if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) && runErr == nil {
			runErr = err
		}
	}
	return errors.Join(runErr, httpErr, srvErr)
}
