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
	Who      ref    // argMember: the user of /invite, /kick, /role
	Name     string // argName: the user of /register, the group of /create
	Desc     string // argDesc
	Password string // argPassword: "" means ask for it; argPasswords: the old one
	New      string // argPasswords: the new password ("" with Password: ask for both)
	Text     string // argText
	N        int    // argCount: 0 means the default
	After    int64  // argCount: "after ID"
	Before   int64  // argCount: "before ID"
	MsgID    int64  // argMsgID
	Role     string // argRole: "admin" or "member"
	Key      string // argSetting: "name", "desc", "private" or "public"
	Value    string // argSetting: the new name or description
	Query    string // argQuery
	Private  bool   // argPrivate: -private was given
	All      bool   // argAll: "all" was given
}

// argKind is one argument of a command, as the table lists it.
type argKind uint8

const (
	argName      argKind = iota + 1 // NAME: a word
	argUser                         // USER: a name or an id (@NAME: a name made of digits)
	argGroupID                      // ID: a group id, with or without #
	argGroup                        // ID: also #NAME, one of your groups (in seed forms ids only)
	argChat                         // USER or #GROUP (an id, or the name of one of your groups)
	argText                         // TEXT: the rest of the line, not empty
	argPassword                     // [PASSWORD]: the rest of the line, blanks inside; may be empty
	argDesc                         // [DESC]: the rest of the line; may be empty
	argCount                        // [N] [after ID | before ID]: N is 1 to wire.MaxHistory; each may be left out
	argIgnored                      // the rest of the line, ignored (/help)
	argMember                       // USER, a second one: the member of /invite, /kick, /role
	argMsgID                        // ID: a message id
	argRole                         // admin or member
	argSetting                      // name NAME | desc [DESC] | private | public: the rest of the line
	argQuery                        // [QUERY]: the rest of the line; may be empty
	argPasswords                    // [OLD NEW]: OLD a word, NEW the rest of the line; both or neither
	argPrivate                      // [-private]: a word if it is -private, else nothing (slash forms only)
	argAll                          // [all]: the rest of the line, "all" or empty (slash forms only)
)

// rest reports whether the kind takes the rest of the line rather than a
// word (the rest of the seed form rather than one field); such a kind is
// always its command's last.
func (k argKind) rest() bool {
	switch k {
	case argText, argPassword, argDesc, argCount, argIgnored, argSetting, argQuery, argPasswords, argAll:
		return true
	}
	return false
}

// secret reports whether the kind holds passwords: the line history drops
// it and what follows, and a terminal asks for it when left out.
func (k argKind) secret() bool { return k == argPassword || k == argPasswords }

// slashOnly reports whether the kind is an option of the slash form that
// the seed forms do not have.
func (k argKind) slashOnly() bool { return k == argPrivate || k == argAll }

// set reads s as an argument of kind k into a; false when s will not do.
func (a *args) set(k argKind, s string, seed bool) bool {
	var ok bool
	switch k {
	case argName:
		a.Name, ok = s, s != ""
	case argUser:
		a.Target, ok = parseUserRef(s)
	case argMember:
		a.Who, ok = parseUserRef(s)
	case argGroupID:
		a.Target, ok = parseGroupRef(s, false)
	case argGroup:
		a.Target, ok = parseGroupRef(s, !seed)
	case argChat:
		a.Target, ok = parseChatRef(s)
	case argText:
		s = strings.Trim(s, "\n") // the blank lines around a message typed over several
		a.Text, ok = s, s != ""
	case argPassword:
		a.Password, ok = s, true
	case argPasswords:
		if s == "" {
			return true
		}
		a.Password, a.New = splitWord(s)
		ok = a.New != ""
	case argDesc:
		a.Desc, ok = s, true
	case argQuery:
		a.Query, ok = strings.TrimSpace(s), true
	case argCount:
		return a.setRange(s)
	case argMsgID:
		a.MsgID, ok = parseID(strings.Trim(s, "#[]")) // as printed: [981]
	case argRole:
		a.Role, ok = s, s == string(wire.RoleAdmin) || s == string(wire.RoleMember)
	case argSetting:
		return a.setSetting(s)
	case argPrivate:
		a.Private, ok = s == "-private", true
	case argAll:
		a.All, ok = s == "all", s == "all" || s == ""
	case argIgnored:
		ok = true
	}
	return ok
}

// setRange reads /history's "[N] [after ID | before ID]".
func (a *args) setRange(s string) bool {
	word, rest := splitWord(s)
	if word != "" && allDigits(word) {
		n, err := strconv.Atoi(word)
		if err != nil || n < 1 || n > wire.MaxHistory {
			return false
		}
		a.N = n
		word, rest = splitWord(rest)
	}
	if word == "" {
		return true
	}
	idWord, rest := splitWord(rest)
	id, ok := parseID(strings.Trim(idWord, "#[]"))
	if !ok || rest != "" {
		return false
	}
	switch word {
	case "after":
		a.After = id
	case "before":
		a.Before = id
	default:
		return false
	}
	return true
}

// setSetting reads /setgroup's "name NAME", "desc [DESC]", "private" or
// "public".
func (a *args) setSetting(s string) bool {
	key, rest := splitWord(s)
	a.Key = key
	switch key {
	case "name":
		name, more := splitWord(rest)
		a.Value = name
		return name != "" && more == ""
	case "desc":
		a.Value = rest
		return true
	case "private", "public":
		return rest == ""
	}
	return false
}

