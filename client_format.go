package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// The client's wire types and formatters. A formatter is a pure function
// from a reply or push to output lines; the line formats are the stable
// plain-mode output documented in docs/client.md.

// clUser, clMember, clGroup and clMessage are the wire objects as the client
// decodes them.
type clUser struct {
	ID     int64  `json:"id"`
	Name   string `json:"name"`
	Online *bool  `json:"online"`
}

type clMember struct {
	ID     int64  `json:"id"`
	Name   string `json:"name"`
	Role   string `json:"role"`
	Online bool   `json:"online"`
}

type clGroup struct {
	ID      int64      `json:"id"`
	Name    string     `json:"name"`
	Desc    string     `json:"desc"`
	Members []clMember `json:"members"`
}

type clMessage struct {
	ID       int64  `json:"id"`
	From     int64  `json:"from"`
	FromName string `json:"from_name"`
	To       int64  `json:"to"`
	Group    int64  `json:"group"`
	Text     string `json:"text"`
	TS       int64  `json:"ts"`
}

// clFrame is any frame from the server: a reply (it has a rid, or is an
// error) or a push. Group is an object in replies and an id in pushes.
type clFrame struct {
	Type     string          `json:"type"`
	RID      json.RawMessage `json:"rid"`
	OK       bool            `json:"ok"`
	Code     string          `json:"code"`
	Error    string          `json:"error"`
	User     *clUser         `json:"user"`
	Friend   *clUser         `json:"friend"`
	Friends  []clUser        `json:"friends"`
	Users    []clUser        `json:"users"`
	Total    int             `json:"total"`
	Groups   []clGroup       `json:"groups"`
	Group    json.RawMessage `json:"group"`
	Message  *clMessage      `json:"message"`
	Messages []clMessage     `json:"messages"`
	Reason   string          `json:"reason"`
	Backlog  bool            `json:"backlog"` // a message push from the pending backlog
}

