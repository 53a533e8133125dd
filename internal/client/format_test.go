package client

import (
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"chat/internal/wire"
)

func testNames() *names {
	n := newNames(time.UTC)
	n.me = 1
	n.addUser(1, "alice")
	n.addUser(2, "bob")
	n.addGroup(&group{Group: wire.Group{ID: 3, Name: "gophers"}})
	return n
}

func TestFormatMessage(t *testing.T) {
	n := testNames()
	ts := time.Date(2026, 11, 27, 14, 3, 0, 0, time.UTC).UnixMilli()
	msg := func(m wire.Message, kind msgKind) string { return fmtMessage(n, &message{Message: m}, kind) }
	sent := func(m wire.Message) string { return fmtSent(n, &message{Message: m}) }
	tests := []struct{ got, want string }{
		{msg(wire.Message{ID: 5, From: 2, FromName: "bob", To: 1, Text: "hi", TS: ts}, msgLive),
			"message 2026-11-27 14:03 [5] bob -> you: hi"},
		{msg(wire.Message{ID: 5, From: 2, FromName: "bob", To: 1, Text: "hi", TS: ts}, msgAway),
			"message (away) 2026-11-27 14:03 [5] bob -> you: hi"},
		{msg(wire.Message{ID: 6, From: 2, FromName: "bob", Group: 3, Text: "all", TS: ts}, msgLive),
			"message 2026-11-27 14:03 [6] bob -> #3 gophers: all"},
		{msg(wire.Message{ID: 6, From: 9, FromName: "zed", Group: 4, Text: "x", TS: ts}, msgLive),
			"message 2026-11-27 14:03 [6] zed -> #4: x"},
		{msg(wire.Message{ID: 7, From: 1, FromName: "alice", To: 2, Text: "yo", TS: ts}, msgHistory),
			"history 2026-11-27 14:03 [7] you -> bob: yo"},
		// A text over several lines: each further line under the first,
		// after "  | "; tabs kept; other control characters escaped.
		{msg(wire.Message{ID: 8, From: 2, FromName: "bob", To: 1, Text: "two\nlines\x1b[2J\ttab", TS: ts}, msgLive),
			"message 2026-11-27 14:03 [8] bob -> you: two\n  | lines\\x1b[2J\ttab"},
		{msg(wire.Message{ID: 8, From: 2, FromName: "bob", To: 1, Text: "a\r\n\nb\rc\n", TS: ts}, msgAway),
			"message (away) 2026-11-27 14:03 [8] bob -> you: a\n  | \n  | b\\rc\n  | "},
		{msg(wire.Message{ID: 8, From: 2, FromName: "bob\n\x1b", To: 1, Text: "\u009b31m\x7f\xff", TS: ts}, msgLive),
			"message 2026-11-27 14:03 [8] bob\\n\\x1b -> you: \\x9b31m\\x7f\ufffd"},
		{msg(wire.Message{ID: 9, From: 1, FromName: "alice", To: 8, Text: "?", TS: ts}, msgHistory),
			"history 2026-11-27 14:03 [9] you -> user 8: ?"},
		// The reply to one's own message.
		{sent(wire.Message{ID: 5, From: 1, To: 2, Text: "hi", TS: ts}), "sent 2026-11-27 14:03 [5] you -> bob: hi"},
		{sent(wire.Message{ID: 5, From: 1, Group: 3, Text: "hi", TS: ts}), "sent 2026-11-27 14:03 [5] you -> #3 gophers: hi"},
		{sent(wire.Message{ID: 5, From: 1, To: 2, Text: "hi\nthere", TS: ts}), "sent 2026-11-27 14:03 [5] you -> bob: hi\n  | there"},
		// Version 2: the state of a message is in its tag, where no text
		// can fake it; a deleted one shows no text.
		{fmtMessage(n, &message{Message: wire.Message{ID: 10, From: 2, FromName: "bob", To: 1, Text: "fixed", TS: ts}, Edited: ts + 60000}, msgLive),
			"message 2026-11-27 14:03 [10 edited] bob -> you: fixed"},
		{fmtMessage(n, &message{Message: wire.Message{ID: 11, From: 2, FromName: "bob", Group: 3, TS: ts}, Deleted: true}, msgHistory),
			"history 2026-11-27 14:03 [11 deleted] bob -> #3 gophers: (deleted)"},
		{fmtMessage(n, &message{Message: wire.Message{ID: 12, From: 2, FromName: "bob", To: 1, Text: "(deleted)", TS: ts}}, msgLive),
			"message 2026-11-27 14:03 [12] bob -> you: (deleted)"}, // a text that says so is not a tombstone
		// An edit, at the time of the edit (the edited push; "ok " before it: the reply).
		{fmtEdited(n, &message{Message: wire.Message{ID: 10, From: 2, FromName: "bob", To: 1, Text: "fixed\nagain", TS: ts}, Edited: ts + 120000}),
			"edited 2026-11-27 14:05 [10] bob -> you: fixed\n  | again"},
		{fmtEdited(n, &message{Message: wire.Message{ID: 13, From: 1, FromName: "alice", Group: 3, Text: "mine", TS: ts}}),
			"edited 2026-11-27 14:03 [13] you -> #3 gophers: mine"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got  %q\nwant %q", tt.got, tt.want)
		}
	}
}

