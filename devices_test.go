package main

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Several devices per user (docs/protocol.md, "Sessions and devices").

// loginDevice logs user in on device over a new connection, on addr.
func loginDevice(t testing.TB, addr string, user int64, device string) *testClient {
	t.Helper()
	c := dial(t, addr)
	fields := map[string]any{"id": user, "password": testPassword}
	if device != "" {
		fields["device"] = device
	}
	c.must("login", fields)
	c.user = user
	c.waitSynced(5 * time.Second)
	return c
}

// befriendV1 makes a and b friends (add_friend as this tree has it; the
// friend requests of version 2 need the other side to accept).
func befriendV1(t testing.TB, a, b *testClient) {
	t.Helper()
	st := a.must("add_friend", map[string]any{"friend": b.user}).str("status")
	if st == "requested" {
		b.push("friend_request", 5*time.Second)
		b.must("add_friend", map[string]any{"friend": a.user})
		a.push("friend_added", 5*time.Second)
	} else {
		b.push("friend_added", 5*time.Second)
	}
	a.pushes = nil
	b.pushes = nil
}

func TestDevicesSideBySide(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		a := newUser(t, ts.addr, "dva")
		b := newUser(t, ts.addr, "dvb")
		friend := newUser(t, ts.addr, "dvf")
		befriendV1(t, a, friend)
		a.must("logout", nil)
		friend.push("presence", 5*time.Second) // a went offline

		phone := loginDevice(t, ts.addr, a.user, "phone")
		if p := friend.push("presence", 5*time.Second).obj("user"); p.num("id") != a.user || p["online"] != true {
			t.Fatalf("presence at the first session: %v", p)
		}
		laptop := loginDevice(t, ts.addr, a.user, "laptop")
		friend.quiet("presence", 300*time.Millisecond) // the second session: no presence
		b.quiet("presence", 0)                         // never to a non-friend

		// A message to a reaches both devices.
		m := b.must("chat", map[string]any{"to": a.user, "text": "to both"}).obj("message")
		for _, dev := range []*testClient{phone, laptop} {
			if got := dev.messages(1, 5*time.Second)[0]; got.num("id") != m.num("id") {
				t.Fatalf("got %v, want %v", got, m)
			}
		}
		// What the phone sends, the laptop gets a copy of; the phone does not.
		sent := phone.must("chat", map[string]any{"to": b.user, "text": "from the phone"}).obj("message")
		if got := laptop.messages(1, 5*time.Second)[0]; got.num("id") != sent.num("id") || got.num("to") != b.user {
			t.Fatalf("the laptop's copy: %v, want %v", got, sent)
		}
		if got := b.messages(1, 5*time.Second)[0]; got.num("id") != sent.num("id") {
			t.Fatalf("b got %v", got)
		}
		phone.quiet("message", 300*time.Millisecond)

		// sessions lists both, the caller's marked current.
		list := laptop.must("sessions", nil).list("sessions")
		if len(list) != 2 || list[0].str("device") != "phone" || list[1].str("device") != "laptop" ||
			list[0]["current"] != nil || list[1]["current"] != true || list[0].num("since") <= 0 {
			t.Fatalf("sessions: %v", list)
		}

		// An ack from one device ends the message's pending state for all.
		laptop.must("ack", map[string]any{"ids": []int64{m.num("id")}})
		phone.must("logout", nil)
		friend.quiet("presence", 300*time.Millisecond) // the laptop is still on
		if u := b.must("whois", map[string]any{"id": a.user}).obj("user"); u["online"] != true {
			t.Fatalf("a is online on the laptop: %v", u)
		}
		laptop.must("logout", nil)
		if p := friend.push("presence", 5*time.Second).obj("user"); p.num("id") != a.user || p["online"] != false {
			t.Fatalf("presence at the last session's end: %v", p)
		}
		again := loginDevice(t, ts.addr, a.user, "phone")
		for _, f := range again.pushes {
			if f.str("type") == "message" {
				t.Fatalf("acked on the laptop, pushed again to the phone: %v", f)
			}
		}
	})
}

