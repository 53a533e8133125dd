package main

import (
	"fmt"
	"strconv"
	"strings"
)

// The client's command parser: a pure function from one input line to a
// command value. It checks the shape of a line only; names, ids and
// passwords are checked by the server, whose errors the client explains.

// clCmdKind is what a command does.
type clCmdKind uint8

const (
	clCmdEmpty    clCmdKind = iota // a blank line: nothing to do
	clCmdHelp                      // /help, help
	clCmdRegister                  // /register NAME [PASSWORD]
	clCmdLogin                     // /login NAME|ID [PASSWORD]
	clCmdLogout                    // /logout, loginout
	clCmdQuit                      // /quit
	clCmdMsg                       // /msg USER TEXT, chat:ID:TEXT
	clCmdSay                       // a plain line: to the open conversation
	clCmdOpen                      // /open USER, /open #GROUP
	clCmdClose                     // /close
	clCmdFriends                   // /friends
	clCmdAdd                       // /add USER, addfriend:ID
	clCmdWho                       // /who
	clCmdGroups                    // /groups
	clCmdCreate                    // /create NAME [DESC], creategroup:NAME:DESC
	clCmdJoin                      // /join ID, addgroup:ID
	clCmdLeave                     // /leave ID
	clCmdGroupMsg                  // /g ID TEXT, groupchat:ID:TEXT
	clCmdHistory                   // /history USER|#ID [N]
)

var clCmdNames = [...]string{
	clCmdEmpty: "empty", clCmdHelp: "help", clCmdRegister: "register", clCmdLogin: "login",
	clCmdLogout: "logout", clCmdQuit: "quit", clCmdMsg: "msg", clCmdSay: "say",
	clCmdOpen: "open", clCmdClose: "close", clCmdFriends: "friends", clCmdAdd: "add",
	clCmdWho: "who", clCmdGroups: "groups", clCmdCreate: "create", clCmdJoin: "join",
	clCmdLeave: "leave", clCmdGroupMsg: "g", clCmdHistory: "history",
}

func (k clCmdKind) String() string {
	if int(k) < len(clCmdNames) {
		return clCmdNames[k]
	}
	return "cmd(" + strconv.Itoa(int(k)) + ")"
}

// clRef names a user or a group, by id or by name. Exactly one of ID and
// Name is set. Group is true for a group (#ID, #NAME).
type clRef struct {
	ID    int64
	Name  string
	Group bool
}

func (r clRef) String() string {
	s := r.Name
	if r.ID != 0 {
		s = strconv.FormatInt(r.ID, 10)
	}
	if r.Group {
		return "#" + s
	}
	return s
}

// clCmd is one parsed command line.
type clCmd struct {
	Kind     clCmdKind
	Target   clRef  // the user or group of msg, open, add, join, leave, g, history, login
	Name     string // register: the user name; create: the group name
	Desc     string // create: the description
	Password string // register, login: "" means ask for it
	Text     string // msg, say, g
	N        int    // history: how many messages (0: the default)
}

// clUsageError is a malformed or unknown command; its text is the hint.
type clUsageError struct{ hint string }

func (e *clUsageError) Error() string { return e.hint }

func clUsage(format string, args ...any) error {
	return &clUsageError{hint: fmt.Sprintf(format, args...)}
}

// clCommandHelp is /help's text, one command a line; also the usage hints.
var clCommandHelp = []struct{ usage, what string }{
	{"/register NAME [PASSWORD]", "create an account (the password is asked for when left out)"},
	{"/login NAME|ID [PASSWORD]", "log in; your friends, groups and missed messages follow"},
	{"/logout", "log out (the connection stays open)"},
	{"/quit", "leave the client"},
	{"/msg USER TEXT", "send TEXT to USER (a name or an id)"},
	{"/open USER", "plain lines go to USER until /close"},
	{"/open #GROUP", "plain lines go to the group (an id, or the name of one of your groups)"},
	{"/close", "stop sending plain lines to the open conversation"},
	{"/friends", "your friends, with who is online"},
	{"/add USER", "add USER as a friend"},
	{"/who", "users online"},
	{"/groups", "your groups and their members"},
	{"/create NAME [DESC]", "create a group"},
	{"/join ID", "join group ID"},
	{"/leave ID", "leave group ID"},
	{"/g ID TEXT", "send TEXT to group ID"},
	{"/history USER|#ID [N]", "the last N messages (default 20, at most 200) with USER or in group ID"},
	{"/help", "this list"},
}

