package main

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// Conversations, read marks and typing notices (handlers_conv.go,
// conversations.go, typing.go), on both stores and across a cluster.

// convKey names a conversation of a conversations reply: "with:ID" or
// "group:ID".
func convKey(f frame) string {
	if w := f.obj("with"); w != nil {
		return fmt.Sprintf("with:%d", w.num("id"))
	}
	return fmt.Sprintf("group:%d", f.obj("group").num("id"))
}

func withKey(user int64) string { return fmt.Sprintf("with:%d", user) }
func groupKey(g int64) string   { return fmt.Sprintf("group:%d", g) }

// wantConvs asks for c's conversations and checks their order.
func wantConvs(t *testing.T, c *testClient, want ...string) map[string]frame {
	t.Helper()
	list := c.must("conversations", nil).list("conversations")
	got := make([]string, len(list))
	byKey := map[string]frame{}
	for i, f := range list {
		got[i] = convKey(f)
		byKey[got[i]] = f
	}
	if !slices.Equal(got, want) {
		t.Fatalf("conversations %v, want %v", got, want)
	}
	return byKey
}

// wantConv checks a conversation's last message, read mark and unread count.
func wantConv(t *testing.T, f frame, last, read, unread int64) {
	t.Helper()
	gotLast := int64(0)
	if l := f.obj("last"); l != nil {
		gotLast = l.num("id")
	} else if v, ok := f["last"]; !ok || v != nil {
		t.Fatalf("conversation without a last message must have \"last\":null: %v", f)
	}
	if gotLast != last || f.num("read") != read || f.num("unread") != unread {
		t.Fatalf("conversation %v: last %d read %d unread %d, want %d %d %d", f, gotLast, f.num("read"), f.num("unread"), last, read, unread)
	}
}

// wantPush checks a read or typing push: who, which conversation, and for
// read the id.
func wantPush(t *testing.T, f frame, user *testClient, with, group, id int64) {
	t.Helper()
	u := f.obj("user")
	if u.num("id") != user.user || u.str("name") == "" || u["online"] != true ||
		f.num("with") != with || f.num("group") != group || f.num("id") != id {
		t.Fatalf("push %v: want user %d, with %d, group %d, id %d", f, user.user, with, group, id)
	}
	if (with == 0) != (f["with"] == nil) || (group == 0) != (f["group"] == nil) {
		t.Fatalf("push %v: exactly one of with and group", f)
	}
}

func msgID(f frame) int64 { return f.obj("message").num("id") }

// tick lets the clock move on: activity times are in milliseconds.
func tick() { time.Sleep(5 * time.Millisecond) }

