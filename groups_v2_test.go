package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"chat/internal/wire"
)

// Private groups and roles (version 2): invite, kick_member, set_role,
// update_group, delete_group, find_groups, private joins, the creator who
// leaves; on both stores, and their pushes across the nodes of a cluster.

const pushWait = 5 * time.Second

// mkGroup creates a group as c and returns its id.
func mkGroup(t *testing.T, c *testClient, name string, private bool) int64 {
	t.Helper()
	g := c.must("create_group", map[string]any{"name": name, "private": private}).obj("group")
	if g["private"] != private {
		t.Fatalf("create_group private %v: %v", private, g)
	}
	return g.num("id")
}

// roles maps each member of the group g of reply field f to its role.
func roles(g frame) map[int64]string {
	out := map[int64]string{}
	for _, m := range g.list("members") {
		out[m.num("id")] = m.str("role")
	}
	return out
}

// groupOf returns c's view of group g from the groups request, nil if c is
// not in it.
func groupOf(t *testing.T, c *testClient, g int64) frame {
	t.Helper()
	for _, x := range c.must("groups", nil).list("groups") {
		if x.num("id") == g {
			return x
		}
	}
	return nil
}

// join makes c join g and checks the other online members are told.
func joinGroup(t *testing.T, c *testClient, g int64, others ...*testClient) {
	t.Helper()
	c.must("join_group", map[string]any{"group": g})
	for _, o := range others {
		if j := o.push("member_joined", pushWait); j.num("group") != g || j.obj("user").num("id") != c.user {
			t.Fatalf("member_joined: %v", j)
		}
	}
}

func TestGroupsV2PrivateJoinAndInvite(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		alice, bob, carol, dave := newUser(t, ts.addr, "pa"), newUser(t, ts.addr, "pb"), newUser(t, ts.addr, "pc"), newUser(t, ts.addr, "pd")

		// A private group: the creator alone, private in every reply.
		p := alice.must("create_group", map[string]any{"name": "Secret", "desc": "hush", "private": true}).obj("group")
		g := p.num("id")
		if p["private"] != true || roles(p)[alice.user] != "creator" || len(p.list("members")) != 1 {
			t.Fatalf("create_group private: %v", p)
		}
		if x := groupOf(t, alice, g); x["private"] != true {
			t.Fatalf("groups: %v", x)
		}
		pub := alice.must("create_group", map[string]any{"name": "open"}).obj("group")
		if pub["private"] != false {
			t.Fatalf("create_group without private: %v", pub)
		}
		open := pub.num("id")

		// Joining a private group needs an invitation.
		bob.fails("forbidden", "join_group", map[string]any{"group": g})
		bob.fails("not_member", "invite", map[string]any{"group": g, "user": bob.user})

		// An invitation by name; the invited user gets the group without
		// members, and who invited.
		bobName := bob.must("whois", map[string]any{"id": bob.user}).obj("user").str("name")
		alice.must("invite", map[string]any{"group": g, "name": bobName})
		inv := bob.push("invited", pushWait)
		if ig := inv.obj("group"); ig.num("id") != g || ig.str("name") != "Secret" || ig.str("desc") != "hush" || ig["private"] != true {
			t.Fatalf("invited group: %v", inv)
		}
		if _, has := inv.obj("group")["members"]; has {
			t.Fatalf("invited group has members: %v", inv)
		}
		if by := inv.obj("by"); by.num("id") != alice.user || by.str("name") == "" {
			t.Fatalf("invited by: %v", inv)
		}
		alice.quiet("invited", 100*time.Millisecond)
		joinGroup(t, bob, g, alice)
		bob.must("join_group", map[string]any{"group": g}) // twice is ok
		alice.quiet("member_joined", 100*time.Millisecond)

		// The invitation was used up: after leaving, a new one is needed.
		bob.must("leave_group", map[string]any{"group": g})
		alice.push("member_left", pushWait)
		bob.fails("forbidden", "join_group", map[string]any{"group": g})
		alice.must("invite", map[string]any{"group": g, "user": bob.user})
		bob.push("invited", pushWait)
		joinGroup(t, bob, g, alice)

		// Inviting a member is ok and pushes nothing.
		alice.must("invite", map[string]any{"group": g, "user": bob.user})
		alice.must("invite", map[string]any{"group": g, "user": alice.user})
		bob.quiet("invited", 150*time.Millisecond)
		alice.quiet("invited", 10*time.Millisecond)

		// A plain member may not invite to a private group; an admin may.
		bob.fails("forbidden", "invite", map[string]any{"group": g, "user": carol.user})
		carol.quiet("invited", 100*time.Millisecond)
		carol.fails("forbidden", "join_group", map[string]any{"group": g})
		alice.must("set_role", map[string]any{"group": g, "user": bob.user, "role": "admin"})
		bob.push("group_updated", pushWait)
		bob.must("invite", map[string]any{"group": g, "user": carol.user})
		if by := carol.push("invited", pushWait).obj("by"); by.num("id") != bob.user {
			t.Fatalf("invited by the admin: %v", by)
		}
		joinGroup(t, carol, g, alice, bob)

		// A public group: any member invites, and anyone joins without.
		joinGroup(t, bob, open, alice)
		bob.must("invite", map[string]any{"group": open, "user": carol.user})
		if ig := carol.push("invited", pushWait).obj("group"); ig.num("id") != open || ig["private"] != false {
			t.Fatalf("invited to the public group: %v", ig)
		}
		joinGroup(t, dave, open, alice, bob) // no invitation needed

		// An invitation not used stays: a public group made private later
		// lets the invited user in.
		alice.must("update_group", map[string]any{"group": open, "private": true})
		for _, x := range []*testClient{bob, dave} {
			x.push("group_updated", pushWait)
		}
		joinGroup(t, carol, open, alice, bob, dave)

		// Errors, in the check order: fields, existence, membership,
		// permission.
		outsider := newUser(t, ts.addr, "po")
		for _, tc := range []struct {
			code   string
			c      *testClient
			fields map[string]any
		}{
			{"bad_request", alice, map[string]any{"user": bob.user}},
			{"bad_request", alice, map[string]any{"group": g}},
			{"bad_request", alice, map[string]any{"group": "1", "user": bob.user}},
			{"bad_request", alice, map[string]any{"group": g, "user": "bob"}},
			{"bad_request", alice, map[string]any{"group": g, "name": ""}},
			{"no_such_user", alice, map[string]any{"group": g, "user": 999999}},
			{"no_such_user", alice, map[string]any{"group": g, "user": 0}},
			{"no_such_user", alice, map[string]any{"group": g, "name": "nobody-here"}},
			{"no_such_user", alice, map[string]any{"group": g, "name": "not a name!"}},
			{"no_such_group", alice, map[string]any{"group": 999999, "user": bob.user}},
			{"no_such_group", alice, map[string]any{"group": -1, "user": bob.user}},
			{"not_member", outsider, map[string]any{"group": g, "user": outsider.user}},
			{"not_member", outsider, map[string]any{"group": open, "user": bob.user}},
			{"forbidden", dave, map[string]any{"group": open, "user": outsider.user}}, // open is private now
		} {
			tc.c.fails(tc.code, "invite", tc.fields)
		}
		outsider.quiet("invited", 100*time.Millisecond)
		outsider.fails("forbidden", "join_group", map[string]any{"group": g})
	})
}

