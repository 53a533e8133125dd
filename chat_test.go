package main

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"chat/internal/wire"
)

// The integration suite: every request type, push and error code over real
// TCP, against SQLite and MySQL alike.

func TestRegisterAndLogin(t *testing.T) {
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		c := dial(t, ts.addr)
		name := uniqueName("ana")
		u := c.must("register", map[string]any{"name": name, "password": testPassword}).obj("user")
		if u.str("name") != name || u.num("id") <= 0 {
			t.Fatalf("register reply user: %v", u)
		}
		c.fails("name_taken", "register", map[string]any{"name": name, "password": testPassword})
		// register does not log in
		c.fails("not_logged_in", "friends", nil)
		c.fails("bad_credentials", "login", map[string]any{"name": name, "password": "wrong-password"})
		c.fails("bad_credentials", "login", map[string]any{"name": "nobody_here", "password": testPassword})
		c.fails("bad_credentials", "login", map[string]any{"name": "no spaces allowed", "password": testPassword})
		c.fails("bad_credentials", "login", map[string]any{"id": 999999, "password": testPassword})
		f := c.must("login", map[string]any{"name": name, "password": testPassword})
		if f.obj("user").num("id") != u.num("id") {
			t.Fatalf("login user: %v", f)
		}
		if fr, ok := f["friends"].([]any); !ok || len(fr) != 0 {
			t.Fatalf("friends must be [] not null: %v", f)
		}
		if gr, ok := f["groups"].([]any); !ok || len(gr) != 0 {
			t.Fatalf("groups must be [] not null: %v", f)
		}
		c.must("logout", nil)
		c.fails("not_logged_in", "friends", nil)
		// login by id works too, and the connection may log in again
		c.must("login", map[string]any{"id": u.num("id"), "password": testPassword})
		c.must("friends", nil)

		// bcrypt reads 72 bytes; a longer password must not match a 72-byte one.
		long := strings.Repeat("p", wire.MaxPasswordBytes)
		c.must("register", map[string]any{"name": name + "_72", "password": long})
		c.fails("bad_credentials", "login", map[string]any{"name": name + "_72", "password": long + "extra"})
		c.must("login", map[string]any{"name": name + "_72", "password": long})

		// Names are compared byte for byte: case matters.
		c.must("register", map[string]any{"name": strings.ToUpper(name), "password": testPassword})
	})
}

func TestPasswordsAreHashed(t *testing.T) {
	db := sqliteURL(t)
	ts := startServer(t, db)
	c := dial(t, ts.addr)
	c.must("register", map[string]any{"name": "hashcheck", "password": "plain-secret"})
	a, err := ts.srv.store.Account(t.Context(), "hashcheck", 0)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(a.Hash), "plain-secret") || !strings.HasPrefix(string(a.Hash), "$2") {
		t.Fatalf("stored password is not a bcrypt hash: %q", a.Hash)
	}
}

