package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"chat/internal/client"
)

// End-to-end tests of what version 2 added to the client, in plain mode
// against a real server: the client's unit tests (internal/client) check
// its requests and lines against a scripted server; these check that the
// client and the server agree on them. Helpers are in client_test.go.

// clDevice sets the client's -device.
func clDevice(device string) func(*client.Options) {
	return func(o *client.Options) { o.Device = device }
}

// clNewUser starts a client, registers a fresh user on it (password
// testPassword, so that the raw helpers may log in as that user too) and
// logs in on device; it returns the client, the name and the id.
func clNewUser(t *testing.T, addr, prefix, device string) (*clProc, string, int64) {
	t.Helper()
	name := uniqueName(prefix)
	p := clStart(t, addr, clDevice(device))
	p.send("/register "+name+" "+testPassword, "/login "+name+" "+testPassword)
	id := clID(t, p.expect(`^ok register ` + name + ` \(id (\d+)\)$`)[1])
	p.expect(`^ok login ` + name + ` \(id \d+\): `)
	p.expect(`^synced: no messages missed; from here on everything is live$`)
	return p, name, id
}

// clLogin starts a client logged in as name on device, and waits for the
// end of its login.
func clLogin(t *testing.T, addr, name, password, device string) *clProc {
	t.Helper()
	p := clStart(t, addr, clDevice(device))
	p.send("/login " + name + " " + password)
	p.expect(`^ok login ` + name + ` \(id \d+\): `)
	p.expect(`^synced: `)
	return p
}

// clEnd ends a client and checks its exit status.
func clEnd(t *testing.T, who string, p *clProc, want int) {
	t.Helper()
	if rc, rest := p.end(); rc != want {
		t.Errorf("%s: exit status %d, want %d (lines %q)", who, rc, want, rest)
	}
}

// clTime matches a line's time: "2026-11-27 14:03".
const clTime = `\d{4}-\d\d-\d\d \d\d:\d\d`

// Friend requests: /add asks, the other side sees the request (live, and
// in a later login), /requests on both sides, /accept, /decline,
// /unfriend with its push.
func TestClientFriendRequests(t *testing.T) {
	t.Parallel()
	srv := startServer(t, sqliteURL(t))
	a, an, aid := clNewUser(t, srv.addr, "alice", "")
	b, bn, bid := clNewUser(t, srv.addr, "bob", "")
	c, cn, cid := clNewUser(t, srv.addr, "carol", "")
	as, bs, cs := strconv.FormatInt(aid, 10), strconv.FormatInt(bid, 10), strconv.FormatInt(cid, 10)

	a.send("/add " + bn)
	a.expect(`^ok friend request sent to ` + bn + ` \(id ` + bs + `\)$`)
	b.expect(`^friend request from ` + an + ` \(id ` + as + `\): /accept ` + an + ` or /decline ` + an + `$`)
	a.send("/requests")
	a.expect(`^friend requests: outgoing ` + bn + ` \(id ` + bs + `\)$`)
	c.send("/add " + bs) // by id
	c.expect(`^ok friend request sent to ` + bn + ` \(id ` + bs + `\)$`)
	b.expect(`^friend request from ` + cn + ` \(id ` + cs + `\): /accept ` + cn + ` or /decline ` + cn + `$`)
	b.send("/requests")
	b.expect(`^friend requests: incoming (` + an + ` \(id ` + as + `\), ` + cn + ` \(id ` + cs + `\)|` +
		cn + ` \(id ` + cs + `\), ` + an + ` \(id ` + as + `\))$`)

	// A second device of bob's logging in now is told of the requests.
	b2 := clStart(t, srv.addr, clDevice("laptop"))
	b2.send("/login " + bn + " " + testPassword)
	b2.expect(`^ok login ` + bn + ` \(id ` + bs + `\): 0 friends, 0 groups$`)
	b2.expect(`^friend requests: .*` + an + ` \(id ` + as + `\).*: /accept USER or /decline USER$`)

	// /accept makes friends; alice is told, on the spot.
	b.send("/accept " + an)
	b.expect(`^ok friend ` + an + ` \(id ` + as + `\) \(online\)$`)
	a.expect(`^friend ` + bn + ` \(id ` + bs + `\) added you$`)
	a.send("/friends")
	a.expect(`^friends: ` + bn + ` \(online\)$`)
	// /decline: carol's request goes, quietly for her.
	b.send("/decline "+cn, "/requests")
	b.expect(`^ok declined ` + cn + `$`)
	b.expect(`^friend requests: none$`)
	c.send("/requests")
	c.expect(`^friend requests: none$`)
	// /accept of someone who had not asked is a request of one's own.
	c.send("/accept " + an)
	c.expect(`^ok friend request sent to ` + an + ` \(id ` + as + `\) \(there was no request from them to accept\)$`)
	a.expect(`^friend request from ` + cn + ` `)

	// /unfriend ends it on both sides, with a push to the other.
	a.send("/unfriend "+bn, "/friends")
	a.expect(`^ok unfriended ` + bn + `$`)
	a.expect(`^friends: none$`)
	b.expect(`^friend ` + an + ` \(id ` + as + `\) removed: you are no longer friends$`)
	b2.expect(`^friend ` + an + ` \(id ` + as + `\) removed: you are no longer friends$`)
	b.send("/friends")
	b.expect(`^friends: none$`)

	for _, p := range []*clProc{a, b, b2, c} {
		clEnd(t, "client", p, 0)
		p.none(`^error`)
	}
}

