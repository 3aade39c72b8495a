package testwait

import (
	"strings"
	"testing"
	"time"
)

// fakeT records a failure instead of ending the test.
type fakeT struct {
	testing.TB
	failed string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.failed = format
	panic(f) // as FailNow ends the goroutine
}

func TestFor(t *testing.T) {
	n := 0
	For(t, time.Second, "the third look", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Fatalf("looked %d times", n)
	}
	ft := &fakeT{TB: t}
	func() {
		defer func() { _ = recover() }()
		For(ft, 10*time.Millisecond, "never", func() bool { return false })
	}()
	if !strings.Contains(ft.failed, "timed out") {
		t.Fatalf("a condition that never holds did not fail: %q", ft.failed)
	}
}

func TestUntil(t *testing.T) {
	n := 0
	if !Until(time.Second, func() bool { n++; return n == 3 }) || n != 3 {
		t.Fatalf("looked %d times", n)
	}
	if Until(10*time.Millisecond, func() bool { return false }) {
		t.Fatal("a condition that never holds held")
	}
}
