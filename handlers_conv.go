package main

import (
	"context"

	"chat/internal/wire"
)

// Handlers of conversations: the list, read marks, typing notices.

// The conversations limit (docs/protocol.md, "Limits").
const (
	defaultConversations = 100
	maxConversations     = 1000
)

func conversationsArgs(c *conn, r *Request) (int, *ProtoError) {
	return clamp(r.f.Limit, "limit", defaultConversations, maxConversations)
}

// conversations {limit?} -> {conversations}
func handleConversations(ctx context.Context, c *conn, r *Request) response {
	limit, perr := conversationsArgs(c, r)
	if perr != nil {
		return fail(perr)
	}
	srv := c.srv
	convs, err := srv.store.Conversations(ctx, c.userID(), limit)
	if err != nil {
		return fail(err)
	}
	var peers []int64
	for _, cv := range convs {
		if cv.With != nil {
			peers = append(peers, cv.With.ID)
		}
	}
	if len(peers) > 0 {
		online, err := srv.presence.AreOnline(ctx, peers)
		if err != nil {
			return fail(err)
		}
		for _, cv := range convs {
			if cv.With != nil {
				cv.With.Online = wire.Bool(online[cv.With.ID])
			}
		}
	}
	page, err := srv.convReply(r, convs)
	if err != nil {
		return fail(err)
	}
	return ok(page)
}

// convPage is the result of a conversations reply, encoded once while it
// was fitted to -send-buffer.
type convPage struct {
	enc []byte // the conversations' JSON objects, comma-separated
}

func (p convPage) appendFields(b []byte) []byte {
	b = append(b, `,"conversations":[`...)
	b = append(b, p.enc...)
	return append(b, ']')
}

// convReply encodes convs, most recent first, so that the whole reply is
// at most -send-buffer bytes (a reply that could not fit at all is made
// smaller, never dropped): the least recent conversations are left out, as
// with a smaller limit. The first one always stays. 1000 conversations
// whose last messages are long texts of characters JSON escapes could
// reach 24 MB.
func (s *Server) convReply(r *Request, convs []Conv) (convPage, error) {
	empty, _ := okReply(r.Type, r.RID, convPage{}) // a fieldAppender: no error
	room := int(s.cfg.SendBuffer) - len(empty)
	var enc []byte
	for i := range convs {
		b, err := marshalNoEscape(&convs[i])
		if err != nil {
			return convPage{}, err
		}
		if i > 0 {
			if len(enc)+1+len(b) > room {
				break
			}
			enc = append(enc, ',')
		}
		enc = append(enc, b...)
	}
	return convPage{enc: enc}, nil
}

// convRef is the conversation a read or typing names: a private one (with)
// or a group.
type convRef struct {
	with, group int64
	hasWith     bool
}

// withOrGroup reads with and group, exactly one of them.
func withOrGroup(r *Request) (a convRef, perr *ProtoError) {
	var hasGroup bool
	if a.with, a.hasWith, perr = optInt(r.f.With, "with"); perr != nil {
		return a, perr
	}
	if a.group, hasGroup, perr = optInt(r.f.Group, "group"); perr != nil {
		return a, perr
	}
	if a.hasWith == hasGroup {
		return a, protoErr(wire.CodeBadRequest, `exactly one of "with" and "group" is required`)
	}
	return a, nil
}

// convArgs reads with and group, exactly one of them. Nobody has a
// conversation with themselves: with oneself is a bad_request, as a chat
// to oneself is.
func convArgs(c *conn, r *Request) (a convRef, perr *ProtoError) {
	if a, perr = withOrGroup(r); perr != nil {
		return a, perr
	}
	if a.hasWith && a.with == c.userID() {
		return a, protoErr(wire.CodeBadRequest, "you have no conversation with yourself")
	}
	return a, nil
}

// readReq is a read request's fields.
type readReq struct {
	convRef
	id int64
}

func readArgs(c *conn, r *Request) (a readReq, perr *ProtoError) {
	if a.convRef, perr = convArgs(c, r); perr != nil {
		return a, perr
	}
	a.id, perr = id(r.f.ID, "id")
	return a, perr
}

