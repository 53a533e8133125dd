package main

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"chat/internal/wire"
)

// edit and delete_message, on SQLite and MySQL alike and across a cluster:
// who may, every error code, the pushes (to the other side, to a group's
// members, to the caller's other sessions), and that a message shown later
// (history, the login backlog, a cid replay) carries its latest state.

// historyMsg returns message id from c's history of a conversation.
func historyMsg(t *testing.T, c *testClient, conv map[string]any, id int64) frame {
	t.Helper()
	for _, m := range c.must("history", conv).list("messages") {
		if m.num("id") == id {
			return m
		}
	}
	t.Fatalf("message %d not in the history of %v", id, conv)
	return nil
}

// alive reports whether c's session is still open: no kicked push and no
// close within half a second.
func alive(c *testClient) bool {
	if c.takePush("kicked") != nil {
		return false
	}
	deadline := time.After(500 * time.Millisecond)
	for {
		select {
		case f, ok := <-c.frames:
			if !ok || f.str("type") == "kicked" {
				return false
			}
			c.pushes = append(c.pushes, f)
		case <-deadline:
			return true
		}
	}
}

// otherSession logs c's user in again on a new connection to addr, as
// another device, and reports whether c's session lives on beside it.
// Until devices are built a second login takes over the first (kicked);
// once they are, both live.
func otherSession(t *testing.T, addr string, c *testClient) (*testClient, bool) {
	t.Helper()
	c2 := dial(t, addr)
	c2.must("login", map[string]any{"id": c.user, "password": testPassword, "device": "second"})
	c2.user = c.user
	return c2, alive(c)
}

// tombstone checks that m is the deleted message id: no text, no edit time.
func tombstone(t *testing.T, m frame, id int64) {
	t.Helper()
	text, hasText := m["text"]
	_, hasEdited := m["edited"]
	if m.num("id") != id || m["deleted"] != true || !hasText || text != "" || hasEdited {
		t.Fatalf("want the tombstone of %d, got %v", id, m)
	}
}

// edited checks that m is message id with text, edited, as edited at when
// at is not 0.
func edited(t *testing.T, m frame, id int64, text string, at int64) {
	t.Helper()
	_, hasDeleted := m["deleted"]
	if m.num("id") != id || m.str("text") != text || m.num("edited") < m.num("ts") || m.num("edited") == 0 || hasDeleted ||
		at != 0 && m.num("edited") != at {
		t.Fatalf("want message %d edited to %q (at %d), got %v", id, text, at, m)
	}
}

