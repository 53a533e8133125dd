package loadgen

import (
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The four scenarios (-scenario), each returning its report.

// runPairs: N senders, each with its own recipient.
func runPairs(cfg config, progress io.Writer) (*Report, error) {
	r, senders, err := setupPairs(cfg, progress)
	if err != nil {
		return nil, err
	}
	rep := r.report(len(senders))
	r.drive(senders, progress, rep)
	return rep, nil
}

// setupPairs logs every pair in: sender i on node i, its recipient's
// sessions on the nodes from i+1 on.
func setupPairs(cfg config, progress io.Writer) (*run, []*client, error) {
	r := newRun(cfg)
	senders := make([]*client, cfg.pairs)
	recipients := make([]*user, cfg.pairs)
	for i := range senders {
		senders[i] = r.newUser(i, "s", i, 1).sessions[0]
		recipients[i] = r.newUser(i, "r", i+1, cfg.devices)
	}
	fmt.Fprintf(progress, "setting up %d clients\n", len(r.clients))
	if err := setupAll(r.users, cfg.concurrency, func(u *user) error { return u.connect(0, len(u.sessions)) }); err != nil {
		r.closeAll()
		return nil, nil, fmt.Errorf("setup: %w", err)
	}
	for i, s := range senders {
		rc := recipients[i]
		s.sendTo(`{"type":"chat","to":`+strconv.FormatInt(rc.sessions[0].id, 10)+`,"text":"`, []*user{rc})
	}
	return r, senders, nil
}

// runGroup: G groups of K members; the first S members of each send.
func runGroup(cfg config, progress io.Writer) (*Report, error) {
	r := newRun(cfg)
	groups := make([][]*user, cfg.groups)
	var senders []*client
	for g := range groups {
		for j := 0; j < cfg.members; j++ {
			idx := g*cfg.members + j
			sessions := cfg.devices
			if j < cfg.senders {
				sessions = 1
			}
			u := r.newUser(idx, "m", idx, sessions)
			groups[g] = append(groups[g], u)
			if j < cfg.senders {
				senders = append(senders, u.sessions[0])
			}
		}
	}
	fmt.Fprintf(progress, "setting up %d clients in %d groups\n", len(r.clients), cfg.groups)
	// Every member joins on its first session; its other sessions log in
	// after, as members already (a device that logs in later).
	if err := setupAll(r.users, cfg.concurrency, func(u *user) error { return u.connect(0, 1) }); err != nil {
		r.closeAll()
		return nil, fmt.Errorf("setup: %w", err)
	}
	err := setupAll(groups, cfg.concurrency, func(members []*user) error {
		first := members[0].sessions[0]
		c, err := first.c.call("create_group", `"name":"`+first.user.name+`"`)
		if err != nil || !c.ok {
			return fmt.Errorf("create_group: %v %s", err, c.code)
		}
		gid := strconv.FormatInt(c.groupID, 10)
		for _, m := range members[1:] {
			if j, err := m.sessions[0].c.call("join_group", `"group":`+gid); err != nil || !j.ok {
				return fmt.Errorf("join_group: %v %s", err, j.code)
			}
		}
		for j, m := range members[:cfg.senders] {
			others := append(append([]*user(nil), members[:j]...), members[j+1:]...)
			m.sessions[0].sendTo(`{"type":"group_chat","group":`+gid+`,"text":"`, others)
		}
		return nil
	})
	if err == nil && cfg.devices > 1 {
		err = setupAll(r.users, cfg.concurrency, func(u *user) error { return u.connect(1, len(u.sessions)) })
	}
	if err != nil {
		r.closeAll()
		return nil, fmt.Errorf("setup: %w", err)
	}
	rep := r.report(len(senders))
	rep.Members = cfg.members
	r.drive(senders, progress, rep)
	return rep, nil
}

// runConns holds N idle logged-in connections and measures what they cost
// the server in memory.
func runConns(cfg config, progress io.Writer) (*Report, error) {
	rep := &Report{Scenario: "conns", Addrs: cfg.addrs, Transport: transportOf(cfg.addrs), Clients: cfg.conns, Conns: cfg.conns, Errors: map[string]int64{}}
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
		c     *conn
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
		c, err := dial(cfg.addrFor(ic.i), cfg.tls, 4<<10, 512)
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
			var f frame
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
func runLogin(cfg config, progress io.Writer) (*Report, error) {
	rep := &Report{Scenario: "login", Addrs: cfg.addrs, Transport: transportOf(cfg.addrs), Clients: cfg.concurrency, Errors: map[string]int64{}}
	type worker struct {
		i          int
		c          *conn
		reg, login Histogram
		regs, ins  int64
		errs       map[string]int64
		err        error
	}
	workers := make([]*worker, cfg.concurrency)
	for i := range workers {
		c, err := dial(cfg.addrFor(i), cfg.tls, 4<<10, 4<<10)
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
					w.errs[string(r.code)]++
					continue
				}
				total.Add(1)
				if measuring.Load() {
					w.regs++
					w.ins++
					w.reg.Record(t1.Sub(t0))
					w.login.Record(t2.Sub(t1))
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
	var reg, login Histogram
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
	rs, ls := reg.Summary(), login.Summary()
	rep.RegisterLatency, rep.LoginLatency = &rs, &ls
	return rep, nil
}
