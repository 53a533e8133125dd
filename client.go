package main

import (
	"bufio"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"
)

// The chat client's core. Goroutines:
//
//   - the core (clCore.loop, on runClient's goroutine) owns every piece of
//     state below: the session, the requests in flight, the queue, the
//     connection pointer. Nothing else touches them, so there are no locks.
//   - per connection, a reader (decodes frames, hands them to the core) and
//     a writer (drains a buffered channel, flushes when it runs empty).
//   - the input goroutine (client_term.go) reads and parses lines and hands
//     commands to the core.
//   - a dialer goroutine per reconnect attempt.
//
// The core never blocks on the network: writes go to the writer's channel,
// and a full channel (which the in-flight bound makes impossible short of a
// stuck server) closes the connection.

// clOptions are the client's settings; tests shorten the timings.
type clOptions struct {
	addr        string
	plain       bool           // no terminal: no prompt, no colour, exit at end of input
	loc         *time.Location // for times; nil: local
	pingEvery   time.Duration  // ping when nothing was sent for this long
	readIdle    time.Duration  // a connection silent this long is dead
	ackDelay    time.Duration  // batch acks for this long
	settle      time.Duration  // plain mode, at the end: wait for this much quiet (the login backlog)
	backoffMin  time.Duration  // first reconnect delay
	backoffMax  time.Duration  // longest reconnect delay
	giveUp      time.Duration  // plain mode, at the end of input: stop reconnecting after this long
	dialTimeout time.Duration
}

func defaultClOptions(addr string) clOptions {
	return clOptions{
		addr:        addr,
		pingEvery:   25 * time.Second,
		readIdle:    70 * time.Second,
		ackDelay:    100 * time.Millisecond,
		settle:      300 * time.Millisecond,
		backoffMin:  200 * time.Millisecond,
		backoffMax:  10 * time.Second,
		giveUp:      2 * time.Minute,
		dialTimeout: 5 * time.Second,
	}
}

// clOutKind is what an output line is, for colour and alerts.
type clOutKind uint8

const (
	clOutOK     clOutKind = iota // a successful reply
	clOutError                   // a failed reply or command
	clOutNew                     // a new message, pushed live
	clOutAway                    // a message sent while the user was away
	clOutNotice                  // presence, groups, connection state
	clOutInfo                    // help, history lines
)

// clUI is where the core's output goes.
type clUI interface {
	print(kind clOutKind, line string)
	setPrompt(p string)
}

// clInput is one line of input, parsed; eof marks the end of input.
type clInput struct {
	cmd clCmd
	err error
	eof bool
}

// --- connection ---

// clConn is one TCP connection to the server.
type clConn struct {
	nc     net.Conn
	gen    int         // which connection this is, to drop stale events
	out    chan []byte // to the writer; never closed
	closed chan struct{}
	once   sync.Once
}

// clConnEvent is a frame from a connection, or its end (err set).
type clConnEvent struct {
	gen int
	f   *clFrame
	err error
}

const (
	clMaxInflight  = 256  // requests sent and not yet answered
	clWriteQueue   = 1024 // frames waiting for the writer; > clMaxInflight + acks + pings
	clWriteTimeout = 15 * time.Second
)

func newClConn(nc net.Conn, gen int) *clConn {
	return &clConn{nc: nc, gen: gen, out: make(chan []byte, clWriteQueue), closed: make(chan struct{})}
}

// close is safe to call twice and from any goroutine.
func (c *clConn) close() {
	c.once.Do(func() {
		close(c.closed)
		c.nc.Close()
	})
}

// send queues a frame without blocking; a full queue closes the connection.
func (c *clConn) send(b []byte) {
	select {
	case c.out <- b:
	default:
		c.close()
	}
}

