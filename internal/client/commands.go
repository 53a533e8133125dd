package client

import (
	"fmt"
	"strings"

	"chat/internal/wire"
)

// The command table: one entry per slash command, with everything about
// it: its names, its arguments (which drive the parser, parse.go), /help's
// lines, the seed project's form, whether it needs a login, and the
// function that runs it. The functions run on the core goroutine; each
// turns the command into requests and their replies into output lines.

// command is one entry of the command table.
type command struct {
	name    string    // "msg": /msg, and the word of its error lines ("error msg: ...")
	aliases []string  // other slash names: /exit for /quit
	args    []argKind // its arguments, in order
	usage   []usage   // /help's lines; the first is also the hint for a malformed line
	seed    string    // the seed project's form ("chat:ID:TEXT"), or ""
	// login: the command's requests need a logged-in session. When the
	// client knows that it is logged out, they are answered not_logged_in
	// without asking the server (core.request).
	login bool
	// confirm: a terminal asks this question (%s: the user's name) before
	// the command runs, which runs only on the answer "yes".
	confirm string
	run     func(c *core, op *userOp, a args)
}

// usage is one line of /help: a form of the command and what it does.
type usage struct{ form, text string }

var (
	// commands is the table, in /help's order. It is set by init: its
	// functions refer to it (through /help), which a variable's
	// initializer may not.
	commands []*command
	// say is what a plain line runs: text to the open conversation. It is
	// not a slash command, so it is not in the table.
	say     *command
	bySlash map[string]*command // by name and alias
	bySeed  map[string]*command // by the seed form's first word
)

