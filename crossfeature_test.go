package main

import (
	"testing"
	"time"
)

// Where the features of version 2 meet: roles and deletes, deletes and
// unread counts, private groups in conversations, a deleted group or a kick
// and the conversation list, a block and typing, several devices and
// group membership.

func TestAdminDeletesMembersMessage(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		owner := newUser(t, ts.addr, "xo")
		mod := newUser(t, ts.addr, "xm")
		member := newUser(t, ts.addr, "xb")
		g := owner.must("create_group", map[string]any{"name": uniqueName("mods")}).obj("group").num("id")
		mod.must("join_group", map[string]any{"group": g})
		member.must("join_group", map[string]any{"group": g})
		id := member.must("group_chat", map[string]any{"group": g, "text": "spam"}).obj("message").num("id")
		mod.fails("forbidden", "delete_message", map[string]any{"id": id})
		owner.must("set_role", map[string]any{"group": g, "user": mod.user, "role": "admin"})
		mod.must("delete_message", map[string]any{"id": id})
		if d := member.push("deleted", 5*time.Second); d.num("id") != id || d.num("group") != g {
			t.Fatalf("deleted: %v", d)
		}
		// An admin still may not edit someone else's words.
		other := member.must("group_chat", map[string]any{"group": g, "text": "mine"}).obj("message").num("id")
		mod.fails("forbidden", "edit", map[string]any{"id": other, "text": "theirs"})
		// Demoted, the admin may no longer delete.
		owner.must("set_role", map[string]any{"group": g, "user": mod.user, "role": "member"})
		mod.fails("forbidden", "delete_message", map[string]any{"id": other})
	})
}

func TestConversationsAfterDeletesAndKicks(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		a := newUser(t, ts.addr, "ca")
		b := newUser(t, ts.addr, "cb")
		// A deleted message is not unread; the last message shows as its tombstone.
		a.must("chat", map[string]any{"to": b.user, "text": "one"})
		two := a.must("chat", map[string]any{"to": b.user, "text": "two"}).obj("message").num("id")
		a.must("delete_message", map[string]any{"id": two})
		convs := b.must("conversations", nil).list("conversations")
		if len(convs) != 1 || convs[0].num("unread") != 1 || convs[0].obj("last")["deleted"] != true ||
			convs[0].obj("last").str("text") != "" {
			t.Fatalf("after a delete: %v", convs)
		}
		// A private group shows as private.
		g := a.must("create_group", map[string]any{"name": uniqueName("priv"), "private": true}).obj("group").num("id")
		a.must("invite", map[string]any{"group": g, "user": b.user})
		b.must("join_group", map[string]any{"group": g})
		convs = b.must("conversations", nil).list("conversations")
		if len(convs) != 2 || convs[0].obj("group").num("id") != g || convs[0].obj("group")["private"] != true {
			t.Fatalf("with a private group: %v", convs)
		}
		// Kicked, the group leaves b's list; deleted, it leaves a's.
		a.must("kick_member", map[string]any{"group": g, "user": b.user})
		if convs = b.must("conversations", nil).list("conversations"); len(convs) != 1 || convs[0].obj("with").num("id") != a.user {
			t.Fatalf("after the kick: %v", convs)
		}
		b.fails("not_member", "read", map[string]any{"group": g, "id": two})
		a.must("delete_group", map[string]any{"group": g})
		if convs = a.must("conversations", nil).list("conversations"); len(convs) != 1 {
			t.Fatalf("after delete_group: %v", convs)
		}
	})
}

func TestBlockedTypingAndReadPush(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		a := newUser(t, ts.addr, "ta")
		b := newUser(t, ts.addr, "tb")
		id := a.must("chat", map[string]any{"to": b.user, "text": "hello"}).obj("message").num("id")
		a.must("block", map[string]any{"user": b.user})
		b.fails("blocked", "typing", map[string]any{"with": a.user})
		b.fails("blocked", "chat", map[string]any{"to": a.user, "text": "still there?"})
		// The blocked user's read mark moves, but the blocker is not told.
		b.must("read", map[string]any{"with": a.user, "id": id})
		a.quiet("read", 300*time.Millisecond)
		a.must("unblock", map[string]any{"user": b.user})
		b.must("typing", map[string]any{"with": a.user})
		if f := a.push("typing", 5*time.Second); f.obj("user").num("id") != b.user {
			t.Fatalf("typing after unblock: %v", f)
		}
	})
}

// TestGroupMembershipAcrossDevices: joining, leaving and being kicked on
// one device changes what the user's other sessions get and may send.
func TestGroupMembershipAcrossDevices(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db)
		owner := newUser(t, ts.addr, "go")
		phone := newUser(t, ts.addr, "gp")
		laptop := loginDevice(t, ts.addr, phone.user, "laptop")
		g := owner.must("create_group", map[string]any{"name": uniqueName("dev")}).obj("group").num("id")
		phone.must("join_group", map[string]any{"group": g})
		// The laptop gets the group's messages and may send to it at once.
		m := owner.must("group_chat", map[string]any{"group": g, "text": "both devices"}).obj("message").num("id")
		for _, c := range []*testClient{phone, laptop} {
			if got := c.messages(1, 5*time.Second)[0]; got.num("id") != m {
				t.Fatalf("got %v", got)
			}
		}
		laptop.must("group_chat", map[string]any{"group": g, "text": "from the laptop"})
		phone.messages(1, 5*time.Second) // the copy
		owner.messages(1, 5*time.Second)
		// Left on the laptop: the phone may no longer send.
		laptop.must("leave_group", map[string]any{"group": g})
		phone.fails("not_member", "group_chat", map[string]any{"group": g, "text": "after leaving"})
		// A kick reaches every session of the user.
		phone.must("join_group", map[string]any{"group": g})
		owner.must("kick_member", map[string]any{"group": g, "user": phone.user})
		for _, c := range []*testClient{phone, laptop} {
			if f := c.push("member_removed", 5*time.Second); f.obj("user").num("id") != phone.user {
				t.Fatalf("member_removed: %v", f)
			}
		}
		laptop.fails("not_member", "group_chat", map[string]any{"group": g, "text": "after the kick"})
	})
}
