package main

import "strconv"

// Running the user's commands: each becomes requests whose replies are
// formatted into output lines. Runs on the core goroutine.

// clWhat names a command in error lines.
func clWhat(k clCmdKind) string {
	if k == clCmdSay {
		return "msg"
	}
	return k.String()
}

func (c *clCore) run(cmd clCmd) {
	if cmd.Kind == clCmdEmpty {
		return
	}
	op := c.newOp(clWhat(cmd.Kind))
	switch cmd.Kind {
	case clCmdHelp:
		c.local(func() {
			for _, l := range clHelpLines() {
				c.ui.print(clOutInfo, l)
			}
			c.finish(op, true)
		})
	case clCmdQuit:
		c.quitting = true
		c.finish(op, true)
	case clCmdRegister:
		if cmd.Password == "" {
			c.failLocal(op, "give the password: /register NAME PASSWORD")
			return
		}
		c.request(op, "register", map[string]any{"name": cmd.Name, "password": cmd.Password}, false, func(f *clFrame) {
			if !f.OK || f.User == nil {
				c.failReply(op, f)
				return
			}
			c.names.addUser(f.User.ID, f.User.Name)
			c.print(clOutOK, "ok register %s (id %d)", clClean(f.User.Name), f.User.ID)
			c.finish(op, true)
		})
	case clCmdLogin:
		c.runLogin(op, cmd)
	case clCmdLogout:
		c.request(op, "logout", nil, true, func(f *clFrame) {
			if !f.OK {
				c.failReply(op, f)
				return
			}
			c.creds, c.me, c.names.me, c.open = nil, nil, 0, nil
			c.ui.setPrompt("")
			c.print(clOutOK, "ok logout")
			c.finish(op, true)
		})
	case clCmdMsg:
		c.withUser(op, cmd.Target, func(id int64) { c.sendChat(op, id, 0, cmd.Text) })
	case clCmdSay:
		if c.open == nil {
			c.failLocal(op, "no conversation is open: /open USER, /open #GROUP, or /msg USER TEXT")
			return
		}
		if c.open.Group {
			c.sendChat(op, 0, c.open.ID, cmd.Text)
		} else {
			c.sendChat(op, c.open.ID, 0, cmd.Text)
		}
	case clCmdOpen:
		then := func(id int64) {
			ref := clRef{ID: id, Group: cmd.Target.Group}
			c.open = &ref
			label := c.names.user(id)
			if ref.Group {
				label = c.names.group(id)
			}
			c.ui.setPrompt(label)
			c.local(func() {
				c.print(clOutOK, "ok open %s", label)
				c.finish(op, true)
			})
		}
		if cmd.Target.Group {
			c.withGroup(op, cmd.Target, then)
		} else {
			c.withUser(op, cmd.Target, then)
		}
	case clCmdClose:
		c.open = nil
		c.ui.setPrompt("")
		c.local(func() {
			c.print(clOutOK, "ok close")
			c.finish(op, true)
		})
	case clCmdFriends:
		c.request(op, "friends", nil, true, func(f *clFrame) {
			if !f.OK {
				c.failReply(op, f)
				return
			}
			for _, u := range f.Friends {
				c.names.addUser(u.ID, u.Name)
			}
			c.ui.print(clOutOK, clFmtFriends(f.Friends))
			c.finish(op, true)
		})
	case clCmdAdd:
		fields := map[string]any{"friend": cmd.Target.ID}
		if cmd.Target.ID == 0 {
			fields = map[string]any{"name": cmd.Target.Name}
		}
		c.request(op, "add_friend", fields, true, func(f *clFrame) {
			if !f.OK || f.Friend == nil {
				c.failReply(op, f)
				return
			}
			c.names.addUser(f.Friend.ID, f.Friend.Name)
			c.print(clOutOK, "ok friend %s (id %d)%s", clClean(f.Friend.Name), f.Friend.ID, clOnlineMark(f.Friend.Online))
			c.finish(op, true)
		})
	case clCmdWho:
		c.request(op, "online", map[string]any{"limit": 1000}, true, func(f *clFrame) {
			if !f.OK {
				c.failReply(op, f)
				return
			}
			for _, u := range f.Users {
				c.names.addUser(u.ID, u.Name)
			}
			c.ui.print(clOutOK, clFmtWho(f.Users, f.Total))
			c.finish(op, true)
		})
	case clCmdGroups:
		c.request(op, "groups", nil, true, func(f *clFrame) {
			if !f.OK {
				c.failReply(op, f)
				return
			}
			for i := range f.Groups {
				c.names.addGroup(&f.Groups[i])
			}
			c.ui.print(clOutOK, clFmtGroups(f.Groups))
			c.finish(op, true)
		})
	case clCmdCreate:
		fields := map[string]any{"name": cmd.Name}
		if cmd.Desc != "" {
			fields["desc"] = cmd.Desc
		}
		c.request(op, "create_group", fields, false, func(f *clFrame) {
			g := f.groupObj()
			if !f.OK || g == nil {
				c.failReply(op, f)
				return
			}
			c.names.addGroup(g)
			c.print(clOutOK, "ok created #%d %s", g.ID, clClean(g.Name))
			c.finish(op, true)
		})
	case clCmdJoin:
		c.request(op, "join_group", map[string]any{"group": cmd.Target.ID}, true, func(f *clFrame) {
			g := f.groupObj()
			if !f.OK || g == nil {
				c.failReply(op, f)
				return
			}
			c.names.addGroup(g)
			c.print(clOutOK, "ok joined %s", clFmtGroup(g))
			c.finish(op, true)
		})
	case clCmdLeave:
		c.withGroup(op, cmd.Target, func(id int64) {
			c.request(op, "leave_group", map[string]any{"group": id}, false, func(f *clFrame) {
				if !f.OK {
					c.failReply(op, f)
					return
				}
				c.print(clOutOK, "ok left %s", c.names.group(id))
				if c.open != nil && c.open.Group && c.open.ID == id {
					c.open = nil
					c.ui.setPrompt("")
				}
				c.finish(op, true)
			})
		})
	case clCmdGroupMsg:
		c.withGroup(op, cmd.Target, func(id int64) { c.sendChat(op, 0, id, cmd.Text) })
	case clCmdHistory:
		n := cmd.N
		if n == 0 {
			n = clHistoryDefault
		}
		then := func(id int64) {
			fields := map[string]any{"limit": n}
			label := "with " + c.names.user(id)
			if cmd.Target.Group {
				fields["group"] = id
				label = "of " + c.names.group(id)
			} else {
				fields["with"] = id
			}
			c.request(op, "history", fields, true, func(f *clFrame) {
				if !f.OK {
					c.failReply(op, f)
					return
				}
				c.print(clOutOK, "ok history %s: %s", label, clPlural(len(f.Messages), "message", "messages"))
				for i := range f.Messages {
					m := &f.Messages[i]
					c.names.addUser(m.From, m.FromName)
					c.ui.print(clOutInfo, clFmtMessage(c.names, m, clMsgHistory))
				}
				c.finish(op, true)
			})
		}
		if cmd.Target.Group {
			c.withGroup(op, cmd.Target, then)
		} else {
			c.withUser(op, cmd.Target, then)
		}
	default:
		c.failLocal(op, "not implemented")
	}
}