func TestConversations(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		alice := newUser(t, ts.addr, "cva")
		bob := newUser(t, ts.addr, "cvb")
		carol := newUser(t, ts.addr, "cvc")
		wantConvs(t, alice) // nothing yet: []

		// A group without messages is there from the start, ordered by
		// when the caller joined; a private conversation once it has a
		// message; a pair with a topic but no message is not.
		g1 := alice.must("create_group", map[string]any{"name": "g1", "desc": "first"}).obj("group").num("id")
		bob.must("join_group", map[string]any{"group": g1})
		tick()
		m1 := msgID(bob.must("chat", map[string]any{"to": alice.user, "text": "hi alice"}))
		tick()
		g2 := carol.must("create_group", map[string]any{"name": "g2"}).obj("group").num("id")
		alice.must("join_group", map[string]any{"group": g2})
		tick()
		if _, err := ts.srv.store.PairTopic(context.Background(), alice.user, carol.user, true); err != nil {
			t.Fatal(err)
		}
		got := wantConvs(t, alice, groupKey(g2), withKey(bob.user), groupKey(g1))
		wantConv(t, got[groupKey(g1)], 0, 0, 0)
		wantConv(t, got[groupKey(g2)], 0, 0, 0)
		wantConv(t, got[withKey(bob.user)], m1, 0, 1)
		if g := got[groupKey(g1)].obj("group"); g.str("name") != "g1" || g.str("desc") != "first" || g["members"] != nil {
			t.Fatalf("group of a conversation: %v", g)
		}
		if w := got[withKey(bob.user)].obj("with"); w.str("name") == "" || w["online"] != true {
			t.Fatalf("user of a conversation: %v", w)
		}
		if l := got[withKey(bob.user)].obj("last"); l.str("text") != "hi alice" || l.num("from") != bob.user || l.num("to") != alice.user {
			t.Fatalf("last message: %v", l)
		}
		wantConvs(t, carol, groupKey(g2))

		// A message moves its conversation first. Unread counts what others
		// sent after the read mark, never one's own.
		tick()
		var gm []int64
		for i := range 3 {
			gm = append(gm, msgID(bob.must("group_chat", map[string]any{"group": g1, "text": fmt.Sprint("g", i)})))
		}
		got = wantConvs(t, alice, groupKey(g1), groupKey(g2), withKey(bob.user))
		wantConv(t, got[groupKey(g1)], gm[2], 0, 3)
		tick()
		m2 := msgID(alice.must("chat", map[string]any{"to": bob.user, "text": "hi bob"}))
		got = wantConvs(t, alice, withKey(bob.user), groupKey(g1), groupKey(g2))
		wantConv(t, got[withKey(bob.user)], m2, 0, 1)
		got = wantConvs(t, bob, withKey(alice.user), groupKey(g1))
		wantConv(t, got[withKey(alice.user)], m2, 0, 1)
		wantConv(t, got[groupKey(g1)], gm[2], 0, 0)

		// read moves the mark and tells the other side; a read that does
		// not move it (the same id, an older one) pushes nothing.
		alice.must("read", map[string]any{"with": bob.user, "id": m1})
		wantPush(t, bob.push("read", 5*time.Second), alice, alice.user, 0, m1)
		got = wantConvs(t, alice, withKey(bob.user), groupKey(g1), groupKey(g2))
		wantConv(t, got[withKey(bob.user)], m2, m1, 0)
		alice.must("read", map[string]any{"with": bob.user, "id": m1})
		bob.quiet("read", 200*time.Millisecond)
		alice.must("read", map[string]any{"with": bob.user, "id": m2}) // one's own message counts too
		wantPush(t, bob.push("read", 5*time.Second), alice, alice.user, 0, m2)
		alice.must("read", map[string]any{"with": bob.user, "id": m1})
		bob.quiet("read", 200*time.Millisecond)
		got = wantConvs(t, alice, withKey(bob.user), groupKey(g1), groupKey(g2))
		wantConv(t, got[withKey(bob.user)], m2, m2, 0)
		alice.quiet("read", 100*time.Millisecond) // the reader's own session gets nothing

		// In a group, a read tells nobody but the reader's other sessions.
		alice.must("read", map[string]any{"group": g1, "id": gm[1]})
		got = wantConvs(t, alice, withKey(bob.user), groupKey(g1), groupKey(g2))
		wantConv(t, got[groupKey(g1)], gm[2], gm[1], 1)
		alice.must("read", map[string]any{"group": g1, "id": gm[0]})
		got = wantConvs(t, alice, withKey(bob.user), groupKey(g1), groupKey(g2))
		wantConv(t, got[groupKey(g1)], gm[2], gm[1], 1)
		bob.quiet("read", 200*time.Millisecond)
		carol.quiet("read", 0)

		// A new member has read the history that was there when it joined.
		carol.must("join_group", map[string]any{"group": g1})
		got = wantConvs(t, carol, groupKey(g1), groupKey(g2))
		wantConv(t, got[groupKey(g1)], gm[2], gm[2], 0)
		gm = append(gm, msgID(bob.must("group_chat", map[string]any{"group": g1, "text": "for carol too"})))
		got = wantConvs(t, carol, groupKey(g1), groupKey(g2))
		wantConv(t, got[groupKey(g1)], gm[3], gm[2], 1)

		// A read mark is kept: it is there at the next login.
		alice.must("logout", nil)
		if w := wantConvs(t, bob, groupKey(g1), withKey(alice.user))[withKey(alice.user)].obj("with"); w["online"] != false {
			t.Fatalf("a user offline: %v", w)
		}
		alice2, _ := loginAs(t, ts.addr, alice.user)
		got = wantConvs(t, alice2, groupKey(g1), withKey(bob.user), groupKey(g2))
		wantConv(t, got[groupKey(g1)], gm[3], gm[1], 2)
		wantConv(t, got[withKey(bob.user)], m2, m2, 0)
	})
}

