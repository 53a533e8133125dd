package main

import "sync"

// recentMessages remembers where the last messages this node stored sit
// (id -> topic, seq), so that acking them, which usually follows within a
// second, needs no query to find out. An id and its place never change, so
// what it holds is never stale; an id it does not hold (an old message, or
// one another node stored) is looked up in the database.
type recentMessages struct {
	mu    sync.Mutex
	where map[int64]topicSeq
	ring  []int64 // ids in the order added; the oldest is evicted first
	next  int
}

type topicSeq struct{ topic, seq int64 }

// newRecentMessages holds up to size places; it grows to that as
// messages are stored, so an idle server does not pay for it.
func newRecentMessages(size int) *recentMessages {
	return &recentMessages{where: map[int64]topicSeq{}, ring: make([]int64, 0, size)}
}

func (r *recentMessages) add(items []*chatItem) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, it := range items {
		if it.err == nil && !it.dup && it.msg.ID != 0 {
			r.noteLocked(it.msg.ID, topicSeq{it.msg.Topic, it.msg.Seq})
		}
	}
}

// note records the place of a message another node stored and this one
// delivers: its recipient's ack comes here.
func (r *recentMessages) note(id int64, at topicSeq) {
	if id == 0 || at.topic == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.where[id]; !ok {
		r.noteLocked(id, at)
	}
}

func (r *recentMessages) noteLocked(id int64, at topicSeq) {
	if len(r.ring) < cap(r.ring) {
		r.ring = append(r.ring, id)
	} else {
		delete(r.where, r.ring[r.next])
		r.ring[r.next] = id
		r.next = (r.next + 1) % len(r.ring)
	}
	r.where[id] = at
}

// find calls found for each id it holds and returns the others.
func (r *recentMessages) find(ids []int64, found func(id int64, at topicSeq)) (missing []int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		if at, ok := r.where[id]; ok {
			found(id, at)
		} else {
			missing = append(missing, id)
		}
	}
	return missing
}
