package main

import (
	"strings"
	"testing"

	"github.com/tickwire/tickwire/internal/bus/bustest"
)

// tickctl connects as its role by default; only the admin role changes the stream's limits;
// without a password the server refuses it, and the error says so.
func TestStreamCommandRoles(t *testing.T) {
	s := bustest.Start(t)
	bustest.Connect(t, s) // creates the stream
	url := s.ClientURL()
	if out := mustRun(t, "stream", "--nats-url", url); !strings.Contains(out, "stream TICKWIRE_EVENTS: max age 24h0m0s") {
		t.Fatal(out)
	}
	if code, _, errOut := tickctl(t, "stream", "--nats-url", url, "--timeout", "500ms", "--max-age", "48h"); code != exitFail ||
		!strings.Contains(errOut, "needs the admin role") {
		t.Fatalf("tickctl role updated the stream: exit %d %s", code, errOut)
	}
	if out := mustRun(t, "stream", "--nats-url", url, "--nats-user", "admin", "--max-age", "48h"); !strings.Contains(out, "max age 48h0m0s") {
		t.Fatal(out)
	}
	code, _, errOut := run2(t, "stream", "--nats-url", url, "--nats-auth-dir", "", "--connect-timeout", "300ms")
	if code != exitFail || !strings.Contains(errOut, "tickctl: NATS at "+url+" refused user tickctl (no password)") || !strings.Contains(errOut, "Authorization Violation") {
		t.Fatalf("no password: exit %d %s", code, errOut)
	}
}

// run2 runs tickctl without adding the server's auth dir.
func run2(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut syncBuffer
	code := run(t.Context(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}
