package ingest

import (
	"context"
	"strconv"
	"testing"
	"time"

	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

type askedSource struct{ asked []string }

func (s *askedSource) Name() string { return "asked" }
func (s *askedSource) Run(context.Context, func(*tickwirev1.Event) error) error {
	return nil
}
func (s *askedSource) RequestSnapshot(instrument string) { s.asked = append(s.asked, instrument) }

type plainSource struct{}

func (plainSource) Name() string                                             { return "plain" }
func (plainSource) Run(context.Context, func(*tickwirev1.Event) error) error { return nil }

func TestSnapshotRequestsLimited(t *testing.T) {
	if NewSnapshotRequests(plainSource{}, 0, nil) != nil {
		t.Fatal("a source without RequestSnapshot got a handler")
	}
	src := &askedSource{}
	r := NewSnapshotRequests(src, time.Second, nil)
	now := time.Unix(1_700_000_000, 0)
	r.now = func() time.Time { return now }
	for _, step := range []struct {
		after time.Duration
		id    string
	}{
		{0, "x:A"}, {0, "x:A"}, {0, "x:B"}, // three replicas ask at once: A once, B once
		{999 * time.Millisecond, "x:A"}, // within the interval: limited
		{time.Millisecond, "x:A"},       // at the interval: asked again
	} {
		now = now.Add(step.after)
		r.Handle(step.id)
	}
	if got, want := src.asked, []string{"x:A", "x:B", "x:A"}; len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("asked the source %v, want %v", got, want)
	}
}

// At its bound of tracked instruments, a new id is limited until the tracked ones age past the
// interval; then it is asked.
func TestSnapshotRequestsBound(t *testing.T) {
	src := &askedSource{}
	r := NewSnapshotRequests(src, time.Second, nil)
	now := time.Unix(1_700_000_000, 0)
	r.now = func() time.Time { return now }
	for i := range maxTracked {
		r.Handle("x:" + strconv.Itoa(i))
	}
	if len(src.asked) != maxTracked {
		t.Fatalf("asked %d of %d below the bound", len(src.asked), maxTracked)
	}
	r.Handle("x:past")
	if len(src.asked) != maxTracked {
		t.Fatal("a request past the bound was asked")
	}
	now = now.Add(time.Second)
	r.Handle("x:past")
	if len(src.asked) != maxTracked+1 || src.asked[maxTracked] != "x:past" || len(r.last) != 1 {
		t.Fatalf("after the tracked ids aged: asked %d, tracking %d", len(src.asked), len(r.last))
	}
}
