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

// /register NAME [PASSWORD] -> register
func (c *core) cmdRegister(op *userOp, a args) {
	if a.Password == "" {
		c.failLocal(op, "give the password: /register NAME PASSWORD")
		return
	}
	c.request(op, "register", map[string]any{"name": a.Name, "password": a.Password}, false, func(f *frame) {
		if !f.OK || f.User == nil {
			c.failReply(op, f)
			return
		}
		c.names.addUser(f.User.ID, f.User.Name)
		c.print(outOK, "ok register %s (id %d)", clean(f.User.Name), f.User.ID)
		c.finish(op, true)
	})
}

// /login NAME|ID [PASSWORD] -> login; the name and password are kept for
// logging in again after a reconnect.
//
// Only while logged out: the server takes a login on a logged-in
// connection as a logout first, so a wrong password would end the session
// the user has. Logged in, /login is refused here: /logout first. The
// check waits for the replies to the commands before it (inTurn), so that
// "/logout" then "/login bob" works, in a script too.
func (c *core) cmdLogin(op *userOp, a args) {
	c.inTurn(op, "login", func() {
		if c.me != nil {
			if a.Target.ID == c.me.ID || a.Target.Name == c.me.Name {
				c.fail(op, "you are already logged in as %s", clean(c.me.Name))
			} else {
				c.fail(op, "you are logged in as %s: /logout first", clean(c.me.Name))
			}
			return
		}
		if a.Password == "" {
			c.fail(op, "give the password: /login NAME PASSWORD")
			return
		}
		c.submitFront(c.loginRequest(op, a))
	})
}

// loginRequest is the login of /login.
func (c *core) loginRequest(op *userOp, a args) *request {
	var r *request
	r = &request{typ: "login", fields: loginFields(a.Target, a.Password, c.cfg.device), op: op, retry: true}
	r.onReply = func(f *frame) {
		if !f.OK || f.User == nil {
			// A failed login leaves the connection logged out.
			c.creds = nil
			c.setMe(nil)
			c.failReply(op, f)
			return
		}
		c.creds = &creds{target: a.Target, password: a.Password}
		c.kicked = false
		c.loggedIn(f, r.sentAt)
		for _, l := range fmtLogin(f.User, f.Friends, f.Groups, f.Requests) {
			c.out.print(outOK, l)
		}
		if c.open != nil {
			c.setOpen(c.open) // the names the login brought may label it better
		}
		c.finish(op, true)
		c.flushAcks()
	}
	return r
}

// /logout [all], loginout -> logout
func (c *core) cmdLogout(op *userOp, a args) {
	var fields map[string]any
	done := "ok logout"
	if a.All {
		fields, done = map[string]any{"all": true}, "ok logout (every device)"
	}
	c.request(op, "logout", fields, true, func(f *frame) {
		if !f.OK {
			c.failReply(op, f)
			return
		}
		c.creds = nil
		c.setMe(nil)
		c.setOpen(nil)
		c.print(outOK, "%s", done)
		c.finish(op, true)
	})
}