func TestDevicesSameDeviceTakesOver(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		a := newUser(t, ts.addr, "tka")
		friend := newUser(t, ts.addr, "tkf")
		befriendV1(t, a, friend)
		a.must("logout", nil)
		friend.push("presence", 5*time.Second)

		first := loginDevice(t, ts.addr, a.user, "laptop")
		friend.push("presence", 5*time.Second)
		other := loginDevice(t, ts.addr, a.user, "phone")
		second := loginDevice(t, ts.addr, a.user, "laptop")
		frames := first.closed(5 * time.Second)
		if len(frames) == 0 || frames[len(frames)-1].str("type") != "kicked" ||
			!strings.Contains(frames[len(frames)-1].str("reason"), "this device") {
			t.Fatalf("the older session on the device: %v", frames)
		}
		friend.quiet("presence", 300*time.Millisecond) // a stayed online
		if list := second.must("sessions", nil).list("sessions"); len(list) != 2 {
			t.Fatalf("sessions after the takeover: %v", list)
		}
		other.must("ping", nil)
		// A version 1 client (no device) is the device "": it takes over
		// only another session without a device.
		v1a := loginDevice(t, ts.addr, a.user, "")
		v1b := loginDevice(t, ts.addr, a.user, "")
		if f := v1a.closed(5 * time.Second); len(f) == 0 || f[len(f)-1].str("type") != "kicked" {
			t.Fatalf("the first deviceless session: %v", f)
		}
		v1b.must("ping", nil)
		second.must("ping", nil)
	})
}

func TestDevicesMax(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db, func(c *Config) { c.MaxDevices = 2 })
		a := newUser(t, ts.addr, "mxa") // device ""
		b := loginDevice(t, ts.addr, a.user, "two")
		c := dial(t, ts.addr)
		// The password first: a wrong one is bad_credentials even when full.
		c.fails("bad_credentials", "login", map[string]any{"id": a.user, "password": "wrong password", "device": "three"})
		c.fails("too_many_sessions", "login", map[string]any{"id": a.user, "password": testPassword, "device": "three"})
		// Taking over a device is not a new session.
		b2 := loginDevice(t, ts.addr, a.user, "two")
		b.closed(5 * time.Second)
		a.must("ping", nil)
		// The refused connection stays open and may log in once a device is free.
		b2.must("logout", nil)
		c.must("login", map[string]any{"id": a.user, "password": testPassword, "device": "three"})
		if list := a.must("sessions", nil).list("sessions"); len(list) != 2 {
			t.Fatalf("sessions: %v", list)
		}
	})
}

func TestDevicesLogoutAll(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		a := newUser(t, ts.addr, "loa")
		friend := newUser(t, ts.addr, "lof")
		befriendV1(t, a, friend)
		others := []*testClient{loginDevice(t, ts.addr, a.user, "d1"), loginDevice(t, ts.addr, a.user, "d2")}
		a.must("logout", map[string]any{"all": true})
		for i, o := range others {
			frames := o.closed(5 * time.Second)
			if len(frames) == 0 || frames[len(frames)-1].str("type") != "kicked" ||
				!strings.Contains(frames[len(frames)-1].str("reason"), "every device") {
				t.Fatalf("session %d: %v", i, frames)
			}
		}
		if p := friend.push("presence", 5*time.Second).obj("user"); p["online"] != false {
			t.Fatalf("presence: %v", p)
		}
		friend.quiet("presence", 300*time.Millisecond) // once, not per session
		// The connection stays open and may log in again.
		a.must("login", map[string]any{"id": a.user, "password": testPassword})
		a.fails("bad_request", "logout", map[string]any{"all": "yes"})
		a.must("sessions", nil)
	})
}

func TestDevicesFields(t *testing.T) {
	t.Parallel()
	ts := startServer(t, sqliteURL(t))
	a := newUser(t, ts.addr, "dfa")
	a.must("logout", nil)
	for _, tc := range []struct {
		device any
		code   string
	}{
		{"", "bad_request"},
		{12, "bad_request"},
		{true, "bad_request"},
		{strings.Repeat("d", 65), "too_long"},
	} {
		a.fails(tc.code, "login", map[string]any{"id": a.user, "password": testPassword, "device": tc.device})
	}
	a.fails("not_logged_in", "sessions", nil)
	// 64 bytes of any script is a device.
	long := strings.Repeat("é", 32)
	c := loginDevice(t, ts.addr, a.user, long)
	if list := c.must("sessions", nil).list("sessions"); len(list) != 1 || list[0].str("device") != long {
		t.Fatalf("sessions: %v", list)
	}
}

func TestDevicesSynced(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		a := newUser(t, ts.addr, "sya")
		b := newUser(t, ts.addr, "syb")
		b.must("logout", nil)
		for i := range 5 {
			a.must("chat", map[string]any{"to": b.user, "text": fmt.Sprint("away ", i)})
		}
		// Raw order: the reply, the five messages, then synced.
		c := dial(t, ts.addr)
		c.send("login", map[string]any{"id": b.user, "password": testPassword, "device": "x"})
		var types []string
		for len(types) < 7 {
			select {
			case f := <-c.frames:
				types = append(types, f.str("type"))
			case <-time.After(5 * time.Second):
				t.Fatalf("got %v", types)
			}
		}
		want := "login message message message message message synced"
		if got := strings.Join(types, " "); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
}