func TestValidation(t *testing.T) {
	ts := startServer(t, sqliteURL(t))
	c := newUser(t, ts.addr, "val")
	other := newUser(t, ts.addr, "valpeer")
	g := c.must("create_group", map[string]any{"name": "valgroup"}).obj("group").num("id")
	long := strings.Repeat("x", wire.MaxTextBytes+1)
	cases := []struct {
		typ    string
		fields map[string]any
		code   string
	}{
		{"register", map[string]any{"password": testPassword}, "bad_request"},
		{"register", map[string]any{"name": "", "password": testPassword}, "bad_request"},
		{"register", map[string]any{"name": 12, "password": testPassword}, "bad_request"},
		{"register", map[string]any{"name": "has space", "password": testPassword}, "invalid_name"},
		{"register", map[string]any{"name": "semi;colon", "password": testPassword}, "invalid_name"},
		{"register", map[string]any{"name": strings.Repeat("n", 33), "password": testPassword}, "invalid_name"},
		{"register", map[string]any{"name": "okname_x", "password": "short"}, "invalid_password"},
		{"register", map[string]any{"name": "okname_y", "password": strings.Repeat("p", 73)}, "invalid_password"},
		{"register", map[string]any{"name": "okname_z"}, "bad_request"},
		{"login", map[string]any{"password": testPassword}, "bad_request"},
		{"login", map[string]any{"name": "x"}, "bad_request"},
		{"login", map[string]any{"id": "12", "password": testPassword}, "bad_request"},
		{"chat", map[string]any{"text": "hi"}, "bad_request"},
		{"chat", map[string]any{"to": "2", "text": "hi"}, "bad_request"},
		{"chat", map[string]any{"to": 1.5, "text": "hi"}, "bad_request"},
		{"chat", map[string]any{"to": other.user}, "bad_request"},
		{"chat", map[string]any{"to": other.user, "text": ""}, "bad_request"},
		{"chat", map[string]any{"to": other.user, "text": long}, "too_long"},
		{"chat", map[string]any{"to": other.user, "text": "hi", "cid": strings.Repeat("c", 65)}, "too_long"},
		{"chat", map[string]any{"to": other.user, "text": "hi", "cid": 7}, "bad_request"},
		{"chat", map[string]any{"to": 999999, "text": "hi"}, "no_such_user"},
		{"chat", map[string]any{"to": -4, "text": "hi"}, "no_such_user"},
		{"group_chat", map[string]any{"text": "hi"}, "bad_request"},
		{"group_chat", map[string]any{"group": g}, "bad_request"},
		{"group_chat", map[string]any{"group": 999999, "text": "hi"}, "no_such_group"},
		{"add_friend", nil, "bad_request"},
		{"add_friend", map[string]any{"friend": c.user}, "bad_request"},
		{"add_friend", map[string]any{"friend": 999999}, "no_such_user"},
		{"add_friend", map[string]any{"name": "nobody_at_all"}, "no_such_user"},
		{"create_group", nil, "bad_request"},
		{"create_group", map[string]any{"name": ""}, "bad_request"},
		{"create_group", map[string]any{"name": strings.Repeat("g", 65)}, "bad_request"},
		{"create_group", map[string]any{"name": "ok", "desc": strings.Repeat("d", 257)}, "bad_request"},
		{"create_group", map[string]any{"name": "ok", "desc": 5}, "bad_request"},
		{"join_group", nil, "bad_request"},
		{"join_group", map[string]any{"group": "1"}, "bad_request"},
		{"join_group", map[string]any{"group": 999999}, "no_such_group"},
		{"leave_group", map[string]any{"group": 999999}, "no_such_group"},
		{"whois", nil, "bad_request"},
		{"whois", map[string]any{"id": 999999}, "no_such_user"},
		{"whois", map[string]any{"name": "not a name"}, "no_such_user"},
		{"history", nil, "bad_request"},
		{"history", map[string]any{"with": other.user, "group": g}, "bad_request"},
		{"history", map[string]any{"with": 999999}, "no_such_user"},
		{"history", map[string]any{"group": 999999}, "no_such_group"},
		{"history", map[string]any{"with": other.user, "limit": "5"}, "bad_request"},
		{"ack", nil, "bad_request"},
		{"ack", map[string]any{"ids": "1"}, "bad_request"},
		{"ack", map[string]any{"ids": []any{"1"}}, "bad_request"},
		{"online", map[string]any{"limit": true}, "bad_request"},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s %v", tc.typ, tc.fields), func(t *testing.T) {
			c.t = t
			f := c.req(tc.typ, tc.fields)
			if f.ok() || f.code() != tc.code || f.str("type") != tc.typ || f.str("error") == "" {
				t.Fatalf("want %s reply with code %s and a message, got %v", tc.typ, tc.code, f)
			}
		})
	}
	// A group the user is not in.
	c.t = t
	g2 := other.must("create_group", map[string]any{"name": "notmine"}).obj("group").num("id")
	c.fails("not_member", "group_chat", map[string]any{"group": g2, "text": "hi"})
	c.fails("not_member", "history", map[string]any{"group": g2})
	c.fails("not_member", "leave_group", map[string]any{"group": g2})
}

func TestNotLoggedIn(t *testing.T) {
	ts := startServer(t, sqliteURL(t))
	c := dial(t, ts.addr)
	for typ := range commands {
		if typ == "register" || typ == "login" || typ == "ping" {
			continue
		}
		// The session check comes before the fields: an empty request will do.
		c.fails("not_logged_in", typ, nil)
	}
	c.must("ping", nil)
}

func TestFrames(t *testing.T) {
	ts := startServer(t, sqliteURL(t), func(c *Config) { c.MaxFrame = 1024 })
	c := dial(t, ts.addr)
	errFrame := func(code string, rid any) {
		t.Helper()
		f := c.next(5 * time.Second)
		if f.str("type") != "error" || f.ok() || f.code() != code {
			t.Fatalf("want error frame %s, got %v", code, f)
		}
		if rid == nil {
			if _, has := f["rid"]; has {
				t.Fatalf("unexpected rid in %v", f)
			}
		} else if fmt.Sprint(f["rid"]) != fmt.Sprint(rid) {
			t.Fatalf("want rid %v, got %v", rid, f)
		}
	}
	c.sendRaw("not json\n")
	errFrame("bad_frame", nil)
	c.sendRaw("[1,2]\n")
	errFrame("bad_frame", nil)
	c.sendRaw("\"str\"\n")
	errFrame("bad_frame", nil)
	c.sendRaw("{\"type\":\"ping\",\"rid\":1\n") // truncated object
	errFrame("bad_frame", nil)
	c.sendRaw("{\"type\":\"ping\",\"text\":\"\xff\xfe\"}\n")
	errFrame("bad_frame", nil)
	c.sendRaw("\n\r\n   \n") // blank lines are ignored
	c.sendRaw(`{"rid":7}` + "\n")
	errFrame("bad_request", 7)
	c.sendRaw(`{"type":5,"rid":"x"}` + "\n")
	errFrame("bad_request", "x")
	c.sendRaw(`{"type":"nope","rid":8}` + "\n")
	errFrame("unknown_type", 8)

	// rid comes back byte for byte, numbers never through float64.
	for len(c.raw) > 0 {
		<-c.raw
	}
	c.sendRaw(`{"type":"ping","rid":12345678901234567890123}` + "\r\n")
	c.sendRaw(`{"type":"ping","rid":1.50}` + "\n")
	c.sendRaw(`{"type":"ping","rid":"é\u00e9"}` + "\n")
	c.sendRaw(`{"type":"ping"}` + "\n")
	for _, want := range []string{
		`{"type":"ping","rid":12345678901234567890123,"ok":true}`,
		`{"type":"ping","rid":1.50,"ok":true}`,
		`{"type":"ping","rid":"é\u00e9","ok":true}`,
		`{"type":"ping","ok":true}`,
	} {
		c.next(5 * time.Second)
		if got := <-c.raw; got != want {
			t.Fatalf("raw reply:\n got %s\nwant %s", got, want)
		}
	}

	// Partial frames across writes.
	c.sendRaw(`{"type":"pi`)
	time.Sleep(50 * time.Millisecond)
	c.sendRaw(`ng","rid":9}` + "\n")
	if f := c.reply(9); !f.ok() {
		t.Fatalf("split frame: %v", f)
	}
	// A frame of exactly the limit is fine; one byte more closes the connection.
	pad := func(n int) string {
		base := `{"type":"ping","rid":10,"pad":""}`
		return base[:len(base)-2] + strings.Repeat("a", n-len(base)) + `"}`
	}
	c.sendRaw(pad(1024) + "\n")
	if f := c.reply(10); !f.ok() {
		t.Fatalf("frame at the limit: %v", f)
	}
	c.sendRaw(pad(1025) + "\n")
	got := c.closed(5 * time.Second)
	if len(got) != 1 || got[0].code() != "frame_too_large" {
		t.Fatalf("want one frame_too_large then close, got %v", got)
	}
}

