package main

import (
	"context"

	"chat/internal/wire"
)

// response is what a handler returns: a result now, an error now, or work
// that completes later (wait closes, then fill gives the result or error).
type response struct {
	result any
	err    error
	wait   <-chan struct{}
	fill   func() (any, error)
	after  func() // runs once the reply is queued (the login backlog)
}

type handlerFunc func(ctx context.Context, c *conn, r *Request) response

// command is one request type's entry in the command table.
type command struct {
	handle handlerFunc
	auth   bool // needs a logged-in session
	// deferred handlers reply later; consecutive deferred requests run
	// together (and batch), any other request first waits for them.
	deferred bool
	// local handlers touch neither the store nor Redis: no deadline (a
	// ping every 30 s from every idle connection would make a timer each).
	local bool
	// check runs the request's field checks, which come before the rate
	// limit (docs/protocol.md, "Check order"); the handler makes them
	// again on its own, as the one function both use.
	check func(c *conn, r *Request) *ProtoError
	// cost is what the request takes from its user's rate limit, in
	// tokens; -rate refills that many a second (see the table below).
	cost float64
	// overdraw requests may borrow up to one burst below an empty bucket
	// (rateLimiter.take): acks, which others' messages depend on.
	overdraw bool
}

var commands map[string]command

// The costs, in tokens of the user's rate limit, are by what a request makes
// the server do, next to a chat's share of a group commit (1):
//
//   - ack 0.1: a client acks a batch every 100 ms or so. Acks may overdraw:
//     a user whose chats emptied the bucket still acks what comes in, or it
//     would all come again at the next login.
//   - whois 1: a point lookup in the store (not the directory: a deleted
//     account must be no user on every node at once) and a presence check.
//   - friends, groups, history 2: reads of up to a few hundred rows, the
//     presence of each user in them, a reply of up to a megabyte.
//   - add_friend, create_group, join_group, leave_group 5: a write
//     transaction of their own, and a push to the friend or to every online
//     member of the group; online 5: up to 1000 users read from presence
//     (Redis in a cluster).
//   - edit, delete_message 5: a write transaction of their own (a locked
//     row), and a push to the other side or to every online member.
//   - typing 0.5: a cached lookup and a push, or nothing (typing.go);
//     clients send one every few seconds while their user types.
//   - read 1: a one-row update and a push to at most two users; clients
//     send one as messages are shown.
//   - conversations 5: like online, up to 1000 of them, each with its
//     last message and an unread count, and the presence of the users.
//   - invite, kick_member, set_role, update_group, delete_group 5: the
//     same (delete_group's transaction deletes the group's history too,
//     but only its creator can send it, once); find_groups 2: a read of up
//     to 100 groups.
//   - decline_friend, remove_friend, block, unblock 5: a write transaction
//     and pushes to both users' sessions, like add_friend; friend_requests,
//     blocks 2: reads, like friends. change_password, delete_account 5:
//     writes with pushes to every session of the user (and, for a
//     deletion, to its friends and groups); the password check in them is
//     throttled apart, like a login's.
//   - ping, logout 0: nothing that costs. register and login are throttled
//     apart, per address and per account (throttle.go): no user is known
//     before them.
func init() {
	commands = map[string]command{
		"register":     {handle: handleRegister},
		"login":        {handle: handleLogin},
		"ping":         {handle: handlePing, local: true},
		"logout":       {handle: handleLogout, auth: true, check: fields(logoutArgs)},
		"sessions":     {handle: handleSessions, auth: true, cost: 1},
		"chat":         {handle: handleChat, auth: true, deferred: true, check: fields(chatArgs), cost: 1},
		"group_chat":   {handle: handleGroupChat, auth: true, deferred: true, check: fields(groupChatArgs), cost: 1},
		"ack":          {handle: handleAck, auth: true, deferred: true, check: fields(ackArgs), cost: 0.1, overdraw: true},
		"add_friend":   {handle: handleAddFriend, auth: true, check: fields(friendArgs), cost: 5},
		"friends":      {handle: handleFriends, auth: true, cost: 2},
		"create_group": {handle: handleCreateGroup, auth: true, check: fields(createGroupArgs), cost: 5},
		"join_group":   {handle: handleJoinGroup, auth: true, check: fields(groupArg), cost: 5},
		"leave_group":  {handle: handleLeaveGroup, auth: true, check: fields(groupArg), cost: 5},
		"groups":       {handle: handleGroups, auth: true, cost: 2},
		"whois":        {handle: handleWhois, auth: true, check: fields(whoisArgs), cost: 1},
		"online":       {handle: handleOnline, auth: true, check: fields(onlineArgs), cost: 5},
		"history":      {handle: handleHistory, auth: true, check: fields(historyArgs), cost: 2},

		// Changes to sent messages (handlers_edit.go).
		"edit":           {handle: handleEdit, auth: true, check: fields(editArgs), cost: 5},
		"delete_message": {handle: handleDeleteMessage, auth: true, check: fields(deleteMessageArgs), cost: 5},
		"conversations":  {handle: handleConversations, auth: true, check: fields(conversationsArgs), cost: 5},
		"read":           {handle: handleRead, auth: true, check: fields(readArgs), cost: 1},
		"typing":         {handle: handleTyping, auth: true, check: fields(typingArgs), cost: 0.5},
		"invite":         {handle: handleInvite, auth: true, check: fields(inviteArgs), cost: 5},
		"kick_member":    {handle: handleKickMember, auth: true, check: fields(kickArgs), cost: 5},
		"set_role":       {handle: handleSetRole, auth: true, check: fields(setRoleArgs), cost: 5},
		"update_group":   {handle: handleUpdateGroup, auth: true, check: fields(updateGroupArgs), cost: 5},
		"delete_group":   {handle: handleDeleteGroup, auth: true, check: fields(groupArg), cost: 5},
		"find_groups":    {handle: handleFindGroups, auth: true, check: fields(findGroupsArgs), cost: 2},
		// Friend requests, blocks, the account (handlers_friends.go,
		// handlers_blocks.go, handlers_password.go).
		"decline_friend":  {handle: handleDeclineFriend, auth: true, check: fields(friendArgs), cost: 5},
		"remove_friend":   {handle: handleRemoveFriend, auth: true, check: fields(friendArgs), cost: 5},
		"friend_requests": {handle: handleFriendRequests, auth: true, cost: 2},
		"block":           {handle: handleBlock, auth: true, check: fields(blockArgs), cost: 5},
		"unblock":         {handle: handleUnblock, auth: true, check: fields(blockArgs), cost: 5},
		"blocks":          {handle: handleBlocks, auth: true, cost: 2},
		"change_password": {handle: handleChangePassword, auth: true, check: fields(changePasswordArgs), cost: 5},
		"delete_account":  {handle: handleDeleteAccount, auth: true, check: fields(deleteAccountArgs), cost: 5},
	}
}

