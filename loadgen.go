package main

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
)

// The load generator (go run -tags bench .): a client of the wire protocol
// that drives a server, a node or an nginx front, and reports throughput,
// latency on its own clock, and what was lost, duplicated or reordered.
// Scenarios live in loadgen_scenarios.go; the accounting in loadgen_stats.go.

type loadConfig struct {
	addrs       []string
	scenario    string
	duration    time.Duration
	warmup      time.Duration
	drain       time.Duration
	pairs       int
	window      int
	size        int
	rate        float64
	groups      int
	members     int
	senders     int
	conns       int
	concurrency int
	settle      time.Duration
	pids        []int
	prefix      string
	password    string
	ackDelay    time.Duration
	cid         bool
	quiet       bool
}

func parseLoadConfig(args []string, usage io.Writer) (loadConfig, error) {
	var cfg loadConfig
	fs := flag.NewFlagSet("chat-bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr := fs.String("addr", "127.0.0.1:6000", "server address; a comma-separated list spreads clients over nodes, a pair's (or a group's) members on different ones")
	fs.StringVar(&cfg.scenario, "scenario", "pairs", "pairs, group, conns or login")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "measured time (conns: how long the connections are held)")
	fs.DurationVar(&cfg.warmup, "warmup", 2*time.Second, "load before measuring starts")
	fs.DurationVar(&cfg.drain, "drain", 15*time.Second, "longest wait for replies and deliveries after sending stops")
	fs.IntVar(&cfg.pairs, "pairs", 50, "pairs: sender/recipient pairs")
	fs.IntVar(&cfg.window, "window", 64, "pairs, group: requests each sender keeps in flight")
	fs.IntVar(&cfg.size, "size", 64, "pairs, group: message text bytes")
	fs.Float64Var(&cfg.rate, "rate", 0, "pairs, group: total messages per second, spread over the senders (0: as fast as the window allows)")
	fs.IntVar(&cfg.groups, "groups", 10, "group: groups")
	fs.IntVar(&cfg.members, "members", 100, "group: members per group")
	fs.IntVar(&cfg.senders, "senders", 1, "group: senders per group")
	fs.IntVar(&cfg.conns, "conns", 1000, "conns: idle logged-in connections")
	fs.IntVar(&cfg.concurrency, "concurrency", 32, "connections set up at once; login: concurrent register/login loops")
	fs.DurationVar(&cfg.settle, "settle", 3*time.Second, "conns: wait after the last login before reading the server's memory")
	pid := fs.String("pid", "", "server process id(s), comma-separated: report their CPU time and RSS")
	fs.StringVar(&cfg.prefix, "prefix", "", "user name prefix (default: random, so runs do not share users)")
	fs.StringVar(&cfg.password, "password", "lg-secret", "password of the load generator's users")
	fs.DurationVar(&cfg.ackDelay, "ack-delay", 100*time.Millisecond, "recipients batch acks for this long, like the client")
	fs.BoolVar(&cfg.cid, "cid", true, "pairs, group: send a cid with every message, as the client does")
	fs.BoolVar(&cfg.quiet, "quiet", false, "no progress lines on stderr")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(usage, "usage: go run -tags bench . [flags]")
			fs.SetOutput(usage)
			fs.PrintDefaults()
		}
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, a := range strings.Split(*addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			cfg.addrs = append(cfg.addrs, a)
		}
	}
	if *pid != "" {
		for _, p := range strings.Split(*pid, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(p))
			if err != nil || n <= 0 {
				return cfg, fmt.Errorf("-pid: %q is not a process id", p)
			}
			cfg.pids = append(cfg.pids, n)
		}
	}
	if cfg.prefix == "" {
		var b [3]byte
		rand.Read(b[:])
		cfg.prefix = "lg" + hex.EncodeToString(b[:])
	}
	switch {
	case len(cfg.addrs) == 0:
		return cfg, errors.New("-addr is empty")
	case cfg.scenario != "pairs" && cfg.scenario != "group" && cfg.scenario != "conns" && cfg.scenario != "login":
		return cfg, fmt.Errorf("-scenario %q: want pairs, group, conns or login", cfg.scenario)
	case cfg.duration <= 0 || cfg.warmup < 0 || cfg.drain <= 0:
		return cfg, errors.New("-duration and -drain must be positive, -warmup not negative")
	case cfg.pairs < 1 || cfg.window < 1 || cfg.groups < 1 || cfg.senders < 1 || cfg.conns < 1 || cfg.concurrency < 1:
		return cfg, errors.New("-pairs, -window, -groups, -senders, -conns and -concurrency must be at least 1")
	case cfg.members < 2 || cfg.senders > cfg.members:
		return cfg, errors.New("-members must be at least 2 and at least -senders")
	case cfg.size < 40 || cfg.size > 4096:
		return cfg, errors.New("-size must be 40 to 4096 bytes (the text carries a sequence number and a send time)")
	case cfg.rate < 0:
		return cfg, errors.New("-rate must not be negative")
	case !utf8.ValidString(cfg.password):
		return cfg, errors.New("-password must be valid UTF-8")
	case len(cfg.prefix) > 20:
		return cfg, errors.New("-prefix is at most 20 characters")
	}
	return cfg, nil
}

