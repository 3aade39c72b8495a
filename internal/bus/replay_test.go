package bus_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/bus/bustest"
	"github.com/tickwire/tickwire/internal/testwait"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

func TestValidSessionID(t *testing.T) {
	for _, id := range []string{"a", "0", "r-1", "abc-def-123", strings.Repeat("a", 64), "1-"} {
		if err := bus.ValidSessionID(id); err != nil {
			t.Errorf("%q: %v", id, err)
		}
	}
	for _, id := range []string{"", "-a", "A", "a_b", "a.b", "a*", "a>", "a b", "é", strings.Repeat("a", 65)} {
		if err := bus.ValidSessionID(id); !errors.Is(err, bus.ErrSessionID) {
			t.Errorf("%q: %v, want ErrSessionID", id, err)
		}
	}
}

func TestReplaySubjects(t *testing.T) {
	subj, err := bus.ReplayEventSubject("r1", "kraken:XBT/USD")
	if err != nil || subj != "tickwire.replay.r1.events.kraken.XBT%2FUSD" {
		t.Fatalf("%q %v", subj, err)
	}
	if id, err := bus.ReplayInstrumentFromSubject("r1", subj); err != nil || id != "kraken:XBT/USD" {
		t.Fatalf("back: %q %v", id, err)
	}
	if _, err := bus.ReplayInstrumentFromSubject("r2", subj); !errors.Is(err, bus.ErrSubject) {
		t.Fatalf("other session: %v", err)
	}
	if _, err := bus.ReplayEventSubject("R", "x:A"); !errors.Is(err, bus.ErrSessionID) {
		t.Fatal(err)
	}
	if _, err := bus.ReplayEventSubject("r", "nocolon"); !errors.Is(err, bus.ErrInstrument) {
		t.Fatal(err)
	}
	if s := bus.ReplayStatusSubject("r1"); s != "tickwire.replay.r1.status" {
		t.Fatal(s)
	}
	if s := bus.ReplayControlSubject("r1"); s != "tickwire.replay.r1.control" {
		t.Fatal(s)
	}
}

// TestReplayPublishSubscribe: events and status arrive in publish order from one goroutine;
// another session sees nothing; nothing is stored in JetStream; stop waits and ends delivery.
func TestReplayPublishSubscribe(t *testing.T) {
	srv := bustest.Start(t)
	pubBus := bustest.Connect(t, srv)
	subBus := bustest.Connect(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var mu sync.Mutex
	var got, late []string
	stopped := false // set once stop returned: a handler called after it is a failure
	record := func(s string) {
		mu.Lock()
		if stopped {
			late = append(late, s)
		}
		got = append(got, s)
		mu.Unlock()
	}
	stop, err := subBus.SubscribeReplay("s1",
		func(ev *pb.Event) { record(ev.GetInstrument() + "/" + itoa(ev.GetSeq())) },
		func(st *pb.ReplayStatus) { record("status/" + itoa(st.GetEvents())) })
	if err != nil {
		t.Fatal(err)
	}
	otherCalls := 0
	stopOther, err := subBus.SubscribeReplay("s2", func(*pb.Event) { otherCalls++ }, func(*pb.ReplayStatus) { otherCalls++ })
	if err != nil {
		t.Fatal(err)
	}
	defer stopOther()
	if err := subBus.FlushReplay(ctx); err != nil { // the subscriptions are at the server
		t.Fatal(err)
	}

	var want []string
	for i := uint64(1); i <= 200; i++ {
		inst := []string{"x:A", "kraken:XBT/USD"}[i%2]
		if err := pubBus.PublishReplayEvent("s1", &pb.Event{Instrument: inst, Epoch: 7, Seq: i}); err != nil {
			t.Fatal(err)
		}
		want = append(want, inst+"/"+itoa(i))
		if i%50 == 0 {
			if err := pubBus.PublishReplayStatus("s1", &pb.ReplayStatus{Session: "s1", Events: i}); err != nil {
				t.Fatal(err)
			}
			want = append(want, "status/"+itoa(i))
		}
	}
	if err := pubBus.FlushReplay(ctx); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 5*time.Second, "the condition", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= len(want) })
	stop()
	stop() // idempotent
	mu.Lock()
	stopped = true
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	mu.Unlock()

	// Nothing after stop.
	if err := pubBus.PublishReplayEvent("s1", &pb.Event{Instrument: "x:A", Epoch: 7, Seq: 999}); err != nil {
		t.Fatal(err)
	}
	// Nothing after stop: stop waited for the delivering goroutine, and the event published
	// after it has reached the subscriber's connection once both round trips are done (the
	// server writes it to subBus before the pong of subBus's flush). A handler call at any time
	// after stop is recorded in late (no sleep to wait for one).
	if err := pubBus.FlushReplay(ctx); err != nil {
		t.Fatal(err)
	}
	if err := subBus.FlushReplay(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if len(late) > 0 {
			t.Errorf("delivered after stop: %v", late)
		}
	})
	mu.Lock()
	if len(late) > 0 {
		t.Fatalf("delivered after stop: %v", late)
	}
	mu.Unlock()
	if otherCalls != 0 {
		t.Fatalf("session s2 saw %d messages of s1", otherCalls)
	}
	st, err := pubBus.StreamState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Msgs != 0 {
		t.Fatalf("replay stored %d messages in JetStream", st.Msgs)
	}
}

