package client

import (
	"strings"
	"testing"
)

// cmdName names a parsed command for the tests: its table name, "say" for
// a plain line, "" for a blank line.
func cmdName(cmd *command) string {
	switch cmd {
	case nil:
		return ""
	case say:
		return "say"
	}
	return cmd.name
}

func TestParseLine(t *testing.T) {
	user := func(name string) ref { return ref{Name: name} }
	uid := func(id int64) ref { return ref{ID: id} }
	gid := func(id int64) ref { return ref{ID: id, Group: true} }
	gname := func(name string) ref { return ref{Name: name, Group: true} }
	tests := []struct {
		line string
		cmd  string // the command's name, "say", or "" (a blank line)
		want args
		hint string // a usage error containing this, instead of cmd and want
	}{
		{line: ""},
		{line: "   \r"},
		{line: "/help", cmd: "help"},
		{line: "/help me please", cmd: "help"},
		{line: "/h", cmd: "help"},
		{line: "/?", cmd: "help"},
		{line: "/register alice", cmd: "register", want: args{Name: "alice"}},
		{line: "/register alice wonder land", cmd: "register", want: args{Name: "alice", Password: "wonder land"}},
		{line: "/register", hint: "usage: /register NAME [PASSWORD]"},
		{line: "/login alice", cmd: "login", want: args{Target: user("alice")}},
		{line: "/login alice s3cret!\r", cmd: "login", want: args{Target: user("alice"), Password: "s3cret!"}},
		{line: "/login 12 pw", cmd: "login", want: args{Target: uid(12), Password: "pw"}},
		{line: "/login @12 pw", cmd: "login", want: args{Target: user("12"), Password: "pw"}},
		{line: "/login", hint: "usage: /login NAME|ID [PASSWORD]"},
		{line: "/login 0 pw", hint: "usage: /login"},
		{line: "/logout", cmd: "logout"},
		{line: "/logout now", hint: "usage: /logout takes no arguments"},
		{line: "/quit", cmd: "quit"},
		{line: "/exit", cmd: "quit"},
		{line: "/exit now", hint: "usage: /exit takes no arguments"},
		{line: "/msg bob hi  there ", cmd: "msg", want: args{Target: user("bob"), Text: "hi  there"}},
		{line: "/msg 7 hi", cmd: "msg", want: args{Target: uid(7), Text: "hi"}},
		{line: "/msg bob", hint: "usage: /msg USER TEXT"},
		{line: "/msg #3 hi", hint: "usage: /msg USER TEXT"},
		{line: "/open bob", cmd: "open", want: args{Target: user("bob")}},
		{line: "/open #3", cmd: "open", want: args{Target: gid(3)}},
		{line: "/open #gophers", cmd: "open", want: args{Target: gname("gophers")}},
		{line: "/open", hint: "usage: /open USER"},
		{line: "/open bob carol", hint: "usage: /open USER"},
		{line: "/close", cmd: "close"},
		{line: "/friends", cmd: "friends"},
		{line: "/add carol", cmd: "add", want: args{Target: user("carol")}},
		{line: "/add 4", cmd: "add", want: args{Target: uid(4)}},
		{line: "/add", hint: "usage: /add USER"},
		{line: "/add carol dave", hint: "usage: /add USER"},
		{line: "/who", cmd: "who"},
		{line: "/online", cmd: "who"},
		{line: "/groups", cmd: "groups"},
		{line: "/create gophers all things Go", cmd: "create", want: args{Name: "gophers", Desc: "all things Go"}},
		{line: "/create gophers", cmd: "create", want: args{Name: "gophers"}},
		{line: "/create", hint: "usage: /create NAME [DESC]"},
		{line: "/join 3", cmd: "join", want: args{Target: gid(3)}},
		{line: "/join #3", cmd: "join", want: args{Target: gid(3)}},
		{line: "/join gophers", hint: "usage: /join ID"},
		{line: "/leave 3", cmd: "leave", want: args{Target: gid(3)}},
		{line: "/leave #gophers", cmd: "leave", want: args{Target: gname("gophers")}},
		{line: "/g 3 hello all", cmd: "g", want: args{Target: gid(3), Text: "hello all"}},
		{line: "/g #gophers hello", cmd: "g", want: args{Target: gname("gophers"), Text: "hello"}},
		{line: "/g 3", hint: "usage: /g ID TEXT"},
		{line: "/history bob", cmd: "history", want: args{Target: user("bob")}},
		{line: "/history #3 5", cmd: "history", want: args{Target: gid(3), N: 5}},
		{line: "/history 2 200", cmd: "history", want: args{Target: uid(2), N: 200}},
		{line: "/history bob 0", hint: "usage: /history USER|#ID [N] (N is 1-200)"},
		{line: "/history bob 201", hint: "N is 1-200"},
		{line: "/history bob lots", hint: "N is 1-200"},
		{line: "/history bob 5 6", hint: "N is 1-200"},
		{line: "/history", hint: "usage: /history"},
		{line: "/fly", hint: "unknown command /fly: /help lists the commands"},
		{line: "/", hint: "/help lists them"},
		{line: "hello there", cmd: "say", want: args{Text: "hello there"}},
		{line: "  indented", cmd: "say", want: args{Text: "  indented"}},
		// the seed project's commands
		{line: "help", cmd: "help"},
		{line: "help:", cmd: "help"},
		{line: "loginout", cmd: "logout"},
		{line: "chat:2:hi: there", cmd: "msg", want: args{Target: uid(2), Text: "hi: there"}},
		{line: "chat: 2 : hi", cmd: "msg", want: args{Target: uid(2), Text: " hi"}},
		{line: "chat:bob:hi", cmd: "msg", want: args{Target: user("bob"), Text: "hi"}},
		{line: "chat:2", hint: "usage: chat:ID:TEXT"},
		{line: "chat::hi", hint: "usage: chat:ID:TEXT"},
		{line: "chat me later", cmd: "say", want: args{Text: "chat me later"}},
		{line: "chat", cmd: "say", want: args{Text: "chat"}},
		{line: "addfriend:2", cmd: "add", want: args{Target: uid(2)}},
		{line: "addfriend:", hint: "usage: addfriend:ID"},
		{line: "creategroup:gophers:all things Go", cmd: "create", want: args{Name: "gophers", Desc: "all things Go"}},
		{line: "creategroup:gophers", cmd: "create", want: args{Name: "gophers"}},
		{line: "creategroup::x", hint: "usage: creategroup:NAME:DESC"},
		{line: "addgroup:3", cmd: "join", want: args{Target: gid(3)}},
		{line: "addgroup:x", hint: "usage: addgroup:ID"},
		{line: "groupchat:3:hi all", cmd: "g", want: args{Target: gid(3), Text: "hi all"}},
		{line: "groupchat:#gophers:hi", hint: "usage: groupchat:ID:TEXT"}, // seed forms take group ids only
		{line: "groupchat:3", hint: "usage: groupchat:ID:TEXT"},
		{line: "help:me", hint: "usage: help"},
		{line: "loginout:now", hint: "usage: loginout"},
	}
	for _, tt := range tests {
		cmd, got, err := parseLine(tt.line)
		if tt.hint != "" {
			ue, ok := err.(*usageError)
			if !ok || !strings.Contains(ue.hint, tt.hint) {
				t.Errorf("%q: want a usage error with %q, got %q %+v, %v", tt.line, tt.hint, cmdName(cmd), got, err)
			}
			continue
		}
		if err != nil || cmdName(cmd) != tt.cmd || got != tt.want {
			t.Errorf("%q:\n got %q %+v, %v\nwant %q %+v", tt.line, cmdName(cmd), got, err, tt.cmd, tt.want)
		}
	}
}

