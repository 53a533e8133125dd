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
// error) or a push. Group is an object in replies (and in the invited and
// group_updated pushes) and an id in other pushes; With is always an id
// (the other side of a private conversation, as this session sees it).
type frame struct {
	Type          string          `json:"type"`
	RID           json.RawMessage `json:"rid"`
	OK            bool            `json:"ok"`
	Code          wire.Code       `json:"code"`
	Error         string          `json:"error"`
	User          *wire.User      `json:"user"`
	Friend        *wire.User      `json:"friend"`
	Friends       []wire.User     `json:"friends"`
	Users         []wire.User     `json:"users"`
	Total         int             `json:"total"`
	Groups        []group         `json:"groups"`
	Group         json.RawMessage `json:"group"`
	Message       *message        `json:"message"`
	Messages      []message       `json:"messages"`
	Reason        string          `json:"reason"`
	Backlog       bool            `json:"backlog"`  // a message push from the pending backlog
	Requests      []wire.User     `json:"requests"` // login: incoming friend requests
	Incoming      []wire.User     `json:"incoming"`
	Outgoing      []wire.User     `json:"outgoing"`
	Status        string          `json:"status"` // add_friend: "requested" or "friends"
	Sessions      []session       `json:"sessions"`
	Conversations []conv          `json:"conversations"`
	ID            int64           `json:"id"`   // read, deleted: a message id
	With          int64           `json:"with"` // read, typing, deleted
	By            *wire.User      `json:"by"`   // invited, member_removed
}

// message is a message as the client reads it: the wire's, and the state
// version 2 adds. The fields are the client's own rather than
// wire.Message's so that the client reads them whatever that type holds;
// being shallower, they win over fields of the same JSON name there. (The
// client only decodes messages: wire.Message's MarshalJSON, promoted here,
// would encode the wire's fields alone.)
type message struct {
	wire.Message
	Edited  int64 `json:"edited"`  // ms: the time of the last edit; 0 if never edited
	Deleted bool  `json:"deleted"` // a tombstone: Text is ""
}

// group is a group as the client reads it, with the fields of version 2:
// Private, and Count in find_groups.
type group struct {
	wire.Group
	Private bool `json:"private"`
	Count   int  `json:"count"`
}

// session is one of the user's sessions, in the sessions reply.
type session struct {
	Device string `json:"device"`
	Since  int64  `json:"since"` // ms
}

