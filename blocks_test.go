package main

import (
	"testing"
	"time"
)

// Blocks (version 2): block, unblock, blocks; what a block refuses and what
// it ends, silently.

// wantNoPushes fails if c gets any push within d.
func wantNoPushes(t testing.TB, c *testClient, d time.Duration) {
	t.Helper()
	c.quiet("", d) // keeps every push that came
	if len(c.pushes) != 0 {
		t.Fatalf("unexpected pushes: %v", c.pushes)
	}
}

func TestBlocks(t *testing.T) {
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		a := newUser(t, ts.addr, "ba")
		b := newUser(t, ts.addr, "bb")
		befriend(t, a, b)

		// The block ends the friendship; the blocked user hears nothing.
		a.must("block", map[string]any{"user": b.user})
		wantNoPushes(t, b, 300*time.Millisecond)
		wantNoPushes(t, a, 0)
		wantIDs(t, a.must("friends", nil), "friends")
		wantIDs(t, b.must("friends", nil), "friends")
		wantIDs(t, a.must("blocks", nil), "users", b.user)
		wantIDs(t, b.must("blocks", nil), "users")
		a.must("block", map[string]any{"name": a.name(b.user)}) // again: fine
		wantIDs(t, a.must("blocks", nil), "users", b.user)

		// The blocked user's chat and add_friend are refused, and store
		// nothing; the blocker may still write.
		b.fails("blocked", "chat", map[string]any{"to": a.user, "text": "let me in"})
		b.fails("blocked", "add_friend", map[string]any{"friend": a.user})
		a.fails("blocked", "add_friend", map[string]any{"friend": b.user}) // the blocker: unblock first
		b.fails("no_such_user", "chat", map[string]any{"to": 999999, "text": "existence comes first"})
		m := a.must("chat", map[string]any{"to": b.user, "text": "you may read this"}).obj("message")
		if got := b.messages(1, 5*time.Second)[0]; got.num("id") != m.num("id") {
			t.Fatalf("the blocker's message: %v", got)
		}
		b.must("ack", map[string]any{"ids": []int64{m.num("id")}})
		h := a.must("history", map[string]any{"with": b.user}).list("messages")
		if len(h) != 1 || h[0].num("id") != m.num("id") {
			t.Fatalf("history holds %v: the refused chat was stored", h)
		}
		wantNoPushes(t, a, 200*time.Millisecond)
		wantRequests(t, a, nil, nil)

		// Presence no longer flows either way.
		b.must("logout", nil)
		a.quiet("presence", 300*time.Millisecond)
		b, _ = loginAs(t, ts.addr, b.user)
		// The block holds for a new session (loaded at login).
		b.fails("blocked", "chat", map[string]any{"to": a.user, "text": "again"})
		a.must("logout", nil)
		b.quiet("presence", 300*time.Millisecond)
		a, _ = loginAs(t, ts.addr, a.user)

		// Groups they share are not affected.
		g := a.must("create_group", map[string]any{"name": "shared"}).obj("group").num("id")
		b.must("join_group", map[string]any{"group": g})
		gm := b.must("group_chat", map[string]any{"group": g, "text": "to the group"}).obj("message")
		if got := a.messages(1, 5*time.Second)[0]; got.num("id") != gm.num("id") {
			t.Fatalf("group message: %v", got)
		}

		// unblock: the chat goes through again; the friendship does not
		// come back by itself.
		a.must("unblock", map[string]any{"user": b.user})
		wantNoPushes(t, b, 200*time.Millisecond)
		a.must("unblock", map[string]any{"name": a.name(b.user)}) // again: fine
		wantIDs(t, a.must("blocks", nil), "users")
		wantIDs(t, a.must("friends", nil), "friends")
		b.must("chat", map[string]any{"to": a.user, "text": "thanks"})
		a.messages(1, 5*time.Second)
		befriend(t, b, a)
	})
}

