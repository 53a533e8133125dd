package client

import (
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"time"
	"unicode/utf8"

	"chat/internal/wire"
)

// The core: the session state, the requests and their replies, the pushes,
// the acks. One goroutine runs loop and owns every field (see client.go).

// outKind is what an output line is, for colour and alerts.
type outKind uint8

const (
	outOK     outKind = iota // a successful reply
	outError                 // a failed reply or command
	outNew                   // a new message, pushed live
	outAway                  // a message sent while the user was away
	outNotice                // presence, groups, connection state
	outInfo                  // help, history lines
)

// output is where the core's lines go: a terminal or plain lines (term.go).
// A line may hold a message over several lines: its further lines start
// with "\n" + contPrefix (format.go).
type output interface {
	print(kind outKind, line string)
	setPrompt(p string)
	setUser(name string) // logged in as name; "" when logged out
	setStatus(s string)  // who is typing ("" for no one), shown before the prompt
}

// input is one line of input, parsed; eof marks the end of input.
type input struct {
	cmd  *command // nil for a blank line
	args args
	err  error
	eof  bool
}

// seenSet is the set of message ids already shown, bounded: the oldest
// ids are forgotten first.
type seenSet struct {
	ids  map[int64]struct{}
	ring []int64
	next int
}

const seenMax = 10000