func TestGroupsV2Kick(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		alice, bob, carol, dave := newUser(t, ts.addr, "ka"), newUser(t, ts.addr, "kb"), newUser(t, ts.addr, "kc"), newUser(t, ts.addr, "kd")
		g := mkGroup(t, alice, "kickers", false)
		joinGroup(t, bob, g, alice)
		joinGroup(t, carol, g, alice, bob)
		joinGroup(t, dave, g, alice, bob, carol)
		alice.must("set_role", map[string]any{"group": g, "user": bob.user, "role": "admin"})
		for _, x := range []*testClient{bob, carol, dave} {
			x.push("group_updated", pushWait)
		}
		// carol has a message pending in the group when she is kicked.
		carol.must("logout", nil)
		dave.must("group_chat", map[string]any{"group": g, "text": "while carol is away"})
		for _, x := range []*testClient{alice, bob} {
			x.messages(1, pushWait)
		}
		carol, _ = loginAs(t, ts.addr, carol.user)
		carol.messages(1, pushWait) // from the backlog, and not acked

		// Refused kicks change nothing.
		for _, tc := range []struct {
			code   string
			c      *testClient
			fields map[string]any
		}{
			{"bad_request", bob, map[string]any{"user": carol.user}},
			{"bad_request", bob, map[string]any{"group": g}},
			{"bad_request", bob, map[string]any{"group": g, "name": "x"}}, // by id only
			{"bad_request", bob, map[string]any{"group": g, "user": bob.user}},
			{"no_such_user", bob, map[string]any{"group": g, "user": 999999}},
			{"no_such_group", bob, map[string]any{"group": 999999, "user": carol.user}},
			{"not_member", newUser(t, ts.addr, "ko"), map[string]any{"group": g, "user": carol.user}},
			{"not_member", bob, map[string]any{"group": g, "user": newUser(t, ts.addr, "kn").user}},
			{"forbidden", carol, map[string]any{"group": g, "user": dave.user}},
			{"forbidden", bob, map[string]any{"group": g, "user": alice.user}},
		} {
			tc.c.fails(tc.code, "kick_member", tc.fields)
		}
		if n := len(groupOf(t, alice, g).list("members")); n != 4 {
			t.Fatalf("%d members after refused kicks, want 4", n)
		}

		// An admin kicks: the kicked user and the others are told, the
		// kicker's user is not.
		bob.must("kick_member", map[string]any{"group": g, "user": carol.user})
		for _, x := range []*testClient{carol, alice, dave} {
			r := x.push("member_removed", pushWait)
			if r.num("group") != g || r.obj("user").num("id") != carol.user || r.obj("by").num("id") != bob.user {
				t.Fatalf("member_removed: %v", r)
			}
		}
		bob.quiet("member_removed", 100*time.Millisecond)
		carol.quiet("member_removed", 10*time.Millisecond) // once, not twice

		// The kicked user is out: no pushes, no chats, no history, nothing
		// pending; the group's list drops her.
		dave.must("group_chat", map[string]any{"group": g, "text": "after the kick"})
		carol.fails("not_member", "group_chat", map[string]any{"group": g, "text": "still here?"})
		carol.fails("not_member", "history", map[string]any{"group": g})
		carol.fails("not_member", "leave_group", map[string]any{"group": g})
		carol.quiet("message", 200*time.Millisecond)
		if x := groupOf(t, carol, g); x != nil {
			t.Fatalf("the kicked user still lists the group: %v", x)
		}
		if _, has := roles(groupOf(t, alice, g))[carol.user]; has {
			t.Fatal("the kicked user is still a member")
		}
		carol.must("logout", nil)
		carol, _ = loginAs(t, ts.addr, carol.user)
		carol.quiet("message", 200*time.Millisecond)

		// Coming back needs an invitation from the creator or an admin: a
		// public group too, and a plain member's invitation is refused.
		carol.fails("forbidden", "join_group", map[string]any{"group": g})
		dave.fails("forbidden", "invite", map[string]any{"group": g, "user": carol.user})
		carol.quiet("invited", 100*time.Millisecond)
		carol.fails("forbidden", "join_group", map[string]any{"group": g})
		bob.must("invite", map[string]any{"group": g, "user": carol.user})
		carol.push("invited", pushWait)
		joinGroup(t, carol, g, alice, bob, dave)
		if r := roles(groupOf(t, alice, g))[carol.user]; r != "member" {
			t.Fatalf("back after a kick as %q", r)
		}
		// ... and only once: kicked again, the old invitation is gone.
		alice.must("kick_member", map[string]any{"group": g, "user": carol.user})
		carol.push("member_removed", pushWait)
		carol.fails("forbidden", "join_group", map[string]any{"group": g})

		// An admin may kick an admin; the kicked admin comes back a member.
		alice.must("set_role", map[string]any{"group": g, "user": dave.user, "role": "admin"})
		bob.must("kick_member", map[string]any{"group": g, "user": dave.user})
		dave.push("member_removed", pushWait)
		alice.must("invite", map[string]any{"group": g, "user": dave.user})
		dave.must("join_group", map[string]any{"group": g})
		if r := roles(groupOf(t, alice, g))[dave.user]; r != "member" {
			t.Fatalf("a kicked admin back as %q", r)
		}
	})
}

