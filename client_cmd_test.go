package main

import (
	"strings"
	"testing"
)

func TestClientParseLine(t *testing.T) {
	user := func(name string) clRef { return clRef{Name: name} }
	uid := func(id int64) clRef { return clRef{ID: id} }
	gid := func(id int64) clRef { return clRef{ID: id, Group: true} }
	gname := func(name string) clRef { return clRef{Name: name, Group: true} }
	tests := []struct {
		line string
		want clCmd
		hint string // a usage error containing this, instead of want
	}{
		{line: "", want: clCmd{Kind: clCmdEmpty}},
		{line: "   \r", want: clCmd{Kind: clCmdEmpty}},
		{line: "/help", want: clCmd{Kind: clCmdHelp}},
		{line: "/register alice", want: clCmd{Kind: clCmdRegister, Name: "alice"}},
		{line: "/register alice wonder land", want: clCmd{Kind: clCmdRegister, Name: "alice", Password: "wonder land"}},
		{line: "/register", hint: "usage: /register NAME [PASSWORD]"},
		{line: "/login alice", want: clCmd{Kind: clCmdLogin, Target: user("alice")}},
		{line: "/login alice s3cret!\r", want: clCmd{Kind: clCmdLogin, Target: user("alice"), Password: "s3cret!"}},
		{line: "/login 12 pw", want: clCmd{Kind: clCmdLogin, Target: uid(12), Password: "pw"}},
		{line: "/login @12 pw", want: clCmd{Kind: clCmdLogin, Target: user("12"), Password: "pw"}},
		{line: "/login", hint: "usage: /login NAME|ID [PASSWORD]"},
		{line: "/login 0 pw", hint: "usage: /login"},
		{line: "/logout", want: clCmd{Kind: clCmdLogout}},
		{line: "/logout now", hint: "takes no arguments"},
		{line: "/quit", want: clCmd{Kind: clCmdQuit}},
		{line: "/msg bob hi  there ", want: clCmd{Kind: clCmdMsg, Target: user("bob"), Text: "hi  there"}},
		{line: "/msg 7 hi", want: clCmd{Kind: clCmdMsg, Target: uid(7), Text: "hi"}},
		{line: "/msg bob", hint: "usage: /msg USER TEXT"},
		{line: "/msg #3 hi", hint: "usage: /msg USER TEXT"},
		{line: "/open bob", want: clCmd{Kind: clCmdOpen, Target: user("bob")}},
		{line: "/open #3", want: clCmd{Kind: clCmdOpen, Target: gid(3)}},
		{line: "/open #gophers", want: clCmd{Kind: clCmdOpen, Target: gname("gophers")}},
		{line: "/open", hint: "usage: /open USER"},
		{line: "/open bob carol", hint: "usage: /open USER"},
		{line: "/close", want: clCmd{Kind: clCmdClose}},
		{line: "/friends", want: clCmd{Kind: clCmdFriends}},
		{line: "/add carol", want: clCmd{Kind: clCmdAdd, Target: user("carol")}},
		{line: "/add 4", want: clCmd{Kind: clCmdAdd, Target: uid(4)}},
		{line: "/add", hint: "usage: /add USER"},
		{line: "/who", want: clCmd{Kind: clCmdWho}},
		{line: "/groups", want: clCmd{Kind: clCmdGroups}},
		{line: "/create gophers all things Go", want: clCmd{Kind: clCmdCreate, Name: "gophers", Desc: "all things Go"}},
		{line: "/create gophers", want: clCmd{Kind: clCmdCreate, Name: "gophers"}},
		{line: "/create", hint: "usage: /create NAME [DESC]"},
		{line: "/join 3", want: clCmd{Kind: clCmdJoin, Target: gid(3)}},
		{line: "/join #3", want: clCmd{Kind: clCmdJoin, Target: gid(3)}},
		{line: "/join gophers", hint: "usage: /join ID"},
		{line: "/leave 3", want: clCmd{Kind: clCmdLeave, Target: gid(3)}},
		{line: "/leave #gophers", want: clCmd{Kind: clCmdLeave, Target: gname("gophers")}},
		{line: "/g 3 hello all", want: clCmd{Kind: clCmdGroupMsg, Target: gid(3), Text: "hello all"}},
		{line: "/g 3", hint: "usage: /g ID TEXT"},
		{line: "/history bob", want: clCmd{Kind: clCmdHistory, Target: user("bob")}},
		{line: "/history #3 5", want: clCmd{Kind: clCmdHistory, Target: gid(3), N: 5}},
		{line: "/history 2 200", want: clCmd{Kind: clCmdHistory, Target: uid(2), N: 200}},
		{line: "/history bob 0", hint: "N is 1-200"},
		{line: "/history bob lots", hint: "N is 1-200"},
		{line: "/history", hint: "usage: /history"},
		{line: "/fly", hint: "unknown command /fly: /help lists the commands"},
		{line: "/", hint: "/help lists them"},
		{line: "hello there", want: clCmd{Kind: clCmdSay, Text: "hello there"}},
		{line: "  indented", want: clCmd{Kind: clCmdSay, Text: "  indented"}},
		// the seed project's commands
		{line: "help", want: clCmd{Kind: clCmdHelp}},
		{line: "loginout", want: clCmd{Kind: clCmdLogout}},
		{line: "chat:2:hi: there", want: clCmd{Kind: clCmdMsg, Target: uid(2), Text: "hi: there"}},
		{line: "chat:bob:hi", want: clCmd{Kind: clCmdMsg, Target: user("bob"), Text: "hi"}},
		{line: "chat:2", hint: "usage: chat:ID:TEXT"},
		{line: "chat::hi", hint: "usage: chat:ID:TEXT"},
		{line: "chat me later", want: clCmd{Kind: clCmdSay, Text: "chat me later"}},
		{line: "addfriend:2", want: clCmd{Kind: clCmdAdd, Target: uid(2)}},
		{line: "addfriend:", hint: "usage: addfriend:ID"},
		{line: "creategroup:gophers:all things Go", want: clCmd{Kind: clCmdCreate, Name: "gophers", Desc: "all things Go"}},
		{line: "creategroup:gophers", want: clCmd{Kind: clCmdCreate, Name: "gophers"}},
		{line: "creategroup::x", hint: "usage: creategroup:NAME:DESC"},
		{line: "addgroup:3", want: clCmd{Kind: clCmdJoin, Target: gid(3)}},
		{line: "addgroup:x", hint: "usage: addgroup:ID"},
		{line: "groupchat:3:hi all", want: clCmd{Kind: clCmdGroupMsg, Target: gid(3), Text: "hi all"}},
		{line: "groupchat:3", hint: "usage: groupchat:ID:TEXT"},
		{line: "help:me", hint: "usage: help"},
	}
	for _, tt := range tests {
		got, err := clParseLine(tt.line)
		if tt.hint != "" {
			ue, ok := err.(*clUsageError)
			if !ok || !strings.Contains(ue.hint, tt.hint) {
				t.Errorf("%q: want a usage error with %q, got %+v, %v", tt.line, tt.hint, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q:\n got %+v, %v\nwant %+v", tt.line, got, err, tt.want)
		}
	}
}

// Every command of /help parses in its documented form.
func TestClientHelpCoversCommands(t *testing.T) {
	kinds := map[clCmdKind]bool{}
	for _, h := range clCommandHelp {
		line := strings.NewReplacer("NAME|ID", "alice", "USER|#ID", "bob", "USER", "bob", "#GROUP", "#3",
			"NAME", "gophers", "ID", "3", "TEXT", "hi", "[PASSWORD]", "pw", "[DESC]", "d", "[N]", "5").Replace(h.usage)
		cmd, err := clParseLine(line)
		if err != nil {
			t.Errorf("%s (as %q): %v", h.usage, line, err)
		}
		kinds[cmd.Kind] = true
	}
	for k := clCmdHelp; k <= clCmdHistory; k++ {
		if k != clCmdSay && !kinds[k] {
			t.Errorf("/help does not list %v", k)
		}
	}
}

func TestClientParseArgs(t *testing.T) {
	tests := []struct {
		args []string
		want string
		err  bool
	}{
		{nil, "127.0.0.1:6000", false},
		{[]string{"10.0.0.1:7000"}, "10.0.0.1:7000", false},
		{[]string{":7000"}, "127.0.0.1:7000", false},
		{[]string{"127.0.0.1", "8000"}, "127.0.0.1:8000", false},
		{[]string{"[::1]:6000"}, "[::1]:6000", false},
		{[]string{"localhost"}, "", true},
		{[]string{"a", "b", "c"}, "", true},
		{[]string{"-x"}, "", true},
	}
	for _, tt := range tests {
		got, err := clParseArgs(tt.args)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("%q: got %q, %v", tt.args, got, err)
		}
	}
	if _, err := clParseArgs([]string{"-h"}); err != errClHelp {
		t.Errorf("-h: %v", err)
	}
}

func TestClientHistoryKeepsNoPasswords(t *testing.T) {
	h := &clHistory{}
	h.Add("/login alice s3cret")
	h.Add("/register bob builder")
	h.Add("/msg bob hi")
	want := []string{"/msg bob hi", "/register bob", "/login alice"}
	for i, w := range want {
		if got := h.At(i); got != w {
			t.Errorf("At(%d) = %q, want %q", i, got, w)
		}
	}
	for i := 0; i < 2*clHistoryLines; i++ {
		h.Add("x")
	}
	if h.Len() != clHistoryLines {
		t.Errorf("Len = %d", h.Len())
	}
}

func TestClientSeen(t *testing.T) {
	var s clSeen
	if !s.add(1) || s.add(1) {
		t.Fatal("add(1) twice")
	}
	for i := int64(2); i <= clSeenMax+1; i++ {
		s.add(i)
	}
	if len(s.ids) != clSeenMax {
		t.Errorf("%d ids kept, want %d", len(s.ids), clSeenMax)
	}
	if !s.add(1) { // forgotten: the oldest go first
		t.Error("id 1 still remembered")
	}
	if s.add(clSeenMax) {
		t.Error("a recent id forgotten")
	}
}
