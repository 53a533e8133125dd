package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// The database going away under a running server: every request that needs
// the store gets `unavailable` within a few seconds (never a crash, never a
// hang), what is served from memory keeps working, the server recovers by
// itself when the database is back, and nothing acknowledged `ok` is lost.

const (
	// faultReplyLimit bounds a reply while the database is refused or gone.
	faultReplyLimit = 8 * time.Second
	// faultHangLimit bounds a reply while the database accepts bytes and
	// never answers: the store gives up after storeTimeout (5 s) for a
	// request, batchTimeout (10 s) for a chat's group commit.
	faultHangLimit = 12 * time.Second
	// faultRecoverLimit bounds the recovery once the database is back.
	faultRecoverLimit = 15 * time.Second
)

// ---------------------------------------------------------------------------
// A TCP proxy between the server and MySQL that a test can cut and freeze.

// proxyTCP forwards connections from a fixed address on 127.0.0.1 to target.
type proxyTCP struct {
	t      testing.TB
	target string
	addr   string // stays the same across cut and restore

	mu    sync.Mutex // guards the fields below
	ln    net.Listener
	up    bool                  // listening and forwarding
	conns map[net.Conn]struct{} // both ends of every live forwarded connection
	thaw  chan struct{}         // non-nil while frozen; closed by unfreeze
	trap  chan struct{}         // non-nil while armed; closed when it fires

	wg sync.WaitGroup // accept loops and forwarders
}

// newProxyTCP starts a proxy to target; it is shut at the end of the test.
func newProxyTCP(t testing.TB, target string) *proxyTCP {
	t.Helper()
	p := &proxyTCP{t: t, target: target, conns: map[net.Conn]struct{}{}}
	ln := proxyListen(t)
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.close)
	return p
}

// proxyListen listens on a free port of 127.0.0.1 below the kernel's
// ephemeral range where it can, so that while the proxy is cut no outgoing
// connection takes the port as its local port and keeps restore from
// listening on it again.
func proxyListen(t testing.TB) net.Listener {
	t.Helper()
	lo, hi := 20000, 32767
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var elo, ehi int
		if n, _ := fmt.Sscan(string(b), &elo, &ehi); n == 2 {
			switch {
			case elo > 11024:
				lo, hi = 10000, elo-1
			case ehi < 64511:
				lo, hi = ehi+1, 65535
			default:
				lo, hi = 0, 0
			}
		}
	}
	if hi > lo {
		for range 100 {
			port := lo + rand.IntN(hi-lo+1)
			if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
				return ln
			}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	return ln
}

func (p *proxyTCP) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln, p.up = ln, true
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				time.Sleep(10 * time.Millisecond)
				continue
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.forward(c)
			}()
		}
	}()
}

// forward copies both ways between c and a new connection to the target
// until either side ends or the proxy is cut.
func (p *proxyTCP) forward(c net.Conn) {
	up, err := net.DialTimeout("tcp", p.target, 3*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if !p.up {
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[c] = struct{}{}
	p.conns[up] = struct{}{}
	p.mu.Unlock()

	done := make(chan struct{})
	var once sync.Once
	end := func() {
		once.Do(func() {
			close(done)
			c.Close()
			up.Close()
			p.mu.Lock()
			delete(p.conns, c)
			delete(p.conns, up)
			p.mu.Unlock()
		})
	}
	var swallow atomic.Bool // drop MySQL's answer to a trapped COMMIT
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(up, c, done, true, &swallow); end() }()
	go func() { defer wg.Done(); p.pipe(c, up, done, false, &swallow); end() }()
	wg.Wait()
}

// pipe copies src to dst; while the proxy is frozen it holds what it read.
// toServer is the direction from the client (the chat server) to MySQL.
func (p *proxyTCP) pipe(dst, src net.Conn, done <-chan struct{}, toServer bool, swallow *atomic.Bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if thaw := p.frozen(); thaw != nil {
				select {
				case <-thaw:
				case <-done:
					return
				}
			}
			if !toServer && swallow.Load() {
				// MySQL has answered the trapped COMMIT, so it is done:
				// the client never hears of it, its connection just ends.
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
			if toServer && bytes.Contains(buf[:n], proxyCommit) && p.fireTrap() {
				swallow.Store(true)
			}
		}
		if err != nil {
			return
		}
	}
}

// proxyCommit is a COMMIT statement as go-sql-driver sends it: command
// byte COM_QUERY (3), then the text.
var proxyCommit = []byte("\x03COMMIT")