func TestDevicesGroupCopy(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		a := newUser(t, ts.addr, "gca")
		b := newUser(t, ts.addr, "gcb")
		g := a.must("create_group", map[string]any{"name": uniqueName("devs")}).obj("group").num("id")
		b.must("join_group", map[string]any{"group": g})
		a2 := loginDevice(t, ts.addr, a.user, "tablet")
		m := a.must("group_chat", map[string]any{"group": g, "text": "hello group"}).obj("message")
		for _, c := range []*testClient{b, a2} {
			if got := c.messages(1, 5*time.Second)[0]; got.num("id") != m.num("id") {
				t.Fatalf("got %v", got)
			}
		}
		a.quiet("message", 300*time.Millisecond)
	})
}

// TestDevicesCluster: a user's sessions on several nodes of a cluster.
func TestDevicesCluster(t *testing.T) {
	nodes := startCluster(t, 3, "", func(c *Config) { c.MaxDevices = 3 })
	a := newUser(t, nodes[0].addr, "cda")
	b := newUser(t, nodes[2].addr, "cdb")
	friend := newUser(t, nodes[2].addr, "cdf")
	befriendV1(t, a, friend)
	a.must("logout", nil)
	friend.push("presence", 5*time.Second)

	phone := loginDevice(t, nodes[0].addr, a.user, "phone")
	friend.push("presence", 5*time.Second)
	laptop := loginDevice(t, nodes[1].addr, a.user, "laptop")
	friend.quiet("presence", 500*time.Millisecond)

	// A message reaches the sessions on both nodes; the sender's copy
	// crosses nodes too.
	m := b.must("chat", map[string]any{"to": a.user, "text": "to both nodes"}).obj("message")
	for _, dev := range []*testClient{phone, laptop} {
		if got := dev.messages(1, 5*time.Second)[0]; got.num("id") != m.num("id") {
			t.Fatalf("got %v", got)
		}
	}
	sent := laptop.must("chat", map[string]any{"to": b.user, "text": "from node 2"}).obj("message")
	if got := phone.messages(1, 5*time.Second)[0]; got.num("id") != sent.num("id") {
		t.Fatalf("the copy on node 1: %v", got)
	}
	if list := phone.must("sessions", nil).list("sessions"); len(list) != 2 {
		t.Fatalf("sessions across nodes: %v", list)
	}

	// The same device on another node takes over.
	phone2 := loginDevice(t, nodes[2].addr, a.user, "phone")
	if f := phone.closed(5 * time.Second); len(f) == 0 || f[len(f)-1].str("type") != "kicked" {
		t.Fatalf("the phone on node 1: %v", f)
	}
	friend.quiet("presence", 500*time.Millisecond)

	// The device limit counts every node.
	c := loginDevice(t, nodes[0].addr, a.user, "tv")
	over := dial(t, nodes[1].addr)
	over.fails("too_many_sessions", "login", map[string]any{"id": a.user, "password": testPassword, "device": "watch"})

	// logout all from one node closes the sessions on the others; the
	// friends hear once that a went offline.
	c.must("logout", map[string]any{"all": true})
	for _, s := range []*testClient{laptop, phone2} {
		if f := s.closed(5 * time.Second); len(f) == 0 || f[len(f)-1].str("type") != "kicked" {
			t.Fatalf("after logout all: %v", f)
		}
	}
	if p := friend.push("presence", 5*time.Second).obj("user"); p["online"] != false {
		t.Fatalf("presence: %v", p)
	}
	friend.quiet("presence", 500*time.Millisecond)
	if f := b.must("online", nil); f.num("total") != 2 {
		t.Fatalf("online: %v", f)
	}
}

// A change made to a user while another of its sessions logs in reaches
// that session. The login registers first and reads after, so a change
// made after its reads comes as a push that waits for the session's sets:
// here a block, an accepted friend request and a group joined on the other
// device, all made at the worst moment (the hook holds the login between
// its reads and the loading of what it read). On one node with each store,
// and across a cluster, where the pushes come through Redis.
func TestDevicesLoginMeetsChanges(t *testing.T) {
	t.Run("node", func(t *testing.T) {
		forEachStore(t, func(t *testing.T, db string) {
			lm := &loginMeetsChanges{}
			ts, _ := startHooked(t, db, lm.hook)
			lm.run(t, ts.addr, ts.addr, 0)
		})
	})
	t.Run("cluster", func(t *testing.T) {
		lm := &loginMeetsChanges{}
		nodes := startClusterHooked(t, 3, "", func(node int, s *Server) {
			if node == 0 {
				lm.hook(s)
			}
		})
		// The changes are made on node 2; their pushes reach node 1
		// through Redis while the login waits.
		lm.run(t, nodes[0].addr, nodes[1].addr, 300*time.Millisecond)
	})
}

