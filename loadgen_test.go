package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"chat/internal/loadgen"
)

// The load generator (chat/internal/loadgen, go run -tags bench .) against
// real servers. These tests live here, not in its package, because the
// servers they need do: startServer and forEachStore, and the ceiling.
// They drive it as the bench build does, through loadgen.Run, and read the
// JSON line it prints last.

// runLoadgen runs the load generator's command line with -quiet and -pid
// (this process, where the test servers run), checks its exit status and
// decodes its report.
func runLoadgen(t *testing.T, wantCode int, args ...string) loadgen.Report {
	t.Helper()
	var out, errb bytes.Buffer
	code := loadgen.Run(append(args, "-quiet", "-pid", strconv.Itoa(os.Getpid())), &out, &errb)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var rep loadgen.Report
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil {
		t.Fatalf("exit %d, no report: %v\nstdout: %s\nstderr: %s", code, err, out.String(), errb.String())
	}
	if code != wantCode {
		t.Errorf("exit %d, want %d\n%s%s", code, wantCode, out.String(), errb.String())
	}
	t.Logf("%s", out.String())
	return rep
}

func checkTraffic(t *testing.T, rep loadgen.Report, perMsg int64) {
	t.Helper()
	if rep.Lost != 0 || rep.OutOfOrder != 0 || rep.Dup != 0 || len(rep.Errors) != 0 {
		t.Errorf("lost %d, out of order %d, duplicated %d, errors %v", rep.Lost, rep.OutOfOrder, rep.Dup, rep.Errors)
	}
	if rep.Stored <= 0 || rep.Acked < rep.Stored {
		t.Errorf("stored %d in the window, %d in all", rep.Stored, rep.Acked)
	}
	if rep.Expected != rep.Acked*perMsg {
		t.Errorf("expected deliveries %d, want %d x %d", rep.Expected, rep.Acked, perMsg)
	}
	for _, l := range []*loadgen.LatencySummary{rep.StoreLatency, rep.E2ELatency} {
		if l == nil || l.N == 0 || l.P50 <= 0 || l.P50 > l.P90 || l.P90 > l.P99 || l.P99 > l.P999 || l.P999 > l.Max {
			t.Errorf("latency figures out of order: %+v", l)
		}
	}
	if rep.ServerCPU <= 0 || rep.ServerRSS <= 0 || rep.ServerCPUPer1k <= 0 {
		t.Errorf("server figures missing: cpu %v rss %v per 1k %v", rep.ServerCPU, rep.ServerRSS, rep.ServerCPUPer1k)
	}
}

