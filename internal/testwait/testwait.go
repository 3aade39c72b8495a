// Package testwait is the one way tests wait for something to happen: poll a condition until a
// deadline, and fail naming what did not happen. Tests never sleep to assert.
package testwait

import (
	"testing"
	"time"
)

// Poll is how often For looks at the condition: often enough for tests that wait for events,
// seldom enough not to load what it polls (TestDiskFullPipelineRecovers, polling /readyz,
// failed one run in two at 2 ms and passed at 20 ms).
const Poll = 20 * time.Millisecond

// For waits until cond holds, looking every Poll, and fails t ("timed out waiting for what")
// after d.
func For(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Until(d, cond) {
		t.Fatalf("timed out after %v waiting for %s", d, what)
	}
}

// Until waits until cond holds, looking every Poll, for at most d, and reports whether it held:
// for a caller whose failure says more than For's (a goroutine dump, the state it saw).
func Until(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return cond()
		}
		time.Sleep(Poll)
	}
	return true
}
