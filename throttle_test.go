package main

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Tests of the abuse controls: the per-user rate limit over every request
// type, retry_after, the login and register throttles, and the hashing
// slots. Units first (no server), then real servers.

// retryAfter returns a rate_limited reply's retry_after, failing the test
// unless it is there and positive.
func retryAfter(t testing.TB, f frame) time.Duration {
	t.Helper()
	if f.ok() || f.code() != "rate_limited" {
		t.Fatalf("want rate_limited, got %v", f)
	}
	ms := f.num("retry_after")
	if ms <= 0 {
		t.Fatalf("rate_limited without a positive retry_after: %v", f)
	}
	return time.Duration(ms) * time.Millisecond
}

// --- units ---

func TestRateLimitRetryAfterEncoding(t *testing.T) {
	for _, tc := range []struct {
		wait time.Duration
		want string
	}{
		{250 * time.Millisecond, `{"type":"chat","rid":9,"ok":false,"code":"rate_limited","error":"slow down","retry_after":250}` + "\n"},
		{1200 * time.Microsecond, `{"type":"chat","rid":9,"ok":false,"code":"rate_limited","error":"slow down","retry_after":2}` + "\n"},
		{0, `{"type":"chat","rid":9,"ok":false,"code":"rate_limited","error":"slow down"}` + "\n"},
	} {
		if got := string(errReply("chat", []byte("9"), rateLimited(tc.wait, "slow down"))); got != tc.want {
			t.Errorf("wait %v:\n got %s\nwant %s", tc.wait, got, tc.want)
		}
	}
}

func TestRateLimitBucketCosts(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	fresh := func(rate float64) *rateLimiter {
		l := newRateLimiter(rate)
		l.last = t0
		return &l
	}
	t.Run("wait is the time to the tokens needed", func(t *testing.T) {
		l := fresh(10) // burst 20
		if ok, _ := l.take(t0, 19, false); !ok {
			t.Fatal("19 of 20 refused")
		}
		ok, wait := l.take(t0, 2, false)
		if ok || wait != 100*time.Millisecond {
			t.Fatalf("2 with 1 left: ok %v wait %v, want a refusal for 100ms", ok, wait)
		}
		if ok, _ := l.take(at(wait), 2, false); !ok {
			t.Fatal("refused after waiting what it was told")
		}
	})
	t.Run("a cost above the burst needs a full bucket and leaves a debt", func(t *testing.T) {
		l := fresh(0.25) // burst 1
		if ok, _ := l.take(t0, 5, false); !ok {
			t.Fatal("refused with a full bucket")
		}
		ok, wait := l.take(t0, 5, false)
		if ok || wait != 20*time.Second { // from -4 to 1 at 0.25/s
			t.Fatalf("ok %v wait %v, want a refusal for 20s", ok, wait)
		}
	})
	t.Run("overdraw borrows one burst and no more", func(t *testing.T) {
		l := fresh(1) // burst 2
		l.take(t0, 2, false)
		if ok, _ := l.take(t0, 1, false); ok {
			t.Fatal("a chat on an empty bucket")
		}
		n := 0
		for {
			ok, wait := l.take(t0, 0.1, true)
			if !ok {
				if wait <= 0 || wait > 100*time.Millisecond {
					t.Fatalf("overdraw wait %v", wait)
				}
				break
			}
			n++
		}
		if n < 19 || n > 21 {
			t.Fatalf("%d acks on an empty bucket of burst 2, want 20", n)
		}
		// the debt delays the next chat: from -2 to 1 at 1/s
		if _, wait := l.take(t0, 1, false); wait < 2900*time.Millisecond || wait > 3100*time.Millisecond {
			t.Fatalf("chat wait after the acks' debt: %v, want ~3s", wait)
		}
	})
}

