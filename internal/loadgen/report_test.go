package loadgen

import (
	"strings"
	"testing"
)

// The note under a publisher-limited maximum names the publisher that fell short: JetStream
// for Tickwire, Centrifugo's HTTP API for Centrifugo (it said JetStream for both).
func TestWriteTablePublisherLimitedNote(t *testing.T) {
	for _, tc := range []struct {
		server, want, notWant string
	}{
		{TargetTickwire, "the publisher (NATS JetStream on this machine) could not go faster: the feed was not saturated", "HTTP API"},
		{TargetCentrifugo, "the publisher (Centrifugo's HTTP API) could not go faster: the server was not saturated", "JetStream"},
	} {
		t.Run(tc.server, func(t *testing.T) {
			r := &Report{Server: tc.server, Config: Config{Mode: ModeStep}, Steps: []StepReport{{PublisherLimited: true, OK: true}}}
			r.Best = &r.Steps[0]
			var b strings.Builder
			r.WriteTable(&b)
			out := b.String()
			if !strings.Contains(out, tc.want) {
				t.Errorf("table lacks %q:\n%s", tc.want, out)
			}
			if strings.Contains(out, "NOTE") && strings.Contains(out[strings.Index(out, "NOTE"):], tc.notWant) {
				t.Errorf("the note names %q for %s:\n%s", tc.notWant, tc.server, out)
			}
		})
	}
}
