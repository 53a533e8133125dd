package main

import (
	"context"
	"slices"
	"sync"
	"time"
)

// session is a logged-in user on one connection.
type session struct {
	user   User
	device string
	since  int64 // login time, Unix ms
	ref    SessionRef
	ctx    context.Context // ends with the session
	cancel func()          // ends ctx
	// backlogDone is closed when the backlog streamer has finished.
	backlogDone chan struct{}
	mu          sync.Mutex // guards the sets below
	// Sorted ids: a fraction of a map's size, for the few dozen a user has.
	friends []int64
	groups  []int64 // groups the user is a member of
	// blockedBy are the users who have blocked this one: a chat, friend
	// request or typing notice to them is refused without a query.
	blockedBy []int64
	// loading is true from the session's registration until its sets are
	// read (loadSession): pushes that change them wait in stash, to be
	// applied after what was read, in order.
	loading bool
	stash   []*Push
}

func (s *session) setBlockedBy(id int64, blocked bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if blocked {
		s.blockedBy = addID(s.blockedBy, id)
	} else if i, ok := slices.BinarySearch(s.blockedBy, id); ok {
		s.blockedBy = slices.Delete(s.blockedBy, i, i+1)
	}
}

// isBlockedBy reports whether user id has blocked this session's user.
func (s *session) isBlockedBy(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := slices.BinarySearch(s.blockedBy, id)
	return ok
}

func (s *session) addFriend(id int64) {
	s.mu.Lock()
	s.friends = addID(s.friends, id)
	s.mu.Unlock()
}

func (s *session) removeFriend(id int64) {
	s.mu.Lock()
	if i, ok := slices.BinarySearch(s.friends, id); ok {
		s.friends = slices.Delete(s.friends, i, i+1)
	}
	s.mu.Unlock()
}

func (s *session) friendIDs() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.friends)
}

func (s *session) inGroup(g int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := slices.BinarySearch(s.groups, g)
	return ok
}

func (s *session) setGroup(g int64, member bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if member {
		s.groups = addID(s.groups, g)
	} else if i, ok := slices.BinarySearch(s.groups, g); ok {
		s.groups = slices.Delete(s.groups, i, i+1)
	}
}

func (s *session) groupIDs() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.groups)
}

// sortedSet sorts ids in place and drops repeats.
func sortedSet(ids []int64) []int64 {
	slices.Sort(ids)
	return slices.Compact(ids)
}

// addID inserts id into the sorted set ids.
func addID(ids []int64, id int64) []int64 {
	i, ok := slices.BinarySearch(ids, id)
	if ok {
		return ids
	}
	return slices.Insert(ids, i, id)
}

func (s *session) claim() claim {
	return claim{user: s.user, device: s.device, ref: s.ref, since: s.since}
}

// startSession makes c a session of u on device: it claims the device in
// presence (taking over an older session there) and registers the session
// for pushes, held until the login reply is queued. Registered first, then
// read: the caller reads the user's friends, groups and blocks after this
// and hands them to loadSession, so that a change made meanwhile is either
// in what it reads or pushed to this session (stashed until loadSession),
// never lost between the two. first reports the user's first session.
func (c *conn) startSession(ctx context.Context, u User, device string) (s *session, first bool, err error) {
	srv := c.srv
	s = &session{
		user:        u,
		device:      device,
		since:       nowMS(),
		ref:         SessionRef{Node: srv.cfg.Node, ID: c.id},
		backlogDone: make(chan struct{}),
		loading:     true,
	}
	// Claim and register must not interleave with another login of the same
	// user on this node, or presence and the hub could disagree.
	unlock := srv.lockUser(u.ID)
	res, err := srv.presence.Claim(ctx, s.claim(), srv.cfg.MaxDevices)
	if err != nil {
		unlock()
		return nil, false, err
	}
	c.sess.Store(s)
	c.holdPushes() // until the login reply is queued
	srv.hub.register(u.ID, c, nil)
	unlock()
	if res.prev != nil {
		srv.kickSession(*res.prev, u.ID)
	}
	srv.metrics.sessions.Add(1)
	return s, !res.wasOnline, nil
}