func (c *clConn) readLoop(events chan<- clConnEvent, done <-chan struct{}, idle time.Duration) {
	br := bufio.NewReaderSize(c.nc, 64<<10)
	emit := func(ev clConnEvent) bool {
		select {
		case events <- ev:
			return true
		case <-done:
			return false
		}
	}
	for {
		c.nc.SetReadDeadline(time.Now().Add(idle))
		line, err := br.ReadBytes('\n')
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				select {
				case <-c.closed:
					err = errors.New("connection closed")
				default:
				}
			}
			emit(clConnEvent{gen: c.gen, err: err})
			c.close()
			return
		}
		f, derr := clDecodeFrame(line)
		if derr != nil {
			continue // not a frame we can read: ignore it, as unknown pushes
		}
		if !emit(clConnEvent{gen: c.gen, f: f}) {
			return
		}
	}
}

func (c *clConn) writeLoop() {
	bw := bufio.NewWriterSize(c.nc, 32<<10)
	for {
		select {
		case b := <-c.out:
			c.nc.SetWriteDeadline(time.Now().Add(clWriteTimeout))
			if _, err := bw.Write(b); err != nil {
				c.close()
				return
			}
			if len(c.out) == 0 {
				if err := bw.Flush(); err != nil {
					c.close()
					return
				}
			}
		case <-c.closed:
			return
		}
	}
}

// --- session state ---

// clSeen is the set of message ids already shown, bounded: the oldest ids
// are forgotten first.
type clSeen struct {
	ids  map[int64]struct{}
	ring []int64
	next int
}

const clSeenMax = 10000

// add reports whether id is new, remembering it.
func (s *clSeen) add(id int64) bool {
	if s.ids == nil {
		s.ids = make(map[int64]struct{}, 256)
		s.ring = make([]int64, clSeenMax)
	}
	if _, ok := s.ids[id]; ok {
		return false
	}
	if old := s.ring[s.next]; old != 0 {
		delete(s.ids, old)
	}
	s.ring[s.next] = id
	s.next = (s.next + 1) % len(s.ring)
	s.ids[id] = struct{}{}
	return true
}

// clCreds is what the user logged in with, kept in memory to log in again
// after a reconnect. Never written anywhere.
type clCreds struct {
	target   clRef
	password string
}

// clOp is one user command in progress.
type clOp struct {
	what      string // the command, for error lines
	done      bool
	resolving bool // looking a name up: input waits
}

// clReq is one request: sent, or waiting to be sent.
type clReq struct {
	rid     int64
	typ     string
	fields  map[string]any
	op      *clOp // the user command it serves; nil for pings, acks, relogins
	retry   bool  // send again after a reconnect (with the same cid)
	sentAt  time.Time
	onReply func(f *clFrame)
	local   func() // not a request: output to print in turn (see local)
}

// clCore is the client: one goroutine runs loop and owns every field.
type clCore struct {
	opt   clOptions
	ui    clUI
	names *clNames

	// who I am
	me      *clUser  // logged in as; nil when not
	creds   *clCreds // for the relogin; nil when not logged in
	loginAt int64    // ms: messages older than the login were sent while away
	open    *clRef   // the open conversation (ID set), or nil
	seen    clSeen
	acks    []int64 // shown, not yet acked
	ackDue  <-chan time.Time
	cidBase string
	cidN    int64

	// the connection
	conn      *clConn // nil while disconnected
	gen       int
	events    chan clConnEvent
	dials     chan net.Conn // nil for a failed attempt
	dialing   bool
	redial    <-chan time.Time
	backoff   time.Duration
	downSince time.Time
	kicked    bool
	relogging bool // a relogin is in flight: other requests wait for it
	rid       int64
	inflight  map[int64]*clReq
	queue     []*clReq

	// progress
	busy       int // user commands not finished
	resolving  int // user commands looking something up before sending: input waits
	failed     bool
	inputEOF   bool
	quitting   bool
	drainStart time.Time
	lastRecv   time.Time
	lastSend   time.Time
	done       chan struct{} // closed when loop returns
}