// Blocks: /block, /blocks, the blocked user's /msg and /add answered with
// the blocked sentence, the friendship ended, /unblock.
func TestClientBlocks(t *testing.T) {
	t.Parallel()
	srv := startServer(t, sqliteURL(t))
	a, an, _ := clNewUser(t, srv.addr, "alice", "")
	b, bn, bid := clNewUser(t, srv.addr, "bob", "")
	bs := strconv.FormatInt(bid, 10)

	a.send("/add " + bn)
	a.expect(`^ok friend request sent to ` + bn)
	b.send("/accept " + an)
	b.expect(`^ok friend ` + an)
	a.expect(`^friend ` + bn + ` \(id ` + bs + `\) added you$`)

	a.send("/block "+bn, "/blocks", "/friends")
	a.expect(`^ok blocked ` + bn + `$`)
	a.expect(`^blocked: ` + bn + ` \(id ` + bs + `\)$`)
	a.expect(`^friends: none$`)
	b.send("/msg "+an+" let me in", "/add "+an, "/friends")
	b.expect(`^error msg: that user has blocked you \(blocked\)$`)
	b.expect(`^error add: that user has blocked you \(blocked\)$`)
	b.expect(`^friends: none$`) // the block ended the friendship
	// alice may still write to bob.
	a.send("/msg " + bn + " one way")
	a.expect(`^sent ` + clTS + ` you -> ` + bn + `: one way$`)
	b.expect(`^message ` + clTS + ` ` + an + ` -> you: one way$`)

	a.send("/unblock "+bs, "/blocks") // by id
	a.expect(`^ok unblocked ` + bn + `$`)
	a.expect(`^blocked: none$`)
	b.send("/msg " + an + " thanks")
	b.expect(`^sent ` + clTS + ` you -> ` + an + `: thanks$`)
	a.expect(`^message ` + clTS + ` ` + bn + ` -> you: thanks$`)

	clEnd(t, "alice", a, 0)
	a.none(`^error`)
	clEnd(t, "bob", b, 1) // the blocked commands failed
}

