package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickwire/tickwire/internal/certreload"
)

// tlsFlags make the public listener serve https:// and wss:// (docs/OPERATIONS.md, "TLS on
// the feed").
type tlsFlags struct {
	Cert       string        `name:"tls-cert" type:"path" placeholder:"FILE" help:"Serve https:// and wss:// with this PEM certificate (the leaf first, then intermediates). Reloaded on SIGHUP and when the file changes; open connections keep theirs."`
	Key        string        `name:"tls-key" type:"path" placeholder:"FILE" help:"The PEM private key of --tls-cert."`
	MinVersion string        `name:"tls-min-version" default:"1.2" enum:"1.2,1.3" help:"Oldest TLS version accepted (${enum})."`
	Watch      time.Duration `name:"tls-watch" default:"1m" help:"How often to check --tls-cert and --tls-key for changes and reload them (0: on SIGHUP only)."`
}

func (f *tlsFlags) validate() error {
	if (f.Cert == "") != (f.Key == "") {
		return fmt.Errorf("--tls-cert and --tls-key go together")
	}
	if f.Watch < 0 {
		return fmt.Errorf("--tls-watch %v is negative", f.Watch)
	}
	return nil
}

// load returns the certificate pair and a server configuration, or nil without --tls-cert.
// It registers a gauge of the served certificate's expiry.
func (f *tlsFlags) load(log *slog.Logger, reg prometheus.Registerer) (*certreload.Pair, uint16, error) {
	if f.Cert == "" {
		return nil, 0, nil
	}
	min, err := certreload.ParseVersion(f.MinVersion)
	if err != nil {
		return nil, 0, fmt.Errorf("--tls-min-version: %w", err)
	}
	pair, err := certreload.Load(f.Cert, f.Key, log.With("component", "tls"))
	if err != nil {
		return nil, 0, err
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tickwire_feed_tls_cert_not_after_seconds",
		Help: "Expiry (Unix time) of the TLS certificate new connections get.",
	}, func() float64 { return float64(pair.Certificate().Leaf.NotAfter.Unix()) }))
	return pair, min, nil
}

// reloadTLS reloads pair on every SIGHUP, and when its files change if watch > 0, until the
// returned stop is called.
func reloadTLS(pair *certreload.Pair, watch time.Duration, log *slog.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := pair.Reload(); err != nil {
					log.Error("SIGHUP: TLS certificate not reloaded; keeping the previous one", "err", err)
				}
			}
		}
	})
	if watch > 0 {
		wg.Go(func() { pair.Watch(ctx, watch) })
	}
	return func() {
		signal.Stop(hup)
		cancel()
		wg.Wait()
	}
}