func newClCore(opt clOptions, ui clUI) *clCore {
	var b [6]byte
	crand.Read(b[:])
	return &clCore{
		opt:      opt,
		ui:       ui,
		names:    newClNames(opt.loc),
		events:   make(chan clConnEvent, 256),
		dials:    make(chan net.Conn, 1),
		inflight: map[int64]*clReq{},
		cidBase:  hex.EncodeToString(b[:]),
		done:     make(chan struct{}),
	}
}

// connect makes the first connection; its failure ends the client.
func (c *clCore) connect() error {
	nc, err := net.DialTimeout("tcp", c.opt.addr, c.opt.dialTimeout)
	if err != nil {
		return err
	}
	c.attach(nc)
	return nil
}

func (c *clCore) attach(nc net.Conn) {
	c.gen++
	c.conn = newClConn(nc, c.gen)
	c.lastRecv, c.lastSend = time.Now(), time.Now()
	go c.conn.readLoop(c.events, c.done, c.opt.readIdle)
	go c.conn.writeLoop()
}

func (c *clCore) print(kind clOutKind, format string, args ...any) {
	c.ui.print(kind, fmt.Sprintf(format, args...))
}

// loop runs the client until the end of input (or /quit) and every reply;
// it returns the exit status.
func (c *clCore) loop(inputs <-chan clInput) int {
	defer close(c.done)
	defer func() {
		if c.conn != nil {
			c.conn.close()
		}
	}()
	tick := time.NewTicker(c.opt.pingEvery / 5)
	defer tick.Stop()
	var check <-chan time.Time
	for {
		in := inputs
		if c.inputEOF || c.quitting || c.resolving > 0 || len(c.queue)+len(c.inflight) >= clMaxInflight {
			in = nil
		}
		select {
		case ev, ok := <-in:
			if !ok || ev.eof {
				c.inputEOF = true
			} else if ev.err != nil {
				err := ev.err
				c.local(func() {
					c.print(clOutError, "error: %s", err)
					c.failed = true
				})
			} else {
				c.run(ev.cmd)
			}
		case ev := <-c.events:
			if ev.gen != c.gen {
				break // a connection already replaced
			}
			if ev.err != nil {
				c.lost(ev.err)
			} else {
				c.onFrame(ev.f)
			}
		case nc := <-c.dials:
			c.dialed(nc)
		case <-c.redial:
			c.redial = nil
			c.dial()
		case <-c.ackDue:
			c.ackDue = nil
			c.flushAcks()
		case now := <-tick.C:
			if c.conn != nil && now.Sub(c.lastSend) >= c.opt.pingEvery {
				c.submitFront(&clReq{typ: "ping", onReply: func(*clFrame) {}})
			}
		case <-check:
		}
		exit, wait := c.exitReady(time.Now())
		if exit {
			if c.failed {
				return 1
			}
			return 0
		}
		check = nil
		if wait > 0 {
			check = time.After(wait)
		}
	}
}

// exitReady says whether the client may exit (at the end of input or after
// /quit), or how long to wait before asking again.
func (c *clCore) exitReady(now time.Time) (bool, time.Duration) {
	if !c.inputEOF && !c.quitting {
		return false, 0
	}
	if c.drainStart.IsZero() {
		c.drainStart = now
	}
	drained := now.Sub(c.drainStart)
	if !c.opt.plain && drained > 2*time.Second {
		return true, 0 // interactive: do not hold the user back
	}
	if c.busy > 0 || c.queuedLocal() {
		return false, time.Second
	}
	if c.opt.plain && c.conn != nil {
		quiet := now.Sub(c.lastRecv)
		if quiet < c.opt.settle && drained < 5*time.Second {
			return false, c.opt.settle - quiet
		}
	}
	if len(c.acks) > 0 && c.conn != nil && !c.relogging && c.me != nil {
		c.flushAcks()
	}
	for _, r := range c.inflight {
		if r.typ == "ack" && drained < 8*time.Second {
			return false, 200 * time.Millisecond
		}
	}
	return true, 0
}

