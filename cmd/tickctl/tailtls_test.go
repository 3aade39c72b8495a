package main

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickwire/tickwire/internal/certreload/certtest"
	"github.com/tickwire/tickwire/internal/feed"
	"github.com/tickwire/tickwire/internal/replay/replaytest"
)

// tail --ca-file: a wss:// feed whose certificate a private CA signs.
func TestTailOverTLSWithCAFile(t *testing.T) {
	srv, err := feed.New(feed.Config{}, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	evs := replaytest.Events(t, replaytest.Config{Instruments: 1, Events: 2000})
	for _, ev := range evs[:200] {
		if err := srv.Dispatch(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	srv.SetReady(true)
	hs := httptest.NewUnstartedServer(srv.Handler(nil))
	hs.StartTLS()
	defer hs.Close()
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
	}()
	go func() {
		for _, ev := range evs[200:] {
			if ctx.Err() != nil || srv.Dispatch(ctx, ev) != nil {
				return
			}
			time.Sleep(200 * time.Microsecond)
		}
	}()
	// httptest's certificate is self-signed: it is its own CA.
	ca := filepath.Join(t.TempDir(), "ca.pem")
	certtest.Write(t, ca, "CERTIFICATE", hs.Certificate().Raw)
	url := "wss" + strings.TrimPrefix(hs.URL, "https") + "/ws"
	out := mustRun(t, "tail", "--url", url, "--ca-file", ca, "--instrument", evs[0].Instrument, "--channel", "quote", "--count", "20")
	if !strings.HasPrefix(out, "# connected") || !strings.Contains(out, " quote delta ") {
		t.Fatalf("tail over wss:\n%s", out)
	}
}
