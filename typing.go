package main

import (
	"sync"
	"time"
)

// typingInterval is the least time between two typing notices of one
// sender in one conversation that the server passes on (docs/protocol.md:
// it may drop notices faster than one a second).
const typingInterval = time.Second

// typingSlots is how many (sender, conversation) pairs the gate
// remembers: 8192 slots of 24 bytes, 192 KiB per node.
const typingSlots = 1 << 13

// typingGate drops typing notices that come faster than typingInterval
// per sender and conversation. It remembers when it last passed a notice
// for a bounded number of pairs, in a table of slots indexed by a hash of
// the pair: memory fixed whatever the traffic, nothing to sweep. A pair
// whose slot holds another pair takes the slot over, so a collision can
// only let a notice through early, never drop one that is due. It is per
// node: a user typing through sessions on two nodes may get two a second
// through, which the contract allows ("may drop").
type typingGate struct {
	base  time.Time  // the monotonic clock's zero for the slots' times
	mu    sync.Mutex // guards slots; held for one slot's compare and store
	slots [typingSlots]typingSlot
}

type typingSlot struct {
	sender, conv int64         // conv: a user id, or a group id negated
	at           time.Duration // since base; when a notice last passed
}

func newTypingGate() *typingGate { return &typingGate{base: time.Now()} }

// pass reports whether a typing notice of sender in conv goes out, and if
// so notes that it did.
func (g *typingGate) pass(sender, conv int64) bool {
	now := time.Since(g.base)
	h := (uint64(sender)*0x9E3779B97F4A7C15 ^ uint64(conv)*0xC2B2AE3D27D4EB4F) >> 40
	sl := &g.slots[h%typingSlots]
	g.mu.Lock()
	defer g.mu.Unlock()
	if sl.sender == sender && sl.conv == conv && now-sl.at < typingInterval {
		return false
	}
	*sl = typingSlot{sender: sender, conv: conv, at: now}
	return true
}