// --- requests ---

func (c *clCore) newOp(what string) *clOp {
	c.busy++
	return &clOp{what: what}
}

// finish ends a user command; a failure makes the exit status non-zero.
func (c *clCore) finish(op *clOp, ok bool) {
	if op == nil || op.done {
		return
	}
	op.done = true
	c.resolved(op)
	c.busy--
	if !ok {
		c.failed = true
	}
}

// resolved ends op's look-up phase.
func (c *clCore) resolved(op *clOp) {
	if op.resolving {
		op.resolving = false
		c.resolving--
	}
}

// fail ends a user command with an error line.
func (c *clCore) fail(op *clOp, format string, args ...any) {
	c.print(clOutError, "error %s: %s", op.what, fmt.Sprintf(format, args...))
	c.finish(op, false)
}

// failLocal fails a command that did not reach the server, in its turn.
func (c *clCore) failLocal(op *clOp, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	c.local(func() { c.fail(op, "%s", msg) })
}

// failReply ends a user command with the server's error, explained.
func (c *clCore) failReply(op *clOp, f *clFrame) {
	c.ui.print(clOutError, clFmtError(op.what, f.Type, f.Code, f.Error))
	c.finish(op, false)
}

// request queues a request for op; onReply runs with its reply.
func (c *clCore) request(op *clOp, typ string, fields map[string]any, retry bool, onReply func(f *clFrame)) {
	c.submit(&clReq{typ: typ, fields: fields, op: op, retry: retry, onReply: onReply})
}

func (c *clCore) submit(r *clReq) {
	c.queue = append(c.queue, r)
	c.ensureConnected()
	c.pump()
}

// submitFront sends r before anything queued (pings).
func (c *clCore) submitFront(r *clReq) {
	c.queue = append([]*clReq{r}, c.queue...)
	c.pump()
}

// ready reports whether queued requests may be sent now.
func (c *clCore) ready() bool { return c.conn != nil && !c.relogging }

func (c *clCore) pump() {
	for len(c.queue) > 0 {
		r := c.queue[0]
		if r.local != nil {
			if len(c.inflight) > 0 {
				break // its turn comes once what was sent before it is answered
			}
		} else if !c.ready() || len(c.inflight) >= clMaxInflight {
			break
		}
		c.queue[0] = nil
		c.queue = c.queue[1:]
		if r.local != nil {
			r.local()
		} else {
			c.write(r)
		}
	}
}

// local runs fn, which prints a command's result made without the server,
// in its turn: in plain mode after the replies to what was sent before, so
// that the output keeps the order of the input.
func (c *clCore) local(fn func()) {
	if !c.opt.plain || (len(c.queue) == 0 && len(c.inflight) == 0) {
		fn()
		return
	}
	c.queue = append(c.queue, &clReq{local: fn})
}

func (c *clCore) write(r *clReq) {
	c.rid++
	r.rid = c.rid
	r.sentAt = time.Now()
	m := make(map[string]any, len(r.fields)+2)
	for k, v := range r.fields {
		m[k] = v
	}
	m["type"], m["rid"] = r.typ, r.rid
	b, err := json.Marshal(m)
	if err != nil { // only strings and numbers go in: cannot happen
		panic(err)
	}
	c.inflight[r.rid] = r
	c.lastSend = r.sentAt
	c.conn.send(append(b, '\n'))
}

func (c *clCore) nextCID() string {
	c.cidN++
	return c.cidBase + "-" + strconv.FormatInt(c.cidN, 10)
}

// --- frames ---

