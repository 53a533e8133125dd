package main

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"chat/internal/wire"
)

// The abuse controls on the way in (docs/protocol.md, "Abuse controls"):
// failed logins are throttled per account and per client address, register
// per address, and bcrypt, the dearest thing a request can make the server
// do, runs at most GOMAXPROCS at a time.

const (
	// loginFreeFailures are the failed logins an account may have before
	// it is locked: a person mistyping gets a few tries, a guesser a few
	// a window. loginAddrFreeFailures is the same per client address, over
	// all the accounts tried from there: higher, since one address may be
	// many people (a NAT), lower than many accounts' worth.
	loginFreeFailures     = 5
	loginAddrFreeFailures = 20
	// Past them, each failure locks the account (or address) for
	// loginLockBase, doubled with every further failure, up to
	// loginLockMax: 1 s after an account's 5th, 2 s, 4 s, ... 5 min from
	// its 14th. A success clears the account's failures (not the
	// address's: one account of its own must not let a guesser reset the
	// address).
	loginLockBase = time.Second
	loginLockMax  = 5 * time.Minute
	// loginWindow: failures are forgotten once none came for this long.
	loginWindow = 15 * time.Minute
	// throttleEntries bounds each throttle map; past it the expired
	// entries go, then the oldest.
	throttleEntries = 100_000

	// registerPerMinute accounts may be registered a minute from one
	// address, in bursts of as many: enough for a family or a classroom
	// behind one address, too few to fill the database.
	registerPerMinute = 10
	// userBuckets bounds the per-user rate limit map (entries live only
	// while a bucket refills: a few seconds past a user's last request).
	userBuckets = 1 << 17
)

// guard holds the per-user rate limit, the throttles and the hashing slots.
// It is set up on first use, by Server.guard.
type guard struct {
	once      sync.Once
	users     bucketMap[int64]  // the rate limit, per user
	registers bucketMap[string] // register, per address
	accounts  failMap           // failed logins, per account
	addrs     failMap           // failed logins, per address
	hashSlots chan struct{}     // one per bcrypt operation running

	metrics *Metrics // the counters below are the server's metrics

	// Test hooks, set before the server serves: throttleLoopback applies
	// the per-address throttles to loopback clients too; onHash runs in
	// each hashing slot, before the hash.
	throttleLoopback bool
	onHash           func()
}

func (s *Server) guard() *guard {
	g := &s.abuse
	g.once.Do(func() {
		g.metrics = s.metrics
		g.users.init(s.cfg.Rate, max(2*s.cfg.Rate, 1), userBuckets)
		g.registers.init(registerPerMinute/60.0, registerPerMinute, throttleEntries)
		g.accounts = failMap{free: loginFreeFailures, m: map[string]*failEntry{}}
		g.addrs = failMap{free: loginAddrFreeFailures, m: map[string]*failEntry{}}
		g.hashSlots = make(chan struct{}, runtime.GOMAXPROCS(0))
	})
	return g
}

// charge takes a request's cost from its user's bucket, or answers
// rate_limited with the time until the tokens are there.
func (s *Server) charge(c *conn, cmd *command) *ProtoError {
	sess := c.sess.Load()
	if cmd.cost == 0 || s.cfg.Rate == 0 || sess == nil {
		return nil
	}
	ok, wait := s.guard().users.take(sess.user.ID, time.Now(), cmd.cost, cmd.overdraw)
	if ok {
		return nil
	}
	return rateLimited(wait, "over the rate limit of %g a second; retry after %d ms", s.cfg.Rate, retryAfterMS(wait))
}

// addrKey names a client address for the per-address throttles, as
// clientKey counts it; exempt is true for a proxy (loopback or trusted).
func (g *guard) addrKey(c *conn) (key string, exempt bool) {
	k, proxy := clientKey(c.nc.RemoteAddr(), c.srv.cfg.TrustedProxies)
	if proxy && !g.throttleLoopback {
		return "", true
	}
	if k.Addr().Is4() {
		return k.Addr().String(), false // "192.0.2.7", not "192.0.2.7/32", in the log
	}
	return k.String(), false
}

