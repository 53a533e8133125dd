package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// The web port (web.go, wsconn.go; docs/protocol.md, "WebSocket"): the
// protocol over WebSocket beside the client port, one frame a message,
// the limits and the end of a connection, the origin check, TLS, a cluster,
// and the embedded client's files.

// A WebSocket client and a TCP client chat, on one server: replies,
// pushes both ways, a second device's copy, presence, a kick, metrics.
func TestWebChat(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db, withWeb)
		a := newWSUser(t, ts.web, "wsa")
		b := newUser(t, ts.addr, "tcpb")
		befriend(t, a, b)

		m := a.must("chat", map[string]any{"to": b.user, "text": "from the browser", "cid": "w1"}).obj("message")
		if got := b.messages(1, 5*time.Second)[0]; got.num("id") != m.num("id") || got.str("text") != "from the browser" {
			t.Fatalf("TCP side got %v, sent %v", got, m)
		}
		b.must("ack", map[string]any{"ids": []int64{m.num("id")}})
		m2 := b.must("chat", map[string]any{"to": a.user, "text": "from the terminal <b>&</b> \u2603"}).obj("message")
		if got := a.messages(1, 5*time.Second)[0]; got.num("id") != m2.num("id") || got.str("text") != "from the terminal <b>&</b> \u2603" {
			t.Fatalf("WebSocket side got %v", got)
		}

		// A second device of a's, over WebSocket too: a's messages reach
		// it, and b sees no presence change.
		a2 := dialWS(t, ts.web)
		a2.must("login", map[string]any{"id": a.user, "password": testPassword, "device": "phone"})
		a2.user = a.user
		a2.waitSynced(10 * time.Second)
		m3 := a.must("chat", map[string]any{"to": b.user, "text": "copy to my phone"}).obj("message")
		if got := a2.messages(2, 5*time.Second); got[0].num("id") != m2.num("id") || got[1].num("id") != m3.num("id") {
			t.Fatalf("the other device got %v: want b's message, pending, and a's copy", got)
		}
		b.messages(1, 5*time.Second)

		var sb strings.Builder
		ts.srv.metrics.WritePrometheus(&sb)
		for _, want := range []string{`chat_connections{transport="ws"} 2`, `chat_connections{transport="tcp"} 1`, `chat_connections_total{transport="ws"} 2`} {
			if !strings.Contains(sb.String(), want+"\n") {
				t.Fatalf("metrics lack %q:\n%s", want, sb.String())
			}
		}

		// A login on a2's device elsewhere kicks a2: the kicked push, then
		// a normal close.
		a3 := dialWS(t, ts.web)
		a3.must("login", map[string]any{"id": a.user, "password": testPassword, "device": "phone"})
		got := wsClosedWith(t, a2, websocket.StatusNormalClosure)
		if len(got) == 0 || got[len(got)-1].str("type") != "kicked" {
			t.Fatalf("the replaced session got %v", got)
		}

		// A close frame from the client ends its sessions, as a TCP
		// close does: b sees a go offline once both devices are gone.
		a3.ws().ws.Close(websocket.StatusNormalClosure, "")
		b.quiet("presence", 200*time.Millisecond)
		a.ws().ws.Close(websocket.StatusGoingAway, "tab closed")
		if p := b.push("presence", 5*time.Second).obj("user"); p.num("id") != a.user || p["online"] != false {
			t.Fatalf("presence after the WebSocket closed: %v", p)
		}
		waitConns(t, ts, transportWS, 0)
	})
}

// waitConns waits until the server holds n connections of transport t.
func waitConns(t testing.TB, ts *testServer, tr transport, n int64) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ts.srv.metrics.connections[tr].Load() != n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d %v connections held, want %d", ts.srv.metrics.connections[tr].Load(), tr, n)
		}
	}
}