func TestHugeFrameWithoutNewline(t *testing.T) {
	ts := startServer(t, sqliteURL(t))
	c := dial(t, ts.addr)
	go c.nc.Write([]byte(strings.Repeat("x", 200<<10)))
	got := c.closed(5 * time.Second)
	if len(got) != 1 || got[0].code() != "frame_too_large" {
		t.Fatalf("want one frame_too_large then close, got %v", got)
	}
}

func TestChatLiveAndOffline(t *testing.T) {
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		a := newUser(t, ts.addr, "alice")
		b := newUser(t, ts.addr, "bob")

		// live
		m := a.must("chat", map[string]any{"to": b.user, "text": "hello, bob", "from": 12345, "id": 777}).obj("message")
		if m.num("from") != a.user || m.num("to") != b.user || m.str("text") != "hello, bob" || m.num("id") <= 0 || m.num("ts") <= 0 {
			t.Fatalf("chat reply message: %v", m)
		}
		if _, has := m["group"]; has {
			t.Fatalf("private message with a group field: %v", m)
		}
		live := b.push("message", 5*time.Second)
		if live["backlog"] != nil {
			t.Fatalf("a live push marked as backlog: %v", live)
		}
		got := live.obj("message")
		if got.num("id") != m.num("id") || got.num("from") != a.user || got.str("from_name") == "" {
			t.Fatalf("pushed message %v, stored %v", got, m)
		}

		// offline: b logs out, a sends three; b logs in and gets them in order
		b.must("logout", nil)
		var ids []int64
		for i := range 3 {
			ids = append(ids, a.must("chat", map[string]any{"to": b.user, "text": fmt.Sprint("offline ", i)}).obj("message").num("id"))
		}
		b2, _ := loginAs(t, ts.addr, b.user)
		msgs := b2.messages(4, 5*time.Second) // the first, never acked, comes again
		want := append([]int64{m.num("id")}, ids...)
		for i, msg := range msgs {
			if msg.num("id") != want[i] {
				t.Fatalf("backlog order: got %v, want ids %v", msgs, want)
			}
		}
		// Unacked: they come again at the next login; acked: never again.
		b2.must("ack", map[string]any{"ids": []int64{want[0], want[2]}})
		b2.must("logout", nil)
		b3, _ := loginAs(t, ts.addr, b.user)
		msgs = b3.messages(2, 5*time.Second)
		if msgs[0].num("id") != want[1] || msgs[1].num("id") != want[3] {
			t.Fatalf("after acking 1st and 3rd: got %v, want %d and %d", msgs, want[1], want[3])
		}
		b3.quiet("message", 200*time.Millisecond)
		b3.must("ack", map[string]any{"ids": []int64{want[1], want[3], 424242, -1}})
		b3.must("logout", nil)
		b4, _ := loginAs(t, ts.addr, b.user)
		b4.quiet("message", 300*time.Millisecond)

		// history sees all four, oldest first, for both sides
		h := a.must("history", map[string]any{"with": b.user}).list("messages")
		if len(h) != 4 || h[0].num("id") != want[0] || h[3].num("id") != want[3] {
			t.Fatalf("history: %v", h)
		}
		h = b4.must("history", map[string]any{"with": a.user, "before": want[3], "limit": 2}).list("messages")
		if len(h) != 2 || h[0].num("id") != want[1] || h[1].num("id") != want[2] {
			t.Fatalf("history before/limit: %v", h)
		}
		// no message id is below 1
		if h := b4.must("history", map[string]any{"with": a.user, "before": 0}).list("messages"); len(h) != 0 {
			t.Fatalf("before 0: %v", h)
		}
		// a clamped limit
		if h := b4.must("history", map[string]any{"with": a.user, "limit": 0}).list("messages"); len(h) != 1 {
			t.Fatalf("limit 0 clamps to 1: %v", h)
		}
		// no conversation yet: an empty list, not null
		c := newUser(t, ts.addr, "carol")
		if h, ok := c.must("history", map[string]any{"with": a.user})["messages"].([]any); !ok || len(h) != 0 {
			t.Fatalf("empty history: %v", h)
		}
	})
}

func TestOwnMessagesAreNotPending(t *testing.T) {
	forEachStore(t, testOwnMessagesAreNotPending)
}