// read {with | group, id} -> {}
func handleRead(ctx context.Context, c *conn, r *Request) response {
	a, perr := readArgs(c, r)
	if perr != nil {
		return fail(perr)
	}
	srv, s := c.srv, c.sess.Load()
	topic, err := srv.convTopic(ctx, s, a.convRef)
	if err != nil {
		return fail(err)
	}
	if topic == 0 { // they never talked: no message is theirs
		return fail(ErrNoSuchMessage)
	}
	moved, err := srv.store.MarkRead(ctx, s.user.ID, topic, a.id)
	if err != nil {
		return fail(err)
	}
	if !moved { // nothing new to tell anyone
		return ok(nil)
	}
	me := User{ID: s.user.ID, Name: s.user.Name, Online: wire.Bool(true)}
	mine := readPush{User: me, Group: a.group, ID: a.id} // for the reader's other sessions
	if a.hasWith {
		mine.With = a.with
		// The other side learns how far the reader has read, unless it
		// blocked the reader: it hears nothing from a blocked user.
		if !s.isBlockedBy(a.with) {
			srv.router.ToUser(a.with, &Push{Frame: pushFrame("read", readPush{User: me, With: me.ID, ID: a.id})})
		}
	}
	srv.router.ToUser(me.ID, &Push{Frame: pushFrame("read", mine), Except: c.id})
	return ok(nil)
}

// readPush is a read push: user has read the conversation up to id. With
// is the other side as the receiving session sees it.
type readPush struct {
	User  User  `json:"user"`
	With  int64 `json:"with,omitempty"`
	Group int64 `json:"group,omitempty"`
	ID    int64 `json:"id"`
}

// convTopic finds the topic of the conversation a names, after checking
// that it exists and that the session's user is in it (no_such_user,
// no_such_group, not_member): 0 for a pair that never talked.
func (s *Server) convTopic(ctx context.Context, sess *session, a convRef) (int64, error) {
	if !a.hasWith {
		if err := s.checkMember(ctx, sess, a.group); err != nil {
			return 0, err
		}
		return a.group, nil
	}
	if _, err := s.dir.user(ctx, a.with); err != nil {
		return 0, err
	}
	return s.dir.existingPairTopic(ctx, sess.user.ID, a.with)
}

// typingArgs reads a typing notice's conversation.
func typingArgs(c *conn, r *Request) (convRef, *ProtoError) { return convArgs(c, r) }

// typing {with | group} -> {}
func handleTyping(ctx context.Context, c *conn, r *Request) response {
	a, perr := typingArgs(c, r)
	if perr != nil {
		return fail(perr)
	}
	srv, s := c.srv, c.sess.Load()
	conv := -a.group // the typing gate's key: a user id, or a group id negated
	if a.hasWith {
		if _, err := srv.dir.user(ctx, a.with); err != nil {
			return fail(err)
		}
		if s.isBlockedBy(a.with) {
			return bad(wire.CodeBlocked, "that user has blocked you")
		}
		conv = a.with
	} else if err := srv.checkMember(ctx, s, a.group); err != nil {
		return fail(err)
	}
	// Checked first, dropped after: a notice that would be dropped still
	// gets its errors, so the reply never depends on the timing.
	if !srv.typing.pass(s.user.ID, conv) {
		return ok(nil)
	}
	me := User{ID: s.user.ID, Name: s.user.Name, Online: wire.Bool(true)}
	if a.hasWith {
		srv.router.ToUser(a.with, &Push{Frame: pushFrame("typing", typingPush{User: me, With: me.ID})})
	} else {
		srv.router.ToGroup(a.group, me.ID, &Push{Frame: pushFrame("typing", typingPush{User: me, Group: a.group})})
	}
	return ok(nil)
}

// typingPush is a typing push: user is typing in the conversation. With is
// the typer (the other side as the receiving session sees it).
type typingPush struct {
	User  User  `json:"user"`
	With  int64 `json:"with,omitempty"`
	Group int64 `json:"group,omitempty"`
}
