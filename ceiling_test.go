package main

// The ceiling server: the numbers BENCHMARKS.md compares the real server
// against. It speaks just enough of the protocol for a load generator
// (register, login, logout, ping, chat, create_group, join_group,
// group_chat, ack) and keeps everything in memory: no store, no bcrypt, no
// Redis, no backlog, no rate limit. It shares the real server's wire code
// (decodeFrame, okReply, errReply, messagePush, the field checks) and its
// connection shape (one reader and one writer goroutine per connection, the
// writer flushing only when its queue runs empty), so that what separates
// the two in a benchmark is persistence and routing, not framing.
//
// What it drops, on purpose: a message to a user who is offline is lost
// (nothing is stored, so nothing is pending or pushed at login); `cid` is
// validated but not deduplicated; a second login does not kick the first
// session, it only takes its pushes; login replies have empty friends and
// groups; there are no presence or membership pushes. Other request types
// get unknown_type. Never point a real client at it.
//
// Serve it for a load generator until SIGINT or SIGTERM (-count=1, or go
// test may replay a cached pass without serving; -v to see its address):
//
//	CHAT_CEILING_ADDR=127.0.0.1:6100 go test -count=1 -v -run TestCeilingServe -timeout 0 .
//
// Without CHAT_CEILING_ADDR, TestCeilingServe checks it over TCP. Other test
// code starts one with startCeiling(t).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"chat/internal/wire"
)

// startCeiling starts a ceiling server on 127.0.0.1:0 and returns its
// address; the test's cleanup closes the listener and every connection.
func startCeiling(t testing.TB) (addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("ceiling: listen: %v", err)
	}
	s := newCeiling(ln)
	t.Cleanup(s.close)
	return ln.Addr().String()
}

// ceiling is the in-memory server. Lock order: a ceilConn's mu, then
// ceiling.mu (login goes online under its connection's mu); never the
// other way round.
type ceiling struct {
	ln      net.Listener
	cfg     Config // the real server's defaults (frame limit, idle timeout), a deeper send queue
	wg      sync.WaitGroup
	lastMsg atomic.Int64 // message ids

	mu        sync.Mutex // guards the fields below; no I/O under it
	closed    bool
	lastUser  int64
	lastGroup int64
	names     map[string]*ceilUser
	users     map[int64]*ceilUser
	groups    map[int64]*ceilGroup
	online    map[int64]*ceilConn // user -> the connection that gets its pushes
	conns     map[*ceilConn]struct{}
}

type ceilUser struct {
	id   int64
	name string
	pass string // plaintext: a ceiling, not a store
}

type ceilGroup struct {
	id      int64
	name    string
	desc    string
	creator int64
	members []*ceilUser // in join order
	in      map[int64]bool
}

func newCeiling(ln net.Listener) *ceiling {
	cfg := defaultConfig()
	// At the ceiling's rates (200,000 msgs/s and more) a recipient a moment
	// behind passes the real default of 1,024 unsent pushes, and with
	// nothing stored what it misses is lost: a deeper queue keeps the
	// ceiling about speed.
	cfg.SendQueue = 1 << 16
	s := &ceiling{
		ln:     ln,
		cfg:    cfg,
		names:  make(map[string]*ceilUser),
		users:  make(map[int64]*ceilUser),
		groups: make(map[int64]*ceilGroup),
		online: make(map[int64]*ceilConn),
		conns:  make(map[*ceilConn]struct{}),
	}
	s.wg.Add(1)
	go s.acceptLoop()
	return s
}

func (s *ceiling) acceptLoop() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // out of descriptors, say: let some close
			continue
		}
		c := &ceilConn{
			srv:   s,
			nc:    nc,
			slots: make(chan struct{}, maxUnwritten),
			dead:  make(chan struct{}),
			wake:  make(chan struct{}, 1),
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			c.serve()
		}()
	}
}