// Many frames sent at once, each its own message, get their replies in
// order; replies far longer than a write (history) arrive whole; a burst
// of pushes arrives whole and in order.
func TestWebPipelined(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db, withWeb)
		a := newWSUser(t, ts.web, "wpa")
		b := newWSUser(t, ts.web, "wpb")

		const n = 500
		var burst bytes.Buffer
		for i := range n {
			fmt.Fprintf(&burst, `{"type":"chat","rid":%d,"to":%d,"text":"pipelined %d %s","cid":"p%d"}`+"\n", 10000+i, b.user, i, strings.Repeat("x", 200), i)
		}
		a.sendRaw(burst.String()) // one Write: one message a line
		var ids []int64
		for i := range n {
			f := a.reply(10000 + i)
			if !f.ok() {
				t.Fatalf("reply %d: %v", i, f)
			}
			ids = append(ids, f.obj("message").num("id"))
		}
		msgs := b.messages(n, 20*time.Second)
		for i, m := range msgs {
			if m.num("id") != ids[i] || !strings.HasPrefix(m.str("text"), fmt.Sprintf("pipelined %d ", i)) {
				t.Fatalf("push %d: %v, want id %d", i, m, ids[i])
			}
		}
		// A history reply of about 60 KiB: a frame that spans the
		// server's writes goes out as one message, in fragments.
		h := b.must("history", map[string]any{"with": a.user, "limit": 200}).list("messages")
		if len(h) != 200 || h[199].num("id") != ids[n-1] {
			t.Fatalf("history: %d messages", len(h))
		}
		a.must("ping", nil)
	})
}

// One frame a text message: the edges.
func TestWebFrames(t *testing.T) {
	t.Parallel()
	const maxFrame = 1024
	ts := startServer(t, sqliteURL(t), withWeb, func(c *Config) { c.MaxFrame = maxFrame })
	ping := func(rid int) string { return fmt.Sprintf(`{"type":"ping","rid":%d}`, rid) }
	pad := func(n int) string { // a ping of exactly n bytes
		s := `{"type":"ping","rid":7,"pad":""}`
		return s[:len(s)-2] + strings.Repeat("p", n-len(s)) + `"}`
	}
	tests := []struct {
		name string
		typ  websocket.MessageType
		msg  string
		want string // the reply's: "ok", an error code, or "" for none
	}{
		{"a frame", websocket.MessageText, ping(7), "ok"},
		{"a blank message is ignored", websocket.MessageText, "", ""},
		{"whitespace is ignored", websocket.MessageText, " \t\r\n ", ""},
		{"a newline at the end is whitespace", websocket.MessageText, ping(7) + "\n", "ok"},
		{"CRLF at the end is whitespace", websocket.MessageText, ping(7) + "\r\n", "ok"},
		{"a newline between tokens is whitespace", websocket.MessageText, "{\"type\":\n\"ping\",\n\"rid\":7}", "ok"},
		{"two frames in one message", websocket.MessageText, ping(7) + "\n" + ping(8), "bad_frame"},
		{"a raw newline in a string", websocket.MessageText, `{"type":"ping","rid":7,"x":"a` + "\n" + `b"}`, "bad_frame"},
		{"not JSON", websocket.MessageText, "hello", "bad_frame"},
		{"a binary message", websocket.MessageBinary, ping(7), "bad_frame"},
		{"an empty binary message", websocket.MessageBinary, "", "bad_frame"},
		{"-max-frame bytes", websocket.MessageText, pad(maxFrame), "ok"},
		{"-max-frame bytes and a newline", websocket.MessageText, pad(maxFrame) + "\n", "ok"},
		{"-max-frame bytes and CRLF", websocket.MessageText, pad(maxFrame) + "\r\n", "frame_too_large"},
		{"a byte more", websocket.MessageText, pad(maxFrame + 1), "frame_too_large"},
		{"far more", websocket.MessageText, pad(100 * maxFrame), "frame_too_large"},
		{"a binary message too long", websocket.MessageBinary, strings.Repeat("b", maxFrame+1), "frame_too_large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := dialWS(t, ts.web)
			if err := c.ws().ws.Write(context.Background(), tc.typ, []byte(tc.msg)); err != nil {
				t.Fatal(err)
			}
			if tc.want == "frame_too_large" {
				got := wsClosedWith(t, c, websocket.StatusMessageTooBig)
				if len(got) != 1 || got[0].code() != "frame_too_large" {
					t.Fatalf("before the close: %v", got)
				}
				return
			}
			if tc.want != "" {
				f := c.next(5 * time.Second)
				if tc.want == "ok" && (!f.ok() || f.num("rid") != 7) || tc.want != "ok" && f.code() != tc.want {
					t.Fatalf("reply %v, want %s", f, tc.want)
				}
			}
			// The connection goes on, and nothing else came.
			if f := c.req("ping", nil); !f.ok() {
				t.Fatalf("ping after: %v", f)
			}
		})
	}
}

