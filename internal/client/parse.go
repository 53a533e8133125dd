package client

import (
	"fmt"
	"strconv"
	"strings"

	"chat/internal/wire"
)

// The input parser: a pure function from one line to a table entry and
// its arguments. Each entry lists its arguments as kinds (argUser,
// argText, ...); the same list reads the slash form (words, the last kind
// perhaps the rest of the line) and the seed project's form (fields between
// colons). It checks the shape of a line only; names, ids and passwords are
// checked by the server, whose errors the client explains.

// ref names a user or a group, by id or by name. Exactly one of ID and
// Name is set. Group is true for a group (#ID, #NAME).
type ref struct {
	ID    int64
	Name  string
	Group bool
}

func (r ref) String() string {
	s := r.Name
	if r.ID != 0 {
		s = strconv.FormatInt(r.ID, 10)
	}
	if r.Group {
		return "#" + s
	}
	return s
}

// args are the arguments a line gives its command; which are set depends
// on the command's argument kinds.
type args struct {
	Target   ref    // argUser, argGroupID, argGroup, argChat
	Name     string // argName: the user of /register, the group of /create
	Desc     string // argDesc
	Password string // argPassword: "" means ask for it
	Text     string // argText
	N        int    // argCount: 0 means the default
}

// argKind is one argument of a command, as the table lists it.
type argKind uint8

const (
	argName     argKind = iota + 1 // NAME: a word
	argUser                        // USER: a name or an id (@NAME: a name made of digits)
	argGroupID                     // ID: a group id, with or without #
	argGroup                       // ID: also #NAME, one of your groups (in seed forms ids only)
	argChat                        // USER or #GROUP (an id, or the name of one of your groups)
	argText                        // TEXT: the rest of the line, not empty
	argPassword                    // [PASSWORD]: the rest of the line, blanks inside; may be empty
	argDesc                        // [DESC]: the rest of the line; may be empty
	argCount                       // [N]: 1 to wire.MaxHistory; may be left out
	argIgnored                     // the rest of the line, ignored (/help)
)

// rest reports whether the kind takes the rest of the line rather than a
// word (the rest of the seed form rather than one field); such a kind is
// always its command's last.
func (k argKind) rest() bool {
	switch k {
	case argText, argPassword, argDesc, argCount, argIgnored:
		return true
	}
	return false
}

// set reads s as an argument of kind k into a; false when s will not do.
func (a *args) set(k argKind, s string, seed bool) bool {
	var ok bool
	switch k {
	case argName:
		a.Name, ok = s, s != ""
	case argUser:
		a.Target, ok = parseUserRef(s)
	case argGroupID:
		a.Target, ok = parseGroupRef(s, false)
	case argGroup:
		a.Target, ok = parseGroupRef(s, !seed)
	case argChat:
		a.Target, ok = parseChatRef(s)
	case argText:
		a.Text, ok = s, s != ""
	case argPassword:
		a.Password, ok = s, true
	case argDesc:
		a.Desc, ok = s, true
	case argCount:
		if s == "" {
			return true
		}
		n, err := strconv.Atoi(s)
		a.N, ok = n, err == nil && n >= 1 && n <= wire.MaxHistory
	case argIgnored:
		ok = true
	}
	return ok
}

// usageError is a malformed or unknown command; its text is the hint.
type usageError struct{ hint string }

func (e *usageError) Error() string { return e.hint }

func usagef(format string, args ...any) error {
	return &usageError{hint: fmt.Sprintf(format, args...)}
}

// parseLine parses one input line. A line not starting with '/' (and not
// one of the seed project's commands) is text for the open conversation
// (the say command). A blank line is a nil command. Errors are
// *usageError with a hint.
func parseLine(line string) (*command, args, error) {
	line = strings.TrimSuffix(line, "\r")
	trimmed := strings.TrimSpace(line)
	if trimmed == "" {
		return nil, args{}, nil
	}
	if strings.HasPrefix(trimmed, "/") {
		return parseSlash(trimmed)
	}
	if cmd, a, ok, err := parseSeed(trimmed); ok {
		return cmd, a, err
	}
	return say, args{Text: line}, nil
}