func TestFormatReplies(t *testing.T) {
	n := testNames()
	ts := time.Date(2026, 11, 27, 14, 3, 0, 0, time.UTC).UnixMilli()
	friends := []wire.User{{ID: 2, Name: "bob", Online: wire.Bool(true)}, {ID: 4, Name: "carol", Online: wire.Bool(false)}}
	groups := []group{{Group: wire.Group{ID: 3, Name: "gophers", Members: []wire.Member{
		{ID: 1, Name: "alice", Role: wire.RoleCreator, Online: true}, {ID: 2, Name: "bob", Role: wire.RoleMember}}}}}
	tests := []struct{ got, want string }{
		{fmtFriends(friends), "friends: bob (online), carol"},
		{fmtFriends(nil), "friends: none"},
		{fmtGroups(groups), "groups: #3 gophers [alice (creator, online), bob]"},
		{fmtGroups([]group{}), "groups: none"},
		{fmtWho([]wire.User{{Name: "bob"}, {Name: "alice"}}, 2), "online (2): alice, bob"},
		{fmtWho([]wire.User{{Name: "bob"}}, 5), "online (5, showing 1): bob"},
		{fmtWho(nil, 0), "online (0): nobody"},
		{strings.Join(fmtLogin(&wire.User{ID: 1, Name: "alice"}, friends, groups, nil), " | "),
			"ok login alice (id 1): 2 friends, 1 group | friends: bob (online), carol | groups: #3 gophers [alice (creator, online), bob]"},
		{strings.Join(fmtLogin(&wire.User{ID: 1, Name: "alice"}, []wire.User{friends[0]}, nil, nil), " | "),
			"ok login alice (id 1): 1 friend, 0 groups | friends: bob (online) | groups: none"},
		// Version 2: friend requests waiting, private groups, roles.
		{strings.Join(fmtLogin(&wire.User{ID: 1, Name: "alice"}, nil, nil, []wire.User{{ID: 4, Name: "carol"}, {ID: 6, Name: "dave"}}), " | "),
			"ok login alice (id 1): 0 friends, 0 groups | friends: none | groups: none | friend requests: carol (id 4), dave (id 6): /accept USER or /decline USER"},
		{fmtGroups([]group{{Group: wire.Group{ID: 5, Name: "inner", Members: []wire.Member{
			{ID: 1, Name: "alice", Role: wire.RoleCreator}, {ID: 2, Name: "bob", Role: wire.RoleAdmin, Online: true}, {ID: 4, Name: "carol", Role: wire.RoleMember}}}, Private: true}}),
			"groups: #5 inner (private) [alice (creator), bob (admin, online), carol]"},
		{fmtRequests([]wire.User{{ID: 4, Name: "carol"}}, []wire.User{{ID: 6, Name: "dave"}, {ID: 7, Name: "x\ny"}}),
			"friend requests: incoming carol (id 4); outgoing dave (id 6), x\\ny (id 7)"},
		{fmtRequests(nil, []wire.User{{ID: 6, Name: "dave"}}), "friend requests: outgoing dave (id 6)"},
		{fmtRequests([]wire.User{}, nil), "friend requests: none"},
		{fmtBlocks([]wire.User{{ID: 2, Name: "bob"}}), "blocked: bob (id 2)"},
		{fmtBlocks(nil), "blocked: none"},
		{fmtSessions(n, []session{{Device: "laptop", Since: ts}, {Device: "", Since: ts + 60000}, {Device: "ph\x1bone", Since: ts}}, "laptop"),
			"sessions (3): laptop (this device) since 2026-11-27 14:03, (no device name) since 2026-11-27 14:04, ph\\x1bone since 2026-11-27 14:03"},
		{fmtSessions(n, []session{{Device: "", Since: ts}}, ""), "sessions (1): (no device name) (this device) since 2026-11-27 14:03"},
		{fmtConv(n, &conv{With: &wire.User{ID: 2, Name: "bob"}, Unread: 2, Read: 9,
			Last: &message{Message: wire.Message{ID: 12, From: 2, FromName: "bob", To: 1, Text: "see\nyou", TS: ts}}}),
			"conv bob (id 2): 2 unread; last 2026-11-27 14:03 [12] bob: see\\nyou"},
		{fmtConv(n, &conv{Group: &group{Group: wire.Group{ID: 3, Name: "gophers"}, Private: true},
			Last: &message{Message: wire.Message{ID: 13, From: 1, FromName: "alice", Group: 3, Text: strings.Repeat("ab", 40), TS: ts}}}),
			"conv #3 gophers (private): 0 unread; last 2026-11-27 14:03 [13] you: " + strings.Repeat("ab", 28) + "a..."},
		{fmtConv(n, &conv{Group: &group{Group: wire.Group{ID: 7, Name: "quiet"}}}), "conv #7 quiet: 0 unread; no messages"},
		{fmtConv(n, &conv{With: &wire.User{ID: 2, Name: "bob"}, Unread: 0,
			Last: &message{Message: wire.Message{ID: 14, From: 2, FromName: "bob", To: 1, TS: ts}, Deleted: true}}),
			"conv bob (id 2): 0 unread; last 2026-11-27 14:03 [14 deleted] bob: (deleted)"},
		{fmtFound(&group{Group: wire.Group{ID: 3, Name: "gophers", Desc: "all things Go"}, Count: 5}), "group #3 gophers (5 members): all things Go"},
		{fmtFound(&group{Group: wire.Group{ID: 8, Name: "solo"}, Count: 1}), "group #8 solo (1 member)"},
		{fmtGroupInfo(&group{Group: wire.Group{ID: 3, Name: "gophers", Desc: "Go"}, Private: true}), "#3 gophers (private): Go"},
		{fmtGroupInfo(&group{Group: wire.Group{ID: 3, Name: "gophers"}}), "#3 gophers"},
		{fmtSynced(0), "synced: no messages missed; from here on everything is live"},
		{fmtSynced(3), "synced: 3 messages missed while away shown; from here on everything is live"},
		{fmtRead("bob", 981), "read by bob up to [981]"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got  %q\nwant %q", tt.got, tt.want)
		}
	}
}