// Short runs of each scenario against a real server: zero loss and sane
// figures, never a speed.
func TestLoadgenScenarios(t *testing.T) {
	forEachStore(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		common := []string{"-addr", srv.addr, "-duration", "700ms", "-warmup", "200ms", "-concurrency", "8"}
		t.Run("pairs", func(t *testing.T) {
			rep := runLoadgen(t, 0, append(common, "-scenario", "pairs", "-pairs", "4", "-window", "8")...)
			checkTraffic(t, rep, 1)
			if rep.Delivered <= 0 || rep.Clients != 8 {
				t.Errorf("delivered %d by %d clients", rep.Delivered, rep.Clients)
			}
			// One device: a session's deliveries are its user's.
			if rep.Devices != 1 || rep.SessionDeliveries != rep.Delivered || rep.SessionDeliveriesTotal != rep.DeliveredTotal ||
				rep.SessionExpected != rep.Expected || rep.SessionMissed != 0 || rep.E2ELastLatency != nil {
				t.Errorf("devices %d: sessions got %d of %d (%d in the window), users %d of %d (%d); last session latency %v",
					rep.Devices, rep.SessionDeliveriesTotal, rep.SessionExpected, rep.SessionDeliveries,
					rep.DeliveredTotal, rep.Expected, rep.Delivered, rep.E2ELastLatency)
			}
		})
		t.Run("paced", func(t *testing.T) {
			rep := runLoadgen(t, 0, append(common, "-scenario", "pairs", "-pairs", "2", "-rate", "200")...)
			checkTraffic(t, rep, 1)
			// 200/s for 0.7 s: a paced run sends on schedule, not flat out.
			if rep.Stored < 70 || rep.Stored > 210 {
				t.Errorf("stored %d in 0.7 s at 200/s", rep.Stored)
			}
		})
		t.Run("group", func(t *testing.T) {
			rep := runLoadgen(t, 0, append(common, "-scenario", "group", "-groups", "2", "-members", "5", "-senders", "2", "-window", "4")...)
			checkTraffic(t, rep, 4)
			if rep.Delivered < rep.Stored*3 {
				t.Errorf("delivered %d for %d stored in groups of 5", rep.Delivered, rep.Stored)
			}
		})
		t.Run("conns", func(t *testing.T) {
			rep := runLoadgen(t, 0, append(common, "-scenario", "conns", "-conns", "40", "-settle", "100ms")...)
			if rep.Conns != 40 || rep.ConnsLost != 0 || rep.SetupPerS <= 0 || rep.ServerRSS <= 0 {
				t.Errorf("conns %d, lost %d, setup %v/s, rss %d", rep.Conns, rep.ConnsLost, rep.SetupPerS, rep.ServerRSS)
			}
		})
		t.Run("login", func(t *testing.T) {
			rep := runLoadgen(t, 0, append(common, "-scenario", "login", "-concurrency", "2")...)
			if rep.Registers <= 0 || rep.Logins != rep.Registers || len(rep.Errors) != 0 {
				t.Errorf("registers %d, logins %d, errors %v", rep.Registers, rep.Logins, rep.Errors)
			}
			if l := rep.LoginLatency; l == nil || l.P50 <= 0 || l.P99 > l.Max {
				t.Errorf("login latency %+v", l)
			}
		})
	})
}

// checkSessions checks a run's per-session accounting: each of its
// receiving users' sessions got every message (sessions per stored message:
// perMsg), and the last session's latency is never below the first's.
func checkSessions(t *testing.T, rep loadgen.Report, perMsg int64) {
	t.Helper()
	if rep.SessionMissed != 0 || rep.DeliveredTotal != rep.Expected {
		t.Errorf("sessions missed %d; users got %d of %d", rep.SessionMissed, rep.DeliveredTotal, rep.Expected)
	}
	if rep.SessionExpected != rep.Acked*perMsg || rep.SessionDeliveriesTotal != rep.SessionExpected {
		t.Errorf("session deliveries %d of %d expected, want %d x %d", rep.SessionDeliveriesTotal, rep.SessionExpected, rep.Acked, perMsg)
	}
	if rep.SessionDeliveries < rep.Delivered || rep.SessionDeliverPerS <= 0 {
		t.Errorf("%d session deliveries (%v/s) in the window, for %d to users", rep.SessionDeliveries, rep.SessionDeliverPerS, rep.Delivered)
	}
	first, last := rep.E2ELatency, rep.E2ELastLatency
	if last == nil || last.N == 0 || first == nil || last.P50 < first.P50 || last.Max < first.Max {
		t.Errorf("latency to the first session %+v, to the last %+v", first, last)
	}
}

// Several devices per user: every session of a recipient (pairs) or member
// (group) gets every message live, and its user's delivery counts once.
func TestLoadgenDevices(t *testing.T) {
	srv := startServer(t, sqliteURL(t))
	common := []string{"-addr", srv.addr, "-duration", "700ms", "-warmup", "200ms", "-concurrency", "8", "-devices", "2"}
	t.Run("pairs", func(t *testing.T) {
		rep := runLoadgen(t, 0, append(common, "-scenario", "pairs", "-pairs", "4", "-window", "8")...)
		checkTraffic(t, rep, 1)
		checkSessions(t, rep, 2)
		if rep.Clients != 12 || rep.Users != 8 || rep.Devices != 2 {
			t.Errorf("%d clients, %d users, %d devices; want 12, 8, 2", rep.Clients, rep.Users, rep.Devices)
		}
	})
	t.Run("group", func(t *testing.T) {
		// Per message: the other sender's one session, and two members' two.
		rep := runLoadgen(t, 0, append(common, "-scenario", "group", "-groups", "2", "-members", "4", "-senders", "2", "-window", "4")...)
		checkTraffic(t, rep, 3)
		checkSessions(t, rep, 1+2*2)
	})
}