func (c *clCore) onFrame(f *clFrame) {
	c.lastRecv = time.Now()
	if rid, ok := f.rid(); ok {
		if r := c.inflight[rid]; r != nil {
			delete(c.inflight, rid)
			r.onReply(f)
		}
		c.pump()
		return
	}
	if f.Type == "error" {
		// A reply whose rid the server could not read: replies come in
		// order, so it answers the oldest request in flight.
		if r := c.oldestInflight(); r != nil {
			delete(c.inflight, r.rid)
			r.onReply(f)
			c.pump()
		}
		return
	}
	c.onPush(f)
}

func (c *clCore) oldestInflight() *clReq {
	var oldest *clReq
	for _, r := range c.inflight {
		if oldest == nil || r.rid < oldest.rid {
			oldest = r
		}
	}
	return oldest
}

func (c *clCore) onPush(f *clFrame) {
	switch f.Type {
	case "message":
		if f.Message != nil {
			c.onMessage(f.Message, f.Backlog)
		}
		return
	case "presence":
		if f.User != nil {
			c.names.addUser(f.User.ID, f.User.Name)
		}
	case "friend_added":
		if f.Friend != nil {
			c.names.addUser(f.Friend.ID, f.Friend.Name)
		}
	case "member_joined", "member_left":
		if f.User != nil {
			c.names.addUser(f.User.ID, f.User.Name)
		}
	case "kicked":
		// Another login took the session. Logging in again here would
		// kick that one in turn, forever: forget the password instead.
		c.kicked = true
		c.creds = nil
		c.me = nil
		c.names.me = 0
		c.failed = true
	}
	if line := clFmtPush(c.names, f); line != "" {
		c.ui.print(clOutNotice, line)
	}
}

func (c *clCore) onMessage(m *clMessage, backlog bool) {
	c.names.addUser(m.From, m.FromName)
	if c.seen.add(m.ID) {
		kind, out := clMsgLive, clOutNew
		if backlog && m.TS < c.loginAt {
			kind, out = clMsgAway, clOutAway
		}
		c.ui.print(out, clFmtMessage(c.names, m, kind))
	}
	// Ack what was shown, duplicates too: a repeat means the server has
	// not seen the ack yet.
	c.acks = append(c.acks, m.ID)
	if len(c.acks) >= 1000 {
		c.flushAcks()
	} else if c.ackDue == nil {
		c.ackDue = time.After(c.opt.ackDelay)
	}
}

func (c *clCore) flushAcks() {
	if len(c.acks) == 0 || c.me == nil {
		return
	}
	ids := c.acks
	c.acks = nil
	c.submit(&clReq{typ: "ack", fields: map[string]any{"ids": ids}, retry: true, onReply: func(*clFrame) {}})
}

// --- connection loss and reconnect ---

// lost handles the end of the connection: requests in flight that are safe
// to repeat go back to the front of the queue, in the order they were sent
// (chats keep their cid, so the server stores each once); the others fail.
func (c *clCore) lost(err error) {
	c.conn.close()
	c.conn = nil
	c.relogging = false
	reqs := make([]*clReq, 0, len(c.inflight))
	for _, r := range c.inflight {
		reqs = append(reqs, r)
	}
	sort.Slice(reqs, func(i, j int) bool { return reqs[i].rid < reqs[j].rid })
	c.inflight = map[int64]*clReq{}
	var again []*clReq
	for _, r := range reqs {
		switch {
		case c.kicked:
			if r.op != nil {
				c.fail(r.op, "not done: this session was taken over by another login")
			}
		case r.retry:
			again = append(again, r)
		case r.op != nil:
			c.fail(r.op, "the connection was lost before the server answered; it may or may not have happened")
		}
	}
	c.queue = append(again, c.queue...)
	if c.kicked {
		for _, r := range c.queue {
			if r.local != nil {
				r.local()
			} else if r.op != nil {
				c.fail(r.op, "not done: this session was taken over by another login")
			}
		}
		c.queue = nil
		c.print(clOutNotice, "disconnected: the next command connects again")
		return
	}
	c.print(clOutNotice, "connection lost (%s); reconnecting", clErrText(err))
	c.downSince = time.Now()
	c.backoff = c.opt.backoffMin
	c.redial = time.After(c.jitter(c.backoff))
}

