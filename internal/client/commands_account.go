package client

// The account commands of version 2: the sessions of the user, a new
// password, deleting the account.

// /sessions -> sessions
func (c *core) cmdSessions(op *userOp, _ args) {
	c.request(op, "sessions", nil, true, func(f *frame) {
		if !f.OK {
			c.failReply(op, f)
			return
		}
		c.out.print(outOK, fmtSessions(c.names, f.Sessions, c.cfg.device))
		c.finish(op, true)
	})
}

// /passwd [OLD NEW] -> change_password (not repeated after a lost
// connection: once done, OLD is wrong). The new password is the one a
// reconnect logs in with.
func (c *core) cmdPasswd(op *userOp, a args) {
	if a.Password == "" || a.New == "" {
		c.failLocal(op, "give the passwords: /passwd OLD NEW")
		return
	}
	c.request(op, "change_password", map[string]any{"old": a.Password, "new": a.New}, false, func(f *frame) {
		if !f.OK {
			c.failReply(op, f)
			return
		}
		if c.creds != nil {
			c.creds.password = a.New
		}
		c.print(outOK, "ok password changed; your other devices were logged out")
		c.finish(op, true)
	})
}

// /delete-account [PASSWORD] -> delete_account (not repeated after a lost
// connection). The server closes the connection after the reply: the
// client forgets the login and, as after a kick, connects again only for
// the next command.
func (c *core) cmdDeleteAccount(op *userOp, a args) {
	if a.Password == "" {
		c.failLocal(op, "give the password: /delete-account PASSWORD")
		return
	}
	c.request(op, "delete_account", map[string]any{"password": a.Password}, false, func(f *frame) {
		if !f.OK {
			c.failReply(op, f)
			return
		}
		name := "your account"
		if c.me != nil {
			name = "account " + clean(c.me.Name)
		}
		c.creds = nil
		c.setMe(nil)
		c.setOpen(nil)
		c.kicked = true // the server closes the connection: do not log in again
		c.closedWhy = "the account was deleted"
		c.print(outOK, "ok deleted %s", name)
		c.finish(op, true)
	})
}