// /edit and /del of one's own messages, private and in a group: the other
// side and one's other device see the edited and deleted lines, /history
// shows the states; an admin deletes a member's message; the errors.
func TestClientEditDelete(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		a, an, _ := clNewUser(t, srv.addr, "alice", "phone")
		b, bn, _ := clNewUser(t, srv.addr, "bob", "")
		a2 := clLogin(t, srv.addr, an, testPassword, "laptop")

		a.send("/msg "+bn+" helo", "/msg "+bn+" second")
		id1 := a.expect(`^sent ` + clTime + ` \[(\d+)\] you -> ` + bn + `: helo$`)[1]
		id2 := a.expect(`^sent .* \[(\d+)\] you -> ` + bn + `: second$`)[1]
		b.expect(`^message ` + clTS + ` ` + an + ` -> you: helo$`)
		a2.expect(`^message .* \[` + id1 + `\] you -> ` + bn + `: helo$`) // the copy to the other device

		a.send("/edit " + id1 + " hello")
		a.expect(`^ok edited \d{4}-\d\d-\d\d \d\d:\d\d \[` + id1 + `\] you -> ` + bn + `: hello$`)
		b.expect(`^edited \d{4}-\d\d-\d\d \d\d:\d\d \[` + id1 + `\] ` + an + ` -> you: hello$`)
		a2.expect(`^edited .* \[` + id1 + `\] you -> ` + bn + `: hello$`)
		a.send("/del [" + id2 + "]")
		a.expect(`^ok deleted \[` + id2 + `\]$`)
		b.expect(`^deleted \[` + id2 + `\] with ` + an + `$`)
		a2.expect(`^deleted \[` + id2 + `\] with ` + bn + `$`)

		// Not one's own, already deleted, or no such message.
		b.send("/edit "+id1+" mine now", "/del "+id1, "/edit "+id2+" back", "/del 999999")
		b.expect(`^error edit: you are not allowed to do that \(only its sender may edit a message, and not once it is deleted\) \(forbidden\)$`)
		b.expect(`^error del: you are not allowed to do that \(only its sender, or the group's creator or an admin, may delete a message\) \(forbidden\)$`)
		b.expect(`^error edit: you are not allowed to do that`)
		b.expect(`^error del: there is no such message \(no_such_message\)$`)

		b.send("/history " + an)
		b.expect(`^ok history with ` + an + `: 2 messages$`)
		b.expectNext(`^history .* \[` + id1 + ` edited\] ` + an + ` -> you: hello$`)
		b.expectNext(`^history .* \[` + id2 + ` deleted\] ` + an + ` -> you: \(deleted\)$`)

		// In a group: alice runs it; bob's message goes by her hand.
		a.send("/create club")
		gid := a.expect(`^ok created #(\d+) club$`)[1]
		b.send("/join " + gid)
		b.expect(`^ok joined #` + gid + ` club `)
		a.expect(`^member ` + bn + ` joined #` + gid + ` club$`)
		b.send("/g "+gid+" spam", "/g "+gid+" typo")
		spam := b.expect(`^sent .* \[(\d+)\] you -> #` + gid + ` club: spam$`)[1]
		typo := b.expect(`^sent .* \[(\d+)\] you -> #` + gid + ` club: typo$`)[1]
		a.expect(`\[` + typo + `\] ` + bn + ` -> #` + gid + ` club: typo$`)
		// An edit over two lines; one too long is refused before it is sent.
		b.send("/edit "+typo+" "+strings.Repeat("x", 5000), "/edit "+typo+" fixed\\", "in two")
		b.expect(`^error edit: too long: messages are at most 4096 bytes, this one is 5000; nothing was sent$`)
		b.expect(`^ok edited .* \[` + typo + `\] you -> #` + gid + ` club: fixed$`)
		b.expectNext(`^  \| in two$`)
		a.expect(`^edited .* \[` + typo + `\] ` + bn + ` -> #` + gid + ` club: fixed$`)
		a.expectNext(`^  \| in two$`)
		a2.expect(`^edited .* \[` + typo + `\] ` + bn + ` -> #` + gid + ` club: fixed$`)
		a2.expectNext(`^  \| in two$`)
		a.send("/del " + spam)
		a.expect(`^ok deleted \[` + spam + `\]$`)
		b.expect(`^deleted \[` + spam + `\] in #` + gid + ` club$`)
		a2.expect(`^deleted \[` + spam + `\] in #` + gid + ` club$`)
		a.send("/history #club")
		a.expect(`^ok history of #` + gid + ` club: 2 messages$`)
		a.expectNext(`^history .* \[` + spam + ` deleted\] ` + bn + ` -> #` + gid + ` club: \(deleted\)$`)
		a.expectNext(`^history .* \[` + typo + ` edited\] ` + bn + ` -> #` + gid + ` club: fixed$`)
		a.expectNext(`^  \| in two$`)

		clEnd(t, "alice", a, 0)
		clEnd(t, "alice's laptop", a2, 0)
		clEnd(t, "bob", b, 1)
		for _, p := range []*clProc{a, a2} {
			p.none(`^error`)
		}
	})
}

