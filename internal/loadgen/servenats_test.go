package loadgen

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// serve-nats --profile writes a CPU profile of the run and the heap at its end, both gzipped
// pprof protos that go tool pprof reads.
func TestServeNATSProfiles(t *testing.T) {
	dir := t.TempDir()
	prof := filepath.Join(dir, "nats.prof")
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- serveNATS(ctx, -1, filepath.Join(dir, "store"), filepath.Join(dir, "auth"), prof, ready)
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("serveNATS ended before serving: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("NATS not serving after 20 s")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{prof, prof + ".heap"} {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
			t.Fatalf("%s: %d bytes, not a gzipped profile", p, len(data))
		}
	}
}