func testOwnMessagesAreNotPending(t *testing.T, db string) {
	ts := startServer(t, db)
	a := newUser(t, ts.addr, "own")
	b := newUser(t, ts.addr, "peer")
	// interleave: b->a, a->b, b->a; a acks only b's; nothing is pending for a
	m1 := b.must("chat", map[string]any{"to": a.user, "text": "1"}).obj("message").num("id")
	a.must("chat", map[string]any{"to": b.user, "text": "2"})
	m3 := b.must("chat", map[string]any{"to": a.user, "text": "3"}).obj("message").num("id")
	a.messages(2, 5*time.Second)
	a.must("ack", map[string]any{"ids": []int64{m3}})
	a.must("ack", map[string]any{"ids": []int64{m1}})
	a.must("logout", nil)
	a2, _ := loginAs(t, ts.addr, a.user)
	a2.quiet("message", 300*time.Millisecond)
	var pending int
	ts.srv.store.db.QueryRow(`SELECT COUNT(*) FROM acks`).Scan(&pending)
	if pending != 0 {
		t.Fatalf("%d sparse acks left after the gap closed", pending)
	}
}

func TestCIDReplay(t *testing.T) {
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		a := newUser(t, ts.addr, "cida")
		b := newUser(t, ts.addr, "cidb")
		first := a.must("chat", map[string]any{"to": b.user, "text": "once", "cid": "k1"}).obj("message")
		again := a.must("chat", map[string]any{"to": b.user, "text": "once", "cid": "k1"}).obj("message")
		if first.num("id") != again.num("id") || again.str("text") != "once" {
			t.Fatalf("replay got %v, first %v", again, first)
		}
		// pipelined duplicates in one write land in one batch
		r1 := a.send("chat", map[string]any{"to": b.user, "text": "twice", "cid": "k2"})
		r2 := a.send("chat", map[string]any{"to": b.user, "text": "twice", "cid": "k2"})
		x, y := a.reply(r1).obj("message"), a.reply(r2).obj("message")
		if x.num("id") != y.num("id") {
			t.Fatalf("in-batch replay: %v vs %v", x, y)
		}
		g := a.must("create_group", map[string]any{"name": "cidg"}).obj("group").num("id")
		b.must("join_group", map[string]any{"group": g})
		gm := a.must("group_chat", map[string]any{"group": g, "text": "g", "cid": "k3"}).obj("message")
		if again := a.must("group_chat", map[string]any{"group": g, "text": "g", "cid": "k3"}).obj("message"); again.num("id") != gm.num("id") {
			t.Fatalf("group replay: %v vs %v", again, gm)
		}
		// b got each message live once (b's login backlog may repeat one
		// stored before its first query ran: that push says backlog).
		live := map[int64]int{}
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case f := <-b.frames:
				if f.str("type") == "message" && f["backlog"] == nil {
					live[f.obj("message").num("id")]++
				}
			case <-time.After(100 * time.Millisecond):
			}
		}
		for _, f := range b.pushes {
			if f.str("type") == "message" && f["backlog"] == nil {
				live[f.obj("message").num("id")]++
			}
		}
		b.pushes = nil
		if len(live) != 3 || live[first.num("id")] != 1 || live[x.num("id")] != 1 || live[gm.num("id")] != 1 {
			t.Fatalf("live pushes per message id: %v", live)
		}
		// after a restart the replay still holds
		ts.restart()
		a2, _ := loginAs(t, ts.addr, a.user)
		if m := a2.must("chat", map[string]any{"to": b.user, "text": "once", "cid": "k1"}).obj("message"); m.num("id") != first.num("id") {
			t.Fatalf("replay after restart: %v", m)
		}
		if h := a2.must("history", map[string]any{"with": b.user}).list("messages"); len(h) != 2 {
			t.Fatalf("history after replays holds %d messages, want 2", len(h))
		}
	})
}

func TestFriendsAndPresence(t *testing.T) {
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		a := newUser(t, ts.addr, "fa")
		b := newUser(t, ts.addr, "fb")
		// a asks, b accepts (friends_test.go tests the requests further)
		ask := a.must("add_friend", map[string]any{"friend": b.user})
		if f := ask.obj("friend"); f.num("id") != b.user || f["online"] != true || ask.str("status") != "requested" {
			t.Fatalf("add_friend reply: %v", ask)
		}
		if u := b.push("friend_request", 5*time.Second).obj("user"); u.num("id") != a.user {
			t.Fatalf("friend_request: %v", u)
		}
		if st := b.must("add_friend", map[string]any{"friend": a.user}).str("status"); st != "friends" {
			t.Fatalf("accepting: status %q", st)
		}
		added := a.push("friend_added", 5*time.Second).obj("friend")
		if added.num("id") != b.user {
			t.Fatalf("friend_added: %v", added)
		}
		// again, by name, is fine and pushes nothing
		bname := b.must("whois", map[string]any{"id": b.user}).obj("user").str("name")
		if st := a.must("add_friend", map[string]any{"name": bname}).str("status"); st != "friends" {
			t.Fatalf("add_friend of a friend: status %q", st)
		}
		b.quiet("friend_added", 200*time.Millisecond)
		fl := b.must("friends", nil).list("friends")
		if len(fl) != 1 || fl[0].num("id") != a.user || fl[0]["online"] != true {
			t.Fatalf("friends (mutual): %v", fl)
		}
		// presence: b goes away and comes back; a sees both
		b.must("logout", nil)
		p := a.push("presence", 5*time.Second).obj("user")
		if p.num("id") != b.user || p["online"] != false {
			t.Fatalf("offline presence: %v", p)
		}
		b2, login := loginAs(t, ts.addr, b.user)
		if fr := login.list("friends"); len(fr) != 1 || fr[0]["online"] != true {
			t.Fatalf("login friends: %v", fr)
		}
		p = a.push("presence", 5*time.Second).obj("user")
		if p.num("id") != b.user || p["online"] != true {
			t.Fatalf("online presence: %v", p)
		}
		// disconnect without logout counts as offline
		b2.nc.Close()
		if p = a.push("presence", 5*time.Second).obj("user"); p["online"] != false {
			t.Fatalf("presence after disconnect: %v", p)
		}
		if u := a.must("whois", map[string]any{"id": b.user}).obj("user"); u["online"] != false || u.str("name") != bname {
			t.Fatalf("whois offline: %v", u)
		}
		if u := a.must("whois", map[string]any{"name": bname}).obj("user"); u.num("id") != b.user {
			t.Fatalf("whois by name: %v", u)
		}
	})
}