func TestConversationsLimit(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		alice := newUser(t, ts.addr, "cvl")
		// 1001 groups, joined a millisecond apart, written straight into
		// the store: the request's own path is what is tested.
		const n = 1001
		base := nowMS()
		tx, err := ts.srv.store.db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for i := range n {
			res, err := tx.Exec(`INSERT INTO topics (kind, name, descr, creator_id, last_seq, created_ms) VALUES (?, ?, '', ?, 0, ?)`,
				topicGroup, fmt.Sprint("bulk", i), alice.user, base)
			if err != nil {
				t.Fatal(err)
			}
			g, _ := res.LastInsertId()
			ids = append(ids, g)
			if _, err := tx.Exec(`INSERT INTO members (topic_id, user_id, role, acked_seq, joined_ms) VALUES (?, ?, ?, 0, ?)`,
				g, alice.user, RoleCreator, base+int64(i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		slices.Reverse(ids) // the latest joined first
		for _, tc := range []struct {
			limit any
			want  int
		}{
			{nil, 100}, {0, 1}, {-5, 1}, {1, 1}, {7, 7}, {1000, 1000}, {5000, 1000},
		} {
			fields := map[string]any{}
			if tc.limit != nil {
				fields["limit"] = tc.limit
			}
			list := alice.must("conversations", fields).list("conversations")
			if len(list) != tc.want {
				t.Fatalf("limit %v: %d conversations, want %d", tc.limit, len(list), tc.want)
			}
			for i, f := range list {
				if f.obj("group").num("id") != ids[i] {
					t.Fatalf("limit %v: conversation %d is %v, want group %d", tc.limit, i, f, ids[i])
				}
			}
		}
		for _, bad := range []any{"ten", 1.5, true, []int{1}} {
			alice.fails("bad_request", "conversations", map[string]any{"limit": bad})
		}
	})
}

func TestConversationsShrunkToSendBuffer(t *testing.T) {
	// A conversations reply that could not fit in -send-buffer keeps the
	// most recent conversations that fit, at least one.
	t.Parallel()
	forEachStore(t, func(t *testing.T, db string) {
		const sendBuf = 100 << 10
		ts, a, _ := twoUsers(t, db, sendBuf, "cvs")
		var groups []int64
		for i := range 10 {
			g := a.must("create_group", map[string]any{"name": fmt.Sprint("big", i)}).obj("group").num("id")
			a.must("group_chat", map[string]any{"group": g, "text": bigText})
			groups = append(groups, g)
		}
		slices.Reverse(groups)
		a.must("logout", nil)
		raw := dialRaw(t, ts.addr)
		raw.login(a.user)
		for _, limit := range []int{1, 3, 10} {
			fmt.Fprintf(raw, `{"type":"conversations","limit":%d,"rid":%d}`+"\n", limit, limit)
			line := raw.line()
			list := decodeLine(t, line).list("conversations")
			if len(line)+1 > sendBuf && len(list) > 1 {
				t.Fatalf("limit %d: %d bytes with %d conversations, over -send-buffer", limit, len(line)+1, len(list))
			}
			if len(list) == 0 || len(list) > limit || limit > 3 && len(list) == limit {
				t.Fatalf("limit %d: %d conversations of %d bytes", limit, len(list), len(line))
			}
			for i, f := range list {
				if f.obj("group").num("id") != groups[i] || f.obj("last").str("text") != bigText {
					t.Fatalf("limit %d: conversation %d is not the %dth most recent", limit, i, i+1)
				}
			}
		}
	})
}

func TestReadErrors(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		alice := newUser(t, ts.addr, "cea")
		bob := newUser(t, ts.addr, "ceb")
		carol := newUser(t, ts.addr, "cec")
		stranger := newUser(t, ts.addr, "ced") // never talked with alice
		m := msgID(bob.must("chat", map[string]any{"to": alice.user, "text": "one"}))
		other := msgID(bob.must("chat", map[string]any{"to": carol.user, "text": "not alice's"}))
		g := bob.must("create_group", map[string]any{"name": "ge"}).obj("group").num("id")
		alice.must("join_group", map[string]any{"group": g})
		gm := msgID(bob.must("group_chat", map[string]any{"group": g, "text": "to the group"}))
		closed := carol.must("create_group", map[string]any{"name": "not alice's"}).obj("group").num("id")
		cm := msgID(carol.must("group_chat", map[string]any{"group": closed, "text": "in carol's group"}))
		alice.must("read", map[string]any{"with": bob.user, "id": m})
		bob.push("read", 5*time.Second)

		tests := []struct {
			code   string
			fields map[string]any
		}{
			{"bad_request", map[string]any{"id": m}},
			{"bad_request", map[string]any{"with": bob.user, "group": g, "id": m}},
			{"bad_request", map[string]any{"with": alice.user, "id": m}},
			{"bad_request", map[string]any{"with": bob.user}},
			{"bad_request", map[string]any{"with": bob.user, "id": "1"}},
			{"bad_request", map[string]any{"with": bob.user, "id": 1.5}},
			{"bad_request", map[string]any{"with": fmt.Sprint(bob.user), "id": m}},
			{"bad_request", map[string]any{"group": []int64{g}, "id": gm}},
			{"no_such_user", map[string]any{"with": 1 << 40, "id": m}},
			{"no_such_user", map[string]any{"with": 0, "id": m}},
			{"no_such_group", map[string]any{"group": 1 << 40, "id": gm}},
			{"no_such_group", map[string]any{"group": -1, "id": gm}},
			{"not_member", map[string]any{"group": closed, "id": cm}},
			{"no_such_message", map[string]any{"with": stranger.user, "id": m}},
			{"no_such_message", map[string]any{"with": bob.user, "id": other}},
			{"no_such_message", map[string]any{"with": bob.user, "id": gm}},
			{"no_such_message", map[string]any{"with": bob.user, "id": 0}},
			{"no_such_message", map[string]any{"with": bob.user, "id": -m}},
			{"no_such_message", map[string]any{"with": bob.user, "id": 1 << 40}},
			{"no_such_message", map[string]any{"group": g, "id": m}},
			{"no_such_message", map[string]any{"group": g, "id": cm}},
		}
		for _, tc := range tests {
			alice.fails(tc.code, "read", tc.fields)
		}
		// Nothing was lost or moved, and nobody was told.
		got := wantConvs(t, alice, groupKey(g), withKey(bob.user))
		wantConv(t, got[withKey(bob.user)], m, m, 0)
		wantConv(t, got[groupKey(g)], gm, 0, 1)
		bob.quiet("read", 200*time.Millisecond)
		carol.quiet("read", 0)
		alice.quiet("read", 0)

		// Typing shares the conversation checks (not the id).
		for _, tc := range tests[:3] {
			delete(tc.fields, "id")
			alice.fails(tc.code, "typing", tc.fields)
		}
		alice.fails("bad_request", "typing", map[string]any{"group": "x"})
		alice.fails("no_such_user", "typing", map[string]any{"with": 1 << 40})
		alice.fails("no_such_group", "typing", map[string]any{"group": 1 << 40})
		alice.fails("not_member", "typing", map[string]any{"group": closed})
		carol.quiet("typing", 200*time.Millisecond)

		anon := dial(t, ts.addr)
		for _, typ := range []string{"conversations", "read", "typing"} {
			anon.fails("not_logged_in", typ, map[string]any{"with": bob.user, "id": m})
		}
	})
}

