package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// The abuse limits of docs/protocol.md, "Limits and abuse", each attacked:
// the connection caps, the login deadline, the send buffer (back-pressure,
// slow connections closed; history_test.go shrinks history) and half-sent frames.

// queuedBytes is what the connection has queued, in all and in pushes.
func (c *conn) queuedBytes() (all, pushes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queued, c.pushBytes
}

// serverConn finds the server's side of the connection logged in as user.
func serverConn(t *testing.T, ts *testServer, user int64) *conn {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		ts.srv.mu.Lock()
		for c := range ts.srv.conns {
			if c.userID() == user {
				ts.srv.mu.Unlock()
				return c
			}
		}
		ts.srv.mu.Unlock()
	}
	t.Fatalf("no connection of user %d on the server", user)
	return nil
}

// watchQueue samples the bytes queued on c until ready has held for 300 ms
// (at most 20 s), and returns the most it saw.
func watchQueue(t *testing.T, c *conn, ready func() bool) (peak int) {
	t.Helper()
	var since time.Time
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		q, _ := c.queuedBytes()
		peak = max(peak, q)
		switch {
		case !ready():
			since = time.Time{}
		case since.IsZero():
			since = time.Now()
		case time.Since(since) > 300*time.Millisecond:
			return peak
		}
	}
	t.Errorf("not ready within 20 s")
	return peak
}

// requestsHandled is how many requests of type typ the server has handled.
func requestsHandled(ts *testServer, typ string) int64 {
	m := &ts.srv.metrics.requests
	m.mu.Lock()
	defer m.mu.Unlock()
	if v := m.values[typ]; v != nil {
		return v.Load()
	}
	return 0
}

// rawConn is a connection the test reads only when it chooses to.
type rawConn struct {
	net.Conn
	t  *testing.T
	br *bufio.Reader
	// repliesOnly makes line pass over message pushes too: a test of
	// replies on a sender's connection may get late copies of what it sent
	// before.
	repliesOnly bool
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{Conn: nc, t: t, br: bufio.NewReaderSize(nc, 64<<10)}
}

// line reads one frame, as sent, without its '\n'.
// line returns the next line but the synced push that ends a login's
// backlog, which these tests of replies in order pass over.
func (r *rawConn) line() []byte {
	r.t.Helper()
	for {
		r.SetReadDeadline(time.Now().Add(20 * time.Second))
		b, err := r.br.ReadBytes('\n')
		if err != nil {
			r.t.Fatalf("read: %v", err)
		}
		b = b[:len(b)-1]
		if string(b) == `{"type":"synced"}` || r.repliesOnly && bytes.HasPrefix(b, []byte(`{"type":"message",`)) {
			continue
		}
		return b
	}
}

func decodeLine(t *testing.T, line []byte) frame {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(line))
	d.UseNumber()
	var f frame
	if err := d.Decode(&f); err != nil || d.More() {
		t.Fatalf("frame is not one JSON object (%v): %.200q", err, line)
	}
	return f
}

// login logs user in on the raw connection and reads the reply.
func (r *rawConn) login(user int64) {
	r.t.Helper()
	fmt.Fprintf(r, `{"type":"login","id":%d,"password":%q}`+"\n", user, testPassword)
	if f := decodeLine(r.t, r.line()); !f.ok() {
		r.t.Fatalf("login: %v", f)
	}
}

// closedAtOnce checks that the server closes nc without sending anything.
func closedAtOnce(t *testing.T, nc net.Conn) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := nc.Read(make([]byte, 1))
	if n > 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("want the connection closed at once without a frame: read %d bytes, %v", n, err)
	}
}

// bigText is the largest text, and the costliest to encode: 4096 control
// characters, 24,576 bytes as JSON.
var bigText = strings.Repeat("\x01", 4096)

// bigChats sends n big texts from c to user, pipelined, and returns the
// messages' ids in order.
func bigChats(t *testing.T, c *testClient, to int64, n int) []int64 {
	t.Helper()
	return chats(t, c, to, bigText, n)
}

// twoUsers starts a server with -send-buffer sendBuf (and edit) and makes
// two users on it, named after prefix and prefix+"b".
func twoUsers(t *testing.T, db string, sendBuf int, prefix string, edit ...func(*Config)) (ts *testServer, a, b *testClient) {
	t.Helper()
	ts = startServer(t, db, append([]func(*Config){func(c *Config) { c.SendBuffer = byteSize(sendBuf) }}, edit...)...)
	return ts, newUser(t, ts.addr, prefix), newUser(t, ts.addr, prefix+"b")
}