func TestEditMessage(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		alice, bob, carol := newUser(t, ts.addr, "ea"), newUser(t, ts.addr, "eb"), newUser(t, ts.addr, "ec")
		m := alice.must("chat", map[string]any{"to": bob.user, "text": "helo"}).obj("message")
		id := m.num("id")
		bob.messages(1, 5*time.Second)

		// Fields first (a bad field wins over a missing message), then
		// existence, then permission.
		for _, tc := range []struct {
			code   string
			fields map[string]any
		}{
			{"bad_request", map[string]any{"text": "x"}},
			{"bad_request", map[string]any{"id": "7", "text": "x"}},
			{"bad_request", map[string]any{"id": 1.5, "text": "x"}},
			{"bad_request", map[string]any{"id": id}},
			{"bad_request", map[string]any{"id": id, "text": 7}},
			{"bad_request", map[string]any{"id": id, "text": ""}},
			{"bad_request", map[string]any{"id": id, "text": " \t\n\u00a0\u3000"}},
			{"bad_request", map[string]any{"id": id + 1000000, "text": ""}},
			{"too_long", map[string]any{"id": id, "text": strings.Repeat("x", wire.MaxTextBytes+1)}},
			{"no_such_message", map[string]any{"id": 0, "text": "x"}},
			{"no_such_message", map[string]any{"id": -1, "text": "x"}},
			{"no_such_message", map[string]any{"id": id + 1000000, "text": "x"}},
		} {
			alice.fails(tc.code, "edit", tc.fields)
		}
		carol.fails("no_such_message", "edit", map[string]any{"id": id, "text": "not her conversation"})
		bob.fails("forbidden", "edit", map[string]any{"id": id, "text": "not his message"})
		// A bad input loses nothing.
		if h := historyMsg(t, bob, map[string]any{"with": alice.user}, id); h.str("text") != "helo" || h["edited"] != nil {
			t.Fatalf("after refused edits: %v", h)
		}
		bob.quiet("edited", 100*time.Millisecond)

		// The edit: the reply and the other side's push carry the new
		// text and the edit time; the editing session gets no push.
		e := alice.must("edit", map[string]any{"id": id, "text": "hello"}).obj("message")
		edited(t, e, id, "hello", 0)
		if e.num("ts") != m.num("ts") || e.num("from") != alice.user || e.str("from_name") != m.str("from_name") || e.num("to") != bob.user {
			t.Fatalf("edit changed more than the text: %v, was %v", e, m)
		}
		edited(t, bob.push("edited", 5*time.Second).obj("message"), id, "hello", e.num("edited"))
		alice.quiet("edited", 100*time.Millisecond)

		// The same text again: ok, nothing stored, nothing pushed.
		same := alice.must("edit", map[string]any{"id": id, "text": "hello"}).obj("message")
		edited(t, same, id, "hello", e.num("edited"))
		bob.quiet("edited", 200*time.Millisecond)

		// The longest text, byte for byte; the edit time never goes back.
		long := strings.Repeat("é", wire.MaxTextBytes/2)
		e2 := alice.must("edit", map[string]any{"id": id, "text": long}).obj("message")
		edited(t, e2, id, long, 0)
		if e2.num("edited") < e.num("edited") {
			t.Fatalf("edit time went back: %d after %d", e2.num("edited"), e.num("edited"))
		}
		bob.push("edited", 5*time.Second)
		padded := "  padded\n"
		e3 := alice.must("edit", map[string]any{"id": id, "text": padded}).obj("message")
		bob.push("edited", 5*time.Second)
		for _, x := range []struct {
			c    *testClient
			with int64
		}{{alice, bob.user}, {bob, alice.user}} {
			edited(t, historyMsg(t, x.c, map[string]any{"with": x.with}, id), id, padded, e3.num("edited"))
		}

		// A group: only the sender edits; the creator may not; members
		// get the push; one who left no longer sees the message.
		g := alice.must("create_group", map[string]any{"name": "edits"}).obj("group").num("id")
		bob.must("join_group", map[string]any{"group": g})
		gm := bob.must("group_chat", map[string]any{"group": g, "text": "hi all"}).obj("message").num("id")
		alice.messages(1, 5*time.Second)
		alice.fails("forbidden", "edit", map[string]any{"id": gm, "text": "the creator's words"})
		carol.fails("no_such_message", "edit", map[string]any{"id": gm, "text": "not a member"})
		ge := bob.must("edit", map[string]any{"id": gm, "text": "hi all!"}).obj("message")
		if ge.num("group") != g || ge["to"] != nil {
			t.Fatalf("edited group message: %v", ge)
		}
		edited(t, alice.push("edited", 5*time.Second).obj("message"), gm, "hi all!", ge.num("edited"))
		bob.quiet("edited", 100*time.Millisecond)
		carol.quiet("edited", 100*time.Millisecond)
		edited(t, historyMsg(t, alice, map[string]any{"group": g}, gm), gm, "hi all!", ge.num("edited"))
		bob.must("leave_group", map[string]any{"group": g})
		bob.fails("no_such_message", "edit", map[string]any{"id": gm, "text": "gone"})

		anon := dial(t, ts.addr)
		anon.fails("not_logged_in", "edit", map[string]any{"id": id, "text": "x"})
	})
}