// A page of another origin may not open /ws, unless -web-origins allows
// it; a client without Origin (not a browser) may.
func TestWebOrigin(t *testing.T) {
	t.Parallel()
	ts := startServer(t, sqliteURL(t), withWeb, func(c *Config) { c.WebOrigins = originList{"*.allowed.example"} })
	tests := []struct {
		origin string
		ok     bool
	}{
		{"", true},
		{"http://" + ts.web, true},
		{"https://chat.allowed.example", true},
		{"http://evil.example", false},
		{"http://allowed.example.evil.example", false},
		{"http://127.0.0.1:1", false},
		{"null", false},
	}
	for _, tc := range tests {
		t.Run(tc.origin, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			if tc.origin != "" {
				h.Set("Origin", tc.origin)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ws, resp, err := websocket.Dial(ctx, wsURL(ts.web), &websocket.DialOptions{HTTPHeader: h})
			if !tc.ok {
				if err == nil {
					ws.CloseNow()
					t.Fatal("a foreign origin was let in")
				}
				if resp == nil || resp.StatusCode != http.StatusForbidden {
					t.Fatalf("refused with %v, want 403", resp)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			c := wsClient(t, &wsTestConn{ws: ws, resp: resp})
			c.must("ping", nil)
		})
	}
	t.Cleanup(func() { // after the subtests
		if n := ts.srv.metrics.connectionsTotal[transportWS].Load(); n != 3 {
			t.Errorf("%d WebSocket connections served, want 3", n)
		}
	})
}

// -login-timeout and the idle timeout hold over WebSocket; WebSocket
// pings from the client extend neither.
func TestWebTimeouts(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	ts := startServer(t, sqliteURL(t), withWeb, func(c *Config) { c.LoginTimeout, c.IdleTimeout = timeout, 2*timeout })
	pinging := func(c *testClient) {
		go func() {
			for {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				err := c.ws().ws.Ping(ctx) // answered by the server's library
				cancel()
				if err != nil {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	t.Run("login", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		c := dialWS(t, ts.web)
		pinging(c)
		c.must("register", map[string]any{"name": uniqueName("wlt"), "password": testPassword})
		wsClosedWith(t, c, websocket.StatusNormalClosure)
		if d := time.Since(start); d < timeout-50*time.Millisecond || d > 3*time.Second {
			t.Fatalf("closed after %v, want about %v", d, timeout)
		}
	})
	// A request whose body trickles in is cut at the login timeout, as a
	// client-port connection that never logs in is: it cannot hold its
	// place under the connection caps for longer.
	t.Run("body", func(t *testing.T) {
		t.Parallel()
		nc, err := net.DialTimeout("tcp", ts.web, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		start := time.Now()
		if _, err := io.WriteString(nc, "GET / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\nx"); err != nil {
			t.Fatal(err)
		}
		go func() { // a byte every 20 ms: never idle, never done
			for range time.Tick(20 * time.Millisecond) {
				if _, err := nc.Write([]byte{'x'}); err != nil {
					return
				}
			}
		}()
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		// The end is EOF, or a reset when the trickle meets the closed socket.
		if _, err := io.Copy(io.Discard, nc); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal("the connection was not closed")
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("closed after %v, want about %v", d, timeout)
		}
	})
	t.Run("idle", func(t *testing.T) {
		t.Parallel()
		c := newWSUser(t, ts.web, "wit")
		start := time.Now()
		pinging(c)
		wsClosedWith(t, c, websocket.StatusNormalClosure)
		if d := time.Since(start); d < 2*timeout-50*time.Millisecond || d > 3*time.Second {
			t.Fatalf("closed after %v, want about %v", d, 2*timeout)
		}
	})
}

// A graceful shutdown sends the shutdown push after the replies, then a
// close frame with status 1001 (going away).
func TestWebShutdown(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db, withWeb)
		a := newWSUser(t, ts.web, "wsd")
		idle := dialWS(t, ts.web) // not logged in
		idle.must("ping", nil)
		ts.stop()
		got := wsClosedWith(t, a, websocket.StatusGoingAway)
		if len(got) != 1 || got[0].str("type") != "shutdown" || got[0].str("reason") == "" {
			t.Fatalf("before the close: %v", got)
		}
		if got := wsClosedWith(t, idle, websocket.StatusGoingAway); len(got) != 1 || got[0].str("type") != "shutdown" {
			t.Fatalf("the connection not logged in got %v", got)
		}
		// The port is closed.
		if nc, err := net.DialTimeout("tcp", ts.web, time.Second); err == nil {
			nc.Close()
			t.Fatal("the web port still accepts after the shutdown")
		}
	})
}

// With a certificate the web port speaks HTTPS and wss only, with the
// client port's certificate, reloaded with it.
func TestWebTLS(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, db string) {
		ca, certFile, keyFile := tlsFiles(t)
		ts := startServer(t, db, withWeb, withTLS(certFile, keyFile))

		a := dialWSS(t, ts.web, ca.Roots)
		st := a.ws().resp.TLS
		if st == nil || st.Version < tls.VersionTLS12 || st.PeerCertificates[0].SerialNumber.Int64() != 1 {
			t.Fatalf("handshake state %+v", st)
		}
		signUp(t, a, "wss", "")
		b := newTLSUser(t, ts.addr, ca)
		m := b.must("chat", map[string]any{"to": a.user, "text": "over TLS both ways"}).obj("message")
		if got := a.messages(1, 5*time.Second)[0]; got.num("id") != m.num("id") {
			t.Fatalf("got %v", got)
		}

		// The page over HTTPS; plain HTTP gets nothing.
		hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Roots}}}
		resp, err := hc.Get("https://" + ts.web + "/")
		if err != nil || resp.StatusCode != 200 || resp.ProtoMajor != 1 {
			t.Fatalf("GET https: %v %v", resp, err)
		}
		resp.Body.Close()
		if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + ts.web + "/"); err == nil {
			resp.Body.Close()
			t.Fatalf("plain HTTP on the HTTPS port answered %v", resp.Status)
		}

		// A new certificate: new handshakes on both ports get it.
		ca.issue(t, 2, certFile, keyFile)
		if err := ts.srv.ReloadCertificates(); err != nil {
			t.Fatal(err)
		}
		c := dialWSS(t, ts.web, ca.Roots)
		if s := c.ws().resp.TLS.PeerCertificates[0].SerialNumber.Int64(); s != 2 {
			t.Fatalf("after the reload the web port presents serial %d", s)
		}
		if s := dialTLS(t, ts.addr, ca.Roots).serial(); s != 2 {
			t.Fatalf("after the reload the client port presents serial %d", s)
		}
		a.must("ping", nil) // the open connection goes on
	})
}

