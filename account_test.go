package main

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"testing"
	"time"

	"chat/internal/wire"
)

// change_password and delete_account (version 2), and the deleted account
// as the rest of the server sees it, on one node and across a cluster.

// wantKicked waits for c to get a kicked push with reason and be closed.
func wantKicked(t testing.TB, c *testClient, reason string) {
	t.Helper()
	got := c.closed(5 * time.Second)
	if len(got) == 0 || got[len(got)-1].str("type") != "kicked" || got[len(got)-1].str("reason") != reason {
		t.Fatalf("want kicked (%q) then closed, got %v", reason, got)
	}
}

func TestChangePassword(t *testing.T) {
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		a := newUser(t, ts.addr, "pa")
		b := newUser(t, ts.addr, "pb")
		name := a.name(a.user)
		const newPass = "another password"

		anon := dial(t, ts.addr)
		anon.fails("not_logged_in", "change_password", map[string]any{"old": testPassword, "new": newPass})
		for _, tc := range []struct {
			fields map[string]any
			code   string
		}{
			{nil, "bad_request"},
			{map[string]any{"old": testPassword}, "bad_request"},
			{map[string]any{"new": newPass}, "bad_request"},
			{map[string]any{"old": 5, "new": newPass}, "bad_request"},
			{map[string]any{"old": testPassword, "new": ""}, "bad_request"},
			{map[string]any{"old": testPassword, "new": "short"}, "invalid_password"},
			{map[string]any{"old": testPassword, "new": string(make([]byte, 73))}, "invalid_password"},
			{map[string]any{"old": "wrong password", "new": newPass}, "bad_credentials"},
		} {
			a.fails(tc.code, "change_password", tc.fields)
		}
		// Nothing changed: the old password still logs in.
		dial(t, ts.addr).must("login", map[string]any{"name": name, "password": testPassword})
		a, _ = loginAs(t, ts.addr, a.user)

		a.must("change_password", map[string]any{"old": testPassword, "new": newPass})
		// The calling session stays and works.
		a.must("chat", map[string]any{"to": b.user, "text": "new password, same session"})
		b.messages(1, 5*time.Second)
		dial(t, ts.addr).fails("bad_credentials", "login", map[string]any{"name": name, "password": testPassword})
		c := dial(t, ts.addr)
		c.must("login", map[string]any{"id": a.user, "password": newPass})
		wantKicked(t, a, reasonTakenOver)
		// The new password survives a restart.
		ts.restart()
		dial(t, ts.addr).must("login", map[string]any{"name": name, "password": newPass})
	})
}

// TestChangePasswordOtherSessions: the user's other sessions are kicked,
// the calling one stays. Needs devices.
func TestChangePasswordOtherSessions(t *testing.T) {
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		a := newUser(t, ts.addr, "qa")
		a2 := loginDevice(t, ts.addr, a.user, "phone")
		a3 := loginDevice(t, ts.addr, a.user, "tablet")
		a2.must("change_password", map[string]any{"old": testPassword, "new": "changed on the phone"})
		wantKicked(t, a, reasonPasswordChanged)
		wantKicked(t, a3, reasonPasswordChanged)
		a2.must("ping", nil)
		a2.must("friends", nil)
	})
}

// TestPasswordChecksThrottled: a wrong password in change_password or
// delete_account counts as a failed login of the account: past the free
// failures, rate_limited, right password or not, and login with it.
func TestPasswordChecksThrottled(t *testing.T) {
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		for _, typ := range []string{"change_password", "delete_account"} {
			a := newUser(t, ts.addr, "ta")
			wrong := map[string]any{"old": "not the password", "new": "whatever1", "password": "not the password"}
			right := map[string]any{"old": testPassword, "new": "whatever1", "password": testPassword}
			for range loginFreeFailures {
				a.fails("bad_credentials", typ, wrong)
			}
			f := a.fails("rate_limited", typ, right)
			if f.num("retry_after") <= 0 {
				t.Fatalf("%s: rate_limited without retry_after: %v", typ, f)
			}
			dial(t, ts.addr).fails("rate_limited", "login", map[string]any{"id": a.user, "password": testPassword})
			time.Sleep(time.Duration(f.num("retry_after")+50) * time.Millisecond)
			if typ == "change_password" {
				a.must(typ, right)
			} else {
				a.must("ping", nil) // the account is still there
			}
		}
	})
}