// runLoadgen is the bench build's main. Exit status: 0, or 1 when a
// message was lost or reordered or the run could not be set up, 2 for a
// bad command line.
func runLoadgen(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseLoadConfig(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "chat-bench: %v\n", err)
		return 2
	}
	progress := stderr
	if cfg.quiet {
		progress = io.Discard
	}
	if len(cfg.pids) > 0 {
		// A wrong -pid would otherwise only leave the server's figures out.
		if _, err := readProcs(cfg.pids); err != nil {
			fmt.Fprintf(stderr, "chat-bench: %v\n", err)
			return 2
		}
	}
	rep, err := runScenario(cfg, progress)
	if err != nil {
		fmt.Fprintf(stderr, "chat-bench: %v\n", err)
		return 1
	}
	rep.print(stdout)
	if rep.Lost > 0 || rep.OutOfOrder > 0 || rep.ConnsLost > 0 {
		return 1
	}
	return 0
}

func runScenario(cfg loadConfig, progress io.Writer) (*loadReport, error) {
	switch cfg.scenario {
	case "pairs":
		return runPairs(cfg, progress)
	case "group":
		return runGroup(cfg, progress)
	case "conns":
		return runConns(cfg, progress)
	default:
		return runLogin(cfg, progress)
	}
}

// --- one connection ---

// lgConn is a load generator connection. Before the run it is used
// synchronously (call); during the run one reader goroutine owns r, and
// writers share w under wmu.
type lgConn struct {
	nc      net.Conn
	r       *bufio.Reader
	scratch []byte // a line longer than r's buffer

	wmu sync.Mutex
	w   *bufio.Writer
	rid int64 // setup calls
}

func dialLG(addr string, rbuf, wbuf int) (*lgConn, error) {
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	return &lgConn{nc: nc, r: bufio.NewReaderSize(nc, rbuf), w: bufio.NewWriterSize(nc, wbuf)}, nil
}

func (c *lgConn) readLine() ([]byte, error) {
	line, err := c.r.ReadSlice('\n')
	if err == nil || !errors.Is(err, bufio.ErrBufferFull) {
		return line, err
	}
	c.scratch = append(c.scratch[:0], line...)
	for errors.Is(err, bufio.ErrBufferFull) {
		line, err = c.r.ReadSlice('\n')
		c.scratch = append(c.scratch, line...)
	}
	return c.scratch, err
}

// write sends whole frames and flushes.
func (c *lgConn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.w.Write(b)
	return c.w.Flush()
}

// lgReply is a setup call's answer.
type lgReply struct {
	ok      bool
	code    string
	userID  int64
	groupID int64
}

// call sends one request of type typ with fields (JSON members without
// braces, e.g. `"group":7`), numbered with the next rid, and reads until
// its reply, skipping pushes.
func (c *lgConn) call(typ, fields string) (lgReply, error) {
	c.rid++
	req := `{"type":"` + typ + `","rid":` + strconv.FormatInt(c.rid, 10)
	if fields != "" {
		req += "," + fields
	}
	if err := c.write([]byte(req + "}\n")); err != nil {
		return lgReply{}, err
	}
	c.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	defer c.nc.SetReadDeadline(time.Time{})
	var f lgFrame
	for {
		line, err := c.readLine()
		if err != nil {
			return lgReply{}, fmt.Errorf("%s: %w", typ, err)
		}
		if scanFrame(line, &f) != nil || !f.hasRid || f.rid != c.rid {
			continue
		}
		return lgReply{ok: f.ok, code: string(f.code), userID: f.userID, groupID: f.groupID}, nil
	}
}

