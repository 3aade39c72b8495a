package loadgen

import (
	"strings"
	"testing"
	"time"
)

func TestJudge(t *testing.T) {
	th := thresholds{MinRatio: 0.95, MaxP99: 50 * time.Millisecond}
	base := window{Seconds: 2, TargetRate: 1000, Published: 2000, Expected: 10000, Delivered: 10000, P99: time.Millisecond}
	for _, tc := range []struct {
		name       string
		mod        func(*window)
		ok, pubLim bool
		verdict    string
	}{
		{"sustained", func(*window) {}, true, false, "ok"},
		{"slightly behind is fine", func(w *window) { w.Delivered = 9600 }, true, false, "ok"},
		{"behind", func(w *window) { w.Delivered = 9000 }, false, false, "behind"},
		{"p99", func(w *window) { w.P99 = 80 * time.Millisecond }, false, false, "p99"},
		{"gaps", func(w *window) { w.Gaps = 1 }, false, false, "gaps"},
		{"conflated", func(w *window) { w.Conflated = 3 }, false, false, "conflated"},
		{"closed", func(w *window) { w.Closes = 1 }, false, false, "closed"},
		{"publisher limited", func(w *window) { w.Published = 1500 }, true, true, "publisher reached only 750"},
		{"nothing expected", func(w *window) { w.Expected, w.Delivered = 0, 0 }, true, false, "ok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := base
			tc.mod(&w)
			ok, pl, v := judge(w, th)
			if ok != tc.ok || pl != tc.pubLim || !strings.Contains(v, tc.verdict) {
				t.Fatalf("judge = %v %v %q, want %v %v ~%q", ok, pl, v, tc.ok, tc.pubLim, tc.verdict)
			}
		})
	}
}

func TestStepperRaisesUntilFailure(t *testing.T) {
	s := &stepper{rate: 1000, factor: 1.5, max: 5000}
	var rates []float64
	for {
		r, ok := s.next(true, false)
		if !ok {
			break
		}
		rates = append(rates, r)
	}
	if want := []float64{1500, 2250, 3375}; len(rates) != len(want) || rates[2] != want[2] {
		t.Fatalf("rates %v, want %v (5062 is above the cap)", rates, want)
	}
	s = &stepper{rate: 1000, factor: 2, max: 1e9}
	if _, ok := s.next(false, false); ok {
		t.Fatal("continued after a step that was not sustained")
	}
	if _, ok := s.next(true, true); ok {
		t.Fatal("continued after the publisher could not reach its rate")
	}
}

func TestLayoutGivesEveryInstrumentSSubscribers(t *testing.T) {
	for _, c := range []Config{
		{Clients: 1000, Instruments: 100, Subscribers: 10},
		{Clients: 5000, Instruments: 100, Subscribers: 50},
		{Clients: 30, Instruments: 20, Subscribers: 3},
		{Clients: 1, Instruments: 1000, Subscribers: 1},
	} {
		k := c.PerClient()
		subs := make([]int, c.Instruments)
		for i := range c.Clients {
			seen := map[int]bool{}
			for _, x := range layout(i, k, c.Instruments) {
				if seen[x] {
					t.Fatalf("%+v: client %d holds instrument %d twice", c, i, x)
				}
				seen[x] = true
				subs[x]++
			}
		}
		for x, n := range subs {
			if n != c.Subscribers {
				t.Fatalf("%+v: instrument %d has %d subscribers", c, x, n)
			}
		}
	}
}

func TestPresetsValidate(t *testing.T) {
	for _, name := range PresetNames() {
		c, err := Config{Scenario: name, Spawn: true}.Merge()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := (Config{Scenario: "nope"}).Merge(); err == nil {
		t.Error("unknown scenario accepted")
	}
	c, _ := Config{FeedURL: "ws://10.0.0.1:8080/ws", NATSURL: "nats://127.0.0.1:4222"}.Merge()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := externalTarget(&c); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("non-loopback feed URL: %v", err)
	}
	c, _ = Config{Spawn: true, Clients: 7, Instruments: 10, Subscribers: 1}.Merge()
	if err := c.Validate(); err == nil {
		t.Error("uneven layout accepted")
	}
}