// The web port's connections count against the caps with the client
// port's.
func TestWebConnectionCaps(t *testing.T) {
	t.Parallel()
	ts, _ := startHooked(t, sqliteURL(t), func(s *Server) { s.limiter.limitLoopback = true }, withWeb, func(c *Config) {
		c.MaxConnsPerIP = 2
	})
	served(t, dialFrom(t, ts.addr, "127.0.0.1"))
	ws := dialWS(t, ts.web) // from 127.0.0.1 too
	ws.must("ping", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c, _, err := websocket.Dial(ctx, wsURL(ts.web), nil); err == nil {
		c.CloseNow()
		t.Fatal("a third connection from one address was let in over WebSocket")
	}
	closedAtOnce(t, dialFrom(t, ts.addr, "127.0.0.1"))
	if n := ts.srv.metrics.refusedPerIP.Load(); n != 2 {
		t.Fatalf("%d refused, want 2", n)
	}
	// Another address is served.
	served(t, dialFrom(t, ts.addr, "127.0.0.2"))
	ws.close()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, from := ts.srv.limiter.held(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}); from < 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the WebSocket's slot was not freed")
		}
	}
	dialWS(t, ts.web).must("ping", nil)
}

// A WebSocket client that reads nothing while pushes pile up is closed as
// too slow, and what it missed stays pending.
func TestWebSlowClient(t *testing.T) {
	t.Parallel()
	const sendBuf = 128 << 10
	ts := startServer(t, sqliteURL(t), withWeb, func(c *Config) { c.SendBuffer = sendBuf })
	sender := newUser(t, ts.addr, "wss")
	slow := newWSUser(t, ts.web, "wsl")
	slow.must("logout", nil)
	// A small receive buffer: the server's writes stall soon.
	smallBuf := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			nc.(*net.TCPConn).SetReadBuffer(4096)
		}
		return nc, err
	}}}
	raw, _ := dialWSRaw(t, wsURL(ts.web), &websocket.DialOptions{HTTPClient: smallBuf})
	login := fmt.Sprintf(`{"type":"login","id":%d,"password":%q}`, slow.user, testPassword)
	if err := raw.Write(context.Background(), websocket.MessageText, []byte(login)); err != nil {
		t.Fatal(err)
	}
	// raw is never read from again.
	var ids []int64
	for len(ids) < 4000 && ts.srv.metrics.slowClosed.Load() == 0 {
		ids = append(ids, bigChats(t, sender, slow.user, 20)...)
	}
	for deadline := time.Now().Add(10 * time.Second); ts.srv.metrics.slowClosed.Load() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the WebSocket that never reads is still open after %d pushes", len(ids))
		}
	}
	waitConns(t, ts, transportWS, 1) // slow's first connection, logged out
	again := dialWS(t, ts.web)
	again.must("login", map[string]any{"id": slow.user, "password": testPassword})
	msgs := again.messages(len(ids), 30*time.Second)
	for i, m := range msgs {
		if m.num("id") != ids[i] {
			t.Fatalf("backlog %d: id %d, want %d", i, m.num("id"), ids[i])
		}
	}
}

