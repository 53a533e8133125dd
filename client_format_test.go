package main

import (
	"strings"
	"testing"
	"time"
)

func clTestNames() *clNames {
	n := newClNames(time.UTC)
	n.me = 1
	n.addUser(1, "alice")
	n.addUser(2, "bob")
	n.addGroup(&clGroup{ID: 3, Name: "gophers"})
	return n
}

func TestClientFormatMessage(t *testing.T) {
	n := clTestNames()
	ts := time.Date(2026, 11, 27, 14, 3, 0, 0, time.UTC).UnixMilli()
	tests := []struct {
		m    clMessage
		kind clMsgKind
		want string
	}{
		{clMessage{ID: 5, From: 2, FromName: "bob", To: 1, Text: "hi", TS: ts}, clMsgLive,
			"message 2026-11-27 14:03 bob -> you: hi"},
		{clMessage{ID: 5, From: 2, FromName: "bob", To: 1, Text: "hi", TS: ts}, clMsgAway,
			"message (away) 2026-11-27 14:03 bob -> you: hi"},
		{clMessage{ID: 6, From: 2, FromName: "bob", Group: 3, Text: "all", TS: ts}, clMsgLive,
			"message 2026-11-27 14:03 bob -> #3 gophers: all"},
		{clMessage{ID: 6, From: 9, FromName: "zed", Group: 4, Text: "x", TS: ts}, clMsgLive,
			"message 2026-11-27 14:03 zed -> #4: x"},
		{clMessage{ID: 7, From: 1, FromName: "alice", To: 2, Text: "yo", TS: ts}, clMsgHistory,
			"history 2026-11-27 14:03 you -> bob: yo"},
		{clMessage{ID: 8, From: 2, FromName: "bob", To: 1, Text: "two\nlines\x1b[2J\ttab", TS: ts}, clMsgLive,
			`message 2026-11-27 14:03 bob -> you: two\nlines\x1b[2J\ttab`},
		{clMessage{ID: 9, From: 1, FromName: "alice", To: 8, Text: "?", TS: ts}, clMsgHistory,
			"history 2026-11-27 14:03 you -> user 8: ?"},
	}
	for _, tt := range tests {
		if got := clFmtMessage(n, &tt.m, tt.kind); got != tt.want {
			t.Errorf("got  %q\nwant %q", got, tt.want)
		}
	}
	if got := clFmtSent(n, &clMessage{ID: 5, From: 1, To: 2, Text: "hi", TS: ts}); got != "sent 2026-11-27 14:03 you -> bob: hi" {
		t.Errorf("sent: %q", got)
	}
	if got := clFmtSent(n, &clMessage{ID: 5, From: 1, Group: 3, Text: "hi", TS: ts}); got != "sent 2026-11-27 14:03 you -> #3 gophers: hi" {
		t.Errorf("sent: %q", got)
	}
}

func TestClientFormatReplies(t *testing.T) {
	yes, no := true, false
	friends := []clUser{{ID: 2, Name: "bob", Online: &yes}, {ID: 4, Name: "carol", Online: &no}}
	groups := []clGroup{{ID: 3, Name: "gophers", Members: []clMember{
		{ID: 1, Name: "alice", Role: "creator", Online: true}, {ID: 2, Name: "bob", Role: "member"}}}}
	tests := []struct{ got, want string }{
		{clFmtFriends(friends), "friends: bob (online), carol"},
		{clFmtFriends(nil), "friends: none"},
		{clFmtGroups(groups), "groups: #3 gophers [alice (online), bob]"},
		{clFmtGroups([]clGroup{}), "groups: none"},
		{clFmtWho([]clUser{{Name: "bob"}, {Name: "alice"}}, 2), "online (2): alice, bob"},
		{clFmtWho([]clUser{{Name: "bob"}}, 5), "online (5, showing 1): bob"},
		{clFmtWho(nil, 0), "online (0): nobody"},
		{strings.Join(clFmtLogin(&clUser{ID: 1, Name: "alice"}, friends, groups), " | "),
			"ok login alice (id 1): 2 friends, 1 group | friends: bob (online), carol | groups: #3 gophers [alice (online), bob]"},
		{strings.Join(clFmtLogin(&clUser{ID: 1, Name: "alice"}, []clUser{friends[0]}, nil), " | "),
			"ok login alice (id 1): 1 friend, 0 groups | friends: bob (online) | groups: none"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got  %q\nwant %q", tt.got, tt.want)
		}
	}
}