// registerAllowed charges a register to the client's address.
func (s *Server) registerAllowed(c *conn) *ProtoError {
	g := s.guard()
	key, exempt := g.addrKey(c)
	if exempt {
		return nil
	}
	if ok, wait := g.registers.take(key, time.Now(), 1, false); !ok {
		g.metrics.throttled.Add(1)
		return rateLimited(wait, "too many accounts registered from your address; retry after %d ms", retryAfterMS(wait))
	}
	return nil
}

// hash runs f, one bcrypt operation, in a hashing slot: at most GOMAXPROCS
// run at once, so that a flood of logins and registers queues here instead
// of taking every core from the rest. Without a slot before ctx ends, the
// request is answered unavailable.
func (s *Server) hash(ctx context.Context, f func()) error {
	g := s.guard()
	select {
	case g.hashSlots <- struct{}{}:
	case <-ctx.Done():
		return errHashBusy
	}
	defer func() { <-g.hashSlots }()
	g.metrics.hashing.Add(1)
	defer g.metrics.hashing.Add(-1)
	g.metrics.passwordHashes.Add(1)
	if g.onHash != nil {
		g.onHash()
	}
	f()
	return nil
}

var errHashBusy = protoErr(wire.CodeUnavailable, "the server is busy; retry later")

// loginAttempt is one login's hold on the throttles, from before its
// password is checked until done.
type loginAttempt struct {
	g       *guard
	addr    string // "" when the address is exempt
	account string // "" until admitted on an account
}

// loginTry admits a login from c's address, before anything is looked up.
func (s *Server) loginTry(c *conn) (*loginAttempt, time.Duration) {
	g := s.guard()
	at := &loginAttempt{g: g}
	key, exempt := g.addrKey(c)
	if exempt {
		return at, 0
	}
	if wait, logIt, muted := g.addrs.admit(key, time.Now()); wait > 0 {
		g.refused(c, "address", key, wait, logIt, muted)
		return nil, wait
	}
	at.addr = key
	return at, 0
}

// account admits the attempt on an account: "u"+id for a user, else the
// name or id as given, so that an unknown name is throttled like a known
// one and the answers tell nothing about which names exist. On a refusal
// the attempt is over.
func (at *loginAttempt) onAccount(key string, c *conn, field, name string) time.Duration {
	if wait, logIt, muted := at.g.accounts.admit(key, time.Now()); wait > 0 {
		at.g.refused(c, field, name, wait, logIt, muted)
		at.done(attemptCancelled)
		return wait
	}
	at.account = key
	return 0
}

// refused counts a login refused by a throttle, and logs it if logIt.
// field and name say what was throttled: "name" or "id" and the account as
// the client named it, or "address" and the address.
func (g *guard) refused(c *conn, field, name string, wait time.Duration, logIt bool, muted int) {
	g.metrics.throttled.Add(1)
	if logIt {
		c.log.Info("login failed", field, logName(name), "reason", "throttled",
			"retry_after_ms", retryAfterMS(wait), "refused_unlogged", muted)
	}
}

type attemptOutcome uint8

const (
	attemptCancelled attemptOutcome = iota // the password was not checked
	attemptFailed
	attemptSucceeded
)

// done records how the attempt ended.
func (at *loginAttempt) done(o attemptOutcome) {
	now := time.Now()
	if at.addr != "" {
		ao := o
		if ao == attemptSucceeded {
			ao = attemptCancelled // a success does not clear the address
		}
		at.g.addrs.done(at.addr, ao, now)
	}
	if at.account != "" {
		at.g.accounts.done(at.account, o, now)
	}
	if o == attemptFailed {
		at.g.metrics.loginFailures.Add(1)
	}
	at.addr, at.account = "", ""
}

// failMap counts failed logins per key (an account, an address) and locks
// a key that has too many. Logins in flight count as failing until they
// end: a guesser's parallel attempts get no more tries than serial ones.
type failMap struct {
	free int        // failures before the first lock
	mu   sync.Mutex // guards m and the entries
	m    map[string]*failEntry
}