// /convs with unread counts, read marks sent by the client for what it
// showed (/history, a live message), and the read receipts the sender's
// client prints.
func TestClientConvsAndReceipts(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, db string) {
		srv := startServer(t, db)
		raw := newUser(t, srv.addr, "alice") // alice's other session: it takes the messages first
		an, aid := raw.must("whois", map[string]any{"id": raw.user}).obj("user").str("name"), raw.user
		b, bn, bid := clNewUser(t, srv.addr, "bob", "")
		c, cn, _ := clNewUser(t, srv.addr, "carol", "")

		c.send("/create club")
		gid := c.expect(`^ok created #(\d+) club$`)[1]
		g, _ := strconv.ParseInt(gid, 10, 64)
		raw.must("join_group", map[string]any{"group": g})
		b.send("/msg "+an+" one", "/msg "+an+" two")
		b.expect(`you -> ` + an + `: one$`)
		m2 := b.expect(`^sent .* \[(\d+)\] you -> ` + an + `: two$`)[1]
		c.send("/g " + gid + " hi club")
		gm := c.expect(`^sent .* \[(\d+)\] you -> #` + gid + ` club: hi club$`)[1]
		var ids []int64
		for _, m := range raw.messages(3, 10*time.Second) {
			ids = append(ids, m.num("id"))
		}
		raw.must("ack", map[string]any{"ids": ids}) // had, not read

		// Alice's client logs in: nothing is pending, all of it is unread.
		a := clLogin(t, srv.addr, an, testPassword, "phone")
		a.send("/convs")
		a.expect(`^ok convs: 2 conversations, 3 unread messages$`)
		a.expectNext(`^conv #` + gid + ` club: 1 unread; last .* \[` + gm + `\] ` + cn + `: hi club$`)
		a.expectNext(`^conv ` + bn + ` \(id ` + strconv.FormatInt(bid, 10) + `\): 2 unread; last .* \[` + m2 + `\] ` + bn + `: two$`)

		// /history shows bob's messages: the client marks them read, bob's
		// client shows the receipt, alice's other session gets the mark.
		a.send("/history " + bn)
		a.expect(`^ok history with ` + bn + `: 2 messages$`)
		b.expect(`^read by ` + an + ` up to \[` + m2 + `\]$`)
		r := raw.push("read", 10*time.Second)
		if r.num("with") != bid || strconv.FormatInt(r.num("id"), 10) != m2 || r.obj("user").num("id") != aid {
			t.Errorf("alice's other session got %v, want a read of %s with %d", r, m2, bid)
		}
		a.send("/convs")
		a.expect(`^ok convs: 2 conversations, 1 unread message$`)
		a.expectNext(`^conv #` + gid + ` club: 1 unread; `)
		a.expectNext(`^conv ` + bn + ` \(id \d+\): 0 unread; `)
		a.send("/history #" + gid)
		a.expect(`^ok history of #` + gid + ` club: 1 message$`)
		r = raw.push("read", 10*time.Second)
		if r.num("group") != g || strconv.FormatInt(r.num("id"), 10) != gm {
			t.Errorf("alice's other session got %v, want a read of %s in %d", r, gm, g)
		}
		a.send("/convs")
		a.expect(`^ok convs: 2 conversations, 0 unread messages$`)

		// Live: bob's message shown by alice's client is read at once.
		b.send("/msg " + an + " live")
		m3 := b.expect(`^sent .* \[(\d+)\] you -> ` + an + `: live$`)[1]
		a.expect(`^message .* \[` + m3 + `\] ` + bn + ` -> you: live$`)
		b.expect(`^read by ` + an + ` up to \[` + m3 + `\]$`)

		for _, p := range []*clProc{a, b, c} {
			clEnd(t, "client", p, 0)
			p.none(`^error`)
		}
		c.none(`^read by`) // no receipts in groups
	})
}

// Typing notices: the plain-mode client sends none, and prints others'
// (from a raw connection) as lines, private and in a group.
func TestClientTyping(t *testing.T) {
	t.Parallel()
	srv := startServer(t, sqliteURL(t))
	a, _, aid := clNewUser(t, srv.addr, "alice", "")
	raw := newUser(t, srv.addr, "bob")
	bn := raw.must("whois", map[string]any{"id": raw.user}).obj("user").str("name")

	raw.must("typing", map[string]any{"with": aid})
	a.expect(`^typing ` + bn + ` -> you$`)
	a.send("/create club")
	gid := a.expect(`^ok created #(\d+) club$`)[1]
	g, _ := strconv.ParseInt(gid, 10, 64)
	raw.must("join_group", map[string]any{"group": g})
	a.expect(`^member ` + bn + ` joined #` + gid + ` club$`)
	raw.must("typing", map[string]any{"group": g})
	a.expect(`^typing ` + bn + ` -> #` + gid + ` club$`)

	// Alice's lines to bob and to the group come without a notice first.
	a.send("/open "+bn, "a line typed in a script", "/g "+gid+" and one to the group")
	raw.messages(2, 10*time.Second)
	raw.quiet("typing", 200*time.Millisecond)
	clEnd(t, "alice", a, 0)
	a.none(`^error`)
}