func TestKick(t *testing.T) {
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		a := newUser(t, ts.addr, "kick")
		friend := newUser(t, ts.addr, "watcher")
		befriend(t, friend, a)
		a2, _ := loginAs(t, ts.addr, a.user)
		got := a.closed(5 * time.Second)
		if len(got) == 0 || got[len(got)-1].str("type") != "kicked" || got[len(got)-1].str("reason") == "" {
			t.Fatalf("old session got %v, want kicked then close", got)
		}
		// a kicked user stays online: no presence push either way
		friend.quiet("presence", 300*time.Millisecond)
		if u := friend.must("whois", map[string]any{"id": a.user}).obj("user"); u["online"] != true {
			t.Fatalf("kicked user is offline: %v", u)
		}
		// the new session works and receives
		friend.must("chat", map[string]any{"to": a.user, "text": "still there?"})
		a2.messages(1, 5*time.Second)
	})
}

func TestGroups(t *testing.T) {
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		a := newUser(t, ts.addr, "ga")
		b := newUser(t, ts.addr, "gb")
		c := newUser(t, ts.addr, "gc")
		g := a.must("create_group", map[string]any{"name": "gophers", "desc": "we gopher"}).obj("group")
		gid := g.num("id")
		if g.str("name") != "gophers" || g.str("desc") != "we gopher" || len(g.list("members")) != 1 ||
			g.list("members")[0].str("role") != "creator" {
			t.Fatalf("create_group: %v", g)
		}
		jb := b.must("join_group", map[string]any{"group": gid}).obj("group")
		if ms := jb.list("members"); len(ms) != 2 || ms[1].num("id") != b.user || ms[1].str("role") != "member" || ms[0]["online"] != true {
			t.Fatalf("join_group: %v", jb)
		}
		if j := a.push("member_joined", 5*time.Second); j.num("group") != gid || j.obj("user").num("id") != b.user {
			t.Fatalf("member_joined: %v", j)
		}
		b.must("join_group", map[string]any{"group": gid}) // twice is ok
		a.quiet("member_joined", 200*time.Millisecond)
		c.must("join_group", map[string]any{"group": gid})
		a.push("member_joined", 5*time.Second)
		b.push("member_joined", 5*time.Second)

		m := a.must("group_chat", map[string]any{"group": gid, "text": "hi all"}).obj("message")
		if m.num("group") != gid || m.num("from") != a.user {
			t.Fatalf("group_chat reply: %v", m)
		}
		if _, has := m["to"]; has {
			t.Fatalf("group message with a to field: %v", m)
		}
		for _, x := range []*testClient{b, c} {
			if got := x.messages(1, 5*time.Second)[0]; got.num("id") != m.num("id") {
				t.Fatalf("group push: %v", got)
			}
		}
		a.quiet("message", 200*time.Millisecond) // not to the sender

		gl := b.must("groups", nil).list("groups")
		if len(gl) != 1 || gl[0].num("id") != gid || len(gl[0].list("members")) != 3 {
			t.Fatalf("groups: %v", gl)
		}
		// c leaves, is told nothing more, and others hear it left
		c.must("leave_group", map[string]any{"group": gid})
		if l := a.push("member_left", 5*time.Second); l.obj("user").num("id") != c.user {
			t.Fatalf("member_left: %v", l)
		}
		b.push("member_left", 5*time.Second)
		c.fails("not_member", "group_chat", map[string]any{"group": gid, "text": "x"})
		c.fails("not_member", "leave_group", map[string]any{"group": gid})
		b.must("group_chat", map[string]any{"group": gid, "text": "after c left"})
		c.quiet("message", 200*time.Millisecond)

		// offline group members get it at login; the creator may leave
		b.must("logout", nil)
		m2 := a.must("group_chat", map[string]any{"group": gid, "text": "while b is away"}).obj("message")
		a.must("leave_group", map[string]any{"group": gid})
		b2, login := loginAs(t, ts.addr, b.user)
		if gs := login.list("groups"); len(gs) != 1 || len(gs[0].list("members")) != 1 || gs[0].list("members")[0]["online"] != true {
			t.Fatalf("login groups after the others left (b itself online): %v", gs)
		}
		msgs := b2.messages(2, 5*time.Second) // m (never acked) and m2
		if msgs[0].num("id") != m.num("id") || msgs[1].num("id") != m2.num("id") {
			t.Fatalf("group backlog: %v", msgs)
		}
		// a new member gets no old messages as pending, but sees history
		d := newUser(t, ts.addr, "gd")
		d.must("join_group", map[string]any{"group": gid})
		d.quiet("message", 200*time.Millisecond)
		if h := d.must("history", map[string]any{"group": gid}).list("messages"); len(h) != 3 {
			t.Fatalf("history for a new member: %v", h)
		}
		// an empty group still exists and can be joined
		b2.must("leave_group", map[string]any{"group": gid})
		d.must("leave_group", map[string]any{"group": gid})
		a.must("join_group", map[string]any{"group": gid})
		// the creator who left gave the role up (version 2)
		if r := a.must("join_group", map[string]any{"group": gid}).obj("group"); r.list("members")[0].str("role") != "member" {
			t.Fatalf("creator rejoining: %v", r)
		}
	})
}