// deletion is the scene TestDeleteAccount plays on one node or several:
// a (to be deleted) with friends b and c, a group with b, a request from d,
// one to e, a block of x, and conversations with b, e and x.
type deletion struct {
	a, b, c, d, e, x *testClient
	aName            string
	group            int64
	toE              int64 // a's message to e, pending while e is away
}

// setUpDeletion makes the scene; clients are on addrs[i % len(addrs)].
func setUpDeletion(t *testing.T, addrs ...string) *deletion {
	at := func(i int) string { return addrs[i%len(addrs)] }
	s := &deletion{
		a: newUser(t, at(0), "za"), b: newUser(t, at(1), "zb"), c: newUser(t, at(2), "zc"),
		d: newUser(t, at(1), "zd"), e: newUser(t, at(2), "ze"), x: newUser(t, at(2), "zx"),
	}
	s.aName = s.a.name(s.a.user)
	befriend(t, s.a, s.b)
	befriend(t, s.c, s.a)
	s.group = s.a.must("create_group", map[string]any{"name": "before the end"}).obj("group").num("id")
	s.b.must("join_group", map[string]any{"group": s.group})
	s.a.push("member_joined", 5*time.Second)
	s.d.must("add_friend", map[string]any{"friend": s.a.user})
	s.a.push("friend_request", 5*time.Second)
	s.a.must("add_friend", map[string]any{"friend": s.e.user})
	s.e.push("friend_request", 5*time.Second)
	// b, and x, have talked with a: their nodes cache a and the pair.
	s.b.must("chat", map[string]any{"to": s.a.user, "text": "hi a"})
	s.x.must("chat", map[string]any{"to": s.a.user, "text": "hi from x"})
	s.a.messages(2, 5*time.Second)
	s.a.must("block", map[string]any{"user": s.x.user})
	s.e.must("logout", nil)
	s.toE = s.a.must("chat", map[string]any{"to": s.e.user, "text": "before I go"}).obj("message").num("id")
	return s
}

