package replay

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/replay/replaytest"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// The replay loop's timing (pacing, pause, resume) is timer logic: these tests run it in a
// synctest bubble against an in-memory Source and Publisher, where time is fake and advances only
// when every goroutine of the bubble is blocked. What they measure does not depend on how busy the
// machine is: each event is published at its due time exactly (or up to paceGranularity early),
// and a paused session publishes nothing however long it stays paused. The tests over NATS
// (replayer_test.go) check the same sessions end to end without measuring time.

// memSource is a Source over events in memory, stored in ingest-time order.
type memSource []*pb.Event

func (s memSource) Scan(ctx context.Context, start time.Time, instruments []string, fn func(*pb.Event) error) error {
	for _, ev := range s {
		if ev.IngestTimeNs < start.UnixNano() || (len(instruments) > 0 && !slices.Contains(instruments, ev.Instrument)) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(ev); err != nil {
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
	}
	return nil
}

// memBus is a Publisher in memory: it records each event with the (bubble's) time it was
// published, and the statuses; control requests call the replayer's handler directly.
type memBus struct {
	mu       sync.Mutex
	handle   func(*pb.ReplayControl) *pb.ReplayStatus
	events   []*pb.Event
	at       []time.Time
	statuses []*pb.ReplayStatus
	stAt     []time.Time
	finished chan struct{} // closed at the first FINISHED status
}

func (m *memBus) PublishReplayEvent(_ string, ev *pb.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, ev)
	m.at = append(m.at, time.Now())
	return nil
}

func (m *memBus) PublishReplayStatus(_ string, st *pb.ReplayStatus) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.statuses = append(m.statuses, st)
	m.stAt = append(m.stAt, time.Now())
	if st.State == pb.ReplayState_REPLAY_STATE_FINISHED {
		select {
		case <-m.finished:
		default:
			close(m.finished)
		}
	}
	return nil
}

func (m *memBus) FlushReplay(context.Context) error { return nil }

func (m *memBus) ServeReplayControl(_ string, h func(*pb.ReplayControl) *pb.ReplayStatus) (func(), error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.handle = h
	return func() { m.mu.Lock(); m.handle = nil; m.mu.Unlock() }, nil
}

func (m *memBus) RequestReplayControl(_ context.Context, _ string, c *pb.ReplayControl) (*pb.ReplayStatus, error) {
	m.mu.Lock()
	h := m.handle
	m.mu.Unlock()
	if h == nil {
		return nil, bus.ErrNoReplay
	}
	if st := h(c); st != nil {
		return st, nil
	}
	return nil, errors.New("memBus: no answer")
}