// usageError is a malformed or unknown command, or a line refused before
// it is parsed; its text is the hint. cmd names the command when the line
// is refused for its length ("error msg: too long: ..."), else it is "".
type usageError struct{ cmd, hint string }

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
	return say, args{Text: strings.Trim(line, "\n")}, nil
}

// blanks separate words. A newline is one too: "/msg bob\" then "hi" is
// "/msg bob\nhi", a message to bob (see joiner).
const blanks = " \t\n"

// splitWord splits off the first blank-separated word.
func splitWord(s string) (word, rest string) {
	s = strings.TrimLeft(s, blanks)
	i := strings.IndexAny(s, blanks)
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeft(s[i+1:], blanks)
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
		switch {
		case k == argPrivate:
			// An option: it takes the next word only if it is the option.
			if word, after := splitWord(rest); word == "-private" {
				s, rest = word, after
			}
		case k.rest():
			s, rest = rest, ""
		default:
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
		return usagef("usage: %s [after|before ID] (N is 1-%d)", cmd.usage[0].form, wire.MaxHistory)
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
	kinds := cmd.seedArgs()
	if len(kinds) == 0 || kinds[0] == argIgnored {
		if hasColon && rest != "" {
			return nil, args{}, true, bad
		}
		return cmd, a, true, nil
	}
	if !hasColon {
		// "chat" alone, or "chat me later": a message, not a command.
		return nil, args{}, false, nil
	}
	for i, k := range kinds {
		var s string
		if i < len(kinds)-1 {
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

// --- messages over several lines ---

// joiner puts together a message typed over several lines. A message line
// (a plain line, or a command whose last argument is TEXT: /msg, /g and
// the seed forms chat: and groupchat:) that ends in a backslash goes on on
// the next line: the backslash becomes a newline. The lines after the
// first are text, whatever they start with. A message line ending in two
// backslashes ends there, with one of them (so a message may end in a
// backslash). Other lines are taken as they are: "/login bob pw\" has the
// password "pw\". Both input readers use it, so the syntax is the same on
// a terminal and in a script.
type joiner struct {
	parts []string // the message's lines so far, their last backslash removed
	size  int      // their bytes
	cut   bool     // a line was cut: the whole is refused
}

// maxInputLine is the longest line, and message over several lines, read
// whole: far more than a request may carry (a frame is 64 KiB by default,
// a message text at most wire.MaxTextBytes), so anything refused is
// refused with its own size or the server's limit, never cut.
const maxInputLine = 1 << 20

// add takes one line of input; cut says that it was not read whole. When
// the line ends a command (or a message), done is true and whole is the
// full line, its parts joined by newlines; whole is then refused (cut
// true) if any of its lines was cut or it is longer than maxInputLine.
func (j *joiner) add(line string, cut bool) (whole string, wasCut, done bool) {
	line = strings.TrimSuffix(line, "\r")
	if !j.pending() && !isMessageLine(line) {
		return line, cut, true
	}
	more := false
	switch {
	case cut: // its end is not what was typed
	case strings.HasSuffix(line, `\\`):
		line = line[:len(line)-1]
	case strings.HasSuffix(line, `\`):
		line, more = line[:len(line)-1], true
	}
	switch room := maxInputLine - j.size; {
	case j.cut && len(j.parts) > 0:
		// refused already: the first part names the command
	case len(line)+1 > room: // +1: the newline
		j.parts, j.cut = append(j.parts, line[:max(room-1, 0)]), true
	default:
		j.parts = append(j.parts, line)
		j.size += len(line) + 1
	}
	j.cut = j.cut || cut
	if more {
		return "", false, false
	}
	return j.end()
}

// pending reports whether a message is being continued.
func (j *joiner) pending() bool { return len(j.parts) > 0 || j.cut }

// end finishes the message being continued: at the end of input, what was
// typed is sent as it is.
func (j *joiner) end() (whole string, cut bool, done bool) {
	whole, cut = strings.Join(j.parts, "\n"), j.cut
	*j = joiner{}
	return whole, cut, true
}

// isMessageLine reports whether a line sends a message, so that a final
// backslash continues it.
func isMessageLine(line string) bool {
	cmd := lineCommand(line)
	return cmd != nil && cmd.sendsText()
}

// lineCommand is the table entry a line runs, without reading its
// arguments: say for text, nil for an unknown slash command or a blank line.
func lineCommand(line string) *command {
	trimmed := strings.TrimSpace(line)
	switch {
	case trimmed == "":
		return nil
	case strings.HasPrefix(trimmed, "/"):
		name, _ := splitWord(trimmed[1:])
		return bySlash[name]
	}
	word, _, hasColon := strings.Cut(trimmed, ":")
	if cmd := bySeed[word]; cmd != nil && (hasColon || len(cmd.seedArgs()) == 0 || cmd.seedArgs()[0] == argIgnored) {
		return cmd // as parseSeed reads it
	}
	return say
}

// tooLongLine is the input for a line refused because it was cut: the
// error names the line's command when it is known ("error msg: too long:
// ..."). why says what was too long.
func tooLongLine(line, why string) input {
	err := &usageError{hint: "too long: " + why + "; nothing was sent"}
	if cmd := lineCommand(line); cmd != nil {
		err.cmd = cmd.name
	}
	return input{err: err}
}
