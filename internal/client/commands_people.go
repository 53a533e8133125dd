package client

// The commands about people of version 2: friend requests, ending a
// friendship, blocking. Each names its user as typed (a name, or an id):
// these requests take either, so no whois is needed.

// /requests -> friend_requests
func (c *core) cmdRequests(op *userOp, _ args) {
	c.request(op, "friend_requests", nil, true, func(f *frame) {
		if !f.OK {
			c.failReply(op, f)
			return
		}
		for _, u := range append(f.Incoming, f.Outgoing...) {
			c.names.addUser(u.ID, u.Name)
		}
		c.out.print(outOK, fmtRequests(f.Incoming, f.Outgoing))
		c.finish(op, true)
	})
}

// /accept USER -> add_friend: a friendship when USER had asked; else it is
// a request of one's own, and the line says so.
func (c *core) cmdAccept(op *userOp, a args) {
	c.addFriend(op, a.Target, " (there was no request from them to accept)")
}

// /decline USER -> decline_friend (not repeated after a lost connection)
func (c *core) cmdDecline(op *userOp, a args) {
	c.simple(op, "decline_friend", userFields("friend", a.Target), false, func() string { return "ok declined " + c.refName(a.Target) })
}

// /unfriend USER -> remove_friend (not repeated after a lost connection)
func (c *core) cmdUnfriend(op *userOp, a args) {
	c.simple(op, "remove_friend", userFields("friend", a.Target), false, func() string { return "ok unfriended " + c.refName(a.Target) })
}

// /block USER -> block
func (c *core) cmdBlock(op *userOp, a args) {
	c.simple(op, "block", userFields("user", a.Target), true, func() string { return "ok blocked " + c.refName(a.Target) })
}

// /unblock USER -> unblock
func (c *core) cmdUnblock(op *userOp, a args) {
	c.simple(op, "unblock", userFields("user", a.Target), true, func() string { return "ok unblocked " + c.refName(a.Target) })
}

// /blocks -> blocks
func (c *core) cmdBlocks(op *userOp, _ args) {
	c.request(op, "blocks", nil, true, func(f *frame) {
		if !f.OK {
			c.failReply(op, f)
			return
		}
		for _, u := range f.Users {
			c.names.addUser(u.ID, u.Name)
		}
		c.out.print(outOK, fmtBlocks(f.Users))
		c.finish(op, true)
	})
}

// simple sends a request whose ok reply carries nothing to show, and
// prints done's line when it comes (made then, with the names known by
// then). retry: the request is safe to send again after a lost connection.
func (c *core) simple(op *userOp, typ string, fields map[string]any, retry bool, done func() string) {
	c.request(op, typ, fields, retry, func(f *frame) {
		if !f.OK {
			c.failReply(op, f)
			return
		}
		c.out.print(outOK, done())
		c.finish(op, true)
	})
}