func TestFormatPush(t *testing.T) {
	n := testNames()
	tests := []struct {
		f    frame
		want string
	}{
		{frame{Type: "presence", User: &wire.User{ID: 2, Name: "bob", Online: wire.Bool(true)}}, "presence bob online"},
		{frame{Type: "presence", User: &wire.User{ID: 2, Name: "bob", Online: wire.Bool(false)}}, "presence bob offline"},
		{frame{Type: "friend_added", Friend: &wire.User{ID: 2, Name: "bob", Online: wire.Bool(true)}}, "friend bob (id 2) added you"},
		{frame{Type: "member_joined", Group: []byte("3"), User: &wire.User{ID: 2, Name: "bob"}}, "member bob joined #3 gophers"},
		{frame{Type: "member_left", Group: []byte("3"), User: &wire.User{ID: 2, Name: "bob"}}, "member bob left #3 gophers"},
		{frame{Type: "kicked", Reason: "logged in elsewhere"}, "kicked: you logged in somewhere else, so this session was closed (logged in elsewhere); not reconnecting (/login to take the session back)"},
		// The server's reason ("reconnect to another node") is not shown:
		// the client reconnects by itself, to its one address.
		{frame{Type: "shutdown", Reason: "the server is shutting down; reconnect to another node"}, "shutdown: the server is shutting down; reconnecting when it is back"},
		{frame{Type: "shutdown"}, "shutdown: the server is shutting down; reconnecting when it is back"},
		{frame{Type: "weather"}, ""},
		{frame{Type: "presence"}, ""},
		// Version 2: the kicked reasons other than a takeover, in the server's words.
		{frame{Type: "kicked", Reason: "you logged in from another connection on this device"},
			"kicked: you logged in somewhere else, so this session was closed (you logged in from another connection on this device); not reconnecting (/login to take the session back)"},
		{frame{Type: "kicked"}, "kicked: you logged in somewhere else, so this session was closed; not reconnecting (/login to take the session back)"},
		{frame{Type: "kicked", Reason: "your password was changed on another device"},
			"kicked: this session was closed (your password was changed on another device); not reconnecting (/login to log in again)"},
		{frame{Type: "kicked", Reason: "you logged out of every device"},
			"kicked: this session was closed (you logged out of every device); not reconnecting (/login to log in again)"},
		{frame{Type: "kicked", Reason: "your account was deleted"},
			"kicked: this session was closed (your account was deleted); not reconnecting (/login to log in again)"},
		{frame{Type: "friend_request", User: &wire.User{ID: 4, Name: "carol"}}, "friend request from carol (id 4): /accept carol or /decline carol"},
		{frame{Type: "friend_request", User: &wire.User{ID: 4, Name: "2024"}}, "friend request from 2024 (id 4): /accept @2024 or /decline @2024"},
		{frame{Type: "friend_request"}, ""},
		{frame{Type: "friend_removed", User: &wire.User{ID: 2, Name: "bob"}}, "friend bob (id 2) removed: you are no longer friends"},
		{frame{Type: "typing", User: &wire.User{ID: 2, Name: "bob"}, With: 2}, "typing bob -> you"},
		{frame{Type: "typing", User: &wire.User{ID: 2, Name: "bob"}, Group: []byte("3")}, "typing bob -> #3 gophers"},
		{frame{Type: "edited", Message: &message{Message: wire.Message{ID: 10, From: 2, FromName: "bob", To: 1, Text: "new", TS: 0}, Edited: time.Date(2026, 11, 27, 14, 5, 0, 0, time.UTC).UnixMilli()}},
			"edited 2026-11-27 14:05 [10] bob -> you: new"},
		{frame{Type: "deleted", ID: 10, With: 2}, "deleted [10] with bob"},
		{frame{Type: "deleted", ID: 11, Group: []byte("3")}, "deleted [11] in #3 gophers"},
		{frame{Type: "deleted", ID: 12, With: 9}, "deleted [12] with user 9"},
		{frame{Type: "invited", Group: []byte(`{"id":5,"name":"inner","desc":"","private":true}`), By: &wire.User{ID: 2, Name: "bob"}},
			"invited to #5 inner (private) by bob: /join 5"},
		{frame{Type: "invited", Group: []byte(`{"id":6,"name":"open","desc":""}`), By: &wire.User{ID: 2, Name: "bob"}}, "invited to #6 open by bob: /join 6"},
		{frame{Type: "member_removed", Group: []byte("3"), User: &wire.User{ID: 4, Name: "carol"}, By: &wire.User{ID: 2, Name: "bob"}},
			"member carol removed from #3 gophers by bob"},
		{frame{Type: "member_removed", Group: []byte("3"), User: &wire.User{ID: 1, Name: "alice"}, By: &wire.User{ID: 2, Name: "bob"}},
			"removed from #3 gophers by bob"},
		{frame{Type: "member_removed", Group: []byte("3"), User: &wire.User{ID: 4, Name: "carol"}, By: &wire.User{ID: 1, Name: "alice"}},
			"member carol removed from #3 gophers by you"},
		{frame{Type: "group_deleted", Group: []byte("3")}, "group #3 gophers deleted"},
		{frame{Type: "group_deleted", Group: []byte("77")}, "group #77 deleted"},
	}
	for _, tt := range tests {
		if got := fmtPush(n, &tt.f); got != tt.want {
			t.Errorf("%s:\n got  %q\nwant %q", tt.f.Type, got, tt.want)
		}
	}
}

