package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

// In-process clusters: several nodes in this test process over one MySQL
// database and one Redis, each client on a known node. (cluster_test.go
// runs real processes behind nginx.)

// redisAddr returns CHAT_TEST_REDIS.
func redisAddr(t testing.TB) string {
	t.Helper()
	return testService(t, "CHAT_TEST_REDIS", "the cluster tests")
}

// startCluster starts n nodes sharing a fresh database and a fresh key
// prefix in redis (CHAT_TEST_REDIS when redis is "").
func startCluster(t *testing.T, n int, redis string, edit ...func(*Config)) []*testServer {
	t.Helper()
	return startClusterHooked(t, n, redis, nil, edit...)
}

// startClusterHooked is startCluster with hook, if not nil, run on each
// node's Server (its index from 0) before it serves.
func startClusterHooked(t *testing.T, n int, redis string, hook func(node int, s *Server), edit ...func(*Config)) []*testServer {
	t.Helper()
	if redis == "" {
		redis = redisAddr(t)
	}
	db := mysqlURL(t)
	var rnd [4]byte
	rand.Read(rnd[:])
	prefix := "chattest" + hex.EncodeToString(rnd[:])
	var nodes []*testServer
	for i := range n {
		var nodeHook func(*Server)
		if hook != nil {
			nodeHook = func(s *Server) { hook(i, s) }
		}
		nodes = append(nodes, newTestServer(t, db, nodeHook, nil, append([]func(*Config){func(c *Config) {
			c.Redis, c.RedisPrefix, c.Node = redis, prefix, fmt.Sprintf("node%d", i+1)
		}}, edit...)))
	}
	return nodes
}

func TestClusterInProcess(t *testing.T) {
	nodes := startCluster(t, 3, "")
	a := newUser(t, nodes[0].addr, "ca")
	b := newUser(t, nodes[1].addr, "cb")
	c := newUser(t, nodes[2].addr, "cc")

	{ // chat across nodes
		m := a.must("chat", map[string]any{"to": b.user, "text": "across"}).obj("message")
		if got := b.messages(1, 5*time.Second)[0]; got.num("id") != m.num("id") {
			t.Fatalf("got %v", got)
		}
		b.must("ack", map[string]any{"ids": []int64{m.num("id")}})
	}
	{ // friends and presence across nodes
		befriend(t, a, c) // c gets friend_request, a friend_added, across nodes
		c.must("logout", nil)
		if p := a.push("presence", 5*time.Second).obj("user"); p.num("id") != c.user || p["online"] != false {
			t.Fatalf("presence: %v", p)
		}
		c2, _ := loginAs(t, nodes[2].addr, c.user)
		if p := a.push("presence", 5*time.Second).obj("user"); p["online"] != true {
			t.Fatalf("presence: %v", p)
		}
		c = c2
		if u := b.must("whois", map[string]any{"id": c.user}).obj("user"); u["online"] != true {
			t.Fatalf("whois across nodes: %v", u)
		}
	}
	{ // online lists every node
		f := b.must("online", nil)
		if f.num("total") != 3 || len(f.list("users")) != 3 {
			t.Fatalf("online: %v", f)
		}
	}
	{ // group across nodes
		g := a.must("create_group", map[string]any{"name": "cluster"}).obj("group").num("id")
		b.must("join_group", map[string]any{"group": g})
		if j := a.push("member_joined", 5*time.Second); j.obj("user").num("id") != b.user {
			t.Fatalf("member_joined: %v", j)
		}
		jc := c.must("join_group", map[string]any{"group": g}).obj("group")
		for _, m := range jc.list("members") {
			if m["online"] != true {
				t.Fatalf("member online flags across nodes: %v", jc)
			}
		}
		a.push("member_joined", 5*time.Second)
		b.push("member_joined", 5*time.Second)
		m := b.must("group_chat", map[string]any{"group": g, "text": "to all nodes"}).obj("message")
		for _, x := range []*testClient{a, c} {
			if got := x.messages(1, 5*time.Second)[0]; got.num("id") != m.num("id") {
				t.Fatalf("group push: %v", got)
			}
			x.quiet("message", 100*time.Millisecond)
		}
		b.quiet("message", 100*time.Millisecond)
	}
	{ // kick across nodes
		a2, _ := loginAs(t, nodes[2].addr, a.user)
		got := a.closed(5 * time.Second)
		if len(got) == 0 || got[len(got)-1].str("type") != "kicked" {
			t.Fatalf("old session got %v", got)
		}
		c.quiet("presence", 300*time.Millisecond) // still online: no flapping
		m := b.must("chat", map[string]any{"to": a.user, "text": "to the new session"}).obj("message")
		var seen bool
		for _, x := range a2.messages(1, 5*time.Second) {
			seen = seen || x.num("id") == m.num("id")
		}
		if !seen {
			// the backlog may come first; the live one follows
			a2.messages(1, 5*time.Second)
		}
	}
	var metrics string
	{ // metrics
		if nodes[0].srv.metrics.redisPublished.Load() == 0 || nodes[1].srv.metrics.redisReceived.Load() == 0 {
			t.Fatal("no Redis traffic counted")
		}
		var sb strings.Builder
		nodes[0].srv.metrics.WritePrometheus(&sb)
		metrics = sb.String()
		for _, want := range []string{"chat_redis_subscribed 1", "chat_redis_published_total", "chat_sessions "} {
			if !strings.Contains(metrics, want) {
				t.Fatalf("metrics lack %q", want)
			}
		}
	}
}