// close stops accepting, closes every connection and waits for their
// goroutines. Safe to call twice.
func (s *ceiling) close() {
	s.mu.Lock()
	s.closed = true
	conns := make([]*ceilConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.ln.Close()
	for _, c := range conns {
		c.abort()
	}
	s.wg.Wait()
}

// ceilConn is one client connection: serve reads and handles frames in
// order, writeLoop writes what the queue holds.
type ceilConn struct {
	srv  *ceiling
	nc   net.Conn
	user *ceilUser // the logged-in user, nil when logged out; reader goroutine only

	slots chan struct{} // one per queued reply: the reader waits when the writer lags; never closed
	dead  chan struct{} // closed when the connection is torn down
	once  sync.Once     // guards close(dead)

	mu      sync.Mutex // guards the fields below
	queue   []ceilFrame
	pushes  int  // unsent pushes in queue
	closing bool // the reader is done: the writer flushes and returns
	wake    chan struct{}
}

type ceilFrame struct {
	b    []byte
	push bool // a push (counted against the send queue) rather than a reply (holding a slot)
}

func (c *ceilConn) serve() {
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop()
	}()
	if last := c.readLoop(); last != nil {
		c.reply(last)
	}
	c.logout()
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	c.signal()
	<-writerDone
	if tc, ok := c.nc.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	c.nc.Close()
	c.srv.mu.Lock()
	delete(c.srv.conns, c)
	c.srv.mu.Unlock()
}

// readLoop handles frames until the connection ends; it returns a last
// frame to send (frame_too_large), if any. Framing as in conn.readLoop.
func (c *ceilConn) readLoop() (last []byte) {
	br := bufio.NewReaderSize(c.nc, readBufSize)
	var long []byte // a frame longer than the read buffer, gathered
	max := c.srv.cfg.MaxFrame
	tooLarge := func() []byte {
		return errReply("error", nil, protoErr(wire.CodeFrameTooLarge, "frame longer than %d bytes", max))
	}
	for {
		c.nc.SetReadDeadline(time.Now().Add(c.srv.cfg.IdleTimeout))
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(long)+len(chunk) > max+1 { // +1: a '\r' before '\n' is not counted
				return tooLarge()
			}
			long = append(long, chunk...)
			continue
		}
		if err != nil {
			if n := len(long) + len(chunk); n > 0 && n <= max && errors.Is(err, io.EOF) {
				c.handle(append(long, chunk...)) // a last frame without '\n'
			}
			return nil
		}
		line := chunk[:len(chunk)-1]
		if long != nil {
			line = append(long, line...)
			long = nil
		}
		if len(bytes.TrimSuffix(line, []byte{'\r'})) > max {
			return tooLarge()
		}
		c.handle(line)
	}
}

// ceilHandler handles one request. after, if not nil, runs under the
// connection's mu just after the reply is queued: login goes online there,
// so no push overtakes its reply, and a client that has read the reply can
// count on the session being online (another connection's chat to it is
// pushed, not dropped).
type ceilHandler func(c *ceilConn, r *Request) (result any, after func(), perr *ProtoError)

type ceilCommand struct {
	handle ceilHandler
	auth   bool // needs a logged-in session
}

var ceilCommands = map[string]ceilCommand{
	"register":     {handle: ceilRegister},
	"login":        {handle: ceilLogin},
	"ping":         {handle: ceilPing},
	"logout":       {handle: ceilLogout, auth: true},
	"chat":         {handle: ceilChat, auth: true},
	"group_chat":   {handle: ceilGroupChat, auth: true},
	"create_group": {handle: ceilCreateGroup, auth: true},
	"join_group":   {handle: ceilJoinGroup, auth: true},
	"ack":          {handle: ceilAck, auth: true},
}

// handle decodes one frame, runs its handler and queues the reply.
func (c *ceilConn) handle(line []byte) {
	r, perr := decodeFrame(line)
	if r == nil && perr == nil {
		return // blank line
	}
	if perr != nil {
		var rid json.RawMessage
		if r != nil {
			rid = r.RID
		}
		c.reply(errReply("error", rid, perr))
		return
	}
	cmd, ok := ceilCommands[r.Type]
	if !ok {
		c.reply(errReply("error", r.RID, protoErr(wire.CodeUnknownType, "unknown request type %q", r.Type)))
		return
	}
	if cmd.auth && c.user == nil {
		c.reply(errReply(r.Type, r.RID, protoErr(wire.CodeNotLoggedIn, "log in first")))
		return
	}
	result, after, perr := cmd.handle(c, r)
	if perr != nil {
		c.reply(errReply(r.Type, r.RID, perr))
		return
	}
	b, err := okReply(r.Type, r.RID, result)
	if err != nil {
		b = errReply(r.Type, r.RID, protoErr(wire.CodeInternal, "internal error"))
	}
	c.replyThen(b, after)
}