func TestRateLimitBucketMapForgetsOnlyFullBuckets(t *testing.T) {
	var bm bucketMap[int64]
	bm.init(10, 20, 1<<10)
	t0 := time.Now()
	for u := range int64(100) {
		if ok, _ := bm.take(u, t0, 20, false); !ok {
			t.Fatal("a new key refused")
		}
	}
	if n := bm.len(); n != 100 {
		t.Fatalf("%d entries, want 100", n)
	}
	// Not refilled yet: kept, and still empty, however long the sweep.
	later := t0.Add(bucketSweep)
	for u := range int64(100) {
		if ok, _ := bm.take(u, t0.Add(time.Millisecond), 1, false); ok {
			t.Fatalf("key %d refilled", u)
		}
	}
	// Refilled (2 s at 10/s) and swept: gone.
	bm.take(1000, later.Add(2*time.Second), 1, false)
	for i := range bm.stripes {
		bm.stripes[i].mu.Lock()
		bm.stripes[i].sweep(later.Add(2 * time.Second))
		bm.stripes[i].mu.Unlock()
	}
	if n := bm.len(); n != 1 {
		t.Fatalf("%d entries after the refill and sweep, want 1", n)
	}
	// Bounded: a flood of keys stays under the limit.
	var small bucketMap[int64]
	small.init(1, 2, bucketStripes*4)
	for u := range int64(10000) {
		small.take(u, t0, 1, false)
	}
	if n := small.len(); n > bucketStripes*4 {
		t.Fatalf("%d entries, limit %d", n, bucketStripes*4)
	}
}

func TestLoginThrottleFailMap(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	fm := failMap{free: 5, m: map[string]*failEntry{}}
	now := t0
	fail := func() {
		t.Helper()
		if wait, _, _ := fm.admit("a", now); wait != 0 {
			t.Fatalf("refused at %v: %v", now.Sub(t0), wait)
		}
		fm.done("a", attemptFailed, now)
	}
	for range 5 {
		fail()
	}
	// locked 1 s, then 2, 4, ... up to 5 min
	want := time.Second
	for range 12 {
		wait, _, _ := fm.admit("a", now)
		if wait != want {
			t.Fatalf("lock %v, want %v", wait, want)
		}
		now = now.Add(wait)
		fail()
		want = min(2*want, loginLockMax)
	}
	if want != loginLockMax {
		t.Fatalf("lock did not reach its cap: %v", want)
	}
	// a success clears the account
	now = now.Add(loginLockMax)
	if wait, _, _ := fm.admit("a", now); wait != 0 {
		t.Fatal("refused after the lock")
	}
	fm.done("a", attemptSucceeded, now)
	if fm.len() != 0 {
		t.Fatalf("entry kept after a success: %d", fm.len())
	}
	// attempts in flight count as failing: 5 at once, not a sixth
	for i := range 5 {
		if wait, _, _ := fm.admit("b", now); wait != 0 {
			t.Fatalf("attempt %d in flight refused", i)
		}
	}
	wait, logIt, _ := fm.admit("b", now)
	if wait != time.Second || !logIt {
		t.Fatalf("sixth in flight: wait %v logIt %v, want 1s and logged", wait, logIt)
	}
	if _, logIt, _ := fm.admit("b", now); logIt {
		t.Fatal("a second refusal in the same second logged")
	}
	for range 5 {
		fm.done("b", attemptFailed, now)
	}
	// forgotten a window after the last failure
	now = now.Add(loginWindow)
	if wait, _, _ := fm.admit("b", now); wait != 0 {
		t.Fatalf("refused a window later: %v", wait)
	}
	fm.done("b", attemptCancelled, now)
	// bounded
	for i := range throttleEntries + 1000 {
		k := fmt.Sprint("k", i)
		fm.admit(k, now)
		fm.done(k, attemptFailed, now)
	}
	if n := fm.len(); n > throttleEntries {
		t.Fatalf("%d entries, limit %d", n, throttleEntries)
	}
}

// --- the per-user rate limit on a server ---