// A group_updated line says what changed against the group as last seen.
func TestFormatGroupUpdated(t *testing.T) {
	members := func(roles ...wire.Role) []wire.Member {
		ms := make([]wire.Member, len(roles))
		for i, r := range roles {
			ms[i] = wire.Member{ID: int64(i + 1), Name: []string{"alice", "bob", "carol"}[i], Role: r}
		}
		return ms
	}
	old := &group{Group: wire.Group{ID: 3, Name: "gophs", Desc: "Go", Members: members(wire.RoleCreator, wire.RoleMember, wire.RoleAdmin)}}
	tests := []struct {
		old  *group
		g    group
		want string
	}{
		{old, group{Group: wire.Group{ID: 3, Name: "gophers", Desc: "Go", Members: members(wire.RoleCreator, wire.RoleMember, wire.RoleAdmin)}},
			"group #3 gophers updated: renamed from gophs"},
		{old, group{Group: wire.Group{ID: 3, Name: "gophs", Desc: "all\nthings", Members: members(wire.RoleCreator, wire.RoleMember, wire.RoleAdmin)}, Private: true},
			"group #3 gophs updated: description: all\\nthings; now private"},
		{old, group{Group: wire.Group{ID: 3, Name: "gophs", Members: members(wire.RoleCreator, wire.RoleAdmin, wire.RoleMember)}},
			"group #3 gophs updated: description removed; bob is now admin; carol is now member"},
		{old, group{Group: wire.Group{ID: 3, Name: "gophs", Desc: "Go"}}, // no members in the push: no role compared
			"group #3 gophs updated"},
		{nil, group{Group: wire.Group{ID: 3, Name: "gophs"}}, "group #3 gophs updated"},
		// nothing changed that the client can see: the echo of its own change
		{old, group{Group: wire.Group{ID: 3, Name: "gophs", Desc: "Go", Members: members(wire.RoleCreator, wire.RoleMember, wire.RoleAdmin)}}, ""},
		{&group{Group: wire.Group{ID: 3, Name: "gophs"}, Private: true}, group{Group: wire.Group{ID: 3, Name: "gophs"}}, "group #3 gophs updated: now public"},
	}
	for _, tt := range tests {
		if got := fmtGroupUpdated(tt.old, &tt.g); got != tt.want {
			t.Errorf("got  %q\nwant %q", got, tt.want)
		}
	}
}