func (m *memBus) control(t *testing.T, c *pb.ReplayControl) *pb.ReplayStatus {
	t.Helper()
	st, err := m.RequestReplayControl(context.Background(), "", c)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (m *memBus) published() int { m.mu.Lock(); defer m.mu.Unlock(); return len(m.events) }

// runMem runs a Replayer for cfg over the generated market, in the calling bubble, until the test
// ends. The bubble's clock starts in 2000: it is moved past the generated market's window first,
// as a real replay's would be (a window reaching into the future ends with what is stored).
func runMem(t *testing.T, cfg Config) *memBus {
	t.Helper()
	evs := replaytest.Events(t, replaytest.Config{Instruments: 5, Events: 4000})
	time.Sleep(time.Until(replaytest.T0.Add(time.Hour)))
	m := &memBus{finished: make(chan struct{})}
	r, err := New(cfg, memSource(evs), m, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	synctest.Wait() // the session serves control requests
	return m
}

// TestReplayPacingExact: at 10x and at 1x, every event is published at its due time (anchored
// at the session's start), never later and at most paceGranularity early, and the session
// finishes exactly when the replay clock reaches the window's end.
func TestReplayPacingExact(t *testing.T) {
	for _, tc := range []struct {
		name  string
		win   Window
		speed float64
	}{
		{"10x", window(1000, 3000), 10},
		{"1x", window(2000, 2500), 1},
		{"0.5x", window(2000, 2200), 0.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				t0 := replaytest.T0.Add(time.Hour) // where runMem starts the session
				m := runMem(t, Config{Session: "pace", Window: tc.win, Speed: tc.speed})
				<-m.finished
				m.mu.Lock()
				defer m.mu.Unlock()
				if len(m.events) < 100 {
					t.Fatalf("%d events", len(m.events))
				}
				from := tc.win.From.UnixNano()
				for i, ev := range m.events {
					due := time.Duration(float64(EventTime(ev)-from) / tc.speed)
					due = max(due, 0) // snapshots from before the window: at once
					if got := m.at[i].Sub(t0); got > due || got < due-paceGranularity {
						t.Fatalf("event %d (venue +%v) published at +%v, due +%v", i, time.Duration(EventTime(ev)-from), got, due)
					}
				}
				length := time.Duration(float64(tc.win.To.Sub(tc.win.From)) / tc.speed)
				last := m.statuses[len(m.statuses)-1]
				if got := m.stAt[len(m.stAt)-1].Sub(t0); last.State != pb.ReplayState_REPLAY_STATE_FINISHED || got != length {
					t.Fatalf("finished (%v) at +%v, want +%v", last.State, got, length)
				}
			})
		})
	}
}

// TestReplayPauseExact: a paused session publishes nothing, however long it stays paused (its
// periodic statuses say PAUSED at the same count), and on resume it goes on from where it
// paused: the rest of the window takes its length at the session's speed from the resume.
func TestReplayPauseExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		win := window(1000, 2000)
		const speed = 2
		m := runMem(t, Config{Session: "pause", Window: win, Speed: speed, StatusInterval: time.Second})
		time.Sleep(100 * time.Millisecond) // fake time: 200 ms of the window at 2x
		st := m.control(t, &pb.ReplayControl{Action: &pb.ReplayControl_Pause{Pause: true}})
		if st.State != pb.ReplayState_REPLAY_STATE_PAUSED || st.Events == 0 {
			t.Fatalf("after pause: %v", st)
		}
		if n := m.published(); uint64(n) != st.Events {
			t.Fatalf("%d events published, the pause's status counts %d", n, st.Events)
		}
		pausedAt := time.Now()
		time.Sleep(10 * time.Second) // fake time: every goroutine of the bubble had its chance
		if n := m.published(); uint64(n) != st.Events {
			t.Fatalf("%d events while paused", uint64(n)-st.Events)
		}
		m.mu.Lock()
		ticks := 0
		for i, s := range m.statuses {
			if m.stAt[i].After(pausedAt) {
				ticks++
				if s.State != pb.ReplayState_REPLAY_STATE_PAUSED || s.Events != st.Events || s.ClockNs > st.ClockNs {
					m.mu.Unlock()
					t.Fatalf("status while paused: %v", s)
				}
			}
		}
		m.mu.Unlock()
		if ticks < 9 {
			t.Fatalf("%d statuses in 10 s paused, want one a second", ticks)
		}
		resumed := time.Now()
		if st := m.control(t, &pb.ReplayControl{Action: &pb.ReplayControl_Resume{Resume: true}}); st.State != pb.ReplayState_REPLAY_STATE_RUNNING {
			t.Fatalf("after resume: %v", st)
		}
		<-m.finished
		// Paused 100 ms into the window's 500 ms at 2x: 400 ms to go from the resume.
		if took := time.Since(resumed); took != 400*time.Millisecond {
			t.Fatalf("finished %v after the resume, want 400ms", took)
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		for i := st.Events; i < uint64(len(m.events)); i++ {
			if m.at[i].Before(resumed) {
				t.Fatalf("event %d published at %v, before the resume at %v", i, m.at[i], resumed)
			}
		}
	})
}