// loginMeetsChanges holds one armed login in its hook until resumed.
type loginMeetsChanges struct {
	armed   atomic.Int64 // the user whose next login the hook holds
	reached chan int64
	resume  chan struct{}
}

func (lm *loginMeetsChanges) hook(s *Server) {
	lm.reached, lm.resume = make(chan int64), make(chan struct{})
	s.testAfterLoginState = func(user int64) {
		if lm.armed.CompareAndSwap(user, 0) {
			lm.reached <- user
			<-lm.resume
		}
	}
}

// run logs b's laptop in on loginAddr and, while the hook holds it, makes
// the changes on otherAddr, then waits settle for their pushes to travel.
func (lm *loginMeetsChanges) run(t *testing.T, loginAddr, otherAddr string, settle time.Duration) {
	a := newUser(t, otherAddr, "lma")
	c := newUser(t, otherAddr, "lmc")
	phone := dial(t, otherAddr)
	signUp(t, phone, "lmb", "phone")
	b := phone.user
	if st := phone.must("add_friend", map[string]any{"friend": c.user}).str("status"); st != "requested" {
		t.Fatalf("add_friend: %s", st)
	}
	c.push("friend_request", 5*time.Second)
	g := c.must("create_group", map[string]any{"name": uniqueName("lmg")}).obj("group").num("id")

	lm.armed.Store(b)
	laptop := dial(t, loginAddr)
	laptop.user = b
	rid := laptop.send("login", map[string]any{"id": b, "password": testPassword, "device": "laptop"})
	select {
	case <-lm.reached:
	case <-time.After(10 * time.Second):
		t.Fatal("the login did not reach the hook")
	}
	a.must("block", map[string]any{"user": b})
	c.must("add_friend", map[string]any{"friend": b}) // accepts
	phone.must("join_group", map[string]any{"group": g})
	time.Sleep(settle)
	close(lm.resume)
	if r := laptop.reply(rid); !r.ok() {
		t.Fatalf("login: %v", r)
	}
	laptop.waitSynced(10 * time.Second)

	laptop.fails("blocked", "chat", map[string]any{"to": a.user, "text": "the block came during my login"})
	gm := c.must("group_chat", map[string]any{"group": g, "text": "joined on the phone"}).obj("message")
	if got := laptop.messages(1, 5*time.Second)[0]; got.num("id") != gm.num("id") {
		t.Fatalf("the laptop got %v, want the group's message %v", got, gm)
	}
	c.must("logout", nil)
	if u := laptop.push("presence", 5*time.Second).obj("user"); u.num("id") != c.user || u["online"] != false {
		t.Fatalf("presence: %v", u)
	}
}

// The changes held for a session whose sets are being read are bounded by
// -send-queue: one more closes the connection, as for a client that does
// not read its pushes. The user's other sessions are not touched.
func TestDevicesLoginStashBounded(t *testing.T) {
	lm := &loginMeetsChanges{}
	ts, _ := startHooked(t, sqliteURL(t), lm.hook, func(c *Config) { c.SendQueue = 4 })
	a := newUser(t, ts.addr, "lsa")
	phone := dial(t, ts.addr)
	signUp(t, phone, "lsb", "phone")
	b := phone.user

	lm.armed.Store(b)
	laptop := dial(t, ts.addr)
	laptop.send("login", map[string]any{"id": b, "password": testPassword, "device": "laptop"})
	select {
	case <-lm.reached:
	case <-time.After(10 * time.Second):
		t.Fatal("the login did not reach the hook")
	}
	before := ts.srv.metrics.slowClosed.Load()
	for range 3 { // six changes for a stash of four
		a.must("block", map[string]any{"user": b})
		a.must("unblock", map[string]any{"user": b})
	}
	close(lm.resume)
	for _, f := range laptop.closed(5 * time.Second) {
		if f.str("type") == "login" && f.ok() {
			t.Fatalf("the login went through: %v", f)
		}
	}
	if n := ts.srv.metrics.slowClosed.Load() - before; n != 1 {
		t.Fatalf("%d connections closed as too slow, want 1", n)
	}
	phone.must("ping", nil)
}