// TestRateLimitSurvivesLogin: the bucket belongs to the user: logging out
// and in, or in on a second connection (which kicks the first: one session
// per user today), does not refill it.
func TestRateLimitSurvivesLogin(t *testing.T) {
	forEachStore(t, func(t *testing.T, db string) {
		const rate = 2 // burst 4
		ts := startServer(t, db, func(c *Config) { c.Rate = rate })
		a := newUser(t, ts.addr, "rsl")
		b := newUser(t, ts.addr, "rslb")
		start := time.Now()
		okN := 0
		for round := range 5 {
			for range 4 {
				if f := a.req("chat", map[string]any{"to": b.user, "text": "x"}); f.ok() {
					okN++
				} else {
					retryAfter(t, f)
				}
			}
			if round == 4 {
				break
			}
			a.must("logout", nil)
			a.must("login", map[string]any{"id": a.user, "password": testPassword})
		}
		// a second connection of the same user: the same bucket
		a2, _ := loginAs(t, ts.addr, a.user)
		for range 4 {
			if f := a2.req("chat", map[string]any{"to": b.user, "text": "y"}); f.ok() {
				okN++
			} else {
				retryAfter(t, f)
			}
		}
		most := 4 + int(time.Since(start).Seconds()*rate) + 1
		if okN > most {
			t.Fatalf("%d chats stored in %v at rate %d, burst 4: want at most %d", okN, time.Since(start), rate, most)
		}
		t.Logf("%d of 24 chats stored in %v (at most %d allowed)", okN, time.Since(start), most)
	})
}

// TestRateLimitEveryType: requests other than chats use the same bucket,
// at their cost; a join/leave flood is cut off.
func TestRateLimitEveryType(t *testing.T) {
	forEachStore(t, func(t *testing.T, db string) {
		ts := startServer(t, db, func(c *Config) { c.Rate = 10 }) // burst 20
		a := newUser(t, ts.addr, "ret")
		g := a.must("create_group", map[string]any{"name": "flood"}).obj("group").num("id") // 5: 15 left
		var sb strings.Builder
		const pairs = 200
		for i := range pairs {
			fmt.Fprintf(&sb, `{"type":"leave_group","rid":%d,"group":%d}`+"\n", 2*i, g)
			fmt.Fprintf(&sb, `{"type":"join_group","rid":%d,"group":%d}`+"\n", 2*i+1, g)
		}
		start := time.Now()
		a.sendRaw(sb.String())
		okN, limited := 0, 0
		for i := range 2 * pairs {
			f := a.next(10 * time.Second)
			if f.num("rid") != int64(i) {
				t.Fatalf("reply %d out of order: %v", i, f)
			}
			if f.ok() {
				okN++
			} else {
				retryAfter(t, f)
				limited++
			}
		}
		// 15 tokens left: 3 at 5 each, and what refilled meanwhile
		most := 3 + int(time.Since(start).Seconds()*10/5) + 1
		if okN < 3 || okN > most {
			t.Fatalf("%d of %d join/leave ok in %v: want 3 to %d", okN, 2*pairs, time.Since(start), most)
		}
		// reads are limited too; ping is free
		retryAfter(t, a.req("friends", nil))
		a.must("ping", nil)
	})
}

