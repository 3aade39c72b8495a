package bus

import (
	"testing"
	"time"

	"github.com/tickwire/tickwire/internal/lease"
)

// The users that may answer requests (feed, tickctl) consume the event stream too, and
// nats-server remembers the reply subject of every message delivered to them for the response
// expiry, JetStream deliveries included: at its default of 2 minutes that was 2.4 M entries
// for a feed at 20 k events/s, memory growing with rate and run time. Both forms of the
// permission (embedded server, cluster configuration) keep it short.
func TestResponsePermissionShort(t *testing.T) {
	if ResponseExpiry > 10*time.Second {
		t.Fatalf("ResponseExpiry %s: the server would remember 10+ s of deliveries per consuming user", ResponseExpiry)
	}
	for _, r := range Roles() {
		p, err := RolePermissions(r, string(r), DefaultStreamName)
		if err != nil {
			t.Fatal(err)
		}
		if !p.Responses {
			continue
		}
		sp := p.server()
		if sp.Response == nil || sp.Response.Expires != ResponseExpiry || sp.Response.MaxMsgs != 1 {
			t.Fatalf("role %s: embedded response permission %+v, want 1 reply within %s", r, sp.Response, ResponseExpiry)
		}
	}
}

// The de-duplication window is kept in nats-server's memory, one id per stored message, so it
// is bounded; it still spans more than a lease takeover, so that a fenced holder's late
// publish of a position the new holder has stored is dropped.
func TestDuplicatesWindow(t *testing.T) {
	if DefaultDuplicates > 30*time.Second {
		t.Fatalf("DefaultDuplicates %s: the server would hold more than 30 s of message ids (about 150 bytes each)", DefaultDuplicates)
	}
	if takeover := lease.DefaultTTL * 7 / 6; DefaultDuplicates <= 2*takeover {
		t.Fatalf("DefaultDuplicates %s: not more than twice a lease takeover (%s)", DefaultDuplicates, takeover)
	}
}