func TestOnline(t *testing.T) {
	ts := startServer(t, sqliteURL(t))
	var cs []*testClient
	for range 5 {
		cs = append(cs, newUser(t, ts.addr, "on"))
	}
	f := cs[0].must("online", map[string]any{"limit": 3})
	if f.num("total") != 5 || len(f.list("users")) != 3 || f.list("users")[0]["online"] != true {
		t.Fatalf("online limit 3: %v", f)
	}
	cs[4].must("logout", nil)
	if f := cs[0].must("online", nil); f.num("total") != 4 || len(f.list("users")) != 4 {
		t.Fatalf("online after a logout: %v", f)
	}
}

func TestPipelining(t *testing.T) {
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		a := newUser(t, ts.addr, "pipe")
		b := newUser(t, ts.addr, "pipeb")
		var sb strings.Builder
		const n = 1000
		for i := range n {
			switch i % 10 {
			case 3:
				fmt.Fprintf(&sb, `{"type":"ping","rid":%d}`+"\n", i)
			case 7:
				fmt.Fprintf(&sb, `{"type":"history","rid":%d,"with":%d,"limit":1}`+"\n", i, b.user)
			default:
				fmt.Fprintf(&sb, `{"type":"chat","rid":%d,"to":%d,"text":"m%d"}`+"\n", i, b.user, i)
			}
		}
		a.sendRaw(sb.String()) // one write
		var last int64
		for i := range n {
			f := a.next(20 * time.Second)
			if f.num("rid") != int64(i) || !f.ok() {
				t.Fatalf("reply %d: %v", i, f)
			}
			if i%10 == 7 { // history after a chat sees that chat
				h := f.list("messages")
				if len(h) != 1 || h[0].str("text") != fmt.Sprintf("m%d", i-1) {
					t.Fatalf("history %d saw %v", i, h)
				}
			}
			if m := f.obj("message"); m != nil {
				if m.num("id") <= last {
					t.Fatalf("ids out of order at %d", i)
				}
				last = m.num("id")
			}
		}
		// the recipient gets them live, in the order sent
		msgs := b.messages(800, 20*time.Second)
		prev := -1
		for _, m := range msgs {
			var k int
			fmt.Sscanf(m.str("text"), "m%d", &k)
			if k <= prev {
				t.Fatalf("live order broken: m%d after m%d", k, prev)
			}
			prev = k
		}
	})
}

func TestRateLimit(t *testing.T) {
	ts := startServer(t, sqliteURL(t), func(c *Config) { c.Rate = 10 })
	a := newUser(t, ts.addr, "rl")
	b := newUser(t, ts.addr, "rlb")
	var sb strings.Builder
	for i := range 100 {
		fmt.Fprintf(&sb, `{"type":"chat","rid":%d,"to":%d,"text":"x"}`+"\n", i, b.user)
	}
	a.sendRaw(sb.String())
	okN, limited := 0, 0
	for i := range 100 {
		f := a.next(10 * time.Second)
		if f.num("rid") != int64(i) {
			t.Fatalf("reply order under rate limit: %v at %d", f, i)
		}
		switch {
		case f.ok():
			okN++
		case f.code() == "rate_limited":
			limited++
		default:
			t.Fatalf("unexpected %v", f)
		}
	}
	// burst is twice the rate; a little refills while the burst is sent
	if okN < 20 || okN > 25 || limited != 100-okN {
		t.Fatalf("ok %d, rate_limited %d: want a burst of about 20", okN, limited)
	}
	// every request type counts now (throttle_test.go); ping costs nothing
	if f := a.req("friends", nil); f.code() != "rate_limited" {
		t.Fatalf("friends on an empty bucket: %v", f)
	}
	a.must("ping", nil)
}

func TestIdleTimeout(t *testing.T) {
	ts := startServer(t, sqliteURL(t), func(c *Config) { c.IdleTimeout = 300 * time.Millisecond })
	c := newUser(t, ts.addr, "idle")
	// pings keep it open
	for range 4 {
		time.Sleep(150 * time.Millisecond)
		c.must("ping", nil)
	}
	start := time.Now()
	c.closed(5 * time.Second)
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("closed after %v, before the idle timeout", d)
	}
}

