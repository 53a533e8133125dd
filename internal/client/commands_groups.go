package client

// The group commands of version 2: invitations, removing members, roles,
// settings, deleting a group, finding public groups. GROUP is an id or
// #NAME of one of your groups (withGroup).

// /invite GROUP USER -> invite
func (c *core) cmdInvite(op *userOp, a args) {
	c.withGroup(op, a.Target, func(gid int64) {
		fields := userFields("user", a.Who)
		fields["group"] = gid
		c.simple(op, "invite", fields, true, func() string { return "ok invited " + c.refName(a.Who) + " to " + c.names.group(gid) })
	})
}

// /kick GROUP USER -> [whois], kick_member (which takes an id only; not
// repeated after a lost connection)
func (c *core) cmdKick(op *userOp, a args) {
	c.withGroup(op, a.Target, func(gid int64) {
		c.withUser(op, a.Who, func(uid int64) {
			c.simple(op, "kick_member", map[string]any{"group": gid, "user": uid}, false,
				func() string { return "ok removed " + c.names.user(uid) + " from " + c.names.group(gid) })
		})
	})
}

// /role GROUP USER admin|member -> [whois], set_role
func (c *core) cmdRole(op *userOp, a args) {
	c.withGroup(op, a.Target, func(gid int64) {
		c.withUser(op, a.Who, func(uid int64) {
			c.simple(op, "set_role", map[string]any{"group": gid, "user": uid, "role": a.Role}, true,
				func() string { return "ok " + c.names.user(uid) + " is now " + a.Role + " of " + c.names.group(gid) })
		})
	})
}

// /setgroup GROUP name NAME | desc [DESC] | private | public -> update_group
func (c *core) cmdSetGroup(op *userOp, a args) {
	c.withGroup(op, a.Target, func(gid int64) {
		fields := map[string]any{"group": gid}
		switch a.Key {
		case "name", "desc":
			fields[a.Key] = a.Value
		default:
			fields["private"] = a.Key == "private"
		}
		c.request(op, "update_group", fields, true, func(f *frame) {
			g := f.groupObj()
			if !f.OK || g == nil {
				c.failReply(op, f)
				return
			}
			c.names.addGroup(g)
			c.print(outOK, "ok updated %s", fmtGroupInfo(g))
			c.refreshPrompt()
			c.finish(op, true)
		})
	})
}

// /delgroup GROUP -> delete_group (not repeated after a lost connection)
func (c *core) cmdDeleteGroup(op *userOp, a args) {
	c.withGroup(op, a.Target, func(gid int64) {
		c.request(op, "delete_group", map[string]any{"group": gid}, false, func(f *frame) {
			if !f.OK {
				c.failReply(op, f)
				return
			}
			c.print(outOK, "ok deleted group %s", c.names.group(gid))
			c.groupGone(gid)
			c.finish(op, true)
		})
	})
}

// /findgroups [QUERY] -> find_groups: a summary line, then one line a group.
func (c *core) cmdFindGroups(op *userOp, a args) {
	fields := map[string]any{"limit": findDefault}
	if a.Query != "" {
		fields["query"] = a.Query
	}
	c.request(op, "find_groups", fields, true, func(f *frame) {
		if !f.OK {
			c.failReply(op, f)
			return
		}
		c.print(outOK, "ok findgroups: %s", plural(len(f.Groups), "group", "groups"))
		for i := range f.Groups {
			c.out.print(outInfo, fmtFound(&f.Groups[i]))
		}
		c.finish(op, true)
	})
}

// findDefault is how many groups /findgroups asks for: the protocol's most.
const findDefault = 100

// groupGone forgets a group that was deleted or that the user was
// removed from: the open conversation closes if it was that group.
func (c *core) groupGone(gid int64) {
	if c.open != nil && c.open.Group && c.open.ID == gid {
		c.setOpen(nil)
	}
}

// refreshPrompt relabels the open conversation (a group renamed).
func (c *core) refreshPrompt() {
	if c.open != nil {
		c.setOpen(c.open)
	}
}