func TestGroupsV2SetRole(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		alice, bob, carol := newUser(t, ts.addr, "ra"), newUser(t, ts.addr, "rb"), newUser(t, ts.addr, "rc")
		g := mkGroup(t, alice, "roles", true)
		for _, x := range []*testClient{bob, carol} {
			alice.must("invite", map[string]any{"group": g, "user": x.user})
			x.must("join_group", map[string]any{"group": g})
		}
		alice.push("member_joined", pushWait)
		alice.push("member_joined", pushWait)
		bob.push("member_joined", pushWait)

		alice.must("set_role", map[string]any{"group": g, "user": bob.user, "role": "admin"})
		for _, x := range []*testClient{bob, carol} {
			u := x.push("group_updated", pushWait).obj("group")
			if u.num("id") != g || u["private"] != true || roles(u)[bob.user] != "admin" || roles(u)[alice.user] != "creator" || roles(u)[carol.user] != "member" {
				t.Fatalf("group_updated after set_role: %v", u)
			}
		}
		alice.quiet("group_updated", 100*time.Millisecond)
		// The same role again: ok, nothing pushed.
		alice.must("set_role", map[string]any{"group": g, "user": bob.user, "role": "admin"})
		bob.quiet("group_updated", 150*time.Millisecond)

		outsider := newUser(t, ts.addr, "ro")
		for _, tc := range []struct {
			code   string
			c      *testClient
			fields map[string]any
		}{
			{"bad_request", alice, map[string]any{"group": g, "user": bob.user}},
			{"bad_request", alice, map[string]any{"group": g, "user": bob.user, "role": "creator"}},
			{"bad_request", alice, map[string]any{"group": g, "user": bob.user, "role": "Admin"}},
			{"bad_request", alice, map[string]any{"group": g, "user": bob.user, "role": 1}},
			{"bad_request", alice, map[string]any{"group": g, "role": "admin"}},
			{"no_such_user", alice, map[string]any{"group": g, "user": 999999, "role": "admin"}},
			{"no_such_group", alice, map[string]any{"group": 999999, "user": bob.user, "role": "admin"}},
			{"not_member", outsider, map[string]any{"group": g, "user": bob.user, "role": "member"}},
			{"not_member", alice, map[string]any{"group": g, "user": outsider.user, "role": "admin"}},
			{"forbidden", bob, map[string]any{"group": g, "user": carol.user, "role": "admin"}}, // an admin
			{"forbidden", carol, map[string]any{"group": g, "user": carol.user, "role": "admin"}},
			{"forbidden", alice, map[string]any{"group": g, "user": alice.user, "role": "member"}}, // the creator's own
		} {
			tc.c.fails(tc.code, "set_role", tc.fields)
		}
		if r := roles(groupOf(t, alice, g)); r[alice.user] != "creator" || r[bob.user] != "admin" || r[carol.user] != "member" {
			t.Fatalf("roles after refused set_role: %v", r)
		}

		// A demoted admin loses the powers.
		bob.must("invite", map[string]any{"group": g, "user": outsider.user})
		outsider.push("invited", pushWait)
		alice.must("set_role", map[string]any{"group": g, "user": bob.user, "role": "member"})
		bob.push("group_updated", pushWait)
		carol.push("group_updated", pushWait)
		bob.fails("forbidden", "invite", map[string]any{"group": g, "user": newUser(t, ts.addr, "rn").user})
		bob.fails("forbidden", "kick_member", map[string]any{"group": g, "user": carol.user})
		bob.fails("forbidden", "update_group", map[string]any{"group": g, "name": "mine"})
		// The invitation bob gave as an admin still holds.
		outsider.must("join_group", map[string]any{"group": g})
	})
}