func TestDeleteMessage(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		alice, bob, carol := newUser(t, ts.addr, "da"), newUser(t, ts.addr, "db"), newUser(t, ts.addr, "dc")
		id := alice.must("chat", map[string]any{"to": bob.user, "text": "secret"}).obj("message").num("id")
		bob.messages(1, 5*time.Second)

		for _, tc := range []struct {
			code   string
			fields map[string]any
		}{
			{"bad_request", nil},
			{"bad_request", map[string]any{"id": "x"}},
			{"bad_request", map[string]any{"id": nil}},
			{"no_such_message", map[string]any{"id": 0}},
			{"no_such_message", map[string]any{"id": id + 1000000}},
		} {
			alice.fails(tc.code, "delete_message", tc.fields)
		}
		carol.fails("no_such_message", "delete_message", map[string]any{"id": id})
		bob.fails("forbidden", "delete_message", map[string]any{"id": id}) // the recipient may not
		if h := historyMsg(t, bob, map[string]any{"with": alice.user}, id); h.str("text") != "secret" || h["deleted"] != nil {
			t.Fatalf("after refused deletes: %v", h)
		}

		// Edited, then deleted: the tombstone keeps neither text nor
		// edit time; the other side gets deleted with "with" = alice.
		alice.must("edit", map[string]any{"id": id, "text": "secret, edited"})
		bob.push("edited", 5*time.Second)
		r := alice.must("delete_message", map[string]any{"id": id})
		if len(r) != 3 { // type, rid, ok
			t.Fatalf("delete_message reply: %v", r)
		}
		d := bob.push("deleted", 5*time.Second)
		if d.num("id") != id || d.num("with") != alice.user || d["group"] != nil {
			t.Fatalf("deleted push: %v", d)
		}
		alice.quiet("deleted", 100*time.Millisecond)
		// Twice: ok, and no second push.
		alice.must("delete_message", map[string]any{"id": id})
		bob.quiet("deleted", 300*time.Millisecond)
		bob.fails("forbidden", "delete_message", map[string]any{"id": id})
		alice.fails("forbidden", "edit", map[string]any{"id": id, "text": "back again"})
		bob.fails("forbidden", "edit", map[string]any{"id": id, "text": "back again"})
		tombstone(t, historyMsg(t, alice, map[string]any{"with": bob.user}, id), id)
		tombstone(t, historyMsg(t, bob, map[string]any{"with": alice.user}, id), id)
		// The text is gone from the store, not only from the wire.
		var body string
		var deleted int
		var editedAt sql.NullInt64
		err := ts.srv.store.db.QueryRow(`SELECT body, deleted, edited_ms FROM messages WHERE id = ?`, id).Scan(&body, &deleted, &editedAt)
		if err != nil || body != "" || deleted != 1 || editedAt.Valid {
			t.Fatalf("stored tombstone: body %q deleted %d edited %v (%v)", body, deleted, editedAt, err)
		}

		// A group: the sender, and the creator, may delete; another
		// member may not; every member but the deleting session is told.
		g := alice.must("create_group", map[string]any{"name": "deletes"}).obj("group").num("id")
		bob.must("join_group", map[string]any{"group": g})
		carol.must("join_group", map[string]any{"group": g})
		bm := bob.must("group_chat", map[string]any{"group": g, "text": "from bob"}).obj("message").num("id")
		cm := carol.must("group_chat", map[string]any{"group": g, "text": "from carol"}).obj("message").num("id")
		carol.fails("forbidden", "delete_message", map[string]any{"id": bm})
		alice.must("delete_message", map[string]any{"id": bm})
		for _, x := range []*testClient{bob, carol} {
			if d := x.push("deleted", 5*time.Second); d.num("id") != bm || d.num("group") != g || d["with"] != nil {
				t.Fatalf("deleted push in a group: %v", d)
			}
		}
		alice.quiet("deleted", 100*time.Millisecond)
		carol.must("delete_message", map[string]any{"id": cm})
		for _, x := range []*testClient{alice, bob} {
			if d := x.push("deleted", 5*time.Second); d.num("id") != cm || d.num("group") != g {
				t.Fatalf("deleted push in a group: %v", d)
			}
		}
		carol.quiet("deleted", 100*time.Millisecond)
		msgs := bob.must("history", map[string]any{"group": g}).list("messages")
		if len(msgs) != 2 {
			t.Fatalf("group history: %v", msgs)
		}
		tombstone(t, msgs[0], bm)
		tombstone(t, msgs[1], cm)
		// The creator who left is no longer one of the group.
		am := bob.must("group_chat", map[string]any{"group": g, "text": "another"}).obj("message").num("id")
		alice.must("leave_group", map[string]any{"group": g})
		alice.fails("no_such_message", "delete_message", map[string]any{"id": am})
		newUser(t, ts.addr, "dd").fails("no_such_message", "delete_message", map[string]any{"id": am})

		dial(t, ts.addr).fails("not_logged_in", "delete_message", map[string]any{"id": id})
	})
}

