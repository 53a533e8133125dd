package main

import (
	"cmp"
	"context"
	"slices"
	"sort"
	"strings"
	"sync"
)

// SessionRef names one login session anywhere in the cluster.
type SessionRef struct {
	Node string
	ID   uint64 // the connection's id, unique in the cluster
}

// claim is a session's entry in presence: one per user and device.
type claim struct {
	user   User
	device string
	ref    SessionRef
	since  int64 // login time, Unix ms
}

// claimed is what a claim found.
type claimed struct {
	prev      *SessionRef // the session on the same device that the claim took over
	wasOnline bool        // the user had a live session before, on any device
}

// SessionInfo is one session of a user, as the sessions request lists it.
type SessionInfo struct {
	Device  string `json:"device"`
	Since   int64  `json:"since"`
	Current bool   `json:"current,omitempty"` // the session that asked
	ref     SessionRef
}

// Presence says who is online, and where, across the cluster: a user's
// sessions, one per device. A claim is a lease: the in-process
// implementation holds it in memory; a clustered one keeps it in a shared
// store with an expiry, renewed while the node lives, so that a node that
// dies takes its sessions with it.
type Presence interface {
	// Claim makes cl the user's session on its device, taking over the
	// device's older session, if any. It fails with ErrTooManySessions when
	// the user holds max sessions on other devices.
	Claim(ctx context.Context, cl claim, max int) (claimed, error)
	// Release ends the claim if it still holds its device. It reports
	// whether the user is offline now: no session left anywhere.
	Release(ctx context.Context, cl claim) (offline bool, err error)
	// Sessions lists the user's live sessions, oldest first.
	Sessions(ctx context.Context, user int64) ([]SessionInfo, error)
	// Online lists up to limit online users, by id, and how many there are.
	Online(ctx context.Context, limit int) ([]User, int, error)
	// AreOnline tells which of ids are online.
	AreOnline(ctx context.Context, ids []int64) (map[int64]bool, error)
}

// pushKind tells a Push's receiving node what to do beyond queuing the frame.
type pushKind uint8

// The numbers travel between nodes (nodemsg.go): append, never renumber.
const (
	pushPlain         pushKind = iota // presence, member_joined, typing, ...
	pushMessage                       // a chat message: counted as delivered
	pushFriendAdded                   // the receiving session gains friend Ref
	pushFriendRemoved                 // the receiving session loses friend Ref
	pushGroupJoined                   // the receiving session is now in group Ref
	pushGroupLeft                     // the receiving session is no longer in group Ref
	pushKick                          // Frame is "kicked": the session is closed after it
	pushBlockedBy                     // user Ref has blocked the receiving session's user
	pushUnblockedBy                   // user Ref no longer blocks the receiving session's user
)

// Push is a frame for one or more sessions, with what the frame means for
// the receiving session's state. A push whose Frame is empty changes state
// only: the client gets nothing (the other sessions of a user who blocked
// someone lose the friend without a friend_removed).
type Push struct {
	Kind  pushKind
	Frame []byte
	Ref   int64 // the friend, group or blocker of pushFriend*, pushGroup*, push*BlockedBy
	// Except is the id of a connection that does not get the push: the
	// session whose own action it reports (a message's copies go to the
	// sender's other sessions). Connection ids are unique in the cluster.
	Except uint64
	// pushMessage: where the message sits, so that the node that delivers
	// it finds it when the recipient acks (recentMessages) without a query.
	MsgID int64
	At    topicSeq
}

// Router carries pushes to users wherever they are logged in. Delivery is
// best effort: a user who misses a push gets every unacked message again at
// the next login, and a fresh friends list and presence with it.
type Router interface {
	ToUser(user int64, p *Push)
	// ToGroup pushes to the group's online members except one user.
	ToGroup(group, except int64, p *Push)
	// Kick closes sess, which a newer login of user on the same device has
	// replaced.
	Kick(sess SessionRef, user int64)
}

// hub is the registry of this node's logged-in sessions: the user each
// belongs to and the groups whose pushes each receives. Every node has one;
// the cluster's router feeds it pushes for local users.
type hub struct {
	mu     sync.RWMutex // guards the maps; held only for map operations
	users  map[int64][]*conn
	groups map[int64]map[*conn]struct{}
	// onCount, if set, learns how many local members a group has after
	// each change (the cluster publishes it); called without the lock.
	onCount func(group int64, n int)
}

