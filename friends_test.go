package main

import (
	"slices"
	"testing"
	"time"
)

// Friend requests (version 2): add_friend asks, the other side's
// add_friend accepts; decline_friend, remove_friend, friend_requests, and
// the login reply's requests.

// befriend makes a and b friends the version 2 way: a asks, b accepts. It
// takes b's friend_request push and a's friend_added push.
func befriend(t testing.TB, a, b *testClient) {
	t.Helper()
	if st := a.must("add_friend", map[string]any{"friend": b.user}).str("status"); st != "requested" {
		t.Fatalf("add_friend %d -> %d: status %q, want requested", a.user, b.user, st)
	}
	if u := b.push("friend_request", 5*time.Second).obj("user"); u.num("id") != a.user {
		t.Fatalf("friend_request: %v", u)
	}
	if st := b.must("add_friend", map[string]any{"friend": a.user}).str("status"); st != "friends" {
		t.Fatalf("add_friend %d -> %d: status %q, want friends", b.user, a.user, st)
	}
	if f := a.push("friend_added", 5*time.Second).obj("friend"); f.num("id") != b.user {
		t.Fatalf("friend_added: %v", f)
	}
}

// ids returns the "id" of each user of a list field.
func ids(f frame, key string) []int64 {
	out := []int64{}
	for _, u := range f.list(key) {
		out = append(out, u.num("id"))
	}
	return out
}

// wantIDs fails unless the list field key of f holds exactly want, in order.
func wantIDs(t testing.TB, f frame, key string, want ...int64) {
	t.Helper()
	if want == nil {
		want = []int64{}
	}
	if _, isList := f[key].([]any); !isList {
		t.Fatalf("%q is not a list: %v", key, f)
	}
	if got := ids(f, key); !slices.Equal(got, want) {
		t.Fatalf("%s: %v, want %v (%v)", key, got, want, f)
	}
}

// wantRequests checks c's friend_requests.
func wantRequests(t testing.TB, c *testClient, incoming, outgoing []int64) {
	t.Helper()
	f := c.must("friend_requests", nil)
	wantIDs(t, f, "incoming", incoming...)
	wantIDs(t, f, "outgoing", outgoing...)
}

// name returns the user's name, asking the server.
func (c *testClient) name(id int64) string {
	c.t.Helper()
	return c.must("whois", map[string]any{"id": id}).obj("user").str("name")
}

func TestFriendRequests(t *testing.T) {
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		a := newUser(t, ts.addr, "ra")
		b := newUser(t, ts.addr, "rb")

		// a asks: the reply says requested, b hears of it, a of nothing.
		ask := a.must("add_friend", map[string]any{"friend": b.user})
		if ask.str("status") != "requested" || ask.obj("friend").num("id") != b.user || ask.obj("friend")["online"] != true {
			t.Fatalf("add_friend: %v", ask)
		}
		req := b.push("friend_request", 5*time.Second)
		if u := req.obj("user"); u.num("id") != a.user || u.str("name") != a.name(a.user) {
			t.Fatalf("friend_request: %v", req)
		}
		// Asking again, by name, is fine and pushes nothing new.
		if st := a.must("add_friend", map[string]any{"name": a.name(b.user)}).str("status"); st != "requested" {
			t.Fatalf("asking again: %q", st)
		}
		b.quiet("friend_request", 200*time.Millisecond)
		a.quiet("friend_added", 0)
		wantRequests(t, a, nil, []int64{b.user})
		wantRequests(t, b, []int64{a.user}, nil)
		wantIDs(t, a.must("friends", nil), "friends")

		// The login reply lists the requests made to the user.
		b2, login := loginAs(t, ts.addr, b.user)
		wantIDs(t, login, "requests", a.user)
		b.closed(5 * time.Second) // taken over
		b = b2

		// b accepts: friends both ways, a hears of it.
		acc := b.must("add_friend", map[string]any{"friend": a.user})
		if acc.str("status") != "friends" || acc.obj("friend").num("id") != a.user {
			t.Fatalf("accepting: %v", acc)
		}
		if f := a.push("friend_added", 5*time.Second).obj("friend"); f.num("id") != b.user || f["online"] != true {
			t.Fatalf("friend_added: %v", f)
		}
		b.quiet("friend_added", 200*time.Millisecond)
		wantRequests(t, a, nil, nil)
		wantRequests(t, b, nil, nil)
		wantIDs(t, a.must("friends", nil), "friends", b.user)
		wantIDs(t, b.must("friends", nil), "friends", a.user)
		// Friends already: "friends", nothing pushed, either side asking.
		if st := a.must("add_friend", map[string]any{"friend": b.user}).str("status"); st != "friends" {
			t.Fatalf("add_friend of a friend: %q", st)
		}
		if st := b.must("add_friend", map[string]any{"friend": a.user}).str("status"); st != "friends" {
			t.Fatalf("add_friend of a friend: %q", st)
		}
		a.quiet("friend_added", 200*time.Millisecond)
		b.quiet("friend_request", 0)
		// Both sessions follow the new friend's presence: the accepting
		// one (updated by its own request) and the asking one (by the push).
		a.must("logout", nil)
		if p := b.push("presence", 5*time.Second).obj("user"); p.num("id") != a.user || p["online"] != false {
			t.Fatalf("presence to the accepting side: %v", p)
		}
		a, _ = loginAs(t, ts.addr, a.user)
		b.push("presence", 5*time.Second)
		b.must("logout", nil)
		if p := a.push("presence", 5*time.Second).obj("user"); p.num("id") != b.user || p["online"] != false {
			t.Fatalf("presence to the asking side: %v", p)
		}
		b, login = loginAs(t, ts.addr, b.user)
		wantIDs(t, login, "requests")
		wantIDs(t, login, "friends", a.user)
		a.push("presence", 5*time.Second)

		// Crossed requests: the second one accepts the first.
		c := newUser(t, ts.addr, "rc")
		c.must("add_friend", map[string]any{"friend": a.user})
		a.push("friend_request", 5*time.Second)
		if st := a.must("add_friend", map[string]any{"name": a.name(c.user)}).str("status"); st != "friends" {
			t.Fatalf("crossed request: %q", st)
		}
		c.push("friend_added", 5*time.Second)
		wantIDs(t, c.must("friends", nil), "friends", a.user)
		wantRequests(t, c, nil, nil)
	})
}

