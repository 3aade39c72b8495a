package feed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/replay"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// Starting replay sessions in the feed: POST /api/replays (docs/PROTOCOL.md §2.4). A trader picks
// a window and a speed in the dashboard and goes, instead of asking an operator for `tickctl
// replay`. The feed runs the replayer itself (internal/replay, the same one tickctl runs) on its
// NATS connection, owned by the Server: bounded in number, ended after a time to live, stopped
// and awaited on shutdown. Off unless enabled (feed --replay-start).

// ReplayStartConfig bounds the sessions a feed starts. Zero fields take the defaults.
type ReplayStartConfig struct {
	// Max is the sessions running at once in this feed; default 4.
	Max int
	// TTL ends a session this long after it started (a finished session stays watchable until
	// then); default 1 h.
	TTL time.Duration
	// MaxWindow is the longest window; default 24 h.
	MaxWindow time.Duration
}

func (c ReplayStartConfig) withDefaults() ReplayStartConfig {
	if c.Max <= 0 {
		c.Max = 4
	}
	if c.TTL <= 0 {
		c.TTL = time.Hour
	}
	if c.MaxWindow <= 0 {
		c.MaxWindow = 24 * time.Hour
	}
	return c
}

// ReplayRunner is what a feed needs to run replay sessions: read the stream and publish the
// session (bus.Bus is both).
type ReplayRunner interface {
	replay.Source
	replay.Publisher
}

// BusReplayRunner runs sessions on b.
func BusReplayRunner(b *bus.Bus) ReplayRunner {
	return struct {
		replay.BusSource
		*bus.Bus
	}{replay.BusSource{Bus: b}, b}
}

type replayStarter struct {
	cfg ReplayStartConfig
	run ReplayRunner

	mu      sync.Mutex
	running map[string]struct{} // guarded by mu: sessions this feed runs
}

// maxReplayInstruments bounds the instruments a start request names.
const maxReplayInstruments = 100

// replayStartRequest is the body of POST /api/replays.
type replayStartRequest struct {
	From        string   `json:"from"`
	To          string   `json:"to"`
	Speed       *float64 `json:"speed"`
	Instruments []string `json:"instruments"`
	Session     string   `json:"session"`
}

// EnableReplayStart lets clients whose token grants replay_control start replay sessions with
// POST /api/replays, run by this feed on run. Call before serving.
func (s *Server) EnableReplayStart(run ReplayRunner, cfg ReplayStartConfig) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replayStart = &replayStarter{cfg: cfg.withDefaults(), run: run, running: map[string]struct{}{}}
}

// badReplayStart is a 400 refusal of a start request. Refusals use the /api error body,
// {"code": ..., "message": ...}, as /api/candles (writeAPIError).
func badReplayStart(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "bad_request", msg: fmt.Sprintf(format, args...)}
}