func TestConnLimiter(t *testing.T) {
	t.Parallel()
	tcp := func(s string) net.Addr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }
	type step struct {
		addr net.Addr
		want refusal
	}
	tests := []struct {
		name            string
		maxConns, perIP int
		steps           []step
	}{
		{"total", 2, 5, []step{
			{tcp("10.0.0.1:1"), admitted}, {tcp("10.0.0.2:1"), admitted}, {tcp("10.0.0.3:1"), refusedMaxConns},
		}},
		{"per address, ports and zones aside", 10, 2, []step{
			{tcp("10.0.0.1:1"), admitted}, {tcp("10.0.0.1:2"), admitted}, {tcp("10.0.0.1:3"), refusedMaxConnsPerIP},
			{tcp("10.0.0.2:1"), admitted},
			{tcp("[fe80::1%eth0]:1"), admitted}, {tcp("[fe80::1%eth1]:2"), admitted}, {tcp("[fe80::1]:3"), refusedMaxConnsPerIP},
		}},
		{"IPv4-mapped IPv6 is IPv4", 10, 1, []step{
			{tcp("192.0.2.7:1"), admitted}, {tcp("[::ffff:192.0.2.7]:2"), refusedMaxConnsPerIP},
		}},
		{"IPv6 by its /64", 10, 2, []step{
			{tcp("[2001:db8::1]:1"), admitted}, {tcp("[2001:db8::2]:1"), admitted}, {tcp("[2001:db8::1]:9"), refusedMaxConnsPerIP},
			{tcp("[2001:db8:0:1::1]:1"), admitted},
		}},
		{"loopback: a local proxy, only the total counts", 3, 1, []step{
			{tcp("127.0.0.1:1"), admitted}, {tcp("127.0.0.1:2"), admitted}, {tcp("[::1]:3"), admitted}, {tcp("127.0.0.2:4"), refusedMaxConns},
		}},
		{"a trusted proxy: only the total counts", 4, 1, []step{
			{tcp("10.0.0.10:1"), admitted}, {tcp("10.0.0.10:2"), admitted}, {tcp("[2001:db8:1::7]:3"), admitted},
			{tcp("10.0.0.11:1"), admitted}, {tcp("10.0.0.12:1"), refusedMaxConns},
		}},
		{"not IP: one key", 10, 1, []step{
			{pipeAddr{}, admitted}, {pipeAddr{}, refusedMaxConnsPerIP},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := newConnLimiter(tc.maxConns, tc.perIP, []netip.Prefix{netip.MustParsePrefix("10.0.0.10/32"), netip.MustParsePrefix("2001:db8:1::/48")})
			var releases []func()
			for i, s := range tc.steps {
				release, why := l.acquire(s.addr)
				if why != s.want {
					t.Fatalf("step %d (%v): %v, want %v", i, s.addr, why, s.want)
				}
				if (release != nil) != (why == admitted) {
					t.Fatalf("step %d: release %v with %v", i, release != nil, why)
				}
				if release != nil {
					releases = append(releases, release)
				}
			}
			// Every slot frees: the refused get in once the others have gone.
			for _, r := range releases {
				r()
			}
			if n, _ := l.held(tc.steps[0].addr); n != 0 || len(l.byIP) != 0 {
				t.Fatalf("after every release: %d held, %d addresses", n, len(l.byIP))
			}
			for i, s := range tc.steps {
				if s.want != admitted {
					if release, why := l.acquire(s.addr); why != admitted {
						t.Fatalf("step %d again, alone: %v", i, why)
					} else {
						release()
					}
				}
			}
		})
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// dialFrom connects to addr from the loopback address src (127.0.0.2 is
// as good as 127.0.0.1 on Linux).
func dialFrom(t *testing.T, addr, src string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// served checks that the server answers a ping on nc.
func served(t *testing.T, nc net.Conn) {
	t.Helper()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(nc, `{"type":"ping"}`+"\n"); err != nil {
		t.Fatalf("ping: %v", err)
	}
	line, err := bufio.NewReader(nc).ReadString('\n')
	if err != nil || !strings.Contains(line, `"ok":true`) {
		t.Fatalf("ping: %q %v", line, err)
	}
	nc.SetDeadline(time.Time{})
}

func TestLimitConnectionCaps(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name            string
		maxConns, perIP int
		from            []string // the source address of each connection, in order
		refused         int      // the index of the one refused
		reason          string
	}{
		{"max-conns", 3, 10, []string{"127.0.0.1", "127.0.0.2", "127.0.0.1", "127.0.0.2"}, 3, "max_conns"},
		{"max-conns-per-ip", 10, 2, []string{"127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.2"}, 2, "max_conns_per_ip"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// The clients are on loopback, which the per-address cap
			// leaves to a local proxy: count it here as a remote host.
			ts, _ := startHooked(t, sqliteURL(t), func(s *Server) { s.limiter.limitLoopback = true }, func(c *Config) {
				c.MaxConns, c.MaxConnsPerIP = tc.maxConns, tc.perIP
			})
			conns := make([]net.Conn, len(tc.from))
			for i, src := range tc.from {
				conns[i] = dialFrom(t, ts.addr, src)
				if i == tc.refused {
					closedAtOnce(t, conns[i])
				} else {
					served(t, conns[i])
				}
			}
			var metrics bytes.Buffer
			ts.srv.metrics.WritePrometheus(&metrics)
			if want := fmt.Sprintf("chat_connections_refused_total{reason=%q} 1\n", tc.reason); !strings.Contains(metrics.String(), want) {
				t.Fatalf("metrics lack %q:\n%s", want, metrics.String())
			}
			if got := ts.srv.metrics.connectionsTotal[transportTCP].Load(); got != int64(len(tc.from)-1) {
				t.Fatalf("%d connections served, want %d", got, len(tc.from)-1)
			}

			// One from the refused one's address leaves: a slot frees.
			src := tc.from[tc.refused]
			for i, s := range tc.from {
				if s == src && i != tc.refused {
					conns[i].Close()
					break
				}
			}
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
				total, _ := ts.srv.limiter.held(conns[0].LocalAddr())
				if total < len(tc.from)-1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the slot of a closed connection was not freed: %d held", total)
				}
			}
			served(t, dialFrom(t, ts.addr, src))
		})
	}
}

func TestLimitLoginTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	ts := startServer(t, sqliteURL(t), func(c *Config) { c.LoginTimeout = timeout })
	tests := []struct {
		name string
		// run drives the connection; it returns when the login deadline
		// should start: dialed (taken before the dial, so that a slow
		// return from it under load cannot make the deadline look early),
		// or a logout.
		run        func(t *testing.T, c *testClient, dialed time.Time) (from time.Time)
		wantClosed bool
	}{
		{"blank lines and pings do not extend it", func(t *testing.T, c *testClient, dialed time.Time) time.Time {
			go func() {
				for range 40 { // 2 s, far past the deadline
					if c.write([]byte("\n \r\n")) != nil {
						return
					}
					if _, err := c.wireConn.send("ping", nil); err != nil {
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			}()
			return dialed
		}, true},
		{"a register does not extend it", func(t *testing.T, c *testClient, dialed time.Time) time.Time {
			c.must("register", map[string]any{"name": uniqueName("lt"), "password": testPassword})
			return dialed
		}, true},
		{"a half-sent frame", func(t *testing.T, c *testClient, dialed time.Time) time.Time {
			c.sendRaw(`{"type":"ping","pad":"` + strings.Repeat("x", 64<<10-30))
			return dialed
		}, true},
		{"a failed login does not stop it", func(t *testing.T, c *testClient, dialed time.Time) time.Time {
			c.fails("bad_credentials", "login", map[string]any{"name": "nobody_at_all", "password": testPassword})
			return dialed
		}, true},
		{"a login stops it", func(t *testing.T, c *testClient, _ time.Time) time.Time {
			name := uniqueName("lt")
			c.must("register", map[string]any{"name": name, "password": testPassword})
			c.must("login", map[string]any{"name": name, "password": testPassword})
			for range 10 { // a second, the idle timeout's matter now
				time.Sleep(100 * time.Millisecond)
				c.must("ping", nil)
			}
			return time.Time{}
		}, false},
		{"a logout starts it again, whole", func(t *testing.T, c *testClient, _ time.Time) time.Time {
			name := uniqueName("lt")
			c.must("register", map[string]any{"name": name, "password": testPassword})
			c.must("login", map[string]any{"name": name, "password": testPassword})
			time.Sleep(2 * timeout)
			c.must("logout", nil)
			return time.Now()
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dialed := time.Now()
			c := dial(t, ts.addr)
			from := tc.run(t, c, dialed)
			if !tc.wantClosed {
				c.must("ping", nil)
				return
			}
			c.closed(5 * time.Second)
			if d := time.Since(from); d < timeout-50*time.Millisecond || d > 3*time.Second {
				t.Fatalf("closed %v after the deadline started, want about %v", d, timeout)
			}
		})
	}
	t.Cleanup(func() {
		if n := ts.srv.metrics.loginTimeouts.Load(); n != 5 {
			t.Errorf("chat_login_timeouts_total %d, want 5", n)
		}
	})
}

func TestLimitSendBufferBackPressure(t *testing.T) {
	// 50 pipelined history requests, each reply as big as -send-buffer, on
	// a connection that does not read: the server stops reading it and its
	// queue stays bounded; when the client reads, every reply comes, whole
	// and in order.
	t.Parallel()
	forEachStore(t, func(t *testing.T, db string) {
		const sendBuf = 512 << 10
		ts, a, b := twoUsers(t, db, sendBuf, "bp")
		ids := bigChats(t, a, b.user, 200)
		a.must("logout", nil)

		raw := dialRaw(t, ts.addr)
		raw.login(a.user)
		sc := serverConn(t, ts, a.user)
		var reqs bytes.Buffer
		for i := range 50 {
			fmt.Fprintf(&reqs, `{"type":"history","with":%d,"limit":200,"rid":%d}`+"\n", b.user, i)
		}
		if _, err := raw.Write(reqs.Bytes()); err != nil {
			t.Fatal(err)
		}
		// Until the reader has waited a while for room (the first replies
		// go to the socket buffers; a loaded machine takes its time).
		peak := watchQueue(t, sc, func() bool { return ts.srv.metrics.sendBufferWaits.Load() > 0 })
		handled := requestsHandled(ts, "history")
		t.Logf("not reading: %d of 50 handled, %d bytes queued at the peak (-send-buffer %d)", handled, peak, sendBuf)
		if peak > 2*sendBuf {
			t.Errorf("%d bytes queued, over twice -send-buffer", peak)
		}
		if peak < sendBuf/2 {
			t.Errorf("%d bytes queued at the peak: the queue never filled", peak)
		}
		if handled >= 50 || ts.srv.metrics.sendBufferWaits.Load() == 0 {
			t.Errorf("the server kept reading: %d history requests handled, %d waits", handled, ts.srv.metrics.sendBufferWaits.Load())
		}

		for i := range 50 {
			line := raw.line()
			if len(line)+1 > sendBuf {
				t.Fatalf("reply %d: %d bytes, over -send-buffer", i, len(line)+1)
			}
			f := decodeLine(t, line)
			if f.num("rid") != int64(i) {
				t.Fatalf("reply %d has rid %v", i, f["rid"])
			}
			for _, m := range checkPage(t, f, ids) {
				if m.str("text") != bigText {
					t.Fatalf("reply %d: a message's text is not whole", i)
				}
			}
		}
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			if q, _ := sc.queuedBytes(); q == 0 {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("%d bytes still counted as queued once all was read", q)
			}
		}
	})
}

