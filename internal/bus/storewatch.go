package bus

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"
)

// The embedded server's store watch. When JetStream cannot write its files (the disk is full,
// the file system turned read-only, an I/O error), nats-server keeps the failed stream's error
// and refuses every later write to it, without answering publishers (they see only "timeout
// waiting for ack"), until JetStream is restarted; for some faults it shuts JetStream down
// itself. It says why only in its log. The watch reads that log, reports the cause (log and
// tickwire_nats_store_fault), and once the data dir takes writes again (probed every
// storeRetryMin..storeRetryMax) restarts JetStream, which reopens the stores from disk: the
// pipeline then recovers on its own (publishers are acked again, consumers recreate).

const (
	// storeCheckEvery is how often the watch also asks whether JetStream is still enabled
	// (a fault it did not recognise in the log); a cheap in-process call.
	storeCheckEvery = 5 * time.Second
	// storeRetryMin and storeRetryMax bound the wait between probes of a failed store: soon
	// after an operator frees space, without spinning on a disk that stays full.
	storeRetryMin = time.Second
	storeRetryMax = 30 * time.Second
	// storeProbeBytes is what a probe writes before JetStream is restarted: a restart into a
	// disk with less room than this would fail again at once.
	storeProbeBytes = 1 << 20
)

// storeFaultMarks are the nats-server log messages that mean a store failed to write (matched
// case-insensitively; nats-server itself detects "no space left" by text).
var storeFaultMarks = []string{
	"critical write error",    // filestore and stream: a write failed; the stream is stuck
	"failed to store a msg",   // a publish that could not be stored
	"will be disabled",        // "JetStream out of resources, will be DISABLED"
	"disabling jetstream",     // a permission error while writing
	"no space left on device", // ENOSPC anywhere
	"read-only file system",   // EROFS anywhere
}

func isStoreFault(msg string) bool {
	msg = strings.ToLower(msg)
	for _, m := range storeFaultMarks {
		if strings.Contains(msg, m) {
			return true
		}
	}
	return false
}

type storeWatch struct {
	srv     *server.Server
	dataDir string
	log     *slog.Logger
	jsCfg   server.JetStreamConfig // as started; reused to restart JetStream

	fault    prometheus.Gauge
	restarts prometheus.Counter

	started bool          // set by startServer before run starts; read by close after it
	kick    chan struct{} // capacity 1: a fault was logged
	quit    chan struct{}
	done    chan struct{}
	stop    sync.Once

	mu       sync.Mutex
	faultMsg string // guarded by mu: first fault logged since the last check
	fatalMsg string // guarded by mu: the server's first fatal message
}

func newStoreWatch(dataDir string, logger *slog.Logger, reg prometheus.Registerer) (*storeWatch, error) {
	w := &storeWatch{
		dataDir: dataDir,
		log:     logger,
		kick:    make(chan struct{}, 1),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	var err error
	if w.fault, err = register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "tickwire_nats_store_fault",
		Help: "1 while the embedded NATS server's JetStream store cannot write (disk full, read-only, I/O error); it is restarted once the data dir takes writes.",
	})); err != nil {
		return nil, err
	}
	if w.restarts, err = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tickwire_nats_store_restarts_total",
		Help: "JetStream restarts of the embedded NATS server after a store fault.",
	})); err != nil {
		return nil, err
	}
	return w, nil
}

// observe sees every warning, error and fatal message of the server.
func (w *storeWatch) observe(fatal bool, msg string) {
	w.mu.Lock()
	if fatal && w.fatalMsg == "" {
		w.fatalMsg = msg
	}
	isFault := isStoreFault(msg)
	if isFault && w.faultMsg == "" {
		w.faultMsg = msg
	}
	w.mu.Unlock()
	if isFault {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
}

func (w *storeWatch) fatal() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.fatalMsg
}

func (w *storeWatch) takeFault() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	msg := w.faultMsg
	w.faultMsg = ""
	return msg
}