func TestTyping(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		alice := newUser(t, ts.addr, "cta")
		bob := newUser(t, ts.addr, "ctb")
		carol := newUser(t, ts.addr, "ctc")
		g := alice.must("create_group", map[string]any{"name": "typers"}).obj("group").num("id")
		bob.must("join_group", map[string]any{"group": g})
		carol.must("join_group", map[string]any{"group": g})
		alice.push("member_joined", 5*time.Second)
		alice.push("member_joined", 5*time.Second)
		bob.push("member_joined", 5*time.Second)

		// Private: the other side only; a second notice within the second
		// (pipelined, so it surely is) is answered ok and dropped.
		r1 := alice.send("typing", map[string]any{"with": bob.user})
		r2 := alice.send("typing", map[string]any{"with": bob.user})
		for _, rid := range []int{r1, r2} {
			if f := alice.reply(rid); !f.ok() {
				t.Fatalf("typing: %v", f)
			}
		}
		wantPush(t, bob.push("typing", 5*time.Second), alice, alice.user, 0, 0)
		bob.quiet("typing", 300*time.Millisecond)
		// Another conversation is counted apart, and so is another sender.
		alice.must("typing", map[string]any{"group": g})
		for _, x := range []*testClient{bob, carol} {
			wantPush(t, x.push("typing", 5*time.Second), alice, 0, g, 0)
		}
		bob.must("typing", map[string]any{"group": g})
		wantPush(t, alice.push("typing", 5*time.Second), bob, 0, g, 0)
		wantPush(t, carol.push("typing", 5*time.Second), bob, 0, g, 0)
		alice.must("typing", map[string]any{"group": g})
		for _, x := range []*testClient{alice, bob, carol} {
			x.quiet("typing", 200*time.Millisecond) // the typer's own sessions get none either
		}
		// A second later the next one goes through.
		time.Sleep(typingInterval)
		alice.must("typing", map[string]any{"with": bob.user})
		wantPush(t, bob.push("typing", 5*time.Second), alice, alice.user, 0, 0)
		carol.quiet("typing", 100*time.Millisecond)

		// A user whom the other side blocked gets blocked; in a group they
		// share nothing changes. (Blocking itself is block's; here the
		// session learns it as block will tell it: pushBlockedBy.)
		ts.srv.router.ToUser(alice.user, &Push{Kind: pushBlockedBy, Ref: bob.user})
		alice.fails("blocked", "typing", map[string]any{"with": bob.user})
		bob.quiet("typing", 200*time.Millisecond)
		carol.must("typing", map[string]any{"with": alice.user}) // blocks are one way
		wantPush(t, alice.push("typing", 5*time.Second), carol, carol.user, 0, 0)
		alice.must("typing", map[string]any{"group": g})
		wantPush(t, bob.push("typing", 5*time.Second), alice, 0, g, 0)
		// A read is stored, but the blocker is not told of it.
		m := msgID(bob.must("chat", map[string]any{"to": alice.user, "text": "read me"}))
		alice.must("read", map[string]any{"with": bob.user, "id": m})
		bob.quiet("read", 200*time.Millisecond)
		wantConv(t, wantConvs(t, alice, withKey(bob.user), groupKey(g))[withKey(bob.user)], m, m, 0)
		// And lifted.
		ts.srv.router.ToUser(alice.user, &Push{Kind: pushUnblockedBy, Ref: bob.user})
		time.Sleep(typingInterval)
		alice.must("typing", map[string]any{"with": bob.user})
		wantPush(t, bob.push("typing", 5*time.Second), alice, alice.user, 0, 0)
	})
}