func TestLimitPipelinedChatsBounded(t *testing.T) {
	// Deferred replies count while their work runs: a client pipelining
	// chats without reading is held back like any other.
	t.Parallel()
	const sendBuf = 128 << 10
	ts, a, b := twoUsers(t, sqliteURL(t), sendBuf, "pc")
	b.must("logout", nil)
	a.must("logout", nil)
	raw := dialRaw(t, ts.addr)
	raw.login(a.user)
	sc := serverConn(t, ts, a.user)
	const n = 600
	text, _ := json.Marshal(bigText)
	var reqs bytes.Buffer
	for i := range n {
		fmt.Fprintf(&reqs, `{"type":"chat","to":%d,"text":%s,"rid":%d}`+"\n", b.user, text, i)
	}
	go raw.Write(reqs.Bytes()) // blocks while the server does not read
	peak := watchQueue(t, sc, func() bool { return ts.srv.metrics.sendBufferWaits.Load() > 0 })
	t.Logf("not reading: %d bytes queued at the peak (-send-buffer %d)", peak, sendBuf)
	if peak > 2*sendBuf {
		t.Errorf("%d bytes queued, over twice -send-buffer", peak)
	}
	for i := range n {
		if f := decodeLine(t, raw.line()); !f.ok() || f.num("rid") != int64(i) {
			t.Fatalf("reply %d: %v", i, f)
		}
	}
}