// TestRateLimitPipelinedRetryAfter: of 1000 chats in one write, exactly the
// burst succeeds and the rest get rate_limited in order, each with a
// retry_after no longer than a token takes; after waiting that long a chat
// succeeds. A request failing its field checks gets bad_request, not
// rate_limited, and costs nothing.
func TestRateLimitPipelinedRetryAfter(t *testing.T) {
	forEachStore(t, func(t *testing.T, db string) {
		const rate = 2 // burst 4; a token every 500 ms
		ts := startServer(t, db, func(c *Config) { c.Rate = rate })
		a := newUser(t, ts.addr, "rpr")
		b := newUser(t, ts.addr, "rprb")
		var sb strings.Builder
		for i := range 1000 {
			fmt.Fprintf(&sb, `{"type":"chat","rid":%d,"to":%d,"text":"m%d"}`+"\n", i, b.user, i)
		}
		start := time.Now()
		a.sendRaw(sb.String())
		okN := 0
		var last time.Duration
		for i := range 1000 {
			f := a.next(10 * time.Second)
			if f.num("rid") != int64(i) {
				t.Fatalf("reply %d out of order: %v", i, f)
			}
			if f.ok() {
				if i != okN {
					t.Fatalf("chat %d ok after %d were refused", i, i-okN)
				}
				okN++
				continue
			}
			last = retryAfter(t, f)
			if last > time.Second/rate+time.Millisecond {
				t.Fatalf("retry_after %v: more than a token takes", last)
			}
		}
		elapsed := time.Since(start)
		if okN < 4 || okN > 4+int(elapsed.Seconds()*rate) {
			t.Fatalf("%d of 1000 ok in %v: want the burst of 4", okN, elapsed)
		}
		t.Logf("%d of 1000 ok in %v; last retry_after %v", okN, elapsed, last)
		b.messages(okN, 10*time.Second)

		// over the limit, the fields still come first
		a.fails("bad_request", "chat", map[string]any{"to": b.user})
		a.fails("bad_request", "history", map[string]any{"with": b.user, "group": 1})
		wait := retryAfter(t, a.req("chat", map[string]any{"to": b.user, "text": "early"}))
		time.Sleep(wait)
		a.must("chat", map[string]any{"to": b.user, "text": "on time"})
	})
}

// TestRateLimitAcksOverdraw: a user whose chats emptied the bucket can still
// ack.
func TestRateLimitAcksOverdraw(t *testing.T) {
	ts := startServer(t, sqliteURL(t), func(c *Config) { c.Rate = 1 }) // burst 2
	a := newUser(t, ts.addr, "rao")
	b := newUser(t, ts.addr, "raob")
	a.must("chat", map[string]any{"to": b.user, "text": "1"})
	a.must("chat", map[string]any{"to": b.user, "text": "2"})
	retryAfter(t, a.req("chat", map[string]any{"to": b.user, "text": "3"}))
	id := b.messages(2, 5*time.Second)[0].num("id")
	b.must("chat", map[string]any{"to": a.user, "text": "r1"})
	b.must("chat", map[string]any{"to": a.user, "text": "r2"})
	m := a.messages(1, 5*time.Second)[0]
	for range 10 {
		a.must("ack", map[string]any{"ids": []int64{m.num("id")}})
	}
	b.must("ack", map[string]any{"ids": []int64{id}})
}

// --- logins ---

// TestLoginThrottle: past 5 failures an account is locked, for the right
// password too, with retry_after; after it the right password works. Every
// failure is logged with the name and address, never the password. An
// unknown name is throttled like a known one.
func TestLoginThrottle(t *testing.T) {
	forEachStore(t, func(t *testing.T, db string) {
		ts, logs := startHooked(t, db, nil, nil)
		c := dial(t, ts.addr)
		name := uniqueName("lt")
		uid := c.must("register", map[string]any{"name": name, "password": testPassword}).obj("user").num("id")
		const wrong = "Sw0rdfish-not-it"
		for i := range 5 {
			f := c.req("login", map[string]any{"name": name, "password": wrong})
			if f.code() != "bad_credentials" {
				t.Fatalf("wrong password %d: %v", i+1, f)
			}
		}
		wait := retryAfter(t, c.req("login", map[string]any{"name": name, "password": wrong}))
		if wait > loginLockBase {
			t.Fatalf("first lock %v, want at most %v", wait, loginLockBase)
		}
		wait = retryAfter(t, c.req("login", map[string]any{"name": name, "password": testPassword}))
		// by id: the same account, locked as well
		retryAfter(t, dial(t, ts.addr).req("login", map[string]any{"id": uid, "password": testPassword}))
		time.Sleep(wait)
		c.must("login", map[string]any{"name": name, "password": testPassword})

		// an unknown name: the same answers
		ghost := uniqueName("ghost")
		for range 5 {
			c.fails("bad_credentials", "login", map[string]any{"name": ghost, "password": wrong})
		}
		retryAfter(t, c.req("login", map[string]any{"name": ghost, "password": wrong}))

		out := logs.String()
		if strings.Contains(out, wrong) || strings.Contains(out, testPassword) {
			t.Fatalf("a password in the log:\n%s", out)
		}
		var failed, throttled int
		for _, line := range strings.Split(out, "\n") {
			if !strings.Contains(line, `msg="login failed"`) || !strings.Contains(line, "name="+name) {
				continue
			}
			if !strings.Contains(line, "remote=127.0.0.1:") {
				t.Errorf("no remote address: %s", line)
			}
			switch {
			case strings.Contains(line, "reason=bad_credentials"):
				failed++
			case strings.Contains(line, "reason=throttled"):
				throttled++
			}
		}
		if failed != 5 || throttled < 1 {
			t.Fatalf("logged %d bad_credentials and %d throttled for %s, want 5 and at least 1:\n%s", failed, throttled, name, out)
		}
	})
}