// splitWord splits off the first blank-separated word.
func splitWord(s string) (word, rest string) {
	s = strings.TrimLeft(s, " \t")
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeft(s[i+1:], " \t")
}

// parseSlash parses "/NAME ARGS" by the table entry for NAME.
func parseSlash(line string) (*command, args, error) {
	name, rest := splitWord(line[1:])
	if name == "" {
		return nil, args{}, usagef("a command follows the /: /help lists them")
	}
	cmd := bySlash[name]
	if cmd == nil {
		return nil, args{}, usagef("unknown command /%s: /help lists the commands", name)
	}
	var a args
	if len(cmd.args) == 0 {
		if rest != "" {
			return nil, args{}, usagef("usage: /%s takes no arguments", name)
		}
		return cmd, a, nil
	}
	for _, k := range cmd.args {
		var s string
		if k.rest() {
			s, rest = rest, ""
		} else {
			s, rest = splitWord(rest)
		}
		if !a.set(k, s, false) {
			return nil, args{}, cmd.malformed(k)
		}
	}
	if rest != "" {
		return nil, args{}, cmd.malformed(0)
	}
	return cmd, a, nil
}

// malformed is the hint for a malformed slash form, the failing kind
// being k (0: too many arguments).
func (cmd *command) malformed(k argKind) error {
	if k == argCount {
		return usagef("usage: %s (N is 1-%d)", cmd.usage[0].form, wire.MaxHistory)
	}
	return usagef("usage: %s", cmd.usage[0].form)
}

// parseSeed parses the seed project's WORD:ARG:ARG forms by the table
// entry whose seed form starts with WORD; ok is false when the line is not
// one of them (and is then text to send). Each argument but the last ends
// at the next colon; the last takes the rest. Words are trimmed, text is
// not.
func parseSeed(line string) (cmd *command, a args, ok bool, err error) {
	word, rest, hasColon := strings.Cut(line, ":")
	cmd = bySeed[word]
	if cmd == nil {
		return nil, args{}, false, nil
	}
	bad := usagef("usage: %s", cmd.seed)
	if len(cmd.args) == 0 || cmd.args[0] == argIgnored {
		if hasColon && rest != "" {
			return nil, args{}, true, bad
		}
		return cmd, a, true, nil
	}
	if !hasColon {
		// "chat" alone, or "chat me later": a message, not a command.
		return nil, args{}, false, nil
	}
	for i, k := range cmd.args {
		var s string
		if i < len(cmd.args)-1 {
			s, rest, _ = strings.Cut(rest, ":")
		} else {
			s = rest
		}
		if !k.rest() {
			s = strings.TrimSpace(s)
		}
		if !a.set(k, s, true) {
			return nil, args{}, true, bad
		}
	}
	return cmd, a, true, nil
}

// parseUserRef parses USER: digits are an id, "@NAME" is always a name
// (for users named with digits only), anything else a name.
func parseUserRef(s string) (ref, bool) {
	if s == "" || strings.HasPrefix(s, "#") {
		return ref{}, false
	}
	if name, ok := strings.CutPrefix(s, "@"); ok {
		return ref{Name: name}, name != ""
	}
	if id, ok := parseID(s); ok {
		return ref{ID: id}, true
	}
	if allDigits(s) {
		return ref{}, false // 0, or too large
	}
	return ref{Name: s}, true
}

// parseGroupRef parses a group: "#ID" or "ID"; with names allowed, also
// "#NAME" (one of the user's own groups, looked up when the command runs).
func parseGroupRef(s string, names bool) (ref, bool) {
	s = strings.TrimPrefix(s, "#")
	if id, ok := parseID(s); ok {
		return ref{ID: id, Group: true}, true
	}
	if !names || s == "" || allDigits(s) {
		return ref{}, false
	}
	return ref{Name: s, Group: true}, true
}

// parseChatRef reads a conversation: a user (name or id) or a #group.
func parseChatRef(word string) (ref, bool) {
	if strings.HasPrefix(word, "#") {
		return parseGroupRef(word, true)
	}
	return parseUserRef(word)
}

func parseID(s string) (int64, bool) {
	if !allDigits(s) {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0
}

func allDigits(s string) bool {
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