// credentials are the members of a register or login request, quoted by
// the server's own JSON string encoder.
func credentials(name, password string) string {
	b := append([]byte(`"name":`), appendString(nil, name)...)
	b = append(b, `,"password":`...)
	return string(appendString(b, password))
}

// login registers name (an existing name is fine: runs may share users
// through -prefix) and logs it in, returning the user id.
func (c *lgConn) login(name, password string) (int64, error) {
	creds := credentials(name, password)
	r, err := c.call("register", creds)
	if err != nil {
		return 0, err
	}
	if !r.ok && r.code != "name_taken" {
		return 0, fmt.Errorf("register %s: %s", name, r.code)
	}
	if r, err = c.call("login", creds); err != nil {
		return 0, err
	}
	if !r.ok {
		return 0, fmt.Errorf("login %s: %s", name, r.code)
	}
	return r.userID, nil
}

// --- the report ---

type loadReport struct {
	Scenario    string   `json:"scenario"`
	Addrs       []string `json:"addrs"`
	Clients     int      `json:"clients"`
	Senders     int      `json:"senders,omitempty"`
	Window      int      `json:"window,omitempty"`
	Size        int      `json:"size,omitempty"`
	Members     int      `json:"members,omitempty"`
	RateTarget  float64  `json:"rate_target,omitempty"`
	Seconds     float64  `json:"seconds"`
	Stored      int64    `json:"stored"`
	StoredPerS  float64  `json:"stored_per_s"`
	Delivered   int64    `json:"delivered"`
	DeliverPerS float64  `json:"delivered_per_s"`
	// Whole-run accounting, warm-up and drain included.
	Acked      int64            `json:"acked_total"`
	Expected   int64            `json:"expected_deliveries"`
	Lost       int64            `json:"lost"`
	Dup        int64            `json:"duplicated"`
	OutOfOrder int64            `json:"out_of_order"`
	Stale      int64            `json:"stale"`
	Errors     map[string]int64 `json:"errors"`

	StoreLatency *latencySummary `json:"store_latency_ms,omitempty"`
	E2ELatency   *latencySummary `json:"e2e_latency_ms,omitempty"`

	// conns
	Conns           int     `json:"conns,omitempty"`
	ConnsLost       int     `json:"conns_lost,omitempty"`
	SetupPerS       float64 `json:"setup_per_s,omitempty"`
	ServerRSSStart  int64   `json:"server_rss_start,omitempty"`
	ServerRSSLogin  int64   `json:"server_rss_after_login,omitempty"`
	RSSPerConnLogin int64   `json:"server_rss_per_conn_after_login,omitempty"`
	RSSPerConn      int64   `json:"server_rss_per_conn,omitempty"` // at the end of the hold
	// login
	Registers      int64           `json:"registers,omitempty"`
	RegisterPerS   float64         `json:"registers_per_s,omitempty"`
	Logins         int64           `json:"logins,omitempty"`
	LoginPerS      float64         `json:"logins_per_s,omitempty"`
	RegisterLatncy *latencySummary `json:"register_latency_ms,omitempty"`
	LoginLatency   *latencySummary `json:"login_latency_ms,omitempty"`

	ServerPIDs      []int   `json:"server_pids,omitempty"`
	ServerCPU       float64 `json:"server_cpu_s,omitempty"`
	ServerCPUPer1k  float64 `json:"server_cpu_s_per_1k_msgs,omitempty"`
	ServerCPUPer1kD float64 `json:"server_cpu_s_per_1k_deliveries,omitempty"`
	ServerRSS       int64   `json:"server_rss,omitempty"`
	SelfCPUPer1k    float64 `json:"loadgen_cpu_s_per_1k_msgs,omitempty"`
	SelfCPU         float64 `json:"loadgen_cpu_s"`
	SelfRSS         int64   `json:"loadgen_rss"`
	LoadAvg         string  `json:"loadavg"`
	Targets         string  `json:"targets"`
}