// clSeedHelp lists the seed project's commands, which work too.
var clSeedHelp = []struct{ usage, what string }{
	{"help", "this list"},
	{"chat:ID:TEXT", "= /msg ID TEXT"},
	{"addfriend:ID", "= /add ID"},
	{"creategroup:NAME:DESC", "= /create NAME DESC"},
	{"addgroup:ID", "= /join ID"},
	{"groupchat:ID:TEXT", "= /g ID TEXT"},
	{"loginout", "= /logout"},
}

func clUsageOf(name string) string {
	for _, h := range clCommandHelp {
		if h.usage == name || strings.HasPrefix(h.usage, name+" ") {
			return h.usage
		}
	}
	return name
}

const clHistoryDefault, clHistoryMax = 20, 200

// clParseLine parses one input line. A line not starting with '/' (and not
// one of the seed project's commands) is text for the open conversation.
// Errors are *clUsageError with a hint.
func clParseLine(line string) (clCmd, error) {
	line = strings.TrimSuffix(line, "\r")
	trimmed := strings.TrimSpace(line)
	if trimmed == "" {
		return clCmd{Kind: clCmdEmpty}, nil
	}
	if strings.HasPrefix(trimmed, "/") {
		return clParseSlash(trimmed)
	}
	if cmd, ok, err := clParseSeed(trimmed); ok {
		return cmd, err
	}
	return clCmd{Kind: clCmdSay, Text: line}, nil
}

// clSplitWord splits off the first blank-separated word.
func clSplitWord(s string) (word, rest string) {
	s = strings.TrimLeft(s, " \t")
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeft(s[i+1:], " \t")
}

func clParseSlash(line string) (clCmd, error) {
	name, rest := clSplitWord(line[1:])
	bad := func() (clCmd, error) {
		return clCmd{}, clUsage("usage: %s", clUsageOf("/"+name))
	}
	noArgs := func(k clCmdKind) (clCmd, error) {
		if rest != "" {
			return clCmd{}, clUsage("usage: /%s takes no arguments", name)
		}
		return clCmd{Kind: k}, nil
	}
	switch name {
	case "help", "h", "?":
		return clCmd{Kind: clCmdHelp}, nil
	case "register":
		user, pass := clSplitWord(rest)
		if user == "" {
			return bad()
		}
		return clCmd{Kind: clCmdRegister, Name: user, Password: pass}, nil
	case "login":
		user, pass := clSplitWord(rest)
		ref, ok := clParseUserRef(user)
		if !ok {
			return bad()
		}
		return clCmd{Kind: clCmdLogin, Target: ref, Password: pass}, nil
	case "logout":
		return noArgs(clCmdLogout)
	case "quit", "exit":
		return noArgs(clCmdQuit)
	case "msg":
		user, text := clSplitWord(rest)
		ref, ok := clParseUserRef(user)
		if !ok || text == "" {
			return bad()
		}
		return clCmd{Kind: clCmdMsg, Target: ref, Text: text}, nil
	case "open":
		word, extra := clSplitWord(rest)
		if word == "" || extra != "" {
			return bad()
		}
		ref, ok := clParseConversationRef(word)
		if !ok {
			return bad()
		}
		return clCmd{Kind: clCmdOpen, Target: ref}, nil
	case "close":
		return noArgs(clCmdClose)
	case "friends":
		return noArgs(clCmdFriends)
	case "add":
		user, extra := clSplitWord(rest)
		ref, ok := clParseUserRef(user)
		if !ok || extra != "" {
			return bad()
		}
		return clCmd{Kind: clCmdAdd, Target: ref}, nil
	case "who", "online":
		return noArgs(clCmdWho)
	case "groups":
		return noArgs(clCmdGroups)
	case "create":
		group, desc := clSplitWord(rest)
		if group == "" {
			return bad()
		}
		return clCmd{Kind: clCmdCreate, Name: group, Desc: desc}, nil
	case "join", "leave":
		word, extra := clSplitWord(rest)
		ref, ok := clParseGroupRef(word, name == "leave")
		if !ok || extra != "" {
			return bad()
		}
		k := clCmdJoin
		if name == "leave" {
			k = clCmdLeave
		}
		return clCmd{Kind: k, Target: ref}, nil
	case "g":
		word, text := clSplitWord(rest)
		ref, ok := clParseGroupRef(word, true)
		if !ok || text == "" {
			return bad()
		}
		return clCmd{Kind: clCmdGroupMsg, Target: ref, Text: text}, nil
	case "history":
		word, nword := clSplitWord(rest)
		ref, ok := clParseConversationRef(word)
		if !ok {
			return bad()
		}
		cmd := clCmd{Kind: clCmdHistory, Target: ref}
		if nword != "" {
			n, err := strconv.Atoi(nword)
			if err != nil || n < 1 || n > clHistoryMax {
				return clCmd{}, clUsage("usage: %s (N is 1-%d)", clUsageOf("/history"), clHistoryMax)
			}
			cmd.N = n
		}
		return cmd, nil
	case "":
		return clCmd{}, clUsage("a command follows the /: /help lists them")
	}
	return clCmd{}, clUsage("unknown command /%s: /help lists the commands", name)
}

