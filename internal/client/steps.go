package client

import (
	"strconv"

	"chat/internal/wire"
)

// Steps the commands share: the open conversation and the prompt,
// sending a chat, and looking a user or group up before a request.

// setOpen opens a conversation (nil: closes it); the prompt shows it.
func (c *core) setOpen(r *ref) {
	c.open = r
	c.out.setPrompt(c.promptLabel())
}

// promptLabel names the open conversation: "bob", "#3 gophers", or "".
func (c *core) promptLabel() string {
	if c.open == nil {
		return ""
	}
	if c.open.Group {
		return c.names.group(c.open.ID)
	}
	return c.names.user(c.open.ID)
}

// sendChat sends a private (to) or group message with a fresh cid. After a
// reconnect it goes again with the same cid: the server stores it once.
func (c *core) sendChat(op *userOp, to, group int64, text string) {
	fields := map[string]any{"text": text, "cid": c.nextCID()}
	typ := "chat"
	if group != 0 {
		typ = "group_chat"
		fields["group"] = group
	} else {
		fields["to"] = to
	}
	c.messageSent(convKey{with: to, group: group})
	c.request(op, typ, fields, true, func(f *frame) {
		if !f.OK || f.Message == nil {
			c.failReply(op, f)
			return
		}
		c.seen.add(f.Message.ID)
		c.out.print(outOK, fmtSent(c.names, f.Message))
		c.sentOwn(f.Message)
		c.finish(op, true)
	})
}

// withUser resolves a user (name or id) with whois, unless known, and
// calls then with the id. Input waits meanwhile, so that the commands
// after this one see its effect (/open, then plain lines).
func (c *core) withUser(op *userOp, r ref, then func(id int64)) {
	if r.ID != 0 {
		if _, ok := c.names.users[r.ID]; ok {
			then(r.ID)
			return
		}
	} else if id, ok := c.names.userID(r.Name); ok {
		then(id)
		return
	}
	fields := map[string]any{"name": r.Name}
	if r.ID != 0 {
		fields = map[string]any{"id": r.ID}
	}
	op.resolving = true
	c.resolving++
	c.request(op, "whois", fields, true, func(f *frame) {
		c.resolved(op)
		if !f.OK || f.User == nil {
			if f.Code == wire.CodeNoSuchUser {
				c.fail(op, "there is no user %s (%s)", clean(r.String()), wire.CodeNoSuchUser)
				return
			}
			c.failReply(op, f)
			return
		}
		c.names.addUser(f.User.ID, f.User.Name)
		then(f.User.ID)
	})
}

// withChat resolves a conversation, a user or a group, and calls then
// with its id.
func (c *core) withChat(op *userOp, r ref, then func(id int64)) {
	if r.Group {
		c.withGroup(op, r, then)
	} else {
		c.withUser(op, r, then)
	}
}

// withGroup resolves a group: an id as it is, a name among the groups seen
// (the user's own, after login or /groups).
func (c *core) withGroup(op *userOp, r ref, then func(id int64)) {
	if r.ID != 0 {
		then(r.ID)
		return
	}
	if id, ok := c.names.groupID(r.Name); ok {
		then(id)
		return
	}
	c.failLocal(op, "no group named %s among yours: use its id (/groups lists them)", strconv.Quote(r.Name))
}
