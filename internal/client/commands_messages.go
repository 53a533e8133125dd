package client

// The message commands of version 2: editing and deleting a message, and
// the list of conversations.

// /edit ID TEXT -> edit
func (c *core) cmdEdit(op *userOp, a args) {
	c.request(op, "edit", map[string]any{"id": a.MsgID, "text": a.Text}, true, func(f *frame) {
		if !f.OK || f.Message == nil {
			c.failReply(op, f)
			return
		}
		c.out.print(outOK, "ok "+fmtEdited(c.names, f.Message))
		c.finish(op, true)
	})
}

// /del ID -> delete_message (not repeated after a lost connection)
func (c *core) cmdDelete(op *userOp, a args) {
	c.simple(op, "delete_message", map[string]any{"id": a.MsgID}, false, func() string { return "ok deleted [" + itoa(a.MsgID) + "]" })
}

// /convs -> conversations: a summary line, then one line a conversation,
// the latest first. Their read marks are taken in, so that no read mark
// at or below them is sent.
func (c *core) cmdConvs(op *userOp, _ args) {
	c.request(op, "conversations", map[string]any{"limit": convsLimit}, true, func(f *frame) {
		if !f.OK {
			c.failReply(op, f)
			return
		}
		unread := 0
		for i := range f.Conversations {
			unread += f.Conversations[i].Unread
		}
		c.print(outOK, "ok convs: %s, %s", plural(len(f.Conversations), "conversation", "conversations"), plural(unread, "unread message", "unread messages"))
		for i := range f.Conversations {
			cv := &f.Conversations[i]
			var key convKey
			switch {
			case cv.Group != nil:
				c.names.addGroup(cv.Group)
				key = convKey{group: cv.Group.ID}
			case cv.With != nil:
				c.names.addUser(cv.With.ID, cv.With.Name)
				key = convKey{with: cv.With.ID}
			default:
				continue
			}
			if cv.Last != nil {
				c.names.addUser(cv.Last.From, cv.Last.FromName)
			}
			c.reads.markedElsewhere(key, cv.Read)
			c.out.print(outInfo, fmtConv(c.names, cv))
		}
		c.finish(op, true)
	})
}

// convsLimit is how many conversations /convs asks for.
const convsLimit = 100