func TestTypingGate(t *testing.T) {
	t.Parallel()
	g := newTypingGate()
	if !g.pass(1, 2) || g.pass(1, 2) {
		t.Fatal("the second notice within the interval passed, or the first did not")
	}
	if !g.pass(1, -2) || !g.pass(3, 2) || !g.pass(2, 1) {
		t.Fatal("another conversation or another sender was dropped")
	}
	g.base = g.base.Add(-typingInterval) // the interval has passed
	if !g.pass(1, 2) || g.pass(1, 2) {
		t.Fatal("after the interval")
	}
	// Bounded: many more pairs than slots, and no first notice is ever
	// dropped, whatever pairs share a slot.
	for round := range 2 {
		for s := int64(1); s <= 4*typingSlots; s++ {
			if !g.pass(s, -int64(round)-10) {
				t.Fatalf("round %d: the first notice of sender %d dropped", round, s)
			}
		}
	}
}

// TestReadOtherSessions: a read goes to the reader's other sessions, with
// the other side as with.
func TestReadOtherSessions(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		alice := newUser(t, ts.addr, "coa")
		bob := newUser(t, ts.addr, "cob")
		laptop := loginDevice(t, ts.addr, alice.user, "laptop")
		g := bob.must("create_group", map[string]any{"name": "others"}).obj("group").num("id")
		alice.must("join_group", map[string]any{"group": g})
		m := msgID(bob.must("chat", map[string]any{"to": alice.user, "text": "on every device"}))
		gm := msgID(bob.must("group_chat", map[string]any{"group": g, "text": "and here"}))

		laptop.must("read", map[string]any{"with": bob.user, "id": m})
		wantPush(t, alice.push("read", 5*time.Second), alice, bob.user, 0, m)
		wantPush(t, bob.push("read", 5*time.Second), alice, alice.user, 0, m)
		laptop.must("read", map[string]any{"group": g, "id": gm})
		wantPush(t, alice.push("read", 5*time.Second), alice, 0, g, gm)
		laptop.must("read", map[string]any{"group": g, "id": gm}) // not moved
		for _, x := range []*testClient{alice, laptop, bob} {
			x.quiet("read", 200*time.Millisecond)
		}
		// Typing is not pushed to the typer's other sessions.
		laptop.must("typing", map[string]any{"with": bob.user})
		bob.push("typing", 5*time.Second)
		alice.quiet("typing", 200*time.Millisecond)
	})
}