// deleteAndCheck deletes a and checks what everybody sees: the pushes, the
// lists, and no_such_user wherever the account is named. e logs in again
// on eAddr.
func (s *deletion) deleteAndCheck(t *testing.T, eAddr string) {
	a, b, c, d, x := s.a, s.b, s.c, s.d, s.x
	a.fails("bad_credentials", "delete_account", map[string]any{"password": "not the password"})
	a.fails("bad_request", "delete_account", nil)
	a.fails("bad_request", "delete_account", map[string]any{"password": 12})
	a.must("ping", nil) // still there
	a.must("delete_account", map[string]any{"password": testPassword})
	// Closed after the reply, without a kicked push.
	if got := a.closed(5 * time.Second); len(got) != 0 {
		t.Fatalf("after the delete_account reply: %v", got)
	}
	for _, f := range []*testClient{b, c} {
		if u := f.push("friend_removed", 5*time.Second).obj("user"); u.num("id") != a.user || u.str("name") != s.aName {
			t.Fatalf("friend_removed: %v", u)
		}
		wantIDs(t, f.must("friends", nil), "friends")
	}
	if p := b.push("member_left", 5*time.Second); p.num("group") != s.group || p.obj("user").num("id") != a.user {
		t.Fatalf("member_left: %v", p)
	}
	// The friends heard no offline presence from a friend they no longer have.
	b.quiet("presence", 300*time.Millisecond)
	c.quiet("presence", 0)
	members := ids(b.must("groups", nil).list("groups")[0], "members")
	if !slices.Equal(members, []int64{b.user}) {
		t.Fatalf("group members after the deletion: %v", members)
	}
	wantRequests(t, d, nil, nil)

	// Whoever names the account gets no_such_user, on every node.
	for _, who := range []*testClient{b, c, d, x} {
		for _, req := range []struct {
			typ    string
			fields map[string]any
		}{
			{"whois", map[string]any{"id": a.user}},
			{"whois", map[string]any{"name": s.aName}},
			{"chat", map[string]any{"to": a.user, "text": "are you there?"}},
			{"add_friend", map[string]any{"friend": a.user}},
			{"add_friend", map[string]any{"name": s.aName}},
			{"block", map[string]any{"user": a.user}},
		} {
			who.fails("no_such_user", req.typ, req.fields)
		}
	}
	// Twice: the second time the node knows without asking the store.
	x.fails("no_such_user", "chat", map[string]any{"to": a.user, "text": "once more"})
	// Its messages stay in the others' history, under its name.
	h := b.must("history", map[string]any{"with": a.user}).list("messages")
	if len(h) != 1 || h[0].str("text") != "hi a" || h[0].str("from_name") == "" {
		t.Fatalf("history with the deleted account: %v", h)
	}
	// Its name is taken for good, and logs nobody in.
	anon := dial(t, eAddr)
	anon.fails("name_taken", "register", map[string]any{"name": s.aName, "password": testPassword})
	anon.fails("bad_credentials", "login", map[string]any{"name": s.aName, "password": testPassword})
	anon.fails("bad_credentials", "login", map[string]any{"id": a.user, "password": testPassword})
	// What it sent while e was away still comes.
	e, login := loginAs(t, eAddr, s.e.user)
	wantIDs(t, login, "requests")
	if got := e.messages(1, 5*time.Second); got[0].num("id") != s.toE || got[0].num("from") != a.user {
		t.Fatalf("e's backlog: %v", got)
	}
}

func TestDeleteAccount(t *testing.T) {
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		s := setUpDeletion(t, ts.addr)
		s.deleteAndCheck(t, ts.addr)
		// After a restart, with every cache empty, it is still gone.
		ts.restart()
		b, _ := loginAs(t, ts.addr, s.b.user)
		b.fails("no_such_user", "whois", map[string]any{"id": s.a.user})
		b.fails("no_such_user", "chat", map[string]any{"to": s.a.user, "text": "after a restart"})
		if h := b.must("history", map[string]any{"with": s.a.user}).list("messages"); len(h) != 1 {
			t.Fatalf("history after a restart: %v", h)
		}
		// A user who never talked with it cannot open a conversation.
		n := newUser(t, ts.addr, "zn")
		n.fails("no_such_user", "chat", map[string]any{"to": s.a.user, "text": "hello?"})
		n.fails("no_such_user", "unblock", map[string]any{"user": s.a.user})
		n.fails("no_such_user", "remove_friend", map[string]any{"friend": s.a.user})
	})
}

// TestDeleteAccountOtherSessions: every session of the user is closed, the
// others after a kicked push. Needs devices.
func TestDeleteAccountOtherSessions(t *testing.T) {
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		a := newUser(t, ts.addr, "oa")
		f := newUser(t, ts.addr, "of")
		befriend(t, a, f)
		a2 := loginDevice(t, ts.addr, a.user, "phone")
		a2.must("delete_account", map[string]any{"password": testPassword})
		if got := a2.closed(5 * time.Second); len(got) != 0 {
			t.Fatalf("after the delete_account reply: %v", got)
		}
		wantKicked(t, a, reasonAccountDeleted)
		f.push("friend_removed", 5*time.Second)
		f.quiet("presence", 300*time.Millisecond)
	})
}