func TestClientFormatPush(t *testing.T) {
	n := clTestNames()
	yes, no := true, false
	tests := []struct {
		f    clFrame
		want string
	}{
		{clFrame{Type: "presence", User: &clUser{ID: 2, Name: "bob", Online: &yes}}, "presence bob online"},
		{clFrame{Type: "presence", User: &clUser{ID: 2, Name: "bob", Online: &no}}, "presence bob offline"},
		{clFrame{Type: "friend_added", Friend: &clUser{ID: 2, Name: "bob", Online: &yes}}, "friend bob (id 2) added you"},
		{clFrame{Type: "member_joined", Group: []byte("3"), User: &clUser{ID: 2, Name: "bob"}}, "member bob joined #3 gophers"},
		{clFrame{Type: "member_left", Group: []byte("3"), User: &clUser{ID: 2, Name: "bob"}}, "member bob left #3 gophers"},
		{clFrame{Type: "kicked", Reason: "logged in elsewhere"}, "kicked: you logged in somewhere else, so this session was closed (logged in elsewhere); not reconnecting (/login to take the session back)"},
		{clFrame{Type: "shutdown", Reason: "server shutting down"}, "shutdown: the server is shutting down (server shutting down); reconnecting"},
		{clFrame{Type: "shutdown"}, "shutdown: the server is shutting down; reconnecting"},
		{clFrame{Type: "weather"}, ""},
		{clFrame{Type: "presence"}, ""},
	}
	for _, tt := range tests {
		if got := clFmtPush(n, &tt.f); got != tt.want {
			t.Errorf("%s:\n got  %q\nwant %q", tt.f.Type, got, tt.want)
		}
	}
}

// Every error code of PROTOCOL.md has a sentence.
func TestClientErrorSentences(t *testing.T) {
	for code := range protoCodesForClient() {
		if clErrorSentences[code] == "" {
			t.Errorf("no sentence for %s", code)
		}
	}
	tests := []struct{ got, want string }{
		{clFmtError("login", "login", "bad_credentials", "x"), "error login: wrong name or password (bad_credentials)"},
		{clFmtError("msg", "chat", "bad_request", "x"), "error msg: the server refused the request as malformed (you cannot message yourself, and the text must not be empty) (bad_request)"},
		{clFmtError("msg", "chat", "new_code", "the\nreason"), `error msg: the server said: the\nreason (new_code)`},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got  %q\nwant %q", tt.got, tt.want)
		}
	}
}

// protoCodesForClient lists the error codes of errors.go, which mirror
// PROTOCOL.md's list.
func protoCodesForClient() map[string]bool {
	codes := map[string]bool{}
	for _, c := range []Code{CodeBadFrame, CodeFrameTooLarge, CodeUnknownType, CodeBadRequest, CodeNotLoggedIn,
		CodeBadCredentials, CodeNameTaken, CodeInvalidName, CodeInvalidPass, CodeNoSuchUser, CodeNoSuchGroup,
		CodeNotMember, CodeTooLong, CodeRateLimited, CodeUnavailable, CodeInternal} {
		codes[string(c)] = true
	}
	return codes
}

func TestClientDecodeFrame(t *testing.T) {
	f, err := clDecodeFrame([]byte(`{"type":"join_group","rid":7,"ok":true,"group":{"id":2,"name":"g","desc":"","members":[]},"extra":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if rid, ok := f.rid(); !ok || rid != 7 || f.groupObj() == nil || f.groupObj().ID != 2 {
		t.Errorf("reply: %+v", f)
	}
	f, _ = clDecodeFrame([]byte(`{"type":"member_joined","group":2,"user":{"id":3,"name":"c","online":true}}`))
	if _, ok := f.rid(); ok || f.groupID() != 2 || f.groupObj() != nil {
		t.Errorf("push: %+v", f)
	}
	f, _ = clDecodeFrame([]byte(`{"type":"ping","rid":"x","ok":true}`))
	if _, ok := f.rid(); ok {
		t.Errorf("a string rid is not ours: %+v", f)
	}
}
