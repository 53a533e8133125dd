package main

import (
	"bytes"
	"encoding/json"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestLatencyHistQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		name string
		gen  func() time.Duration
	}{
		{"exact small values", func() time.Duration { return time.Duration(rng.IntN(128)) }},
		{"uniform to 10ms", func() time.Duration { return time.Duration(rng.Int64N(int64(10 * time.Millisecond))) }},
		{"long tail", func() time.Duration { return time.Duration(rng.ExpFloat64() * float64(time.Millisecond)) }},
		{"seconds", func() time.Duration { return time.Duration(rng.Int64N(int64(30 * time.Second))) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Two halves merged must equal the whole, and every quantile
			// must be within one bucket (1/64) of the exact answer.
			var a, b latencyHist
			vals := make([]time.Duration, 20000)
			for i := range vals {
				vals[i] = tc.gen()
				if i%2 == 0 {
					a.record(vals[i])
				} else {
					b.record(vals[i])
				}
			}
			a.merge(&b)
			slices.Sort(vals)
			if a.n != uint64(len(vals)) || a.min != vals[0] || a.max != vals[len(vals)-1] {
				t.Fatalf("n/min/max = %d/%v/%v, want %d/%v/%v", a.n, a.min, a.max, len(vals), vals[0], vals[len(vals)-1])
			}
			for _, q := range []float64{0, 0.5, 0.9, 0.99, 0.999, 1} {
				rank := int(q * float64(len(vals)))
				if float64(rank) < q*float64(len(vals)) {
					rank++
				}
				want := vals[max(rank, 1)-1]
				got := a.quantile(q)
				if got < want || float64(got-want) > float64(want)/64+1 {
					t.Errorf("q%.3f = %v, want %v (within 1/64 above)", q, got, want)
				}
			}
		})
	}
	var empty latencyHist
	if s := empty.summary(); s.N != 0 || s.P99 != 0 || s.Max != 0 {
		t.Errorf("empty summary = %+v", s)
	}
}

func TestHistBucketsCoverEveryValue(t *testing.T) {
	prev := -1
	for _, v := range []uint64{0, 1, 127, 128, 129, 255, 256, 1 << 20, 1<<40 + 12345, 1<<63 - 1} {
		i := histIndex(v)
		if i < prev || i >= histBuckets {
			t.Fatalf("index(%d) = %d after %d (of %d)", v, i, prev, histBuckets)
		}
		if up := histUpper(i); up < v || (v >= 128 && float64(up-v) > float64(v)/64) {
			t.Errorf("upper(index(%d)) = %d", v, up)
		}
		prev = i
	}
}

func TestSeqTracker(t *testing.T) {
	cases := []struct {
		name          string
		seqs          []int
		backlog       []bool
		n, dup, ooo   int
		missingOfSent int // of 1..5 confirmed
	}{
		{"in order", []int{1, 2, 3, 4, 5}, nil, 5, 0, 0, 0},
		{"one lost", []int{1, 2, 4, 5}, nil, 4, 0, 0, 1},
		{"duplicate", []int{1, 2, 2, 3, 4, 5}, nil, 5, 1, 0, 0},
		{"reordered live", []int{1, 3, 2, 4, 5}, nil, 5, 0, 1, 0},
		{"reordered backlog is fine", []int{4, 5, 1, 2, 3}, []bool{false, false, true, true, true}, 5, 0, 0, 0},
		{"nothing", nil, nil, 0, 0, 0, 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var tr seqTracker
			for i, s := range tc.seqs {
				tr.see(s, tc.backlog != nil && tc.backlog[i])
			}
			var sent bitset
			for s := 1; s <= 5; s++ {
				sent.add(s)
			}
			if tr.n != tc.n || tr.dup != tc.dup || tr.ooo != tc.ooo {
				t.Errorf("n/dup/ooo = %d/%d/%d, want %d/%d/%d", tr.n, tr.dup, tr.ooo, tc.n, tc.dup, tc.ooo)
			}
			if m := tr.seen.missing(sent); m != tc.missingOfSent {
				t.Errorf("missing = %d, want %d", m, tc.missingOfSent)
			}
		})
	}
	var b bitset
	if b.add(1000) || !b.add(1000) || !b.has(1000) || b.has(999) || b.count() != 1 {
		t.Error("bitset add/has/count")
	}
}