func TestClusterNodeGone(t *testing.T) {
	// A node that stops without cleaning up (as after kill -9): its users
	// go offline everywhere within 30 s, and can log in again at once.
	nodes := startCluster(t, 2, "")
	a := newUser(t, nodes[0].addr, "gone")
	z := newUser(t, nodes[0].addr, "lost")
	b := newUser(t, nodes[1].addr, "stay")
	befriend(t, b, a)
	befriend(t, b, z)

	// Crash node 1: stop its Redis loops and sockets without releasing.
	crash := nodes[0].srv
	nodes[0].srv = nil // no graceful stop at cleanup
	t.Cleanup(func() { crash.store.Close() })
	close(crash.cluster.stop)
	crash.cluster.wg.Wait()
	crash.cluster.pool.Close() // a dead process releases nothing
	crash.mu.Lock()
	crash.ln.Close()
	for cn := range crash.conns {
		cn.nc.Close()
	}
	crash.mu.Unlock()

	// Log in again at once elsewhere.
	start := time.Now()
	a2, _ := loginAs(t, nodes[1].addr, a.user)
	if f := b.must("online", nil); f.num("total") != 3 {
		t.Fatalf("online after relogin: %v", f)
	}
	a2.must("logout", nil)
	// z never comes back: it goes offline when node1's heartbeat expires.
	for {
		f := b.must("online", nil)
		if f.num("total") == 1 {
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("the crashed node's user is still online after 30 s: %v", f)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("offline everywhere after %v", time.Since(start))
	for {
		p := b.push("presence", 5*time.Second).obj("user")
		if p.num("id") == z.user && p["online"] == false {
			break
		}
	}
}

// clusterOnPrivateRedis starts two nodes on a Redis of the test's own, which
// the test may stop and start; admin is node 1's admin address.
func clusterOnPrivateRedis(t *testing.T) (nodes []*testServer, admin string, stopRedis, startRedis func() time.Duration) {
	t.Helper()
	redisAddr(t) // the same gate as the other cluster tests
	addr, stopRedis, startRedis := privateRedis(t)
	admin = cmdFreeAddr(t)
	nodes = startCluster(t, 2, addr, func(c *Config) {
		if c.Node == "node1" {
			c.Admin = admin
		}
	})
	return nodes, admin, stopRedis, startRedis
}

func TestClusterRedisRestart(t *testing.T) {
	nodes, admin, stopRedis, startRedis := clusterOnPrivateRedis(t)
	a := newUser(t, nodes[0].addr, "ra")
	b := newUser(t, nodes[1].addr, "rb")
	local := newUser(t, nodes[0].addr, "rl")
	a.must("chat", map[string]any{"to": b.user, "text": "before"})
	b.messages(1, 5*time.Second)

	stopRedis()
	waitHealth(t, admin, http.StatusServiceUnavailable, 15*time.Second)
	// Local traffic goes on; messages to the other node are stored.
	a.must("chat", map[string]any{"to": local.user, "text": "local"})
	local.messages(1, 5*time.Second)
	var during []int64
	for i := range 5 {
		f := a.req("chat", map[string]any{"to": b.user, "text": fmt.Sprint("during ", i)})
		if !f.ok() {
			t.Fatalf("chat to another node while Redis is down: %v", f)
		}
		during = append(during, f.obj("message").num("id"))
	}
	startRedis()
	waitHealth(t, admin, http.StatusOK, 15*time.Second)
	// b receives what was stored meanwhile, without logging in again.
	faultCollect(t, b, during, 10*time.Second)
	// And routing works again.
	m := a.must("chat", map[string]any{"to": b.user, "text": "after"}).obj("message")
	for {
		if x := b.messages(1, 5*time.Second)[0]; x.num("id") == m.num("id") {
			break
		}
	}
	if f := b.must("online", nil); f.num("total") != 3 {
		t.Fatalf("presence not re-announced after the restart: %v", f)
	}
}

// Changes made while Redis is down, whose pushes are lost, still reach the
// sessions on other nodes once it is back: a block, a removal from a
// group, a password changed on another device (its kick) and an account
// deleted. Each node resyncs its sessions from the store when the
// subscriptions come back, without the users logging in again.
func TestClusterResyncAfterRedisRestart(t *testing.T) {
	nodes, admin, stopRedis, startRedis := clusterOnPrivateRedis(t)
	// On node 1 the sessions that must learn; on node 2 who changes things.
	laptop := dial(t, nodes[0].addr)
	signUp(t, laptop, "rsb", "laptop")
	phone := loginDevice(t, nodes[1].addr, laptop.user, "phone")
	a := newUser(t, nodes[1].addr, "rsa")
	g := a.must("create_group", map[string]any{"name": uniqueName("rsg")}).obj("group").num("id")
	phone.must("join_group", map[string]any{"group": g})
	d1 := dial(t, nodes[0].addr)
	signUp(t, d1, "rsd", "one")
	d2 := loginDevice(t, nodes[1].addr, d1.user, "two")
	e1 := dial(t, nodes[0].addr)
	signUp(t, e1, "rse", "one")
	e2 := loginDevice(t, nodes[1].addr, e1.user, "two")

	stopRedis()
	waitHealth(t, admin, http.StatusServiceUnavailable, 15*time.Second)
	a.must("block", map[string]any{"user": laptop.user})
	a.must("kick_member", map[string]any{"group": g, "user": laptop.user})
	d2.must("change_password", map[string]any{"old": testPassword, "new": "a new password"})
	e2.must("delete_account", map[string]any{"password": testPassword})
	// Nothing reached node 1: the laptop may still write to a.
	if f := laptop.req("chat", map[string]any{"to": a.user, "text": "still in the dark"}); !f.ok() {
		t.Fatalf("the block reached node 1 without Redis: %v", f)
	}
	startRedis()
	waitHealth(t, admin, http.StatusOK, 15*time.Second)

	waitFor(t, 10*time.Second, func() bool {
		return laptop.req("chat", map[string]any{"to": a.user, "text": "after the restart"}).code() == "blocked"
	})
	// Out of the group: its messages no longer come, and it may not write.
	laptop.fails("not_member", "group_chat", map[string]any{"group": g, "text": "still in?"})
	a.must("group_chat", map[string]any{"group": g, "text": "after the kick"})
	laptop.quiet("message", 300*time.Millisecond)
	for who, reason := range map[*testClient]string{d1: reasonPasswordChanged, e1: reasonAccountDeleted} {
		if got := who.push("kicked", 10*time.Second).str("reason"); got != reason {
			t.Fatalf("kicked for %q, want %q", got, reason)
		}
		who.closed(5 * time.Second)
	}
	// The session that changed its password is still in.
	d2.must("ping", nil)
}

// A node message whose frame is not one JSON object reaches no client; the
// records around it are delivered. No Redis is needed: the envelope is
// handed to receive as the subscriber would.
func TestRedisReceiveDropsMalformed(t *testing.T) {
	ts := startServer(t, sqliteURL(t))
	a := newUser(t, ts.addr, "rcv")
	rc := &redisCluster{srv: ts.srv, prefix: "chattest", node: "n1"}
	probe := func(n int) []byte {
		m := nodeMsg{kind: nodeUserPush, user: a.user, push: &Push{Frame: []byte(fmt.Sprintf(`{"type":"probe","n":%d}`+"\n", n))}}
		return m.append(nil)
	}
	head := fmt.Sprintf("u %d 0 0\n", a.user)
	var env []byte
	env = append(env, probe(1)...)
	env = append(env, head+`{"type":"probe","n":2`+"\n"...) // cut short
	env = append(env, probe(3)...)
	env = append(env, head+"PING\n"...)
	env = append(env, head+`["probe",5]`+"\n"...)
	env = append(env, probe(6)...)
	rc.receive(env)
	rc.receive(append(probe(7), head...)) // a head without its frame: the rest is lost
	for _, want := range []int64{1, 3, 6, 7} {
		if got := a.push("probe", 5*time.Second).num("n"); got != want {
			t.Fatalf("probe %d, want %d", got, want)
		}
	}
	a.quiet("probe", 200*time.Millisecond)
}

// The warning about malformed node messages comes at most once per
// malformedLogEvery, with the count since the last one.
func TestRedisMalformedLog(t *testing.T) {
	var buf syncBuffer
	rc := &redisCluster{srv: &Server{log: slog.New(slog.NewTextHandler(&buf, nil))}, prefix: "chat", node: "n1"}
	for range 3 {
		rc.malformed(errNodeMsgFrame)
	}
	rc.badLogAt.Store(time.Now().Add(-malformedLogEvery).UnixNano()) // as if the period had passed
	rc.malformed(errNodeMsg)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "dropped=1") || !strings.Contains(lines[1], "dropped=3") ||
		!strings.Contains(lines[0], "node=n1") {
		t.Fatalf("log:\n%s", buf.String())
	}
}
