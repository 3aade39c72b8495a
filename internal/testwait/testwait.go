// Package testwait is the one way tests wait for something to happen: poll a condition until a
// deadline, and fail naming what did not happen. Tests never sleep to assert.
package testwait

import (
	"testing"
	"time"
)

// Poll is how often For looks at the condition.
const Poll = 2 * time.Millisecond

// For waits until cond holds, looking every Poll, and fails t ("timed out waiting for what")
// after d.
func For(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(Poll)
	}
}
