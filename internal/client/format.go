package client

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"chat/internal/wire"
)

// Frames as the client decodes them, and the formatters: pure functions
// from a reply or push to output lines. The line formats are the stable
// plain-mode output documented in docs/client.md.

// frame is any frame from the server: a reply (it has a rid, or is an
// error) or a push. Group is an object in replies and an id in pushes.
type frame struct {
	Type     string          `json:"type"`
	RID      json.RawMessage `json:"rid"`
	OK       bool            `json:"ok"`
	Code     wire.Code       `json:"code"`
	Error    string          `json:"error"`
	User     *wire.User      `json:"user"`
	Friend   *wire.User      `json:"friend"`
	Friends  []wire.User     `json:"friends"`
	Users    []wire.User     `json:"users"`
	Total    int             `json:"total"`
	Groups   []wire.Group    `json:"groups"`
	Group    json.RawMessage `json:"group"`
	Message  *wire.Message   `json:"message"`
	Messages []wire.Message  `json:"messages"`
	Reason   string          `json:"reason"`
	Backlog  bool            `json:"backlog"` // a message push from the pending backlog
}

// decodeFrame decodes one line from the server.
func decodeFrame(line []byte) (*frame, error) {
	var f frame
	if err := json.Unmarshal(line, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// rid returns the frame's rid when it is one of ours (an integer).
func (f *frame) rid() (int64, bool) {
	if len(f.RID) == 0 || string(f.RID) == "null" {
		return 0, false
	}
	n, err := strconv.ParseInt(string(f.RID), 10, 64)
	return n, err == nil
}

// groupObj returns the group object of a reply.
func (f *frame) groupObj() *wire.Group {
	var g wire.Group
	if len(f.Group) == 0 || f.Group[0] != '{' || json.Unmarshal(f.Group, &g) != nil {
		return nil
	}
	return &g
}

// groupID returns the group id of a push.
func (f *frame) groupID() int64 {
	n, _ := strconv.ParseInt(string(f.Group), 10, 64)
	return n
}

// names turns ids into names for display: who "I" am, the users and
// groups seen so far, and the time zone.
type names struct {
	me     int64
	users  map[int64]string
	groups map[int64]string
	loc    *time.Location
}

func newNames(loc *time.Location) *names {
	if loc == nil {
		loc = time.Local
	}
	return &names{users: map[int64]string{}, groups: map[int64]string{}, loc: loc}
}

// maxNames bounds the name caches; past it they start again.
const maxNames = 50000

func (n *names) addUser(id int64, name string) {
	if id == 0 || name == "" {
		return
	}
	if len(n.users) >= maxNames {
		clear(n.users)
	}
	n.users[id] = name
}

func (n *names) addGroup(g *wire.Group) {
	if len(n.groups) >= maxNames {
		clear(n.groups)
	}
	n.groups[g.ID] = g.Name
	for _, m := range g.Members {
		n.addUser(m.ID, m.Name)
	}
}

// user names a user: "you", the name, or "user 12" when unknown.
func (n *names) user(id int64) string {
	if id == n.me && id != 0 {
		return "you"
	}
	if name, ok := n.users[id]; ok {
		return name
	}
	return "user " + strconv.FormatInt(id, 10)
}

// group names a group: "#3 gophers", or "#3" when unknown.
func (n *names) group(id int64) string {
	s := "#" + strconv.FormatInt(id, 10)
	if name, ok := n.groups[id]; ok {
		s += " " + clean(name)
	}
	return s
}

// userID finds a known user by name.
func (n *names) userID(name string) (int64, bool) {
	for id, s := range n.users {
		if s == name {
			return id, true
		}
	}
	return 0, false
}

// groupID finds one of the known groups by name.
func (n *names) groupID(name string) (int64, bool) {
	for id, s := range n.groups {
		if s == name {
			return id, true
		}
	}
	return 0, false
}

// to names where a message went: "you", a user, or a group.
func (n *names) to(m *wire.Message) string {
	if m.Group != 0 {
		return n.group(m.Group)
	}
	return n.user(m.To)
}

func (n *names) time(ms int64) string {
	return time.UnixMilli(ms).In(n.loc).Format("2006-01-02 15:04")
}

// clean makes text safe for one output line: control characters become
// escapes (\n, \t, \r, \x1b...), so one event stays one line and nothing
// from the network can drive the terminal. Names, reasons and error texts
// go through it.
func clean(s string) string { return escape(s, false) }

// escape escapes the control characters of s (C0, DEL, C1: every
// unicode.IsControl) but a tab when tab is true; a byte that is not UTF-8
// becomes U+FFFD. No escape sequence can come out of it.
func escape(s string, tab bool) string {
	escaped := func(r rune) bool { return unicode.IsControl(r) && !(tab && r == '\t') }
	if utf8.ValidString(s) && !strings.ContainsFunc(s, escaped) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\t' && tab:
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case unicode.IsControl(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r) // utf8.RuneError for a byte that is not UTF-8
		}
	}
	return b.String()
}