// reply queues a reply, waiting while maxUnwritten replies are unwritten:
// a client that does not read is held back through TCP, as by the real server.
func (c *ceilConn) reply(b []byte) { c.replyThen(b, nil) }

// replyThen is reply with then, if not nil, run under c.mu once b is queued.
func (c *ceilConn) replyThen(b []byte, then func()) {
	select {
	case c.slots <- struct{}{}:
	case <-c.dead:
		return
	}
	c.mu.Lock()
	c.queue = append(c.queue, ceilFrame{b: b})
	if then != nil {
		then()
	}
	c.mu.Unlock()
	c.signal()
}

// deliver queues a push without blocking; a client with -send-queue unsent
// pushes is closed as too slow (and, this being the ceiling, they are lost).
func (c *ceilConn) deliver(b []byte) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	if c.pushes >= c.srv.cfg.SendQueue {
		c.mu.Unlock()
		c.abort()
		return
	}
	c.pushes++
	c.queue = append(c.queue, ceilFrame{b: b, push: true})
	c.mu.Unlock()
	c.signal()
}

func (c *ceilConn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// abort closes the connection now, dropping what is queued.
func (c *ceilConn) abort() {
	c.mu.Lock()
	c.closing = true
	c.queue = nil
	c.mu.Unlock()
	c.once.Do(func() { close(c.dead) })
	c.nc.Close()
}

// writeLoop writes whatever is queued and flushes only when the queue is
// empty, so one syscall carries all the frames that piled up meanwhile.
func (c *ceilConn) writeLoop() {
	bw := bufio.NewWriterSize(c.nc, writeBufSize)
	var batch []ceilFrame
	for {
		c.mu.Lock()
		batch, c.queue = c.queue, batch[:0]
		closing := c.closing
		c.mu.Unlock()
		if len(batch) > 0 {
			if err := c.write(bw, batch); err != nil {
				c.abort()
				return
			}
			clear(batch)
			continue // look again before flushing
		}
		if bw.Buffered() > 0 {
			c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
			if err := bw.Flush(); err != nil {
				c.abort()
				return
			}
		}
		if closing {
			return
		}
		select {
		case <-c.wake:
		case <-c.dead:
			return
		}
	}
}

func (c *ceilConn) write(bw *bufio.Writer, batch []ceilFrame) error {
	c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	pushes := 0
	for _, f := range batch {
		if f.push {
			pushes++
		} else {
			<-c.slots
		}
		if _, err := bw.Write(f.b); err != nil {
			return err
		}
	}
	if pushes > 0 {
		c.mu.Lock()
		c.pushes -= pushes
		c.mu.Unlock()
	}
	return nil
}

// logout ends the session, if any. The user stays online if a newer login
// elsewhere has taken its pushes.
func (c *ceilConn) logout() {
	if c.user == nil {
		return
	}
	s := c.srv
	s.mu.Lock()
	if s.online[c.user.id] == c {
		delete(s.online, c.user.id)
	}
	s.mu.Unlock()
	c.user = nil
}

// --- handlers: request shape as in docs/protocol.md, checks as in handlers.go ---

// register {name, password} -> {user}
func ceilRegister(c *ceilConn, r *Request) (any, func(), *ProtoError) {
	name, perr := str(r.f.Name, "name")
	if perr != nil {
		return nil, nil, perr
	}
	pass, perr := str(r.f.Password, "password")
	if perr != nil {
		return nil, nil, perr
	}
	if perr := checkName(name); perr != nil {
		return nil, nil, perr
	}
	if perr := checkPassword(pass); perr != nil {
		return nil, nil, perr
	}
	s := c.srv
	s.mu.Lock()
	if s.names[name] != nil {
		s.mu.Unlock()
		return nil, nil, protoErr(wire.CodeNameTaken, "that name is taken")
	}
	s.lastUser++
	u := &ceilUser{id: s.lastUser, name: name, pass: pass}
	s.names[name], s.users[u.id] = u, u
	s.mu.Unlock()
	return struct {
		User User `json:"user"`
	}{User{ID: u.id, Name: u.name}}, nil, nil
}

// login {name | id, password} -> {user, friends: [], groups: []}
func ceilLogin(c *ceilConn, r *Request) (any, func(), *ProtoError) {
	name, byName, perr := optStr(r.f.Name, "name")
	if perr != nil {
		return nil, nil, perr
	}
	var uid int64
	if !byName {
		var hasID bool
		if uid, hasID, perr = optInt(r.f.ID, "id"); perr != nil {
			return nil, nil, perr
		}
		if !hasID {
			return nil, nil, protoErr(wire.CodeBadRequest, `"name" or "id" is required`)
		}
	}
	pass, perr := str(r.f.Password, "password")
	if perr != nil {
		return nil, nil, perr
	}
	c.logout()
	s := c.srv
	s.mu.Lock()
	u := s.users[uid]
	if byName {
		u = s.names[name]
	}
	s.mu.Unlock()
	if u == nil || u.pass != pass {
		return nil, nil, protoErr(wire.CodeBadCredentials, "wrong name or password")
	}
	c.user = u
	online := func() {
		s.mu.Lock()
		s.online[u.id] = c
		s.mu.Unlock()
	}
	return struct {
		User    User    `json:"user"`
		Friends []User  `json:"friends"`
		Groups  []Group `json:"groups"`
	}{User{ID: u.id, Name: u.name, Online: wire.Bool(true)}, []User{}, []Group{}}, online, nil
}

// logout {} -> {}
func ceilLogout(c *ceilConn, r *Request) (any, func(), *ProtoError) {
	c.logout()
	return nil, nil, nil
}

// ping {} -> {}
func ceilPing(c *ceilConn, r *Request) (any, func(), *ProtoError) { return nil, nil, nil }

// ack {ids} -> {}: nothing is pending, so there is nothing to record.
func ceilAck(c *ceilConn, r *Request) (any, func(), *ProtoError) {
	if _, perr := intList(r.f.IDs, "ids"); perr != nil {
		return nil, nil, perr
	}
	return nil, nil, nil
}

// chat {to, text, cid?} -> {message}; pushed to the recipient if online,
// dropped otherwise.
func ceilChat(c *ceilConn, r *Request) (any, func(), *ProtoError) {
	to, perr := id(r.f.To, "to")
	if perr != nil {
		return nil, nil, perr
	}
	text, _, perr := textAndCID(r)
	if perr != nil {
		return nil, nil, perr
	}
	me := c.user
	if to == me.id {
		return nil, nil, protoErr(wire.CodeBadRequest, "you cannot send a message to yourself")
	}
	s := c.srv
	s.mu.Lock()
	known, dst := s.users[to] != nil, s.online[to]
	s.mu.Unlock()
	if !known {
		return nil, nil, protoErr(wire.CodeNoSuchUser, "no such user")
	}
	m := &Message{Message: wire.Message{ID: s.lastMsg.Add(1), From: me.id, FromName: me.name, To: to, Text: text, TS: nowMS()}}
	if dst != nil {
		dst.deliver(messagePush(m, false))
	}
	return messageResult{m}, nil, nil
}

// group_chat {group, text, cid?} -> {message}; pushed to every online
// member but the sender.
func ceilGroupChat(c *ceilConn, r *Request) (any, func(), *ProtoError) {
	g, perr := id(r.f.Group, "group")
	if perr != nil {
		return nil, nil, perr
	}
	text, _, perr := textAndCID(r)
	if perr != nil {
		return nil, nil, perr
	}
	me := c.user
	s := c.srv
	var dsts []*ceilConn
	s.mu.Lock()
	grp := s.groups[g]
	member := grp != nil && grp.in[me.id]
	if member {
		for _, u := range grp.members {
			if oc := s.online[u.id]; oc != nil && u.id != me.id {
				dsts = append(dsts, oc)
			}
		}
	}
	s.mu.Unlock()
	switch {
	case grp == nil:
		return nil, nil, protoErr(wire.CodeNoSuchGroup, "no such group")
	case !member:
		return nil, nil, protoErr(wire.CodeNotMember, "not a member of that group")
	}
	m := &Message{Message: wire.Message{ID: s.lastMsg.Add(1), From: me.id, FromName: me.name, Group: g, Text: text, TS: nowMS()}}
	if len(dsts) > 0 {
		push := messagePush(m, false) // one frame, shared by every recipient
		for _, oc := range dsts {
			oc.deliver(push)
		}
	}
	return messageResult{m}, nil, nil
}

// create_group {name, desc?} -> {group}
func ceilCreateGroup(c *ceilConn, r *Request) (any, func(), *ProtoError) {
	name, perr := str(r.f.Name, "name")
	if perr != nil {
		return nil, nil, perr
	}
	if utf8.RuneCountInString(name) > wire.MaxGroupNameRunes {
		return nil, nil, protoErr(wire.CodeBadRequest, "group names are 1-64 characters")
	}
	var desc string
	if present(r.f.Desc) {
		if r.f.Desc[0] != '"' || json.Unmarshal(r.f.Desc, &desc) != nil {
			return nil, nil, protoErr(wire.CodeBadRequest, `"desc" must be a string`)
		}
		if utf8.RuneCountInString(desc) > wire.MaxGroupDescRunes {
			return nil, nil, protoErr(wire.CodeBadRequest, "group descriptions are at most 256 characters")
		}
	}
	me := c.user
	s := c.srv
	s.mu.Lock()
	s.lastGroup++
	grp := &ceilGroup{id: s.lastGroup, name: name, desc: desc, creator: me.id,
		members: []*ceilUser{me}, in: map[int64]bool{me.id: true}}
	s.groups[grp.id] = grp
	wire := s.wireGroup(grp)
	s.mu.Unlock()
	return groupResult{wire}, nil, nil
}

// join_group {group} -> {group}; joining twice is ok.
func ceilJoinGroup(c *ceilConn, r *Request) (any, func(), *ProtoError) {
	g, perr := id(r.f.Group, "group")
	if perr != nil {
		return nil, nil, perr
	}
	me := c.user
	s := c.srv
	s.mu.Lock()
	grp := s.groups[g]
	if grp == nil {
		s.mu.Unlock()
		return nil, nil, protoErr(wire.CodeNoSuchGroup, "no such group")
	}
	if !grp.in[me.id] {
		grp.in[me.id] = true
		grp.members = append(grp.members, me)
	}
	wire := s.wireGroup(grp)
	s.mu.Unlock()
	return groupResult{wire}, nil, nil
}

// wireGroup is grp's wire form. s.mu must be held.
func (s *ceiling) wireGroup(grp *ceilGroup) Group {
	members := make([]Member, len(grp.members))
	for i, u := range grp.members {
		role := RoleMember
		if u.id == grp.creator {
			role = RoleCreator
		}
		members[i] = Member{ID: u.id, Name: u.name, Role: role.Wire(), Online: s.online[u.id] != nil}
	}
	return Group{ID: grp.id, Name: grp.name, Desc: grp.desc, Members: members}
}

// --- the serve mode and the self-check ---

// TestCeilingServe serves the ceiling on $CHAT_CEILING_ADDR until SIGINT or
// SIGTERM; without it, it checks the ceiling over TCP.
func TestCeilingServe(t *testing.T) {
	if addr := os.Getenv("CHAT_CEILING_ADDR"); addr != "" {
		ceilServeUntilSignal(t, addr)
		return
	}
	addr := startCeiling(t)
	const pass = "secret1"

	a, b, c := dial(t, addr), dial(t, addr), dial(t, addr)
	ids := map[*testClient]int64{}
	for who, name := range map[*testClient]string{a: "alice", b: "bob", c: "carol"} {
		u := who.must("register", map[string]any{"name": name, "password": pass}).obj("user")
		if u.str("name") != name || u.num("id") <= 0 {
			t.Fatalf("register %s: user %v", name, u)
		}
		ids[who] = u.num("id")
	}
	a.fails("name_taken", "register", map[string]any{"name": "alice", "password": pass})
	a.fails("invalid_password", "register", map[string]any{"name": "dave", "password": "short"})
	a.fails("not_logged_in", "chat", map[string]any{"to": ids[b], "text": "hi"})
	a.fails("bad_credentials", "login", map[string]any{"name": "alice", "password": "wrong password"})
	a.fails("bad_credentials", "login", map[string]any{"name": "nobody", "password": pass})

	// alice by name, bob and carol by id.
	login := a.must("login", map[string]any{"name": "alice", "password": pass})
	if u := login.obj("user"); u.num("id") != ids[a] || u["online"] != true {
		t.Fatalf("login user: %v", u)
	}
	for _, k := range []string{"friends", "groups"} {
		if l, ok := login[k].([]any); !ok || len(l) != 0 {
			t.Fatalf("login %s: want [], got %v", k, login[k])
		}
	}
	b.must("login", map[string]any{"id": ids[b], "password": pass})
	c.must("login", map[string]any{"id": ids[c], "password": pass})
	a.must("ping", nil)
	a.must("ack", map[string]any{"ids": []int64{1, 2}})

	// A chat: the reply carries the message, and the recipient gets it.
	sent := a.must("chat", map[string]any{"to": ids[b], "text": "hi bob", "cid": "k1"}).obj("message")
	if sent.num("id") <= 0 || sent.num("from") != ids[a] || sent.str("from_name") != "alice" ||
		sent.num("to") != ids[b] || sent.str("text") != "hi bob" || sent.num("ts") <= 0 {
		t.Fatalf("chat reply message: %v", sent)
	}
	if got := b.push("message", 15*time.Second).obj("message"); !reflect.DeepEqual(got, sent) {
		t.Fatalf("pushed %v, replied %v", got, sent)
	}
	a.fails("no_such_user", "chat", map[string]any{"to": 999, "text": "hi"})
	a.fails("bad_request", "chat", map[string]any{"to": ids[a], "text": "me"})

	// A group of three: a group_chat reaches the other two, not the sender.
	g := a.must("create_group", map[string]any{"name": "gophers", "desc": "all about Go"}).obj("group")
	gid := g.num("id")
	if gid <= 0 || len(g.list("members")) != 1 || g.list("members")[0].str("role") != "creator" {
		t.Fatalf("create_group: %v", g)
	}
	b.must("join_group", map[string]any{"group": gid})
	joined := c.must("join_group", map[string]any{"group": gid}).obj("group")
	c.must("join_group", map[string]any{"group": gid}) // twice is ok
	if ms := joined.list("members"); len(ms) != 3 || ms[2].num("id") != ids[c] || ms[2].str("role") != "member" || ms[0]["online"] != true {
		t.Fatalf("join_group: %v", joined)
	}
	a.fails("no_such_group", "join_group", map[string]any{"group": 999})
	gm := b.must("group_chat", map[string]any{"group": gid, "text": "hello all"}).obj("message")
	if gm.num("group") != gid || gm["to"] != nil || gm.num("from") != ids[b] {
		t.Fatalf("group_chat reply message: %v", gm)
	}
	for _, who := range []*testClient{a, c} {
		if got := who.push("message", 15*time.Second).obj("message"); !reflect.DeepEqual(got, gm) {
			t.Fatalf("group push %v, replied %v", got, gm)
		}
	}
	b.quiet("message", 100*time.Millisecond)

	// After logout, chats to bob are dropped (and say ok: it is a ceiling).
	b.must("logout", nil)
	b.fails("not_logged_in", "chat", map[string]any{"to": ids[a], "text": "hi"})
	a.must("chat", map[string]any{"to": ids[b], "text": "into the void"})
	b.quiet("message", 100*time.Millisecond)

	// rid byte for byte, pipelined frames in one write, bad frames.
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(nc, `{"type":"ping","rid":1.50}`+"\n"+
		`{"type":"ping","rid":"x\u00e9"}`+"\r\n\n"+
		`{"type":"nope","rid":1e3}`+"\n"+
		`{"type":"chat","rid":-0.0}`+"\n"+
		`not json`+"\n"+
		`{"type":"login","rid":12345678901234567890123,"name":"alice","password":"secret1"}`+"\n")
	br := bufio.NewReader(nc)
	for _, want := range []string{
		`{"type":"ping","rid":1.50,"ok":true}`,
		`{"type":"ping","rid":"x\u00e9","ok":true}`,
		`{"type":"error","rid":1e3,"ok":false,"code":"unknown_type",`,
		`{"type":"chat","rid":-0.0,"ok":false,"code":"not_logged_in",`,
		`{"type":"error","ok":false,"code":"bad_frame",`,
		`{"type":"login","rid":12345678901234567890123,"ok":true,`,
	} {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("want %s: %v", want, err)
		}
		if !strings.HasPrefix(line, want) {
			t.Fatalf("want %s..., got %s", want, line)
		}
	}
}

// ceilServeUntilSignal serves the ceiling on addr until SIGINT or SIGTERM.
func ceilServeUntilSignal(t *testing.T, addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("ceiling: listen: %v", err)
	}
	s := newCeiling(ln)
	defer s.close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	t.Logf("ceiling server on %s; SIGINT or SIGTERM stops it", ln.Addr())
	<-ctx.Done()
	t.Logf("ceiling server stopping after %d messages", s.lastMsg.Load())
}