// TestConvCluster: read and typing pushes cross nodes, and conversations
// count what was sent through other nodes.
func TestConvCluster(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3, "")
	alice := newUser(t, nodes[0].addr, "cka")
	bob := newUser(t, nodes[1].addr, "ckb")
	carol := newUser(t, nodes[2].addr, "ckc")
	g := alice.must("create_group", map[string]any{"name": "cluster conv"}).obj("group").num("id")
	bob.must("join_group", map[string]any{"group": g})
	carol.must("join_group", map[string]any{"group": g})

	m := msgID(bob.must("chat", map[string]any{"to": alice.user, "text": "from node 2"}))
	gm := msgID(carol.must("group_chat", map[string]any{"group": g, "text": "from node 3"}))
	got := wantConvs(t, alice, groupKey(g), withKey(bob.user))
	wantConv(t, got[withKey(bob.user)], m, 0, 1)
	wantConv(t, got[groupKey(g)], gm, 0, 1)

	alice.must("read", map[string]any{"with": bob.user, "id": m})
	wantPush(t, bob.push("read", 5*time.Second), alice, alice.user, 0, m)
	bob.must("read", map[string]any{"group": g, "id": gm})
	alice.must("typing", map[string]any{"with": bob.user})
	wantPush(t, bob.push("typing", 5*time.Second), alice, alice.user, 0, 0)
	alice.must("typing", map[string]any{"group": g})
	wantPush(t, bob.push("typing", 5*time.Second), alice, 0, g, 0)
	wantPush(t, carol.push("typing", 5*time.Second), alice, 0, g, 0)
	for _, x := range []*testClient{alice, carol} {
		x.quiet("read", 200*time.Millisecond) // bob's group read is for bob's sessions only
	}
	got = wantConvs(t, bob, groupKey(g), withKey(alice.user))
	wantConv(t, got[groupKey(g)], gm, gm, 0)
	if w := got[withKey(alice.user)].obj("with"); w["online"] != true {
		t.Fatalf("online across nodes: %v", w)
	}

	// The reader's other session on another node (needs devices).
	other := loginDevice(t, nodes[2].addr, alice.user, "laptop")
	m2 := msgID(bob.must("chat", map[string]any{"to": alice.user, "text": "again"}))
	alice.must("read", map[string]any{"with": bob.user, "id": m2})
	wantPush(t, other.push("read", 5*time.Second), alice, bob.user, 0, m2)
	wantPush(t, bob.push("read", 5*time.Second), alice, alice.user, 0, m2)
	alice.quiet("read", 200*time.Millisecond)
}