// TestReplayStopWaitsForCallback: stop returns only after a running callback has returned.
func TestReplayStopWaitsForCallback(t *testing.T) {
	srv := bustest.Start(t)
	b := bustest.Connect(t, srv)
	entered := make(chan struct{})
	release := make(chan struct{})
	var returned sync.WaitGroup
	returned.Add(1)
	stop, err := b.SubscribeReplay("s", func(*pb.Event) {
		close(entered)
		<-release
		returned.Done()
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = b.FlushReplay(ctx)
	_ = b.PublishReplayEvent("s", &pb.Event{Instrument: "x:A", Epoch: 1, Seq: 1})
	<-entered
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("stop returned while the callback runs")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("stop did not return")
	}
	returned.Wait()
}

func TestReplayControl(t *testing.T) {
	srv := bustest.Start(t)
	replayer, replayerReg, release := heldBus(t, srv, bustest.TestUser, bus.Config{})
	release()
	client := bustest.Connect(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// A subscriber of the session is not a responder: without a replayer the request fails at
	// once rather than timing out.
	stopSub, err := client.SubscribeReplay("nobody", func(*pb.Event) {}, func(*pb.ReplayStatus) {})
	if err != nil {
		t.Fatal(err)
	}
	defer stopSub()
	_ = client.FlushReplay(ctx)
	if _, err := client.RequestReplayControl(ctx, "nobody", &pb.ReplayControl{}); !errors.Is(err, bus.ErrNoReplay) {
		t.Fatalf("no replayer: %v", err)
	}
	if _, err := client.RequestReplayControl(ctx, "Bad", &pb.ReplayControl{}); !errors.Is(err, bus.ErrSessionID) {
		t.Fatalf("bad id: %v", err)
	}

	state := &pb.ReplayStatus{Session: "s", State: pb.ReplayState_REPLAY_STATE_RUNNING, Speed: 1}
	stop, err := replayer.ServeReplayControl("s", func(c *pb.ReplayControl) *pb.ReplayStatus {
		switch a := c.GetAction().(type) {
		case *pb.ReplayControl_Pause:
			state.State = pb.ReplayState_REPLAY_STATE_PAUSED
		case *pb.ReplayControl_Resume:
			state.State = pb.ReplayState_REPLAY_STATE_RUNNING
		case *pb.ReplayControl_Speed:
			if a.Speed > 100 {
				return nil // refused
			}
			state.Speed = a.Speed
		case *pb.ReplayControl_SeekTimeNs:
			state.ClockNs, state.Generation = a.SeekTimeNs, state.Generation+1
		}
		return proto.CloneOf(state)
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = replayer.FlushReplay(ctx)

	st, err := client.RequestReplayControl(ctx, "s", &pb.ReplayControl{Action: &pb.ReplayControl_Pause{Pause: true}})
	if err != nil || st.GetState() != pb.ReplayState_REPLAY_STATE_PAUSED {
		t.Fatalf("pause: %v %v", st, err)
	}
	st, err = client.RequestReplayControl(ctx, "s", &pb.ReplayControl{Action: &pb.ReplayControl_SeekTimeNs{SeekTimeNs: 42}})
	if err != nil || st.GetClockNs() != 42 || st.GetGeneration() != 1 {
		t.Fatalf("seek: %v %v", st, err)
	}
	st, err = client.RequestReplayControl(ctx, "s", &pb.ReplayControl{})
	if err != nil || st.GetState() != pb.ReplayState_REPLAY_STATE_PAUSED || st.GetSession() != "s" {
		t.Fatalf("status query: %v %v", st, err)
	}
	if _, err := client.RequestReplayControl(ctx, "s", &pb.ReplayControl{Action: &pb.ReplayControl_Speed{Speed: 1000}}); !errors.Is(err, bus.ErrReplayControl) {
		t.Fatalf("refused: %v", err)
	}
	// An undecodable request gets an error reply, not a hang.
	replies, err := client.Conn().SubscribeSync("tickwire.replay.s.reply.garbage")
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Conn().PublishRequest(bus.ReplayControlSubject("s"), replies.Subject, []byte{0xff, 0xff}); err != nil {
		t.Fatal(err)
	}
	msg, err := replies.NextMsgWithContext(ctx)
	if err != nil || msg.Header.Get("Tickwire-Error") == "" {
		t.Fatalf("garbage: %v %v", msg, err)
	}
	// A request whose reply subject is not one of the session's (an inbox, as versions before
	// the session's reply subjects asked) is not answered, and counted.
	for _, reply := range []string{"_INBOX.x", "tickwire.replay.other.reply.x", "tickwire.replay.s.reply.", "tickwire.replay.s.reply.a.b", "tickwire.replay.s.status"} {
		if err := client.Conn().PublishRequest(bus.ReplayControlSubject("s"), reply, nil); err != nil {
			t.Fatal(err)
		}
	}
	testwait.For(t, 5*time.Second, "5 unanswerable requests counted", func() bool {
		return counterOf(t, replayerReg, "tickwire_bus_replay_control_errors_total") == 5
	})
	stop()
	stop()
	_ = replayer.FlushReplay(ctx)
	if _, err := client.RequestReplayControl(ctx, "s", &pb.ReplayControl{}); !errors.Is(err, bus.ErrNoReplay) {
		t.Fatalf("after stop: %v", err)
	}
}

func itoa(u uint64) string { return strconv.FormatUint(u, 10) }