// Every error code of the protocol has a sentence, and the sentences
// quote the protocol's limits.
func TestErrorSentences(t *testing.T) {
	for _, code := range wire.Codes {
		if errorSentences[code] == "" {
			t.Errorf("no sentence for %s", code)
		}
	}
	if len(errorSentences) != len(wire.Codes) {
		t.Errorf("%d sentences for %d codes", len(errorSentences), len(wire.Codes))
	}
	tests := []struct{ got, want string }{
		{fmtError("login", "login", wire.CodeBadCredentials, "x"), "error login: wrong name or password (bad_credentials)"},
		{fmtError("msg", "chat", wire.CodeBadRequest, "x"), "error msg: the server refused the request as malformed (you cannot message yourself, and the text must not be empty) (bad_request)"},
		{fmtError("create", "create_group", wire.CodeBadRequest, "x"), "error create: the server refused the request as malformed (group names are 1-64 characters, descriptions at most 256) (bad_request)"},
		{fmtError("register", "register", wire.CodeInvalidName, "x"), "error register: names are 1-32 letters, digits and _ . - (invalid_name)"},
		{fmtError("register", "register", wire.CodeInvalidPass, "x"), "error register: passwords are 6-72 bytes (invalid_password)"},
		{fmtError("msg", "chat", wire.CodeTooLong, "x"), "error msg: too long: messages are at most 4096 bytes (too_long)"},
		{fmtError("msg", "chat", "new_code", "the\nreason"), `error msg: the server said: the\nreason (new_code)`},
		{fmtError("join", "join_group", wire.CodeForbidden, "x"), "error join: you are not allowed to do that (the group is private, or you were removed from it: it takes an invitation) (forbidden)"},
		{fmtError("kick", "kick_member", wire.CodeForbidden, "x"), "error kick: you are not allowed to do that (only the group's creator or an admin may remove a member, and never the creator) (forbidden)"},
		{fmtError("msg", "chat", wire.CodeBlocked, "x"), "error msg: that user has blocked you (blocked)"},
		{fmtError("edit", "edit", wire.CodeNoSuchMessage, "x"), "error edit: there is no such message (no_such_message)"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got  %q\nwant %q", tt.got, tt.want)
		}
	}
}