// dropAfterCommit arms a one-shot trap: the next COMMIT is forwarded to
// MySQL, and once MySQL has answered, the connection is closed instead of
// passing the answer on, so the client cannot know whether the
// transaction was committed (it was). The returned channel is closed when
// the COMMIT has gone through.
func (p *proxyTCP) dropAfterCommit() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.trap = make(chan struct{})
	return p.trap
}

func (p *proxyTCP) fireTrap() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.trap == nil {
		return false
	}
	close(p.trap)
	p.trap = nil
	return true
}

func (p *proxyTCP) frozen() chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.thaw
}

// cut closes the listener and every live forwarded connection: the
// database is refused until restore.
func (p *proxyTCP) cut() {
	p.mu.Lock()
	ln := p.ln
	p.ln, p.up = nil, false
	conns := make([]net.Conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	for _, c := range conns {
		c.Close()
	}
}

// restore listens on the same address again and forwards.
func (p *proxyTCP) restore() {
	p.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ln, err := net.Listen("tcp", p.addr)
		if err == nil {
			p.serve(ln)
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("proxy restore: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freeze stops forwarding bytes, closing nothing: connections stay open
// and new ones are accepted, but neither side hears from the other.
func (p *proxyTCP) freeze() {
	p.mu.Lock()
	if p.thaw == nil {
		p.thaw = make(chan struct{})
	}
	p.mu.Unlock()
}

// unfreeze forwards again, the held bytes first.
func (p *proxyTCP) unfreeze() {
	p.mu.Lock()
	if p.thaw != nil {
		close(p.thaw)
		p.thaw = nil
	}
	p.mu.Unlock()
}

func (p *proxyTCP) close() {
	p.cut()
	p.unfreeze()
	p.wg.Wait()
}

// proxyMySQL puts a proxy in front of the MySQL database of dbURL
// ("mysql:DSN") and returns it with the URL of the same database through it.
func proxyMySQL(t testing.TB, dbURL string) (*proxyTCP, string) {
	t.Helper()
	cfg, err := mysql.ParseDSN(strings.TrimPrefix(dbURL, "mysql:"))
	if err != nil {
		t.Fatalf("parse DSN: %v", err)
	}
	if cfg.Net != "tcp" {
		t.Fatalf("the MySQL DSN must use tcp, not %q", cfg.Net)
	}
	p := newProxyTCP(t, cfg.Addr)
	cfg.Addr = p.addr
	return p, "mysql:" + cfg.FormatDSN()
}

// ---------------------------------------------------------------------------
// Requests with a time limit of their own, usable from any goroutine.

// faultExchange sends one request on c and waits up to limit for its reply,
// keeping the pushes that come first. It never fails the test itself, so a
// goroutine that owns c may use it.
func faultExchange(c *testClient, typ string, fields map[string]any, limit time.Duration) (frame, time.Duration, error) {
	c.rid++
	rid := c.rid
	m := map[string]any{"type": typ, "rid": rid}
	for k, v := range fields {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	start := time.Now()
	c.nc.SetWriteDeadline(start.Add(limit))
	if _, err := c.nc.Write(append(b, '\n')); err != nil {
		return nil, 0, fmt.Errorf("%s: write: %w", typ, err)
	}
	f, took, err := faultExchangeWait(c, rid, limit)
	if err != nil {
		err = fmt.Errorf("%s %v: %w", typ, fields, err)
	}
	return f, took, err
}

// faultExpect sends a request and checks its reply within limit: ok when
// code is empty, else a failure with that code.
func faultExpect(t testing.TB, c *testClient, limit time.Duration, code, typ string, fields map[string]any) frame {
	t.Helper()
	f, took, err := faultExchange(c, typ, fields, limit)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case code == "" && !f.ok():
		t.Fatalf("%s %v: want ok, got %v (after %v)", typ, fields, f, took)
	case code != "" && (f.ok() || f.code() != code):
		t.Fatalf("%s %v: want %s, got %v (after %v)", typ, fields, code, f, took)
	}
	t.Logf("%-12s %-11s in %v", typ, map[bool]string{true: "ok", false: f.code()}[f.ok()], took.Round(time.Millisecond))
	return f
}

// faultRecover sends chats from c to user `to` until one is stored, and
// returns its message id.
func faultRecover(t testing.TB, c *testClient, to int64, since time.Time) int64 {
	t.Helper()
	deadline := time.Now().Add(faultRecoverLimit)
	for i := 0; ; i++ {
		f, _, err := faultExchange(c, "chat", map[string]any{"to": to, "text": fmt.Sprintf("recovered %d", i)}, faultHangLimit)
		if err != nil {
			t.Fatalf("while recovering: %v", err)
		}
		if f.ok() {
			t.Logf("chats are stored again %v after the database came back", time.Since(since).Round(time.Millisecond))
			return f.obj("message").num("id")
		}
		if f.code() != "unavailable" {
			t.Fatalf("while recovering: chat: want ok or unavailable, got %v", f)
		}
		if time.Now().After(deadline) {
			t.Fatalf("chats still unavailable %v after the database came back", faultRecoverLimit)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// faultServing checks that the server has not stopped serving.
func faultServing(t testing.TB, ts *testServer) {
	t.Helper()
	select {
	case err := <-ts.done:
		t.Fatalf("the server stopped serving: %v", err)
	default:
	}
	c := dial(t, ts.addr)
	faultExpect(t, c, time.Second, "", "ping", nil)
	c.nc.Close()
}

// faultHistory returns the ids of the whole conversation of c with user
// `with`, paging back with before.
func faultHistory(t testing.TB, c *testClient, with int64) map[int64]bool {
	t.Helper()
	ids := map[int64]bool{}
	before := int64(0)
	for {
		fields := map[string]any{"with": with, "limit": 200}
		if before > 0 {
			fields["before"] = before
		}
		msgs := faultExpect(t, c, faultReplyLimit, "", "history", fields).list("messages")
		for _, m := range msgs {
			ids[m.num("id")] = true
		}
		if len(msgs) < 200 {
			return ids
		}
		before = msgs[0].num("id")
	}
}

// faultCollect reads message pushes on c until every id of want has come,
// and returns the ids of all the message pushes seen.
func faultCollect(t testing.TB, c *testClient, want []int64, within time.Duration) map[int64]bool {
	t.Helper()
	seen := map[int64]bool{}
	missing := func() int {
		n := 0
		for _, id := range want {
			if !seen[id] {
				n++
			}
		}
		return n
	}
	for {
		f := c.takePush("message")
		if f == nil {
			break
		}
		seen[f.obj("message").num("id")] = true
	}
	deadline := time.Now().Add(within)
	for missing() > 0 {
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("%d of %d acknowledged messages never came (within %v)", missing(), len(want), within)
		}
		f := c.next(left)
		if f.str("type") == "message" {
			seen[f.obj("message").num("id")] = true
		} else {
			c.pushes = append(c.pushes, f)
		}
	}
	return seen
}

// faultLoad is a sender chatting to one recipient, one request at a time,
// from before an outage until after the recovery.
type faultLoad struct {
	stopc chan struct{}
	done  chan struct{}

	mu          sync.Mutex
	ok          []int64     // ids of the messages acknowledged ok
	okAt        []time.Time // when
	unavailable int
	slowest     time.Duration
	err         error // a reply that was neither ok nor unavailable, or late
}

// faultStartLoad starts sending chats from c (which it owns from now until
// stop returns) to user `to`.
func faultStartLoad(c *testClient, to int64, limit time.Duration) *faultLoad {
	l := &faultLoad{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for i := 0; ; i++ {
			select {
			case <-l.stopc:
				return
			default:
			}
			f, took, err := faultExchange(c, "chat", map[string]any{"to": to, "text": fmt.Sprintf("load %d", i)}, limit)
			l.mu.Lock()
			l.slowest = max(l.slowest, took)
			switch {
			case err != nil:
				l.err = err
			case f.ok():
				l.ok = append(l.ok, f.obj("message").num("id"))
				l.okAt = append(l.okAt, time.Now())
			case f.code() == "unavailable":
				l.unavailable++
			default:
				l.err = fmt.Errorf("chat: want ok or unavailable, got %v", f)
			}
			failed := l.err != nil
			l.mu.Unlock()
			if failed {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return l
}

// okSince counts the acknowledged messages after t.
func (l *faultLoad) okSince(t time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, at := range l.okAt {
		if at.After(t) {
			n++
		}
	}
	return n
}

func (l *faultLoad) stop() {
	select {
	case <-l.stopc:
	default:
		close(l.stopc)
	}
	<-l.done
}

// ---------------------------------------------------------------------------
// The scenario, for any way of taking the database away.

// faultScenario runs two users chatting (and a third sender under load)
// through an outage: down() takes the database away, up() brings it back.
// serverDB is the URL the server uses; directDB reaches the same database
// without going through whatever down() breaks.
func faultScenario(t *testing.T, serverDB, directDB string, down, up func()) {
	admin := cmdFreeAddr(t)
	ts := startServer(t, serverDB, func(c *Config) { c.Admin = admin })
	waitHealth(t, admin, 200, 5*time.Second)

	a := newUser(t, ts.addr, "fa")
	b := newUser(t, ts.addr, "fb")
	befriend(t, a, b)
	g := a.must("create_group", map[string]any{"name": "outage"}).obj("group").num("id")
	var toB []int64 // messages to b acknowledged ok
	for i := range 5 {
		m := a.must("chat", map[string]any{"to": b.user, "text": fmt.Sprintf("before %d", i)}).obj("message")
		toB = append(toB, m.num("id"))
	}
	b.messages(5, 5*time.Second)
	b.must("ack", map[string]any{"ids": toB[:2]})

	// A third user, registered (so its name is cached) but not logged in.
	c3 := dial(t, ts.addr)
	c3name := uniqueName("fc")
	c3id := c3.must("register", map[string]any{"name": c3name, "password": testPassword}).obj("user").num("id")
	// A user this server has never seen: registered through another server
	// on the same database.
	side := startServer(t, directDB)
	stranger := newUser(t, side.addr, "fs").user
	side.stop()

	// A sender under load across the outage, and its recipient.
	e := newUser(t, ts.addr, "fe")
	f := newUser(t, ts.addr, "ff")
	load := faultStartLoad(e, f.user, faultReplyLimit)
	defer load.stop()
	time.Sleep(200 * time.Millisecond)

	// --- the database goes away ---
	wentDown := time.Now()
	down()
	t.Logf("database down (took %v)", time.Since(wentDown).Round(time.Millisecond))
	waitHealth(t, admin, 503, faultReplyLimit)

	lim := faultReplyLimit
	un := "unavailable"
	faultExpect(t, a, lim, un, "chat", map[string]any{"to": b.user, "text": "during"})
	faultExpect(t, a, lim, un, "group_chat", map[string]any{"group": g, "text": "during"})
	faultExpect(t, a, lim, un, "history", map[string]any{"with": b.user})
	faultExpect(t, a, lim, un, "friends", nil)
	faultExpect(t, a, lim, un, "groups", nil)
	faultExpect(t, a, lim, un, "add_friend", map[string]any{"friend": c3id})
	faultExpect(t, a, lim, un, "add_friend", map[string]any{"friend": stranger})
	faultExpect(t, a, lim, un, "whois", map[string]any{"id": stranger})
	faultExpect(t, a, lim, un, "whois", map[string]any{"name": c3name}) // by name: always the store
	faultExpect(t, a, lim, un, "create_group", map[string]any{"name": "during"})
	faultExpect(t, b, lim, un, "join_group", map[string]any{"group": g})
	faultExpect(t, b, lim, un, "ack", map[string]any{"ids": []int64{toB[2]}})
	faultExpect(t, c3, lim, un, "login", map[string]any{"id": c3id, "password": testPassword})
	faultExpect(t, c3, lim, un, "register", map[string]any{"name": uniqueName("fr"), "password": testPassword})
	// Served from memory: fine without the database.
	faultExpect(t, a, lim, "", "ping", nil)
	if n := faultExpect(t, a, lim, "", "online", nil).num("total"); n < 4 {
		t.Fatalf("online during the outage: total %d, want at least 4", n)
	}
	if u := faultExpect(t, a, lim, "", "whois", map[string]any{"id": b.user}).obj("user"); u["online"] != true {
		t.Fatalf("whois of a cached user during the outage: %v", u)
	}
	faultExpect(t, b, lim, "", "ping", nil)
	faultExpect(t, c3, lim, "", "ping", nil)
	b.quiet("message", 300*time.Millisecond) // nothing that failed was delivered
	faultServing(t, ts)
	if code := healthStatus(admin); code != 503 {
		t.Fatalf("/healthz during the outage: %d, want 503", code)
	}
	if _, metrics, err := cmdHTTPGet("http://" + admin + "/metrics"); err != nil ||
		!strings.Contains(metrics, `chat_errors_total{type="chat",code="unavailable"} `) {
		t.Errorf("/metrics during the outage counts no unavailable chat (%v):\n%s", err, metrics)
	}

	// --- the database comes back ---
	up()
	cameBack := time.Now()
	t.Logf("database up again, %v after it went down", time.Since(wentDown).Round(time.Millisecond))
	toB = append(toB, faultRecover(t, a, b.user, cameBack))
	waitHealth(t, admin, 200, faultRecoverLimit)
	t.Logf("/healthz is 200 again %v after the database came back", time.Since(cameBack).Round(time.Millisecond))

	// Every request that failed works again.
	m := faultExpect(t, a, lim, "", "chat", map[string]any{"to": b.user, "text": "after"}).obj("message")
	toB = append(toB, m.num("id"))
	faultExpect(t, a, lim, "", "group_chat", map[string]any{"group": g, "text": "after"})
	faultExpect(t, a, lim, "", "friends", nil)
	faultExpect(t, a, lim, "", "groups", nil)
	faultExpect(t, a, lim, "", "add_friend", map[string]any{"friend": c3id})
	faultExpect(t, a, lim, "", "whois", map[string]any{"id": stranger})
	faultExpect(t, b, lim, "", "join_group", map[string]any{"group": g})
	faultExpect(t, b, lim, "", "ack", map[string]any{"ids": []int64{toB[2]}})
	faultExpect(t, c3, lim, "", "login", map[string]any{"id": c3id, "password": testPassword})
	hist := faultHistory(t, a, b.user)
	for _, id := range toB {
		if !hist[id] {
			t.Errorf("message %d was acknowledged ok but is not in the history", id)
		}
	}
	b.messages(2, 5*time.Second) // the recovery chat and "after", live

	// b logs in again: the messages acknowledged ok and not acked by b are
	// pushed again; the acked ones are not.
	b2, _ := loginAs(t, ts.addr, b.user)
	backlog := faultCollect(t, b2, toB[3:], 10*time.Second)
	for _, id := range toB[:3] {
		if backlog[id] {
			t.Errorf("message %d was acked but pushed again at login", id)
		}
	}

	// The load: every reply was ok or unavailable in time; every message
	// acknowledged ok is stored, was pushed live, and is pending for the
	// recipient; nothing that failed was pushed.
	deadline := time.Now().Add(faultRecoverLimit)
	for load.okSince(cameBack) < 3 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	load.stop()
	if load.err != nil {
		t.Fatalf("sender under load: %v", load.err)
	}
	okBefore := len(load.ok) - load.okSince(wentDown)
	t.Logf("sender under load: %d ok (%d before the outage, %d after the recovery), %d unavailable, slowest reply %v",
		len(load.ok), okBefore, load.okSince(cameBack), load.unavailable, load.slowest.Round(time.Millisecond))
	if okBefore == 0 || load.okSince(cameBack) < 3 {
		t.Fatalf("sender under load: too few ok replies before the outage (%d) or after it (%d)", okBefore, load.okSince(cameBack))
	}
	if load.unavailable == 0 {
		t.Errorf("sender under load: no unavailable reply during the outage")
	}
	stored := faultHistory(t, e, f.user)
	for _, id := range load.ok {
		if !stored[id] {
			t.Errorf("message %d was acknowledged ok but is not stored", id)
		}
	}
	live := faultCollect(t, f, load.ok, 10*time.Second)
	f.quiet("message", 200*time.Millisecond)
	if len(live) != len(load.ok) {
		t.Errorf("recipient got %d live message pushes, want exactly the %d acknowledged ok", len(live), len(load.ok))
	}
	f2, _ := loginAs(t, ts.addr, f.user)
	faultCollect(t, f2, load.ok, 20*time.Second)
	faultServing(t, ts)
}

// TestDatabaseOutageMySQL: the connection to MySQL is cut (refused, live
// connections closed) under a running server, then restored.
func TestDatabaseOutageMySQL(t *testing.T) {
	direct := mysqlURL(t)
	p, viaProxy := proxyMySQL(t, direct)
	faultScenario(t, viaProxy, direct, p.cut, p.restore)
}

// TestDatabaseRestartMySQL: the private MariaDB of scripts/test.sh is
// really stopped under a running server, then started again.
func TestDatabaseRestartMySQL(t *testing.T) {
	ctl := os.Getenv("CHAT_TEST_MYSQL_CTL")
	if ctl == "" {
		t.Skip("CHAT_TEST_MYSQL_CTL not set: no private MariaDB to stop (scripts/test.sh starts one when CHAT_TEST_MYSQL is unset)")
	}
	dir, port := os.Getenv("CHAT_TEST_MYSQL_DIR"), os.Getenv("CHAT_TEST_MYSQL_PORT")
	if dir == "" || port == "" {
		t.Fatal("CHAT_TEST_MYSQL_CTL is set but CHAT_TEST_MYSQL_DIR or CHAT_TEST_MYSQL_PORT is not")
	}
	direct := mysqlURL(t) // its cleanup (DROP DATABASE) runs after the one below
	cfg, err := mysql.ParseDSN(strings.TrimPrefix(direct, "mysql:"))
	if err != nil {
		t.Fatal(err)
	}
	if _, p, _ := net.SplitHostPort(cfg.Addr); p != port {
		t.Fatalf("CHAT_TEST_MYSQL (%s) is not the private instance on port %s", cfg.Addr, port)
	}
	ctlRun := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, ctl, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", ctl, strings.Join(args, " "), err, out)
		}
	}
	var mu sync.Mutex
	stopped := false
	// However the test ends, the instance runs again before anything else
	// (the DROP of mysqlURL, other tests) needs it.
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			ctlRun("start", dir, port)
			stopped = false
		}
	})
	down := func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		ctlRun("stop", dir)
	}
	up := func() {
		mu.Lock()
		defer mu.Unlock()
		ctlRun("start", dir, port)
		stopped = false
	}
	faultScenario(t, direct, direct, down, up)
}

// TestDatabaseHangMySQL: MySQL stops answering without closing anything
// (the proxy holds every byte): requests still get `unavailable` within the
// store timeouts, requests served from memory are not held up, and the
// server recovers once bytes flow again.
func TestDatabaseHangMySQL(t *testing.T) {
	direct := mysqlURL(t)
	p, viaProxy := proxyMySQL(t, direct)
	admin := cmdFreeAddr(t)
	ts := startServer(t, viaProxy, func(c *Config) { c.Admin = admin })

	a := newUser(t, ts.addr, "ha")
	b := newUser(t, ts.addr, "hb")
	x := newUser(t, ts.addr, "hx")
	y := newUser(t, ts.addr, "hy")
	first := a.must("chat", map[string]any{"to": b.user, "text": "before"}).obj("message").num("id")
	b.messages(1, 5*time.Second)
	c3 := dial(t, ts.addr)
	c3id := c3.must("register", map[string]any{"name": uniqueName("hc"), "password": testPassword}).obj("user").num("id")

	p.freeze()
	frozeAt := time.Now()
	// Each blocked request on its own connection, all at once.
	type want struct {
		c      *testClient
		typ    string
		fields map[string]any
	}
	blocked := []want{
		{a, "chat", map[string]any{"to": b.user, "text": "during"}},
		{b, "history", map[string]any{"with": a.user}},
		{c3, "login", map[string]any{"id": c3id, "password": testPassword}},
		{x, "friends", nil},
	}
	errs := make(chan error, len(blocked))
	for _, w := range blocked {
		go func() {
			f, took, err := faultExchange(w.c, w.typ, w.fields, faultHangLimit)
			switch {
			case err != nil:
			case f.ok() || f.code() != "unavailable":
				err = fmt.Errorf("%s during the hang: want unavailable, got %v", w.typ, f)
			default:
				t.Logf("%-12s unavailable in %v", w.typ, took.Round(time.Millisecond))
			}
			errs <- err
		}()
	}
	// Meanwhile what needs no database is answered at once.
	time.Sleep(100 * time.Millisecond)
	faultExpect(t, y, time.Second, "", "ping", nil)
	faultExpect(t, y, time.Second, "", "online", nil)
	faultServing(t, ts)
	waitHealth(t, admin, 503, 8*time.Second)
	for range blocked {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("every blocked request answered within %v of the hang", time.Since(frozeAt).Round(time.Millisecond))
	faultExpect(t, a, time.Second, "", "ping", nil)
	b.quiet("message", 200*time.Millisecond)

	thawAt := time.Now()
	p.unfreeze()
	last := faultRecover(t, a, b.user, thawAt)
	waitHealth(t, admin, 200, faultRecoverLimit)
	faultExpect(t, c3, faultReplyLimit, "", "login", map[string]any{"id": c3id, "password": testPassword})
	hist := faultHistory(t, b, a.user)
	for _, id := range []int64{first, last} {
		if !hist[id] {
			t.Errorf("message %d was acknowledged ok but is not in the history", id)
		}
	}
}

// TestDatabaseLockedSQLite: another process holds the SQLite write lock
// (a backup, a stuck tool): writes get `unavailable` in bounded time, reads
// and the rest keep working, and writes work again once the lock is gone.
func TestDatabaseLockedSQLite(t *testing.T) {
	db := sqliteURL(t)
	admin := cmdFreeAddr(t)
	ts := startServer(t, db, func(c *Config) { c.Admin = admin })
	a := newUser(t, ts.addr, "la")
	b := newUser(t, ts.addr, "lb")
	first := a.must("chat", map[string]any{"to": b.user, "text": "before"}).obj("message").num("id")
	b.messages(1, 5*time.Second)

	other, err := sql.Open("sqlite", "file:"+strings.TrimPrefix(db, "sqlite:")+"?_pragma=busy_timeout(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ctx := context.Background()
	lock, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if _, err := lock.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatalf("take the write lock: %v", err)
	}
	locked := true
	defer func() {
		if locked {
			lock.ExecContext(ctx, "ROLLBACK")
		}
	}()

	// Writes on their own connections, at once; reads go on meanwhile.
	errs := make(chan error, 2)
	for _, w := range []struct {
		c      *testClient
		typ    string
		fields map[string]any
	}{
		{a, "chat", map[string]any{"to": b.user, "text": "during"}},
		{dial(t, ts.addr), "register", map[string]any{"name": uniqueName("lr"), "password": testPassword}},
	} {
		go func() {
			f, took, err := faultExchange(w.c, w.typ, w.fields, faultHangLimit)
			if err == nil && (f.ok() || f.code() != "unavailable") {
				err = fmt.Errorf("%s while the database is locked: want unavailable, got %v", w.typ, f)
			}
			if err == nil {
				t.Logf("%-12s unavailable in %v", w.typ, took.Round(time.Millisecond))
			}
			errs <- err
		}()
	}
	time.Sleep(100 * time.Millisecond)
	hist := faultExpect(t, b, faultReplyLimit, "", "history", map[string]any{"with": a.user}).list("messages")
	if len(hist) != 1 || hist[0].num("id") != first {
		t.Fatalf("history while locked: %v", hist)
	}
	faultExpect(t, b, faultReplyLimit, "", "friends", nil)
	t.Logf("/healthz while another process holds the write lock: %d", healthStatus(admin))
	for range 2 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	b.quiet("message", 200*time.Millisecond)

	if _, err := lock.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	locked = false
	last := faultRecover(t, a, b.user, time.Now())
	ids := faultHistory(t, b, a.user)
	if !ids[first] || !ids[last] {
		t.Fatalf("history after the lock: %v, want %d and %d", ids, first, last)
	}
}

// TestDatabaseLostCommitReplyMySQL: the connection drops after MySQL got a
// chat's COMMIT but before the server heard back. The server may find out
// that the message was stored and say ok; or it says `unavailable` and the
// sender repeats the chat with the same cid, as docs/protocol.md says, and gets
// ok with the message that was stored. Either way the message is stored
// once and, acknowledged ok, reaches the online recipient live.
func TestDatabaseLostCommitReplyMySQL(t *testing.T) {
	direct := mysqlURL(t)
	p, viaProxy := proxyMySQL(t, direct)
	ts := startServer(t, viaProxy)
	a := newUser(t, ts.addr, "ca")
	b := newUser(t, ts.addr, "cb")
	a.must("chat", map[string]any{"to": b.user, "text": "warm up"})
	b.messages(1, 5*time.Second)

	fired := p.dropAfterCommit()
	chat := map[string]any{"to": b.user, "text": "did it get there?", "cid": "lost-commit-reply"}
	f, _, err := faultExchange(a, "chat", chat, faultReplyLimit)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-fired:
	default:
		t.Fatalf("the chat was answered (%v) without its COMMIT reaching MySQL", f)
	}
	storedOnce := func() frame {
		t.Helper()
		var stored []frame
		for _, m := range faultExpect(t, a, faultReplyLimit, "", "history", map[string]any{"with": b.user}).list("messages") {
			if m.str("text") == chat["text"] {
				stored = append(stored, m)
			}
		}
		if len(stored) != 1 {
			t.Fatalf("the chat whose commit reply was lost is stored %d times, want once (MySQL got its COMMIT)", len(stored))
		}
		return stored[0]
	}
	var id int64
	switch {
	case f.ok():
		t.Logf("the server found out that the chat was stored")
		id = f.obj("message").num("id")
		if stored := storedOnce(); stored.num("id") != id {
			t.Fatalf("acknowledged %v, stored %v", f, stored)
		}
	case f.code() == "unavailable":
		stored := storedOnce()
		// The sender repeats it with the same cid: ok, the stored message.
		m := faultExpect(t, a, faultReplyLimit, "", "chat", chat).obj("message")
		if id = m.num("id"); id != stored.num("id") {
			t.Fatalf("repeat with the same cid: message %v, want the stored one %v", m, stored)
		}
		storedOnce()
	default:
		t.Fatalf("chat: want ok or unavailable, got %v", f)
	}

	// b was online when the chat was acknowledged ok: b gets it live.
	live := false
	deadline := time.Now().Add(3 * time.Second)
	for !live && time.Now().Before(deadline) {
		select {
		case fr := <-b.frames:
			live = fr.str("type") == "message" && fr.obj("message").num("id") == id
		case <-time.After(50 * time.Millisecond):
		}
	}
	if !live {
		t.Errorf("message %d was acknowledged ok while its recipient was online, but not pushed live", id)
	}
	// And it is pending for b until acked.
	b2, _ := loginAs(t, ts.addr, b.user)
	faultCollect(t, b2, []int64{id}, 5*time.Second)
}

// TestShutdownDuringDatabaseOutageMySQL: a graceful shutdown while the
// database is refused or hangs still ends in bounded time: the requests in
// flight get their replies (unavailable), then every client the shutdown
// push, and the server stops.
func TestShutdownDuringDatabaseOutageMySQL(t *testing.T) {
	for _, tc := range []struct {
		name  string
		down  func(*proxyTCP)
		limit time.Duration
	}{
		{"refused", (*proxyTCP).cut, 5 * time.Second},
		{"hanging", (*proxyTCP).freeze, faultHangLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			direct := mysqlURL(t)
			p, viaProxy := proxyMySQL(t, direct)
			ts := startServer(t, viaProxy)
			a := newUser(t, ts.addr, "sa")
			b := newUser(t, ts.addr, "sb")
			a.must("chat", map[string]any{"to": b.user, "text": "before"})
			b.messages(1, 5*time.Second)

			tc.down(p)
			chat := a.send("chat", map[string]any{"to": b.user, "text": "in flight"})
			hist := b.send("history", map[string]any{"with": a.user})
			time.Sleep(100 * time.Millisecond) // let both reach their handlers
			start := time.Now()
			stopped := make(chan struct{})
			go func() {
				defer close(stopped)
				ts.srv.Shutdown(context.Background())
			}()
			for _, w := range []struct {
				c   *testClient
				rid int
			}{{a, chat}, {b, hist}} {
				f, took, err := faultExchangeWait(w.c, w.rid, tc.limit)
				if err != nil {
					t.Fatal(err)
				}
				if f.ok() || f.code() != "unavailable" {
					t.Fatalf("request in flight at shutdown: want unavailable, got %v", f)
				}
				w.c.push("shutdown", tc.limit)
				w.c.closed(tc.limit)
				t.Logf("%s: unavailable, shutdown push and close within %v", f.str("type"), took.Round(time.Millisecond))
			}
			select {
			case <-stopped:
			case <-time.After(tc.limit):
				t.Fatalf("Shutdown still running %v after it began", tc.limit)
			}
			t.Logf("shutdown took %v", time.Since(start).Round(time.Millisecond))
			if err := <-ts.done; err != nil {
				t.Fatalf("serve: %v", err)
			}
			ts.srv = nil // stopped: nothing for the cleanup to do
		})
	}
}

// faultExchangeWait waits up to limit for the reply to rid, sent earlier,
// keeping the pushes that come first.
func faultExchangeWait(c *testClient, rid int, limit time.Duration) (frame, time.Duration, error) {
	start := time.Now()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				return nil, time.Since(start), fmt.Errorf("rid %d: connection closed while waiting for the reply", rid)
			}
			if _, hasRID := f["rid"]; !hasRID && f.str("type") != "error" {
				c.pushes = append(c.pushes, f)
				continue
			}
			if got := f.num("rid"); got != int64(rid) {
				return f, time.Since(start), fmt.Errorf("reply out of order: want rid %d, got %v", rid, f)
			}
			return f, time.Since(start), nil
		case <-timer.C:
			return nil, limit, fmt.Errorf("rid %d: no reply within %v", rid, limit)
		}
	}
}