func newHub() *hub {
	return &hub{users: map[int64][]*conn{}, groups: map[int64]map[*conn]struct{}{}}
}

type groupCount struct {
	group int64
	n     int
}

func (h *hub) report(counts []groupCount) {
	if h.onCount != nil {
		for _, c := range counts {
			h.onCount(c.group, c.n)
		}
	}
}

// register adds c to user's local sessions; its groups follow
// (subscribeAll) once they are read.
func (h *hub) register(user int64, c *conn) {
	h.mu.Lock()
	h.users[user] = append(h.users[user], c)
	h.mu.Unlock()
}

// unregister removes c and its group subscriptions.
func (h *hub) unregister(user int64, c *conn, groups []int64) {
	h.mu.Lock()
	if conns := slices.DeleteFunc(h.users[user], func(x *conn) bool { return x == c }); len(conns) == 0 {
		delete(h.users, user)
	} else {
		h.users[user] = conns
	}
	counts := h.eachLocked(groups, c, h.unsubscribeLocked)
	h.mu.Unlock()
	h.report(counts)
}

// subscribeAll subscribes c to every group of groups.
func (h *hub) subscribeAll(c *conn, groups ...int64) { h.each(groups, c, h.subscribeLocked) }

// unsubscribeAll unsubscribes c from every group of groups.
func (h *hub) unsubscribeAll(c *conn, groups ...int64) { h.each(groups, c, h.unsubscribeLocked) }

// each applies op, subscribeLocked or unsubscribeLocked, to c and each
// group under the lock, and reports the counts after it.
func (h *hub) each(groups []int64, c *conn, op func(g int64, c *conn) int) {
	if len(groups) == 0 {
		return
	}
	h.mu.Lock()
	counts := h.eachLocked(groups, c, op)
	h.mu.Unlock()
	h.report(counts)
}

func (h *hub) eachLocked(groups []int64, c *conn, op func(g int64, c *conn) int) []groupCount {
	counts := make([]groupCount, 0, len(groups))
	for _, g := range groups {
		counts = append(counts, groupCount{g, op(g, c)})
	}
	return counts
}

func (h *hub) subscribeLocked(g int64, c *conn) int {
	set := h.groups[g]
	if set == nil {
		set = map[*conn]struct{}{}
		h.groups[g] = set
	}
	set[c] = struct{}{}
	return len(set)
}

func (h *hub) unsubscribeLocked(g int64, c *conn) int {
	set := h.groups[g]
	if set == nil {
		return 0
	}
	delete(set, c)
	if len(set) == 0 {
		delete(h.groups, g)
	}
	return len(set)
}

// snapshot returns the local sessions and each group's local member count.
func (h *hub) snapshot() ([]*session, map[int64]int) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	sessions := make([]*session, 0, len(h.users))
	for _, conns := range h.users {
		for _, c := range conns {
			if s := c.sess.Load(); s != nil {
				sessions = append(sessions, s)
			}
		}
	}
	counts := make(map[int64]int, len(h.groups))
	for g, set := range h.groups {
		counts[g] = len(set)
	}
	return sessions, counts
}

// conns returns the local sessions' connections.
func (h *hub) conns() []*conn {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]*conn, 0, len(h.users))
	for _, conns := range h.users {
		out = append(out, conns...)
	}
	return out
}

// sessionsOf returns user's local sessions' connections.
func (h *hub) sessionsOf(user int64) []*conn {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return slices.Clone(h.users[user])
}

// find returns user's local session on connection id, or nil.
func (h *hub) find(user int64, id uint64) *conn {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, c := range h.users[user] {
		if c.id == id {
			return c
		}
	}
	return nil
}

// toUser queues p for each of user's local sessions, reporting whether
// there was one.
func (h *hub) toUser(user int64, p *Push) bool {
	h.mu.RLock()
	conns := h.users[user]
	var one *conn
	var many []*conn
	switch len(conns) {
	case 0:
		h.mu.RUnlock()
		return false
	case 1: // the common case, without a copy
		one = conns[0]
	default:
		many = slices.Clone(conns)
	}
	h.mu.RUnlock()
	if one != nil {
		one.deliver(p)
		return true
	}
	for _, c := range many {
		c.deliver(p)
	}
	return true
}

