package profile

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
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

// CPUTime counts the CPU this process spends: busy work moves it, and by no more than the
// machine's cores could give in the time it took.
func TestCPUTime(t *testing.T) {
	before, start := CPUTime(), time.Now()
	if before <= 0 {
		t.Fatalf("CPUTime %v at the start of a test", before)
	}
	used := time.Duration(0)
	for used < 20*time.Millisecond {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("10 s of busy work moved CPUTime by %v", used)
		}
		for n := 0; n < 1e6; n++ {
			_ = n * n
		}
		used = CPUTime() - before
	}
	if limit := time.Since(start) * time.Duration(runtime.NumCPU()+1); used > limit {
		t.Fatalf("CPUTime moved by %v in %v of wall time on %d CPUs", used, time.Since(start), runtime.NumCPU())
	}
}