// loadSession gives a session started by startSession its sets, as read
// after its registration, subscribes it to its groups, applies on top the
// pushes stashed meanwhile, and, for the user's first session, tells the
// friends. Online first, then the backlog (after the reply): a message
// stored in between is routed live, and may come twice, never not at all.
func (c *conn) loadSession(s *session, friends []User, groups []Group, blockedBy []int64, first bool) {
	friendIDs := make([]int64, 0, len(friends))
	for _, f := range friends {
		friendIDs = append(friendIDs, f.ID)
	}
	groupIDs := make([]int64, 0, len(groups))
	for _, g := range groups {
		groupIDs = append(groupIDs, g.ID)
	}
	// The sets are empty until now: every change meant for them is stashed.
	s.mu.Lock()
	s.friends = sortedSet(friendIDs)
	s.groups = sortedSet(groupIDs)
	s.blockedBy = sortedSet(slices.Clone(blockedBy))
	subscribe := slices.Clone(s.groups)
	s.mu.Unlock()
	c.srv.hub.subscribeAll(c, subscribe)
	// Pushes that arrive while the stash is replayed join it, behind the
	// ones being applied: the order stays the order of arrival.
	for {
		s.mu.Lock()
		batch := s.stash
		s.stash = nil
		if len(batch) == 0 {
			s.loading = false
			s.mu.Unlock()
			break
		}
		s.mu.Unlock()
		for _, p := range batch {
			c.applyState(s, p)
		}
	}
	if first {
		c.srv.pushPresence(s, true)
	}
}

// stashed keeps p for loadSession while the session is loading; false when
// it is not, and p is to be applied now. Past -send-queue stashed pushes the
// connection is closed, as for a client that does not read its pushes.
func (s *session) stashed(c *conn, p *Push) bool {
	s.mu.Lock()
	if !s.loading {
		s.mu.Unlock()
		return false
	}
	full := len(s.stash) >= c.srv.cfg.SendQueue
	if !full {
		s.stash = append(s.stash, p)
	}
	s.mu.Unlock()
	if full {
		c.srv.metrics.slowClosed.Add(1)
		c.log.Info("closing client: too many changes while logging in", "stashed", c.srv.cfg.SendQueue)
		c.abort()
	}
	return true
}

// kickSession closes ref, a session of user that a newer login on the same
// device took over, on whichever node holds it.
func (s *Server) kickSession(ref SessionRef, user int64) {
	if ref.Node != s.cfg.Node {
		s.router.Kick(ref, user)
		return
	}
	if old := s.hub.find(user, ref.ID); old != nil {
		old.kick()
	}
}

// endSession logs the session out: unsubscribed, its device released, and
// friends told when it was the user's last session.
func (c *conn) endSession(ctx context.Context, s *session) {
	srv := c.srv
	if s.cancel != nil {
		s.cancel()
	}
	c.sess.Store(nil)
	c.dropPushes() // nothing for the old session after its logout reply
	srv.metrics.sessions.Add(-1)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	unlock := srv.lockUser(s.user.ID)
	srv.hub.unregister(s.user.ID, c, s.groupIDs())
	offline, err := srv.presence.Release(ctx, s.claim())
	unlock()
	if err != nil {
		c.log.Warn("release presence", "user", s.user.ID, "err", err)
		return
	}
	if offline {
		srv.pushPresence(s, false)
	}
}

// kickUser closes every session of user, anywhere in the cluster, but the
// connection except (0: every one), each after a kicked push with reason.
// Like every push it is best effort: a session that a node unreachable
// through Redis holds stays open.
func (s *Server) kickUser(user int64, except uint64, reason string) {
	s.router.ToUser(user, &Push{Kind: pushKick, Except: except, Frame: kickedFrame(reason)})
}

// userLocks serialise the logins and logouts of one user on this node. They
// are striped: a user's stripe is held only around its presence change.
type userLocks [64]sync.Mutex

func (s *Server) lockUser(id int64) (unlock func()) {
	m := &s.userLocks[uint64(id)%uint64(len(s.userLocks))]
	m.Lock()
	return m.Unlock
}
