package profile

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// Both profiles are gzipped pprof protos (what go tool pprof reads); a path that cannot be
// created is an error, not a crash or a silent no-op.
func TestProfiles(t *testing.T) {
	dir := t.TempDir()
	cpu, heap := filepath.Join(dir, "cpu.prof"), filepath.Join(dir, "heap.prof")
	stop, err := StartCPU(cpu)
	if err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := WriteHeap(heap); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{cpu, heap} {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
			t.Fatalf("%s: %d bytes, not a gzipped profile", p, len(data))
		}
	}
	missing := filepath.Join(dir, "no", "such", "dir", "x.prof")
	if _, err := StartCPU(missing); err == nil {
		t.Fatal("StartCPU into a missing directory: no error")
	}
	if err := WriteHeap(missing); err == nil {
		t.Fatal("WriteHeap into a missing directory: no error")
	}
	// A second CPU profile while one runs is refused, and the first still stops.
	stop, err = StartCPU(cpu)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := StartCPU(filepath.Join(dir, "second.prof")); err == nil {
		t.Fatal("a second CPU profile started while one runs")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