func TestDeclineAndRemoveFriend(t *testing.T) {
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		a := newUser(t, ts.addr, "da")
		d := newUser(t, ts.addr, "dd")
		e := newUser(t, ts.addr, "de")

		// decline: silent, idempotent; a new request may follow.
		d.must("add_friend", map[string]any{"friend": a.user})
		a.push("friend_request", 5*time.Second)
		a.must("decline_friend", map[string]any{"friend": d.user})
		wantRequests(t, a, nil, nil)
		wantRequests(t, d, nil, nil)
		d.quiet("friend_removed", 200*time.Millisecond)
		if len(d.pushes) != 0 {
			t.Fatalf("the declined asker got %v", d.pushes)
		}
		a.must("decline_friend", map[string]any{"name": a.name(d.user)}) // none: fine
		a.must("decline_friend", map[string]any{"friend": e.user})       // never asked: fine
		if st := d.must("add_friend", map[string]any{"friend": a.user}).str("status"); st != "requested" {
			t.Fatalf("asking after a decline: %q", st)
		}
		a.push("friend_request", 5*time.Second)
		// Declining one's own request does nothing: it is not to the caller.
		d.must("decline_friend", map[string]any{"friend": a.user})
		wantRequests(t, a, []int64{d.user}, nil)

		// remove_friend withdraws the caller's own request, silently.
		d.must("remove_friend", map[string]any{"friend": a.user})
		wantRequests(t, a, nil, nil)
		a.quiet("friend_removed", 200*time.Millisecond)

		// remove_friend ends a friendship on both sides; presence stops.
		befriend(t, a, e)
		a.must("remove_friend", map[string]any{"friend": e.user})
		if u := e.push("friend_removed", 5*time.Second).obj("user"); u.num("id") != a.user || u.str("name") == "" {
			t.Fatalf("friend_removed: %v", u)
		}
		a.quiet("friend_removed", 200*time.Millisecond)
		wantIDs(t, a.must("friends", nil), "friends")
		wantIDs(t, e.must("friends", nil), "friends")
		e.must("logout", nil)
		a.quiet("presence", 300*time.Millisecond)
		e, _ = loginAs(t, ts.addr, e.user)
		a.quiet("presence", 300*time.Millisecond)
		a.must("logout", nil)
		e.quiet("presence", 300*time.Millisecond)
		a, _ = loginAs(t, ts.addr, a.user)
		// Again: fine, nothing pushed. By name too.
		a.must("remove_friend", map[string]any{"name": a.name(e.user)})
		e.must("remove_friend", map[string]any{"friend": a.user})
		e.quiet("friend_removed", 200*time.Millisecond)
		a.quiet("friend_removed", 0)
		// A new friendship after the end of one.
		befriend(t, e, a)
		wantIDs(t, a.must("friends", nil), "friends", e.user)
	})
}