func (c *clCore) runLogin(op *clOp, cmd clCmd) {
	if cmd.Password == "" {
		c.failLocal(op, "give the password: /login NAME PASSWORD")
		return
	}
	var r *clReq
	r = &clReq{typ: "login", fields: clLoginFields(cmd.Target, cmd.Password), op: op, retry: true}
	r.onReply = func(f *clFrame) {
		if !f.OK || f.User == nil {
			// A failed login leaves the connection logged out.
			c.creds, c.me, c.names.me = nil, nil, 0
			c.failReply(op, f)
			return
		}
		c.creds = &clCreds{target: cmd.Target, password: cmd.Password}
		c.kicked = false
		c.loggedIn(f, r.sentAt)
		for _, l := range clFmtLogin(f.User, f.Friends, f.Groups) {
			c.ui.print(clOutOK, l)
		}
		if c.open != nil {
			c.ui.setPrompt(c.promptLabel())
		}
		c.finish(op, true)
		c.flushAcks()
	}
	c.submit(r)
}

func (c *clCore) promptLabel() string {
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
func (c *clCore) sendChat(op *clOp, to, group int64, text string) {
	fields := map[string]any{"text": text, "cid": c.nextCID()}
	typ := "chat"
	if group != 0 {
		typ = "group_chat"
		fields["group"] = group
	} else {
		fields["to"] = to
	}
	c.request(op, typ, fields, true, func(f *clFrame) {
		if !f.OK || f.Message == nil {
			c.failReply(op, f)
			return
		}
		c.seen.add(f.Message.ID)
		c.ui.print(clOutOK, clFmtSent(c.names, f.Message))
		c.finish(op, true)
	})
}

// withUser resolves a user (name or id) with whois, unless known, and
// calls then with the id. Input waits meanwhile, so that the commands
// after this one see its effect (/open, then plain lines).
func (c *clCore) withUser(op *clOp, ref clRef, then func(id int64)) {
	if ref.ID != 0 {
		if _, ok := c.names.users[ref.ID]; ok {
			then(ref.ID)
			return
		}
	} else if id, ok := c.names.userID(ref.Name); ok {
		then(id)
		return
	}
	fields := map[string]any{"name": ref.Name}
	if ref.ID != 0 {
		fields = map[string]any{"id": ref.ID}
	}
	op.resolving = true
	c.resolving++
	c.request(op, "whois", fields, true, func(f *clFrame) {
		c.resolved(op)
		if !f.OK || f.User == nil {
			if f.Code == "no_such_user" {
				c.fail(op, "there is no user %s (no_such_user)", clClean(ref.String()))
				return
			}
			c.failReply(op, f)
			return
		}
		c.names.addUser(f.User.ID, f.User.Name)
		then(f.User.ID)
	})
}

// withGroup resolves a group: an id as it is, a name among the groups seen
// (the user's own, after login or /groups).
func (c *clCore) withGroup(op *clOp, ref clRef, then func(id int64)) {
	if ref.ID != 0 {
		then(ref.ID)
		return
	}
	if id, ok := c.names.groupID(ref.Name); ok {
		then(id)
		return
	}
	c.failLocal(op, "no group named %s among yours: use its id (/groups lists them)", strconv.Quote(ref.Name))
}