// toGroup queues p for the group's local members but except. The
// recipients are copied out so that no lock is held while queuing.
func (h *hub) toGroup(group, except int64, p *Push) {
	h.mu.RLock()
	set := h.groups[group]
	targets := make([]*conn, 0, len(set))
	for c := range set {
		targets = append(targets, c)
	}
	h.mu.RUnlock()
	for _, c := range targets {
		if c.userID() != except {
			c.deliver(p)
		}
	}
}

// localRouter routes within one node: every session is in the hub.
type localRouter struct{ hub *hub }

func (r localRouter) ToUser(user int64, p *Push)           { r.hub.toUser(user, p) }
func (r localRouter) ToGroup(group, except int64, p *Push) { r.hub.toGroup(group, except, p) }

// Kick is a no-op: on one node every session is local, and the login that
// took one over closes it itself.
func (r localRouter) Kick(SessionRef, int64) {}

// localPresence is presence for a single node.
type localPresence struct {
	mu    sync.Mutex // guards users
	users map[int64]*localUser
}

// localUser is an online user's sessions, by device.
type localUser struct {
	name     string
	sessions map[string]claim
}

func newLocalPresence() *localPresence {
	return &localPresence{users: map[int64]*localUser{}}
}

func (p *localPresence) Claim(_ context.Context, cl claim, max int) (claimed, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	lu := p.users[cl.user.ID]
	if lu == nil {
		lu = &localUser{name: cl.user.Name, sessions: map[string]claim{}}
		p.users[cl.user.ID] = lu
	}
	prev, taken := lu.sessions[cl.device]
	others := len(lu.sessions)
	if taken {
		others--
	}
	if others >= max {
		return claimed{}, ErrTooManySessions
	}
	lu.sessions[cl.device] = cl
	res := claimed{wasOnline: others > 0 || taken}
	if taken {
		res.prev = &prev.ref
	}
	return res, nil
}

func (p *localPresence) Release(_ context.Context, cl claim) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	lu := p.users[cl.user.ID]
	if lu == nil || lu.sessions[cl.device].ref != cl.ref {
		return false, nil
	}
	delete(lu.sessions, cl.device)
	if len(lu.sessions) > 0 {
		return false, nil
	}
	delete(p.users, cl.user.ID)
	return true, nil
}

func (p *localPresence) Sessions(_ context.Context, user int64) ([]SessionInfo, error) {
	p.mu.Lock()
	var out []SessionInfo
	if lu := p.users[user]; lu != nil {
		for _, cl := range lu.sessions {
			out = append(out, SessionInfo{Device: cl.device, Since: cl.since, ref: cl.ref})
		}
	}
	p.mu.Unlock()
	sortSessions(out)
	return out, nil
}

// sortSessions orders sessions oldest first, then by device.
func sortSessions(ss []SessionInfo) {
	slices.SortFunc(ss, func(a, b SessionInfo) int {
		if a.Since != b.Since {
			return cmp.Compare(a.Since, b.Since)
		}
		return strings.Compare(a.Device, b.Device)
	})
}

func (p *localPresence) Online(_ context.Context, limit int) ([]User, int, error) {
	p.mu.Lock()
	users := make([]User, 0, len(p.users))
	for id, lu := range p.users {
		users = append(users, User{ID: id, Name: lu.name})
	}
	p.mu.Unlock()
	users, total := firstByID(users, limit)
	return users, total, nil
}

// firstByID sorts users by id and keeps the first limit, returning how many
// there were.
func firstByID(users []User, limit int) ([]User, int) {
	sort.Slice(users, func(i, j int) bool { return users[i].ID < users[j].ID })
	total := len(users)
	if len(users) > limit {
		users = users[:limit]
	}
	return users, total
}

func (p *localPresence) AreOnline(_ context.Context, ids []int64) (map[int64]bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[int64]bool, len(ids))
	for _, id := range ids {
		if _, ok := p.users[id]; ok {
			out[id] = true
		}
	}
	return out, nil
}
