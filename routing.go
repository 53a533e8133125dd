package main

import (
	"context"
	"sort"
	"sync"
)

// SessionRef names one login session anywhere in the cluster.
type SessionRef struct {
	Node string
	ID   uint64 // the connection's id on that node
}

// Presence says who is online, and where, across the cluster. A claim is a
// lease: the in-process implementation holds it in memory; a clustered one
// keeps it in a shared store with an expiry, renewed while the node lives, so
// that a node that dies takes its users offline with it.
type Presence interface {
	// Claim makes sess the user's one session and returns the session it
	// took over, if there was one.
	Claim(ctx context.Context, u User, sess SessionRef) (prev *SessionRef, err error)
	// Release ends the claim if sess still holds it. It reports false when a
	// newer session has taken over: the user is still online.
	Release(ctx context.Context, u User, sess SessionRef) (bool, error)
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
	// Kick closes sess, which a newer login of user has replaced.
	Kick(sess SessionRef, user int64)
}

// hub is the registry of this node's logged-in sessions: the user each
// belongs to and the groups whose pushes each receives. Every node has one;
// the cluster's router feeds it pushes for local users.
type hub struct {
	mu     sync.RWMutex // guards the maps; held only for map operations
	users  map[int64]*conn
	groups map[int64]map[*conn]struct{}
	// onCount, if set, learns how many local members a group has after
	// each change (the cluster publishes it); called without the lock.
	onCount func(group int64, n int)
}

func newHub() *hub {
	return &hub{users: map[int64]*conn{}, groups: map[int64]map[*conn]struct{}{}}
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

// register makes c the local session of user, returning the local session it
// replaced, if any.
func (h *hub) register(user int64, c *conn, groups []int64) *conn {
	h.mu.Lock()
	prev := h.users[user]
	h.users[user] = c
	counts := make([]groupCount, 0, len(groups))
	for _, g := range groups {
		counts = append(counts, groupCount{g, h.subscribeLocked(g, c)})
	}
	h.mu.Unlock()
	h.report(counts)
	return prev
}

// unregister removes c and its group subscriptions. It leaves a newer
// session of the same user in place.
func (h *hub) unregister(user int64, c *conn, groups []int64) {
	h.mu.Lock()
	if h.users[user] == c {
		delete(h.users, user)
	}
	counts := make([]groupCount, 0, len(groups))
	for _, g := range groups {
		counts = append(counts, groupCount{g, h.unsubscribeLocked(g, c)})
	}
	h.mu.Unlock()
	h.report(counts)
}

func (h *hub) subscribe(g int64, c *conn) {
	h.mu.Lock()
	n := h.subscribeLocked(g, c)
	h.mu.Unlock()
	h.report([]groupCount{{g, n}})
}

func (h *hub) unsubscribe(g int64, c *conn) {
	h.mu.Lock()
	n := h.unsubscribeLocked(g, c)
	h.mu.Unlock()
	h.report([]groupCount{{g, n}})
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
	for _, c := range h.users {
		if s := c.sess.Load(); s != nil {
			sessions = append(sessions, s)
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
	for _, c := range h.users {
		out = append(out, c)
	}
	return out
}

func (h *hub) session(user int64) *conn {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.users[user]
}

// toUser queues p for user's local session, if there is one.
func (h *hub) toUser(user int64, p *Push) bool {
	c := h.session(user)
	if c == nil {
		return false
	}
	c.deliver(p)
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

// Kick is a no-op: on one node the hub's register already returned the
// replaced session, which the login closes itself.
func (r localRouter) Kick(SessionRef, int64) {}

// localPresence is presence for a single node.
type localPresence struct {
	mu    sync.Mutex // guards users
	users map[int64]presenceEntry
}

type presenceEntry struct {
	user User
	sess SessionRef
}

func newLocalPresence() *localPresence {
	return &localPresence{users: map[int64]presenceEntry{}}
}

func (p *localPresence) Claim(_ context.Context, u User, sess SessionRef) (*SessionRef, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	prev, ok := p.users[u.ID]
	p.users[u.ID] = presenceEntry{user: User{ID: u.ID, Name: u.Name}, sess: sess}
	if ok {
		return &prev.sess, nil
	}
	return nil, nil
}

func (p *localPresence) Release(_ context.Context, u User, sess SessionRef) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.users[u.ID]; ok && e.sess == sess {
		delete(p.users, u.ID)
		return true, nil
	}
	return false, nil
}

func (p *localPresence) Online(_ context.Context, limit int) ([]User, int, error) {
	p.mu.Lock()
	users := make([]User, 0, len(p.users))
	for _, e := range p.users {
		users = append(users, e.user)
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
