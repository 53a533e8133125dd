package client

import (
	"time"

	"chat/internal/wire"
)

// What the server sends: replies matched to requests, pushes, messages
// printed and acked, the login reply.

func (c *core) onFrame(f *frame) {
	c.lastRecv = time.Now()
	if rid, ok := f.rid(); ok {
		if r := c.inflight[rid]; r != nil {
			delete(c.inflight, rid)
			r.onReply(f)
		}
		c.pump()
		return
	}
	if f.Type == "error" {
		// A reply whose rid the server could not read: replies come in
		// order, so it answers the oldest request in flight.
		if r := c.oldestInflight(); r != nil {
			delete(c.inflight, r.rid)
			r.onReply(f)
			c.pump()
		}
		return
	}
	c.onPush(f)
}

func (c *core) oldestInflight() *request {
	var oldest *request
	for _, r := range c.inflight {
		if oldest == nil || r.rid < oldest.rid {
			oldest = r
		}
	}
	return oldest
}

func (c *core) onPush(f *frame) {
	switch f.Type {
	case "message":
		if f.Message != nil {
			c.onMessage(f.Message, f.Backlog)
		}
		return
	case "presence":
		if f.User != nil {
			c.names.addUser(f.User.ID, f.User.Name)
		}
	case "friend_added":
		if f.Friend != nil {
			c.names.addUser(f.Friend.ID, f.Friend.Name)
		}
	case "member_joined", "member_left":
		if f.User != nil {
			c.names.addUser(f.User.ID, f.User.Name)
		}
	case "kicked":
		// Another login took the session. Logging in again here would
		// kick that one in turn, forever: forget the password instead.
		c.kicked = true
		c.creds = nil
		c.setMe(nil)
		c.failed = true
	}
	if line := fmtPush(c.names, f); line != "" {
		c.out.print(outNotice, line)
	}
}

func (c *core) onMessage(m *wire.Message, backlog bool) {
	c.names.addUser(m.From, m.FromName)
	if c.seen.add(m.ID) {
		kind, out := msgLive, outNew
		if backlog && m.TS < c.loginAt {
			kind, out = msgAway, outAway
		}
		c.out.print(out, fmtMessage(c.names, m, kind))
	}
	// Ack what was shown, duplicates too: a repeat means the server has
	// not seen the ack yet.
	c.acks = append(c.acks, m.ID)
	if len(c.acks) >= ackBatch {
		c.flushAcks()
	} else if c.ackDue == nil {
		c.ackDue = time.After(c.cfg.ackDelay)
	}
}

func (c *core) flushAcks() {
	if len(c.acks) == 0 || c.me == nil {
		return
	}
	ids := c.acks
	c.acks = nil
	c.submit(&request{typ: "ack", fields: map[string]any{"ids": ids}, retry: true, onReply: func(*frame) {}})
}

// setMe records who is logged in (nil: nobody), for the names shown and
// for the terminal, which asks no password for a /login it will refuse.
func (c *core) setMe(u *wire.User) {
	c.me, c.names.me = u, 0
	name := ""
	if u != nil {
		c.names.me, name = u.ID, u.Name
	}
	c.out.setUser(name)
}

// loggedIn takes in a login reply.
func (c *core) loggedIn(f *frame, sentAt time.Time) {
	c.setMe(f.User)
	c.names.addUser(f.User.ID, f.User.Name)
	c.loginAt = sentAt.UnixMilli()
	for _, u := range f.Friends {
		c.names.addUser(u.ID, u.Name)
	}
	for i := range f.Groups {
		c.names.addGroup(&f.Groups[i])
	}
}

func loginFields(target ref, password string) map[string]any {
	m := map[string]any{"password": password}
	if target.ID != 0 {
		m["id"] = target.ID
	} else {
		m["name"] = target.Name
	}
	return m
}