func TestGroupsV2UpdateGroup(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		alice, bob, carol := newUser(t, ts.addr, "ua"), newUser(t, ts.addr, "ub"), newUser(t, ts.addr, "uc")
		g := mkGroup(t, alice, "before", false)
		joinGroup(t, bob, g, alice)
		joinGroup(t, carol, g, alice, bob)
		alice.must("set_role", map[string]any{"group": g, "user": bob.user, "role": "admin"})
		bob.push("group_updated", pushWait)
		carol.push("group_updated", pushWait)

		// An admin renames; the reply and the push have the whole group.
		r := bob.must("update_group", map[string]any{"group": g, "name": "after", "desc": "new words"}).obj("group")
		if r.num("id") != g || r.str("name") != "after" || r.str("desc") != "new words" || r["private"] != false || len(r.list("members")) != 3 {
			t.Fatalf("update_group reply: %v", r)
		}
		for _, x := range []*testClient{alice, carol} {
			u := x.push("group_updated", pushWait).obj("group")
			if u.str("name") != "after" || u.str("desc") != "new words" || len(u.list("members")) != 3 {
				t.Fatalf("group_updated: %v", u)
			}
		}
		bob.quiet("group_updated", 100*time.Millisecond)

		// Fields not given stay; desc "" clears; private switches.
		r = alice.must("update_group", map[string]any{"group": g, "desc": "", "private": true}).obj("group")
		if r.str("name") != "after" || r.str("desc") != "" || r["private"] != true {
			t.Fatalf("update_group desc and private: %v", r)
		}
		bob.push("group_updated", pushWait)
		carol.push("group_updated", pushWait)
		if x := groupOf(t, carol, g); x.str("name") != "after" || x["private"] != true {
			t.Fatalf("groups after update: %v", x)
		}
		// Nothing to change, or nothing given: the group, no push.
		r = alice.must("update_group", map[string]any{"group": g, "name": "after", "private": true})
		if r.obj("group").str("name") != "after" {
			t.Fatalf("update_group without a change: %v", r)
		}
		alice.must("update_group", map[string]any{"group": g})
		bob.quiet("group_updated", 150*time.Millisecond)
		// The limits of create_group; 64 characters of any script are fine.
		long := strings.Repeat("й", 64)
		if r := alice.must("update_group", map[string]any{"group": g, "name": long}).obj("group"); r.str("name") != long {
			t.Fatalf("a 64-character name: %v", r)
		}
		bob.push("group_updated", pushWait)
		carol.push("group_updated", pushWait)

		outsider := newUser(t, ts.addr, "uo")
		for _, tc := range []struct {
			code   string
			c      *testClient
			fields map[string]any
		}{
			{"bad_request", alice, map[string]any{"name": "x"}},
			{"bad_request", alice, map[string]any{"group": g, "name": ""}},
			{"bad_request", alice, map[string]any{"group": g, "name": long + "й"}},
			{"bad_request", alice, map[string]any{"group": g, "name": 5}},
			{"bad_request", alice, map[string]any{"group": g, "desc": strings.Repeat("d", 257)}},
			{"bad_request", alice, map[string]any{"group": g, "desc": 1}},
			{"bad_request", alice, map[string]any{"group": g, "private": "yes"}},
			{"bad_request", alice, map[string]any{"group": g, "private": 1}},
			{"no_such_group", alice, map[string]any{"group": 999999, "name": "x"}},
			{"not_member", outsider, map[string]any{"group": g, "name": "x"}},
			{"forbidden", carol, map[string]any{"group": g, "name": "x"}},
		} {
			tc.c.fails(tc.code, "update_group", tc.fields)
		}
		if x := groupOf(t, alice, g); x.str("name") != long || x.str("desc") != "" || x["private"] != true {
			t.Fatalf("the group after refused updates: %v", x)
		}
		// create_group checks private too.
		alice.fails("bad_request", "create_group", map[string]any{"name": "p", "private": "true"})
		if g := alice.must("create_group", map[string]any{"name": "n", "private": nil}).obj("group"); g["private"] != false {
			t.Fatalf("private null: %v", g)
		}
	})
}

