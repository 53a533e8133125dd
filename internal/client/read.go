package client

import (
	"sort"
	"strconv"
	"time"

	"chat/internal/wire"
)

// Read marks and read receipts, on the core goroutine.
//
// The client tells the server what the user has seen: for each
// conversation, the newest message shown from someone else (live, missed,
// or in /history) becomes its read mark. Marks are batched: one timer,
// readEvery after the first message shown since the last batch, sends
// every conversation's newest, so a conversation gets at most one read a
// readEvery (the server counts every request against the user's rate
// limit). They are sent in both modes, quietly: their replies print
// nothing, and a server that does not know "read" (version 1) gets no
// more of them on this run.
//
// Read receipts: the client keeps the ids of its user's own messages in
// each private conversation that the other side has not been seen to read;
// a read push from the other side that covers some of them prints one
// line ("read by bob up to [981]") and forgets them. Read pushes from the
// user's other sessions print nothing: they move the mark known here, so
// that no mark at or below it is sent.

// convKey names a conversation: a private one by the other side's id, or
// a group. Exactly one field is set.
type convKey struct{ with, group int64 }

// fields are the request fields naming the conversation.
func (k convKey) fields() map[string]any {
	if k.group != 0 {
		return map[string]any{"group": k.group}
	}
	return map[string]any{"with": k.with}
}

// less orders keys, for requests sent in a stable order.
func (k convKey) less(o convKey) bool {
	if k.group != o.group {
		return k.group < o.group
	}
	return k.with < o.with
}

// msgConv is the conversation of m, as seen by the user me.
func msgConv(m *wire.Message, me int64) convKey {
	switch {
	case m.Group != 0:
		return convKey{group: m.Group}
	case m.From == me:
		return convKey{with: m.To}
	}
	return convKey{with: m.From}
}

// pushConv is the conversation of a read, typing or deleted push.
func pushConv(f *frame) convKey {
	if g := f.groupID(); g != 0 {
		return convKey{group: g}
	}
	return convKey{with: f.With}
}

// readState is what the client knows of read marks.
type readState struct {
	pending map[convKey]int64   // the newest message shown, not yet sent as a mark
	marked  map[convKey]int64   // the read mark as last sent, or as another session set it
	own     map[convKey][]int64 // the user's own messages not yet seen read, ascending
	off     bool                // the server does not know "read": send none
}

const (
	maxMarks   = 10000 // conversations whose marks are remembered; past it they start again
	maxOwnConv = 1000  // conversations whose own messages are remembered
	maxOwnIDs  = 100   // own messages remembered a conversation (the newest)
)

// markedElsewhere takes in a read mark set by another session of the user
// (a read push, or the conversations reply): nothing at or below it is sent.
func (r *readState) markedElsewhere(k convKey, id int64) {
	if r.marked == nil {
		r.marked = map[convKey]int64{}
	}
	if id > r.marked[k] {
		if len(r.marked) >= maxMarks {
			clear(r.marked)
		}
		r.marked[k] = id
	}
	if p, ok := r.pending[k]; ok && p <= id {
		delete(r.pending, k)
	}
}

// shown takes in a message printed: one from someone else moves its
// conversation's mark, sent at the next batch.
func (c *core) shown(m *message) {
	if c.me == nil || m.From == c.me.ID || c.reads.off {
		return
	}
	k := msgConv(&m.Message, c.me.ID)
	r := &c.reads
	if m.ID <= r.marked[k] || m.ID <= r.pending[k] {
		return
	}
	if r.pending == nil {
		r.pending = map[convKey]int64{}
	}
	r.pending[k] = m.ID
	if c.readDue == nil {
		c.readDue = time.After(c.cfg.readEvery)
	}
}

// flushReads sends the pending read marks, one request a conversation.
func (c *core) flushReads() {
	r := &c.reads
	if len(r.pending) == 0 || c.me == nil || r.off {
		return
	}
	keys := make([]convKey, 0, len(r.pending))
	for k := range r.pending {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].less(keys[j]) })
	if r.marked == nil || len(r.marked)+len(keys) > maxMarks {
		r.marked = map[convKey]int64{}
	}
	for _, k := range keys {
		id := r.pending[k]
		delete(r.pending, k)
		r.marked[k] = id
		fields := k.fields()
		fields["id"] = id
		c.submit(&request{typ: "read", fields: fields, retry: true, onReply: func(f *frame) {
			if !f.OK && f.Code == wire.CodeUnknownType {
				c.reads.off = true
			}
		}})
	}
}

// sentOwn takes in a message of the user's own, shown (the reply to a
// send, or a copy from another session): a read receipt may follow.
func (c *core) sentOwn(m *message) {
	if c.me == nil || m.Group != 0 {
		return // receipts are for private conversations: groups push reads to the reader's own sessions only
	}
	k := msgConv(&m.Message, c.me.ID)
	r := &c.reads
	if r.own == nil || len(r.own) >= maxOwnConv && r.own[k] == nil {
		r.own = map[convKey][]int64{}
	}
	ids := r.own[k]
	if n := len(ids); n > 0 && ids[n-1] >= m.ID {
		return // a duplicate, or older than what is kept
	}
	if len(ids) >= maxOwnIDs {
		ids = ids[1:]
	}
	r.own[k] = append(ids, m.ID)
}

// onReadPush takes in a read push: the user's other session moved a mark,
// or the other side of a private conversation read it (a receipt line
// when that covers messages of the user's).
func (c *core) onReadPush(f *frame) {
	if f.User == nil || c.me == nil || f.ID == 0 {
		return
	}
	k := pushConv(f)
	if f.User.ID == c.me.ID {
		c.reads.markedElsewhere(k, f.ID)
		return
	}
	c.names.addUser(f.User.ID, f.User.Name)
	if k.group != 0 {
		return
	}
	ids := c.reads.own[k]
	n := sort.Search(len(ids), func(i int) bool { return ids[i] > f.ID })
	if n == 0 {
		return // nothing of the user's newly read
	}
	if n == len(ids) {
		delete(c.reads.own, k)
	} else {
		c.reads.own[k] = ids[n:]
	}
	c.showLine(outNotice, fmtRead(f.User.Name, f.ID))
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