// clDecodeFrame decodes one line from the server.
func clDecodeFrame(line []byte) (*clFrame, error) {
	var f clFrame
	if err := json.Unmarshal(line, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// rid returns the frame's rid when it is one of ours (an integer).
func (f *clFrame) rid() (int64, bool) {
	if len(f.RID) == 0 || string(f.RID) == "null" {
		return 0, false
	}
	n, err := strconv.ParseInt(string(f.RID), 10, 64)
	return n, err == nil
}

// groupObj returns the group object of a reply.
func (f *clFrame) groupObj() *clGroup {
	var g clGroup
	if len(f.Group) == 0 || f.Group[0] != '{' || json.Unmarshal(f.Group, &g) != nil {
		return nil
	}
	return &g
}

// groupID returns the group id of a push.
func (f *clFrame) groupID() int64 {
	n, _ := strconv.ParseInt(string(f.Group), 10, 64)
	return n
}

// clNames turns ids into names for display: who "I" am, the users and
// groups seen so far, and the time zone.
type clNames struct {
	me     int64
	users  map[int64]string
	groups map[int64]string
	loc    *time.Location
}

func newClNames(loc *time.Location) *clNames {
	if loc == nil {
		loc = time.Local
	}
	return &clNames{users: map[int64]string{}, groups: map[int64]string{}, loc: loc}
}

// clMaxNames bounds the name caches; past it they start again.
const clMaxNames = 50000

func (n *clNames) addUser(id int64, name string) {
	if id == 0 || name == "" {
		return
	}
	if len(n.users) >= clMaxNames {
		clear(n.users)
	}
	n.users[id] = name
}

func (n *clNames) addGroup(g *clGroup) {
	if len(n.groups) >= clMaxNames {
		clear(n.groups)
	}
	n.groups[g.ID] = g.Name
	for _, m := range g.Members {
		n.addUser(m.ID, m.Name)
	}
}

// user names a user: "you", the name, or "user 12" when unknown.
func (n *clNames) user(id int64) string {
	if id == n.me && id != 0 {
		return "you"
	}
	if name, ok := n.users[id]; ok {
		return name
	}
	return "user " + strconv.FormatInt(id, 10)
}

// group names a group: "#3 gophers", or "#3" when unknown.
func (n *clNames) group(id int64) string {
	s := "#" + strconv.FormatInt(id, 10)
	if name, ok := n.groups[id]; ok {
		s += " " + clClean(name)
	}
	return s
}

// userID finds a known user by name.
func (n *clNames) userID(name string) (int64, bool) {
	for id, s := range n.users {
		if s == name {
			return id, true
		}
	}
	return 0, false
}

// groupID finds one of the known groups by name.
func (n *clNames) groupID(name string) (int64, bool) {
	for id, s := range n.groups {
		if s == name {
			return id, true
		}
	}
	return 0, false
}

func (n *clNames) time(ms int64) string {
	return time.UnixMilli(ms).In(n.loc).Format("2006-01-02 15:04")
}

// clClean makes text safe for one output line: control characters become
// escapes (\n, \t, \r, \x1b...), so one event stays one line and nothing
// from the network can drive the terminal.
func clClean(s string) string {
	clean := true
	for _, r := range s {
		if unicode.IsControl(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case unicode.IsControl(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// clMsgKind is how a message came to be shown.
type clMsgKind uint8

const (
	clMsgLive    clMsgKind = iota // pushed live
	clMsgAway                     // pushed at login, sent while the user was away
	clMsgHistory                  // from /history
)

func (k clMsgKind) String() string {
	switch k {
	case clMsgAway:
		return "message (away)"
	case clMsgHistory:
		return "history"
	default:
		return "message"
	}
}

// clFmtMessage formats a message:
//
//	message 2026-11-27 14:03 alice -> you: hi
//	message (away) 2026-11-27 14:03 alice -> #3 gophers: hi
//	history 2026-11-27 14:03 you -> bob: hi
func clFmtMessage(n *clNames, m *clMessage, kind clMsgKind) string {
	from := n.user(m.From)
	if m.From != n.me || n.me == 0 {
		if m.FromName != "" {
			from = clClean(m.FromName)
		}
	}
	to := n.user(m.To)
	if m.Group != 0 {
		to = n.group(m.Group)
	}
	return fmt.Sprintf("%s %s %s -> %s: %s", kind, n.time(m.TS), from, to, clClean(m.Text))
}

// clFmtSent is the reply to one's own message.
func clFmtSent(n *clNames, m *clMessage) string {
	to := n.user(m.To)
	if m.Group != 0 {
		to = n.group(m.Group)
	}
	return fmt.Sprintf("sent %s you -> %s: %s", n.time(m.TS), to, clClean(m.Text))
}

func clOnlineMark(online *bool) string {
	if online != nil && *online {
		return " (online)"
	}
	return ""
}

func clPlural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// clFmtLogin formats a login reply: the summary, the friends, the groups.
func clFmtLogin(u *clUser, friends []clUser, groups []clGroup) []string {
	return []string{
		fmt.Sprintf("ok login %s (id %d): %s, %s", clClean(u.Name), u.ID,
			clPlural(len(friends), "friend", "friends"), clPlural(len(groups), "group", "groups")),
		clFmtFriends(friends),
		clFmtGroups(groups),
	}
}

// clFmtFriends: "friends: bob (online), carol" or "friends: none".
func clFmtFriends(friends []clUser) string {
	if len(friends) == 0 {
		return "friends: none"
	}
	parts := make([]string, len(friends))
	for i, f := range friends {
		parts[i] = clClean(f.Name) + clOnlineMark(f.Online)
	}
	return "friends: " + strings.Join(parts, ", ")
}

// clFmtGroup: "#2 gophers [alice (online), bob]"
func clFmtGroup(g *clGroup) string {
	members := make([]string, len(g.Members))
	for i, m := range g.Members {
		s := clClean(m.Name)
		if m.Online {
			s += " (online)"
		}
		members[i] = s
	}
	return fmt.Sprintf("#%d %s [%s]", g.ID, clClean(g.Name), strings.Join(members, ", "))
}

// clFmtGroups: "groups: #2 gophers [alice (online), bob], #5 x [carol]" or "groups: none".
func clFmtGroups(groups []clGroup) string {
	if len(groups) == 0 {
		return "groups: none"
	}
	parts := make([]string, len(groups))
	for i := range groups {
		parts[i] = clFmtGroup(&groups[i])
	}
	return "groups: " + strings.Join(parts, ", ")
}

// clFmtWho: "online (2): alice, bob"; "online (120, showing 100): ...".
func clFmtWho(users []clUser, total int) string {
	names := make([]string, len(users))
	for i, u := range users {
		names[i] = clClean(u.Name)
	}
	sort.Strings(names)
	count := strconv.Itoa(total)
	if total > len(users) {
		count += fmt.Sprintf(", showing %d", len(users))
	}
	if len(names) == 0 {
		return "online (" + count + "): nobody"
	}
	return "online (" + count + "): " + strings.Join(names, ", ")
}

// clFmtPush formats a push other than message; "" for a push type the
// client does not know (ignored, as the protocol asks).
func clFmtPush(n *clNames, f *clFrame) string {
	switch f.Type {
	case "presence":
		if f.User == nil {
			return ""
		}
		state := "offline"
		if f.User.Online != nil && *f.User.Online {
			state = "online"
		}
		return fmt.Sprintf("presence %s %s", clClean(f.User.Name), state)
	case "friend_added":
		if f.Friend == nil {
			return ""
		}
		return fmt.Sprintf("friend %s (id %d) added you", clClean(f.Friend.Name), f.Friend.ID)
	case "member_joined", "member_left":
		if f.User == nil {
			return ""
		}
		verb := "joined"
		if f.Type == "member_left" {
			verb = "left"
		}
		return fmt.Sprintf("member %s %s %s", clClean(f.User.Name), verb, n.group(f.groupID()))
	case "kicked":
		return "kicked: you logged in somewhere else, so this session was closed" + clReason(f.Reason) +
			"; not reconnecting (/login to take the session back)"
	case "shutdown":
		return "shutdown: the server is shutting down" + clReason(f.Reason) + "; reconnecting"
	}
	return ""
}

func clReason(r string) string {
	if r == "" {
		return ""
	}
	return " (" + clClean(r) + ")"
}

// clErrorSentences maps every error code of PROTOCOL.md to a plain sentence.
var clErrorSentences = map[string]string{
	"bad_frame":        "the server could not read the request",
	"frame_too_large":  "the request is too large for the server",
	"unknown_type":     "the server does not know this request",
	"bad_request":      "the server refused the request as malformed",
	"not_logged_in":    "you are not logged in: /login NAME first",
	"bad_credentials":  "wrong name or password",
	"name_taken":       "that name is taken",
	"invalid_name":     "names are 1-32 letters, digits and _ . -",
	"invalid_password": "passwords are 6-72 bytes",
	"no_such_user":     "there is no such user",
	"no_such_group":    "there is no such group",
	"not_member":       "you are not a member of that group",
	"too_long":         "too long: messages are at most 4096 bytes",
	"rate_limited":     "you are sending too fast; wait a moment",
	"unavailable":      "the server is temporarily unavailable; try again later",
	"internal":         "the server had an internal error",
}

// clBadRequestHints say more about a bad_request where the cause is clear.
var clBadRequestHints = map[string]string{
	"chat":         "you cannot message yourself, and the text must not be empty",
	"add_friend":   "you cannot add yourself",
	"create_group": "group names are 1-64 characters, descriptions at most 256",
}

// clFmtError formats a failed reply: "error msg: there is no such user (no_such_user)".
func clFmtError(what, typ, code, text string) string {
	sentence, ok := clErrorSentences[code]
	if !ok {
		sentence = "the server said: " + clClean(text)
	}
	if code == "bad_request" {
		if hint, ok := clBadRequestHints[typ]; ok {
			sentence += " (" + hint + ")"
		}
	}
	return fmt.Sprintf("error %s: %s (%s)", what, sentence, code)
}

// clHelpLines is /help's output.
func clHelpLines() []string {
	lines := []string{"commands:"}
	for _, h := range clCommandHelp {
		lines = append(lines, fmt.Sprintf("  %-26s %s", h.usage, h.what))
	}
	lines = append(lines, "the seed project's commands work too:")
	for _, h := range clSeedHelp {
		lines = append(lines, fmt.Sprintf("  %-26s %s", h.usage, h.what))
	}
	lines = append(lines, "USER is a name or an id (@NAME for a name made of digits); a line not starting with / goes to the open conversation")
	return lines
}