// The command table has the three requests, with their field checks and
// costs that stay cheap (docs/protocol.md, the costs).
func TestConvCommands(t *testing.T) {
	for typ, cost := range map[string]float64{"conversations": 5, "read": 1, "typing": 0.5} {
		cmd, ok := commands[typ]
		if !ok || !cmd.auth || cmd.check == nil || cmd.cost != cost {
			t.Errorf("%s: %+v", typ, cmd)
		}
	}
	if typingInterval != time.Second {
		t.Errorf("typing interval %v: the contract says one a second", typingInterval)
	}
}

// checkReadMarks checks the read marks migration on what fillThroughStore
// wrote into a version 1 database: each member's read mark starts at its
// ack mark (what was received counts as read), and conversations and read
// work on the upgraded store.
func checkReadMarks(t *testing.T, dbURL string) {
	db, _ := openTestDB(t, dbURL)
	if n := count(t, db, `SELECT COUNT(*) FROM members WHERE read_seq <> acked_seq`); n != 0 {
		t.Errorf("%d members without their read_seq backfilled", n)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM members WHERE read_seq > 0`); n != 2 {
		t.Errorf("%d read marks above 0, want 2 (bob's private, alice's group)", n)
	}
	s := openTestStore(t, dbURL, withMigrations(migrationV2()))
	ctx := context.Background()
	id := func(q string, args ...any) int64 {
		t.Helper()
		return int64(count(t, db, q, args...))
	}
	alice, bob := id(`SELECT id FROM users WHERE name = 'alice'`), id(`SELECT id FROM users WHERE name = 'bob'`)
	pair := id(`SELECT id FROM topics WHERE pair_lo = ? AND pair_hi = ?`, alice, bob)
	g := id(`SELECT id FROM topics WHERE name = 'upgraders'`)
	private := dumpRows(t, db, fmt.Sprintf(`SELECT id FROM messages WHERE topic_id = %d`, pair))
	first := id(`SELECT id FROM messages WHERE topic_id = ? AND seq = 1`, pair)
	last := id(`SELECT id FROM messages WHERE topic_id = ? AND seq = 3`, pair)
	convs, err := s.Conversations(ctx, bob, 10)
	if err != nil {
		t.Fatal(err)
	}
	// Bob acked the first private message (and the third, out of order):
	// read up to the first, two unread; nothing of the group acked.
	// (checkUpgrade's other checks may have deleted some: deleted ones are not unread.)
	groupUnread := id(`SELECT COUNT(*) FROM messages WHERE topic_id = ? AND deleted = 0`, g)
	pairUnread := id(`SELECT COUNT(*) FROM messages WHERE topic_id = ? AND seq > 1 AND deleted = 0`, pair)
	if len(convs) != 2 || convs[0].Group == nil || convs[0].Group.ID != g || convs[0].Read != 0 || convs[0].Unread != groupUnread ||
		convs[1].With == nil || convs[1].With.ID != alice || convs[1].Read != first || convs[1].Unread != pairUnread || convs[1].Last.ID != last {
		t.Fatalf("bob's conversations after the upgrade (private messages %v): %+v", private, convs)
	}
	if moved, err := s.MarkRead(ctx, bob, pair, last); err != nil || !moved {
		t.Fatalf("read after the upgrade: %v %v", moved, err)
	}
	if moved, err := s.MarkRead(ctx, bob, pair, first); err != nil || moved {
		t.Fatalf("a read mark moved back: %v %v", moved, err)
	}
}
