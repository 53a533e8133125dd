package main

import (
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// lgRun is the state one pairs or group run shares.
type lgRun struct {
	cfg   loadConfig
	runID string // in every text, so an earlier run's leftovers are told apart
	epoch time.Time
	// Messages sent at or after this (ns since epoch) are in the measured
	// window's latency figures.
	measureFrom atomic.Int64
	stop        chan struct{}
	stopping    atomic.Bool

	stored, delivered, expected, stale atomic.Int64
	errMu                              sync.Mutex
	errs                               map[string]int64

	clients []*lgClient
}

func newRun(cfg loadConfig) *lgRun {
	r := &lgRun{cfg: cfg, epoch: time.Now(), stop: make(chan struct{}), errs: map[string]int64{}}
	r.runID = strconv.FormatInt(r.epoch.UnixNano()%1e9, 36)
	r.measureFrom.Store(1 << 62)
	return r
}

func (r *lgRun) now() int64 { return int64(time.Since(r.epoch)) }

func (r *lgRun) countError(code string) {
	r.errMu.Lock()
	r.errs[code]++
	r.errMu.Unlock()
}

// lgClient is one logged-in user of a run: a sender, a receiver or both.
type lgClient struct {
	run  *lgRun
	idx  int // the sender number written into texts
	name string
	id   int64
	addr string
	c    *lgConn

	// Sending. frame is the request up to the text, e.g. {"type":"chat","to":7,"text":"
	frame     []byte
	receivers int64 // deliveries each stored message should make
	window    chan struct{}

	// Owned by the reader goroutine until it ends.
	okd       bitset // sequence numbers the server confirmed
	storeHist *latencyHist
	e2eHist   *latencyHist
	from      map[int]*seqTracker
	readDone  chan struct{}

	ackMu sync.Mutex
	acks  []int64
	ackB  []byte
}

func (r *lgRun) newClient(idx int, role string, addr string) *lgClient {
	return &lgClient{run: r, idx: idx, name: r.cfg.prefix + role + strconv.Itoa(idx), addr: addr,
		from: map[int]*seqTracker{}, readDone: make(chan struct{}),
		storeHist: &latencyHist{}, e2eHist: &latencyHist{}}
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

func (cl *lgClient) connect() error {
	c, err := dialLG(cl.addr, 16<<10, 16<<10)
	if err != nil {
		return err
	}
	cl.c = c
	id, err := c.login(cl.name, cl.run.cfg.password)
	if err != nil {
		c.nc.Close()
		return err
	}
	cl.id = id
	return nil
}

// sendLoop keeps the window full (or, with -rate, sends on a schedule)
// until the run stops. It writes every frame it may send at once in one
// write, as a pipelining client would.
func (cl *lgClient) sendLoop(interval time.Duration) {
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
			buf = append(buf, cl.frame...)
			buf = appendLGText(buf, r.runID, cl.idx, seq, sent, r.cfg.size)
			buf = append(buf, `","rid":`...)
			buf = appendInt(buf, int64(seq))
			if r.cfg.cid {
				buf = append(buf, `,"cid":"`...)
				buf = append(buf, r.runID...)
				buf = append(buf, '.')
				buf = appendInt(buf, int64(cl.idx))
				buf = append(buf, '.')
				buf = appendInt(buf, int64(seq))
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
func (cl *lgClient) readLoop() {
	defer close(cl.readDone)
	r := cl.run
	var f lgFrame
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

func (cl *lgClient) onReply(f *lgFrame) {
	r := cl.run
	now := r.now()
	<-cl.window
	if !f.ok {
		r.countError(string(f.code))
		return
	}
	t, ok := parseLGText(f.text)
	if !ok || int64(t.seq) != f.rid {
		r.countError("reply_mismatch")
		return
	}
	cl.okd.add(t.seq)
	r.stored.Add(1)
	r.expected.Add(cl.receivers)
	if t.sentNs >= r.measureFrom.Load() {
		cl.storeHist.record(time.Duration(now - t.sentNs))
	}
}

func (cl *lgClient) onMessage(f *lgFrame) {
	r := cl.run
	now := r.now()
	t, ok := parseLGText(f.text)
	if ok && string(t.run) == r.runID {
		tr := cl.from[t.sender]
		if tr == nil {
			tr = &seqTracker{}
			cl.from[t.sender] = tr
		}
		if tr.see(t.seq, f.backlog) {
			r.delivered.Add(1)
			if t.sentNs >= r.measureFrom.Load() {
				cl.e2eHist.record(time.Duration(now - t.sentNs))
			}
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

func (cl *lgClient) flushAcks() {
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
		b = appendInt(b, id)
	}
	b = append(b, "]}\n"...)
	cl.acks, cl.ackB = cl.acks[:0], b
	cl.c.write(b)
}

// lostAt counts the messages the server confirmed to cl that receiver
// never got. Call it after the run, when the readers are done.
func (cl *lgClient) lostAt(receiver *lgClient) int64 {
	var seen bitset
	if t := receiver.from[cl.idx]; t != nil {
		seen = t.seen
	}
	return int64(seen.missing(cl.okd))
}

// drive runs the measured part of a pairs or group run: warm-up, the
// measured window, then the drain, and fills in the report.
func (r *lgRun) drive(senders []*lgClient, progress io.Writer, rep *loadReport) {
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
	stored0, delivered0 := r.stored.Load(), r.delivered.Load()
	time.Sleep(cfg.duration)
	stored1, delivered1 := r.stored.Load(), r.delivered.Load()
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
		if inflight == 0 && r.delivered.Load() >= r.expected.Load() {
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
	m.fill(rep, rep.Stored, rep.Delivered)
	rep.StoredPerS = float64(rep.Stored) / rep.Seconds
	rep.DeliverPerS = float64(rep.Delivered) / rep.Seconds
	var store, e2e latencyHist
	for _, cl := range r.clients {
		store.merge(cl.storeHist)
		e2e.merge(cl.e2eHist)
		for _, t := range cl.from {
			rep.Dup += int64(t.dup)
			rep.OutOfOrder += int64(t.ooo)
		}
	}
	ss, es := store.summary(), e2e.summary()
	rep.StoreLatency, rep.E2ELatency = &ss, &es
	rep.Acked, rep.Expected, rep.Stale = r.stored.Load(), r.expected.Load(), r.stale.Load()
	rep.Errors = r.errs
}

// progress prints a line a second until the returned func is called.
func (r *lgRun) progress(w io.Writer, senders []*lgClient) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		lastS, lastD, start := r.stored.Load(), r.delivered.Load(), time.Now()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			s, d := r.stored.Load(), r.delivered.Load()
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
			fmt.Fprintf(w, "[%4.0fs] stored %8d/s  delivered %8d/s  in flight %5d  pending deliveries %7d  errors %d\n",
				time.Since(start).Seconds(), s-lastS, d-lastD, inflight, r.expected.Load()-d, nerr)
			lastS, lastD = s, d
		}
	}()
	return func() { close(done); <-finished }
}

func (r *lgRun) report(senders int) *loadReport {
	return &loadReport{Scenario: r.cfg.scenario, Addrs: r.cfg.addrs, Clients: len(r.clients), Senders: senders,
		Window: r.cfg.window, Size: r.cfg.size, RateTarget: r.cfg.rate}
}

func (r *lgRun) closeAll() {
	for _, cl := range r.clients {
		if cl.c != nil {
			cl.c.nc.Close()
		}
	}
}

// addrFor spreads clients over the addresses: with several, a pair's two
// ends (or a group's consecutive members) land on different nodes.
func (cfg *loadConfig) addrFor(i int) string { return cfg.addrs[i%len(cfg.addrs)] }

// runPairs: N senders, each with its own recipient.
func runPairs(cfg loadConfig, progress io.Writer) (*loadReport, error) {
	r, senders, err := setupPairs(cfg, progress)
	if err != nil {
		return nil, err
	}
	rep := r.report(len(senders))
	r.drive(senders, progress, rep)
	rep.Lost = r.pairsLost(senders)
	return rep, nil
}

// setupPairs logs every pair in; the recipient of senders[i] is
// r.clients[2*i+1].
func setupPairs(cfg loadConfig, progress io.Writer) (*lgRun, []*lgClient, error) {
	r := newRun(cfg)
	senders := make([]*lgClient, cfg.pairs)
	for i := range senders {
		s := r.newClient(i, "s", cfg.addrFor(i))
		rc := r.newClient(i, "r", cfg.addrFor(i+1))
		senders[i] = s
		r.clients = append(r.clients, s, rc)
	}
	fmt.Fprintf(progress, "setting up %d clients\n", len(r.clients))
	if err := setupAll(r.clients, cfg.concurrency, (*lgClient).connect); err != nil {
		r.closeAll()
		return nil, nil, fmt.Errorf("setup: %w", err)
	}
	for i, s := range senders {
		rc := r.clients[2*i+1]
		s.frame = []byte(`{"type":"chat","to":` + strconv.FormatInt(rc.id, 10) + `,"text":"`)
		s.receivers = 1
		s.window = make(chan struct{}, cfg.window)
	}
	return r, senders, nil
}

// pairsLost counts what every pair's recipient missed, after the run.
func (r *lgRun) pairsLost(senders []*lgClient) int64 {
	var lost int64
	for i, s := range senders {
		lost += s.lostAt(r.clients[2*i+1])
	}
	return lost
}

// runGroup: G groups of K members; the first S members of each send.
func runGroup(cfg loadConfig, progress io.Writer) (*loadReport, error) {
	r := newRun(cfg)
	groups := make([][]*lgClient, cfg.groups)
	var senders []*lgClient
	for g := range groups {
		for j := 0; j < cfg.members; j++ {
			idx := g*cfg.members + j
			cl := r.newClient(idx, "m", cfg.addrFor(idx))
			groups[g] = append(groups[g], cl)
			r.clients = append(r.clients, cl)
			if j < cfg.senders {
				senders = append(senders, cl)
			}
		}
	}
	fmt.Fprintf(progress, "setting up %d clients in %d groups\n", len(r.clients), cfg.groups)
	if err := setupAll(r.clients, cfg.concurrency, (*lgClient).connect); err != nil {
		r.closeAll()
		return nil, fmt.Errorf("setup: %w", err)
	}
	err := setupAll(groups, cfg.concurrency, func(members []*lgClient) error {
		c, err := members[0].c.call("create_group", `"name":"`+members[0].name+`"`)
		if err != nil || !c.ok {
			return fmt.Errorf("create_group: %v %s", err, c.code)
		}
		gid := strconv.FormatInt(c.groupID, 10)
		for _, m := range members[1:] {
			if j, err := m.c.call("join_group", `"group":`+gid); err != nil || !j.ok {
				return fmt.Errorf("join_group: %v %s", err, j.code)
			}
		}
		for _, m := range members[:cfg.senders] {
			m.frame = []byte(`{"type":"group_chat","group":` + gid + `,"text":"`)
			m.receivers = int64(cfg.members - 1)
			m.window = make(chan struct{}, cfg.window)
		}
		return nil
	})
	if err != nil {
		r.closeAll()
		return nil, fmt.Errorf("setup: %w", err)
	}
	rep := r.report(len(senders))
	rep.Members = cfg.members
	r.drive(senders, progress, rep)
	for _, members := range groups {
		for _, s := range members[:cfg.senders] {
			for _, m := range members {
				if m != s {
					rep.Lost += s.lostAt(m)
				}
			}
		}
	}
	return rep, nil
}

// runConns holds N idle logged-in connections and measures what they cost
// the server in memory.
func runConns(cfg loadConfig, progress io.Writer) (*loadReport, error) {
	rep := &loadReport{Scenario: "conns", Addrs: cfg.addrs, Clients: cfg.conns, Conns: cfg.conns, Errors: map[string]int64{}}
	var before procSample
	if len(cfg.pids) > 0 {
		var err error
		if before, err = readProcs(cfg.pids); err != nil {
			return nil, err
		}
		rep.ServerRSSStart = before.rss
	}
	type idle struct {
		i     int
		c     *lgConn
		pongs atomic.Int64
		done  chan struct{}
	}
	conns := make([]*idle, cfg.conns)
	for i := range conns {
		conns[i] = &idle{i: i, done: make(chan struct{})}
	}
	var stopping atomic.Bool
	var lost atomic.Int64
	closeAll := func() {
		stopping.Store(true)
		for _, ic := range conns {
			if ic.c != nil {
				ic.c.nc.Close()
			}
		}
	}
	var setupDone atomic.Int64
	start := time.Now()
	fmt.Fprintf(progress, "opening %d connections\n", cfg.conns)
	tick := time.NewTicker(time.Second)
	go func() {
		for range tick.C {
			fmt.Fprintf(progress, "[%4.0fs] %d logged in\n", time.Since(start).Seconds(), setupDone.Load())
		}
	}()
	err := setupAll(conns, cfg.concurrency, func(ic *idle) error {
		// Small buffers: the load generator holds as many connections as the server.
		c, err := dialLG(cfg.addrFor(ic.i), 4<<10, 512)
		if err != nil {
			return err
		}
		ic.c = c
		if _, err := c.login(cfg.prefix+"c"+strconv.Itoa(ic.i), cfg.password); err != nil {
			return err
		}
		setupDone.Add(1)
		go func() {
			defer close(ic.done)
			var f lgFrame
			for {
				line, err := c.readLine()
				if err != nil {
					if !stopping.Load() {
						lost.Add(1)
					}
					return
				}
				if scanFrame(line, &f) == nil && string(f.typ) == "ping" {
					ic.pongs.Add(1)
				}
			}
		}()
		return nil
	})
	tick.Stop()
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("setup after %d connections: %w", setupDone.Load(), err)
	}
	rep.SetupPerS = float64(cfg.conns) / time.Since(start).Seconds()
	time.Sleep(cfg.settle)
	m := &meter{pids: cfg.pids}
	m.begin()
	if len(cfg.pids) > 0 && m.srvErr == nil {
		rep.ServerRSSLogin = m.srv.rss
		rep.RSSPerConnLogin = (m.srv.rss - before.rss) / int64(cfg.conns)
	}
	ping := []byte(`{"type":"ping","rid":0}` + "\n")
	pingAll := func() {
		for _, ic := range conns {
			ic.c.write(ping)
		}
	}
	// Hold, pinging as the client does (every 30 s when quiet), then once
	// more at the end: every connection must still answer.
	holdEnd := time.Now().Add(cfg.duration)
	for time.Until(holdEnd) > 30*time.Second {
		time.Sleep(30 * time.Second)
		pingAll()
		fmt.Fprintf(progress, "[%4.0fs] holding %d connections, %d lost\n", time.Since(start).Seconds(), cfg.conns, lost.Load())
	}
	time.Sleep(time.Until(holdEnd))
	m.end()
	want := make([]int64, len(conns))
	for i, ic := range conns {
		want[i] = ic.pongs.Load() + 1
	}
	pingAll()
	deadline := time.Now().Add(cfg.drain)
	answered := 0
	for {
		answered = 0
		for i, ic := range conns {
			if ic.pongs.Load() >= want[i] {
				answered++
			}
		}
		if answered == len(conns) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	closeAll()
	for _, ic := range conns {
		<-ic.done
	}
	rep.ConnsLost = len(conns) - answered
	m.fill(rep, 0, 0)
	if len(cfg.pids) > 0 && m.srvErr == nil {
		// What idle connections cost is what is left once they have sat
		// idle: the garbage of logging in is collected (a GC runs at least
		// every 2 minutes) and returned to the system over time.
		rep.RSSPerConn = (m.srvEnd.rss - before.rss) / int64(cfg.conns)
	}
	return rep, nil
}

// runLogin measures register and login: each of -concurrency loops
// registers a new user, logs it in and out, on its own connection.
func runLogin(cfg loadConfig, progress io.Writer) (*loadReport, error) {
	rep := &loadReport{Scenario: "login", Addrs: cfg.addrs, Clients: cfg.concurrency, Errors: map[string]int64{}}
	type worker struct {
		i          int
		c          *lgConn
		reg, login latencyHist
		regs, ins  int64
		errs       map[string]int64
		err        error
	}
	workers := make([]*worker, cfg.concurrency)
	for i := range workers {
		c, err := dialLG(cfg.addrFor(i), 4<<10, 4<<10)
		if err != nil {
			for _, w := range workers[:i] {
				w.c.nc.Close()
			}
			return nil, err
		}
		workers[i] = &worker{i: i, c: c, errs: map[string]int64{}}
	}
	var measuring atomic.Bool
	var total atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.c.nc.Close()
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				name := cfg.prefix + "l" + strconv.Itoa(w.i) + "x" + strconv.Itoa(k)
				creds := credentials(name, cfg.password)
				t0 := time.Now()
				r, err := w.c.call("register", creds)
				t1 := time.Now()
				if err == nil && r.ok {
					r, err = w.c.call("login", creds)
				}
				t2 := time.Now()
				if err == nil && r.ok {
					r, err = w.c.call("logout", "")
				}
				if err != nil {
					w.err = err
					return
				}
				if !r.ok {
					w.errs[r.code]++
					continue
				}
				total.Add(1)
				if measuring.Load() {
					w.regs++
					w.ins++
					w.reg.record(t1.Sub(t0))
					w.login.record(t2.Sub(t1))
				}
			}
		}()
	}
	stopProgress := make(chan struct{})
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		last := int64(0)
		for {
			select {
			case <-stopProgress:
				return
			case <-t.C:
				n := total.Load()
				fmt.Fprintf(progress, "register+login %d/s\n", n-last)
				last = n
			}
		}
	}()
	time.Sleep(cfg.warmup)
	m := &meter{pids: cfg.pids}
	m.begin()
	measuring.Store(true)
	time.Sleep(cfg.duration)
	measuring.Store(false)
	m.end()
	close(stop)
	wg.Wait()
	close(stopProgress)
	var reg, login latencyHist
	for _, w := range workers {
		if w.err != nil {
			return nil, w.err
		}
		reg.merge(&w.reg)
		login.merge(&w.login)
		rep.Registers += w.regs
		rep.Logins += w.ins
		for k, v := range w.errs {
			rep.Errors[k] += v
		}
	}
	m.fill(rep, 0, 0)
	rep.RegisterPerS = float64(rep.Registers) / rep.Seconds
	rep.LoginPerS = float64(rep.Logins) / rep.Seconds
	rs, ls := reg.summary(), login.summary()
	rep.RegisterLatncy, rep.LoginLatency = &rs, &ls
	return rep, nil
}
