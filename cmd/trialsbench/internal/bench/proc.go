package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// procUsage is what /proc says about one process at one instant.
type procUsage struct {
	CPU time.Duration // user + system time so far
	RSS int64         // resident set, bytes
	HWM int64         // peak resident set so far, bytes
}

// readProc reads the CPU time and resident memory of pid.
func readProc(pid int) (procUsage, error) {
	var u procUsage
	cpu, err := procCPU(pid)
	if err != nil {
		return u, err
	}
	u.CPU = cpu
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, fmt.Errorf("reading status of %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		field, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch field {
		case "VmRSS":
			u.RSS = kB(rest)
		case "VmHWM":
			u.HWM = kB(rest)
		}
	}
	return u, nil
}

func kB(s string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "kB")), 10, 64)
	return n * 1024
}

// procCPU is utime + stime of pid. The command name in field 2 may hold
// spaces and parentheses, so fields are counted after its closing ')'.
func procCPU(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("reading stat of %d: %w", pid, err)
	}
	end := bytes.LastIndexByte(raw, ')')
	if end < 0 {
		return 0, fmt.Errorf("malformed stat of %d", pid)
	}
	fields := strings.Fields(string(raw[end+1:]))
	// fields[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(fields) < 13 {
		return 0, fmt.Errorf("short stat of %d", pid)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("malformed CPU times of %d", pid)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// postgresCPU sums the CPU time of every process named postgres: the
// server's share of the work, to tell a database-bound run from a
// daemon-bound one. Backends that exit between two readings take their time
// with them, which is why the scenarios keep their pools open throughout.
func postgresCPU() time.Duration {
	var total time.Duration
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range dirs {
		comm, err := os.ReadFile(filepath.Join(dir, "comm"))
		if err != nil || strings.TrimSpace(string(comm)) != "postgres" {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(dir))
		if cpu, err := procCPU(pid); err == nil {
			total += cpu
		}
	}
	return total
}

// usageSample is one reading of the sampler.
type usageSample struct {
	At       time.Duration `json:"atS"` // since the sampler started
	CPU      time.Duration `json:"-"`
	RSSBytes int64         `json:"rssBytes"`
}

// sampler reads a process's usage at a fixed interval until stopped.
type sampler struct {
	pid     int
	start   time.Time
	cpu0    time.Duration
	pg0     time.Duration
	cancel  context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	samples []usageSample
	peakRSS int64
	lastCPU time.Duration
}

// startSampler begins sampling pid every interval.
func startSampler(ctx context.Context, pid int, interval time.Duration) *sampler {
	ctx, cancel := context.WithCancel(ctx)
	s := &sampler{pid: pid, start: time.Now(), cancel: cancel, done: make(chan struct{}), pg0: postgresCPU()}
	if u, err := readProc(pid); err == nil {
		s.cpu0, s.lastCPU, s.peakRSS = u.CPU, u.CPU, u.RSS
	}
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			s.take()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *sampler) take() {
	u, err := readProc(s.pid)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		return // the process is gone; the last reading stands
	}
	s.samples = append(s.samples, usageSample{At: time.Since(s.start), CPU: u.CPU, RSSBytes: u.RSS})
	s.lastCPU = u.CPU
	s.peakRSS = max(s.peakRSS, u.RSS)
}

// usage is what a sampler measured between its start and stop.
type usage struct {
	CPUSeconds         float64 `json:"cpuSeconds"`
	PostgresCPUSeconds float64 `json:"postgresCpuSeconds"`
	PeakRSSBytes       int64   `json:"peakRssBytes"`
	Samples            int     `json:"samples"`
}

// stop takes a last reading (the process must still be running) and
// returns the totals.
func (s *sampler) stop() usage {
	s.take()
	s.cancel()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return usage{
		CPUSeconds:         (s.lastCPU - s.cpu0).Seconds(),
		PostgresCPUSeconds: (postgresCPU() - s.pg0).Seconds(),
		PeakRSSBytes:       s.peakRSS,
		Samples:            len(s.samples),
	}
}
