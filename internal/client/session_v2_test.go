package client

import (
	"io"
	"strings"
	"testing"
	"time"
)

// dropConn closes the client's connection from the server's side.
func (fs *fakeServer) dropConn() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.nc != nil {
		fs.nc.Close()
	}
}

// The device goes with every login, the relogin after a lost connection
// included; after /passwd the relogin uses the new password.
func TestReloginDeviceAndNewPassword(t *testing.T) {
	fs := newFakeServer(t)
	in, out, rc := startScripted(t, fs, func(cfg *config) { cfg.device = "laptop" })
	io.WriteString(in, "/passwd password1 new2pw\n")
	fs.reply(fs.next("change_password"), "")
	out.waitFor(0, "ok password changed")
	fs.dropConn()
	relogin := fs.next("login")
	checkFields(t, relogin, `{"name":"alice","password":"new2pw","device":"laptop"}`)
	fs.reply(relogin, testLogin)
	out.waitFor(0, "reconnected: logged in again as alice")
	in.Close()
	if status := waitExit(t, rc); status != 0 {
		t.Errorf("exit status %d", status)
	}
}

// After /delete-account the server closes the connection: the client does
// not log in again (the account is gone), and says so.
func TestDeleteAccountNoRelogin(t *testing.T) {
	fs := newFakeServer(t)
	in, out, rc := startScripted(t, fs, nil)
	io.WriteString(in, "/delete-account password1\n")
	fs.reply(fs.next("delete_account"), "")
	out.waitFor(0, "ok deleted account alice")
	fs.dropConn()
	out.waitFor(0, "disconnected: the next command connects again")
	in.Close()
	if status := waitExit(t, rc); status != 0 {
		t.Errorf("exit status %d", status)
	}
	if left := leftOver(fs, "login"); len(left) != 0 {
		t.Errorf("logged in again: %v", left)
	}
}

// The pushes of version 2 as the core takes them in: the synced line
// counts the missed messages; a group_updated line says what changed
// against the group the login brought; being removed from the open group
// closes it; a kick for a changed password fails what was waiting with
// the server's reason.
func TestPushesV2(t *testing.T) {
	fs := newFakeServer(t)
	// No read marks: unanswered, they would hold the local error line back.
	in, out, rc := startScripted(t, fs, func(cfg *config) { cfg.readEvery = time.Hour })
	io.WriteString(in, "/open #3\n")
	out.waitFor(0, "ok open #3 gophers")
	for _, push := range []string{
		`{"type":"message","backlog":true,"message":{"id":5,"from":2,"from_name":"bob","to":1,"text":"while away","ts":1}}`,
		`{"type":"message","backlog":true,"message":{"id":6,"from":2,"from_name":"bob","group":3,"text":"also","ts":1,"edited":2}}`,
		`{"type":"synced"}`,
		`{"type":"friend_request","user":{"id":4,"name":"carol"}}`,
		`{"type":"group_updated","group":{"id":3,"name":"gophers2","desc":"Go","private":true,"members":[{"id":1,"name":"alice","role":"creator","online":true},{"id":2,"name":"bob","role":"admin","online":true}]}}`,
		`{"type":"edited","message":{"id":6,"from":2,"from_name":"bob","group":3,"text":"also, edited","ts":1,"edited":2}}`,
		`{"type":"deleted","id":5,"with":2}`,
		`{"type":"member_removed","group":3,"user":{"id":1,"name":"alice"},"by":{"id":2,"name":"bob"}}`,
	} {
		fs.send(push)
	}
	out.waitFor(0, "removed from #3 gophers2 by bob")
	io.WriteString(in, "still open?\n")
	out.waitFor(0, "error msg: no conversation is open")
	fs.send(`{"type":"kicked","reason":"your password was changed on another device"}`)
	out.waitFor(0, "kicked: ")
	fs.dropConn()
	out.waitFor(0, "disconnected: the next command connects again")
	in.Close()
	if status := waitExit(t, rc); status != 1 {
		t.Errorf("exit status %d, want 1", status)
	}
	got := clientTimes.ReplaceAllString(out.String(), "TIME")
	got = got[strings.Index(got, "ok open"):]
	want := strings.Join([]string{
		"ok open #3 gophers",
		"message (away) TIME [5] bob -> you: while away",
		"message (away) TIME [6 edited] bob -> #3 gophers: also",
		"synced: 2 messages missed while away shown; from here on everything is live",
		"friend request from carol (id 4): /accept carol or /decline carol",
		"group #3 gophers2 updated: renamed from gophers; description: Go; now private; bob is now admin",
		"edited TIME [6] bob -> #3 gophers2: also, edited",
		"deleted [5] with bob",
		"removed from #3 gophers2 by bob",
		"error msg: no conversation is open: /open USER, /open #GROUP, or /msg USER TEXT",
		"kicked: this session was closed (your password was changed on another device); not reconnecting (/login to log in again)",
		"disconnected: the next command connects again",
	}, "\n") + "\n"
	if got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
}