// TestAccountCluster: the pushes of a deletion cross nodes, and a chat to
// the deleted account is refused on every node: one that cached the
// account and its conversation, and one that never met it.
func TestAccountCluster(t *testing.T) {
	nodes := startCluster(t, 3, "")
	addrs := []string{nodes[0].addr, nodes[1].addr, nodes[2].addr}
	s := setUpDeletion(t, addrs...)
	s.deleteAndCheck(t, addrs[2])
	for _, addr := range addrs {
		n := newUser(t, addr, "zn")
		n.fails("no_such_user", "chat", map[string]any{"to": s.a.user, "text": "hello?"})
		n.fails("no_such_user", "whois", map[string]any{"id": s.a.user})
	}

	// change_password and delete_account kick the user's sessions on
	// other nodes (needs devices).
	p := newUser(t, addrs[0], "zp")
	p2 := loginDevice(t, addrs[1], p.user, "phone")
	p3 := loginDevice(t, addrs[2], p.user, "tablet")
	p.must("change_password", map[string]any{"old": testPassword, "new": "a new password"})
	wantKicked(t, p2, reasonPasswordChanged)
	wantKicked(t, p3, reasonPasswordChanged)
	q := dial(t, addrs[2])
	q.must("login", map[string]any{"id": p.user, "password": "a new password", "device": "tablet"})
	p.must("delete_account", map[string]any{"password": "a new password"})
	wantKicked(t, q, reasonAccountDeleted)
}

// checkUpgradedPeople: on a database upgraded from an older version
// (checkUpgrade in migrate_test.go), requests, blocks and a deletion work
// on the old rows. alice and bob are friends with a conversation (pair),
// alice is in a group, and a third user is there.
func checkUpgradedPeople(t *testing.T, s *Store, db *sql.DB, alice, bob, pair int64) {
	t.Helper()
	ctx := context.Background()
	if n := count(t, db, `SELECT COUNT(*) FROM users WHERE deleted <> 0`); n != 0 {
		t.Fatalf("%d users deleted by the upgrade", n)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM topics WHERE closed <> 0`); n != 0 {
		t.Fatalf("%d topics closed by the upgrade", n)
	}
	carol := int64(count(t, db, `SELECT MIN(id) FROM users WHERE id NOT IN (?, ?)`, alice, bob))
	if out, err := s.AskFriend(ctx, carol, alice); err != nil || out != askRequested {
		t.Fatalf("a request: %v %v", out, err)
	}
	if in, _, err := s.FriendRequests(ctx, alice); err != nil || len(in) != 1 || in[0].ID != carol {
		t.Fatalf("requests: %v %v", in, err)
	}
	if out, err := s.AskFriend(ctx, alice, carol); err != nil || out != askAccepted {
		t.Fatalf("accepting: %v %v", out, err)
	}
	if out, err := s.Block(ctx, bob, carol); err != nil || !out.added {
		t.Fatalf("a block: %v %v", out, err)
	}
	if _, by, err := s.LoginPeople(ctx, carol); err != nil || !slices.Equal(by, []int64{bob}) {
		t.Fatalf("blocked by: %v %v", by, err)
	}
	gone, err := s.DeleteAccount(ctx, alice)
	if err != nil || len(gone.friends) != 2 || len(gone.groups) != 1 {
		t.Fatalf("deleting alice: %+v %v", gone, err)
	}
	it := &chatItem{msg: Message{Message: wire.Message{From: bob, To: alice, Text: "too late", TS: nowMS()}, Topic: pair}}
	s.StoreMessages(ctx, []*chatItem{it})
	if !errors.Is(it.err, ErrNoSuchUser) {
		t.Fatalf("a message to the deleted alice: %v", it.err)
	}
	if msgs, err := s.History(ctx, pair, 0, 10); err != nil || len(msgs) != 3 {
		t.Fatalf("history with the deleted alice: %d messages, %v", len(msgs), err)
	}
	if a, err := s.Account(ctx, "", alice); err != nil || !a.Deleted || len(a.Hash) != 0 {
		t.Fatalf("alice's account: %+v %v", a, err)
	}
}
