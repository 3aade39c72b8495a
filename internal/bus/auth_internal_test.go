package bus

import (
	"testing"
	"time"
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
