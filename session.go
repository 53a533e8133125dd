package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
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
	// loading is true while the sets are being read (from the session's
	// registration until loadSession, and during a resync): pushes that
	// change them wait in stash, to be applied after what was read, in
	// order.
	loading    bool
	stash      []*Push
	overflowed bool // the stash outgrew -send-queue: the connection is closing
	// credentials are fingerprints of the password hashes this session
	// knows: the one it logged in with and the one it set, if it changed
	// the password. A resync that finds another one in the store closes
	// the session, as the kick it missed would have.
	credentials [2]uint64
}

// credentialOf is the fingerprint of a password hash kept by a session: not
// the hash itself, which stays out of long-lived memory.
func credentialOf(hash []byte) uint64 {
	sum := sha256.Sum256(hash)
	return binary.BigEndian.Uint64(sum[:8])
}

// setCredential records that the session set the password to hash.
func (s *session) setCredential(hash []byte) {
	s.mu.Lock()
	s.credentials[1] = credentialOf(hash)
	s.mu.Unlock()
}

// knowsCredential reports whether hash is one this session logged in with
// or set.
func (s *session) knowsCredential(hash []byte) bool {
	f := credentialOf(hash)
	s.mu.Lock()
	defer s.mu.Unlock()
	return f == s.credentials[0] || f == s.credentials[1]
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
func (c *conn) startSession(ctx context.Context, acct Account, device string) (s *session, first bool, err error) {
	srv := c.srv
	u := acct.User
	s = &session{
		user:        u,
		device:      device,
		since:       nowMS(),
		ref:         SessionRef{Node: srv.cfg.Node, ID: c.id},
		backlogDone: make(chan struct{}),
		loading:     true,
	}
	s.credentials[0] = credentialOf(acct.Hash)
	// Before the registration: a resync may start on the session from then.
	s.ctx, s.cancel = context.WithCancel(context.Background())
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
	srv.hub.register(u.ID, c)
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
	c.setSets(s, &sessionSets{friends: friendIDs, groups: groupIDs, blockedBy: slices.Clone(blockedBy)})
	if first {
		c.srv.pushPresence(s, true)
	}
}

// sessionSets are the sets of a session's state, as read from the store.
type sessionSets struct{ friends, groups, blockedBy []int64 }

// startLoading starts a read of the session's sets (a resync); false if
// one is under way already.
func (s *session) startLoading() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loading {
		return false
	}
	s.loading = true
	return true
}

// setSets ends a read of the sets: they become what was read (nil: they
// stay as they are, the read having failed), the group subscriptions
// follow, and the pushes stashed meanwhile are applied on top.
func (c *conn) setSets(s *session, read *sessionSets) {
	var joined, left []int64
	if read != nil {
		friends, groups, blockedBy := sortedSet(read.friends), sortedSet(read.groups), sortedSet(read.blockedBy)
		s.mu.Lock()
		joined, left = setDiff(groups, s.groups), setDiff(s.groups, groups)
		s.friends, s.groups, s.blockedBy = friends, groups, blockedBy
		s.mu.Unlock()
	}
	c.subscribeFor(s, joined...)
	c.srv.hub.unsubscribeAll(c, left...)
	// Pushes that arrive while the stash is replayed join it, behind the
	// ones being applied: the order stays the order of arrival.
	for {
		s.mu.Lock()
		batch := s.stash
		s.stash = nil
		if len(batch) == 0 {
			s.loading = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		for _, p := range batch {
			c.applyState(s, p)
		}
	}
}

// changeOwn makes a change to the session's sets of its own doing (a
// request it made): at once, and, if a resync is reading the sets, once more
// after it, as what it read may be from before the change.
func (c *conn) changeOwn(s *session, p *Push) {
	s.mu.Lock()
	if s.loading {
		s.stash = append(s.stash, p)
	}
	s.mu.Unlock()
	c.applyState(s, p)
}

// setDiff returns the members of the sorted set a that are not in the
// sorted set b.
func setDiff(a, b []int64) []int64 {
	var out []int64
	for _, x := range a {
		if _, ok := slices.BinarySearch(b, x); !ok {
			out = append(out, x)
		}
	}
	return out
}

// resync brings a session up to date after pushes meant for it may have
// been lost (the node's Redis subscription came back, or another node's
// could not publish): a session whose account was deleted, or whose
// password was changed by another session, is closed as the kick it
// missed would have closed it; otherwise its sets are read again, as at a
// login. The caller then streams what is pending, as at a login.
//
// An error leaves the session as it was; a session that ends meanwhile is
// no error.
func (c *conn) resync(s *session) error {
	srv := c.srv
	ctx, cancel := context.WithTimeout(s.ctx, storeTimeout)
	defer cancel()
	acct, err := srv.store.Account(ctx, "", s.user.ID)
	switch {
	case errors.Is(err, ErrNoSuchUser), err == nil && acct.Deleted:
		c.deliver(&Push{Kind: pushKick, Frame: kickedFrame(reasonAccountDeleted)})
		return nil
	case err != nil:
		return sessionGone(s, err)
	case !s.knowsCredential(acct.Hash):
		c.deliver(&Push{Kind: pushKick, Frame: kickedFrame(reasonPasswordChanged)})
		return nil
	}
	if !s.startLoading() {
		return nil // a login is reading them now, after its registration
	}
	read, err := srv.store.SessionState(ctx, s.user.ID)
	if err != nil {
		c.setSets(s, nil)
		return sessionGone(s, err)
	}
	c.setSets(s, &read)
	return nil
}

// sessionGone is err, or nil if s has ended: then err is only its cause.
func sessionGone(s *session, err error) error {
	if s.ctx.Err() != nil {
		return nil
	}
	return err
}

// stashed keeps p for setSets while the session's sets are being read;
// false when they are not, and p is to be applied now. Past -send-queue stashed pushes the
// connection is closed, as for a client that does not read its pushes.
func (s *session) stashed(c *conn, p *Push) bool {
	s.mu.Lock()
	if !s.loading {
		s.mu.Unlock()
		return false
	}
	full := len(s.stash) >= c.srv.cfg.SendQueue
	overflow := full && !s.overflowed // the connection is closed once
	if full {
		s.overflowed = true
	} else {
		s.stash = append(s.stash, p)
	}
	s.mu.Unlock()
	if overflow {
		c.srv.metrics.slowClosed.Add(1)
		c.log.Info("closing client: too many changes while its state was read", "stashed", c.srv.cfg.SendQueue)
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
