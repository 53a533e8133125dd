package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Test helpers: real servers on 127.0.0.1:0 over real stores, and a small
// line-protocol client. The MySQL half of every suite needs CHAT_TEST_MYSQL,
// a DSN of an account that may create databases; scripts/test.sh sets it.

func TestMain(m *testing.M) {
	if os.Getenv("CHAT_TEST_MYSQL") == "" {
		fmt.Fprintln(os.Stderr, "note: CHAT_TEST_MYSQL is not set: the MySQL half of the suite is skipped (scripts/test.sh runs everything)")
	}
	os.Exit(m.Run())
}

// forEachStore runs fn once on a fresh SQLite file and once on a fresh
// MySQL database.
func forEachStore(t *testing.T, fn func(t *testing.T, db string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, sqliteURL(t)) })
	t.Run("mysql", func(t *testing.T) { fn(t, mysqlURL(t)) })
}

func sqliteURL(t testing.TB) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "chat.db")
}

// testService returns the variable naming a service the test needs,
// skipping the test when it is unset (failing instead under
// CHAT_TEST_REQUIRE=1, as in the full run).
func testService(t testing.TB, variable, skipped string) string {
	t.Helper()
	v := os.Getenv(variable)
	if v == "" {
		if os.Getenv("CHAT_TEST_REQUIRE") != "" {
			t.Fatalf("%s is not set but CHAT_TEST_REQUIRE is: run scripts/test.sh", variable)
		}
		t.Skipf("%s not set: skipping %s (scripts/test.sh runs it)", variable, skipped)
	}
	return v
}

// mysqlAdminDSN returns CHAT_TEST_MYSQL: a DSN of an account that may
// create databases.
func mysqlAdminDSN(t testing.TB) string {
	t.Helper()
	return testService(t, "CHAT_TEST_MYSQL", "the MySQL half")
}

// mysqlURL creates a private database for the test and drops it after.
func mysqlURL(t testing.TB) string {
	t.Helper()
	cfg, err := mysql.ParseDSN(mysqlAdminDSN(t))
	if err != nil {
		t.Fatalf("CHAT_TEST_MYSQL: %v", err)
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	name := "chat_test_" + hex.EncodeToString(rnd[:])
	admin := cfg.Clone()
	admin.DBName = ""
	db, err := sql.Open("mysql", admin.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		db.Close()
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		db.Exec("DROP DATABASE IF EXISTS " + name)
		db.Close()
	})
	cfg.DBName = name
	return "mysql:" + cfg.FormatDSN()
}

// testServer is a server on 127.0.0.1:0 that a test can stop and start again
// on the same store.
type testServer struct {
	t    testing.TB
	cfg  Config
	hook func(*Server) // run on every new Server before it listens; may be nil
	logs *syncBuffer   // the servers' log, when kept (startHooked)
	srv  *Server
	addr string
	web  string // the web port's address; empty without one (withWeb)
	done chan error
}

func testConfig(db string) Config {
	cfg := defaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.DB = db
	cfg.BcryptCost = 4 // bcrypt.MinCost: tests log in a lot
	cfg.Rate = 0
	cfg.Web = "" // no web port, unless a test asks (withWeb): no fight over :8080
	return cfg
}

// startServer starts a server; edit adjusts its config first (nil: no
// change).
func startServer(t testing.TB, db string, edit ...func(*Config)) *testServer {
	t.Helper()
	return newTestServer(t, db, nil, nil, edit)
}

// startHooked starts a server like startServer, with hook run on the
// Server before it listens (to set test hooks; again on restart) and its
// log kept.
func startHooked(t testing.TB, db string, hook func(*Server), edit ...func(*Config)) (*testServer, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	return newTestServer(t, db, hook, logs, edit), logs
}

