package main

import (
	"context"

	"chat/internal/wire"
)

// Handlers of changes to sent messages: edit, delete_message.

// editReq is an edit's fields.
type editReq struct {
	id   int64
	text string
}

// editArgs reads an edit's fields: the text follows chat's rules.
func editArgs(c *conn, r *Request) (a editReq, perr *ProtoError) {
	if a.id, perr = id(r.f.ID, "id"); perr != nil {
		return a, perr
	}
	if a.text, perr = str(r.f.Text, "text"); perr != nil {
		return a, perr
	}
	return a, checkText(a.text)
}

// deleteMessageArgs reads a delete_message's id.
func deleteMessageArgs(c *conn, r *Request) (int64, *ProtoError) { return id(r.f.ID, "id") }

// edit {id, text} -> {message}
func handleEdit(ctx context.Context, c *conn, r *Request) response {
	a, perr := editArgs(c, r)
	if perr != nil {
		return fail(perr)
	}
	me := c.userID()
	m, changed, err := c.srv.store.ChangeMessage(ctx, a.id, me, func(m Message, _ Role) (Message, bool, error) {
		switch {
		case m.From != me:
			return m, false, protoErr(wire.CodeForbidden, "only the sender may edit a message")
		case m.Deleted:
			return m, false, protoErr(wire.CodeForbidden, "the message was deleted")
		case m.Text == a.text:
			// A retry of an edit that went through, or no change at
			// all: nothing to store, nothing to push.
			return m, false, nil
		}
		m.Text = a.text
		// Never before the message itself or an earlier edit, whatever
		// the clocks of the nodes that took them.
		m.Edited = max(nowMS(), m.TS, m.Edited)
		return m, true, nil
	})
	if err != nil {
		return fail(err)
	}
	if changed {
		frame := editedPush(&m)
		c.pushChange(&m, func(int64) []byte { return frame })
	}
	return ok(messageResult{&m})
}

// delete_message {id} -> {}
func handleDeleteMessage(ctx context.Context, c *conn, r *Request) response {
	msgID, perr := deleteMessageArgs(c, r)
	if perr != nil {
		return fail(perr)
	}
	me := c.userID()
	m, changed, err := c.srv.store.ChangeMessage(ctx, msgID, me, func(m Message, role Role) (Message, bool, error) {
		switch {
		case m.From != me && (m.Group == 0 || !canModerate(role)):
			return m, false, protoErr(wire.CodeForbidden, "only the sender, or the group's creator or an admin, may delete a message")
		case m.Deleted:
			return m, false, nil // deleting twice is ok, and pushes once
		}
		// The text goes for good; the edit time with it: a tombstone
		// has nothing left that was edited.
		m.Text, m.Edited, m.Deleted = "", 0, true
		return m, true, nil
	})
	if err != nil {
		return fail(err)
	}
	if changed {
		c.pushChange(&m, func(with int64) []byte {
			return pushFrame("deleted", deletedPush{ID: m.ID, With: with, Group: m.Group})
		})
	}
	return ok(nil)
}

// canModerate reports whether a group member of role may delete the
// others' messages.
func canModerate(role Role) bool {
	return role == RoleCreator || role == RoleAdmin
}

// deletedPush is a deleted push's fields: the message, and its
// conversation as the receiving session sees it.
type deletedPush struct {
	ID    int64 `json:"id"`
	With  int64 `json:"with,omitempty"`
	Group int64 `json:"group,omitempty"`
}

// editedPush is the frame of an edited push.
func editedPush(m *Message) []byte {
	b := make([]byte, 0, 160+len(m.Text)+len(m.FromName))
	b = append(b, `{"type":"edited","message":`...)
	b = m.AppendJSON(b)
	return append(b, "}\n"...)
}

// pushChange tells every session of m's participants but the calling one
// about a change to m. frame builds the push for a receiver, given the
// other side of a private conversation as that receiver sees it (0 for a
// group): for the other side that is the caller, for the caller's other
// sessions the other side.
func (c *conn) pushChange(m *Message, frame func(with int64) []byte) {
	router, me := c.srv.router, c.userID()
	if m.Group != 0 {
		router.ToGroup(m.Group, 0, &Push{Frame: frame(0), Except: c.id})
		return
	}
	other := m.To
	if other == me {
		other = m.From
	}
	router.ToUser(other, &Push{Frame: frame(me)})
	router.ToUser(me, &Push{Frame: frame(other), Except: c.id})
}