type failEntry struct {
	failures int
	pending  int       // attempts admitted and not yet done
	last     time.Time // of the last failure
	until    time.Time // locked until
	logged   time.Time // last refusal logged
	muted    int       // refusals not logged since
}

// lockFor is how long the failures-th failure locks a key for.
func (fm *failMap) lockFor(failures int) time.Duration {
	if failures < fm.free {
		return 0
	}
	n := min(failures-fm.free, 20)
	return min(loginLockBase<<n, loginLockMax)
}

// stale reports an entry that holds nothing worth keeping.
func (e *failEntry) stale(now time.Time) bool {
	return e.pending == 0 && !now.Before(e.until) && now.Sub(e.last) >= loginWindow
}

// admit takes a place for one attempt, or returns how long to wait: until
// the lock ends, or, when the attempts in flight would lock the key if
// they failed, that lock. Of the refusals, the first each second is to be
// logged (logIt), with the number not logged since (muted): a flood of
// throttled attempts must not become a flood of log lines.
func (fm *failMap) admit(key string, now time.Time) (wait time.Duration, logIt bool, muted int) {
	fm.mu.Lock()
	e := fm.m[key]
	switch {
	case e == nil:
		if len(fm.m) >= throttleEntries {
			fm.evict(now)
		}
		e = &failEntry{}
		fm.m[key] = e
	case e.stale(now):
		*e = failEntry{}
	}
	switch {
	case now.Before(e.until):
		wait = e.until.Sub(now)
	case e.pending >= max(fm.free-e.failures, 1):
		wait = fm.lockFor(e.failures + e.pending)
	default:
		e.pending++
		fm.mu.Unlock()
		return 0, false, 0
	}
	logIt, muted = now.Sub(e.logged) >= time.Second, e.muted
	if logIt {
		e.logged, e.muted = now, 0
	} else {
		e.muted++
	}
	fm.mu.Unlock()
	return wait, logIt, muted
}

// done ends an admitted attempt.
func (fm *failMap) done(key string, o attemptOutcome, now time.Time) {
	fm.mu.Lock()
	defer fm.mu.Unlock()
	e := fm.m[key]
	if e == nil {
		return // cannot happen: an entry with attempts pending stays
	}
	e.pending--
	switch o {
	case attemptFailed:
		e.failures++
		e.last = now
		if d := fm.lockFor(e.failures); d > 0 {
			e.until = now.Add(d)
		}
	case attemptSucceeded:
		e.failures, e.until = 0, time.Time{}
	}
	if e.pending == 0 && e.failures == 0 && !now.Before(e.until) {
		delete(fm.m, key)
	}
}

// evict makes room: the stale entries go, then the oldest eighth of the
// rest (by last failure) that have no attempt in flight.
func (fm *failMap) evict(now time.Time) {
	for k, e := range fm.m {
		if e.stale(now) {
			delete(fm.m, k)
		}
	}
	if len(fm.m) < throttleEntries {
		return
	}
	type entry struct {
		key  string
		last time.Time
	}
	all := make([]entry, 0, len(fm.m))
	for k, e := range fm.m {
		if e.pending == 0 {
			all = append(all, entry{k, e.last})
		}
	}
	slices.SortFunc(all, func(a, b entry) int { return a.last.Compare(b.last) })
	for _, e := range all[:min(len(all), len(fm.m)/8+1)] {
		delete(fm.m, e.key)
	}
}

// len is the number of entries (for tests and metrics).
func (fm *failMap) len() int {
	fm.mu.Lock()
	defer fm.mu.Unlock()
	return len(fm.m)
}

// logName shortens what a client sent as a name for the log: a valid name
// is at most 32 characters, and a line of 64 KiB of name helps nobody.
func logName(name string) string {
	const most = 4 * wire.MaxNameRunes
	if len(name) <= most {
		return name
	}
	cut := most
	for cut > 0 && !utf8.RuneStart(name[cut]) {
		cut--
	}
	return name[:cut] + "…"
}