// Over WebSocket (-addr ws://HOST:PORT/ws): every scenario's traffic, and
// a list mixing the two transports, so that each pair's two ends speak
// different ones; nothing lost. The store does not matter here: SQLite.
func TestLoadgenWebSocket(t *testing.T) {
	srv := startServer(t, sqliteURL(t), withWeb)
	ws := "ws://" + srv.web + "/ws"
	common := []string{"-duration", "700ms", "-warmup", "200ms", "-concurrency", "8"}
	for _, tc := range []struct {
		name, addr, transport string
		args                  []string
		perMsg                int64
	}{
		{"pairs", ws, "ws", []string{"-scenario", "pairs", "-pairs", "4", "-window", "8"}, 1},
		{"group", ws, "ws", []string{"-scenario", "group", "-groups", "2", "-members", "5", "-senders", "2", "-window", "4"}, 4},
		{"mixed", srv.addr + "," + ws, "tcp+ws", []string{"-scenario", "pairs", "-pairs", "4", "-window", "8", "-devices", "2"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := runLoadgen(t, 0, append(append([]string{"-addr", tc.addr}, common...), tc.args...)...)
			checkTraffic(t, rep, tc.perMsg)
			if rep.Transport != tc.transport || rep.SessionMissed != 0 || rep.DeliveredTotal != rep.Expected {
				t.Errorf("transport %q (want %q); delivered %d of %d, sessions missed %d",
					rep.Transport, tc.transport, rep.DeliveredTotal, rep.Expected, rep.SessionMissed)
			}
		})
	}
	t.Run("conns", func(t *testing.T) {
		rep := runLoadgen(t, 0, append([]string{"-addr", ws, "-scenario", "conns", "-conns", "20", "-settle", "100ms"}, common...)...)
		if rep.Conns != 20 || rep.ConnsLost != 0 || rep.Transport != "ws" {
			t.Errorf("conns %d, lost %d, transport %q", rep.Conns, rep.ConnsLost, rep.Transport)
		}
	})
}

// Across a cluster a user's sessions are on different nodes, so each
// delivery also crosses to the recipient's other node.
func TestLoadgenDevicesCluster(t *testing.T) {
	nodes := startCluster(t, 3, "")
	addrs := nodes[0].addr + "," + nodes[1].addr + "," + nodes[2].addr
	rep := runLoadgen(t, 0, "-addr", addrs, "-duration", "700ms", "-warmup", "200ms", "-concurrency", "8",
		"-devices", "3", "-scenario", "pairs", "-pairs", "3", "-window", "8")
	checkTraffic(t, rep, 1)
	checkSessions(t, rep, 3)
}

// A run that loses messages must say so, in its report and its exit
// status. The ceiling server gives a user's pushes to the user's latest
// login and stores nothing, so a second login of the recipient, made here,
// takes what the load generator's recipient should have got.
func TestLoadgenCountsLoss(t *testing.T) {
	addr := startCeiling(t)
	const prefix = "loss"
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	go io.Copy(io.Discard, nc)
	done := make(chan struct{})
	stolen := make(chan struct{})
	go func() {
		// Again and again until the run ends: a login before the load
		// generator's own (or before its user exists) does not count.
		defer close(stolen)
		login := []byte(`{"type":"login","name":"` + prefix + `r0","password":"lg-secret"}` + "\n")
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if _, err := nc.Write(login); err != nil {
					return
				}
			}
		}
	}()
	rep := runLoadgen(t, 1, "-addr", addr, "-prefix", prefix, "-pairs", "1", "-window", "4",
		"-duration", "300ms", "-warmup", "0s", "-drain", "300ms")
	close(done)
	<-stolen
	if rep.Lost == 0 || rep.Delivered >= rep.Acked {
		t.Errorf("lost %d of %d acked (%d delivered): a recipient whose pushes go elsewhere must lose some", rep.Lost, rep.Acked, rep.Delivered)
	}
}
