package loadgen

import "math/bits"

// bitset holds sequence numbers 1, 2, 3 ...; it grows as needed.
type bitset []uint64

// add sets i and says whether it was already set.
func (b *bitset) add(i int) (had bool) {
	w := i >> 6
	for w >= len(*b) {
		*b = append(*b, 0)
	}
	m := uint64(1) << uint(i&63)
	had = (*b)[w]&m != 0
	(*b)[w] |= m
	return had
}

func (b bitset) has(i int) bool {
	w := i >> 6
	return w < len(b) && b[w]&(uint64(1)<<uint(i&63)) != 0
}

func (b bitset) count() int {
	n := 0
	for _, w := range b {
		n += bits.OnesCount64(w)
	}
	return n
}

// or adds the members of o.
func (b *bitset) or(o bitset) {
	for len(*b) < len(o) {
		*b = append(*b, 0)
	}
	for i, w := range o {
		(*b)[i] |= w
	}
}

// missing counts the members of want that are not in b.
func (b bitset) missing(want bitset) int {
	n := 0
	for i, w := range want {
		if i < len(b) {
			w &^= b[i]
		}
		n += bits.OnesCount64(w)
	}
	return n
}

// seqTracker follows what one receiver got from one sender. Live messages
// from one sender must arrive in the order sent; a backlog push (a message
// pending from before this login) may not, and is not counted as out of order.
// A message that comes both live and in a login's backlog, in either order,
// is the at-least-once delivery the protocol allows (a message stored while
// a login registers its session is routed live and found by the backlog's
// query, and the two race to the wire): it is counted apart, as again. A
// second live push of a message is a duplicate.
type seqTracker struct {
	seen  bitset
	live  bitset // what came live
	max   int
	n     int // distinct sequence numbers seen
	dup   int
	again int
	ooo   int
}

func (t *seqTracker) see(seq int, backlog bool) (first bool) {
	liveAgain := !backlog && t.live.add(seq)
	if t.seen.add(seq) {
		if liveAgain {
			t.dup++
		} else {
			t.again++
		}
		return false
	}
	t.n++
	if seq < t.max && !backlog {
		t.ooo++
	}
	if seq > t.max {
		t.max = seq
	}
	return true
}