func TestGroupsV2DeleteGroup(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, dbURL string) {
		ts := startServer(t, dbURL)
		alice, bob, carol := newUser(t, ts.addr, "da"), newUser(t, ts.addr, "db"), newUser(t, ts.addr, "dc")
		dave, eve, frank := newUser(t, ts.addr, "dd"), newUser(t, ts.addr, "de"), newUser(t, ts.addr, "df")
		g := mkGroup(t, alice, "doomed", false)
		keep := mkGroup(t, alice, "kept", false)
		for _, x := range []*testClient{bob, carol, eve, frank} {
			x.must("join_group", map[string]any{"group": g})
		}
		for _, x := range []*testClient{bob, carol} {
			x.must("join_group", map[string]any{"group": keep})
		}
		alice.must("set_role", map[string]any{"group": g, "user": bob.user, "role": "admin"})
		alice.must("kick_member", map[string]any{"group": g, "user": eve.user}) // a kick
		alice.must("invite", map[string]any{"group": g, "user": dave.user})     // an invitation
		// carol is away with the group's messages pending; alice acks one
		// out of order, which waits in acks.
		carol.must("logout", nil)
		var ids []int64
		for i := range 3 {
			ids = append(ids, bob.must("group_chat", map[string]any{"group": g, "text": fmt.Sprint("doomed ", i)}).obj("message").num("id"))
		}
		kept := bob.must("group_chat", map[string]any{"group": keep, "text": "kept"}).obj("message").num("id")
		alice.messages(4, pushWait)
		alice.must("ack", map[string]any{"ids": []int64{ids[2]}})

		db, _ := openTestDB(t, dbURL)
		held := func() []int {
			var n []int
			for _, q := range []string{
				`SELECT COUNT(*) FROM messages WHERE topic_id = ?`,
				`SELECT COUNT(*) FROM members WHERE topic_id = ?`,
				`SELECT COUNT(*) FROM acks WHERE topic_id = ?`,
				`SELECT COUNT(*) FROM invitations WHERE topic_id = ?`,
				`SELECT COUNT(*) FROM kicks WHERE topic_id = ?`,
				`SELECT COUNT(*) FROM topics WHERE id = ?`,
			} {
				n = append(n, count(t, db, q, g))
			}
			return n
		}
		before := held()
		if !slices.Equal(before, []int{3, 4, 1, 1, 1, 1}) {
			t.Fatalf("rows of the group before delete_group (messages, members, acks, invitations, kicks, topic): %v", before)
		}

		for _, tc := range []struct {
			code   string
			c      *testClient
			fields map[string]any
		}{
			{"bad_request", alice, map[string]any{}},
			{"bad_request", alice, map[string]any{"group": "x"}},
			{"no_such_group", alice, map[string]any{"group": 999999}},
			{"no_such_group", alice, map[string]any{"group": 0}},
			{"not_member", dave, map[string]any{"group": g}},
			{"forbidden", bob, map[string]any{"group": g}}, // an admin
			{"forbidden", frank, map[string]any{"group": g}},
		} {
			tc.c.fails(tc.code, "delete_group", tc.fields)
		}
		if n := held(); !slices.Equal(n, before) {
			t.Fatalf("refused deletes changed the store: %v, was %v", n, before)
		}

		alice.must("delete_group", map[string]any{"group": g})
		for _, x := range []*testClient{bob, frank} {
			if d := x.push("group_deleted", pushWait); d.num("group") != g {
				t.Fatalf("group_deleted: %v", d)
			}
		}
		alice.quiet("group_deleted", 100*time.Millisecond)
		eve.quiet("group_deleted", 10*time.Millisecond)
		if n := held(); !slices.Equal(n, []int{0, 0, 0, 0, 0, 0}) {
			t.Fatalf("rows of the deleted group left: %v", n)
		}
		// Every session dropped it: the group's requests get no_such_group.
		for _, x := range []*testClient{alice, bob, frank} {
			x.fails("no_such_group", "group_chat", map[string]any{"group": g, "text": "anyone?"})
			x.fails("no_such_group", "history", map[string]any{"group": g})
			x.fails("no_such_group", "join_group", map[string]any{"group": g})
			x.fails("no_such_group", "leave_group", map[string]any{"group": g})
			x.fails("no_such_group", "invite", map[string]any{"group": g, "user": eve.user})
			if groupOf(t, x, g) != nil {
				t.Fatal("a deleted group is still listed")
			}
		}
		dave.fails("no_such_group", "join_group", map[string]any{"group": g}) // the invitation went with it
		alice.fails("no_such_group", "delete_group", map[string]any{"group": g})
		// Nothing of it is pending at the next login; the other group is
		// untouched.
		carol, login := loginAs(t, ts.addr, carol.user)
		if gs := login.list("groups"); len(gs) != 1 || gs[0].num("id") != keep {
			t.Fatalf("login groups after delete_group: %v", gs)
		}
		if got := carol.messages(1, pushWait); got[0].num("id") != kept {
			t.Fatalf("carol's backlog: %v", got)
		}
		carol.quiet("message", 200*time.Millisecond)
		if h := carol.must("history", map[string]any{"group": keep}).list("messages"); len(h) != 1 {
			t.Fatalf("history of the other group: %v", h)
		}
		// An ack of a deleted message is ignored.
		alice.must("ack", map[string]any{"ids": ids})
		// A new group never gets the deleted id.
		if n := mkGroup(t, alice, "after", false); n <= g {
			t.Fatalf("new group id %d after deleting %d", n, g)
		}
	})
}

