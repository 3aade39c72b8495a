package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tickwire/tickwire/internal/bus/bustest"
	"github.com/tickwire/tickwire/internal/replay/replaytest"
)

// TestImportRejectedRowsExitStatus: a history file with an over-precise price on one line and a
// 5 MB field on another imports every other row, names both lines on stderr, and exits with
// exitRejected; a dry run says the same.
func TestImportRejectedRowsExitStatus(t *testing.T) {
	lines := replaytest.NDJSONLines(t, replaytest.Config{Instruments: 3, Events: 300})
	precise := replaytest.TradeLine(t, lines, 20)
	huge := replaytest.TradeLine(t, lines, 200)
	lines[precise] = replaytest.OverPrecise(lines[precise])
	lines[huge] = replaytest.HugeTradeID(lines[huge])
	file := filepath.Join(t.TempDir(), "bad.ndjson")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	dst := bustest.Start(t)
	b := bustest.Connect(t, dst)
	code, out, errOut := tickctl(t, "import", "--nats-url", dst.ClientURL(), "--file", file)
	if code != exitRejected {
		t.Errorf("exit %d; want %d (rows rejected)", code, exitRejected)
	}
	if !strings.Contains(out, "read 299, published 298, rejected 2") {
		t.Errorf("summary: %s", out)
	}
	for _, want := range []string{
		fmt.Sprintf("line %d: undecodable: ", precise+1),
		fmt.Sprintf("line %d: too large: ", huge+1),
		"2 rows rejected",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%.2000s", want, errOut)
		}
	}
	if len(errOut) > 4000 {
		t.Errorf("stderr is %d bytes: a rejected row must not be echoed whole", len(errOut))
	}
	if n := bustest.StoredEvents(t, b); n != 298 {
		t.Fatalf("stored %d; want the 298 good rows", n)
	}

	code, out, errOut = tickctl(t, "import", "--dry-run", "--file", file)
	if code != exitRejected || !strings.Contains(out, "rejected 2") || !strings.Contains(errOut, fmt.Sprintf("line %d: too large: ", huge+1)) {
		t.Errorf("dry run: exit %d\n%s%.2000s", code, out, errOut)
	}
}

// TestImportIntoFreshStore: import may be the first process on a store: it creates the stream
// (as the tickctl user, with its --stream-* limits) instead of failing with "stream not found".
func TestImportIntoFreshStore(t *testing.T) {
	lines := replaytest.NDJSONLines(t, replaytest.Config{Instruments: 2, Events: 50})
	file := filepath.Join(t.TempDir(), "good.ndjson")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := bustest.Start(t) // no stream
	if code, out, errOut := tickctl(t, "import", "--nats-url", dst.ClientURL(), "--file", file, "--stream-max-age", "2h"); code != exitOK {
		t.Fatalf("import into a fresh store: exit %d\n%s%s", code, out, errOut)
	}
	b := bustest.ConnectAs(t, dst, bustest.TestUser)
	ctx := context.Background()
	info, err := b.StreamInfo(ctx)
	if err != nil || info.MaxAge != 2*time.Hour {
		t.Fatalf("stream created by import: %+v %v, want max age 2h", info, err)
	}
	if n := bustest.StoredEvents(t, b); n != len(lines) {
		t.Fatalf("stored %d of %d", n, len(lines))
	}
}