func TestScanFrame(t *testing.T) {
	cases := []struct {
		line string
		want lgFrame
	}{
		{`{"type":"chat","rid":17,"ok":true,"message":{"id":981,"from":12,"from_name":"a\"b","to":13,"text":"lg x 1 2 3 ","ts":1}}`,
			lgFrame{typ: []byte("chat"), rid: 17, hasRid: true, ok: true, msgID: 981, from: 12, text: []byte("lg x 1 2 3 ")}},
		{`{"type":"message","message":{"id":5,"from":2,"group":3,"text":"hi"},"backlog":true}`,
			lgFrame{typ: []byte("message"), msgID: 5, from: 2, groupID: 3, text: []byte("hi"), backlog: true}},
		{`{ "type" : "login", "rid" : "abc", "ok" : true, "user" : {"id": 7, "name":"x"}, "friends":[{"id":9}], "groups":[{"id":4,"members":[{"id":1}]}]}`,
			lgFrame{typ: []byte("login"), ok: true, userID: 7}},
		{`{"type":"chat","rid":1.5,"ok":false,"code":"rate_limited","error":"slow down"}`,
			lgFrame{typ: []byte("chat"), code: []byte("rate_limited")}},
		{`{"type":"create_group","rid":3,"ok":true,"group":{"id":44,"name":"g","members":[]}}`,
			lgFrame{typ: []byte("create_group"), rid: 3, hasRid: true, ok: true, groupID: 44}},
		{`{"type":"member_joined","group":44,"user":{"id":2}}` + "\r\n",
			lgFrame{typ: []byte("member_joined"), groupID: 44, userID: 2}},
	}
	for _, tc := range cases {
		var f lgFrame
		if err := scanFrame([]byte(tc.line), &f); err != nil {
			t.Errorf("%s: %v", tc.line, err)
			continue
		}
		if !bytes.Equal(f.typ, tc.want.typ) || !bytes.Equal(f.code, tc.want.code) || !bytes.Equal(f.text, tc.want.text) ||
			f.rid != tc.want.rid || f.hasRid != tc.want.hasRid || f.ok != tc.want.ok || f.backlog != tc.want.backlog ||
			f.msgID != tc.want.msgID || f.from != tc.want.from || f.userID != tc.want.userID || f.groupID != tc.want.groupID {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.line, f, tc.want)
		}
	}
	for _, bad := range []string{``, `[]`, `{"type":}`, `{"type":"x"`, `{"a":"unterminated}`, `{"a":{"b":[1,2}`} {
		var f lgFrame
		if scanFrame([]byte(bad), &f) == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestScanFrameNoAllocs(t *testing.T) {
	line := []byte(`{"type":"message","message":{"id":981,"from":12,"from_name":"alice","to":13,"text":"lg r 1 2 3 xx","ts":1795812345678}}`)
	var f lgFrame
	if n := testing.AllocsPerRun(100, func() { scanFrame(line, &f) }); n != 0 {
		t.Errorf("scanFrame allocates %.0f times", n)
	}
}

func TestLGText(t *testing.T) {
	b := appendLGText(nil, "run7", 42, 1234, 987654321, 64)
	if len(b) != 64 {
		t.Errorf("len = %d, want the requested 64", len(b))
	}
	got, ok := parseLGText(b)
	if !ok || string(got.run) != "run7" || got.sender != 42 || got.seq != 1234 || got.sentNs != 987654321 {
		t.Errorf("parse(%q) = %+v, %v", b, got, ok)
	}
	for _, other := range []string{"hello", "lg ", "lg a b c d", "lg a 1 2", "lgx a 1 2 3"} {
		if _, ok := parseLGText([]byte(other)); ok {
			t.Errorf("parse(%q) ok", other)
		}
	}
}

func TestLoadgenCommandLine(t *testing.T) {
	cases := []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"-scenario", "nope"}, 2, "want pairs, group, conns or login"},
		{[]string{"-pairs", "0"}, 2, "at least 1"},
		{[]string{"-size", "10"}, 2, "-size"},
		{[]string{"-pid", "x"}, 2, "not a process id"},
		{[]string{"-pid", "999999999"}, 2, "-pid 999999999"},
		{[]string{"-password", "\xff\xfe"}, 2, "UTF-8"},
		{[]string{"extra"}, 2, "unexpected argument"},
		{[]string{"-members", "1", "-scenario", "group"}, 2, "-members"},
		{[]string{"-addr", "127.0.0.1:1", "-quiet"}, 1, "setup"},
		{[]string{"-h"}, 0, "usage"},
	}
	for _, tc := range cases {
		var out, errb bytes.Buffer
		if code := runLoadgen(tc.args, &out, &errb); code != tc.code || !strings.Contains(errb.String(), tc.err) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, errb.String(), tc.code, tc.err)
		}
	}
}