func clErrText(err error) string {
	if errors.Is(err, io.EOF) {
		return "closed by the server"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "the server stopped answering"
	}
	return err.Error()
}

func (c *clCore) jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

// ensureConnected starts connecting when a command needs the server after
// a kick (which does not reconnect by itself).
func (c *clCore) ensureConnected() {
	if c.conn != nil || c.dialing || c.redial != nil {
		return
	}
	c.kicked = false
	c.downSince = time.Now()
	c.backoff = c.opt.backoffMin
	c.dial()
}

func (c *clCore) dial() {
	if c.dialing {
		return
	}
	c.dialing = true
	addr, timeout, dials, done := c.opt.addr, c.opt.dialTimeout, c.dials, c.done
	go func() {
		nc, err := net.DialTimeout("tcp", addr, timeout)
		if err != nil {
			nc = nil
		}
		select {
		case dials <- nc:
		case <-done:
			if nc != nil {
				nc.Close()
			}
		}
	}()
}

func (c *clCore) dialed(nc net.Conn) {
	c.dialing = false
	if nc == nil {
		if c.opt.plain && c.inputEOF && c.opt.giveUp > 0 && time.Since(c.downSince) > c.opt.giveUp {
			c.giveUp()
			return
		}
		c.backoff = min(c.backoff*2, c.opt.backoffMax)
		c.redial = time.After(c.jitter(c.backoff))
		return
	}
	c.attach(nc)
	c.print(clOutNotice, "reconnected to %s", c.opt.addr)
	if c.creds != nil && !c.loginQueued() {
		c.relogin()
	}
	c.pump()
}

func (c *clCore) queuedLocal() bool {
	for _, r := range c.queue {
		if r.local != nil {
			return true
		}
	}
	return false
}

func (c *clCore) loginQueued() bool {
	for _, r := range c.queue {
		if r.typ == "login" {
			return true
		}
	}
	return false
}

func (c *clCore) giveUp() {
	c.print(clOutError, "error: gave up reconnecting to %s after %v", c.opt.addr, c.opt.giveUp)
	for _, r := range c.queue {
		if r.local != nil {
			r.local()
		} else if r.op != nil {
			c.fail(r.op, "not sent: no connection to the server")
		}
	}
	c.queue = nil
	c.failed = true
}

// relogin logs in again with the remembered name and password; queued
// requests wait until it is answered.
func (c *clCore) relogin() {
	cr := c.creds
	c.relogging = true
	r := &clReq{typ: "login", fields: clLoginFields(cr.target, cr.password)}
	r.onReply = func(f *clFrame) {
		c.relogging = false
		if !f.OK || f.User == nil {
			c.ui.print(clOutError, clFmtError("relogin", f.Type, f.Code, f.Error))
			c.creds, c.me, c.names.me = nil, nil, 0
			c.failed = true
			return
		}
		c.loggedIn(f, r.sentAt)
		c.print(clOutNotice, "reconnected: logged in again as %s (id %d)", clClean(f.User.Name), f.User.ID)
		c.flushAcks()
	}
	c.write(r)
}

func clLoginFields(target clRef, password string) map[string]any {
	m := map[string]any{"password": password}
	if target.ID != 0 {
		m["id"] = target.ID
	} else {
		m["name"] = target.Name
	}
	return m
}

// loggedIn takes in a login reply.
func (c *clCore) loggedIn(f *clFrame, sentAt time.Time) {
	c.me = f.User
	c.names.me = f.User.ID
	c.names.addUser(f.User.ID, f.User.Name)
	c.loginAt = sentAt.UnixMilli()
	for _, u := range f.Friends {
		c.names.addUser(u.ID, u.Name)
	}
	for i := range f.Groups {
		c.names.addGroup(&f.Groups[i])
	}
}