func (r *loadReport) print(w io.Writer) {
	fmt.Fprintf(w, "scenario %s against %s, %d clients, %.1f s measured\n", r.Scenario, strings.Join(r.Addrs, ","), r.Clients, r.Seconds)
	switch r.Scenario {
	case "pairs", "group":
		fmt.Fprintf(w, "stored     %10.0f msgs/s  (%d)\n", r.StoredPerS, r.Stored)
		fmt.Fprintf(w, "delivered  %10.0f msgs/s  (%d)\n", r.DeliverPerS, r.Delivered)
		printLatency(w, "store (reply)", r.StoreLatency)
		printLatency(w, "end to end", r.E2ELatency)
		fmt.Fprintf(w, "whole run: %d acked, %d deliveries expected; lost %d, duplicated %d, out of order %d, stale %d\n",
			r.Acked, r.Expected, r.Lost, r.Dup, r.OutOfOrder, r.Stale)
	case "conns":
		fmt.Fprintf(w, "connections %d held, %d lost; set up at %.0f/s\n", r.Conns, r.ConnsLost, r.SetupPerS)
		if r.ServerRSSLogin > 0 {
			fmt.Fprintf(w, "server RSS %s before, %s after the logins (%s per connection), %s after holding them %.0f s idle: %s per connection\n",
				bytesIEC(r.ServerRSSStart), bytesIEC(r.ServerRSSLogin), bytesIEC(r.RSSPerConnLogin),
				bytesIEC(r.ServerRSS), r.Seconds, bytesIEC(r.RSSPerConn))
		}
	case "login":
		fmt.Fprintf(w, "register %8.0f/s (%d)\n", r.RegisterPerS, r.Registers)
		fmt.Fprintf(w, "login    %8.0f/s (%d)\n", r.LoginPerS, r.Logins)
		printLatency(w, "register", r.RegisterLatncy)
		printLatency(w, "login", r.LoginLatency)
	}
	if len(r.Errors) > 0 {
		fmt.Fprintf(w, "error replies: %v\n", r.Errors)
	}
	if len(r.ServerPIDs) > 0 {
		fmt.Fprintf(w, "server %v: %.2f CPU-s", r.ServerPIDs, r.ServerCPU)
		if r.ServerCPUPer1k > 0 {
			fmt.Fprintf(w, ", %.4f CPU-s per 1,000 msgs", r.ServerCPUPer1k)
		}
		if r.ServerCPUPer1kD > 0 && r.ServerCPUPer1kD != r.ServerCPUPer1k {
			fmt.Fprintf(w, ", %.5f per 1,000 deliveries", r.ServerCPUPer1kD)
		}
		fmt.Fprintf(w, ", RSS %s\n", bytesIEC(r.ServerRSS))
	} else {
		fmt.Fprintln(w, "server: give -pid to report its CPU time and memory")
	}
	fmt.Fprintf(w, "load generator: %.2f CPU-s", r.SelfCPU)
	if r.SelfCPUPer1k > 0 {
		fmt.Fprintf(w, " (%.4f per 1,000 msgs)", r.SelfCPUPer1k)
	}
	fmt.Fprintf(w, ", RSS %s; load average %s\n", bytesIEC(r.SelfRSS), r.LoadAvg)
	fmt.Fprintf(w, "targets (2 cores, load generator on the same cores): %s\n", r.Targets)
	b, _ := json.Marshal(r)
	fmt.Fprintf(w, "%s\n", b)
}

func printLatency(w io.Writer, name string, s *latencySummary) {
	if s == nil || s.N == 0 {
		return
	}
	fmt.Fprintf(w, "%-14s ms: p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  (n=%d)\n",
		name, s.P50, s.P90, s.P99, s.P999, s.Max, s.N)
}

func bytesIEC(n int64) string {
	switch {
	case n >= 10<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	case n >= 10<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

var scenarioTargets = map[string]string{
	"pairs": "stored 30,000 msgs/s on MySQL, 50,000 on SQLite; p99 <= 10 ms at -rate 10000 on MySQL; across 3 nodes 20,000 msgs/s adding <= 5 ms to p99; zero lost",
	"group": "300,000 deliveries/s in groups of 100; zero lost",
	"conns": "<= 16 KiB of server RSS per idle logged-in connection at 15,000 connections",
	"login": "none set (bcrypt cost decides; -bcrypt-cost on the server)",
}

// --- process figures ---

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
func (m *meter) fill(r *loadReport, msgs, deliveries int64) {
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
