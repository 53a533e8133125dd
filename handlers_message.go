package main

import (
	"context"

	"chat/internal/wire"
)

// Handlers of messages: chat, group_chat, ack, history.

type messageResult struct {
	Message *Message `json:"message"`
}

func (r messageResult) appendFields(b []byte) []byte {
	b = append(b, `,"message":`...)
	return r.Message.AppendJSON(b)
}

// textAndCID reads the fields every message request has.
func textAndCID(r *Request) (text, cid string, perr *ProtoError) {
	if text, perr = str(r.f.Text, "text"); perr != nil {
		return "", "", perr
	}
	if perr = checkText(text); perr != nil {
		return "", "", perr
	}
	if cid, _, perr = optStr(r.f.CID, "cid"); perr != nil {
		return "", "", perr
	}
	if len(cid) > wire.MaxCIDBytes {
		return "", "", protoErr(wire.CodeTooLong, "cid is longer than %d bytes", wire.MaxCIDBytes)
	}
	return text, cid, nil
}

// chatReq is a chat or group_chat: to or group, and the text.
type chatReq struct {
	to, group int64
	text, cid string
}

// chatArgs reads a chat's fields.
func chatArgs(c *conn, r *Request) (a chatReq, perr *ProtoError) {
	if a.to, perr = id(r.f.To, "to"); perr != nil {
		return a, perr
	}
	if a.text, a.cid, perr = textAndCID(r); perr != nil {
		return a, perr
	}
	if a.to == c.userID() {
		return a, protoErr(wire.CodeBadRequest, "you cannot send a message to yourself")
	}
	return a, nil
}

// groupChatArgs reads a group_chat's fields.
func groupChatArgs(c *conn, r *Request) (a chatReq, perr *ProtoError) {
	if a.group, perr = id(r.f.Group, "group"); perr != nil {
		return a, perr
	}
	a.text, a.cid, perr = textAndCID(r)
	return a, perr
}

// chat {to, text, cid?} -> {message}, once stored
func handleChat(ctx context.Context, c *conn, r *Request) response {
	a, perr := chatArgs(c, r)
	if perr != nil {
		return fail(perr)
	}
	s := c.sess.Load()
	if _, err := c.srv.dir.user(ctx, a.to); err != nil {
		return fail(err)
	}
	// From memory: the session learns of blocks as they happen (pushBlockedBy).
	if s.isBlockedBy(a.to) {
		return fail(errBlockedByThem)
	}
	topic, err := c.srv.dir.pairTopic(ctx, s.user.ID, a.to)
	if err != nil {
		return fail(err)
	}
	return c.srv.submitChat(&chatItem{
		msg:  Message{Message: wire.Message{From: s.user.ID, FromName: s.user.Name, To: a.to, Text: a.text, TS: nowMS()}, Topic: topic},
		cid:  a.cid,
		conn: c.id,
	})
}

// group_chat {group, text, cid?} -> {message}, once stored
func handleGroupChat(ctx context.Context, c *conn, r *Request) response {
	a, perr := groupChatArgs(c, r)
	if perr != nil {
		return fail(perr)
	}
	s := c.sess.Load()
	if err := c.srv.checkMember(ctx, s, a.group); err != nil {
		return fail(err)
	}
	return c.srv.submitChat(&chatItem{
		msg:  Message{Message: wire.Message{From: s.user.ID, FromName: s.user.Name, Group: a.group, Text: a.text, TS: nowMS()}, Topic: a.group},
		cid:  a.cid,
		conn: c.id,
	})
}

// checkMember answers whether the session may use group g. The session's
// own set is authoritative: only the user's own session joins and leaves.
func (s *Server) checkMember(ctx context.Context, sess *session, g int64) error {
	if sess.inGroup(g) {
		return nil
	}
	exists, err := s.dir.groupExists(ctx, g)
	switch {
	case err != nil:
		return err
	case !exists:
		return ErrNoSuchGroup
	default:
		return ErrNotMember
	}
}

func (s *Server) submitChat(it *chatItem) response {
	it.done = make(chan struct{})
	if !s.chats.submit(it) {
		return fail(errClosed)
	}
	return response{wait: it.done, fill: func() (any, error) {
		if it.err != nil {
			return nil, it.err
		}
		return messageResult{&it.msg}, nil
	}}
}

// ackArgs reads an ack's ids.
func ackArgs(c *conn, r *Request) ([]int64, *ProtoError) { return intList(r.f.IDs, "ids") }

// ack {ids} -> {}, once recorded
func handleAck(ctx context.Context, c *conn, r *Request) response {
	ids, perr := ackArgs(c, r)
	if perr != nil {
		return fail(perr)
	}
	if len(ids) == 0 {
		return ok(nil)
	}
	it := &ackItem{user: c.userID(), ids: ids, done: make(chan struct{})}
	if !c.srv.acks.submit(it) {
		return fail(errClosed)
	}
	return response{wait: it.done, fill: func() (any, error) { return nil, it.err }}
}

// historyReq is a history request's fields.
type historyReq struct {
	convRef
	before, after       int64
	hasBefore, hasAfter bool
	limit               int
}

// historyArgs reads a history request's fields. Unlike read and typing,
// history with oneself is not refused: it finds no conversation.
func historyArgs(c *conn, r *Request) (a historyReq, perr *ProtoError) {
	if a.convRef, perr = withOrGroup(r); perr != nil {
		return a, perr
	}
	if a.before, a.hasBefore, perr = optInt(r.f.Before, "before"); perr != nil {
		return a, perr
	}
	if a.after, a.hasAfter, perr = optInt(r.f.After, "after"); perr != nil {
		return a, perr
	}
	a.limit, perr = clamp(r.f.Limit, "limit", wire.DefaultHistory, wire.MaxHistory)
	return a, perr
}

// history {with | group, before?, after?, limit?} -> {messages}
func handleHistory(ctx context.Context, c *conn, r *Request) response {
	a, perr := historyArgs(c, r)
	if perr != nil {
		return fail(perr)
	}
	srv, s := c.srv, c.sess.Load()
	var topic int64
	if a.hasWith {
		// A deleted account's conversation stays readable.
		if _, _, err := srv.dir.anyUser(ctx, a.with); err != nil {
			return fail(err)
		}
		t, err := srv.dir.existingPairTopic(ctx, s.user.ID, a.with)
		if err != nil {
			return fail(err)
		}
		topic = t
	} else {
		if err := srv.checkMember(ctx, s, a.group); err != nil {
			return fail(err)
		}
		topic = a.group
	}
	msgs := []*Message{}
	// Nothing to read: no conversation yet, one with oneself, a page
	// before id 1, or an interval (after, before) with no id in it.
	empty := topic == 0 || a.hasWith && a.with == s.user.ID || a.hasBefore && a.before <= 0 ||
		a.hasAfter && a.hasBefore && a.after >= a.before-1
	dir := pageBack
	if a.hasAfter {
		dir = pageForward
	}
	if !empty {
		var err error
		if dir == pageForward {
			msgs, err = srv.store.HistoryAfter(ctx, topic, a.after, a.before, a.limit)
		} else {
			msgs, err = srv.store.History(ctx, topic, a.before, a.limit)
		}
		if err != nil {
			return fail(err)
		}
	}
	// At most -send-buffer: the end nearest the page's bound kept.
	return ok(srv.historyReply(r, msgs, dir))
}
