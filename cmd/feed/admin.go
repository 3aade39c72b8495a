package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// adminServer serves what only operators may see, on its own listener (--admin-listen,
// loopback by default): /metrics, the Go runtime's /debug/pprof/, and /readyz with the ids of
// stale instruments. The public listener serves none of it (its /readyz gives counts only).
type adminServer struct {
	ln   net.Listener
	http *http.Server
	mux  *http.ServeMux
	done chan error // Serve's result
}

// Handle adds a route once its component exists (the feed's /readyz with details); ServeMux
// takes routes while it serves.
func (a *adminServer) Handle(pattern string, h http.Handler) { a.mux.Handle(pattern, h) }

// adminMux routes the admin endpoints.
func adminMux(reg *prometheus.Registry) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/debug/pprof/", pprof.Index) // heap, goroutine, allocs, block, mutex, threadcreate
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// listenAdmin listens on addr (a bind failure is reported now, not later) and serves the
// admin endpoints until Shutdown.
func listenAdmin(addr string, reg *prometheus.Registry, log *slog.Logger) (*adminServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--admin-listen: %w", err)
	}
	mux := adminMux(reg)
	a := &adminServer{ln: ln, mux: mux, done: make(chan error, 1),
		// No WriteTimeout: /debug/pprof/profile streams for as long as asked (30 s default).
		http: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}
	go func() { a.done <- a.http.Serve(ln) }()
	log.Info("admin listening", "addr", ln.Addr().String(), "endpoints", "/metrics /debug/pprof/ /readyz")
	return a, nil
}

// Addr returns the address the admin server listens on.
func (a *adminServer) Addr() net.Addr { return a.ln.Addr() }

// Shutdown stops the admin server within timeout and waits for it.
func (a *adminServer) Shutdown(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := a.http.Shutdown(ctx)
	if serr := <-a.done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
