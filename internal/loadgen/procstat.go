package loadgen

import (
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
)

// procSample is a process's cumulative CPU time and its resident memory at one instant.
type procSample struct {
	At  time.Time
	CPU time.Duration // user + system
	RSS int64         // bytes
}

// readProc samples a process through procfs: utime+stime from /proc/<pid>/stat (in USER_HZ
// ticks, which procfs converts to seconds) and VmRSS from /proc/<pid>/status. When the
// process is gone it returns the error and a sample with only At set.
func readProc(pid int) (procSample, error) {
	s := procSample{At: time.Now()}
	p, err := procfs.NewProc(pid)
	if err != nil {
		return s, fmt.Errorf("loadgen: %w", err)
	}
	stat, err := p.Stat()
	if err != nil {
		return s, fmt.Errorf("loadgen: %w", err)
	}
	s.CPU = time.Duration(math.Round(stat.CPUTime() * float64(time.Second)))
	status, err := p.NewStatus()
	if err != nil {
		return s, fmt.Errorf("loadgen: %w", err)
	}
	s.RSS = int64(status.VmRSS)
	return s, nil
}

// pidListeningOn finds the process listening on TCP port of 127.0.0.1 (or any address) by
// matching the listening socket's inode (/proc/net/tcp, tcp6) with the fds of the processes
// this user may inspect. It fails unless exactly one process holds that socket.
func pidListeningOn(port int) (int, error) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return 0, fmt.Errorf("loadgen: %w", err)
	}
	inodes := map[string]bool{}
	for _, read := range []func() (procfs.NetTCP, error){fs.NetTCP, fs.NetTCP6} {
		lines, err := read()
		if err != nil {
			continue // no IPv6, say
		}
		for _, l := range lines {
			if l.St == 0x0A && l.LocalPort == uint64(port) { // 0A: TCP_LISTEN
				inodes[strconv.FormatUint(l.Inode, 10)] = true
			}
		}
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("loadgen: nothing listens on port %d", port)
	}
	procs, _ := fs.AllProcs()
	found := map[int]bool{}
	for _, p := range procs {
		targets, err := p.FileDescriptorTargets()
		if err != nil {
			continue
		}
		for _, target := range targets {
			if in, ok := strings.CutPrefix(target, "socket:["); ok && inodes[strings.TrimSuffix(in, "]")] {
				found[p.PID] = true
				break
			}
		}
	}
	if len(found) != 1 {
		return 0, fmt.Errorf("loadgen: %d processes of this user hold the socket listening on port %d; pass --feed-pid", len(found), port)
	}
	for pid := range found {
		return pid, nil
	}
	return 0, nil
}

// raiseFileLimit raises RLIMIT_NOFILE to its hard limit (children inherit it) and returns the
// new soft limit.
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("loadgen: getrlimit: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, fmt.Errorf("loadgen: setrlimit: %w", err)
		}
	}
	return lim.Cur, nil
}

// Machine describes where a run happened.
type Machine struct {
	CPUs   int     `json:"cpus"`
	Model  string  `json:"cpu_model"`
	MemGiB float64 `json:"mem_gib"`
	Kernel string  `json:"kernel"`
	Go     string  `json:"go"`
}

func machineInfo() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return m
	}
	if cpus, err := fs.CPUInfo(); err == nil && len(cpus) > 0 {
		m.Model = cpus[0].ModelName
	}
	if mi, err := fs.Meminfo(); err == nil && mi.MemTotal != nil {
		kb := float64(*mi.MemTotal)
		m.MemGiB = float64(int(kb/(1<<20)*10+0.5)) / 10
	}
	if v, err := fs.SysctlStrings("kernel.osrelease"); err == nil && len(v) > 0 {
		m.Kernel = v[0]
	}
	return m
}