// Private groups: /create -private, /findgroups, /invite, /join, /role,
// /kick, /setgroup, /delgroup, with the pushes the others see and the
// refusals of those not allowed.
func TestClientPrivateGroups(t *testing.T) {
	t.Parallel()
	srv := startServer(t, sqliteURL(t))
	a, an, _ := clNewUser(t, srv.addr, "alice", "")
	b, bn, _ := clNewUser(t, srv.addr, "bob", "")
	c, cn, _ := clNewUser(t, srv.addr, "carol", "")

	a.send("/create -private inner just us", "/create outer")
	gid := a.expect(`^ok created #(\d+) inner \(private\)$`)[1]
	out := a.expect(`^ok created #(\d+) outer$`)[1]
	b.send("/findgroups", "/join "+gid)
	b.expect(`^ok findgroups: 1 group$`)
	b.expectNext(`^group #` + out + ` outer \(1 member\)$`)
	b.expect(`^error join: you are not allowed to do that \(the group is private, or you were removed from it: it takes an invitation\) \(forbidden\)$`)

	a.send("/invite #inner " + bn)
	a.expect(`^ok invited ` + bn + ` to #` + gid + ` inner$`)
	b.expect(`^invited to #` + gid + ` inner \(private\) by ` + an + `: /join ` + gid + `$`)
	b.send("/join " + gid)
	b.expect(`^ok joined #` + gid + ` inner \(private\) \[` + an + ` \(creator, online\), ` + bn + ` \(online\)\]$`)
	a.expect(`^member ` + bn + ` joined #` + gid + ` inner$`)

	// A member of a private group may not invite, nor change roles.
	b.send("/invite "+gid+" "+cn, "/role "+gid+" "+bn+" admin")
	b.expect(`^error invite: you are not allowed to do that \(in a private group only its creator or an admin may invite\) \(forbidden\)$`)
	b.expect(`^error role: you are not allowed to do that \(only the group's creator may change roles\) \(forbidden\)$`)
	a.send("/role #inner " + bn + " admin")
	a.expect(`^ok ` + bn + ` is now admin of #` + gid + ` inner$`)
	b.expect(`^group #` + gid + ` inner updated: ` + bn + ` is now admin$`)

	// An admin invites, and kicks.
	b.send("/invite " + gid + " " + cn)
	b.expect(`^ok invited ` + cn + ` to #` + gid + ` inner$`)
	c.expect(`^invited to #` + gid + ` inner \(private\) by ` + bn + `: /join ` + gid + `$`)
	c.send("/join "+gid, "/open #inner")
	c.expect(`^ok joined #` + gid + ` inner \(private\) \[.*` + cn + ` \(online\)\]$`)
	c.expect(`^ok open #` + gid + ` inner$`)
	a.expect(`^member ` + cn + ` joined #` + gid + ` inner$`)
	b.expect(`^member ` + cn + ` joined #` + gid + ` inner$`)
	b.send("/kick "+gid+" "+cn, "/kick "+gid+" "+an)
	b.expect(`^ok removed ` + cn + ` from #` + gid + ` inner$`)
	b.expect(`^error kick: you are not allowed to do that \(only the group's creator or an admin may remove a member, and never the creator\) \(forbidden\)$`)
	c.expect(`^removed from #` + gid + ` inner by ` + bn + `$`)
	a.expect(`^member ` + cn + ` removed from #` + gid + ` inner by ` + bn + `$`)
	// Carol's open conversation closed with it; she needs a new invitation.
	c.send("a line to nowhere", "/join "+gid)
	c.expect(`^error msg: no conversation is open`)
	c.expect(`^error join: you are not allowed to do that`)

	// Settings: the others see what changed.
	a.send("/setgroup #inner name inner2", "/setgroup "+gid+" desc the few", "/setgroup "+gid+" public")
	a.expect(`^ok updated #` + gid + ` inner2 \(private\): just us$`)
	a.expect(`^ok updated #` + gid + ` inner2 \(private\): the few$`)
	a.expect(`^ok updated #` + gid + ` inner2: the few$`)
	b.expect(`^group #` + gid + ` inner2 updated: renamed from inner$`)
	b.expect(`^group #` + gid + ` inner2 updated: description: the few$`)
	b.expect(`^group #` + gid + ` inner2 updated: now public$`)
	c.send("/findgroups INNER")
	c.expect(`^ok findgroups: 1 group$`)
	c.expectNext(`^group #` + gid + ` inner2 \(2 members\): the few$`)

	// Only the creator deletes it.
	b.send("/delgroup " + gid)
	b.expect(`^error delgroup: you are not allowed to do that \(only the group's creator may delete it\) \(forbidden\)$`)
	a.send("/delgroup #inner2")
	a.expect(`^ok deleted group #` + gid + ` inner2$`)
	b.expect(`^group #` + gid + ` inner2 deleted$`)
	b.send("/groups")
	b.expect(`^groups: none$`)

	clEnd(t, "alice", a, 0)
	a.none(`^error`)
	clEnd(t, "bob", b, 1)
	clEnd(t, "carol", c, 1)
}