func newTestServer(t testing.TB, db string, hook func(*Server), logs *syncBuffer, edit []func(*Config)) *testServer {
	t.Helper()
	cfg := testConfig(db)
	for _, e := range edit {
		if e != nil {
			e(&cfg)
		}
	}
	ts := &testServer{t: t, cfg: cfg, hook: hook, logs: logs}
	ts.start()
	t.Cleanup(ts.stop)
	return ts
}

func testLogger() *slog.Logger {
	if os.Getenv("CHAT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func (ts *testServer) start() {
	ts.t.Helper()
	log := testLogger()
	if ts.logs != nil {
		log = slog.New(slog.NewTextHandler(ts.logs, nil))
	}
	srv, err := NewServer(context.Background(), ts.cfg, log)
	if err != nil {
		ts.t.Fatalf("new server: %v", err)
	}
	if ts.hook != nil {
		ts.hook(srv)
	}
	if err := srv.Listen(); err != nil {
		ts.t.Fatalf("listen: %v", err)
	}
	ts.srv, ts.addr, ts.done = srv, srv.Addr().String(), make(chan error, 1)
	// Restart on the same port, so clients can reconnect to one address.
	ts.cfg.Listen = ts.addr
	if a := srv.WebAddr(); a != nil {
		ts.web = a.String()
		ts.cfg.Web = ts.web
	}
	go func() { ts.done <- srv.Serve() }()
}

// stop shuts the server down gracefully; safe to call twice.
func (ts *testServer) stop() {
	if ts.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		ts.t.Errorf("shutdown: %v", err)
	}
	if err := <-ts.done; err != nil {
		ts.t.Errorf("serve: %v", err)
	}
	ts.srv = nil
}

func (ts *testServer) restart() {
	ts.t.Helper()
	ts.stop()
	ts.start()
}

// frame is one decoded frame from the server.
type frame map[string]any

func (f frame) str(k string) string { s, _ := f[k].(string); return s }
func (f frame) ok() bool            { b, _ := f["ok"].(bool); return b }
func (f frame) code() string        { return f.str("code") }
func (f frame) obj(k string) frame {
	m, _ := f[k].(map[string]any)
	return frame(m)
}
func (f frame) num(k string) int64 {
	n, _ := f[k].(json.Number)
	v, _ := n.Int64()
	return v
}
func (f frame) list(k string) []frame {
	raw, _ := f[k].([]any)
	out := make([]frame, len(raw))
	for i, x := range raw {
		m, _ := x.(map[string]any)
		out[i] = m
	}
	return out
}

// wireConn is the tests' protocol connection. Frames are decoded on a
// goroutine (numbers kept exact) and queued in order; requests get fresh
// numeric rids. It returns errors instead of failing a test, so that
// traffic goroutines can use it; testClient wraps it for a test's own goroutine.
type wireConn struct {
	nc     net.Conn
	frames chan frame  // closed when the connection ends
	raw    chan string // the lines as sent, while there is room
	done   chan struct{}
	once   sync.Once
	rid    int
	bad    atomic.Pointer[string] // a line that was not JSON; the reading stopped there
}

var errConnClosed = errors.New("connection closed")

// dialWire connects to addr; up to queue frames wait for the reader.
func dialWire(addr string, queue int) (*wireConn, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return newWireConn(nc, queue), nil
}

// newWireConn reads frames from nc, queue of them at most unread.
func newWireConn(nc net.Conn, queue int) *wireConn {
	c := &wireConn{nc: nc, frames: make(chan frame, queue), raw: make(chan string, queue), done: make(chan struct{})}
	go c.read()
	return c
}

func (c *wireConn) read() {
	defer close(c.frames)
	br := bufio.NewReaderSize(c.nc, 64<<10)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return // a partial last line is a connection cut mid-frame
		}
		line = strings.TrimSuffix(line, "\n")
		d := json.NewDecoder(strings.NewReader(line))
		d.UseNumber()
		var f frame
		if err := d.Decode(&f); err != nil {
			c.bad.Store(&line)
			return
		}
		select {
		case c.raw <- line:
		default:
		}
		select {
		case c.frames <- f:
		case <-c.done:
			return
		}
	}
}

