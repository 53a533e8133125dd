package loadgen

import (
	"bufio"
	"net"
	"strconv"
	"testing"
	"time"
)

// A recipient with two sessions, fed by hand over pipes: the user's
// delivery is the first session's, the fan-out ends with the last one,
// a session that misses a message is counted apart from a message its
// user never got, and pushes the load generator does not know (synced,
// and any later version's) are passed over.
func TestSessionsOfAUser(t *testing.T) {
	cfg := config{addrs: []string{"a:1", "b:2"}, prefix: "t", devices: 2, window: 4, size: minTextSize}
	r := newRun(cfg)
	r.measureFrom.Store(0)
	s := r.newUser(0, "s", 0, 1).sessions[0]
	u := r.newUser(0, "r", 1, cfg.devices)
	if s.device != "" || s.addr != "a:1" {
		t.Errorf("sender: device %q on %s, want none on a:1", s.device, s.addr)
	}
	for k, want := range []struct{ device, addr string }{{"d1", "b:2"}, {"d2", "a:1"}} {
		if cl := u.sessions[k]; cl.device != want.device || cl.addr != want.addr || cl.user != u {
			t.Errorf("session %d: %s device %q on %s, want %s %q on %s", k, cl.user.name, cl.device, cl.addr, u.name, want.device, want.addr)
		}
	}
	s.sendTo(`{"type":"chat","to":2,"text":"`, []*user{u})
	if s.receivers != 1 || s.sessionReceivers != 2 {
		t.Fatalf("receivers %d, session receivers %d; want 1 and 2", s.receivers, s.sessionReceivers)
	}
	// The server confirmed 1 to 4; d1 gets 1 to 3, d2 gets 1 and 3.
	for seq := 1; seq <= 4; seq++ {
		s.okd.add(seq)
		r.expected.Add(s.receivers)
		r.sessExpected.Add(s.sessionReceivers)
	}
	msg := func(seq int) string {
		text := appendText(nil, r.runID, s.idx, seq, r.now(), cfg.size)
		return `{"type":"message","message":{"id":` + strconv.Itoa(100+seq) + `,"from":1,"to":2,"text":"` + string(text) + `","ts":1}}` + "\n"
	}
	feeds := [][]string{
		{`{"type":"synced"}` + "\n", msg(1), `{"type":"from_the_future","x":{"y":[1,{"z":"w"}]}}` + "\n", msg(2), msg(3)},
		{msg(1), `{"type":"synced"}` + "\n", msg(3)},
	}
	for k, cl := range u.sessions {
		a, b := net.Pipe()
		cl.c = &conn{nc: a, r: bufio.NewReader(a), w: bufio.NewWriter(a)}
		go cl.readLoop()
		for _, line := range feeds[k] {
			b.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := b.Write([]byte(line)); err != nil {
				t.Fatal(err)
			}
		}
		// A pipe's write returns once the reader has the line: every line
		// is handled when the reader sees the end.
		r.stopping.Store(true)
		b.Close()
		<-cl.readDone
	}
	if len(r.errs) != 0 || r.stale.Load() != 0 {
		t.Errorf("errors %v, stale %d: unknown pushes must be passed over", r.errs, r.stale.Load())
	}
	if d, sd := r.delivered.Load(), r.sessDelivered.Load(); d != 3 || sd != 5 {
		t.Errorf("delivered %d to the user and %d to sessions, want 3 and 5", d, sd)
	}
	lost, missed := s.lostAt(u)
	if lost != 1 || missed != 3 {
		t.Errorf("lost %d, missed %d; want 1 (4 reached no session) and 3 (d1 missed 4, d2 2 and 4)", lost, missed)
	}
	var first, last Histogram
	for _, cl := range u.sessions {
		first.merge(cl.e2eHist)
		last.merge(cl.lastHist)
		if cl.from[s.idx].dup != 0 || cl.from[s.idx].ooo != 0 {
			t.Errorf("%s: %+v", cl.device, cl.from[s.idx])
		}
	}
	// First: 1, 2, 3 (d1 had each first); last: 1 and 3, which both got.
	if first.n != 3 || last.n != 2 || last.max < first.min {
		t.Errorf("first %d, last %d latencies recorded (want 3 and 2), first min %v, last max %v", first.n, last.n, first.min, last.max)
	}
	if got := len(u.sessions[0].acks) + len(u.sessions[1].acks); got != 5 {
		t.Errorf("%d acks queued, want 5: each session acks what it got", got)
	}
}

// With one session, a user's accounting is the session's: no fan-out
// table, no last-session latency, and no device in the login.
func TestOneSessionAUser(t *testing.T) {
	cfg := config{addrs: []string{"a:1"}, prefix: "t", devices: 1, window: 4, size: minTextSize}
	r := newRun(cfg)
	u := r.newUser(3, "r", 0, cfg.devices)
	if cl := u.sessions[0]; len(u.sessions) != 1 || cl.device != "" || cl.lastHist != nil || u.got != nil {
		t.Errorf("sessions %d, device %q, last histogram %v, fan-out table %v", len(u.sessions), cl.device, cl.lastHist, u.got)
	}
	cl := u.sessions[0]
	cl.delivered(&text{sender: 1, seq: 1, sentNs: r.now()}, r.now())
	if r.delivered.Load() != 1 || r.sessDelivered.Load() != 1 {
		t.Errorf("delivered %d, to sessions %d; want 1 and 1", r.delivered.Load(), r.sessDelivered.Load())
	}
}