// Devices: two sessions of one user (-device phone, -device laptop),
// /sessions, a message shown on both, one's own message copied to the
// other; /logout all, /passwd and /delete-account kicking the other
// device with its reason.
func TestClientDevices(t *testing.T) {
	t.Parallel()
	srv := startServer(t, sqliteURL(t))
	phone, an, _ := clNewUser(t, srv.addr, "alice", "phone")
	laptop := clLogin(t, srv.addr, an, testPassword, "laptop")
	b, bn, _ := clNewUser(t, srv.addr, "bob", "")

	phone.send("/sessions")
	phone.expect(`^sessions \(2\): phone \(this device\) since ` + clTime + `, laptop since ` + clTime + `$`)
	laptop.send("/sessions")
	laptop.expect(`^sessions \(2\): phone since ` + clTime + `, laptop \(this device\) since ` + clTime + `$`)

	b.send("/msg " + an + " to both")
	phone.expect(`^message ` + clTS + ` ` + bn + ` -> you: to both$`)
	laptop.expect(`^message ` + clTS + ` ` + bn + ` -> you: to both$`)
	phone.send("/msg " + bn + " from the phone")
	phone.expect(`^sent ` + clTS + ` you -> ` + bn + `: from the phone$`)
	laptop.expect(`^message ` + clTS + ` you -> ` + bn + `: from the phone$`)
	b.expect(`^message ` + clTS + ` ` + an + ` -> you: from the phone$`)

	// /logout all: the phone is kicked, with the reason.
	laptop.send("/logout all")
	laptop.expect(`^ok logout \(every device\)$`)
	phone.expect(`^kicked: this session was closed \(you logged out of every device\); not reconnecting \(/login to log in again\)$`)
	phone.expect(`^disconnected: the next command connects again$`)
	clEnd(t, "phone", phone, 1)

	// /passwd: the laptop is kicked; the old password is wrong now.
	laptop.send("/login " + an + " " + testPassword)
	laptop.expect(`^ok login ` + an)
	phone = clLogin(t, srv.addr, an, testPassword, "phone")
	phone.send("/passwd " + testPassword + " new pass 2")
	phone.expect(`^ok password changed; your other devices were logged out$`)
	laptop.expect(`^kicked: this session was closed \(your password was changed on another device\); not reconnecting \(/login to log in again\)$`)
	laptop.send("/login "+an+" "+testPassword, "/login "+an+" new pass 2", "/sessions")
	laptop.expect(`^error login: wrong name or password \(bad_credentials\)$`)
	laptop.expect(`^ok login ` + an)
	laptop.expect(`^sessions \(2\): phone since ` + clTime + `, laptop \(this device\) since ` + clTime + `$`)

	// /delete-account: the phone is kicked; the name is gone for bob, but
	// the history stays.
	laptop.send("/delete-account new pass 2")
	laptop.expect(`^ok deleted account ` + an + `$`)
	phone.expect(`^kicked: this session was closed \(your account was deleted\); not reconnecting \(/login to log in again\)$`)
	b.send("/msg "+an+" are you there?", "/history "+an)
	b.expect(`^error msg: there is no such user \(no_such_user\)$`)
	b.expect(`^ok history with ` + an + `: 2 messages$`)
	laptop.send("/login " + an + " new pass 2")
	laptop.expect(`^error login: wrong name or password \(bad_credentials\)$`)

	clEnd(t, "phone", phone, 1)
	clEnd(t, "laptop", laptop, 1)
	clEnd(t, "bob", b, 1)
}
