package loadgen

import (
	"net"
	"os"
	"runtime"
	"strings"
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
	for start := time.Now(); time.Since(start) < 300*time.Millisecond; { // burn CPU
	}
	b, err := readProc(ownPID)
	if err != nil {
		t.Fatal(err)
	}
	if d := b.CPU - a.CPU; d < 100*time.Millisecond || d > 5*time.Second {
		t.Errorf("CPU %v -> %v after 300 ms of spinning", a.CPU, b.CPU)
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