func TestSlowConsumer(t *testing.T) {
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db, func(c *Config) { c.SendQueue = 16 })
		sender := newUser(t, ts.addr, "fast")
		// The slow client logs in, then never reads again.
		name := uniqueName("slow")
		reg := dial(t, ts.addr)
		slowID := reg.must("register", map[string]any{"name": name, "password": testPassword}).obj("user").num("id")
		slow, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer slow.Close()
		slow.(*net.TCPConn).SetReadBuffer(4096)
		fmt.Fprintf(slow, `{"type":"login","name":%q,"password":%q}`+"\n", name, testPassword)
		if line, err := bufio.NewReader(slow).ReadString('\n'); err != nil || !strings.Contains(line, `"ok":true`) {
			t.Fatalf("slow login: %q %v", line, err)
		}

		// Far more than socket buffers hold, pipelined.
		text := strings.Repeat("y", 4000)
		const n = 3000
		var sb strings.Builder
		for i := range n {
			fmt.Fprintf(&sb, `{"type":"chat","rid":%d,"to":%d,"text":"%d%s"}`+"\n", i+1, slowID, i, text)
		}
		go sender.sendRaw(sb.String())
		var ids []int64
		for i := range n {
			f := sender.reply(i + 1)
			if !f.ok() {
				t.Fatalf("chat %d: %v", i, f)
			}
			ids = append(ids, f.obj("message").num("id"))
		}
		// Every send was acknowledged: the sender was never held up. The slow
		// client was closed, and gets everything at its next login.
		deadline := time.Now().Add(10 * time.Second)
		for ts.srv.metrics.slowClosed.Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if ts.srv.metrics.slowClosed.Load() == 0 {
			t.Fatal("the client that never reads was not closed")
		}
		again, _ := loginAs(t, ts.addr, slowID)
		msgs := again.messages(n, 20*time.Second)
		for i, m := range msgs {
			if m.num("id") != ids[i] {
				t.Fatalf("backlog %d: id %d, want %d", i, m.num("id"), ids[i])
			}
		}
	})
}

func TestLargeBacklog(t *testing.T) {
	// The backlog at login is not bounded by -send-queue, and a backlog of
	// many pages from several conversations comes merged, oldest first.
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db, func(c *Config) { c.SendQueue = 8 })
		a := newUser(t, ts.addr, "blk")
		b := newUser(t, ts.addr, "blkb")
		c := newUser(t, ts.addr, "blkc")
		g := c.must("create_group", map[string]any{"name": "blkg"}).obj("group").num("id")
		b.must("join_group", map[string]any{"group": g})
		b.must("logout", nil)
		const n = 700 // per sender and kind: several pages in all
		send := func(x *testClient, mixed bool) {
			var sb strings.Builder
			count := n
			if mixed {
				count = 2 * n
			}
			for i := range count {
				if mixed && i%2 == 1 {
					fmt.Fprintf(&sb, `{"type":"group_chat","rid":%d,"group":%d,"text":"g%d"}`+"\n", i+1000, g, i)
				} else {
					fmt.Fprintf(&sb, `{"type":"chat","rid":%d,"to":%d,"text":"p%d"}`+"\n", i+1000, b.user, i)
				}
			}
			x.sendRaw(sb.String())
			for i := range count {
				if f := x.reply(i + 1000); !f.ok() {
					t.Errorf("request %d: %v", i, f)
					return
				}
			}
		}
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); send(a, false) }()
		go func() { defer wg.Done(); send(c, true) }()
		wg.Wait()
		if t.Failed() {
			return
		}
		b2, _ := loginAs(t, ts.addr, b.user)
		msgs := b2.messages(3*n, 60*time.Second)
		seen := map[int64]bool{}
		for i, m := range msgs {
			if i > 0 && m.num("id") <= msgs[i-1].num("id") {
				t.Fatalf("backlog out of order at %d: %d after %d", i, m.num("id"), msgs[i-1].num("id"))
			}
			seen[m.num("id")] = true
		}
		if len(seen) != 3*n {
			t.Fatalf("%d distinct messages, want %d", len(seen), 3*n)
		}
		b2.quiet("message", 200*time.Millisecond)
	})
}

func TestRestartDurability(t *testing.T) {
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		a := newUser(t, ts.addr, "dura")
		b := newUser(t, ts.addr, "durb")
		befriend(t, a, b)
		g := a.must("create_group", map[string]any{"name": "durable", "desc": "d"}).obj("group").num("id")
		b.must("join_group", map[string]any{"group": g})
		b.must("logout", nil)
		m1 := a.must("chat", map[string]any{"to": b.user, "text": "survive"}).obj("message").num("id")
		m2 := a.must("group_chat", map[string]any{"group": g, "text": "survive too"}).obj("message").num("id")

		ts.restart()

		b2, login := loginAs(t, ts.addr, b.user)
		if fr := login.list("friends"); len(fr) != 1 || fr[0].num("id") != a.user {
			t.Fatalf("friends after restart: %v", fr)
		}
		gs := login.list("groups")
		if len(gs) != 1 || gs[0].num("id") != g || gs[0].str("desc") != "d" || len(gs[0].list("members")) != 2 {
			t.Fatalf("groups after restart: %v", gs)
		}
		msgs := b2.messages(2, 5*time.Second)
		if msgs[0].num("id") != m1 || msgs[1].num("id") != m2 {
			t.Fatalf("unacked after restart: %v", msgs)
		}
		// new ids keep increasing after a restart
		a2, _ := loginAs(t, ts.addr, a.user)
		if m3 := a2.must("chat", map[string]any{"to": b.user, "text": "after"}).obj("message").num("id"); m3 <= m2 {
			t.Fatalf("id %d after restart, not above %d", m3, m2)
		}
	})
}