// Every form /help shows parses back to its own table entry: the usage
// lines, with their placeholders filled in, and the seed forms.
func TestHelpCoversCommands(t *testing.T) {
	fill := strings.NewReplacer("NAME|ID", "alice", "USER|#ID", "bob", "USER", "bob", "#GROUP", "#3",
		"NAME", "gophers", "ID", "3", "TEXT", "hi", "[PASSWORD]", "pw", "[DESC]", "d", "DESC", "d", "[N]", "5")
	help := strings.Join(helpLines(), "\n")
	for _, cmd := range commands {
		if len(cmd.usage) == 0 || cmd.run == nil {
			t.Errorf("/%s: no usage or no function in the table", cmd.name)
			continue
		}
		forms := []string{}
		for _, u := range cmd.usage {
			forms = append(forms, u.form)
		}
		if cmd.seed != "" {
			forms = append(forms, cmd.seed)
		}
		for _, form := range forms {
			if !strings.Contains(help, "  "+form+" ") {
				t.Errorf("/help does not show %q", form)
			}
			line := fill.Replace(form)
			got, _, err := parseLine(line)
			if err != nil || got != cmd {
				t.Errorf("%s (as %q): parsed as %q, %v", form, line, cmdName(got), err)
			}
		}
	}
	if !strings.HasPrefix(help, "commands:\n") {
		t.Errorf("/help starts with %q", help[:min(len(help), 20)])
	}
}