// In a cluster a WebSocket client on one node and TCP clients on others
// chat, in private and in a group, and see each other's presence.
func TestWebCluster(t *testing.T) {
	nodes := startCluster(t, 3, "", withWeb)
	a := newWSUser(t, nodes[0].web, "wca")
	b := newUser(t, nodes[1].addr, "wcb")
	c := newUser(t, nodes[2].addr, "wcc")

	befriend(t, b, a)
	m := b.must("chat", map[string]any{"to": a.user, "text": "to the browser on node1"}).obj("message")
	if got := a.messages(1, 5*time.Second)[0]; got.num("id") != m.num("id") {
		t.Fatalf("a got %v", got)
	}
	m = a.must("chat", map[string]any{"to": b.user, "text": "from the browser"}).obj("message")
	if got := b.messages(1, 5*time.Second)[0]; got.num("id") != m.num("id") {
		t.Fatalf("b got %v", got)
	}

	g := a.must("create_group", map[string]any{"name": uniqueName("wcg")}).obj("group").num("id")
	b.must("join_group", map[string]any{"group": g})
	a.push("member_joined", 5*time.Second)
	c.must("join_group", map[string]any{"group": g})
	a.push("member_joined", 5*time.Second)
	b.push("member_joined", 5*time.Second)
	gm := c.must("group_chat", map[string]any{"group": g, "text": "to every node"}).obj("message")
	for _, x := range []*testClient{a, b} {
		if got := x.messages(1, 5*time.Second)[0]; got.num("id") != gm.num("id") {
			t.Fatalf("group push: %v", got)
		}
	}

	// a's browser on node1 goes: b, on node2, sees it.
	a.ws().ws.Close(websocket.StatusGoingAway, "")
	if p := b.push("presence", 5*time.Second).obj("user"); p.num("id") != a.user || p["online"] != false {
		t.Fatalf("presence: %v", p)
	}
	// ... and comes back on node3's web port.
	a2 := dialWS(t, nodes[2].web)
	a2.must("login", map[string]any{"id": a.user, "password": testPassword})
	if p := b.push("presence", 5*time.Second).obj("user"); p["online"] != true {
		t.Fatalf("presence: %v", p)
	}
}

// The embedded client: its files with their types, revalidated by ETag,
// and nothing else.
func TestWebStatic(t *testing.T) {
	t.Parallel()
	ts := startServer(t, sqliteURL(t), withWeb)
	base := "http://" + ts.web
	get := func(method, path string, h http.Header) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, nil)
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get("GET", "/", nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, "<html") {
		t.Fatalf("GET /: %v %q", resp.Status, body)
	}
	etag := resp.Header.Get("ETag")
	if etag == "" || resp.Header.Get("Cache-Control") != "no-cache" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") ||
		resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("headers: %v", resp.Header)
	}
	if resp, _ := get("GET", "/index.html", nil); resp.StatusCode != 200 || resp.Header.Get("ETag") != etag {
		t.Fatalf("GET /index.html: %v %v", resp.Status, resp.Header)
	}
	if resp, body := get("GET", "/", http.Header{"If-None-Match": {etag}}); resp.StatusCode != http.StatusNotModified || body != "" {
		t.Fatalf("revalidation: %v %q", resp.Status, body)
	}
	if resp, body := get("HEAD", "/", nil); resp.StatusCode != 200 || body != "" {
		t.Fatalf("HEAD: %v %q", resp.Status, body)
	}
	for _, p := range []string{"/nope", "/web/index.html", "/../go.mod", "/.git/config"} {
		if resp, _ := get("GET", p, nil); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("GET %s: %v", p, resp.Status)
		}
	}
	if resp, _ := get("POST", "/", nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST /: %v", resp.Status)
	}
	// /ws without the upgrade is refused, with a reason.
	if resp, _ := get("GET", "/ws", nil); resp.StatusCode/100 != 4 {
		t.Fatalf("GET /ws without an upgrade: %v", resp.Status)
	}
}