func (c *wireConn) close() {
	c.once.Do(func() {
		close(c.done)
		c.nc.Close()
	})
}

// write writes bytes as they are.
func (c *wireConn) write(b []byte) error {
	c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.nc.Write(b)
	return err
}

// send writes one request with a fresh rid and returns the rid.
func (c *wireConn) send(typ string, fields map[string]any) (int, error) {
	c.rid++
	m := map[string]any{"type": typ, "rid": c.rid}
	for k, v := range fields {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return c.rid, c.write(append(b, '\n'))
}

// call sends a request and waits for its reply; pushes on the way go to
// onPush. An error frame (no rid) counts as the reply.
func (c *wireConn) call(typ string, fields map[string]any, within time.Duration, onPush func(frame)) (frame, error) {
	rid, err := c.send(typ, fields)
	if err != nil {
		return nil, err
	}
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				return nil, errConnClosed
			}
			if _, isReply := f["rid"]; !isReply {
				if f.str("type") == "error" {
					return f, nil
				}
				if onPush != nil {
					onPush(f)
				}
				continue
			}
			if f.num("rid") == int64(rid) {
				return f, nil
			}
		case <-timer.C:
			return nil, fmt.Errorf("no %s reply within %v", typ, within)
		}
	}
}

// testClient is a test's own connection: failures fail the test; replies are
// matched to requests by rid, and pushes are kept until asked for.
type testClient struct {
	*wireConn
	t      testing.TB
	pushes []frame
	user   int64
	// synced counts the synced pushes seen: next passes over them, so
	// that tests of replies and messages in order need not know of them.
	synced int
}

func dial(t testing.TB, addr string) *testClient {
	t.Helper()
	wc, err := dialWire(addr, 100000)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	return clientOn(t, wc)
}

// clientOn makes wc a test client, closed at the test's end, which fails
// the test if the server sent a line that is not JSON.
func clientOn(t testing.TB, wc *wireConn) *testClient {
	c := &testClient{wireConn: wc, t: t}
	t.Cleanup(func() {
		c.close()
		if line := c.bad.Load(); line != nil {
			t.Errorf("server sent a frame that is not JSON: %q", *line)
		}
	})
	return c
}

// sendRaw writes bytes as they are.
func (c *testClient) sendRaw(s string) {
	c.t.Helper()
	if err := c.write([]byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// send writes one request with a fresh numeric rid and returns the rid.
func (c *testClient) send(typ string, fields map[string]any) int {
	c.t.Helper()
	rid, err := c.wireConn.send(typ, fields)
	if err != nil {
		c.t.Fatalf("write: %v", err)
	}
	return rid
}

// next returns the next frame, failing the test after timeout.
func (c *testClient) next(timeout time.Duration) frame {
	c.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				if line := c.bad.Load(); line != nil {
					c.t.Fatalf("server sent a frame that is not JSON: %q", *line)
				}
				c.t.Fatalf("connection closed while waiting for a frame")
			}
			if _, reply := f["rid"]; !reply && f.str("type") == "synced" {
				c.synced++
				continue
			}
			return f
		case <-deadline:
			c.t.Fatalf("no frame within %v", timeout)
		}
		return nil
	}
}

// waitSynced waits for the synced push that ends a login's backlog,
// keeping what comes before it.
func (c *testClient) waitSynced(timeout time.Duration) {
	c.t.Helper()
	deadline := time.After(timeout)
	for c.synced == 0 {
		select {
		case f, ok := <-c.frames:
			if !ok {
				c.t.Fatalf("connection closed while waiting for synced")
			}
			if _, reply := f["rid"]; !reply && f.str("type") == "synced" {
				c.synced++
				continue
			}
			c.pushes = append(c.pushes, f)
		case <-deadline:
			c.t.Fatalf("no synced push within %v (kept: %v)", timeout, c.pushes)
		}
	}
	c.synced--
}