// TestFriendErrors: each error of the friend requests, and that a refused
// request changes nothing.
func TestFriendErrors(t *testing.T) {
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		a := newUser(t, ts.addr, "ea")
		b := newUser(t, ts.addr, "eb")
		c := newUser(t, ts.addr, "ec")
		a.must("add_friend", map[string]any{"friend": b.user})
		c.must("add_friend", map[string]any{"friend": a.user})
		befriend(t, a, newUser(t, ts.addr, "ef"))
		before := a.must("friend_requests", nil)
		friendsBefore := ids(a.must("friends", nil), "friends")

		anon := dial(t, ts.addr)
		for _, typ := range []string{"add_friend", "decline_friend", "remove_friend", "friend_requests"} {
			anon.fails("not_logged_in", typ, map[string]any{"friend": b.user})
		}
		for _, typ := range []string{"add_friend", "decline_friend", "remove_friend"} {
			for _, tc := range []struct {
				fields map[string]any
				code   string
			}{
				{nil, "bad_request"},
				{map[string]any{"friend": "2"}, "bad_request"},
				{map[string]any{"friend": 1.5}, "bad_request"},
				{map[string]any{"name": 7}, "bad_request"},
				{map[string]any{"name": ""}, "bad_request"},
				{map[string]any{"user": b.user}, "bad_request"}, // block's field, not this one's
				{map[string]any{"friend": a.user}, "bad_request"},
				{map[string]any{"friend": 999999}, "no_such_user"},
				{map[string]any{"friend": -3}, "no_such_user"},
				{map[string]any{"name": "nobody_at_all"}, "no_such_user"},
				{map[string]any{"name": "not a name"}, "no_such_user"},
			} {
				a.fails(tc.code, typ, tc.fields)
			}
		}
		after := a.must("friend_requests", nil)
		if !slices.Equal(ids(before, "incoming"), ids(after, "incoming")) || !slices.Equal(ids(before, "outgoing"), ids(after, "outgoing")) {
			t.Fatalf("the refused requests changed the requests: %v, then %v", before, after)
		}
		if got := ids(a.must("friends", nil), "friends"); !slices.Equal(got, friendsBefore) {
			t.Fatalf("the refused requests changed the friends: %v, then %v", friendsBefore, got)
		}
		b.push("friend_request", 5*time.Second)
		b.quiet("friend_request", 200*time.Millisecond)
		c.quiet("friend_added", 0)
		wantRequests(t, b, []int64{a.user}, nil)
		wantRequests(t, c, nil, []int64{a.user})
	})
}

// TestFriendsOtherSessions: the state the friend requests change reaches
// the caller's other sessions (devices). Without devices (a second login
// takes the first over) there is nothing to test.
func TestFriendsOtherSessions(t *testing.T) {
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		a := newUser(t, ts.addr, "oa")
		b := newUser(t, ts.addr, "ob")
		b2 := loginDevice(t, ts.addr, b.user, "second")
		a.must("add_friend", map[string]any{"friend": b.user})
		b.push("friend_request", 5*time.Second)
		b2.push("friend_request", 5*time.Second)
		// b accepts on one device: the other learns the friend (presence
		// follows) without a friend_added of its own action.
		b.must("add_friend", map[string]any{"friend": a.user})
		a.push("friend_added", 5*time.Second)
		b2.quiet("friend_added", 300*time.Millisecond)
		a.must("logout", nil)
		for _, x := range []*testClient{b, b2} {
			if p := x.push("presence", 5*time.Second).obj("user"); p.num("id") != a.user {
				t.Fatalf("presence: %v", p)
			}
		}
		a, _ = loginAs(t, ts.addr, a.user)
		b.push("presence", 5*time.Second)
		b2.push("presence", 5*time.Second)
		// b removes a on one device: the other stops following a.
		b2.must("remove_friend", map[string]any{"friend": a.user})
		a.push("friend_removed", 5*time.Second)
		b.quiet("friend_removed", 300*time.Millisecond)
		a.must("logout", nil)
		b.quiet("presence", 300*time.Millisecond)
		b2.quiet("presence", 0)
	})
}

// TestFriendsCluster: the friend pushes cross nodes, and so do the state
// changes they carry (presence follows them).
func TestFriendsCluster(t *testing.T) {
	nodes := startCluster(t, 3, "")
	a := newUser(t, nodes[0].addr, "xa")
	b := newUser(t, nodes[1].addr, "xb")
	c := newUser(t, nodes[2].addr, "xc")

	befriend(t, a, b) // friend_request to node 2, friend_added to node 1
	c.must("add_friend", map[string]any{"friend": a.user})
	if u := a.push("friend_request", 5*time.Second).obj("user"); u.num("id") != c.user {
		t.Fatalf("friend_request across nodes: %v", u)
	}
	a.must("decline_friend", map[string]any{"friend": c.user})
	wantRequests(t, c, nil, nil)
	c.quiet("friend_removed", 200*time.Millisecond)

	// Presence follows the friendship made across nodes, both ways.
	b.must("logout", nil)
	if p := a.push("presence", 5*time.Second).obj("user"); p.num("id") != b.user || p["online"] != false {
		t.Fatalf("presence: %v", p)
	}
	b, _ = loginAs(t, nodes[1].addr, b.user)
	a.push("presence", 5*time.Second)

	// remove_friend: friend_removed on node 2; presence stops both ways.
	a.must("remove_friend", map[string]any{"friend": b.user})
	if u := b.push("friend_removed", 5*time.Second).obj("user"); u.num("id") != a.user {
		t.Fatalf("friend_removed across nodes: %v", u)
	}
	b.must("logout", nil)
	a.quiet("presence", 500*time.Millisecond)
	b, _ = loginAs(t, nodes[1].addr, b.user)
	a.must("logout", nil)
	b.quiet("presence", 500*time.Millisecond)
}
