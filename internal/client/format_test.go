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
	n.addGroup(&wire.Group{ID: 3, Name: "gophers"})
	return n
}

func TestFormatMessage(t *testing.T) {
	n := testNames()
	ts := time.Date(2026, 11, 27, 14, 3, 0, 0, time.UTC).UnixMilli()
	msg := func(m wire.Message, kind msgKind) string { return fmtMessage(n, &m, kind) }
	sent := func(m wire.Message) string { return fmtSent(n, &m) }
	tests := []struct{ got, want string }{
		{msg(wire.Message{ID: 5, From: 2, FromName: "bob", To: 1, Text: "hi", TS: ts}, msgLive),
			"message 2026-11-27 14:03 bob -> you: hi"},
		{msg(wire.Message{ID: 5, From: 2, FromName: "bob", To: 1, Text: "hi", TS: ts}, msgAway),
			"message (away) 2026-11-27 14:03 bob -> you: hi"},
		{msg(wire.Message{ID: 6, From: 2, FromName: "bob", Group: 3, Text: "all", TS: ts}, msgLive),
			"message 2026-11-27 14:03 bob -> #3 gophers: all"},
		{msg(wire.Message{ID: 6, From: 9, FromName: "zed", Group: 4, Text: "x", TS: ts}, msgLive),
			"message 2026-11-27 14:03 zed -> #4: x"},
		{msg(wire.Message{ID: 7, From: 1, FromName: "alice", To: 2, Text: "yo", TS: ts}, msgHistory),
			"history 2026-11-27 14:03 you -> bob: yo"},
		// A text over several lines: each further line under the first,
		// after "  | "; tabs kept; other control characters escaped.
		{msg(wire.Message{ID: 8, From: 2, FromName: "bob", To: 1, Text: "two\nlines\x1b[2J\ttab", TS: ts}, msgLive),
			"message 2026-11-27 14:03 bob -> you: two\n  | lines\\x1b[2J\ttab"},
		{msg(wire.Message{ID: 8, From: 2, FromName: "bob", To: 1, Text: "a\r\n\nb\rc\n", TS: ts}, msgAway),
			"message (away) 2026-11-27 14:03 bob -> you: a\n  | \n  | b\\rc\n  | "},
		{msg(wire.Message{ID: 8, From: 2, FromName: "bob\n\x1b", To: 1, Text: "\u009b31m\x7f\xff", TS: ts}, msgLive),
			"message 2026-11-27 14:03 bob\\n\\x1b -> you: \\x9b31m\\x7f\ufffd"},
		{msg(wire.Message{ID: 9, From: 1, FromName: "alice", To: 8, Text: "?", TS: ts}, msgHistory),
			"history 2026-11-27 14:03 you -> user 8: ?"},
		// The reply to one's own message.
		{sent(wire.Message{ID: 5, From: 1, To: 2, Text: "hi", TS: ts}), "sent 2026-11-27 14:03 you -> bob: hi"},
		{sent(wire.Message{ID: 5, From: 1, Group: 3, Text: "hi", TS: ts}), "sent 2026-11-27 14:03 you -> #3 gophers: hi"},
		{sent(wire.Message{ID: 5, From: 1, To: 2, Text: "hi\nthere", TS: ts}), "sent 2026-11-27 14:03 you -> bob: hi\n  | there"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got  %q\nwant %q", tt.got, tt.want)
		}
	}
}

func TestFormatReplies(t *testing.T) {
	friends := []wire.User{{ID: 2, Name: "bob", Online: wire.Bool(true)}, {ID: 4, Name: "carol", Online: wire.Bool(false)}}
	groups := []wire.Group{{ID: 3, Name: "gophers", Members: []wire.Member{
		{ID: 1, Name: "alice", Role: wire.RoleCreator, Online: true}, {ID: 2, Name: "bob", Role: wire.RoleMember}}}}
	tests := []struct{ got, want string }{
		{fmtFriends(friends), "friends: bob (online), carol"},
		{fmtFriends(nil), "friends: none"},
		{fmtGroups(groups), "groups: #3 gophers [alice (online), bob]"},
		{fmtGroups([]wire.Group{}), "groups: none"},
		{fmtWho([]wire.User{{Name: "bob"}, {Name: "alice"}}, 2), "online (2): alice, bob"},
		{fmtWho([]wire.User{{Name: "bob"}}, 5), "online (5, showing 1): bob"},
		{fmtWho(nil, 0), "online (0): nobody"},
		{strings.Join(fmtLogin(&wire.User{ID: 1, Name: "alice"}, friends, groups), " | "),
			"ok login alice (id 1): 2 friends, 1 group | friends: bob (online), carol | groups: #3 gophers [alice (online), bob]"},
		{strings.Join(fmtLogin(&wire.User{ID: 1, Name: "alice"}, []wire.User{friends[0]}, nil), " | "),
			"ok login alice (id 1): 1 friend, 0 groups | friends: bob (online) | groups: none"},
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
	}
	for _, tt := range tests {
		if got := fmtPush(n, &tt.f); got != tt.want {
			t.Errorf("%s:\n got  %q\nwant %q", tt.f.Type, got, tt.want)
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