// runLG runs the load generator's command line and decodes its final line.
func runLG(t *testing.T, args ...string) loadReport {
	t.Helper()
	var out, errb bytes.Buffer
	code := runLoadgen(append(args, "-quiet", "-pid", strconv.Itoa(os.Getpid())), &out, &errb)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var rep loadReport
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil {
		t.Fatalf("exit %d, no report: %v\nstdout: %s\nstderr: %s", code, err, out.String(), errb.String())
	}
	if code != 0 {
		t.Errorf("exit %d\n%s%s", code, out.String(), errb.String())
	}
	t.Logf("%s", out.String())
	return rep
}

func checkTraffic(t *testing.T, rep loadReport, perMsg int64) {
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
	for _, l := range []*latencySummary{rep.StoreLatency, rep.E2ELatency} {
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
			rep := runLG(t, append(common, "-scenario", "pairs", "-pairs", "4", "-window", "8")...)
			checkTraffic(t, rep, 1)
			if rep.Delivered <= 0 || rep.Clients != 8 {
				t.Errorf("delivered %d by %d clients", rep.Delivered, rep.Clients)
			}
		})
		t.Run("paced", func(t *testing.T) {
			rep := runLG(t, append(common, "-scenario", "pairs", "-pairs", "2", "-rate", "200")...)
			checkTraffic(t, rep, 1)
			// 200/s for 0.7 s: a paced run sends on schedule, not flat out.
			if rep.Stored < 70 || rep.Stored > 210 {
				t.Errorf("stored %d in 0.7 s at 200/s", rep.Stored)
			}
		})
		t.Run("group", func(t *testing.T) {
			rep := runLG(t, append(common, "-scenario", "group", "-groups", "2", "-members", "5", "-senders", "2", "-window", "4")...)
			checkTraffic(t, rep, 4)
			if rep.Delivered < rep.Stored*3 {
				t.Errorf("delivered %d for %d stored in groups of 5", rep.Delivered, rep.Stored)
			}
		})
		t.Run("conns", func(t *testing.T) {
			rep := runLG(t, append(common, "-scenario", "conns", "-conns", "40", "-settle", "100ms")...)
			if rep.Conns != 40 || rep.ConnsLost != 0 || rep.SetupPerS <= 0 || rep.ServerRSS <= 0 {
				t.Errorf("conns %d, lost %d, setup %v/s, rss %d", rep.Conns, rep.ConnsLost, rep.SetupPerS, rep.ServerRSS)
			}
		})
		t.Run("login", func(t *testing.T) {
			rep := runLG(t, append(common, "-scenario", "login", "-concurrency", "2")...)
			if rep.Registers <= 0 || rep.Logins != rep.Registers || len(rep.Errors) != 0 {
				t.Errorf("registers %d, logins %d, errors %v", rep.Registers, rep.Logins, rep.Errors)
			}
			if l := rep.LoginLatency; l == nil || l.P50 <= 0 || l.P99 > l.Max {
				t.Errorf("login latency %+v", l)
			}
		})
	})
}

// A run that loses messages must say so: the ceiling server drops pushes to
// users who are offline, so a recipient that logs out mid-run loses some.
func TestLoadgenCountsLoss(t *testing.T) {
	addr := startCeiling(t)
	cfg, err := parseLoadConfig([]string{"-addr", addr, "-pairs", "1", "-window", "4", "-duration", "300ms", "-warmup", "0s", "-drain", "300ms"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, senders, err := setupPairs(cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		r.clients[1].c.write([]byte(`{"type":"logout"}` + "\n"))
	}()
	rep := r.report(1)
	r.drive(senders, io.Discard, rep)
	lost := r.pairsLost(senders)
	if lost == 0 || rep.Delivered >= rep.Acked {
		t.Errorf("lost %d of %d acked (%d delivered): a logged-out recipient must lose some on the ceiling server", lost, rep.Acked, rep.Delivered)
	}
}