// reply waits for the reply to rid, keeping pushes that come first.
func (c *testClient) reply(rid int) frame {
	c.t.Helper()
	for {
		f := c.next(10 * time.Second)
		if _, ok := f["rid"]; !ok && f.str("type") != "error" {
			c.pushes = append(c.pushes, f)
			continue
		}
		if got := f.num("rid"); got != int64(rid) {
			c.t.Fatalf("reply out of order: want rid %d, got %v", rid, f)
		}
		return f
	}
}

// req sends a request and returns its reply.
func (c *testClient) req(typ string, fields map[string]any) frame {
	c.t.Helper()
	return c.reply(c.send(typ, fields))
}

// must sends a request and fails the test unless the reply is ok.
func (c *testClient) must(typ string, fields map[string]any) frame {
	c.t.Helper()
	f := c.req(typ, fields)
	if !f.ok() {
		c.t.Fatalf("%s %v: %v", typ, fields, f)
	}
	return f
}

// fails sends a request and checks that it fails with code.
func (c *testClient) fails(code, typ string, fields map[string]any) frame {
	c.t.Helper()
	f := c.req(typ, fields)
	if f.ok() || f.code() != code {
		c.t.Fatalf("%s %v: want code %s, got %v", typ, fields, code, f)
	}
	return f
}

// push returns the first push of type typ, waiting up to timeout.
func (c *testClient) push(typ string, timeout time.Duration) frame {
	c.t.Helper()
	if f := c.takePush(typ); f != nil {
		return f
	}
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			c.t.Fatalf("no %s push within %v (kept: %v)", typ, timeout, c.pushes)
		}
		f := c.next(left)
		if f.str("type") == typ {
			if _, ok := f["rid"]; !ok {
				return f
			}
		}
		c.pushes = append(c.pushes, f)
	}
}

func (c *testClient) takePush(typ string) frame {
	for i, f := range c.pushes {
		if f.str("type") == typ {
			c.pushes = append(c.pushes[:i], c.pushes[i+1:]...)
			return f
		}
	}
	return nil
}

// quiet checks that no push of type typ arrives within d.
func (c *testClient) quiet(typ string, d time.Duration) {
	c.t.Helper()
	if f := c.takePush(typ); f != nil {
		c.t.Fatalf("unexpected %s push: %v", typ, f)
	}
	deadline := time.After(d)
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				return
			}
			if f.str("type") == typ {
				c.t.Fatalf("unexpected %s push: %v", typ, f)
			}
			c.pushes = append(c.pushes, f)
		case <-deadline:
			return
		}
	}
}

// closed waits until the server closes the connection, returning the frames
// that came before.
func (c *testClient) closed(timeout time.Duration) []frame {
	c.t.Helper()
	var got []frame
	deadline := time.After(timeout)
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				return got
			}
			got = append(got, f)
		case <-deadline:
			c.t.Fatalf("connection still open after %v", timeout)
		}
	}
}

// messages collects n message pushes (and those already kept).
func (c *testClient) messages(n int, timeout time.Duration) []frame {
	c.t.Helper()
	var got []frame
	for {
		f := c.takePush("message")
		if f == nil {
			break
		}
		got = append(got, f.obj("message"))
	}
	deadline := time.Now().Add(timeout)
	for len(got) < n {
		left := time.Until(deadline)
		if left <= 0 {
			c.t.Fatalf("got %d of %d messages within %v", len(got), n, timeout)
		}
		f := c.next(left)
		if f.str("type") == "message" {
			got = append(got, f.obj("message"))
		} else {
			c.pushes = append(c.pushes, f)
		}
	}
	return got
}

var userSeq struct {
	sync.Mutex
	n int
}