func TestGroupsV2CreatorLeaves(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		alice, bob, carol := newUser(t, ts.addr, "la"), newUser(t, ts.addr, "lb"), newUser(t, ts.addr, "lc")
		g := mkGroup(t, alice, "left behind", true)
		for _, x := range []*testClient{bob, carol} {
			alice.must("invite", map[string]any{"group": g, "user": x.user})
			x.must("join_group", map[string]any{"group": g})
		}
		alice.must("set_role", map[string]any{"group": g, "user": bob.user, "role": "admin"})
		alice.must("leave_group", map[string]any{"group": g})
		// No creator now: the admin still manages; nobody sets roles or
		// deletes.
		if r := roles(groupOf(t, bob, g)); len(r) != 2 || slices.Contains([]string{r[bob.user], r[carol.user]}, "creator") {
			t.Fatalf("roles after the creator left: %v", r)
		}
		bob.must("update_group", map[string]any{"group": g, "desc": "ours now"})
		bob.fails("forbidden", "delete_group", map[string]any{"group": g})
		bob.fails("forbidden", "set_role", map[string]any{"group": g, "user": carol.user, "role": "admin"})
		// The former creator is an outsider of a private group, and comes
		// back a member.
		alice.fails("forbidden", "join_group", map[string]any{"group": g})
		bob.must("invite", map[string]any{"group": g, "user": alice.user})
		if r := roles(alice.must("join_group", map[string]any{"group": g}).obj("group")); r[alice.user] != "member" {
			t.Fatalf("the former creator back as %q", r[alice.user])
		}
		alice.fails("forbidden", "delete_group", map[string]any{"group": g})
		bob.must("kick_member", map[string]any{"group": g, "user": alice.user})
	})
}

func TestGroupsV2FindGroups(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		alice, bob := newUser(t, ts.addr, "fa"), newUser(t, ts.addr, "fb")
		ids := map[string]int64{}
		for _, name := range []string{
			"Straße der Gophers", "STRASSE", "ΟΔΥΣΣΕΥΣ", "Привет мир", "Kelvin", "mañana",
			"100% real", "100 percent", "a_b", "axb", "plain",
		} {
			ids[name] = mkGroup(t, alice, name, false)
		}
		ids["hidden kelvin"] = mkGroup(t, alice, "hidden kelvin", true)
		bob.must("join_group", map[string]any{"group": ids["Kelvin"]})
		desc := "the desc"
		ids["described"] = alice.must("create_group", map[string]any{"name": "described", "desc": desc}).obj("group").num("id")

		names := func(f frame) []string {
			var out []string
			for _, g := range f.list("groups") {
				out = append(out, g.str("name"))
			}
			return out
		}
		for _, tc := range []struct {
			query string
			want  []string
		}{
			{"straße", []string{"Straße der Gophers"}}, // ß folds to nothing but itself
			{"STRASSE", []string{"STRASSE"}},           // no ß to ss
			{"οδυσσευς", []string{"ΟΔΥΣΣΕΥΣ"}},         // final sigma is sigma
			{"ΟΔΥΣ", []string{"ΟΔΥΣΣΕΥΣ"}},             // a prefix
			{"ПРИВЕТ", []string{"Привет мир"}},         // Cyrillic
			{"\u212Aelvin", []string{"Kelvin"}},        // the Kelvin sign is K
			{"KELVIN", []string{"Kelvin"}},             // private groups never show
			{"MAÑANA", []string{"mañana"}},             // Latin-1 letters fold
			{"%", []string{"100% real"}},               // % is a character
			{"_", []string{"a_b"}},                     // so is _
			{"0 p", []string{"100 percent"}},           // and a space
			{"zzz", nil},                               // nothing
			{strings.Repeat("a", 65), nil},             // longer than any name
		} {
			f := bob.must("find_groups", map[string]any{"query": tc.query})
			if got := names(f); !slices.Equal(got, tc.want) {
				t.Errorf("find_groups %q: %q, want %q", tc.query, got, tc.want)
			}
		}
		// Every public group, oldest first, each with its member count and
		// without members.
		all := bob.must("find_groups", nil).list("groups")
		if len(all) != 12 {
			t.Fatalf("find_groups without a query: %d groups", len(all))
		}
		for i, g := range all {
			if i > 0 && g.num("id") <= all[i-1].num("id") {
				t.Fatalf("not oldest first: %v", all)
			}
			if _, has := g["members"]; has || g["private"] != false {
				t.Fatalf("find_groups group: %v", g)
			}
			want := int64(1)
			if g.num("id") == ids["Kelvin"] {
				want = 2
			}
			if g.num("count") != want {
				t.Fatalf("count of %v: want %d", g, want)
			}
			if g.num("id") == ids["described"] && g.str("desc") != desc {
				t.Fatalf("desc: %v", g)
			}
		}
		// A group with no members is still found, with count 0.
		alice.must("leave_group", map[string]any{"group": ids["plain"]})
		if g := bob.must("find_groups", map[string]any{"query": "plain"}).list("groups"); len(g) != 1 || g[0].num("count") != 0 {
			t.Fatalf("an empty group: %v", g)
		}
		// A renamed group is found by its new name; one made private is gone.
		alice.must("update_group", map[string]any{"group": ids["axb"], "name": "Renamed"})
		if got := names(bob.must("find_groups", map[string]any{"query": "renamed"})); !slices.Equal(got, []string{"Renamed"}) {
			t.Fatalf("after rename: %q", got)
		}
		alice.must("update_group", map[string]any{"group": ids["a_b"], "private": true})
		if got := names(bob.must("find_groups", map[string]any{"query": "_"})); len(got) != 0 {
			t.Fatalf("after making it private: %q", got)
		}
		// limit: default 20, clamped to 1-100.
		for i := range 105 {
			mkGroup(t, alice, fmt.Sprintf("many %03d", i), false)
		}
		for _, tc := range []struct {
			limit any
			want  int
		}{{nil, 20}, {0, 1}, {-3, 1}, {1, 1}, {50, 50}, {100, 100}, {101, 100}, {1000000, 100}} {
			f := bob.must("find_groups", map[string]any{"query": "MANY", "limit": tc.limit})
			if got := len(f.list("groups")); got != tc.want {
				t.Errorf("limit %v: %d groups, want %d", tc.limit, got, tc.want)
			}
		}
		for _, fields := range []map[string]any{
			{"query": ""}, {"query": 5}, {"query": []string{"a"}}, {"limit": "10"}, {"limit": 1.5},
		} {
			bob.fails("bad_request", "find_groups", fields)
		}
	})
}

