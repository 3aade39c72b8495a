package bus_test

import (
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tickwire/tickwire/internal/bus"
)

// readOnlyDir returns a directory this process cannot write to: mode 0500, or, for root (whom
// modes do not stop), a read-only tmpfs when it may mount one.
func readOnlyDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		return dir
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("root, and cannot mount a read-only tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	return dir
}

// TestStartEmbeddedUnusableDataDir: a data dir that is a file, lies under a file, or cannot be
// written makes StartEmbedded fail at once with the real cause, not "not ready within 10s".
func TestStartEmbeddedUnusableDataDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		dir   func(t *testing.T) string
		errno syscall.Errno
		want  string
	}{
		{"a file", func(*testing.T) string { return file }, syscall.ENOTDIR, "not a directory"},
		{"under a file", func(*testing.T) string { return filepath.Join(file, "nats") }, syscall.ENOTDIR, "not a directory"},
		{"not writable", readOnlyDir, 0, "data dir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.dir(t)
			start := time.Now()
			s, err := bus.StartEmbedded(bus.EmbeddedConfig{Port: -1, DataDir: dir}, nil)
			took := time.Since(start)
			if err == nil {
				s.Shutdown()
				t.Fatalf("started on %s", dir)
			}
			if took > 3*time.Second {
				t.Errorf("failed after %v; want at once", took)
			}
			if !errors.Is(err, bus.ErrEmbedded) || !errors.Is(err, bus.ErrDataDir) || !strings.Contains(err.Error(), tc.want) ||
				!strings.Contains(err.Error(), dir) {
				t.Errorf("error %q; want ErrEmbedded, ErrDataDir, %q and the path", err, tc.want)
			}
			if tc.errno != 0 && !errors.Is(err, tc.errno) {
				t.Errorf("error %q does not wrap %v", err, tc.errno)
			}
		})
	}
}

// TestStartEmbeddedFatalAtOnce: a server that cannot start (its port is taken) fails with its
// own reason at once, not "not ready within 10s".
func TestStartEmbeddedFatalAtOnce(t *testing.T) {
	first, err := bus.StartEmbedded(bus.EmbeddedConfig{Port: -1, DataDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(first.Shutdown)
	u, err := url.Parse(first.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(u.Port())
	start := time.Now()
	s, err := bus.StartEmbedded(bus.EmbeddedConfig{Port: port, DataDir: t.TempDir()}, nil)
	if err == nil {
		s.Shutdown()
		t.Fatalf("a second server started on port %d", port)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("failed after %v; want at once", took)
	}
	if !errors.Is(err, bus.ErrEmbedded) || !strings.Contains(err.Error(), "listen") {
		t.Errorf("error %q; want ErrEmbedded and the server's reason", err)
	}
}