// contPrefix starts each further line of a message over several lines,
// so that the lines of one message stay together and a script can tell
// one message from the next: no other output line starts with it.
const contPrefix = "  | "

// cleanText makes a message text safe to print: each of its lines (a
// "\r\n" is a newline too) after the first goes on a line of its own
// starting with contPrefix; tabs are kept; other control characters are
// escaped as clean does.
func cleanText(s string) string {
	if !strings.Contains(s, "\n") {
		return escape(s, true)
	}
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	for i, l := range lines {
		lines[i] = escape(l, true)
	}
	return strings.Join(lines, "\n"+contPrefix)
}

// msgKind is how a message came to be shown.
type msgKind uint8

const (
	msgLive    msgKind = iota // pushed live
	msgAway                   // pushed at login, sent while the user was away
	msgHistory                // from /history
)

func (k msgKind) String() string {
	switch k {
	case msgAway:
		return "message (away)"
	case msgHistory:
		return "history"
	default:
		return "message"
	}
}

// fmtMessage formats a message:
//
//	message 2026-11-27 14:03 alice -> you: hi
//	message (away) 2026-11-27 14:03 alice -> #3 gophers: hi
//	history 2026-11-27 14:03 you -> bob: hi
//	message 2026-11-27 14:03 alice -> you: two
//	  | lines
func fmtMessage(n *names, m *wire.Message, kind msgKind) string {
	from := n.user(m.From)
	if m.From != n.me || n.me == 0 {
		if m.FromName != "" {
			from = clean(m.FromName)
		}
	}
	return fmt.Sprintf("%s %s %s -> %s: %s", kind, n.time(m.TS), from, n.to(m), cleanText(m.Text))
}

// fmtSent is the reply to one's own message.
func fmtSent(n *names, m *wire.Message) string {
	return fmt.Sprintf("sent %s you -> %s: %s", n.time(m.TS), n.to(m), cleanText(m.Text))
}

