package client

import (
	"strconv"
	"time"

	"chat/internal/wire"
)

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
