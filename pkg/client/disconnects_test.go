package client

import (
	"encoding/json"
	"os"
	"strconv"
	"testing"
)

// TestDisconnectsHandshakeStatuses: the client retries a refused handshake exactly when
// proto/testdata/disconnects.json (shared with the TypeScript client and docs/PROTOCOL.md
// §13.1) says to back off. Close codes are checked against the same table in pkg/wire.
func TestDisconnectsHandshakeStatuses(t *testing.T) {
	b, err := os.ReadFile("../../proto/testdata/disconnects.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		HandshakeStatuses []struct {
			Status int    `json:"status"`
			Action string `json:"action"`
		} `json:"handshake_statuses"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.HandshakeStatuses) == 0 {
		t.Fatal("no handshake_statuses in disconnects.json")
	}
	for _, s := range d.HandshakeStatuses {
		t.Run(strconv.Itoa(s.Status), func(t *testing.T) {
			want := map[string]bool{"stop": false, "backoff": true}
			w, ok := want[s.Action]
			if !ok {
				t.Fatalf("unknown action %q for a handshake status", s.Action)
			}
			if got := (&HandshakeError{StatusCode: s.Status}).retryable(); got != w {
				t.Errorf("HTTP %d: retryable = %v; the table says %s", s.Status, got, s.Action)
			}
		})
	}
}