// fields makes a command's check of the function that reads its fields.
func fields[T any](args func(c *conn, r *Request) (T, *ProtoError)) func(c *conn, r *Request) *ProtoError {
	return func(c *conn, r *Request) *ProtoError {
		_, perr := args(c, r)
		return perr
	}
}

// dispatch runs one request through the shared checks and its handler, and
// queues the reply. It runs on the connection's reader goroutine.
func (s *Server) dispatch(c *conn, r *Request) {
	cmd, ok := commands[r.Type]
	if !ok {
		s.metrics.requests.inc("unknown")
		s.metrics.errors.inc("error", string(wire.CodeUnknownType))
		c.reply(errReply("error", r.RID, protoErr(wire.CodeUnknownType, "unknown request type %q", r.Type)))
		return
	}
	s.metrics.requests.inc(r.Type)
	if cmd.auth && c.sess.Load() == nil {
		s.metrics.errors.inc(r.Type, string(wire.CodeNotLoggedIn))
		c.reply(errReply(r.Type, r.RID, protoErr(wire.CodeNotLoggedIn, "log in first")))
		return
	}
	// The fields, then the rate limit: a request that fails its field
	// checks costs no tokens.
	if cmd.check != nil {
		if perr := cmd.check(c, r); perr != nil {
			c.reply(s.encodeReply(c, r, nil, perr))
			return
		}
	}
	if perr := s.charge(c, &cmd); perr != nil {
		c.reply(s.encodeReply(c, r, nil, perr))
		return
	}
	if !cmd.deferred {
		c.waitPending()
	}
	ctx, cancel := context.Background(), func() {}
	if !cmd.local {
		ctx, cancel = context.WithTimeout(ctx, storeTimeout)
	}
	resp := cmd.handle(ctx, c, r)
	cancel()
	if resp.wait == nil {
		c.reply(s.encodeReply(c, r, resp.result, resp.err))
	} else {
		c.replyLater(resp.wait, func() []byte {
			result, err := resp.fill()
			return s.encodeReply(c, r, result, err)
		})
	}
	if resp.after != nil {
		resp.after()
	}
}

func (s *Server) encodeReply(c *conn, r *Request, result any, err error) []byte {
	if err == nil {
		b, merr := okReply(r.Type, r.RID, result)
		if merr == nil {
			return b
		}
		err = merr
	}
	perr, fault := asProtoError(err)
	s.metrics.errors.inc(r.Type, string(perr.Code))
	if fault {
		c.log.Warn("request failed", "type", r.Type, "err", err)
	}
	return errReply(r.Type, r.RID, perr)
}

func fail(err error) response                 { return response{err: err} }
func ok(result any) response                  { return response{result: result} }
func bad(code wire.Code, msg string) response { return fail(protoErr(code, "%s", msg)) }