func init() {
	commands = []*command{
		{name: "register", args: []argKind{argName, argPassword}, run: (*core).cmdRegister,
			usage: []usage{{"/register NAME [PASSWORD]", "create an account (the password is asked for when left out)"}}},
		{name: "login", args: []argKind{argUser, argPassword}, run: (*core).cmdLogin,
			usage: []usage{{"/login NAME|ID [PASSWORD]", "log in (logged in: /logout first); your friends, groups and missed messages follow"}}},
		{name: "logout", args: []argKind{argAll}, seed: "loginout", login: true, run: (*core).cmdLogout,
			usage: []usage{
				{"/logout", "log out (the connection stays open)"},
				{"/logout all", "log out here and on every other device"},
			}},
		{name: "quit", aliases: []string{"exit"}, run: (*core).cmdQuit,
			usage: []usage{{"/quit", "leave the client"}}},
		{name: "msg", args: []argKind{argUser, argText}, seed: "chat:ID:TEXT", login: true, run: (*core).cmdMsg,
			usage: []usage{{"/msg USER TEXT", "send TEXT to USER (a name or an id)"}}},
		{name: "open", args: []argKind{argChat}, run: (*core).cmdOpen,
			usage: []usage{
				{"/open USER", "plain lines go to USER until /close"},
				{"/open #GROUP", "plain lines go to the group (an id, or the name of one of your groups)"},
			}},
		{name: "close", run: (*core).cmdClose,
			usage: []usage{{"/close", "stop sending plain lines to the open conversation"}}},
		{name: "edit", args: []argKind{argMsgID, argText}, login: true, run: (*core).cmdEdit,
			usage: []usage{{"/edit ID TEXT", "change the text of your message ID (the number in [brackets])"}}},
		{name: "del", aliases: []string{"delete"}, args: []argKind{argMsgID}, login: true, run: (*core).cmdDelete,
			usage: []usage{{"/del ID", "delete message ID: yours, or any in a group you run"}}},
		{name: "convs", login: true, run: (*core).cmdConvs,
			usage: []usage{{"/convs", "your conversations, the latest first, with unread counts and the last message"}}},
		{name: "history", args: []argKind{argChat, argCount}, login: true, run: (*core).cmdHistory,
			usage: []usage{
				{"/history USER|#ID [N]", fmt.Sprintf("the last N messages (default %d, at most %d) with USER or in group ID", historyDefault, wire.MaxHistory)},
				{"/history USER|#ID [N] after ID", "the first N messages after message ID (before ID: the last N before it)"},
			}},
		{name: "friends", login: true, run: (*core).cmdFriends,
			usage: []usage{{"/friends", "your friends, with who is online"}}},
		{name: "add", args: []argKind{argUser}, seed: "addfriend:ID", login: true, run: (*core).cmdAdd,
			usage: []usage{{"/add USER", "ask USER to be your friend (or accept USER's request)"}}},
		{name: "requests", login: true, run: (*core).cmdRequests,
			usage: []usage{{"/requests", "friend requests not yet answered, to you and from you"}}},
		{name: "accept", args: []argKind{argUser}, login: true, run: (*core).cmdAccept,
			usage: []usage{{"/accept USER", "accept USER's friend request"}}},
		{name: "decline", args: []argKind{argUser}, login: true, run: (*core).cmdDecline,
			usage: []usage{{"/decline USER", "decline USER's friend request"}}},
		{name: "unfriend", args: []argKind{argUser}, login: true, run: (*core).cmdUnfriend,
			usage: []usage{{"/unfriend USER", "end your friendship with USER"}}},
		{name: "block", args: []argKind{argUser}, login: true, run: (*core).cmdBlock,
			usage: []usage{{"/block USER", "USER can no longer message you, ask to be your friend or show typing (ends a friendship)"}}},
		{name: "unblock", args: []argKind{argUser}, login: true, run: (*core).cmdUnblock,
			usage: []usage{{"/unblock USER", "undo /block"}}},
		{name: "blocks", login: true, run: (*core).cmdBlocks,
			usage: []usage{{"/blocks", "the users you blocked"}}},
		{name: "who", aliases: []string{"online"}, login: true, run: (*core).cmdWho,
			usage: []usage{{"/who", "users online"}}},
		{name: "groups", login: true, run: (*core).cmdGroups,
			usage: []usage{{"/groups", "your groups and their members"}}},
		{name: "findgroups", args: []argKind{argQuery}, login: true, run: (*core).cmdFindGroups,
			usage: []usage{{"/findgroups [QUERY]", "public groups whose name contains QUERY"}}},
		{name: "create", args: []argKind{argPrivate, argName, argDesc}, seed: "creategroup:NAME:DESC", login: true, run: (*core).cmdCreate,
			usage: []usage{
				{"/create NAME [DESC]", "create a group"},
				{"/create -private NAME [DESC]", "create a private group: people join it on your invitation"},
			}},
		{name: "join", args: []argKind{argGroupID}, seed: "addgroup:ID", login: true, run: (*core).cmdJoin,
			usage: []usage{{"/join ID", "join group ID (a private one on an invitation)"}}},
		{name: "leave", args: []argKind{argGroup}, login: true, run: (*core).cmdLeave,
			usage: []usage{{"/leave ID", "leave group ID"}}},
		{name: "g", args: []argKind{argGroup, argText}, seed: "groupchat:ID:TEXT", login: true, run: (*core).cmdGroupMsg,
			usage: []usage{{"/g ID TEXT", "send TEXT to group ID"}}},
		{name: "invite", args: []argKind{argGroup, argMember}, login: true, run: (*core).cmdInvite,
			usage: []usage{{"/invite GROUP USER", "invite USER to a group (a private one: if you are its creator or an admin)"}}},
		{name: "kick", args: []argKind{argGroup, argMember}, login: true, run: (*core).cmdKick,
			usage: []usage{{"/kick GROUP USER", "remove USER from a group you run; USER needs a new invitation to come back"}}},
		{name: "role", args: []argKind{argGroup, argMember, argRole}, login: true, run: (*core).cmdRole,
			usage: []usage{{"/role GROUP USER admin|member", "make a member an admin, or a member again (the creator only)"}}},
		{name: "setgroup", args: []argKind{argGroup, argSetting}, login: true, run: (*core).cmdSetGroup,
			usage: []usage{
				{"/setgroup GROUP name NAME", "rename a group you run"},
				{"/setgroup GROUP desc [DESC]", "set its description (none: remove it)"},
				{"/setgroup GROUP private", "make it private: people join on an invitation"},
				{"/setgroup GROUP public", "make it public: anyone may find it and join"},
			}},
		{name: "delgroup", args: []argKind{argGroup}, login: true, run: (*core).cmdDeleteGroup,
			usage: []usage{{"/delgroup GROUP", "delete a group and its history (the creator only)"}}},
		{name: "sessions", login: true, run: (*core).cmdSessions,
			usage: []usage{{"/sessions", "where you are logged in (see -device)"}}},
		{name: "passwd", args: []argKind{argPasswords}, login: true, run: (*core).cmdPasswd,
			usage: []usage{{"/passwd [OLD NEW]", "change your password (asked for when left out); your other devices are logged out"}}},
		{name: "delete-account", args: []argKind{argPassword}, login: true, run: (*core).cmdDeleteAccount,
			confirm: "delete the account %s for good (its name is never given out again)? type yes: ",
			usage:   []usage{{"/delete-account [PASSWORD]", "delete your account for good (a terminal asks you to confirm)"}}},
		{name: "help", aliases: []string{"h", "?"}, args: []argKind{argIgnored}, seed: "help", run: (*core).cmdHelp,
			usage: []usage{{"/help", "this list"}}},
	}
	say = &command{name: "msg", args: []argKind{argText}, login: true, run: (*core).cmdSay}
	bySlash, bySeed = map[string]*command{}, map[string]*command{}
	for _, cmd := range commands {
		for _, name := range append([]string{cmd.name}, cmd.aliases...) {
			if bySlash[name] != nil {
				panic("client: two commands named /" + name)
			}
			bySlash[name] = cmd
		}
		if cmd.seed != "" {
			word, _, _ := strings.Cut(cmd.seed, ":")
			bySeed[word] = cmd
		}
	}
}

