package source_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/tickwire/tickwire/internal/source"
)

// UnknownChannel counts every frame under one reason and names the channel in the log: at
// warn level once per name for the first 16 names, at debug level after that.
func TestUnknownChannelBounded(t *testing.T) {
	var logs bytes.Buffer
	c := source.NewCore("v", "v", nil, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
	f := &source.Frame{Conn: "1", N: 1}
	for i := range 100 {
		c.UnknownChannel(f, fmt.Sprintf("ch%d", i%40))
	}
	c.UnknownChannel(f, strings.Repeat("x", 1000))
	st := c.Stats().Snapshot()
	if st.Dropped[source.ReasonUnknownChannel] != 101 || len(st.Dropped) != 1 || len(st.Rejects) != 0 {
		t.Errorf("%s", st)
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 16 {
		t.Errorf("%d warn lines, want 16:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), "channel=ch16 ") || !strings.Contains(logs.String(), "channel=ch15 ") {
		t.Errorf("warned names:\n%s", logs.String())
	}
}
