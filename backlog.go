package main

import (
	"container/heap"
	"context"
	"time"
)

const backlogPage = 256

// backlog reads a user's pending messages, oldest first, a page at a time.
// A small backlog takes one query. Past one page it reads each conversation
// in seq order and merges them by id, so that a long backlog costs each
// message once rather than once per page.
type backlog struct {
	store   *Store
	user    int64
	after   int64 // the highest id handed out
	merging bool
	loaded  bool
	heads   cursorHeap
}

// topicCursor walks one conversation's pending messages.
type topicCursor struct {
	topic int64
	seq   int64      // buf follows this seq
	buf   []*Message // fetched, not yet handed out; never empty in the heap
	done  bool       // nothing more to fetch
}

// next returns the next page; an empty page means the backlog is done. On
// an error it returns what it had, and a later call carries on.
func (b *backlog) next(ctx context.Context) ([]*Message, error) {
	if !b.merging {
		msgs, err := b.store.Pending(ctx, b.user, b.after, backlogPage)
		if err != nil {
			return nil, err
		}
		if len(msgs) == backlogPage {
			b.merging = true
		}
		if len(msgs) > 0 {
			b.after = msgs[len(msgs)-1].ID
		}
		return msgs, nil
	}
	if !b.loaded {
		marks, err := b.store.PendingTopics(ctx, b.user)
		if err != nil {
			return nil, err
		}
		for _, m := range marks {
			c := &topicCursor{topic: m.topic, seq: m.mark}
			if err := b.fill(ctx, c); err != nil {
				b.heads = nil
				return nil, err
			}
			if len(c.buf) > 0 {
				b.heads = append(b.heads, c)
			}
		}
		heap.Init(&b.heads)
		b.loaded = true
	}
	var out []*Message
	for len(out) < backlogPage && len(b.heads) > 0 {
		c := b.heads[0]
		if len(c.buf) == 1 && !c.done {
			if err := b.fill(ctx, c); err != nil {
				return out, err
			}
		}
		m := c.buf[0]
		c.buf = c.buf[1:]
		out = append(out, m)
		b.after = m.ID
		if len(c.buf) == 0 {
			heap.Pop(&b.heads)
		} else {
			heap.Fix(&b.heads, 0)
		}
	}
	return out, nil
}

// fill fetches the cursor's next page after what it holds.
func (b *backlog) fill(ctx context.Context, c *topicCursor) error {
	if n := len(c.buf); n > 0 {
		c.seq = c.buf[n-1].Seq
	}
	msgs, err := b.store.PendingIn(ctx, b.user, c.topic, c.seq, b.after, backlogPage)
	if err != nil {
		return err
	}
	c.buf = append(c.buf, msgs...)
	c.done = len(msgs) < backlogPage
	return nil
}

type cursorHeap []*topicCursor

func (h cursorHeap) Len() int           { return len(h) }
func (h cursorHeap) Less(i, j int) bool { return h[i].buf[0].ID < h[j].buf[0].ID }
func (h cursorHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *cursorHeap) Push(x any)        { *h = append(*h, x.(*topicCursor)) }
func (h *cursorHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}

// streamBacklog pushes every message pending for the session's user, oldest
// first, as fast as the connection drains. It retries while the store is
// down, until it has sent everything (complete) or the session ends.
func (c *conn) streamBacklog(ctx context.Context, s *session) (complete bool) {
	b := &backlog{store: c.srv.store, user: s.user.ID}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		// Not derived from the session's ctx: a child would leave a map
		// in it for the session's whole life (560 bytes on every idle
		// connection). A page read is short; the loop checks ctx between.
		qctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		msgs, err := b.next(qctx)
		cancel()
		for _, m := range msgs {
			if !c.enqueue(outFrame{b: messagePush(m, true)}, s) {
				return false
			}
			c.srv.metrics.messagesPushed.Add(1)
		}
		if err == nil && len(msgs) == 0 {
			return true
		}
		if err != nil {
			if ctx.Err() == nil {
				c.log.Warn("load pending messages", "user", s.user.ID, "err", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
	}
	return false
}