// secretAt returns the index of the command's password argument, which a
// terminal asks for when it is left out and the line history drops with
// what follows; -1 when it has none.
func (cmd *command) secretAt() int {
	for i, k := range cmd.args {
		if k.secret() {
			return i
		}
	}
	return -1
}

// needsPassword reports whether the command takes a password.
func (cmd *command) needsPassword() bool { return cmd.secretAt() >= 0 }

// secretMissing reports whether the line left out the password(s) of a
// command that takes them.
func (cmd *command) secretMissing(a args) bool {
	i := cmd.secretAt()
	return i >= 0 && a.Password == ""
}

// seedArgs are the arguments of the command's seed form: its slash form's
// but its options.
func (cmd *command) seedArgs() []argKind {
	var kinds []argKind
	for _, k := range cmd.args {
		if !k.slashOnly() {
			kinds = append(kinds, k)
		}
	}
	return kinds
}

// sendsText reports whether the command sends a message: its last
// argument is TEXT (/msg, /g, their seed forms, a plain line). Its text is
// checked against the protocol's limit before the command runs
// (core.dispatch), and a final backslash continues it (joiner).
func (cmd *command) sendsText() bool {
	return len(cmd.args) > 0 && cmd.args[len(cmd.args)-1] == argText
}

// historyDefault is how many messages /history shows without N.
const historyDefault = 20