// uniqueName returns a fresh valid user name.
func uniqueName(prefix string) string {
	userSeq.Lock()
	defer userSeq.Unlock()
	userSeq.n++
	return fmt.Sprintf("%s%d", prefix, userSeq.n)
}

const testPassword = "password1"

// newUser registers and logs in a fresh user on a new connection.
func newUser(t testing.TB, addr, prefix string) *testClient {
	t.Helper()
	c := dial(t, addr)
	signUp(t, c, prefix, "")
	return c
}

// signUp registers a user named after prefix on c and logs it in, on
// device if one is given, waiting for its backlog to end.
func signUp(t testing.TB, c *testClient, prefix, device string) {
	t.Helper()
	name := uniqueName(prefix)
	c.user = c.must("register", map[string]any{"name": name, "password": testPassword}).obj("user").num("id")
	login := map[string]any{"name": name, "password": testPassword}
	if device != "" {
		login["device"] = device
	}
	c.must("login", login)
	c.waitSynced(10 * time.Second)
}

// login logs a known user in on a new connection and returns the reply.
func loginAs(t testing.TB, addr string, id int64) (*testClient, frame) {
	t.Helper()
	c := dial(t, addr)
	f := c.must("login", map[string]any{"id": id, "password": testPassword})
	c.user = id
	c.waitSynced(10 * time.Second) // the backlog before it stays in c.pushes
	return c, f
}

// Service and port helpers shared by the fault, cluster and command tests.

// healthStatus returns the status of GET /healthz, 0 when none came.
func healthStatus(admin string) int {
	hc := &http.Client{Timeout: 3 * time.Second}
	resp, err := hc.Get("http://" + admin + "/healthz")
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// waitHealth polls /healthz until it answers want; it returns how long that took.
func waitHealth(t testing.TB, admin string, want int, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	got := 0
	for time.Since(start) < within {
		if got = healthStatus(admin); got == want {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("/healthz on %s: want %d within %v, last got %d", admin, want, within, got)
	return 0
}

// freePort returns a port that is free now, from CHAT_PORTS (LO-HI) when
// set, else below the kernel's ephemeral range, so that no client
// connection takes it while the service on it is stopped.
func freePort(t testing.TB) int {
	t.Helper()
	lo, hi := 20000, 32767
	if r := os.Getenv("CHAT_PORTS"); r != "" {
		if _, err := fmt.Sscanf(r, "%d-%d", &lo, &hi); err != nil || lo < 1024 || lo > hi || hi > 65535 {
			t.Fatalf("CHAT_PORTS=%s: want LO-HI, 1024 <= LO <= HI <= 65535", r)
		}
	} else if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var elo, ehi int
		if _, err := fmt.Sscan(string(b), &elo, &ehi); err == nil {
			switch {
			case elo > 11024:
				lo, hi = 10000, elo-1
			case ehi < 64511:
				lo, hi = ehi+1, 65535
			}
		}
	}
	for range 500 {
		p := lo + mrand.IntN(hi-lo+1)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			ln.Close()
			return p
		}
	}
	t.Fatal("no free port")
	return 0
}

// privateRedis starts a Redis of the test's own (scripts/redis.sh),
// which the test may stop and start again on the same port.
func privateRedis(t testing.TB) (addr string, stop, start func() time.Duration) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "redis")
	port := strconv.Itoa(freePort(t))
	run := func(args ...string) time.Duration {
		t.Helper()
		begin := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", append([]string{filepath.Join("scripts", "redis.sh")}, args...)...)
		cmd.WaitDelay = 5 * time.Second
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("scripts/redis.sh %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return time.Since(begin)
	}
	stop = func() time.Duration { return run("stop", dir) }
	start = func() time.Duration { return run("start", dir, port) }
	start()
	t.Cleanup(func() { stop() })
	return "127.0.0.1:" + port, stop, start
}

// syncBuffer is a bytes.Buffer that a process or goroutine may write while
// the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
