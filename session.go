package main

import (
	"context"
	"sync"
	"time"
)

// session is a logged-in user on one connection.
type session struct {
	user    User
	ref     SessionRef
	limiter rateLimiter     // reader goroutine only
	ctx     context.Context // ends with the session
	cancel  func()          // ends ctx
	// backlogDone is closed when the backlog streamer has finished.
	backlogDone chan struct{}
	mu          sync.Mutex // guards the sets below
	friends     map[int64]bool
	groups      map[int64]bool // groups the user is a member of
}

func (s *session) addFriend(id int64) {
	s.mu.Lock()
	s.friends[id] = true
	s.mu.Unlock()
}

func (s *session) friendIDs() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int64, 0, len(s.friends))
	for id := range s.friends {
		ids = append(ids, id)
	}
	return ids
}

func (s *session) inGroup(g int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.groups[g]
}

func (s *session) setGroup(g int64, member bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if member {
		s.groups[g] = true
	} else {
		delete(s.groups, g)
	}
}

func (s *session) groupIDs() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int64, 0, len(s.groups))
	for id := range s.groups {
		ids = append(ids, id)
	}
	return ids
}

// rateLimiter is a token bucket: rate tokens a second, up to burst.
type rateLimiter struct {
	rate, burst float64
	tokens      float64
	last        time.Time
}

func newRateLimiter(rate float64) rateLimiter {
	burst := max(2*rate, 1) // a rate under 0.5/s still lets one through
	return rateLimiter{rate: rate, burst: burst, tokens: burst, last: time.Now()}
}

// allow takes a token if there is one. A zero rate is unlimited.
func (l *rateLimiter) allow(now time.Time) bool {
	if l.rate == 0 {
		return true
	}
	l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}

// startSession makes u the user of c: it takes the user's presence (kicking
// an older session), subscribes to its groups and tells its friends. Online
// first, then the backlog: a message stored in between is routed live, and
// may come twice, never not at all.
func (c *conn) startSession(ctx context.Context, u User, friends []User, groups []Group) (*session, error) {
	srv := c.srv
	s := &session{
		user:    u,
		ref:     SessionRef{Node: srv.cfg.Node, ID: c.id},
		limiter: newRateLimiter(srv.cfg.Rate),
		friends: make(map[int64]bool, len(friends)),
		groups:  make(map[int64]bool, len(groups)),

		backlogDone: make(chan struct{}),
	}
	for _, f := range friends {
		s.friends[f.ID] = true
	}
	for _, g := range groups {
		s.groups[g.ID] = true
	}
	// Claim and register must not interleave with another login of the same
	// user, or presence and the hub could name different sessions.
	unlock := srv.lockUser(u.ID)
	prev, err := srv.presence.Claim(ctx, u, s.ref)
	if err != nil {
		unlock()
		return nil, err
	}
	c.sess.Store(s)
	c.holdPushes() // until the login reply is queued
	old := srv.hub.register(u.ID, c, s.groupIDs())
	unlock()
	if old != nil && old != c {
		old.kick()
	}
	if prev != nil && prev.Node != srv.cfg.Node {
		srv.router.Kick(*prev, u.ID)
	}
	srv.metrics.sessions.Add(1)
	if prev == nil {
		srv.pushPresence(s, true)
	}
	return s, nil
}

// endSession logs the session out: unsubscribed, presence released, and
// friends told, unless a newer login of the same user took over.
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
	released, err := srv.presence.Release(ctx, s.user, s.ref)
	unlock()
	if err != nil {
		c.log.Warn("release presence", "user", s.user.ID, "err", err)
		return
	}
	if released {
		srv.pushPresence(s, false)
	}
}

// userLocks serialise the logins and logouts of one user on this node. They
// are striped: a user's stripe is held only around its presence change.
type userLocks [64]sync.Mutex

func (s *Server) lockUser(id int64) (unlock func()) {
	m := &s.userLocks[uint64(id)%uint64(len(s.userLocks))]
	m.Lock()
	return m.Unlock
}
