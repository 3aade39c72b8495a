package bus

import (
	"strings"
	"testing"
	"time"

	"github.com/tickwire/tickwire/internal/lease"
)

// No user has nats-server's response permission (allow_responses): the server checks the
// reply subject of every message it delivers to such a user against its permissions and caches
// the answer, JetStream deliveries included, whose reply subjects are all different: 5 % of
// the server's CPU for a feed consuming S1's events. Replay control replies travel on the
// session's subjects instead (replay.go). Both forms of the permissions are checked: the
// embedded server's and the cluster configuration.
func TestNoResponsePermissions(t *testing.T) {
	for _, r := range Roles() {
		p, err := RolePermissions(r, string(r), DefaultStreamName)
		if err != nil {
			t.Fatal(err)
		}
		if sp := p.server(); sp.Response != nil {
			t.Errorf("role %s: embedded response permission %+v", r, sp.Response)
		}
	}
	conf, err := AuthConfig(DefaultUsers(), DefaultStreamName)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(conf, "allow_responses") {
		t.Errorf("the cluster configuration gives a response permission:\n%s", conf)
	}
}

// The de-duplication window is kept in nats-server's memory, one id per stored message, so it
// is short; it still spans a lease takeover, so that a position a fenced holder sent just
// before the fence and the new holder stored again is dropped. (What the fenced holder had not
// sent, Fence drops: the window no longer has to cover a link that comes back late.)
func TestDuplicatesWindow(t *testing.T) {
	if DefaultDuplicates > 10*time.Second {
		t.Fatalf("DefaultDuplicates %s: the server would hold more than 10 s of message ids (about 150 bytes each)", DefaultDuplicates)
	}
	if takeover := lease.DefaultTTL * 7 / 6; DefaultDuplicates <= takeover {
		t.Fatalf("DefaultDuplicates %s: not more than a lease takeover (%s)", DefaultDuplicates, takeover)
	}
}
