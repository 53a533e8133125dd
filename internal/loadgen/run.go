package loadgen

import (
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// What a pairs or group run shares: the users and their sessions (the
// clients), each client sending with a window of requests in flight and
// reading replies and pushes in its own goroutine, and the measured window
// (drive).
//
// Deliveries are counted twice: to a user (the first of its sessions to get
// a message: the guarantee) and to a session (each session is live all run,
// so each should get every message). With one session per user the two
// counts are the same.

// run is the state one pairs or group run shares.
type run struct {
	cfg   config
	runID string // in every text, so an earlier run's leftovers are told apart
	epoch time.Time
	// Messages sent at or after this (ns since epoch) are in the measured
	// window's latency figures.
	measureFrom atomic.Int64
	stop        chan struct{}
	stopping    atomic.Bool

	stored, delivered, expected, stale atomic.Int64
	sessDelivered, sessExpected        atomic.Int64
	errMu                              sync.Mutex
	errs                               map[string]int64

	users   []*user
	clients []*client // every session of every user
}

func newRun(cfg config) *run {
	r := &run{cfg: cfg, epoch: time.Now(), stop: make(chan struct{}), errs: map[string]int64{}}
	r.runID = strconv.FormatInt(r.epoch.UnixNano()%1e9, 36)
	r.measureFrom.Store(1 << 62)
	return r
}

func (r *run) now() int64 { return int64(time.Since(r.epoch)) }

func (r *run) countError(code string) {
	r.errMu.Lock()
	r.errs[code]++
	r.errMu.Unlock()
}

// user is one user of a run and its sessions. A sender has one session; a
// recipient (pairs) or a member who does not send (group) has -devices, on
// devices d1..dN, the first on the user's own node and each next one on the
// node after (so with several -addr a user's sessions are on different
// nodes). Senders keep one session: a message is also pushed to the
// sender's other sessions, copies this accounting does not expect.
type user struct {
	name     string
	sessions []*client

	mu sync.Mutex // guards got
	// With several sessions: by sender, how many of them got each sequence
	// number, which tells the first session to get a message (the user's
	// delivery) and the last (the end of the fan-out).
	got map[int][]uint8
}

func (r *run) newUser(idx int, role string, node, sessions int) *user {
	u := &user{name: r.cfg.prefix + role + strconv.Itoa(idx)}
	if sessions > 1 {
		u.got = map[int][]uint8{}
	}
	for k := 0; k < sessions; k++ {
		cl := &client{run: r, user: u, idx: idx, addr: r.cfg.addrFor(node + k),
			from: map[int]*seqTracker{}, readDone: make(chan struct{}),
			storeHist: &Histogram{}, e2eHist: &Histogram{}}
		if sessions > 1 {
			cl.device = "d" + strconv.Itoa(k+1)
		}
		if r.cfg.devices > 1 {
			cl.lastHist = &Histogram{}
		}
		u.sessions = append(u.sessions, cl)
		r.clients = append(r.clients, cl)
	}
	r.users = append(r.users, u)
	return u
}

// connect logs in sessions lo to hi-1, one after the other; the first
// session registers the user.
func (u *user) connect(lo, hi int) error {
	for k := lo; k < hi; k++ {
		if err := u.sessions[k].connect(k == 0); err != nil {
			return err
		}
	}
	return nil
}

// gotMessage records that one more session of u got message seq of
// sender, and says whether that session was the first of u's to get it and
// whether it was the last. now is read under the lock, so the first
// session's time is never after the last's.
func (u *user) gotMessage(r *run, sender, seq int) (first, last bool, now int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := u.got[sender]
	for seq >= len(n) {
		n = append(n, 0)
	}
	n[seq]++
	u.got[sender] = n
	return n[seq] == 1, int(n[seq]) == len(u.sessions), r.now()
}

// client is one session of a user: a sender, a receiver or both.
type client struct {
	run    *run
	user   *user
	idx    int    // the sender number written into texts
	device string // "": no device field
	id     int64
	addr   string
	c      *conn

	// Sending. head is the request up to the text, e.g. {"type":"chat","to":7,"text":"
	head             []byte
	to               []*user
	receivers        int64 // user deliveries each stored message should make
	sessionReceivers int64 // and session deliveries
	window           chan struct{}

	// Owned by the reader goroutine until it ends.
	okd       bitset // sequence numbers the server confirmed
	storeHist *Histogram
	e2eHist   *Histogram // to the first session of the user
	lastHist  *Histogram // to the last one; only with -devices above 1
	from      map[int]*seqTracker
	readDone  chan struct{}

	ackMu sync.Mutex
	acks  []int64
	ackB  []byte
}

// setup dials and logs in every client, concurrency at a time.
func setupAll[T any](items []T, concurrency int, fn func(T) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  atomic.Int64
	)
	for w := 0; w < concurrency && w < len(items); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(items) {
					return
				}
				if err := fn(items[i]); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

func (cl *client) connect(register bool) error {
	c, err := dial(cl.addr, cl.run.cfg.tls, 16<<10, 16<<10)
	if err != nil {
		return err
	}
	cl.c = c
	id, err := c.loginDevice(cl.user.name, cl.run.cfg.password, cl.device, register)
	if err != nil {
		c.nc.Close()
		return err
	}
	cl.id = id
	return nil
}

// sendTo makes cl send to the users to with requests that start with head.
func (cl *client) sendTo(head string, to []*user) {
	cl.head, cl.to = []byte(head), to
	cl.receivers, cl.sessionReceivers = int64(len(to)), 0
	for _, u := range to {
		cl.sessionReceivers += int64(len(u.sessions))
	}
	cl.window = make(chan struct{}, cl.run.cfg.window)
}

// sendLoop keeps the window full (or, with -rate, sends on a schedule)
// until the run stops. It writes every frame it may send at once in one
// write, as a pipelining client would.
func (cl *client) sendLoop(interval time.Duration) {
	r := cl.run
	buf := make([]byte, 0, 32<<10)
	seq := 0
	next := r.now()
	due := time.NewTimer(0)
	defer due.Stop()
	for {
		if interval > 0 {
			if wait := time.Duration(next - r.now()); wait > 0 {
				due.Reset(wait)
				select {
				case <-r.stop:
					return
				case <-due.C:
				}
			}
		}
		select {
		case <-r.stop:
			return
		case cl.window <- struct{}{}:
		}
		n := 1
		if interval == 0 {
		more:
			for n < 64 {
				select {
				case cl.window <- struct{}{}:
					n++
				default:
					break more
				}
			}
		}
		buf = buf[:0]
		for i := 0; i < n; i++ {
			seq++
			sent := r.now()
			if interval > 0 {
				// Latency counts from when the message was due, so a server
				// that falls behind the schedule is not flattered by it.
				sent = next
				next += int64(interval)
			}
			buf = append(buf, cl.head...)
			buf = appendText(buf, r.runID, cl.idx, seq, sent, r.cfg.size)
			buf = append(buf, `","rid":`...)
			buf = strconv.AppendInt(buf, int64(seq), 10)
			if r.cfg.cid {
				buf = append(buf, `,"cid":"`...)
				buf = append(buf, r.runID...)
				buf = append(buf, '.')
				buf = strconv.AppendInt(buf, int64(cl.idx), 10)
				buf = append(buf, '.')
				buf = strconv.AppendInt(buf, int64(seq), 10)
				buf = append(buf, '"')
			}
			buf = append(buf, "}\n"...)
		}
		if err := cl.c.write(buf); err != nil {
			return // the reader reports the connection's end
		}
	}
}

// readLoop handles replies and pushes until the connection closes.
func (cl *client) readLoop() {
	defer close(cl.readDone)
	r := cl.run
	var f frame
	for {
		line, err := cl.c.readLine()
		if err != nil {
			if !r.stopping.Load() {
				r.countError("connection_lost")
			}
			return
		}
		if scanFrame(line, &f) != nil {
			r.countError("unreadable_frame")
			continue
		}
		switch string(f.typ) {
		case "message":
			cl.onMessage(&f)
		case "chat", "group_chat":
			if f.hasRid {
				cl.onReply(&f)
			}
		case "kicked", "shutdown", "error":
			r.countError(string(f.typ))
		}
	}
}

func (cl *client) onReply(f *frame) {
	r := cl.run
	now := r.now()
	<-cl.window
	if !f.ok {
		r.countError(string(f.code))
		return
	}
	t, ok := parseText(f.text)
	if !ok || int64(t.seq) != f.rid {
		r.countError("reply_mismatch")
		return
	}
	cl.okd.add(t.seq)
	r.stored.Add(1)
	r.expected.Add(cl.receivers)
	r.sessExpected.Add(cl.sessionReceivers)
	if t.sentNs >= r.measureFrom.Load() {
		cl.storeHist.Record(time.Duration(now - t.sentNs))
	}
}

func (cl *client) onMessage(f *frame) {
	r := cl.run
	now := r.now()
	t, ok := parseText(f.text)
	if ok && string(t.run) == r.runID {
		tr := cl.from[t.sender]
		if tr == nil {
			tr = &seqTracker{}
			cl.from[t.sender] = tr
		}
		if tr.see(t.seq, f.backlog) {
			cl.delivered(&t, now)
		}
	} else {
		r.stale.Add(1)
	}
	cl.ackMu.Lock()
	cl.acks = append(cl.acks, f.msgID)
	full := len(cl.acks) >= 512
	cl.ackMu.Unlock()
	if full {
		cl.flushAcks()
	}
}

// delivered accounts for a message this session got for the first time: a
// delivery to the session, and to the user when it is the user's first
// session to get it.
func (cl *client) delivered(t *text, now int64) {
	r := cl.run
	first, last := true, true
	if u := cl.user; len(u.sessions) > 1 {
		first, last, now = u.gotMessage(r, t.sender, t.seq)
	}
	r.sessDelivered.Add(1)
	if first {
		r.delivered.Add(1)
	}
	if t.sentNs < r.measureFrom.Load() {
		return
	}
	if first {
		cl.e2eHist.Record(time.Duration(now - t.sentNs))
	}
	if last && cl.lastHist != nil {
		cl.lastHist.Record(time.Duration(now - t.sentNs))
	}
}

func (cl *client) flushAcks() {
	cl.ackMu.Lock()
	defer cl.ackMu.Unlock()
	if len(cl.acks) == 0 {
		return
	}
	b := append(cl.ackB[:0], `{"type":"ack","ids":[`...)
	for i, id := range cl.acks {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	b = append(b, "]}\n"...)
	cl.acks, cl.ackB = cl.acks[:0], b
	cl.c.write(b)
}

// lostAt counts, of the messages the server confirmed to cl, those no
// session of u got (lost: the guarantee broken), and the deliveries the
// sessions of u missed (each session is live all run, so each should get
// every one). Call it after the run, when the readers are done.
func (cl *client) lostAt(u *user) (lost, missed int64) {
	var union bitset
	for _, s := range u.sessions {
		var seen bitset
		if t := s.from[cl.idx]; t != nil {
			seen = t.seen
		}
		missed += int64(seen.missing(cl.okd))
		union.or(seen)
	}
	return int64(union.missing(cl.okd)), missed
}

// drive runs the measured part of a pairs or group run: warm-up, the
// measured window, then the drain, and fills in the report.
func (r *run) drive(senders []*client, progress io.Writer, rep *Report) {
	cfg := r.cfg
	for _, cl := range r.clients {
		go cl.readLoop()
	}
	ackTick := time.NewTicker(cfg.ackDelay)
	ackDone := make(chan struct{})
	go func() {
		defer close(ackDone)
		for {
			select {
			case <-ackTick.C:
				for _, cl := range r.clients {
					cl.flushAcks()
				}
			case <-r.stop:
				return
			}
		}
	}()
	var interval time.Duration
	if cfg.rate > 0 {
		interval = time.Duration(float64(len(senders)) / cfg.rate * float64(time.Second))
	}
	var sendWG sync.WaitGroup
	for _, cl := range senders {
		sendWG.Add(1)
		go func() {
			defer sendWG.Done()
			cl.sendLoop(interval)
		}()
	}
	stopProgress := r.progress(progress, senders)

	time.Sleep(cfg.warmup)
	m := &meter{pids: cfg.pids}
	m.begin()
	r.measureFrom.Store(r.now())
	stored0, delivered0, sess0 := r.stored.Load(), r.delivered.Load(), r.sessDelivered.Load()
	time.Sleep(cfg.duration)
	stored1, delivered1, sess1 := r.stored.Load(), r.delivered.Load(), r.sessDelivered.Load()
	m.end()
	close(r.stop)
	sendWG.Wait()
	ackTick.Stop()
	<-ackDone

	// Drain: every request answered, every confirmed message delivered.
	deadline := time.Now().Add(cfg.drain)
	for time.Now().Before(deadline) {
		inflight := 0
		for _, cl := range senders {
			inflight += len(cl.window)
		}
		if inflight == 0 && r.delivered.Load() >= r.expected.Load() && r.sessDelivered.Load() >= r.sessExpected.Load() {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, cl := range r.clients {
		cl.flushAcks()
	}
	stopProgress()
	r.stopping.Store(true)
	for _, cl := range r.clients {
		cl.c.nc.Close()
	}
	for _, cl := range r.clients {
		<-cl.readDone
	}

	rep.Stored, rep.Delivered = stored1-stored0, delivered1-delivered0
	rep.SessionDeliveries = sess1 - sess0
	// The server's cost per delivery is per push, that is per session.
	m.fill(rep, rep.Stored, rep.SessionDeliveries)
	rep.StoredPerS = float64(rep.Stored) / rep.Seconds
	rep.DeliverPerS = float64(rep.Delivered) / rep.Seconds
	rep.SessionDeliverPerS = float64(rep.SessionDeliveries) / rep.Seconds
	var store, e2e, last Histogram
	for _, cl := range r.clients {
		store.merge(cl.storeHist)
		e2e.merge(cl.e2eHist)
		if cl.lastHist != nil {
			last.merge(cl.lastHist)
		}
		for _, t := range cl.from {
			rep.Dup += int64(t.dup)
			rep.Again += int64(t.again)
			rep.OutOfOrder += int64(t.ooo)
		}
	}
	ss, es := store.Summary(), e2e.Summary()
	rep.StoreLatency, rep.E2ELatency = &ss, &es
	if cfg.devices > 1 {
		ls := last.Summary()
		rep.E2ELastLatency = &ls
	}
	rep.Acked, rep.Expected, rep.Stale = r.stored.Load(), r.expected.Load(), r.stale.Load()
	rep.DeliveredTotal = r.delivered.Load()
	rep.SessionExpected, rep.SessionDeliveriesTotal = r.sessExpected.Load(), r.sessDelivered.Load()
	for _, s := range senders {
		for _, u := range s.to {
			lost, missed := s.lostAt(u)
			rep.Lost += lost
			rep.SessionMissed += missed
		}
	}
	rep.Errors = r.errs
}

// progress prints a line a second until the returned func is called.
func (r *run) progress(w io.Writer, senders []*client) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		lastS, lastD, lastSD, start := r.stored.Load(), r.delivered.Load(), r.sessDelivered.Load(), time.Now()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			s, d, sd := r.stored.Load(), r.delivered.Load(), r.sessDelivered.Load()
			inflight := 0
			for _, cl := range senders {
				inflight += len(cl.window)
			}
			r.errMu.Lock()
			nerr := int64(0)
			for _, n := range r.errs {
				nerr += n
			}
			r.errMu.Unlock()
			sessions := ""
			if r.cfg.devices > 1 {
				sessions = fmt.Sprintf("  to sessions %8d/s  pending %7d", sd-lastSD, r.sessExpected.Load()-sd)
			}
			fmt.Fprintf(w, "[%4.0fs] stored %8d/s  delivered %8d/s  in flight %5d  pending deliveries %7d%s  errors %d\n",
				time.Since(start).Seconds(), s-lastS, d-lastD, inflight, r.expected.Load()-d, sessions, nerr)
			lastS, lastD, lastSD = s, d, sd
		}
	}()
	return func() { close(done); <-finished }
}

func (r *run) report(senders int) *Report {
	return &Report{Scenario: r.cfg.scenario, Addrs: r.cfg.addrs, Transport: transportOf(r.cfg.addrs), Clients: len(r.clients), Senders: senders,
		Users: len(r.users), Devices: r.cfg.devices, Window: r.cfg.window, Size: r.cfg.size, RateTarget: r.cfg.rate}
}

func (r *run) closeAll() {
	for _, cl := range r.clients {
		if cl.c != nil {
			cl.c.nc.Close()
		}
	}
}
