package client

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"chat/internal/wire"
)

// The formatters: pure functions from a reply or push to output lines.
// The line formats are the stable plain-mode output documented in
// docs/client.md.

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
