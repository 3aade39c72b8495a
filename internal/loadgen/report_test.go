package loadgen

import (
	"strings"
	"testing"
)

// The note under a publisher-limited maximum names the publisher that fell short: JetStream
// for Tickwire, Centrifugo's HTTP API for Centrifugo (it said JetStream for both).
func TestWriteTablePublisherLimitedNote(t *testing.T) {
	for _, tc := range []struct {
		server, want string
	}{
		{TargetTickwire, "NOTE: the publisher (NATS JetStream on this machine) could not go faster: the feed was not saturated"},
		{TargetCentrifugo, "NOTE: the publisher (Centrifugo's HTTP API) could not go faster: the server was not saturated"},
	} {
		t.Run(tc.server, func(t *testing.T) {
			r := &Report{Server: tc.server, Config: Config{Mode: ModeStep}, Steps: []StepReport{{PublisherLimited: true, OK: true}}}
			r.Best = &r.Steps[0]
			var b strings.Builder
			r.WriteTable(&b)
			var notes []string
			for _, l := range strings.Split(b.String(), "\n") {
				if strings.HasPrefix(l, "NOTE: ") {
					notes = append(notes, l)
				}
			}
			if len(notes) != 1 || notes[0] != tc.want {
				t.Errorf("notes %q, want [%q]", notes, tc.want)
			}
		})
	}
}