func TestLimitSlowPushesPastSendBuffer(t *testing.T) {
	// Pushes cannot wait: a connection whose unsent pushes pass
	// -send-buffer in bytes (far below -send-queue in number) is closed,
	// and what it missed stays pending for its next login.
	t.Parallel()
	forEachStore(t, func(t *testing.T, db string) {
		const sendBuf = 128 << 10
		ts, sender, slow := twoUsers(t, db, sendBuf, "sp")
		slow.must("logout", nil)
		raw := dialRaw(t, ts.addr)
		raw.Conn.(*net.TCPConn).SetReadBuffer(4096)
		raw.login(slow.user)
		var ids []int64
		for len(ids) < 2000 && ts.srv.metrics.slowClosed.Load() == 0 {
			ids = append(ids, bigChats(t, sender, slow.user, 20)...)
		}
		deadline := time.Now().Add(10 * time.Second)
		for ts.srv.metrics.slowClosed.Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if ts.srv.metrics.slowClosed.Load() == 0 {
			t.Fatalf("the connection that never reads is still open after %d pushes", len(ids))
		}
		t.Logf("closed as too slow after %d pushes of about %d bytes", len(ids), len(bigText)*6)
		if dropped := ts.srv.metrics.pushesDropped.Load(); dropped >= int64(ts.srv.cfg.SendQueue) {
			t.Fatalf("%d pushes dropped: closed by -send-queue, not by bytes", dropped)
		}
		again, _ := loginAs(t, ts.addr, slow.user)
		msgs := again.messages(len(ids), 30*time.Second)
		for i, m := range msgs {
			if m.num("id") != ids[i] {
				t.Fatalf("backlog %d: id %d, want %d", i, m.num("id"), ids[i])
			}
		}
	})
}

func TestLimitBacklogBoundedBySendBuffer(t *testing.T) {
	// The login backlog is streamed as fast as the connection drains,
	// never more than -send-buffer ahead of it.
	t.Parallel()
	forEachStore(t, func(t *testing.T, db string) {
		const sendBuf = 256 << 10
		ts, a, b := twoUsers(t, db, sendBuf, "bl")
		b.must("logout", nil)
		ids := bigChats(t, a, b.user, 300)
		raw := dialRaw(t, ts.addr)
		raw.login(b.user)
		sc := serverConn(t, ts, b.user)
		peak := watchQueue(t, sc, func() bool { return ts.srv.metrics.sendBufferWaits.Load() > 0 })
		t.Logf("not reading: %d bytes queued at the peak (-send-buffer %d)", peak, sendBuf)
		if peak > sendBuf+64<<10 {
			t.Errorf("%d bytes queued, more than a frame over -send-buffer", peak)
		}
		for i, id := range ids {
			f := decodeLine(t, raw.line())
			if m := f.obj("message"); f.str("type") != "message" || m.num("id") != id || m.str("text") != bigText {
				t.Fatalf("backlog %d: %.200v, want message %d", i, f, id)
			}
		}
	})
}

func TestLimitHalfSentFramesBounded(t *testing.T) {
	// Connections that hold a half-sent frame each keep one buffer of at
	// most -max-frame, and the login deadline closes them.
	t.Parallel()
	ts := startServer(t, sqliteURL(t), func(c *Config) {
		c.LoginTimeout = time.Second
		c.MaxConnsPerIP = 1000
	})
	const n = 100
	line := []byte(`{"type":"ping","pad":"` + strings.Repeat("x", 64<<10-30))
	var wg sync.WaitGroup
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = dialFrom(t, ts.addr, "127.0.0.1")
		wg.Go(func() { conns[i].Write(line) })
	}
	wg.Wait()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if n := requestsHandled(ts, "ping"); n != 0 {
			t.Fatalf("%d pings handled: the frames were not half-sent", n)
		}
		ts.srv.mu.Lock()
		held := len(ts.srv.conns)
		ts.srv.mu.Unlock()
		if held == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d connections held", held, n)
		}
	}
	for _, nc := range conns {
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := nc.Read(make([]byte, 1)); n > 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("a half-sent frame's connection: read %d bytes, %v; want closed", n, err)
		}
	}
	if got := ts.srv.metrics.loginTimeouts.Load(); got != n {
		t.Fatalf("chat_login_timeouts_total %d, want %d", got, n)
	}
}