func TestShutdownPush(t *testing.T) {
	ts := startServer(t, sqliteURL(t))
	a := newUser(t, ts.addr, "sd")
	b := newUser(t, ts.addr, "sdb")
	// in-flight chats are answered before the shutdown push
	var sb strings.Builder
	for i := range 50 {
		fmt.Fprintf(&sb, `{"type":"chat","rid":%d,"to":%d,"text":"x"}`+"\n", 100+i, b.user)
	}
	a.sendRaw(sb.String())
	time.Sleep(20 * time.Millisecond)
	stopped := make(chan struct{})
	go func() { ts.stop(); close(stopped) }()
	defer func() { <-stopped }()
	got := a.closed(10 * time.Second)
	if len(got) == 0 || got[len(got)-1].str("type") != "shutdown" {
		t.Fatalf("want the shutdown push last, got %d frames, last %v", len(got), got[len(got)-1:])
	}
	replied := 0
	for _, f := range got {
		if f.str("type") == "chat" {
			if !f.ok() {
				t.Fatalf("in-flight chat failed at shutdown: %v", f)
			}
			replied++
		}
	}
	t.Logf("%d of 50 pipelined chats were read before shutdown, all answered", replied)
}

func TestPushesFollowTheSession(t *testing.T) {
	// Under a flood of messages, b logs in and out: no push comes before a
	// login's reply or after a logout's reply.
	ts := startServer(t, sqliteURL(t))
	a := newUser(t, ts.addr, "flood")
	b := newUser(t, ts.addr, "floodb")
	b.must("logout", nil)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Bounded: nobody reads a's replies, so its socket fills up at some point.
		a.nc.SetWriteDeadline(time.Now().Add(20 * time.Second))
		for i := 0; i < 400; i++ {
			select {
			case <-stop:
				return
			default:
			}
			var sb strings.Builder
			for j := range 50 {
				fmt.Fprintf(&sb, `{"type":"chat","to":%d,"text":"f%d"}`+"\n", b.user, i*50+j)
			}
			if _, err := a.nc.Write([]byte(sb.String())); err != nil {
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	defer func() { close(stop); <-done }()
	loggedIn, pushesSeen := false, 0
	for i := range 40 {
		typ := "login"
		fields := map[string]any{"id": b.user, "password": testPassword}
		if i%2 == 1 {
			typ, fields = "logout", nil
		}
		rid := b.send(typ, fields)
		for {
			f := b.next(10 * time.Second)
			if f.str("type") == "message" {
				if !loggedIn {
					t.Fatalf("message push while logged out (round %d)", i)
				}
				pushesSeen++
				continue
			}
			if f.num("rid") == int64(rid) {
				if !f.ok() {
					t.Fatalf("%s: %v", typ, f)
				}
				loggedIn = typ == "login"
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	if pushesSeen == 0 {
		t.Fatal("the flood never reached b: the test proves nothing")
	}
}

func TestHalfClosedClientGetsItsBacklog(t *testing.T) {
	// printf '{"type":"login",...}\n' | nc host port: the client closes its
	// side after the login, and still reads the reply and the backlog.
	ts := startServer(t, sqliteURL(t))
	a := newUser(t, ts.addr, "hc")
	b := newUser(t, ts.addr, "hcb")
	b.must("logout", nil)
	for i := range 300 {
		a.must("chat", map[string]any{"to": b.user, "text": fmt.Sprint("while away ", i)})
	}
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	fmt.Fprintf(nc, `{"type":"login","id":%d,"password":%q}`+"\n", b.user, testPassword)
	nc.(*net.TCPConn).CloseWrite()
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	sc := bufio.NewScanner(nc)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) != 302 || !strings.Contains(lines[0], `"type":"login"`) || !strings.Contains(lines[300], "while away 299") ||
		lines[301] != `{"type":"synced"}` {
		t.Fatalf("got %d lines (want the login reply, 300 messages and synced), then the server closed; first %q", len(lines), lines[:min(1, len(lines))])
	}
	if !strings.HasSuffix(lines[1], `,"backlog":true}`) {
		t.Fatalf("a backlog push without the backlog mark: %s", lines[1])
	}
}

func TestAdminEndpoints(t *testing.T) {
	// The profiler only with -pprof, and never /debug/pprof/cmdline: the
	// command line holds the -db and -redis passwords. (secrets_test.go
	// walks a real process's admin port for its secrets.)
	for _, pprofOn := range []bool{false, true} {
		t.Run(fmt.Sprintf("pprof=%v", pprofOn), func(t *testing.T) {
			admin := cmdFreeAddr(t)
			ts := startServer(t, sqliteURL(t), func(c *Config) { c.Admin, c.Pprof = admin, pprofOn })
			newUser(t, ts.addr, "adm")
			profiler := 404
			if pprofOn {
				profiler = 200
			}
			for _, tc := range []struct {
				path   string
				status int
				want   string
			}{
				{"/healthz", 200, "ok"},
				{"/metrics", 200, `chat_requests_total{type="login"} 1`},
				{"/debug/pprof/", profiler, "goroutine"},
				{"/debug/pprof/goroutine?debug=1", profiler, "goroutine profile"},
				{"/debug/pprof/heap?debug=1", profiler, "heap profile"},
				{"/debug/pprof/symbol", profiler, "num_symbols"},
				{"/debug/pprof/cmdline", 404, ""},
			} {
				status, body, err := cmdHTTPGet("http://" + admin + tc.path)
				if err != nil || status != tc.status || status == 200 && !strings.Contains(body, tc.want) {
					t.Fatalf("GET %s: %d %v, want %d with %q; body %.200q", tc.path, status, err, tc.status, tc.want, body)
				}
			}
		})
	}
}