// startServer starts srv with its logs going to logger through the watch, waits until it
// accepts connections (or fails: its own fatal message is returned at once, not after the
// timeout), then starts the watch's goroutine.
func (w *storeWatch) startServer(srv *server.Server, logger *slog.Logger, debug bool, timeout time.Duration, addr string) error {
	w.srv = srv
	srv.SetLoggerV2(&watchedLogger{natsLogger: natsLogger{l: logger}, w: w}, debug, false, false)
	srv.Start()
	deadline := time.Now().Add(timeout)
	for !srv.ReadyForConnections(50 * time.Millisecond) {
		msg := w.fatal()
		if msg == "" && time.Now().Before(deadline) {
			continue
		}
		srv.Shutdown()
		srv.WaitForShutdown()
		if msg != "" {
			return fmt.Errorf("%w: %s", ErrEmbedded, msg)
		}
		return fmt.Errorf("%w: not ready for connections on %s within %s", ErrEmbedded, addr, timeout)
	}
	cfg := srv.JetStreamConfig()
	if cfg == nil {
		srv.Shutdown()
		srv.WaitForShutdown()
		return fmt.Errorf("%w: JetStream did not start", ErrEmbedded)
	}
	w.jsCfg = *cfg
	w.started = true
	go w.run()
	return nil
}

// close stops the watch's goroutine and waits for it. Safe to call more than once.
func (w *storeWatch) close() {
	w.stop.Do(func() {
		close(w.quit)
		if w.started {
			<-w.done
		}
	})
}

func (w *storeWatch) run() {
	defer close(w.done)
	t := time.NewTicker(storeCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-w.quit:
			return
		case <-w.kick:
		case <-t.C:
		}
		cause := w.takeFault()
		if cause == "" && w.srv.JetStreamEnabled() {
			continue
		}
		if cause == "" {
			cause = "JetStream was shut down"
		}
		if !w.recover(cause) {
			return
		}
	}
}

// recover reports a store fault and restarts JetStream once the data dir takes writes. It
// returns false if the watch was stopped first.
func (w *storeWatch) recover(cause string) bool {
	start := time.Now()
	w.fault.Set(1)
	w.log.Error("JetStream store cannot write: events are not stored; JetStream restarts once the data dir takes writes again",
		"data_dir", w.dataDir, "cause", cause)
	wait := storeRetryMin
	var lastErr string
	for {
		select {
		case <-w.quit:
			return false
		case <-time.After(wait):
		}
		wait = min(2*wait, storeRetryMax)
		if err := probeDataDir(w.dataDir, storeProbeBytes); err != nil {
			if err.Error() != lastErr { // once per distinct error, not every retry
				lastErr = err.Error()
				w.log.Warn("JetStream data dir still not writable; retrying", "data_dir", w.dataDir, "err", err, "in", wait)
			}
			continue
		}
		w.takeFault() // what failed before the restart; a fault after it starts over
		if err := w.restartJetStream(); err != nil {
			w.log.Warn("JetStream restart failed; retrying", "data_dir", w.dataDir, "err", err, "in", wait)
			continue
		}
		w.restarts.Inc()
		w.fault.Set(0)
		w.log.Info("JetStream restarted: the store takes writes again", "data_dir", w.dataDir,
			"down_for", time.Since(start).Round(time.Millisecond))
		return true
	}
}

// restartJetStream shuts JetStream down (flushing and closing every store) and starts it again
// with its first configuration: the stores are reopened from disk, without the failed write.
func (w *storeWatch) restartJetStream() error {
	if w.srv.JetStreamEnabled() {
		if err := w.srv.ShutdownJetStream(); err != nil {
			return fmt.Errorf("shut down JetStream: %w", err)
		}
	}
	cfg := w.jsCfg
	cfg.StoreDir = w.dataDir // EnableJetStream appends "jetstream" itself
	if err := w.srv.EnableJetStream(&cfg); err != nil {
		return fmt.Errorf("enable JetStream: %w", err)
	}
	return nil
}

// watchedLogger is natsLogger that also shows the watch the server's warnings and errors.
type watchedLogger struct {
	natsLogger
	w *storeWatch
}

func (l *watchedLogger) note(level slog.Level, fatal bool, format string, v []any) {
	msg := fmt.Sprintf(format, v...)
	l.w.observe(fatal, msg)
	if l.l.Enabled(context.Background(), level) {
		l.l.Log(context.Background(), level, msg)
	}
}

func (l *watchedLogger) Warnf(format string, v ...any)  { l.note(slog.LevelWarn, false, format, v) }
func (l *watchedLogger) Errorf(format string, v ...any) { l.note(slog.LevelError, false, format, v) }
func (l *watchedLogger) Fatalf(format string, v ...any) { l.note(slog.LevelError, true, format, v) }