// TestGroupsV2Cluster: the pushes of private groups cross nodes, a kicked
// member on another node can no longer send to the group, and after
// delete_group every node refuses the group, also a node that had seen it.
func TestGroupsV2Cluster(t *testing.T) {
	nodes := startCluster(t, 3, "")
	alice := newUser(t, nodes[0].addr, "xa")
	bob := newUser(t, nodes[1].addr, "xb")
	carol := newUser(t, nodes[2].addr, "xc")
	dave := newUser(t, nodes[2].addr, "xd") // never a member

	g := mkGroup(t, alice, "clustered", true)
	// invited crosses nodes.
	for _, x := range []*testClient{bob, carol} {
		alice.must("invite", map[string]any{"group": g, "user": x.user})
		if inv := x.push("invited", pushWait); inv.obj("group").num("id") != g || inv.obj("by").num("id") != alice.user {
			t.Fatalf("invited across nodes: %v", inv)
		}
	}
	joinGroup(t, bob, g, alice)
	joinGroup(t, carol, g, alice, bob)
	// dave, on node 3, learns from node 3 that the group exists.
	dave.fails("not_member", "group_chat", map[string]any{"group": g, "text": "let me in"})

	// group_updated crosses nodes, from set_role and update_group.
	alice.must("set_role", map[string]any{"group": g, "user": bob.user, "role": "admin"})
	for _, x := range []*testClient{bob, carol} {
		if u := x.push("group_updated", pushWait).obj("group"); roles(u)[bob.user] != "admin" {
			t.Fatalf("group_updated across nodes: %v", u)
		}
	}
	bob.must("update_group", map[string]any{"group": g, "name": "renamed"})
	for _, x := range []*testClient{alice, carol} {
		if u := x.push("group_updated", pushWait).obj("group"); u.str("name") != "renamed" {
			t.Fatalf("group_updated across nodes: %v", u)
		}
	}

	// member_removed crosses nodes; carol, on node 3, can no longer send
	// to the group nor gets its messages.
	bob.must("kick_member", map[string]any{"group": g, "user": carol.user})
	for _, x := range []*testClient{carol, alice} {
		if r := x.push("member_removed", pushWait); r.obj("user").num("id") != carol.user || r.obj("by").num("id") != bob.user {
			t.Fatalf("member_removed across nodes: %v", r)
		}
	}
	carol.fails("not_member", "group_chat", map[string]any{"group": g, "text": "kicked"})
	m := alice.must("group_chat", map[string]any{"group": g, "text": "carol is gone"}).obj("message")
	if got := bob.messages(1, pushWait)[0]; got.num("id") != m.num("id") {
		t.Fatalf("group message: %v", got)
	}
	carol.quiet("message", 300*time.Millisecond)
	carol.fails("forbidden", "join_group", map[string]any{"group": g})
	carol.quiet("member_removed", 10*time.Millisecond)

	// group_deleted crosses nodes, and every node refuses the group.
	alice.must("delete_group", map[string]any{"group": g})
	if d := bob.push("group_deleted", pushWait); d.num("group") != g {
		t.Fatalf("group_deleted across nodes: %v", d)
	}
	carol.quiet("group_deleted", 100*time.Millisecond)
	for _, x := range []*testClient{alice, bob, carol, dave} {
		x.fails("no_such_group", "group_chat", map[string]any{"group": g, "text": "still there?"})
		x.fails("no_such_group", "join_group", map[string]any{"group": g})
	}
	// A login on another node does not bring it back.
	bob2, login := loginAs(t, nodes[2].addr, bob.user)
	if gs := login.list("groups"); len(gs) != 0 {
		t.Fatalf("login after delete: %v", gs)
	}
	bob2.fails("no_such_group", "group_chat", map[string]any{"group": g, "text": "x"})
}