// helpLines is /help's output, made from the table.
func helpLines() []string {
	lines := []string{"commands:"}
	for _, cmd := range commands {
		for i, u := range cmd.usage {
			text := u.text
			if i == len(cmd.usage)-1 && len(cmd.aliases) > 0 {
				text += " (also /" + strings.Join(cmd.aliases, ", /") + ")"
			}
			lines = append(lines, fmt.Sprintf("  %-30s %s", u.form, text))
		}
	}
	lines = append(lines, "the seed project's commands work too:")
	for _, cmd := range commands {
		if cmd.seed == "" {
			continue
		}
		_, params, _ := strings.Cut(cmd.seed, ":")
		same := "= /" + cmd.name
		if params != "" {
			same += " " + strings.ReplaceAll(params, ":", " ")
		}
		lines = append(lines, fmt.Sprintf("  %-30s %s", cmd.seed, same))
	}
	lines = append(lines,
		"USER is a name or an id (@NAME for a name made of digits); a group ID may be written #ID, and /open, /leave, /g, /history and the commands with GROUP take #NAME for one of your groups",
		"a message's ID is the number in [brackets] on its line",
		"a line not starting with / goes to the open conversation",
		fmt.Sprintf(`a message (TEXT, or a plain line) is at most %d bytes; end a line with \ to go on on the next (a newline in the text), with \\ to end it in one \`, wire.MaxTextBytes))
	return lines
}

// --- the commands ---

// /help
func (c *core) cmdHelp(op *userOp, _ args) {
	c.local(func() {
		for _, l := range helpLines() {
			c.out.print(outInfo, l)
		}
		c.finish(op, true)
	})
}

// /quit
func (c *core) cmdQuit(op *userOp, _ args) {
	c.quitting = true
	c.finish(op, true)
}

// /msg USER TEXT, chat:ID:TEXT -> [whois], chat
func (c *core) cmdMsg(op *userOp, a args) {
	c.withUser(op, a.Target, func(id int64) { c.sendChat(op, id, 0, a.Text) })
}

// TEXT (a plain line) -> chat or group_chat to the open conversation
func (c *core) cmdSay(op *userOp, a args) {
	switch {
	case c.open == nil:
		c.failLocal(op, "no conversation is open: /open USER, /open #GROUP, or /msg USER TEXT")
	case c.open.Group:
		c.sendChat(op, 0, c.open.ID, a.Text)
	default:
		c.sendChat(op, c.open.ID, 0, a.Text)
	}
}

// /open USER, /open #GROUP -> [whois]
func (c *core) cmdOpen(op *userOp, a args) {
	c.withChat(op, a.Target, func(id int64) {
		c.setOpen(&ref{ID: id, Group: a.Target.Group})
		label := c.promptLabel()
		c.local(func() {
			c.print(outOK, "ok open %s", label)
			c.finish(op, true)
		})
	})
}

// /close
func (c *core) cmdClose(op *userOp, _ args) {
	c.setOpen(nil)
	c.local(func() {
		c.print(outOK, "ok close")
		c.finish(op, true)
	})
}

// /friends -> friends
func (c *core) cmdFriends(op *userOp, _ args) {
	c.request(op, "friends", nil, true, func(f *frame) {
		if !f.OK {
			c.failReply(op, f)
			return
		}
		for _, u := range f.Friends {
			c.names.addUser(u.ID, u.Name)
		}
		c.out.print(outOK, fmtFriends(f.Friends))
		c.finish(op, true)
	})
}

// /add USER, addfriend:ID -> add_friend: a request, or a friendship
// when USER had asked already.
func (c *core) cmdAdd(op *userOp, a args) {
	c.addFriend(op, a.Target, "")
}

// addFriend sends add_friend for /add and /accept; the reply says whether
// it made a friendship or a request. notAsked is added to the line of a
// request (for /accept of someone who had not asked).
func (c *core) addFriend(op *userOp, r ref, notAsked string) {
	c.request(op, "add_friend", userFields("friend", r), true, func(f *frame) {
		if !f.OK || f.Friend == nil {
			c.failReply(op, f)
			return
		}
		c.names.addUser(f.Friend.ID, f.Friend.Name)
		if f.Status == "requested" {
			c.print(outOK, "ok friend request sent to %s (id %d)%s", clean(f.Friend.Name), f.Friend.ID, notAsked)
		} else {
			c.print(outOK, "ok friend %s (id %d)%s", clean(f.Friend.Name), f.Friend.ID, onlineMark(f.Friend.Online))
		}
		c.finish(op, true)
	})
}

// userFields names a user in a request: key (the id's field: "friend",
// "user") or "name".
func userFields(key string, r ref) map[string]any {
	if r.ID != 0 {
		return map[string]any{key: r.ID}
	}
	return map[string]any{"name": r.Name}
}

// refName names a user as the command line did, for reply lines: the
// known name of an id, or the name typed.
func (c *core) refName(r ref) string {
	if r.ID != 0 {
		return c.names.user(r.ID)
	}
	return clean(r.Name)
}

// /who -> online
func (c *core) cmdWho(op *userOp, _ args) {
	c.request(op, "online", map[string]any{"limit": wire.MaxOnline}, true, func(f *frame) {
		if !f.OK {
			c.failReply(op, f)
			return
		}
		for _, u := range f.Users {
			c.names.addUser(u.ID, u.Name)
		}
		c.out.print(outOK, fmtWho(f.Users, f.Total))
		c.finish(op, true)
	})
}

// /groups -> groups
func (c *core) cmdGroups(op *userOp, _ args) {
	c.request(op, "groups", nil, true, func(f *frame) {
		if !f.OK {
			c.failReply(op, f)
			return
		}
		for i := range f.Groups {
			c.names.addGroup(&f.Groups[i])
		}
		c.out.print(outOK, fmtGroups(f.Groups))
		c.finish(op, true)
	})
}

// /create [-private] NAME [DESC], creategroup:NAME:DESC -> create_group
// (not repeated after a lost connection: it is not safe to)
func (c *core) cmdCreate(op *userOp, a args) {
	fields := map[string]any{"name": a.Name}
	if a.Desc != "" {
		fields["desc"] = a.Desc
	}
	if a.Private {
		fields["private"] = true
	}
	c.request(op, "create_group", fields, false, func(f *frame) {
		g := f.groupObj()
		if !f.OK || g == nil {
			c.failReply(op, f)
			return
		}
		c.names.addGroup(g)
		c.print(outOK, "ok created #%d %s%s", g.ID, clean(g.Name), privateMark(g.Private))
		c.finish(op, true)
	})
}

// /join ID, addgroup:ID -> join_group
func (c *core) cmdJoin(op *userOp, a args) {
	c.request(op, "join_group", map[string]any{"group": a.Target.ID}, true, func(f *frame) {
		g := f.groupObj()
		if !f.OK || g == nil {
			c.failReply(op, f)
			return
		}
		c.names.addGroup(g)
		c.print(outOK, "ok joined %s", fmtGroup(g))
		c.finish(op, true)
	})
}

// /leave ID, /leave #NAME -> leave_group (not repeated after a lost
// connection)
func (c *core) cmdLeave(op *userOp, a args) {
	c.withGroup(op, a.Target, func(id int64) {
		c.request(op, "leave_group", map[string]any{"group": id}, false, func(f *frame) {
			if !f.OK {
				c.failReply(op, f)
				return
			}
			c.print(outOK, "ok left %s", c.names.group(id))
			if c.open != nil && c.open.Group && c.open.ID == id {
				c.setOpen(nil)
			}
			c.finish(op, true)
		})
	})
}

// /g ID TEXT, groupchat:ID:TEXT -> group_chat
func (c *core) cmdGroupMsg(op *userOp, a args) {
	c.withGroup(op, a.Target, func(id int64) { c.sendChat(op, 0, id, a.Text) })
}

// /history USER|#ID [N] [after|before ID] -> [whois], history
func (c *core) cmdHistory(op *userOp, a args) {
	n := a.N
	if n == 0 {
		n = historyDefault
	}
	c.withChat(op, a.Target, func(id int64) {
		fields := map[string]any{"limit": n}
		if a.After != 0 {
			fields["after"] = a.After
		}
		if a.Before != 0 {
			fields["before"] = a.Before
		}
		label := "with " + c.names.user(id)
		if a.Target.Group {
			fields["group"] = id
			label = "of " + c.names.group(id)
		} else {
			fields["with"] = id
		}
		c.request(op, "history", fields, true, func(f *frame) {
			if !f.OK {
				c.failReply(op, f)
				return
			}
			c.print(outOK, "ok history %s: %s", label, plural(len(f.Messages), "message", "messages"))
			for i := range f.Messages {
				m := &f.Messages[i]
				c.names.addUser(m.From, m.FromName)
				c.out.print(outInfo, fmtMessage(c.names, m, msgHistory))
				c.shown(m)
			}
			c.finish(op, true)
		})
	})
}
