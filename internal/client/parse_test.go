package client

import (
	"regexp"
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
		{line: "/logout now", hint: "usage: /logout"},
		{line: "/logout all", cmd: "logout", want: args{All: true}},
		{line: "/logout all now", hint: "usage: /logout"},
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
		{line: "/create -private inner just us", cmd: "create", want: args{Private: true, Name: "inner", Desc: "just us"}},
		{line: "/create -private inner", cmd: "create", want: args{Private: true, Name: "inner"}},
		{line: "/create private things", cmd: "create", want: args{Name: "private", Desc: "things"}}, // only -private is the option
		{line: "/create -private", hint: "usage: /create NAME [DESC]"},
		// version 2: messages
		{line: "/edit 981 new text", cmd: "edit", want: args{MsgID: 981, Text: "new text"}},
		{line: "/edit [981] two\nlines", cmd: "edit", want: args{MsgID: 981, Text: "two\nlines"}},
		{line: "/edit #981 x", cmd: "edit", want: args{MsgID: 981, Text: "x"}},
		{line: "/edit 981", hint: "usage: /edit ID TEXT"},
		{line: "/edit bob hi", hint: "usage: /edit ID TEXT"},
		{line: "/del 981", cmd: "del", want: args{MsgID: 981}},
		{line: "/delete [981]", cmd: "del", want: args{MsgID: 981}},
		{line: "/del", hint: "usage: /del ID"},
		{line: "/del 0", hint: "usage: /del ID"},
		{line: "/del 1 2", hint: "usage: /del ID"},
		{line: "/convs", cmd: "convs"},
		{line: "/convs all", hint: "usage: /convs takes no arguments"},
		// version 2: people
		{line: "/requests", cmd: "requests"},
		{line: "/accept carol", cmd: "accept", want: args{Target: user("carol")}},
		{line: "/accept 4", cmd: "accept", want: args{Target: uid(4)}},
		{line: "/accept", hint: "usage: /accept USER"},
		{line: "/decline @12", cmd: "decline", want: args{Target: user("12")}},
		{line: "/unfriend bob", cmd: "unfriend", want: args{Target: user("bob")}},
		{line: "/unfriend bob carol", hint: "usage: /unfriend USER"},
		{line: "/block 7", cmd: "block", want: args{Target: uid(7)}},
		{line: "/block #3", hint: "usage: /block USER"},
		{line: "/unblock dave", cmd: "unblock", want: args{Target: user("dave")}},
		{line: "/blocks", cmd: "blocks"},
		// version 2: groups
		{line: "/findgroups", cmd: "findgroups"},
		{line: "/findgroups  go pher ", cmd: "findgroups", want: args{Query: "go pher"}},
		{line: "/invite #3 carol", cmd: "invite", want: args{Target: gid(3), Who: user("carol")}},
		{line: "/invite #gophers 4", cmd: "invite", want: args{Target: gname("gophers"), Who: uid(4)}},
		{line: "/invite 3", hint: "usage: /invite GROUP USER"},
		{line: "/kick 3 carol", cmd: "kick", want: args{Target: gid(3), Who: user("carol")}},
		{line: "/kick 3 carol dave", hint: "usage: /kick GROUP USER"},
		{line: "/role 3 bob admin", cmd: "role", want: args{Target: gid(3), Who: user("bob"), Role: "admin"}},
		{line: "/role #gophers 2 member", cmd: "role", want: args{Target: gname("gophers"), Who: uid(2), Role: "member"}},
		{line: "/role 3 bob creator", hint: "usage: /role GROUP USER admin|member"},
		{line: "/role 3 bob", hint: "usage: /role GROUP USER admin|member"},
		{line: "/setgroup 3 name gophers2", cmd: "setgroup", want: args{Target: gid(3), Key: "name", Value: "gophers2"}},
		{line: "/setgroup 3 name two words", hint: "usage: /setgroup GROUP name NAME"},
		{line: "/setgroup 3 name", hint: "usage: /setgroup GROUP name NAME"},
		{line: "/setgroup #gophers desc all  things Go", cmd: "setgroup", want: args{Target: gname("gophers"), Key: "desc", Value: "all  things Go"}},
		{line: "/setgroup 3 desc", cmd: "setgroup", want: args{Target: gid(3), Key: "desc"}},
		{line: "/setgroup 3 private", cmd: "setgroup", want: args{Target: gid(3), Key: "private"}},
		{line: "/setgroup 3 public", cmd: "setgroup", want: args{Target: gid(3), Key: "public"}},
		{line: "/setgroup 3 public now", hint: "usage: /setgroup"},
		{line: "/setgroup 3 colour red", hint: "usage: /setgroup"},
		{line: "/setgroup 3", hint: "usage: /setgroup"},
		{line: "/delgroup #3", cmd: "delgroup", want: args{Target: gid(3)}},
		{line: "/delgroup", hint: "usage: /delgroup GROUP"},
		// version 2: the account
		{line: "/sessions", cmd: "sessions"},
		{line: "/passwd", cmd: "passwd"},
		{line: "/passwd old1pw new pass word", cmd: "passwd", want: args{Password: "old1pw", New: "new pass word"}},
		{line: "/passwd onlyone", hint: "usage: /passwd [OLD NEW]"},
		{line: "/delete-account", cmd: "delete-account"},
		{line: "/delete-account my pass word", cmd: "delete-account", want: args{Password: "my pass word"}},
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
		{line: "/history bob 0", hint: "usage: /history USER|#ID [N] [after|before ID] (N is 1-200)"},
		{line: "/history bob after 981", cmd: "history", want: args{Target: user("bob"), After: 981}},
		{line: "/history #3 5 after [981]", cmd: "history", want: args{Target: gid(3), N: 5, After: 981}},
		{line: "/history bob 10 before 981", cmd: "history", want: args{Target: user("bob"), N: 10, Before: 981}},
		{line: "/history bob after", hint: "usage: /history"},
		{line: "/history bob after 0", hint: "usage: /history"},
		{line: "/history bob after x", hint: "usage: /history"},
		{line: "/history bob since 5", hint: "usage: /history"},
		{line: "/history bob after 5 6", hint: "usage: /history"},
		{line: "/history bob 201", hint: "N is 1-200"},
		{line: "/history bob lots", hint: "N is 1-200"},
		{line: "/history bob 5 6", hint: "N is 1-200"},
		{line: "/history", hint: "usage: /history"},
		{line: "/fly", hint: "unknown command /fly: /help lists the commands"},
		{line: "/", hint: "/help lists them"},
		{line: "hello there", cmd: "say", want: args{Text: "hello there"}},
		// messages over several lines, as the joiner hands them over
		{line: "/msg bob first\nsecond", cmd: "msg", want: args{Target: user("bob"), Text: "first\nsecond"}},
		{line: "/msg bob\nfirst\n\tsecond\n", cmd: "msg", want: args{Target: user("bob"), Text: "first\n\tsecond"}},
		{line: "/g 3 \n\nhi\n\n", cmd: "g", want: args{Target: gid(3), Text: "hi"}},
		{line: "/msg bob\n", hint: "usage: /msg USER TEXT"},
		{line: "first\n  second\n", cmd: "say", want: args{Text: "first\n  second"}},
		{line: "\n\n", cmd: ""},
		{line: "chat:2:a\nb", cmd: "msg", want: args{Target: uid(2), Text: "a\nb"}},
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
	fill := strings.NewReplacer("NAME|ID", "alice", "USER|#ID", "bob", "USER", "bob", "#GROUP", "#3", "GROUP", "#3",
		"NAME", "gophers", "ID", "3", "TEXT", "hi", "[PASSWORD]", "pw", "[DESC]", "d", "DESC", "d", "[N]", "5",
		"admin|member", "admin", "[QUERY]", "go", "[OLD NEW]", "old1 new2")
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
		for _, alias := range cmd.aliases {
			if !regexp.MustCompile(`/` + regexp.QuoteMeta(alias) + `[,)]`).MatchString(help) {
				t.Errorf("/help does not show /%s, an alias of /%s", alias, cmd.name)
			}
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

// A message line ending in a backslash goes on on the next line; other
// lines are taken as they are.
func TestJoiner(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  []string // the whole lines handed over, in order
	}{
		{"one line", []string{"hello"}, []string{"hello"}},
		{"two lines", []string{`hello\`, "world"}, []string{"hello\nworld"}},
		{"CRLF", []string{"hello\\\r", "world\r"}, []string{"hello\nworld"}},
		{"three, a blank one inside", []string{`/msg bob a\`, `\`, "c"}, []string{"/msg bob a\n\nc"}},
		{"the target on the first line", []string{`/msg bob\`, "hi"}, []string{"/msg bob\nhi"}},
		{"a continuation line is text", []string{`/g 3 look\`, "/quit"}, []string{"/g 3 look\n/quit"}},
		{"the seed forms", []string{`chat:2:a\`, "b", `groupchat:3:c\`, "d"}, []string{"chat:2:a\nb", "groupchat:3:c\nd"}},
		{"two backslashes: one, and the end", []string{`C:\\`, "next"}, []string{`C:\`, "next"}},
		{"three backslashes", []string{`a\\\`, "next"}, []string{`a\\`, "next"}},
		{"a backslash inside", []string{`a\b`}, []string{`a\b`}},
		{"not a message: a password", []string{`/login bob pass\`, "next"}, []string{`/login bob pass\`, "next"}},
		{"not a message: a description", []string{`/create g a\`, "next"}, []string{`/create g a\`, "next"}},
		{"not a message: an unknown command", []string{`/fly\`, "next"}, []string{`/fly\`, "next"}},
		{"not a message: a seed command", []string{`addfriend:2\`, "next"}, []string{`addfriend:2\`, "next"}},
		{"a blank line", []string{"", "x"}, []string{"", "x"}},
	}
	for _, tt := range tests {
		var j joiner
		var got []string
		for _, l := range tt.lines {
			if whole, cut, done := j.add(l, false); done {
				if cut {
					t.Errorf("%s: %q cut", tt.name, whole)
				}
				got = append(got, whole)
			}
		}
		if j.pending() {
			t.Errorf("%s: still pending", tt.name)
		}
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}

	// A cut line refuses the whole message it is part of, and ends it.
	var j joiner
	if _, _, done := j.add(`first\`, false); done || !j.pending() {
		t.Fatal("first line: not pending")
	}
	if whole, cut, done := j.add("xxxx", true); !done || !cut || whole != "first\nxxxx" {
		t.Errorf("cut line: %q %v %v", whole, cut, done)
	}
	if whole, cut, done := j.add("/help", false); !done || cut || whole != "/help" {
		t.Errorf("after: %q %v %v", whole, cut, done)
	}
	// A message growing past maxInputLine is refused whole.
	line := strings.Repeat("x", maxInputLine/2) + `\`
	for i := 0; i < 3; i++ {
		if _, _, done := j.add(line, false); done {
			t.Fatalf("line %d: done", i)
		}
	}
	if whole, cut, done := j.add("end", false); !done || !cut || len(whole) > maxInputLine {
		t.Errorf("too long: %d bytes, cut %v, done %v", len(whole), cut, done)
	}
	// The end of input sends what was gathered.
	j.add(`last\`, false)
	if whole, cut, _ := j.end(); whole != "last" || cut || j.pending() {
		t.Errorf("end: %q %v", whole, cut)
	}
}

// In plain mode a line of any length is read: up to maxInputLine whole,
// past it refused whole (with the command named), and reading goes on.
func TestReadPlain(t *testing.T) {
	long := strings.Repeat("y", 100<<10)
	tooLong := strings.Repeat("z", 2*maxInputLine)
	in := "/msg bob " + long + "\n" + "/msg bob " + tooLong + "\n/help\n" + `/g 3 a\` + "\n" + tooLong + "\n" + `last\` + "\nline"
	inputs := make(chan input, 10)
	readPlain(strings.NewReader(in), inputs, make(chan struct{}))
	close(inputs)
	var got []input
	for in := range inputs {
		got = append(got, in)
	}
	if len(got) != 6 {
		t.Fatalf("%d inputs, want 6", len(got))
	}
	if got[0].err != nil || cmdName(got[0].cmd) != "msg" || got[0].args.Text != long {
		t.Errorf("100 KiB line: %q, %d bytes of text, %v", cmdName(got[0].cmd), len(got[0].args.Text), got[0].err)
	}
	for _, i := range []int{1, 3} {
		ue, ok := got[i].err.(*usageError)
		want := []string{"", "msg", "", "g"}[i]
		if !ok || ue.cmd != want || ue.hint != "too long: the line is longer than 1048576 bytes; nothing was sent" {
			t.Errorf("input %d: %#v", i, got[i].err)
		}
	}
	if cmdName(got[2].cmd) != "help" {
		t.Errorf("after the long line: %q %v", cmdName(got[2].cmd), got[2].err)
	}
	if cmdName(got[4].cmd) != "say" || got[4].args.Text != "last\nline" {
		t.Errorf("last message: %q %+v", cmdName(got[4].cmd), got[4].args)
	}
	if !got[5].eof {
		t.Errorf("no end of input")
	}
}
