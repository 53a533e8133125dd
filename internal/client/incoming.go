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
	now := time.Now()
	switch f.Type {
	case "message":
		if f.Message != nil {
			c.onMessage(f.Message, f.Backlog, now)
		}
		return
	case "read":
		c.onReadPush(f)
		return
	case "typing":
		c.onTypingPush(f, now)
		return
	case "synced":
		c.showLine(outNotice, fmtSynced(c.missed))
		return
	case "group_updated":
		if g := f.groupObj(); g != nil {
			line := fmtGroupUpdated(c.names.groups[g.ID], g)
			c.names.addGroup(g)
			c.refreshPrompt()
			c.showLine(outNotice, line)
		}
		return
	case "presence", "friend_request", "friend_removed":
		if f.User != nil {
			c.names.addUser(f.User.ID, f.User.Name)
		}
	case "friend_added":
		if f.Friend != nil {
			c.names.addUser(f.Friend.ID, f.Friend.Name)
		}
	case "member_joined":
		if f.User != nil {
			c.names.addUser(f.User.ID, f.User.Name)
			c.names.memberJoined(f.groupID(), f.User)
		}
	case "member_left", "member_removed":
		if f.User != nil {
			c.names.addUser(f.User.ID, f.User.Name)
			c.names.memberLeft(f.groupID(), f.User.ID)
			if f.Type == "member_removed" && c.me != nil && f.User.ID == c.me.ID {
				defer c.groupGone(f.groupID())
			}
		}
		if f.By != nil {
			c.names.addUser(f.By.ID, f.By.Name)
		}
	case "invited":
		if g := f.groupObj(); g != nil {
			c.names.addGroup(g)
		}
		if f.By != nil {
			c.names.addUser(f.By.ID, f.By.Name)
		}
	case "edited":
		if m := f.Message; m != nil {
			c.names.addUser(m.From, m.FromName)
		}
	case "group_deleted":
		defer c.names.forgetGroup(f.groupID())
		defer c.groupGone(f.groupID())
	case "kicked":
		// Another login took the session, or the user's password changed,
		// or the account went. Logging in again here would, after a
		// takeover, kick that login in turn, forever: forget the password
		// instead.
		c.kicked = true
		c.closedWhy = "this session was closed" + reason(f.Reason)
		c.creds = nil
		c.setMe(nil)
		c.failed = true
	}
	if need := pushNeeds(c.me, f); need != (convKey{}) {
		// Made when printed: with the name looked up.
		c.showPush(outNotice, need, func() string { return fmtPush(c.names, f) })
	} else {
		c.showLine(outNotice, fmtPush(c.names, f))
	}
}

// pushNeeds is the user or group a push's line names by id alone, which
// the client may not know (hold.go): the other side of one's own private
// message edited on another device, or of a private conversation where a
// message was deleted; the group of an edit, a deletion, a typing notice
// or a member's coming and going (a group created or joined on another
// device). The zero key for none.
func pushNeeds(me *wire.User, f *frame) convKey {
	if me == nil {
		return convKey{}
	}
	switch f.Type {
	case "edited":
		if f.Message != nil {
			return msgNeeds(me, &f.Message.Message)
		}
	case "deleted":
		if g := f.groupID(); g != 0 {
			return convKey{group: g}
		}
		return convKey{with: f.With}
	case "typing", "member_joined", "member_left", "member_removed":
		return convKey{group: f.groupID()}
	}
	return convKey{}
}

// msgNeeds is the user or group a message's line names by id alone: its
// group, or the recipient of one's own message (from another device).
func msgNeeds(me *wire.User, m *wire.Message) convKey {
	switch {
	case m.Group != 0:
		return convKey{group: m.Group}
	case me != nil && m.From == me.ID:
		return convKey{with: m.To}
	}
	return convKey{}
}

func (c *core) onMessage(m *message, backlog bool, now time.Time) {
	c.names.addUser(m.From, m.FromName)
	if c.seen.add(m.ID) {
		kind, out := msgLive, outNew
		if backlog && m.TS < c.loginAt {
			kind, out = msgAway, outAway
			c.missed++
		}
		if c.me != nil && m.From == c.me.ID {
			out = outOK // a copy of one's own message, sent from another device
		}
		c.showPush(out, msgNeeds(c.me, &m.Message), func() string { return fmtMessage(c.names, m, kind) })
		if c.me != nil {
			if m.From == c.me.ID {
				c.sentOwn(m)
			} else {
				c.shown(m)
				c.stoppedTyping(m.From, msgConv(&m.Message, c.me.ID), now)
			}
		}
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
// Another user (or none) starts the read marks and typing notices afresh.
func (c *core) setMe(u *wire.User) {
	if u == nil || c.me == nil || u.ID != c.me.ID {
		c.reads, c.readDue = readState{}, nil
		c.typing.sent = nil
		if len(c.typing.typers) > 0 {
			clear(c.typing.typers)
			c.showTyping(time.Now())
		}
	}
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
	c.missed = 0
	for _, u := range append(f.Friends, f.Requests...) {
		c.names.addUser(u.ID, u.Name)
	}
	for i := range f.Groups {
		c.names.addGroup(&f.Groups[i])
	}
}

// loginFields are a login's fields; device "" sends none.
func loginFields(target ref, password, device string) map[string]any {
	m := map[string]any{"password": password}
	if device != "" {
		m["device"] = device
	}
	if target.ID != 0 {
		m["id"] = target.ID
	} else {
		m["name"] = target.Name
	}
	return m
}