// conv is one conversation of the conversations reply: With or Group.
type conv struct {
	With   *wire.User `json:"with"`
	Group  *group     `json:"group"`
	Last   *message   `json:"last"`
	Read   int64      `json:"read"`
	Unread int        `json:"unread"`
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
func (f *frame) groupObj() *group {
	var g group
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
	groups map[int64]*group // as last seen, to say what a group_updated changed
	loc    *time.Location
}

func newNames(loc *time.Location) *names {
	if loc == nil {
		loc = time.Local
	}
	return &names{users: map[int64]string{}, groups: map[int64]*group{}, loc: loc}
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

// addGroup remembers a group as seen; one without members (a push or a
// search result) keeps the members seen before.
func (n *names) addGroup(g *group) {
	if len(n.groups) >= maxNames {
		clear(n.groups)
	}
	kept := *g
	kept.Count = 0
	if kept.Members == nil {
		if old := n.groups[g.ID]; old != nil {
			kept.Members = old.Members
		}
	}
	n.groups[g.ID] = &kept
	for _, m := range g.Members {
		n.addUser(m.ID, m.Name)
	}
}

// memberJoined adds a member to a group as last seen (for the roles that
// group_updated compares).
func (n *names) memberJoined(gid int64, u *wire.User) {
	if g := n.groups[gid]; g != nil && g.Members != nil {
		for _, m := range g.Members {
			if m.ID == u.ID {
				return
			}
		}
		g.Members = append(g.Members[:len(g.Members):len(g.Members)], wire.Member{ID: u.ID, Name: u.Name, Role: wire.RoleMember})
	}
}

// memberLeft removes a member from a group as last seen.
func (n *names) memberLeft(gid, uid int64) {
	g := n.groups[gid]
	if g == nil {
		return
	}
	kept := make([]wire.Member, 0, len(g.Members))
	for _, m := range g.Members {
		if m.ID != uid {
			kept = append(kept, m)
		}
	}
	if g.Members != nil {
		g.Members = kept
	}
}

// forgetGroup forgets a deleted group's state but keeps its name for the
// lines that still mention it.
func (n *names) forgetGroup(id int64) {
	if g := n.groups[id]; g != nil {
		n.groups[id] = &group{Group: wire.Group{ID: id, Name: g.Name}}
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

// knows reports whether user names id by more than its number.
func (n *names) knows(id int64) bool {
	_, ok := n.users[id]
	return ok || id == n.me && id != 0
}

// knowsGroup reports whether group names id by more than its number.
func (n *names) knowsGroup(id int64) bool {
	_, ok := n.groups[id]
	return ok
}

// group names a group: "#3 gophers", or "#3" when unknown.
func (n *names) group(id int64) string {
	s := "#" + strconv.FormatInt(id, 10)
	if g, ok := n.groups[id]; ok {
		s += " " + clean(g.Name)
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
	for id, g := range n.groups {
		if g.Name == name {
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

// msgTag is a message's id and state, in brackets after its time:
// "[981]", "[981 edited]", "[981 deleted]". The id is what /edit and /del
// take; the state is here rather than beside the text, where a text could
// fake it.
func msgTag(m *message) string {
	id := strconv.FormatInt(m.ID, 10)
	switch {
	case m.Deleted:
		return "[" + id + " deleted]"
	case m.Edited != 0:
		return "[" + id + " edited]"
	}
	return "[" + id + "]"
}

// msgText is a message's text as printed: "(deleted)" for a tombstone.
func msgText(m *message) string {
	if m.Deleted {
		return "(deleted)"
	}
	return cleanText(m.Text)
}

// sender names who sent a message: "you", or the name it carries.
func (n *names) sender(m *message) string {
	from := n.user(m.From)
	if m.From != n.me || n.me == 0 {
		if m.FromName != "" {
			from = clean(m.FromName)
		}
	}
	return from
}

// fmtMessage formats a message:
//
//	message 2026-11-27 14:03 [981] alice -> you: hi
//	message (away) 2026-11-27 14:03 [982 edited] alice -> #3 gophers: hi
//	history 2026-11-27 14:03 [983 deleted] you -> bob: (deleted)
//	message 2026-11-27 14:03 [984] alice -> you: two
//	  | lines
func fmtMessage(n *names, m *message, kind msgKind) string {
	return fmt.Sprintf("%s %s %s %s -> %s: %s", kind, n.time(m.TS), msgTag(m), n.sender(m), n.to(&m.Message), msgText(m))
}

// fmtSent is the reply to one's own message.
func fmtSent(n *names, m *message) string {
	return fmt.Sprintf("sent %s %s you -> %s: %s", n.time(m.TS), msgTag(m), n.to(&m.Message), msgText(m))
}

// fmtEdited is a message as an edit left it (the edited push; after "ok "
// the reply to /edit), at the time of the edit:
//
//	edited 2026-11-27 14:05 [981] alice -> you: the new text
func fmtEdited(n *names, m *message) string {
	ts := m.Edited
	if ts == 0 {
		ts = m.TS
	}
	return fmt.Sprintf("edited %s [%d] %s -> %s: %s", n.time(ts), m.ID, n.sender(m), n.to(&m.Message), msgText(m))
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

// fmtLogin formats a login reply: the summary, the friends, the groups,
// and the friend requests waiting for an answer when there are any.
func fmtLogin(u *wire.User, friends []wire.User, groups []group, requests []wire.User) []string {
	lines := []string{
		fmt.Sprintf("ok login %s (id %d): %s, %s", clean(u.Name), u.ID,
			plural(len(friends), "friend", "friends"), plural(len(groups), "group", "groups")),
		fmtFriends(friends),
		fmtGroups(groups),
	}
	if len(requests) > 0 {
		lines = append(lines, "friend requests: "+fmtUsers(requests)+": /accept USER or /decline USER")
	}
	return lines
}

// fmtUsers: "alice (id 1), bob (id 2)".
func fmtUsers(users []wire.User) string {
	parts := make([]string, len(users))
	for i, u := range users {
		parts[i] = fmt.Sprintf("%s (id %d)", clean(u.Name), u.ID)
	}
	return strings.Join(parts, ", ")
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

// fmtGroup: "#2 gophers [alice (creator, online), bob (admin), carol]";
// a private group is "#2 gophers (private) [...]".
func fmtGroup(g *group) string {
	members := make([]string, len(g.Members))
	for i, m := range g.Members {
		var marks []string
		if m.Role == wire.RoleCreator || m.Role == wire.RoleAdmin {
			marks = append(marks, string(m.Role))
		}
		if m.Online {
			marks = append(marks, "online")
		}
		s := clean(m.Name)
		if len(marks) > 0 {
			s += " (" + strings.Join(marks, ", ") + ")"
		}
		members[i] = s
	}
	return fmt.Sprintf("#%d %s%s [%s]", g.ID, clean(g.Name), privateMark(g.Private), strings.Join(members, ", "))
}

func privateMark(private bool) string {
	if private {
		return " (private)"
	}
	return ""
}

// fmtGroups: "groups: #2 gophers [alice (online), bob], #5 x [carol]" or "groups: none".
func fmtGroups(groups []group) string {
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
		return fmtKicked(f.Reason)
	case "shutdown":
		// The reason is not shown: it tells a client what to do ("reconnect
		// to another node"), and this one does it by itself, to the one
		// address it was given, where the server will be once it is back
		// (behind a proxy, another node at once).
		return "shutdown: the server is shutting down; reconnecting when it is back"
	case "friend_request":
		if f.User == nil {
			return ""
		}
		arg := userArg(f.User)
		return fmt.Sprintf("friend request from %s (id %d): /accept %s or /decline %s", clean(f.User.Name), f.User.ID, arg, arg)
	case "friend_removed":
		if f.User == nil {
			return ""
		}
		return fmt.Sprintf("friend %s (id %d) removed: you are no longer friends", clean(f.User.Name), f.User.ID)
	case "typing":
		if f.User == nil {
			return ""
		}
		return fmt.Sprintf("typing %s -> %s", clean(f.User.Name), n.place(f))
	case "edited":
		if f.Message == nil {
			return ""
		}
		return fmtEdited(n, f.Message)
	case "deleted":
		if f.ID == 0 {
			return ""
		}
		if f.groupID() != 0 {
			return fmt.Sprintf("deleted [%d] in %s", f.ID, n.group(f.groupID()))
		}
		return fmt.Sprintf("deleted [%d] with %s", f.ID, n.user(f.With))
	case "invited":
		g := f.groupObj()
		if g == nil {
			return ""
		}
		return fmt.Sprintf("invited to #%d %s%s by %s: /join %d", g.ID, clean(g.Name), privateMark(g.Private), byName(n, f.By), g.ID)
	case "member_removed":
		if f.User == nil {
			return ""
		}
		if f.User.ID == n.me && n.me != 0 {
			return fmt.Sprintf("removed from %s by %s", n.group(f.groupID()), byName(n, f.By))
		}
		return fmt.Sprintf("member %s removed from %s by %s", clean(f.User.Name), n.group(f.groupID()), byName(n, f.By))
	case "group_deleted":
		return fmt.Sprintf("group %s deleted", n.group(f.groupID()))
	}
	return ""
}

// place names the conversation of a read, typing or deleted push from
// the receiver's side: "you" for a private one with the pusher (with is
// the other side as this session sees it), a user, or a group.
func (n *names) place(f *frame) string {
	if g := f.groupID(); g != 0 {
		return n.group(g)
	}
	if f.User != nil && f.User.ID == f.With {
		return "you"
	}
	return n.user(f.With)
}

// byName names the user in a push's "by" field.
func byName(n *names, u *wire.User) string {
	if u == nil {
		return "someone"
	}
	if u.ID == n.me && n.me != 0 {
		return "you"
	}
	return clean(u.Name)
}

// userArg is how a command line names u: its name, or @NAME for a name
// of digits (which would read as an id).
func userArg(u *wire.User) string {
	if allDigits(u.Name) {
		return "@" + clean(u.Name)
	}
	return clean(u.Name)
}

// fmtKicked is the kicked line. A new login on this device (the only
// reason version 1 had) says that the session was taken, in the words
// scripts know; the reasons of version 2 (a logout everywhere, a changed
// password, a deleted account) are the server's own words.
func fmtKicked(r string) string {
	if r == "" || strings.Contains(r, "another connection") || strings.Contains(r, "logged in") {
		return "kicked: you logged in somewhere else, so this session was closed" + reason(r) +
			"; not reconnecting (/login to take the session back)"
	}
	return "kicked: this session was closed" + reason(r) + "; not reconnecting (/login to log in again)"
}

// fmtRead is a read receipt for one's own messages: the other side of a
// private conversation has read it up to id.
//
//	read by bob up to [981]
func fmtRead(reader string, id int64) string {
	return fmt.Sprintf("read by %s up to [%d]", clean(reader), id)
}

// fmtSynced is the synced push: every missed message has been shown.
func fmtSynced(missed int) string {
	if missed == 0 {
		return "synced: no messages missed; from here on everything is live"
	}
	return fmt.Sprintf("synced: %s missed while away shown; from here on everything is live", plural(missed, "message", "messages"))
}

// fmtGroupUpdated says what a group_updated push changed, against old, the
// group as last seen (nil when it was not):
//
//	group #3 gophers updated: renamed from gophs; now private; bob is now admin
//
// It is "" when both have their members and nothing changed: the echo of
// a change the user made and saw in its reply.
func fmtGroupUpdated(old, g *group) string {
	var changes []string
	if old != nil {
		if old.Name != g.Name {
			changes = append(changes, "renamed from "+clean(old.Name))
		}
		if old.Desc != g.Desc {
			if g.Desc == "" {
				changes = append(changes, "description removed")
			} else {
				changes = append(changes, "description: "+clean(g.Desc))
			}
		}
		if old.Private != g.Private {
			changes = append(changes, "now "+map[bool]string{true: "private", false: "public"}[g.Private])
		}
		if old.Members != nil && g.Members != nil {
			was := make(map[int64]wire.Role, len(old.Members))
			for _, m := range old.Members {
				was[m.ID] = m.Role
			}
			for _, m := range g.Members {
				if r, ok := was[m.ID]; ok && r != m.Role {
					changes = append(changes, clean(m.Name)+" is now "+string(m.Role))
				}
			}
		}
	}
	head := fmt.Sprintf("group #%d %s updated", g.ID, clean(g.Name))
	if len(changes) == 0 {
		if old != nil && old.Members != nil && g.Members != nil {
			return ""
		}
		return head
	}
	return head + ": " + strings.Join(changes, "; ")
}

func reason(r string) string {
	if r == "" {
		return ""
	}
	return " (" + clean(r) + ")"
}

// fmtRequests is the friend_requests reply:
//
//	friend requests: incoming alice (id 1); outgoing dave (id 6)
//	friend requests: none
func fmtRequests(incoming, outgoing []wire.User) string {
	var parts []string
	if len(incoming) > 0 {
		parts = append(parts, "incoming "+fmtUsers(incoming))
	}
	if len(outgoing) > 0 {
		parts = append(parts, "outgoing "+fmtUsers(outgoing))
	}
	if len(parts) == 0 {
		return "friend requests: none"
	}
	return "friend requests: " + strings.Join(parts, "; ")
}

// fmtBlocks is the blocks reply: "blocked: bob (id 2)" or "blocked: none".
func fmtBlocks(users []wire.User) string {
	if len(users) == 0 {
		return "blocked: none"
	}
	return "blocked: " + fmtUsers(users)
}

// fmtSessions is the sessions reply; device is this client's, marked:
//
//	sessions (2): laptop (this device) since 2026-11-27 14:03, phone since 2026-11-27 09:12
func fmtSessions(n *names, list []session, device string) string {
	parts := make([]string, len(list))
	for i, s := range list {
		name := clean(s.Device)
		if s.Device == "" {
			name = "(no device name)"
		}
		if s.Device == device {
			name += " (this device)"
		}
		parts[i] = name + " since " + n.time(s.Since)
	}
	if len(parts) == 0 {
		return "sessions (0)"
	}
	return fmt.Sprintf("sessions (%d): %s", len(parts), strings.Join(parts, ", "))
}

// convTextMax is how much of a last message a conversation line shows.
const convTextMax = 60

// fmtConv is one conversation of /convs, on one line (the last text cut
// and its newlines escaped: /history shows it whole):
//
//	conv bob (id 2): 2 unread; last 2026-11-27 14:03 [981] bob: see you
//	conv #3 gophers: 0 unread; no messages
func fmtConv(n *names, cv *conv) string {
	var who string
	switch {
	case cv.Group != nil:
		who = fmt.Sprintf("#%d %s%s", cv.Group.ID, clean(cv.Group.Name), privateMark(cv.Group.Private))
	case cv.With != nil:
		who = fmt.Sprintf("%s (id %d)", clean(cv.With.Name), cv.With.ID)
	default:
		return ""
	}
	last := "no messages"
	if m := cv.Last; m != nil {
		text := "(deleted)"
		if !m.Deleted {
			text = clean(cut(m.Text, convTextMax))
		}
		last = fmt.Sprintf("last %s %s %s: %s", n.time(m.TS), msgTag(m), n.sender(m), text)
	}
	return fmt.Sprintf("conv %s: %d unread; %s", who, cv.Unread, last)
}

// cut shortens s to at most max characters, marking the cut with "...".
func cut(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-3]) + "..."
}

// fmtFound is one group of a /findgroups result:
//
//	group #3 gophers (5 members): all things Go
func fmtFound(g *group) string {
	s := fmt.Sprintf("group #%d %s (%s)", g.ID, clean(g.Name), plural(g.Count, "member", "members"))
	if g.Desc != "" {
		s += ": " + clean(g.Desc)
	}
	return s
}

// fmtGroupInfo is a group's settings, for the replies that change them:
// "#3 gophers (private): all things Go".
func fmtGroupInfo(g *group) string {
	s := fmt.Sprintf("#%d %s%s", g.ID, clean(g.Name), privateMark(g.Private))
	if g.Desc != "" {
		s += ": " + clean(g.Desc)
	}
	return s
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

// requestHints say more about a bad_request or a forbidden where the cause
// is clear, by code and request type.
var requestHints = map[wire.Code]map[string]string{
	wire.CodeBadRequest: {
		"chat":       "you cannot message yourself, and the text must not be empty",
		"add_friend": "you cannot add yourself",
		"create_group": fmt.Sprintf("group names are 1-%d characters, descriptions at most %d",
			wire.MaxGroupNameRunes, wire.MaxGroupDescRunes),
		"update_group": fmt.Sprintf("group names are 1-%d characters, descriptions at most %d",
			wire.MaxGroupNameRunes, wire.MaxGroupDescRunes),
		"edit": "the text must not be empty",
	},
	wire.CodeForbidden: {
		"join_group":     "the group is private, or you were removed from it: it takes an invitation",
		"edit":           "only its sender may edit a message, and not once it is deleted",
		"delete_message": "only its sender, or the group's creator or an admin, may delete a message",
		"invite":         "in a private group only its creator or an admin may invite",
		"kick_member":    "only the group's creator or an admin may remove a member, and never the creator",
		"set_role":       "only the group's creator may change roles",
		"update_group":   "only the group's creator or an admin may change it",
		"delete_group":   "only the group's creator may delete it",
	},
}

// fmtError formats a failed reply: "error msg: there is no such user (no_such_user)".
func fmtError(what, typ string, code wire.Code, text string) string {
	sentence, ok := errorSentences[code]
	if !ok {
		sentence = "the server said: " + clean(text)
	}
	if hint, ok := requestHints[code][typ]; ok {
		sentence += " (" + hint + ")"
	}
	return fmt.Sprintf("error %s: %s (%s)", what, sentence, code)
}