// Each file under web/ gets its type; index.html serves its directory.
func TestWebStaticTypes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files := map[string]string{
		"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
		"style.css": "text/css; charset=utf-8", "icon.svg": "image/svg+xml", "sub/index.html": "text/html; charset=utf-8",
		"manifest.webmanifest": "application/manifest+json",
	}
	for name := range files {
		p := filepath.Join(dir, "web", filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, p, []byte("x "+name))
	}
	st, err := newWebStatic(os.DirFS(dir), "web")
	if err != nil {
		t.Fatal(err)
	}
	for name, ctype := range files {
		if f := st.files["/"+name]; f.ctype != ctype || string(f.body) != "x "+name {
			t.Errorf("%s: %+v, want type %s", name, f, ctype)
		}
	}
	if f := st.files["/sub/"]; string(f.body) != "x sub/index.html" {
		t.Errorf("/sub/: %q", f.body)
	}
	if _, err := newWebStatic(os.DirFS(t.TempDir()), "."); err == nil {
		t.Error("a client without index.html was taken")
	}
}

// The address to open in a browser.
func TestWebURL(t *testing.T) {
	t.Parallel()
	addr := &net.TCPAddr{IP: net.IPv4zero, Port: 8080}
	for _, tc := range []struct{ listen, want string }{
		{":8080", "http://localhost:8080/"},
		{"0.0.0.0:8080", "http://localhost:8080/"},
		{"[::]:8080", "http://localhost:8080/"},
		{"chat.example.com:8080", "http://chat.example.com:8080/"},
		{"[::1]:8080", "http://[::1]:8080/"},
		{"127.0.0.1:0", "http://127.0.0.1:8080/"},
	} {
		if got := webURL("http", tc.listen, addr); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.listen, got, tc.want)
		}
	}
}

// Read deadlines on a wsConn: set from another goroutine, they end a
// waiting Read and leave the connection usable.
func TestWSDeadline(t *testing.T) {
	t.Parallel()
	var d deadline
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-d.wait():
		case <-time.After(5 * time.Second):
			t.Error("a deadline set to now did not wake the waiter")
		}
	})
	time.Sleep(10 * time.Millisecond)
	d.set(time.Now())
	wg.Wait()
	d.set(time.Now().Add(time.Hour))
	select {
	case <-d.wait():
		t.Fatal("expired an hour early")
	default:
	}
	d.set(time.Now().Add(20 * time.Millisecond))
	d.set(time.Now().Add(time.Hour)) // the first timer's firing must not count
	time.Sleep(50 * time.Millisecond)
	select {
	case <-d.wait():
		t.Fatal("an earlier deadline's timer expired a later one")
	default:
	}
	d.set(time.Now().Add(20 * time.Millisecond))
	select {
	case <-d.wait():
	case <-time.After(5 * time.Second):
		t.Fatal("the timer did not fire")
	}
	d.set(time.Time{})
	select {
	case <-d.wait():
		t.Fatal("no deadline, yet expired")
	default:
	}
	d.stop()
}

// A client may send its first message right behind the handshake, in the
// same TCP write: what the HTTP server read past the request is the
// start of the WebSocket's input.
func TestWebReadAhead(t *testing.T) {
	t.Parallel()
	ts := startServer(t, sqliteURL(t), withWeb)
	nc, err := net.DialTimeout("tcp", ts.web, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	var req bytes.Buffer
	fmt.Fprintf(&req, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", ts.web)
	for _, msg := range []string{`{"type":"ping","rid":1}`, `{"type":"ping","rid":2}`} {
		// A masked text frame, as a client sends it.
		mask := [4]byte{1, 2, 3, 4}
		req.Write([]byte{0x81, 0x80 | byte(len(msg))})
		req.Write(mask[:])
		for i := range len(msg) {
			req.WriteByte(msg[i] ^ mask[i%4])
		}
	}
	if _, err := nc.Write(req.Bytes()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	for rid := 1; rid <= 2; rid++ {
		var h [2]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			t.Fatal(err)
		}
		body := make([]byte, h[1]&0x7f)
		if _, err := io.ReadFull(br, body); err != nil {
			t.Fatal(err)
		}
		if h[0] != 0x81 || string(body) != fmt.Sprintf(`{"type":"ping","rid":%d,"ok":true}`, rid) {
			t.Fatalf("frame %#x %q", h[0], body)
		}
	}
}