// TestBlockEndsRequests: a block drops the requests between the two, both
// ways, silently.
func TestBlockEndsRequests(t *testing.T) {
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		a := newUser(t, ts.addr, "qa")
		c := newUser(t, ts.addr, "qc")
		d := newUser(t, ts.addr, "qd")
		c.must("add_friend", map[string]any{"friend": a.user})
		a.must("add_friend", map[string]any{"friend": d.user})
		a.push("friend_request", 5*time.Second)
		d.push("friend_request", 5*time.Second)
		a.must("block", map[string]any{"user": c.user})
		a.must("block", map[string]any{"user": d.user})
		wantRequests(t, a, nil, nil)
		wantRequests(t, c, nil, nil)
		wantRequests(t, d, nil, nil)
		wantNoPushes(t, c, 200*time.Millisecond)
		wantNoPushes(t, d, 0)
		// After unblocking, a request is a new one.
		a.must("unblock", map[string]any{"user": c.user})
		if st := c.must("add_friend", map[string]any{"friend": a.user}).str("status"); st != "requested" {
			t.Fatalf("asking after an unblock: %q", st)
		}
		a.push("friend_request", 5*time.Second)
	})
}

// TestBlockErrors: each error of block and unblock, and that a refused
// request changes nothing.
func TestBlockErrors(t *testing.T) {
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		a := newUser(t, ts.addr, "ka")
		b := newUser(t, ts.addr, "kb")
		a.must("block", map[string]any{"user": b.user})
		anon := dial(t, ts.addr)
		for _, typ := range []string{"block", "unblock", "blocks"} {
			anon.fails("not_logged_in", typ, map[string]any{"user": b.user})
		}
		for _, typ := range []string{"block", "unblock"} {
			for _, tc := range []struct {
				fields map[string]any
				code   string
			}{
				{nil, "bad_request"},
				{map[string]any{"user": "2"}, "bad_request"},
				{map[string]any{"user": true}, "bad_request"},
				{map[string]any{"name": 7}, "bad_request"},
				{map[string]any{"friend": b.user}, "bad_request"}, // add_friend's field, not this one's
				{map[string]any{"user": a.user}, "bad_request"},
				{map[string]any{"user": 999999}, "no_such_user"},
				{map[string]any{"user": 0}, "no_such_user"},
				{map[string]any{"name": "nobody_at_all"}, "no_such_user"},
			} {
				a.fails(tc.code, typ, tc.fields)
			}
		}
		wantIDs(t, a.must("blocks", nil), "users", b.user)
		b.fails("blocked", "chat", map[string]any{"to": a.user, "text": "still blocked"})
	})
}

// TestBlocksOtherSessions: with devices, every session of the blocked user
// is refused at once, and the blocker's other sessions lose the friend.
func TestBlocksOtherSessions(t *testing.T) {
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		a := newUser(t, ts.addr, "sa")
		b := newUser(t, ts.addr, "sb")
		befriend(t, a, b)
		a2 := loginDevice(t, ts.addr, a.user, "second")
		b2 := loginDevice(t, ts.addr, b.user, "second")
		a.must("block", map[string]any{"user": b.user})
		for _, x := range []*testClient{b, b2} {
			x.fails("blocked", "chat", map[string]any{"to": a.user, "text": "refused on every device"})
		}
		wantNoPushes(t, a2, 200*time.Millisecond)
		b.must("logout", nil)
		b2.must("logout", nil)
		a.quiet("presence", 300*time.Millisecond)
		a2.quiet("presence", 0)
		b, _ = loginAs(t, ts.addr, b.user)
		a2.must("unblock", map[string]any{"user": b.user})
		b.must("chat", map[string]any{"to": a.user, "text": "let in"})
	})
}

// TestBlocksCluster: a block reaches the blocked user's session on another
// node at once, and so does an unblock.
func TestBlocksCluster(t *testing.T) {
	nodes := startCluster(t, 3, "")
	a := newUser(t, nodes[0].addr, "ya")
	b := newUser(t, nodes[1].addr, "yb")
	befriend(t, a, b)
	b.must("chat", map[string]any{"to": a.user, "text": "before"})
	a.messages(1, 5*time.Second)
	a.must("block", map[string]any{"user": b.user})
	// The state push travels through Redis: give it its moment.
	waitFor(t, 5*time.Second, func() bool {
		return b.req("chat", map[string]any{"to": a.user, "text": "after?"}).code() == "blocked"
	})
	b.must("logout", nil)
	a.quiet("presence", 500*time.Millisecond)
	b, _ = loginAs(t, nodes[2].addr, b.user)
	b.fails("blocked", "chat", map[string]any{"to": a.user, "text": "from another node"})
	a.must("unblock", map[string]any{"user": b.user})
	waitFor(t, 5*time.Second, func() bool {
		return b.req("chat", map[string]any{"to": a.user, "text": "unblocked"}).ok()
	})
	a.messages(1, 5*time.Second)
}

// waitFor polls cond until it holds, failing the test after within.
func waitFor(t testing.TB, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not so within %v", within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
