package feed

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/tickwire/tickwire/internal/auth"
	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/bus/bustest"
	"github.com/tickwire/tickwire/internal/testwait"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// TestReplayStart: POST /api/replays starts a session in the feed (run on its NATS connection as
// the feed user: its permissions must allow it), controlled by the token's subject; it is
// refused without the feature, without a token, without replay_control, for a bad request, an
// instrument the token does not cover, an id already running, past the feed's cap; a session
// ends after its time to live and frees its slot.
func TestReplayStart(t *testing.T) {
	k := newAuthKeys(t)
	nats := bustest.Start(t)
	pubBus := bustest.Connect(t, nats)
	e := &env{t: t, bus: bustest.ConnectAs(t, nats, string(bus.RoleFeed))}
	e.startFeed(k.authConfig(t, nil))
	e.srv.EnableReplay(e.bus)
	p := newPublisher(t, pubBus, 2)
	p.publish(3000) // 30 s of market time from 1_700_000_000 s
	e.waitApplied(p)

	control := k.token(t, "trader", time.Minute, auth.Grant{Instruments: []string{"*"}, Replay: true, ReplayControl: true})
	watch := k.token(t, "watcher", time.Minute, auth.Grant{Instruments: []string{"*"}, Replay: true})
	narrow := k.token(t, "narrow", time.Minute, auth.Grant{Instruments: []string{p.instruments()[0]}, Replay: true, ReplayControl: true})
	from := time.Unix(1_700_000_005, 0).UTC()
	window := func(extra map[string]any) map[string]any {
		m := map[string]any{"from": from.Format(time.RFC3339), "to": from.Add(20 * time.Second).Format(time.RFC3339), "speed": 0}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	post := func(token string, body any) (int, map[string]string, http.Header) {
		t.Helper()
		raw, _ := json.Marshal(body)
		if s, ok := body.(string); ok {
			raw = []byte(s)
		}
		req, _ := http.NewRequest(http.MethodPost, e.http+"/api/replays", bytes.NewReader(raw))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out := map[string]string{}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out, resp.Header
	}

	if code, out, _ := post(control, window(nil)); code != http.StatusNotImplemented || out["code"] != "not_enabled" {
		t.Fatalf("without --replay-start: %d %v, want 501 not_enabled", code, out)
	}
	e.srv.EnableReplayStart(BusReplayRunner(e.bus), ReplayStartConfig{Max: 1, TTL: 3 * time.Second, MaxWindow: time.Hour})

	for _, tc := range []struct {
		name  string
		token string
		body  any
		code  int
		err   string
	}{
		{"no token", "", window(nil), http.StatusUnauthorized, ""},
		{"no replay_control", watch, window(nil), http.StatusForbidden, "not_entitled"},
		{"not JSON", control, "{", http.StatusBadRequest, "bad_request"},
		{"unknown field", control, window(map[string]any{"sped": 1}), http.StatusBadRequest, "bad_request"},
		{"bad from", control, window(map[string]any{"from": "yesterday"}), http.StatusBadRequest, "bad_request"},
		{"to before from", control, window(map[string]any{"to": from.Add(-time.Second).Format(time.RFC3339)}), http.StatusBadRequest, "bad_request"},
		{"window at the limit plus one", control, window(map[string]any{"to": from.Add(time.Hour + time.Second).Format(time.RFC3339)}), http.StatusBadRequest, "bad_request"},
		{"from in the future", control, window(map[string]any{"from": time.Now().Add(time.Hour).UTC().Format(time.RFC3339), "to": time.Now().Add(90 * time.Minute).UTC().Format(time.RFC3339)}), http.StatusBadRequest, "bad_request"},
		{"no speed", control, map[string]any{"from": from.Format(time.RFC3339), "to": from.Add(time.Second).Format(time.RFC3339)}, http.StatusBadRequest, "bad_request"},
		{"speed past the limit", control, window(map[string]any{"speed": wire.MaxReplaySpeed + 1}), http.StatusBadRequest, "bad_request"},
		{"bad instrument", control, window(map[string]any{"instruments": []string{"NOPE"}}), http.StatusBadRequest, "bad_request"},
		{"bad session id", control, window(map[string]any{"session": "Bad Id"}), http.StatusBadRequest, "bad_request"},
		{"instrument not granted", narrow, window(map[string]any{"instruments": []string{p.instruments()[1]}}), http.StatusForbidden, "not_entitled"},
	} {
		if code, out, _ := post(tc.token, tc.body); code != tc.code || out["code"] != tc.err {
			t.Errorf("%s: %d %v, want %d %q", tc.name, code, out, tc.code, tc.err)
		}
	}

	// Started: the session runs in the feed, and its controller is the token's subject.
	code, out, _ := post(control, window(map[string]any{"session": "from-the-page", "speed": 1}))
	if code != http.StatusCreated || out["session"] != "from-the-page" || out["url"] != "/?replay=from-the-page" {
		t.Fatalf("start: %d %v", code, out)
	}
	c, err := dial(t, e.url+"?replay=from-the-page", wire.SubprotocolProto, bearerHeader(watch))
	if err != nil {
		t.Fatal(err)
	}
	go c.conn.ReadLoop()
	m := waitMsg(t, c, "the session's status", func(m *pb.ServerMessage) bool { return m.GetReplayStatus() != nil })
	if got := m.GetReplayStatus().Controllers; !slices.Equal(got, []string{"trader"}) {
		t.Fatalf("controllers %v, want [trader]", got)
	}
	if code, out, _ := post(control, window(map[string]any{"session": "from-the-page"})); code != http.StatusConflict || out["code"] != "session_exists" {
		t.Errorf("the same id again: %d %v, want 409 session_exists", code, out)
	}
	if code, out, h := post(control, window(nil)); code != http.StatusTooManyRequests || out["code"] != "too_many_sessions" || h.Get("Retry-After") == "" {
		t.Errorf("past the cap of 1: %d %v (Retry-After %q), want 429 too_many_sessions", code, out, h.Get("Retry-After"))
	}
	// Its time to live ends it and frees the slot.
	testwait.For(t, 15*time.Second, "the session to end and its slot to free", func() bool {
		code, _, _ := post(control, window(nil))
		return code == http.StatusCreated
	})
}