func onlineMark(online *bool) string {
	if online != nil && *online {
		return " (online)"
	}
	return ""
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// fmtLogin formats a login reply: the summary, the friends, the groups.
func fmtLogin(u *wire.User, friends []wire.User, groups []wire.Group) []string {
	return []string{
		fmt.Sprintf("ok login %s (id %d): %s, %s", clean(u.Name), u.ID,
			plural(len(friends), "friend", "friends"), plural(len(groups), "group", "groups")),
		fmtFriends(friends),
		fmtGroups(groups),
	}
}

// fmtFriends: "friends: bob (online), carol" or "friends: none".
func fmtFriends(friends []wire.User) string {
	if len(friends) == 0 {
		return "friends: none"
	}
	parts := make([]string, len(friends))
	for i, f := range friends {
		parts[i] = clean(f.Name) + onlineMark(f.Online)
	}
	return "friends: " + strings.Join(parts, ", ")
}

// fmtGroup: "#2 gophers [alice (online), bob]"
func fmtGroup(g *wire.Group) string {
	members := make([]string, len(g.Members))
	for i, m := range g.Members {
		s := clean(m.Name)
		if m.Online {
			s += " (online)"
		}
		members[i] = s
	}
	return fmt.Sprintf("#%d %s [%s]", g.ID, clean(g.Name), strings.Join(members, ", "))
}

// fmtGroups: "groups: #2 gophers [alice (online), bob], #5 x [carol]" or "groups: none".
func fmtGroups(groups []wire.Group) string {
	if len(groups) == 0 {
		return "groups: none"
	}
	parts := make([]string, len(groups))
	for i := range groups {
		parts[i] = fmtGroup(&groups[i])
	}
	return "groups: " + strings.Join(parts, ", ")
}

// fmtWho: "online (2): alice, bob"; "online (120, showing 100): ...".
func fmtWho(users []wire.User, total int) string {
	list := make([]string, len(users))
	for i, u := range users {
		list[i] = clean(u.Name)
	}
	sort.Strings(list)
	count := strconv.Itoa(total)
	if total > len(users) {
		count += fmt.Sprintf(", showing %d", len(users))
	}
	if len(list) == 0 {
		return "online (" + count + "): nobody"
	}
	return "online (" + count + "): " + strings.Join(list, ", ")
}

// fmtPush formats a push other than message; "" for a push type the
// client does not know (ignored, as the protocol asks).
func fmtPush(n *names, f *frame) string {
	switch f.Type {
	case "presence":
		if f.User == nil {
			return ""
		}
		state := "offline"
		if f.User.Online != nil && *f.User.Online {
			state = "online"
		}
		return fmt.Sprintf("presence %s %s", clean(f.User.Name), state)
	case "friend_added":
		if f.Friend == nil {
			return ""
		}
		return fmt.Sprintf("friend %s (id %d) added you", clean(f.Friend.Name), f.Friend.ID)
	case "member_joined", "member_left":
		if f.User == nil {
			return ""
		}
		verb := "joined"
		if f.Type == "member_left" {
			verb = "left"
		}
		return fmt.Sprintf("member %s %s %s", clean(f.User.Name), verb, n.group(f.groupID()))
	case "kicked":
		return "kicked: you logged in somewhere else, so this session was closed" + reason(f.Reason) +
			"; not reconnecting (/login to take the session back)"
	case "shutdown":
		// The reason is not shown: it tells a client what to do ("reconnect
		// to another node"), and this one does it by itself, to the one
		// address it was given, where the server will be once it is back
		// (behind a proxy, another node at once).
		return "shutdown: the server is shutting down; reconnecting when it is back"
	}
	return ""
}

func reason(r string) string {
	if r == "" {
		return ""
	}
	return " (" + clean(r) + ")"
}

// errorSentences maps every error code of docs/protocol.md to a plain
// sentence (docs/client.md has the same table).
var errorSentences = map[wire.Code]string{
	wire.CodeBadFrame:        "the server could not read the request",
	wire.CodeFrameTooLarge:   "the request is too large for the server",
	wire.CodeUnknownType:     "the server does not know this request",
	wire.CodeBadRequest:      "the server refused the request as malformed",
	wire.CodeNotLoggedIn:     "you are not logged in: /login NAME first",
	wire.CodeBadCredentials:  "wrong name or password",
	wire.CodeNameTaken:       "that name is taken",
	wire.CodeInvalidName:     fmt.Sprintf("names are 1-%d letters, digits and _ . -", wire.MaxNameRunes),
	wire.CodeInvalidPass:     fmt.Sprintf("passwords are %d-%d bytes", wire.MinPasswordBytes, wire.MaxPasswordBytes),
	wire.CodeNoSuchUser:      "there is no such user",
	wire.CodeNoSuchGroup:     "there is no such group",
	wire.CodeNotMember:       "you are not a member of that group",
	wire.CodeTooLong:         fmt.Sprintf("too long: messages are at most %d bytes", wire.MaxTextBytes),
	wire.CodeRateLimited:     "you are sending too fast; wait a moment",
	wire.CodeUnavailable:     "the server is temporarily unavailable; try again later",
	wire.CodeInternal:        "the server had an internal error",
	wire.CodeForbidden:       "you are not allowed to do that",
	wire.CodeNoSuchMessage:   "there is no such message",
	wire.CodeBlocked:         "that user has blocked you",
	wire.CodeTooManySessions: "you are logged in on too many devices; log out on one first",
}

// badRequestHints say more about a bad_request where the cause is clear,
// by request type.
var badRequestHints = map[string]string{
	"chat":       "you cannot message yourself, and the text must not be empty",
	"add_friend": "you cannot add yourself",
	"create_group": fmt.Sprintf("group names are 1-%d characters, descriptions at most %d",
		wire.MaxGroupNameRunes, wire.MaxGroupDescRunes),
}

// fmtError formats a failed reply: "error msg: there is no such user (no_such_user)".
func fmtError(what, typ string, code wire.Code, text string) string {
	sentence, ok := errorSentences[code]
	if !ok {
		sentence = "the server said: " + clean(text)
	}
	if code == wire.CodeBadRequest {
		if hint, ok := badRequestHints[typ]; ok {
			sentence += " (" + hint + ")"
		}
	}
	return fmt.Sprintf("error %s: %s (%s)", what, sentence, code)
}