// TestEditRateLimit: edit and delete_message cost 5 tokens each, and come
// after the field checks: a request that fails those costs nothing; one
// refused for the rate changes nothing.
func TestEditRateLimit(t *testing.T) {
	t.Parallel()
	for _, typ := range []string{"edit", "delete_message"} {
		if cost := commands[typ].cost; cost != 5 {
			t.Errorf("%s costs %v", typ, cost)
		}
	}
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db, func(c *Config) { c.Rate = 3 }) // a bucket of 6
		alice, bob := newUser(t, ts.addr, "ra"), newUser(t, ts.addr, "rb")
		id := alice.must("chat", map[string]any{"to": bob.user, "text": "v0"}).obj("message").num("id") // 5 left
		alice.must("edit", map[string]any{"id": id, "text": "v1"})                                      // none left
		for range 5 {
			alice.fails("bad_request", "edit", map[string]any{"id": id, "text": " "}) // free
		}
		// 5 tokens take 1.7 s to come at 3 a second; a request of cost 1
		// would wait at most a third of one.
		for _, f := range []frame{
			alice.fails("rate_limited", "edit", map[string]any{"id": id, "text": "v2"}),
			alice.fails("rate_limited", "delete_message", map[string]any{"id": id}),
		} {
			if ms := f.num("retry_after"); ms < 400 {
				t.Fatalf("retry_after %d ms: the request cost too little", ms)
			}
		}
		if h := historyMsg(t, bob, map[string]any{"with": alice.user}, id); h.str("text") != "v1" || h["deleted"] != nil {
			t.Fatalf("after refused requests: %v", h)
		}
	})
}

// TestEditShownLater: the login backlog and a cid replay give a message's
// latest state; a deleted message still pending comes as a tombstone, and
// is acked as any other.
func TestEditShownLater(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		alice, bob := newUser(t, ts.addr, "la"), newUser(t, ts.addr, "lb")
		g := alice.must("create_group", map[string]any{"name": "later"}).obj("group").num("id")
		bob.must("join_group", map[string]any{"group": g})
		bob.must("logout", nil)

		send := func(text, cid string) int64 {
			f := map[string]any{"to": bob.user, "text": text}
			if cid != "" {
				f["cid"] = cid
			}
			return alice.must("chat", f).obj("message").num("id")
		}
		m1, m2, m3 := send("one", "c1"), send("two", "c2"), send("three", "")
		gm1 := alice.must("group_chat", map[string]any{"group": g, "text": "g one"}).obj("message").num("id")
		gm2 := alice.must("group_chat", map[string]any{"group": g, "text": "g two"}).obj("message").num("id")
		e1 := alice.must("edit", map[string]any{"id": m1, "text": "one, edited"}).obj("message")
		alice.must("delete_message", map[string]any{"id": m2})
		ge := alice.must("edit", map[string]any{"id": gm1, "text": "g one, edited"}).obj("message")
		alice.must("delete_message", map[string]any{"id": gm2})

		// A cid replay's reply is the message as it is now.
		edited(t, alice.must("chat", map[string]any{"to": bob.user, "text": "one", "cid": "c1"}).obj("message"), m1, "one, edited", e1.num("edited"))
		tombstone(t, alice.must("chat", map[string]any{"to": bob.user, "text": "two", "cid": "c2"}).obj("message"), m2)

		// The backlog, oldest first, each as it is now.
		bob.must("login", map[string]any{"id": bob.user, "password": testPassword})
		got := bob.messages(5, 5*time.Second)
		edited(t, got[0], m1, "one, edited", e1.num("edited"))
		tombstone(t, got[1], m2)
		if got[2].num("id") != m3 || got[2].str("text") != "three" || got[2]["edited"] != nil || got[2]["deleted"] != nil {
			t.Fatalf("untouched message: %v", got[2])
		}
		edited(t, got[3], gm1, "g one, edited", ge.num("edited"))
		tombstone(t, got[4], gm2)
		bob.quiet("message", 200*time.Millisecond)
		// Acked, tombstones included: nothing comes again.
		bob.must("ack", map[string]any{"ids": []int64{m1, m2, m3, gm1, gm2}})
		bob.must("logout", nil)
		bob.must("login", map[string]any{"id": bob.user, "password": testPassword})
		bob.quiet("message", 300*time.Millisecond)
	})
}

