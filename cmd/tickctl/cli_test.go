package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tickwire/tickwire/internal/bus/bustest"
	"github.com/tickwire/tickwire/internal/replay/replaytest"
	"github.com/tickwire/tickwire/internal/testwait"
)

// withAuth adds the --nats-auth-dir of the bustest server named by a --nats-url in args, so that
// tickctl connects as its role (every server refuses anonymous clients).
func withAuth(args []string) []string {
	out := append([]string(nil), args...)
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "--nats-url" {
			if dir := bustest.AuthDirOf(args[i+1]); dir != "" {
				out = append(out, "--nats-auth-dir", dir)
			}
		}
	}
	return out
}

// tickctl runs the CLI in-process and returns its exit code and output.
func tickctl(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	code := run(ctx, withAuth(args), &out, &errOut)
	return code, out.String(), errOut.String()
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := tickctl(t, args...)
	if code != exitOK {
		t.Fatalf("tickctl %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// TestExportImportExportCLI: export a synthetic window, import it into a fresh store, export
// again: the files are byte-identical, in both formats; a second import stores nothing.
func TestExportImportExportCLI(t *testing.T) {
	src := bustest.Start(t)
	replaytest.Fill(t, bustest.Connect(t, src), replaytest.Config{Instruments: 4, Events: 2000})
	dir := t.TempDir()
	from := replaytest.T0.Add(300 * time.Millisecond).Format(time.RFC3339Nano)
	to := replaytest.T0.Add(1700 * time.Millisecond).Format(time.RFC3339Nano)

	for _, format := range []string{"ndjson", "binary"} {
		dst := bustest.Start(t)
		bustest.Connect(t, dst) // creates the stream
		first := filepath.Join(dir, "first."+format)
		second := filepath.Join(dir, "second."+format)
		out := mustRun(t, "export", "--nats-url", src.ClientURL(), "--from", from, "--to", to, "--format", format, "--out", first)
		if !strings.Contains(out, "exported 1401 events") {
			t.Fatalf("export: %s", out)
		}
		out = mustRun(t, "import", "--nats-url", dst.ClientURL(), "--file", first)
		if !strings.Contains(out, "read 1401, published 1401, rejected 0, already stored 0") {
			t.Fatalf("import: %s", out)
		}
		mustRun(t, "export", "--nats-url", dst.ClientURL(), "--from", from, "--to", to, "--format", format, "--out", second)
		a, _ := os.ReadFile(first)
		b, _ := os.ReadFile(second)
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Fatalf("%s: export -> import -> export differs (%d and %d bytes)", format, len(a), len(b))
		}
		out = mustRun(t, "import", "--nats-url", dst.ClientURL(), "--file", first)
		if !strings.Contains(out, "published 0, rejected 0, already stored 1401") {
			t.Fatalf("second import: %s", out)
		}
		out = mustRun(t, "import", "--dry-run", "--file", first)
		if !strings.Contains(out, "valid (dry run) 1401") {
			t.Fatalf("dry run: %s", out)
		}
	}
}

func TestImportRefusesCorruptBinary(t *testing.T) {
	src := bustest.Start(t)
	replaytest.Fill(t, bustest.Connect(t, src), replaytest.Config{Instruments: 2, Events: 300})
	dir := t.TempDir()
	file := filepath.Join(dir, "w.twh")
	mustRun(t, "export", "--nats-url", src.ClientURL(), "--from", replaytest.T0.Format(time.RFC3339), "--to", "now", "--format", "binary", "--out", file)
	data, _ := os.ReadFile(file)
	data[len(data)/2] ^= 0xff
	_ = os.WriteFile(file, data, 0o644)
	dst := bustest.Start(t)
	b := bustest.Connect(t, dst)
	code, _, errOut := tickctl(t, "import", "--nats-url", dst.ClientURL(), "--file", file)
	if code != exitFail || !strings.Contains(errOut, "nothing imported") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	st, err := b.StreamState(context.Background())
	if err != nil || st.Msgs != 0 {
		t.Fatalf("stored %d after a refused import (%v)", st.Msgs, err)
	}
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--help"}, exitOK, "Commands:"},
		{[]string{"export", "--help"}, exitOK, "Examples:"},
		{[]string{"import", "--help"}, exitOK, "Examples:"},
		{[]string{"export", "--from", "yesterday", "--out", "x"}, exitConfig, "want RFC3339"},
		{[]string{"export", "--from", "-1m", "--to", "-2m", "--out", "x"}, exitConfig, "before --from"},
		{[]string{"export", "--from", "-1m", "--out", "x", "--format", "csv"}, exitConfig, `must be one of "ndjson","binary"`},
		{[]string{"bogus"}, exitConfig, "unexpected argument"},
		{[]string{"export", "--from", "-1m", "--out", "x", "--nats-url", "nats://127.0.0.1:1", "--connect-timeout", "100ms"}, exitFail, "cannot reach NATS"},
	} {
		code, out, errOut := tickctl(t, tc.args...)
		if code != tc.code || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("tickctl %v: exit %d, output:\n%s%s\nwant exit %d and %q", tc.args, code, out, errOut, tc.code, tc.want)
		}
	}
}