// serveReplayStart answers POST /api/replays.
func (s *Server) serveReplayStart(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	st := s.replayStart
	s.mu.Unlock()
	if st == nil {
		writeAPIError(w, &apiError{status: http.StatusNotImplemented, code: "not_enabled",
			msg: "this feed does not start replay sessions (feed --replay-start); an operator runs: tickctl replay"})
		return
	}
	cred, ok := s.httpCredentialOf(w, r)
	if !ok {
		return
	}
	if !cred.ent.ReplayControl {
		s.httpRefused.WithLabelValues("not_entitled").Inc()
		writeAPIError(w, &apiError{status: http.StatusForbidden, code: "not_entitled",
			msg: "starting a replay session needs a token granted replay_control"})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	cfg, rerr := st.parse(r, cred, time.Now())
	if rerr != nil {
		writeAPIError(w, rerr)
		return
	}
	id, rerr := s.startReplay(r.Context(), st, cfg)
	if rerr != nil {
		writeAPIError(w, rerr)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	b, _ := json.Marshal(struct {
		Session string `json:"session"`
		URL     string `json:"url"`
	}{id, "/?replay=" + id})
	w.Write(append(b, '\n'))
}

// parse reads and checks a start request into a replayer's Config.
func (st *replayStarter) parse(r *http.Request, cred *credential, now time.Time) (replay.Config, *apiError) {
	var req replayStartRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return replay.Config{}, badReplayStart("body: %v (want {\"from\", \"to\", \"speed\", \"instruments\", \"session\"})", err)
	}
	from, err := time.Parse(time.RFC3339Nano, req.From)
	if err != nil {
		return replay.Config{}, badReplayStart("from: %v (want an RFC 3339 time)", err)
	}
	to, err := time.Parse(time.RFC3339Nano, req.To)
	if err != nil {
		return replay.Config{}, badReplayStart("to: %v (want an RFC 3339 time)", err)
	}
	switch {
	case !to.After(from):
		return replay.Config{}, badReplayStart("to %s is not after from %s", req.To, req.From)
	case to.Sub(from) > st.cfg.MaxWindow:
		return replay.Config{}, badReplayStart("a window of %v; at most %v", to.Sub(from), st.cfg.MaxWindow)
	case from.After(now):
		return replay.Config{}, badReplayStart("from %s is in the future", req.From)
	case req.Speed == nil:
		return replay.Config{}, badReplayStart("speed: missing (1 = original timing, N times faster, 0 = as fast as possible)")
	case !(*req.Speed >= 0 && *req.Speed <= wire.MaxReplaySpeed):
		return replay.Config{}, badReplayStart("speed %v outside 0..%v", *req.Speed, wire.MaxReplaySpeed)
	case len(req.Instruments) > maxReplayInstruments:
		return replay.Config{}, badReplayStart("%d instruments; at most %d (or none: all)", len(req.Instruments), maxReplayInstruments)
	}
	for _, id := range req.Instruments {
		if err := wire.CheckInstrumentID(id); err != nil {
			return replay.Config{}, badReplayStart("instrument %q: %v", id, err)
		}
		if !cred.ent.Instrument(id) {
			return replay.Config{}, &apiError{status: http.StatusForbidden, code: "not_entitled", msg: "not entitled to " + id}
		}
	}
	if req.Session != "" {
		if err := bus.ValidSessionID(req.Session); err != nil {
			return replay.Config{}, badReplayStart("session: %v", err)
		}
	}
	cfg := replay.Config{Session: req.Session, Window: replay.Window{From: from, To: to, Instruments: req.Instruments}, Speed: *req.Speed}
	if cred.subject != "" {
		cfg.Controllers = []string{cred.subject}
	}
	return cfg, nil
}

// startReplay starts a session with cfg, owned by the server until its TTL or shutdown.
func (s *Server) startReplay(ctx context.Context, st *replayStarter, cfg replay.Config) (string, *apiError) {
	if cfg.Session != "" {
		// Another replayer (tickctl, another feed) may serve the id: it answers a status query.
		qctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		_, err := st.run.RequestReplayControl(qctx, cfg.Session, &pb.ReplayControl{})
		cancel()
		if err == nil {
			return "", &apiError{status: http.StatusConflict, code: "session_exists", msg: "a replay session " + cfg.Session + " is running"}
		}
	}
	r, err := replay.New(cfg, st.run, st.run, s.log)
	if err != nil {
		return "", badReplayStart("%v", err)
	}
	id := r.Session()
	st.mu.Lock()
	if _, dup := st.running[id]; dup {
		st.mu.Unlock()
		return "", &apiError{status: http.StatusConflict, code: "session_exists", msg: "a replay session " + id + " is running"}
	}
	if len(st.running) >= st.cfg.Max {
		st.mu.Unlock()
		return "", &apiError{status: http.StatusTooManyRequests, code: "too_many_sessions", retryAfter: time.Minute,
			msg: fmt.Sprintf("this feed runs %d replay sessions, its most; one ends within %v", st.cfg.Max, st.cfg.TTL)}
	}
	st.running[id] = struct{}{}
	st.mu.Unlock()
	s.log.Info("replay session started", "session", id, "from", cfg.Window.From, "to", cfg.Window.To, "speed", cfg.Speed,
		"instruments", len(cfg.Window.Instruments), "controllers", cfg.Controllers, "ttl", st.cfg.TTL)
	ended := make(chan error, 1)
	s.launch(func() {
		defer func() {
			st.mu.Lock()
			delete(st.running, id)
			st.mu.Unlock()
		}()
		rctx, cancel := context.WithTimeout(context.Background(), st.cfg.TTL)
		defer cancel()
		s.launch(func() { // the server's shutdown ends the session too; this ends with it
			select {
			case <-s.quit:
				cancel()
			case <-rctx.Done():
			}
		})
		err := r.Run(rctx)
		ended <- err
		level := slog.LevelInfo
		if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			level = slog.LevelWarn
		}
		s.log.Log(context.Background(), level, "replay session ended", "session", id, "err", err)
	})
	// Answer once the session answers (its first status is out, its control served), so that a
	// client opening it at once finds it; a replayer that stops first says why.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(5 * time.Second)
	for r.Status() == nil {
		select {
		case err := <-ended:
			if errors.Is(err, replay.ErrSessionExists) {
				return "", &apiError{status: http.StatusConflict, code: "session_exists", msg: "a replay session " + id + " is running"}
			}
			return "", &apiError{status: http.StatusServiceUnavailable, code: "not_started", msg: fmt.Sprintf("the replay session did not start: %v", err)}
		case <-tick.C:
		case <-deadline:
			return id, nil // slow to start: the client's page retries until it answers
		case <-ctx.Done():
			return id, nil
		}
	}
	return id, nil
}
