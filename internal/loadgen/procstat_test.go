package loadgen

import (
	"net"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readProc of this process: CPU time grows with work done, RSS is in bytes and close to what
// the Go runtime holds; a pid that does not exist gives an error and an empty sample.
func TestReadProcOfThisProcess(t *testing.T) {
	a, err := readProc(ownPID)
	if err != nil {
		t.Fatal(err)
	}
	// Burn 300 ms of CPU as the kernel counts it for this process (getrusage), however long a
	// loaded machine takes to give it: a fixed wall time of spinning failed under a load of 9.
	r0 := rusageCPU(t)
	for start := time.Now(); rusageCPU(t)-r0 < 300*time.Millisecond; {
		if time.Since(start) > time.Minute {
			t.Fatal("could not get 300 ms of CPU in a minute")
		}
	}
	b, err := readProc(ownPID)
	if err != nil {
		t.Fatal(err)
	}
	r1 := rusageCPU(t)
	// /proc counts in clock ticks (10 ms): the two agree to a few ticks.
	if d, want := b.CPU-a.CPU, r1-r0; d < want-50*time.Millisecond || d > want+50*time.Millisecond {
		t.Errorf("CPU %v -> %v (%v) while getrusage counted %v", a.CPU, b.CPU, d, want)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	// Bytes, not kB or pages: above the heap in use, below everything the runtime mapped plus 1 GiB.
	if b.RSS < int64(ms.HeapInuse)/2 || b.RSS > int64(ms.Sys)+1<<30 {
		t.Errorf("RSS %d bytes; heap in use %d, runtime sys %d", b.RSS, ms.HeapInuse, ms.Sys)
	}
	if !b.At.After(a.At) {
		t.Errorf("At %v then %v", a.At, b.At)
	}

	gone, err := readProc(1 << 30) // above pid_max
	if err == nil || gone.CPU != 0 || gone.RSS != 0 || gone.At.IsZero() {
		t.Errorf("missing pid: %+v, %v", gone, err)
	}
}

func TestPIDListeningOnFindsThisProcess(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pid, err := pidListeningOn(ln.Addr().(*net.TCPAddr).Port)
	if err != nil || pid != os.Getpid() {
		t.Fatalf("pid %d, %v; want %d", pid, err, os.Getpid())
	}
	ln.Close()
	if _, err := pidListeningOn(ln.Addr().(*net.TCPAddr).Port); err == nil || !strings.Contains(err.Error(), "nothing listens") {
		t.Fatalf("closed port: %v", err)
	}
}

func TestMachineInfo(t *testing.T) {
	m := machineInfo()
	if m.CPUs < 1 || m.MemGiB <= 0 || m.Kernel == "" || m.Go == "" {
		t.Fatalf("%+v", m)
	}
	t.Logf("%+v", m)
}

// rusageCPU is this process's user and system CPU time as getrusage reports it.
func rusageCPU(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