// clSeedCommands are the seed project's command words.
var clSeedCommands = []string{"help", "chat", "addfriend", "creategroup", "addgroup", "groupchat", "loginout"}

// clParseSeed parses the seed project's NAME:ARG:ARG forms; ok is false when
// the line is not one of them (and is then text to send).
func clParseSeed(line string) (cmd clCmd, ok bool, err error) {
	word, rest, hasColon := strings.Cut(line, ":")
	known := false
	for _, s := range clSeedCommands {
		if word == s {
			known = true
		}
	}
	if !known {
		return clCmd{}, false, nil
	}
	bad := func(usage string) (clCmd, bool, error) {
		return clCmd{}, true, clUsage("usage: %s", usage)
	}
	switch word {
	case "help", "loginout":
		if hasColon && rest != "" {
			return bad(word)
		}
		if word == "help" {
			return clCmd{Kind: clCmdHelp}, true, nil
		}
		return clCmd{Kind: clCmdLogout}, true, nil
	}
	if !hasColon {
		// "chat" alone, or "chat me later": a message, not a command.
		return clCmd{}, false, nil
	}
	switch word {
	case "chat":
		idPart, text, _ := strings.Cut(rest, ":")
		ref, okRef := clParseUserRef(strings.TrimSpace(idPart))
		if !okRef || text == "" {
			return bad("chat:ID:TEXT")
		}
		return clCmd{Kind: clCmdMsg, Target: ref, Text: text}, true, nil
	case "addfriend":
		ref, okRef := clParseUserRef(strings.TrimSpace(rest))
		if !okRef {
			return bad("addfriend:ID")
		}
		return clCmd{Kind: clCmdAdd, Target: ref}, true, nil
	case "creategroup":
		name, desc, _ := strings.Cut(rest, ":")
		if strings.TrimSpace(name) == "" {
			return bad("creategroup:NAME:DESC")
		}
		return clCmd{Kind: clCmdCreate, Name: name, Desc: desc}, true, nil
	case "addgroup":
		ref, okRef := clParseGroupRef(strings.TrimSpace(rest), false)
		if !okRef {
			return bad("addgroup:ID")
		}
		return clCmd{Kind: clCmdJoin, Target: ref}, true, nil
	default: // groupchat
		idPart, text, _ := strings.Cut(rest, ":")
		ref, okRef := clParseGroupRef(strings.TrimSpace(idPart), false)
		if !okRef || text == "" {
			return bad("groupchat:ID:TEXT")
		}
		return clCmd{Kind: clCmdGroupMsg, Target: ref, Text: text}, true, nil
	}
}

// clParseUserRef parses USER: digits are an id, "@NAME" is always a name
// (for users named with digits only), anything else a name.
func clParseUserRef(s string) (clRef, bool) {
	if s == "" || strings.HasPrefix(s, "#") {
		return clRef{}, false
	}
	if name, ok := strings.CutPrefix(s, "@"); ok {
		return clRef{Name: name}, name != ""
	}
	if id, ok := clParseID(s); ok {
		return clRef{ID: id}, true
	}
	if clAllDigits(s) {
		return clRef{}, false // 0, or too large
	}
	return clRef{Name: s}, true
}

// clParseGroupRef parses a group: "#ID" or "ID"; with names allowed, also
// "#NAME" (one of the user's own groups, looked up when the command runs).
func clParseGroupRef(s string, names bool) (clRef, bool) {
	s = strings.TrimPrefix(s, "#")
	if id, ok := clParseID(s); ok {
		return clRef{ID: id, Group: true}, true
	}
	if !names || s == "" || clAllDigits(s) {
		return clRef{}, false
	}
	return clRef{Name: s, Group: true}, true
}

func clParseID(s string) (int64, bool) {
	if !clAllDigits(s) {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0
}

func clAllDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// clParseConversationRef reads a user (name or id) or a #group.
func clParseConversationRef(word string) (clRef, bool) {
	if strings.HasPrefix(word, "#") {
		return clParseGroupRef(word, true)
	}
	return clParseUserRef(word)
}
