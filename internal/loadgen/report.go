package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Report is a run's result. Run prints it for people, then as one line of
// JSON, the last line of its output, which scripts/bench.sh records. Counts
// and rates without a note are of the measured window; a field a scenario
// does not measure is left zero (and out of the JSON where it says
// omitempty).
//
// In pairs and group a delivery is counted to a user when the first of its
// sessions gets the message (Delivered, Expected, Lost, E2ELatency: the
// guarantee), and to a session when each session gets it (the Session
// fields: the fan-out, what the server pushes). With -devices 1 the two are
// the same. Dup, Again and OutOfOrder are counted per session.
type Report struct {
	Scenario    string   `json:"scenario"`
	Addrs       []string `json:"addrs"`
	Transport   string   `json:"transport"` // tcp, ws or wss; mixed: joined with "+", e.g. tcp+ws
	Clients     int      `json:"clients"`   // connections: every session of every user
	Users       int      `json:"users,omitempty"`
	Senders     int      `json:"senders,omitempty"`
	Devices     int      `json:"devices,omitempty"` // sessions of each recipient (pairs) or member but the senders (group)
	Window      int      `json:"window,omitempty"`
	Size        int      `json:"size,omitempty"`
	Members     int      `json:"members,omitempty"`
	RateTarget  float64  `json:"rate_target,omitempty"`
	Seconds     float64  `json:"seconds"`
	Stored      int64    `json:"stored"`
	StoredPerS  float64  `json:"stored_per_s"`
	Delivered   int64    `json:"delivered"`
	DeliverPerS float64  `json:"delivered_per_s"`
	// Pushes of messages to sessions, counted once per session.
	SessionDeliveries  int64   `json:"session_deliveries,omitempty"`
	SessionDeliverPerS float64 `json:"session_deliveries_per_s,omitempty"`
	// Whole-run accounting, warm-up and drain included.
	Acked                  int64            `json:"acked_total"`
	Expected               int64            `json:"expected_deliveries"`
	DeliveredTotal         int64            `json:"delivered_total,omitempty"`
	Lost                   int64            `json:"lost"`
	SessionExpected        int64            `json:"expected_session_deliveries,omitempty"`
	SessionDeliveriesTotal int64            `json:"session_deliveries_total,omitempty"`
	SessionMissed          int64            `json:"session_missed"` // a live session never got a message (its user may have on another)
	Dup                    int64            `json:"duplicated"`     // a message pushed live twice
	Again                  int64            `json:"redelivered"`    // a message received both live and in a login's backlog, in either order (allowed)
	OutOfOrder             int64            `json:"out_of_order"`
	Stale                  int64            `json:"stale"`  // texts of another run or tool
	Errors                 map[string]int64 `json:"errors"` // error replies by code, and the load generator's own troubles

	StoreLatency *LatencySummary `json:"store_latency_ms,omitempty"`
	E2ELatency   *LatencySummary `json:"e2e_latency_ms,omitempty"` // to the user's first session
	// To the user's last session (the fan-out's end); only with -devices
	// above 1.
	E2ELastLatency *LatencySummary `json:"e2e_last_latency_ms,omitempty"`

	// conns
	Conns           int     `json:"conns,omitempty"`
	ConnsLost       int     `json:"conns_lost,omitempty"`
	SetupPerS       float64 `json:"setup_per_s,omitempty"`
	ServerRSSStart  int64   `json:"server_rss_start,omitempty"`
	ServerRSSLogin  int64   `json:"server_rss_after_login,omitempty"`
	RSSPerConnLogin int64   `json:"server_rss_per_conn_after_login,omitempty"`
	RSSPerConn      int64   `json:"server_rss_per_conn,omitempty"` // at the end of the hold
	// login
	Registers       int64           `json:"registers,omitempty"`
	RegisterPerS    float64         `json:"registers_per_s,omitempty"`
	Logins          int64           `json:"logins,omitempty"`
	LoginPerS       float64         `json:"logins_per_s,omitempty"`
	RegisterLatency *LatencySummary `json:"register_latency_ms,omitempty"`
	LoginLatency    *LatencySummary `json:"login_latency_ms,omitempty"`

	// The server's figures need -pid.
	ServerPIDs      []int   `json:"server_pids,omitempty"`
	ServerCPU       float64 `json:"server_cpu_s,omitempty"`
	ServerCPUPer1k  float64 `json:"server_cpu_s_per_1k_msgs,omitempty"`
	ServerCPUPer1kD float64 `json:"server_cpu_s_per_1k_deliveries,omitempty"` // deliveries to sessions: the server's pushes
	ServerRSS       int64   `json:"server_rss,omitempty"`
	SelfCPUPer1k    float64 `json:"loadgen_cpu_s_per_1k_msgs,omitempty"`
	SelfCPU         float64 `json:"loadgen_cpu_s"`
	SelfRSS         int64   `json:"loadgen_rss"`
	LoadAvg         string  `json:"loadavg"`
	Targets         string  `json:"targets"`
}

func (r *Report) print(w io.Writer) {
	devices := ""
	if r.Devices > 1 {
		devices = fmt.Sprintf(" (%d users, %d devices per receiving user)", r.Users, r.Devices)
	}
	fmt.Fprintf(w, "scenario %s over %s against %s, %d clients%s, %.1f s measured\n", r.Scenario, r.Transport, strings.Join(r.Addrs, ","), r.Clients, devices, r.Seconds)
	switch r.Scenario {
	case "pairs", "group":
		fmt.Fprintf(w, "stored     %10.0f msgs/s  (%d)\n", r.StoredPerS, r.Stored)
		fmt.Fprintf(w, "delivered  %10.0f msgs/s  (%d)\n", r.DeliverPerS, r.Delivered)
		if r.Devices > 1 {
			fmt.Fprintf(w, "to sessions%10.0f msgs/s  (%d)\n", r.SessionDeliverPerS, r.SessionDeliveries)
		}
		printLatency(w, "store (reply)", r.StoreLatency)
		printLatency(w, "end to end", r.E2ELatency)
		printLatency(w, "last session", r.E2ELastLatency)
		fmt.Fprintf(w, "whole run: %d acked, %d deliveries expected; lost %d, duplicated %d, redelivered %d, out of order %d, stale %d\n",
			r.Acked, r.Expected, r.Lost, r.Dup, r.Again, r.OutOfOrder, r.Stale)
		if r.Devices > 1 {
			fmt.Fprintf(w, "whole run: to users %d of %d deliveries; to sessions %d of %d, missed %d\n",
				r.DeliveredTotal, r.Expected, r.SessionDeliveriesTotal, r.SessionExpected, r.SessionMissed)
		}
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
		printLatency(w, "register", r.RegisterLatency)
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

func printLatency(w io.Writer, name string, s *LatencySummary) {
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
