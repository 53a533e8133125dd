package main

import (
	"cmp"
	"hash/maphash"
	"math"
	"slices"
	"sync"
	"time"
)

// The rate limit belongs to the user (docs/protocol.md, "Abuse controls"):
// one token bucket per user on this node, shared by all of the user's
// sessions here and kept across logout and login, refilled at -rate tokens a
// second up to twice that. Every request type has a cost in tokens (the
// command table, handlers.go); dispatch charges it after the request's field
// checks and before anything else the request does.
//
// In a cluster each node keeps its own buckets: a user with sessions on two
// nodes gets each node's budget. Sharing the buckets through Redis would cost
// a round trip per request, more than most requests cost themselves.

// rateLimiter is a token bucket: rate tokens a second, up to burst. The
// tokens may go below zero: a request dearer than the bucket can hold is
// admitted with a full bucket and leaves a debt, and acks may borrow (see
// take).
type rateLimiter struct {
	rate, burst float64
	tokens      float64
	last        time.Time
}

// newRateLimiter is the bucket of -rate: bursts of twice the rate, and at
// least 1, or a rate under 0.5/s would let nothing through.
func newRateLimiter(rate float64) rateLimiter {
	return newBucket(rate, max(2*rate, 1))
}

func newBucket(rate, burst float64) rateLimiter {
	return rateLimiter{rate: rate, burst: burst, tokens: burst, last: time.Now()}
}

// allow takes a token if there is one. A zero rate is unlimited.
func (l *rateLimiter) allow(now time.Time) bool {
	ok, _ := l.take(now, 1, false)
	return ok
}

// take admits a request of cost tokens when the bucket holds min(cost,
// burst), and then takes cost. An overdraw request may instead take the
// bucket down to one burst below zero: that reserve is for acks, which keep
// messages flowing, so that a user's chats cannot starve the user's acks; the
// debt delays the user's next other requests instead. A refused request
// takes nothing; wait is how long until it would be admitted. A zero rate is
// unlimited.
func (l *rateLimiter) take(now time.Time, cost float64, overdraw bool) (ok bool, wait time.Duration) {
	if l.rate == 0 {
		return true, 0
	}
	l.refill(now)
	need := min(cost, l.burst)
	if overdraw {
		need = cost - l.burst
	}
	if l.tokens >= need {
		l.tokens -= cost
		return true, 0
	}
	return false, secondsToDuration((need - l.tokens) / l.rate)
}

func (l *rateLimiter) refill(now time.Time) {
	if now.After(l.last) {
		l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
		l.last = now
	}
}

// full reports whether the bucket would be full at now: it is then the same
// as a new one, and can be forgotten.
func (l *rateLimiter) full(now time.Time) bool {
	return l.rate == 0 || l.tokens+now.Sub(l.last).Seconds()*l.rate >= l.burst
}

// secondsToDuration rounds up to whole milliseconds (retry_after's unit), at
// least one.
func secondsToDuration(s float64) time.Duration {
	ms := math.Ceil(s * 1000)
	switch {
	case ms < 1 || math.IsNaN(ms):
		ms = 1
	case ms > float64(math.MaxInt64/int64(time.Millisecond)):
		ms = float64(math.MaxInt64 / int64(time.Millisecond))
	}
	return time.Duration(ms) * time.Millisecond
}

const (
	// bucketStripes split a bucketMap's lock: the user map is charged on
	// every request of every connection.
	bucketStripes = 64
	// bucketSweep is how often a stripe drops the buckets that have
	// refilled (on its next use: there is no goroutine).
	bucketSweep = 10 * time.Second
)

// bucketMap is a token bucket per key (a user, a client address). A key has
// an entry only while its bucket is below full: a full bucket is the same as
// none, so an entry is dropped once it would have refilled, and never
// earlier, so that a new session (or a new connection) cannot refill it.
// Memory is bounded twice: by the keys charged within the last refill time
// (burst/rate) plus bucketSweep, and by limit; past limit the fullest
// buckets, whose dropping gives away the fewest tokens, go first.
type bucketMap[K comparable] struct {
	rate, burst float64
	limit       int // entries per stripe
	seed        maphash.Seed
	stripes     [bucketStripes]bucketStripe[K]
}

type bucketStripe[K comparable] struct {
	mu    sync.Mutex // guards the fields below
	m     map[K]rateLimiter
	swept time.Time
}

// init sets the map up; limit is the most entries it holds in all.
func (bm *bucketMap[K]) init(rate, burst float64, limit int) {
	bm.rate, bm.burst = rate, burst
	bm.limit = max(limit/bucketStripes, 1)
	bm.seed = maphash.MakeSeed()
}

// take charges cost to key's bucket (see rateLimiter.take).
func (bm *bucketMap[K]) take(key K, now time.Time, cost float64, overdraw bool) (ok bool, wait time.Duration) {
	if bm.rate == 0 || cost == 0 {
		return true, 0
	}
	st := &bm.stripes[maphash.Comparable(bm.seed, key)%bucketStripes]
	st.mu.Lock()
	defer st.mu.Unlock()
	if now.Sub(st.swept) >= bucketSweep {
		st.sweep(now)
	}
	l, found := st.m[key]
	if !found {
		if st.m == nil {
			st.m = map[K]rateLimiter{}
		}
		if len(st.m) >= bm.limit {
			st.evict(now, bm.limit)
		}
		l = rateLimiter{rate: bm.rate, burst: bm.burst, tokens: bm.burst, last: now}
	}
	if ok, wait = l.take(now, cost, overdraw); ok {
		st.m[key] = l
	}
	return ok, wait
}

// len is the number of entries (for tests and metrics).
func (bm *bucketMap[K]) len() int {
	n := 0
	for i := range bm.stripes {
		st := &bm.stripes[i]
		st.mu.Lock()
		n += len(st.m)
		st.mu.Unlock()
	}
	return n
}

// sweep drops the buckets that have refilled.
func (st *bucketStripe[K]) sweep(now time.Time) {
	st.swept = now
	for k, l := range st.m {
		if l.full(now) {
			delete(st.m, k)
		}
	}
}

// evict makes room below limit: the refilled buckets go, then the fullest
// eighth.
func (st *bucketStripe[K]) evict(now time.Time, limit int) {
	st.sweep(now)
	if len(st.m) < limit {
		return
	}
	type entry struct {
		key    K
		tokens float64
	}
	all := make([]entry, 0, len(st.m))
	for k, l := range st.m {
		l.refill(now)
		all = append(all, entry{k, l.tokens})
	}
	slices.SortFunc(all, func(a, b entry) int { return cmp.Compare(b.tokens, a.tokens) })
	for _, e := range all[:len(all)/8+1] {
		delete(st.m, e.key)
	}
}