func TestDecodeFrame(t *testing.T) {
	f, err := decodeFrame([]byte(`{"type":"join_group","rid":7,"ok":true,"group":{"id":2,"name":"g","desc":"","members":[{"id":3,"name":"c","role":"creator","online":true}]},"extra":1}`))
	if err != nil {
		t.Fatal(err)
	}
	g := f.groupObj()
	if rid, ok := f.rid(); !ok || rid != 7 || g == nil || g.ID != 2 || len(g.Members) != 1 || g.Members[0].Role != wire.RoleCreator {
		t.Errorf("reply: %+v", f)
	}
	f, _ = decodeFrame([]byte(`{"type":"member_joined","group":2,"user":{"id":3,"name":"c","online":true}}`))
	if _, ok := f.rid(); ok || f.groupID() != 2 || f.groupObj() != nil || f.User.Online == nil || !*f.User.Online {
		t.Errorf("push: %+v", f)
	}
	f, _ = decodeFrame([]byte(`{"type":"ping","rid":"x","ok":true}`))
	if _, ok := f.rid(); ok {
		t.Errorf("a string rid is not ours: %+v", f)
	}
	f, _ = decodeFrame([]byte(`{"type":"chat","rid":1,"ok":false,"code":"too_long","error":"text is longer than 4096 bytes"}`))
	if f.Code != wire.CodeTooLong {
		t.Errorf("code: %+v", f)
	}
}

// Whatever a message holds, its output lines carry no control character
// but a tab (each line ends where the output adds its newline), no byte
// that is not UTF-8, and every line after the first starts with
// contPrefix: nothing can drive the terminal, and one message stays one
// event.
func FuzzCleanText(f *testing.F) {
	for _, s := range []string{"hi", "two\nlines\x1b[2J\ttab", "a\r\n\nb\rc\n", "\u009b31m\x7f\xff", "\n", "\x1b]0;title\a", "\u2028\u202e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := cleanText(s)
		if !utf8.ValidString(out) {
			t.Fatalf("%q -> %q: not UTF-8", s, out)
		}
		for i, line := range strings.Split(out, "\n") {
			if i > 0 && !strings.HasPrefix(line, contPrefix) {
				t.Fatalf("%q -> %q: line %d lacks the prefix", s, out, i)
			}
			for _, r := range line {
				if unicode.IsControl(r) && r != '\t' {
					t.Fatalf("%q -> %q: control character %U", s, out, r)
				}
			}
		}
		if want := strings.Count(strings.ReplaceAll(s, "\r\n", "\n"), "\n"); strings.Count(out, "\n") != want {
			t.Fatalf("%q -> %q: %d lines, want %d", s, out, strings.Count(out, "\n")+1, want+1)
		}
		if c := clean(s); strings.ContainsFunc(c, unicode.IsControl) || !utf8.ValidString(c) {
			t.Fatalf("clean(%q) = %q", s, c)
		}
	})
}