func TestParseTimeArg(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"now":                         now,
		"-15m":                        now.Add(-15 * time.Minute),
		"+1h30m":                      now.Add(90 * time.Minute),
		"2025-03-14T15:09:26Z":        time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC),
		"2025-03-14T16:09:26.5+01:00": time.Date(2025, 3, 14, 15, 9, 26, 5e8, time.UTC),
	} {
		ta, err := parseTimeArg(in)
		if err != nil || !ta.Resolve(now).Equal(want) {
			t.Errorf("%q: %v %v, want %v", in, ta.Resolve(now), err, want)
		}
	}
	for _, in := range []string{"", "15m", "yesterday", "-x", "2025-03-14"} {
		if _, err := parseTimeArg(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestReplayCLI runs "tickctl replay" and steers it with "tickctl replay-control".
func TestReplayCLI(t *testing.T) {
	srv := bustest.Start(t)
	replaytest.Fill(t, bustest.Connect(t, srv), replaytest.Config{Instruments: 3, Events: 3000})
	url := srv.ClientURL()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, withAuth([]string{"replay", "--nats-url", url, "--session", "cli-test", "--speed", "0.5",
			"--from", replaytest.T0.Add(time.Second).Format(time.RFC3339Nano),
			"--to", replaytest.T0.Add(2 * time.Second).Format(time.RFC3339Nano)}), &out, &errOut)
	}()
	waitOut := func(what string) {
		t.Helper()
		if !testwait.Until(10*time.Second, func() bool { return strings.Contains(out.String(), what) }) {
			t.Fatalf("no %q in:\n%s%s", what, out.String(), errOut.String())
		}
	}
	waitOut("open http://127.0.0.1:8080/?replay=cli-test")
	waitOut("session cli-test: RUNNING")

	ctl := func(args ...string) string {
		t.Helper()
		return mustRun(t, append([]string{"replay-control", "--nats-url", url, "--session", "cli-test"}, args...)...)
	}
	if o := ctl("pause"); !strings.Contains(o, "PAUSED") {
		t.Fatal(o)
	}
	if o := ctl("seek", replaytest.T0.Add(1300*time.Millisecond).Format(time.RFC3339Nano)); !strings.Contains(o, "generation 1") ||
		!strings.Contains(o, "PAUSED at 2025-03-14T15:09:27.3Z") {
		t.Fatal(o)
	}
	if o := ctl("seek", "-50ms"); !strings.Contains(o, "generation 2") || !strings.Contains(o, "at 2025-03-14T15:09:27.25Z") {
		t.Fatal(o)
	}
	if o := ctl("speed", "0"); !strings.Contains(o, "speed max") {
		t.Fatal(o)
	}
	ctl("resume")
	waitOut("FINISHED")
	if o := ctl("status"); !strings.Contains(o, "FINISHED at 2025-03-14T15:09:28Z") || !strings.Contains(o, "instruments synthetic:") {
		t.Fatal(o)
	}
	for _, bad := range [][]string{{"speed", "fast"}, {"seek"}, {"pause", "now"}} {
		if code, _, _ := tickctl(t, append([]string{"replay-control", "--nats-url", url, "--session", "cli-test"}, bad...)...); code != exitConfig {
			t.Errorf("%v: exit %d", bad, code)
		}
	}
	if code, _, errOut := tickctl(t, "replay-control", "--nats-url", url, "--session", "nobody", "status"); code != exitFail || !strings.Contains(errOut, "no such replay session") {
		t.Errorf("unknown session: %d %s", code, errOut)
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("replay exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "replay session cli-test stopped") {
		t.Fatal(out.String())
	}
}