// TestLoginThrottleParallel: attempts in flight count as failing, so 32
// connections guessing at once get no more tries than one connection.
func TestLoginThrottleParallel(t *testing.T) {
	forEachStore(t, func(t *testing.T, db string) {
		ts, _ := startHooked(t, db, nil, func(c *Config) { c.BcryptCost = 8 })
		name := uniqueName("ltp")
		dial(t, ts.addr).must("register", map[string]any{"name": name, "password": testPassword})
		g := ts.srv.guard()
		before := g.metrics.passwordHashes.Load()
		const n = 32
		conns := make([]*testClient, n)
		for i := range conns {
			conns[i] = dial(t, ts.addr)
		}
		var wg sync.WaitGroup
		var credentials, limited atomic.Int64
		for i, c := range conns {
			wg.Go(func() {
				f, err := c.call("login", map[string]any{"name": name, "password": fmt.Sprint("guess-", i)}, 20*time.Second, nil)
				switch {
				case err != nil:
					t.Errorf("login %d: %v", i, err)
				case f.code() == "bad_credentials":
					credentials.Add(1)
				case f.code() == "rate_limited" && f.num("retry_after") > 0:
					limited.Add(1)
				default:
					t.Errorf("login %d: %v", i, f)
				}
			})
		}
		wg.Wait()
		if credentials.Load() != loginFreeFailures || limited.Load() != n-loginFreeFailures {
			t.Fatalf("%d bad_credentials, %d rate_limited: want %d and %d", credentials.Load(), limited.Load(), loginFreeFailures, n-loginFreeFailures)
		}
		if h := g.metrics.passwordHashes.Load() - before; h != loginFreeFailures {
			t.Fatalf("%d passwords hashed for %d guesses, want %d", h, n, loginFreeFailures)
		}
	})
}

// TestLoginThrottleAddress: failures from one address add up over the
// accounts tried from it; past 20, even a right password from there waits.
// Loopback clients are exempt (a local proxy's), unless the test says.
func TestLoginThrottleAddress(t *testing.T) {
	forEachStore(t, func(t *testing.T, db string) {
		ts, logs := startHooked(t, db, func(s *Server) { s.guard().throttleLoopback = true }, nil)
		c := dial(t, ts.addr)
		name := uniqueName("lta")
		c.must("register", map[string]any{"name": name, "password": testPassword})
		for range loginAddrFreeFailures {
			// a new name each time: no account gets near its own limit
			c.fails("bad_credentials", "login", map[string]any{"name": uniqueName("nobody"), "password": "whatever1"})
		}
		wait := retryAfter(t, dial(t, ts.addr).req("login", map[string]any{"name": name, "password": testPassword}))
		if wait > loginLockBase {
			t.Fatalf("first address lock %v", wait)
		}
		if !strings.Contains(logs.String(), "address=127.0.0.1 reason=throttled") {
			t.Fatalf("the address lock is not logged:\n%s", logs.String())
		}
		time.Sleep(wait)
		c.must("login", map[string]any{"name": name, "password": testPassword})
	})
	t.Run("loopback exempt", func(t *testing.T) {
		ts := startServer(t, sqliteURL(t))
		c := dial(t, ts.addr)
		for range loginAddrFreeFailures + 5 {
			c.fails("bad_credentials", "login", map[string]any{"name": uniqueName("nobody"), "password": "whatever1"})
		}
	})
}