// TestEditOtherSessions: the editing user's other sessions get edited and
// deleted too, with "with" as they see the conversation.
func TestEditOtherSessions(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		alice1, bob := newUser(t, ts.addr, "oa"), newUser(t, ts.addr, "ob")
		g := alice1.must("create_group", map[string]any{"name": "sessions"}).obj("group").num("id")
		bob.must("join_group", map[string]any{"group": g})
		alice2, both := otherSession(t, ts.addr, alice1)
		if !both {
			t.Fatal("a second login on another device took over the first")
		}
		id := alice2.must("chat", map[string]any{"to": bob.user, "text": "from the laptop"}).obj("message").num("id")
		gm := alice2.must("group_chat", map[string]any{"group": g, "text": "to the group"}).obj("message").num("id")
		bob.messages(2, 5*time.Second)

		e := alice2.must("edit", map[string]any{"id": id, "text": "from the laptop, edited"}).obj("message")
		edited(t, bob.push("edited", 5*time.Second).obj("message"), id, "from the laptop, edited", e.num("edited"))
		alice2.must("delete_message", map[string]any{"id": id})
		if d := bob.push("deleted", 5*time.Second); d.num("with") != alice2.user {
			t.Fatalf("deleted push to the other side: %v", d)
		}
		ge := alice2.must("edit", map[string]any{"id": gm, "text": "to the group, edited"}).obj("message")
		bob.push("edited", 5*time.Second)
		alice2.must("delete_message", map[string]any{"id": gm})
		bob.push("deleted", 5*time.Second)
		alice2.quiet("edited", 100*time.Millisecond)
		alice2.quiet("deleted", 100*time.Millisecond)
		if !both {
			return
		}
		edited(t, alice1.push("edited", 5*time.Second).obj("message"), id, "from the laptop, edited", e.num("edited"))
		if d := alice1.push("deleted", 5*time.Second); d.num("id") != id || d.num("with") != bob.user {
			t.Fatalf("deleted push to the other session: %v", d)
		}
		edited(t, alice1.push("edited", 5*time.Second).obj("message"), gm, "to the group, edited", ge.num("edited"))
		if d := alice1.push("deleted", 5*time.Second); d.num("id") != gm || d.num("group") != g {
			t.Fatalf("deleted push to the other session: %v", d)
		}
	})
}

// TestEditCluster: edited and deleted cross nodes, to the other side, to a
// group's members, and to the caller's other sessions.
func TestEditCluster(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3, "")
	alice := newUser(t, nodes[0].addr, "ka")
	bob := newUser(t, nodes[1].addr, "kb")
	carol := newUser(t, nodes[2].addr, "kc")

	id := alice.must("chat", map[string]any{"to": bob.user, "text": "across"}).obj("message").num("id")
	bob.messages(1, 5*time.Second)
	e := alice.must("edit", map[string]any{"id": id, "text": "across, edited"}).obj("message")
	edited(t, bob.push("edited", 5*time.Second).obj("message"), id, "across, edited", e.num("edited"))
	alice.must("delete_message", map[string]any{"id": id})
	if d := bob.push("deleted", 5*time.Second); d.num("id") != id || d.num("with") != alice.user {
		t.Fatalf("deleted across nodes: %v", d)
	}
	// The store is shared: every node shows the tombstone.
	tombstone(t, historyMsg(t, bob, map[string]any{"with": alice.user}, id), id)

	g := alice.must("create_group", map[string]any{"name": "cluster edits"}).obj("group").num("id")
	bob.must("join_group", map[string]any{"group": g})
	carol.must("join_group", map[string]any{"group": g})
	bm := bob.must("group_chat", map[string]any{"group": g, "text": "from node 2"}).obj("message").num("id")
	alice.messages(1, 5*time.Second)
	carol.messages(1, 5*time.Second)
	be := bob.must("edit", map[string]any{"id": bm, "text": "from node 2, edited"}).obj("message")
	for _, x := range []*testClient{alice, carol} {
		edited(t, x.push("edited", 5*time.Second).obj("message"), bm, "from node 2, edited", be.num("edited"))
	}
	alice.must("delete_message", map[string]any{"id": bm}) // the creator, on node 1
	for _, x := range []*testClient{bob, carol} {
		if d := x.push("deleted", 5*time.Second); d.num("id") != bm || d.num("group") != g {
			t.Fatalf("deleted across nodes in a group: %v", d)
		}
	}
	tombstone(t, historyMsg(t, carol, map[string]any{"group": g}, bm), bm)
	for _, x := range []*testClient{alice, bob, carol} {
		x.quiet("edited", 100*time.Millisecond)
		x.quiet("deleted", 100*time.Millisecond)
	}

	// The caller's other session, on another node.
	carol2, both := otherSession(t, nodes[0].addr, carol)
	cm := carol2.must("chat", map[string]any{"to": bob.user, "text": "from node 1"}).obj("message").num("id")
	bob.messages(1, 5*time.Second)
	carol2.must("edit", map[string]any{"id": cm, "text": "from node 1, edited"})
	bob.push("edited", 5*time.Second)
	carol2.must("delete_message", map[string]any{"id": cm})
	bob.push("deleted", 5*time.Second)
	if !both {
		t.Fatal("a second login on another device took over the first")
	}
	carol.push("edited", 5*time.Second)
	if d := carol.push("deleted", 5*time.Second); d.num("id") != cm || d.num("with") != bob.user {
		t.Fatalf("deleted to the other session across nodes: %v", d)
	}
}