// TestGroupsV2ChatToDeletedGroup: a group_chat that passed the session's
// check but reaches the store after delete_group (a session that missed
// the push) gets no_such_group, and the rest of its batch is stored.
func TestGroupsV2ChatToDeletedGroup(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, db string) {
		s := openTestStore(t, db, schemaMigrations)
		ctx := t.Context()
		a, err := s.CreateUser(ctx, "alice", []byte("h"))
		if err != nil {
			t.Fatal(err)
		}
		gone, err := s.CreateGroup(ctx, a.ID, "gone", "")
		if err != nil {
			t.Fatal(err)
		}
		kept, err := s.CreateGroup(ctx, a.ID, "kept", "")
		if err != nil {
			t.Fatal(err)
		}
		item := func(g int64) *chatItem {
			return &chatItem{msg: Message{Message: wire.Message{From: a.ID, FromName: a.Name, Group: g, Text: "hi", TS: nowMS()}, Topic: g}}
		}
		// A message first, so that SQLite's store holds the group's counter
		// in memory when the group goes (localWriter.forget).
		before := []*chatItem{item(gone)}
		if s.StoreMessages(ctx, before); before[0].err != nil {
			t.Fatalf("a message before the delete: %v", before[0].err)
		}
		if err := s.DeleteGroup(ctx, gone, a.ID); err != nil {
			t.Fatal(err)
		}
		items := []*chatItem{item(kept), item(gone), item(kept)}
		s.StoreMessages(ctx, items)
		if !errors.Is(items[1].err, ErrNoSuchGroup) {
			t.Fatalf("a message to a deleted group: %v", items[1].err)
		}
		if perr, _ := asProtoError(items[1].err); perr.Code != wire.CodeNoSuchGroup {
			t.Fatalf("reply code %s", perr.Code)
		}
		for _, it := range []*chatItem{items[0], items[2]} {
			if it.err != nil || it.msg.ID == 0 {
				t.Fatalf("the rest of the batch: %+v", it)
			}
		}
	})
}

func TestFoldName(t *testing.T) {
	for _, tc := range []struct{ a, b string }{
		{"gophers", "GOPHERS"},
		{"Straße", "STRAẞE"},     // ß and the capital ẞ are one orbit
		{"οδυσσευς", "ΟΔΥΣΣΕΥΣ"}, // σ, ς and Σ
		{"\u212A", "k"},          // the Kelvin sign
		{"ǅ", "ǆ"},               // a title-case digraph
		{"привет", "ПРИВЕТ"},
		{"100%_x", "100%_X"},
	} {
		if fa, fb := foldName(tc.a), foldName(tc.b); fa != fb {
			t.Errorf("foldName(%q) = %q, foldName(%q) = %q", tc.a, fa, tc.b, fb)
		}
		if !strings.EqualFold(tc.a, tc.b) {
			t.Errorf("%q and %q are not EqualFold: the test is wrong", tc.a, tc.b)
		}
	}
	for _, tc := range []struct{ a, b string }{{"Straße", "STRASSE"}, {"ﬁ", "fi"}, {"é", "e\u0301"}} {
		if foldName(tc.a) == foldName(tc.b) {
			t.Errorf("foldName makes %q and %q one", tc.a, tc.b)
		}
	}
	for _, s := range []string{"", "abc", strings.Repeat("ſ", 64), "Σ€𝔸"} {
		if got := foldName(s); utf8.RuneCountInString(got) != utf8.RuneCountInString(s) || foldName(got) != got {
			t.Errorf("foldName(%q) = %q: not as many characters, or not stable", s, got)
		}
	}
}

// TestGroupsV2Commands: the requests are in the table with their field
// checks and costs.
func TestGroupsV2Commands(t *testing.T) {
	for typ, cost := range map[string]float64{
		"invite": 5, "kick_member": 5, "set_role": 5, "update_group": 5, "delete_group": 5, "find_groups": 2,
	} {
		cmd, ok := commands[typ]
		if !ok || !cmd.auth || cmd.check == nil || cmd.cost != cost || cmd.deferred {
			t.Errorf("%s: %+v, want auth, a check and cost %v", typ, cmd, cost)
		}
	}
}

// checkUpgradeGroups checks migration "private groups, invitations and
// kicks" on an upgraded database: the group from before is public, its
// name folded for find_groups, and invitations and kicks work on it.
func checkUpgradeGroups(t *testing.T, s *Store, db *sql.DB, alice, bob int64) {
	t.Helper()
	ctx := context.Background()
	var g, carol int64
	if err := db.QueryRow(`SELECT id FROM topics WHERE kind = ?`, topicGroup).Scan(&g); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT user_id FROM members WHERE topic_id = ? AND user_id NOT IN (?, ?)`, g, alice, bob).Scan(&carol); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM topics WHERE kind = ? AND private = 0 AND name_fold = ?`, topicGroup, foldName("upgraders")); n != 1 {
		t.Fatalf("%d public groups with their name folded, want 1", n)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM topics WHERE kind = ? AND name_fold IS NOT NULL`, topicPrivate); n != 0 {
		t.Fatalf("%d private conversations with a name_fold", n)
	}
	found, err := s.FindGroups(ctx, "GRADE", 10)
	if err != nil || len(found) != 1 || found[0].ID != g || found[0].Count != 3 || found[0].Private {
		t.Fatalf("find_groups after the upgrade: %+v %v", found, err)
	}
	if err := s.KickMember(ctx, g, alice, carol); err != nil {
		t.Fatal(err)
	}
	if _, err := s.JoinGroup(ctx, g, carol); !errors.Is(err, errJoinKicked) {
		t.Fatalf("a kicked member joining: %v", err)
	}
	if _, invited, err := s.Invite(ctx, g, alice, carol); err != nil || !invited {
		t.Fatalf("invite: %v %v", invited, err)
	}
	if joined, err := s.JoinGroup(ctx, g, carol); err != nil || !joined {
		t.Fatalf("join on an invitation: %v %v", joined, err)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM invitations`) + count(t, db, `SELECT COUNT(*) FROM kicks`); n != 0 {
		t.Fatalf("%d invitations and kicks left after the join", n)
	}
}