// add reports whether id is new, remembering it.
func (s *seenSet) add(id int64) bool {
	if s.ids == nil {
		s.ids = make(map[int64]struct{}, 256)
		s.ring = make([]int64, seenMax)
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

// creds is what the user logged in with, kept in memory to log in again
// after a reconnect. Never written anywhere.
type creds struct {
	target   ref
	password string
}

// userOp is one user command in progress.
type userOp struct {
	cmd       *command // its table entry; cmd.name names it in error lines
	done      bool
	resolving bool // looking a name up: input waits
}

// request is one request: sent, or waiting to be sent.
type request struct {
	rid     int64
	typ     string
	fields  map[string]any
	op      *userOp // the user command it serves; nil for pings, acks, relogins
	retry   bool    // send again after a reconnect (with the same cid)
	sentAt  time.Time
	onReply func(f *frame)
	local   func() // not a request: output to print in turn (see local), or a command's check (inTurn, with op)
}

// core is the client: one goroutine runs loop and owns every field.
type core struct {
	cfg   config
	out   output
	names *names

	// who I am
	me      *wire.User // logged in as; nil when not
	creds   *creds     // for the relogin; nil when not logged in
	loginAt int64      // ms: messages older than the login were sent while away
	open    *ref       // the open conversation (ID set), or nil
	seen    seenSet
	acks    []int64 // shown, not yet acked
	ackDue  <-chan time.Time
	cidBase string
	cidN    int64
	missed  int // messages shown since the login that were sent while away (for synced)

	// read marks and typing notices (read.go, typing.go)
	reads     readState
	readDue   <-chan time.Time
	typing    typingState
	typingDue <-chan time.Time
	keys      <-chan string // the line being typed, from the terminal; nil in plain mode
	hold      holdState     // push lines waiting for a name (hold.go)

	// the connection
	conn      *conn // nil while disconnected
	gen       int
	events    chan connEvent
	dials     chan net.Conn // nil for a failed attempt
	dialing   bool
	redial    <-chan time.Time
	backoff   time.Duration
	downSince time.Time
	kicked    bool
	closedWhy string // why the server closed the session, when kicked: for the commands it fails
	relogging bool   // a relogin is in flight: other requests wait for it
	rid       int64
	inflight  map[int64]*request
	queue     []*request

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

// ackBatch is the most ids one ack carries (the server takes up to
// wire.MaxAckIDs).
const ackBatch = min(1000, wire.MaxAckIDs)

func newCore(cfg config, out output) *core {
	var b [6]byte
	crand.Read(b[:])
	return &core{
		cfg:      cfg,
		out:      out,
		names:    newNames(cfg.loc),
		events:   make(chan connEvent, 256),
		dials:    make(chan net.Conn, 1),
		inflight: map[int64]*request{},
		cidBase:  hex.EncodeToString(b[:]),
		done:     make(chan struct{}),
	}
}

// connect makes the first connection; its failure ends the client.
func (c *core) connect() error {
	nc, err := dialServer(c.cfg.addr, c.cfg.tls, c.cfg.dialTimeout)
	if err != nil {
		return err
	}
	c.attach(nc)
	return nil
}

func (c *core) attach(nc net.Conn) {
	c.gen++
	c.conn = newConn(nc, c.gen)
	c.lastRecv, c.lastSend = time.Now(), time.Now()
	go c.conn.readLoop(c.events, c.done, c.cfg.readIdle)
	go c.conn.writeLoop()
}

func (c *core) print(kind outKind, format string, args ...any) {
	c.out.print(kind, fmt.Sprintf(format, args...))
}

// loop runs the client until the end of input (or /quit) and every reply;
// it returns the exit status.
func (c *core) loop(inputs <-chan input) int {
	defer close(c.done)
	defer func() {
		if c.conn != nil {
			c.conn.close()
		}
	}()
	tick := time.NewTicker(c.cfg.pingEvery / 5)
	defer tick.Stop()
	var check <-chan time.Time
	for {
		in := inputs
		if c.inputEOF || c.quitting || c.resolving > 0 || len(c.queue)+len(c.inflight) >= maxInflight {
			in = nil
		}
		select {
		case ev, ok := <-in:
			if !ok || ev.eof {
				c.inputEOF = true
			} else if ev.err != nil {
				line := "error: " + ev.err.Error()
				if ue, ok := ev.err.(*usageError); ok && ue.cmd != "" {
					line = "error " + ue.cmd + ": " + ue.hint
				}
				c.local(func() {
					c.out.print(outError, line)
					c.failed = true
				})
			} else {
				c.dispatch(ev.cmd, ev.args)
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
		case <-c.readDue:
			c.readDue = nil
			c.flushReads()
		case <-c.typingDue:
			c.showTyping(time.Now())
		case line := <-c.keys:
			c.typed(line, time.Now())
		case now := <-tick.C:
			if c.conn != nil && now.Sub(c.lastSend) >= c.cfg.pingEvery {
				c.submitFront(&request{typ: "ping", onReply: func(*frame) {}})
			}
		case <-check:
		}
		exit, wait := c.exitReady(time.Now())
		if exit {
			c.releaseHeld()
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
func (c *core) exitReady(now time.Time) (bool, time.Duration) {
	if !c.inputEOF && !c.quitting {
		return false, 0
	}
	if c.drainStart.IsZero() {
		c.drainStart = now
	}
	drained := now.Sub(c.drainStart)
	if !c.cfg.plain && drained > 2*time.Second {
		return true, 0 // interactive: do not hold the user back
	}
	if c.busy > 0 || c.queuedLocal() {
		return false, time.Second
	}
	if c.cfg.plain && c.conn != nil {
		quiet := now.Sub(c.lastRecv)
		if quiet < c.cfg.settle && drained < 5*time.Second {
			return false, c.cfg.settle - quiet
		}
	}
	if len(c.acks) > 0 && c.conn != nil && !c.relogging && c.me != nil {
		c.flushAcks()
	}
	if len(c.reads.pending) > 0 && c.conn != nil && !c.relogging && c.me != nil {
		c.flushReads()
	}
	for _, r := range c.inflight {
		if (r.typ == "ack" || r.typ == "read") && drained < 8*time.Second {
			return false, 200 * time.Millisecond
		}
	}
	if len(c.hold.pending) > 0 && c.conn != nil && drained < 8*time.Second {
		return false, 200 * time.Millisecond // push lines wait for a name
	}
	return true, 0
}

// --- user commands ---

// dispatch runs one parsed line: its command's function from the table
// (commands.go), with a userOp that counts the command until it finishes.
// A message text is checked here, once for every command that sends one.
func (c *core) dispatch(cmd *command, a args) {
	if cmd == nil {
		return // a blank line
	}
	op := &userOp{cmd: cmd}
	c.busy++
	if cmd.sendsText() && !c.textFits(op, a.Text) {
		return // before a name is looked up or a conversation checked
	}
	cmd.run(c, op, a)
}

// finish ends a user command; a failure makes the exit status non-zero.
func (c *core) finish(op *userOp, ok bool) {
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
func (c *core) resolved(op *userOp) {
	if op.resolving {
		op.resolving = false
		c.resolving--
	}
}

// fail ends a user command with an error line.
func (c *core) fail(op *userOp, format string, args ...any) {
	c.print(outError, "error %s: %s", op.cmd.name, fmt.Sprintf(format, args...))
	c.finish(op, false)
}

// failLocal fails a command that did not reach the server, in its turn.
func (c *core) failLocal(op *userOp, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	c.local(func() { c.fail(op, "%s", msg) })
}

// textFits checks a message text against the protocol's limit before
// anything is sent: a longer text is refused here, whole, rather than
// cut or sent for the server to refuse.
func (c *core) textFits(op *userOp, text string) bool {
	n := wireLen(text)
	if n <= wire.MaxTextBytes {
		return true
	}
	c.failLocal(op, "too long: messages are at most %d bytes, this one is %d; nothing was sent", wire.MaxTextBytes, n)
	return false
}

// wireLen is the length of s as the server counts it: its bytes once
// sent as JSON, which turns each byte that is not UTF-8 into U+FFFD.
func wireLen(s string) int {
	n := len(s)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			n += utf8.RuneLen(utf8.RuneError) - 1
		}
		i += size
	}
	return n
}

// failReply ends a user command with the server's error, explained.
func (c *core) failReply(op *userOp, f *frame) {
	c.out.print(outError, fmtError(op.cmd.name, f.Type, f.Code, f.Error))
	c.finish(op, false)
}

// --- requests ---

// request queues a request for op; onReply runs with its reply.
//
// This is where the table's login flag is checked, once for every command:
// when the command needs a login and the client knows that this connection
// is logged out, the request is answered here as the server would answer
// it (not_logged_in), without a round trip. The check sits here rather
// than before the command runs so that the command's own checks (no open
// conversation, an unknown group name) come first, as they always have.
func (c *core) request(op *userOp, typ string, fields map[string]any, retry bool, onReply func(f *frame)) {
	if op.cmd.login && c.loggedOut() {
		c.local(func() {
			c.out.print(outError, fmtError(op.cmd.name, typ, wire.CodeNotLoggedIn, ""))
			c.finish(op, false)
		})
		return
	}
	c.submit(&request{typ: typ, fields: fields, op: op, retry: retry, onReply: onReply})
}

// loggedOut reports whether the server would certainly answer a request
// not_logged_in: connected, not logged in, and no login on its way. After
// a kick the next command connects again and the server answers.
func (c *core) loggedOut() bool {
	if c.me != nil || c.conn == nil || c.kicked || c.relogging || c.loginQueued(true) {
		return false
	}
	for _, r := range c.inflight {
		if r.typ == "login" {
			return false
		}
	}
	return true
}

func (c *core) submit(r *request) {
	c.queue = append(c.queue, r)
	c.ensureConnected()
	c.pump()
}

// submitFront queues r before everything else and sends what it can:
// pings, and the login of an inTurn function, whose turn it is.
func (c *core) submitFront(r *request) {
	c.queue = append([]*request{r}, c.queue...)
	c.ensureConnected()
	c.pump()
}

// ready reports whether queued requests may be sent now.
func (c *core) ready() bool { return c.conn != nil && !c.relogging }

func (c *core) pump() {
	for len(c.queue) > 0 {
		r := c.queue[0]
		if r.local != nil {
			if len(c.inflight) > 0 {
				break // its turn comes once what was sent before it is answered
			}
		} else if !c.ready() || len(c.inflight) >= maxInflight {
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

// inTurn runs fn once every request sent or queued before it is answered,
// in both modes, so that fn sees the state their replies leave (a /login
// after a /logout sees the logout done). Meanwhile fn waits in the queue
// as a local entry for op, of type typ (loggedOut looks for a "login"
// there); if the queue is failed meanwhile (failQueue), op fails instead.
func (c *core) inTurn(op *userOp, typ string, fn func()) {
	if len(c.queue) == 0 && len(c.inflight) == 0 {
		fn()
		return
	}
	c.queue = append(c.queue, &request{typ: typ, op: op, local: fn})
}

// local runs fn, which prints a command's result made without the server,
// in its turn: in plain mode after the replies to what was sent before, so
// that the output keeps the order of the input.
func (c *core) local(fn func()) {
	if !c.cfg.plain || (len(c.queue) == 0 && len(c.inflight) == 0) {
		fn()
		return
	}
	c.queue = append(c.queue, &request{local: fn})
}

func (c *core) write(r *request) {
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

func (c *core) nextCID() string {
	c.cidN++
	return c.cidBase + "-" + strconv.FormatInt(c.cidN, 10)
}

// --- frames ---
