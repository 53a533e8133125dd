package loadgen

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procSample is a process's CPU time and resident memory, from /proc.
type procSample struct {
	cpu time.Duration
	rss int64
}

func readProc(pid int) (procSample, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procSample{}, err
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	end := strings.LastIndexByte(string(b), ')')
	if end < 0 {
		return procSample{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 22 {
		return procSample{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	pages, _ := strconv.ParseInt(f[21], 10, 64)
	const clockTicks = 100 // USER_HZ: 100 on every Linux this runs on
	return procSample{
		cpu: time.Duration(utime+stime) * time.Second / clockTicks,
		rss: pages * int64(os.Getpagesize()),
	}, nil
}

// readProcs sums the figures of every process in pids.
func readProcs(pids []int) (procSample, error) {
	var sum procSample
	for _, p := range pids {
		s, err := readProc(p)
		if err != nil {
			return sum, fmt.Errorf("-pid %d: %w", p, err)
		}
		sum.cpu += s.cpu
		sum.rss += s.rss
	}
	return sum, nil
}

func selfSample() procSample {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	s, err := readProc(os.Getpid())
	if err != nil {
		return procSample{cpu: cpu}
	}
	return procSample{cpu: cpu, rss: s.rss}
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// meter samples the server processes and the load generator around the
// measured window.
type meter struct {
	pids      []int
	start     time.Time
	srv, self procSample
	srvErr    error
	elapsed   time.Duration
	srvEnd    procSample
	selfEnd   procSample
}

func (m *meter) begin() {
	m.start = time.Now()
	m.self = selfSample()
	if len(m.pids) > 0 {
		m.srv, m.srvErr = readProcs(m.pids)
	}
}

func (m *meter) end() {
	m.elapsed = time.Since(m.start)
	m.selfEnd = selfSample()
	if len(m.pids) > 0 && m.srvErr == nil {
		m.srvEnd, m.srvErr = readProcs(m.pids)
	}
}

// fill writes the CPU and memory figures into r; msgs and deliveries are
// the counts within the window.
func (m *meter) fill(r *Report, msgs, deliveries int64) {
	r.Seconds = m.elapsed.Seconds()
	selfCPU := m.selfEnd.cpu - m.self.cpu
	r.SelfCPU = round3(selfCPU.Seconds())
	r.SelfRSS = m.selfEnd.rss
	if msgs > 0 {
		r.SelfCPUPer1k = round5(selfCPU.Seconds() / float64(msgs) * 1000)
	}
	if len(m.pids) > 0 && m.srvErr == nil {
		cpu := (m.srvEnd.cpu - m.srv.cpu).Seconds()
		r.ServerPIDs, r.ServerCPU, r.ServerRSS = m.pids, round3(cpu), m.srvEnd.rss
		if msgs > 0 {
			r.ServerCPUPer1k = round5(cpu / float64(msgs) * 1000)
		}
		if deliveries > 0 {
			r.ServerCPUPer1kD = round5(cpu / float64(deliveries) * 1000)
		}
	}
	r.LoadAvg = loadAvg()
	r.Targets = scenarioTargets[r.Scenario]
}

func round3(v float64) float64 { return float64(int64(v*1e3+0.5)) / 1e3 }
func round5(v float64) float64 { return float64(int64(v*1e5+0.5)) / 1e5 }