// A push that names a user by id alone (one's own message copied from
// another device, its edit, a deletion with them) waits for a whois of
// that id, and the push lines after it wait too: the name is shown, in
// the order of the pushes. A failed lookup shows "user N", once. A group
// not known (created on another device) is looked up with groups.
func TestPushWaitsForName(t *testing.T) {
	fs := newFakeServer(t)
	in, out, rc := startScripted(t, fs, func(cfg *config) { cfg.readEvery = time.Hour })
	fs.send(`{"type":"message","message":{"id":7,"from":1,"from_name":"alice","to":5,"text":"from my phone","ts":1}}`)
	fs.send(`{"type":"message","message":{"id":8,"from":2,"from_name":"bob","to":1,"text":"after it","ts":1}}`)
	w := fs.next("whois")
	checkFields(t, w, `{"id":5}`)
	fs.reply(w, `"user":{"id":5,"name":"erin"}`)
	out.waitFor(0, "after it")
	// Known now: no lookup. An id that does not exist: one lookup, then "user 9".
	fs.send(`{"type":"edited","message":{"id":7,"from":1,"from_name":"alice","to":5,"text":"edited","ts":1,"edited":2}}`)
	fs.send(`{"type":"deleted","id":11,"with":9}`)
	fs.fail(fs.next("whois"), "no_such_user")
	out.waitFor(0, "deleted [11] with user 9")
	fs.send(`{"type":"deleted","id":12,"with":9}`)
	out.waitFor(0, "deleted [12] with user 9")
	fs.send(`{"type":"member_joined","group":4,"user":{"id":2,"name":"bob"}}`)
	fs.send(`{"type":"message","message":{"id":13,"from":2,"from_name":"bob","group":4,"text":"in four","ts":1}}`)
	fs.reply(fs.next("groups"), `"groups":[{"id":4,"name":"four","desc":"","members":[]}]`)
	out.waitFor(0, "in four")
	in.Close()
	fs.reply(fs.next("read"), "") // bob's messages, marked read at the exit
	fs.reply(fs.next("read"), "")
	if status := waitExit(t, rc); status != 0 {
		t.Errorf("exit status %d", status)
	}
	if left := leftOver(fs, "whois"); len(left) != 0 {
		t.Errorf("more lookups: %v", left)
	}
	got := clientTimes.ReplaceAllString(out.String(), "TIME")
	got = got[strings.Index(got, "groups: "):]
	got = got[strings.Index(got, "\n")+1:]
	want := strings.Join([]string{
		"message TIME [7] you -> erin: from my phone",
		"message TIME [8] bob -> you: after it",
		"edited TIME [7] you -> erin: edited",
		"deleted [11] with user 9",
		"deleted [12] with user 9",
		"member bob joined #4 four",
		"message TIME [13] bob -> #4 four: in four",
	}, "\n") + "\n"
	if got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
}