// --- register and hashing ---

// TestRegisterThrottle: 10 accounts a minute from one address, then
// rate_limited with the time to the next.
func TestRegisterThrottle(t *testing.T) {
	ts, _ := startHooked(t, sqliteURL(t), func(s *Server) { s.guard().throttleLoopback = true }, nil)
	c := dial(t, ts.addr)
	for range registerPerMinute {
		c.must("register", map[string]any{"name": uniqueName("rt"), "password": testPassword})
	}
	// field checks first: a bad name is still invalid_name
	c.fails("invalid_name", "register", map[string]any{"name": "no spaces", "password": testPassword})
	wait := retryAfter(t, c.req("register", map[string]any{"name": uniqueName("rt"), "password": testPassword}))
	if wait > time.Minute/registerPerMinute+time.Millisecond {
		t.Fatalf("retry_after %v: more than one account's time", wait)
	}
}

// TestRegisterTakenNameDoesNotHash: a taken name is name_taken before any
// hashing: 20 attempts cost no bcrypt at cost 14 (about a second each).
func TestRegisterTakenNameDoesNotHash(t *testing.T) {
	forEachStore(t, func(t *testing.T, db string) {
		// were it to hash, each attempt would take a second
		ts, _ := startHooked(t, db, nil, func(c *Config) { c.BcryptCost = 14 })
		name := uniqueName("rtn")
		if _, err := ts.srv.store.CreateUser(context.Background(), name, []byte("not a hash")); err != nil {
			t.Fatal(err)
		}
		c := dial(t, ts.addr)
		g := ts.srv.guard()
		before := g.metrics.passwordHashes.Load()
		start := time.Now()
		for range 20 {
			c.fails("name_taken", "register", map[string]any{"name": name, "password": testPassword})
		}
		if h := g.metrics.passwordHashes.Load() - before; h != 0 {
			t.Fatalf("%d hashes for 20 taken names", h)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("20 taken names took %v", d)
		}
	})
}

// TestHashSlots: at most GOMAXPROCS passwords are hashed at once, however
// many registers and logins come in together.
func TestHashSlots(t *testing.T) {
	forEachStore(t, func(t *testing.T, db string) {
		var running, peak atomic.Int64
		ts, _ := startHooked(t, db, func(s *Server) {
			s.guard().onHash = func() {
				n := running.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				time.Sleep(20 * time.Millisecond)
				running.Add(-1)
			}
		}, nil)
		slots := runtime.GOMAXPROCS(0)
		n := 4*slots + 4
		var wg sync.WaitGroup
		for i := range n {
			c := dial(t, ts.addr)
			wg.Go(func() {
				name := uniqueName("hs")
				fields := map[string]any{"name": name, "password": testPassword}
				if f, err := c.call("register", fields, 20*time.Second, nil); err != nil || !f.ok() {
					t.Errorf("register %d: %v %v", i, f, err)
					return
				}
				if f, err := c.call("login", fields, 20*time.Second, nil); err != nil || !f.ok() {
					t.Errorf("login %d: %v %v", i, f, err)
				}
			})
		}
		wg.Wait()
		if p := peak.Load(); p > int64(slots) || p < int64(min(slots, 2)) {
			t.Fatalf("%d hashes at once, want %d", p, slots)
		}
		if h := ts.srv.metrics.passwordHashes.Load(); h != int64(2*n) {
			t.Fatalf("%d hashes for %d registers and logins", h, 2*n)
		}
	})
}