// checkUpgradeEdits (called by checkUpgrade): on a database upgraded from
// version 1, the old messages read as neither edited nor deleted, and can
// be edited and deleted.
func checkUpgradeEdits(t *testing.T, s *Store, db *sql.DB, pair int64) {
	t.Helper()
	if n := count(t, db, `SELECT COUNT(*) FROM messages WHERE edited_ms IS NOT NULL OR deleted <> 0`); n != 0 {
		t.Fatalf("%d old messages read as edited or deleted", n)
	}
	ctx := context.Background()
	msgs, err := s.History(ctx, pair, 0, 10)
	if err != nil || len(msgs) != 3 {
		t.Fatalf("history: %v %v", msgs, err)
	}
	for _, m := range msgs {
		if m.Edited != 0 || m.Deleted {
			t.Fatalf("old message %+v", m)
		}
	}
	sender := msgs[0].From
	edit := func(m Message, _ Role) (Message, bool, error) {
		m.Text, m.Edited = "edited after the upgrade", m.TS+1
		return m, true, nil
	}
	del := func(m Message, _ Role) (Message, bool, error) {
		m.Text, m.Edited, m.Deleted = "", 0, true
		return m, true, nil
	}
	if _, changed, err := s.ChangeMessage(ctx, msgs[0].ID, sender, edit); err != nil || !changed {
		t.Fatalf("edit after the upgrade: %v %v", changed, err)
	}
	if _, changed, err := s.ChangeMessage(ctx, msgs[1].ID, sender, del); err != nil || !changed {
		t.Fatalf("delete after the upgrade: %v %v", changed, err)
	}
	if _, _, err := s.ChangeMessage(ctx, msgs[2].ID, 1<<40, edit); !errors.Is(err, ErrNoSuchMessage) {
		t.Fatalf("a stranger's edit: %v", err)
	}
	after, err := s.History(ctx, pair, 0, 10)
	if err != nil || len(after) != 3 {
		t.Fatalf("history: %v %v", after, err)
	}
	if m := after[0]; m.Text != "edited after the upgrade" || m.Edited != msgs[0].TS+1 || m.Deleted {
		t.Fatalf("edited: %+v", m)
	}
	if m := after[1]; m.Text != "" || !m.Deleted || m.Edited != 0 {
		t.Fatalf("deleted: %+v", m)
	}
	if m := after[2]; m.Message != msgs[2].Message {
		t.Fatalf("untouched: %+v, was %+v", m, msgs[2])
	}
	if n := count(t, db, `SELECT COUNT(*) FROM messages WHERE id = ? AND body = '' AND deleted = 1`, msgs[1].ID); n != 1 {
		t.Fatal("the deleted message's body is still stored")
	}
}
