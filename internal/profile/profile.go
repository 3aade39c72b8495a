// Package profile writes Go runtime profiles to files for the binaries' profiling flags
// (feed --cpu-profile, loadgen --cpuprofile and --nats-profile), and reads the process's CPU
// time for benchmarks that report CPU per unit of work.
package profile

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"
)

// StartCPU starts a CPU profile written to path. Call stop once to end it; stop returns the
// error of closing the file (a profile cut short).
func StartCPU(path string) (stop func() error, err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("profile: %s: %w", path, err)
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("profile: %w", err)
		}
		return nil
	}, nil
}

// WriteHeap writes the heap in use, after a collection, to path.
func WriteHeap(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	runtime.GC()
	if err := errors.Join(pprof.Lookup("heap").WriteTo(f, 0), f.Close()); err != nil {
		return fmt.Errorf("profile: %s: %w", path, err)
	}
	return nil
}

// CPUTime is the CPU time this process has used so far, user and system together
// (getrusage), so that a benchmark can report CPU per unit of work over all its goroutines,
// an in-process server's included.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru) // fails only for a bad pointer or who
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
