package main

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"

	"chat/internal/wire"

	"golang.org/x/crypto/bcrypt"
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
//   - whois 1: a cached lookup and a presence check.
//   - friends, groups, history 2: reads of up to a few hundred rows, the
//     presence of each user in them, a reply of up to a megabyte.
//   - add_friend, create_group, join_group, leave_group 5: a write
//     transaction of their own, and a push to the friend or to every online
//     member of the group; online 5: up to 1000 users read from presence
//     (Redis in a cluster).
//   - ping, logout 0: nothing that costs. register and login are throttled
//     apart, per address and per account (throttle.go): no user is known
//     before them.
func init() {
	commands = map[string]command{
		"register":     {handle: handleRegister},
		"login":        {handle: handleLogin},
		"ping":         {handle: handlePing, local: true},
		"logout":       {handle: handleLogout, auth: true},
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
	}
}

// fields makes a command's check of the function that reads its fields.
func fields[T any](args func(c *conn, r *Request) (T, *ProtoError)) func(c *conn, r *Request) *ProtoError {
	return func(c *conn, r *Request) *ProtoError {
		_, perr := args(c, r)
		return perr
	}
}

// historyReq is a history request's fields.
type historyReq struct {
	with, group, before, after   int64
	hasWith, hasBefore, hasAfter bool
	limit                        int
}

// historyArgs reads a history request's fields.
func historyArgs(c *conn, r *Request) (a historyReq, perr *ProtoError) {
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
	if a.before, a.hasBefore, perr = optInt(r.f.Before, "before"); perr != nil {
		return a, perr
	}
	if a.after, a.hasAfter, perr = optInt(r.f.After, "after"); perr != nil {
		return a, perr
	}
	a.limit, perr = clamp(r.f.Limit, "limit", wire.DefaultHistory, wire.MaxHistory)
	return a, perr
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

// --- accounts and sessions ---

// register {name, password} -> {user}
func handleRegister(ctx context.Context, c *conn, r *Request) response {
	name, perr := str(r.f.Name, "name")
	if perr != nil {
		return fail(perr)
	}
	pass, perr := str(r.f.Password, "password")
	if perr != nil {
		return fail(perr)
	}
	if perr := checkName(name); perr != nil {
		return fail(perr)
	}
	if perr := checkPassword(pass); perr != nil {
		return fail(perr)
	}
	srv := c.srv
	if perr := srv.registerAllowed(c); perr != nil {
		return fail(perr)
	}
	// A taken name costs a lookup, not a hash. (Taken between here and
	// the insert, it is name_taken from the insert.)
	switch _, err := srv.store.Account(ctx, name, 0); {
	case err == nil:
		return fail(ErrNameTaken)
	case !errors.Is(err, ErrNoSuchUser):
		return fail(err)
	}
	var hash []byte
	var herr error
	if err := srv.hash(ctx, func() {
		hash, herr = bcrypt.GenerateFromPassword([]byte(pass), srv.cfg.BcryptCost)
	}); err != nil {
		return fail(err)
	}
	if herr != nil {
		return fail(herr)
	}
	u, err := srv.store.CreateUser(ctx, name, hash)
	if err != nil {
		return fail(err)
	}
	srv.dir.rememberUser(u)
	return ok(struct {
		User User `json:"user"`
	}{u})
}

// dummyHash is compared against when a login names no user, so that a
// missing user costs as much time as a wrong password. Its first call
// hashes: call it in a hashing slot.
func (s *Server) dummyHash() []byte {
	s.dummyOnce.Do(func() {
		s.dummy, _ = bcrypt.GenerateFromPassword([]byte("no such user, no such password"), s.cfg.BcryptCost)
	})
	return s.dummy
}

// login {name | id, password} -> {user, friends, groups}, then the backlog
func handleLogin(ctx context.Context, c *conn, r *Request) response {
	name, byName, perr := optStr(r.f.Name, "name")
	if perr != nil {
		return fail(perr)
	}
	var uid int64
	if !byName {
		var hasID bool
		if uid, hasID, perr = optInt(r.f.ID, "id"); perr != nil {
			return fail(perr)
		}
		if !hasID {
			return bad(wire.CodeBadRequest, `"name" or "id" is required`)
		}
	}
	pass, perr := str(r.f.Password, "password")
	if perr != nil {
		return fail(perr)
	}
	srv := c.srv
	if s := c.sess.Load(); s != nil {
		c.endSession(ctx, s)
	}
	acct, err := srv.checkLogin(ctx, c, name, byName, uid, pass)
	if err != nil {
		return fail(err)
	}
	srv.dir.rememberUser(acct.User)
	friends, err := srv.store.Friends(ctx, acct.ID)
	if err != nil {
		return fail(err)
	}
	groups, err := srv.store.GroupsOf(ctx, acct.ID)
	if err != nil {
		return fail(err)
	}
	// Before the claim, so that a failure leaves no session behind; the
	// user counts as online already.
	if err := srv.markOnline(ctx, acct.ID, friends, groups); err != nil {
		return fail(err)
	}
	s, err := c.startSession(ctx, acct.User, friends, groups)
	if err != nil {
		return fail(err)
	}
	user := acct.User
	user.Online = wire.Bool(true)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return response{
		result: struct {
			User    User    `json:"user"`
			Friends []User  `json:"friends"`
			Groups  []Group `json:"groups"`
		}{user, friends, groups},
		after: func() {
			c.releasePushes()
			go c.streamBacklog(s.ctx, s, s.backlogDone)
		},
	}
}

// checkLogin checks a login's credentials, within the throttles: the
// address's before anything is looked up, the account's before the
// password is hashed, so that a throttled attempt costs no bcrypt. Each
// failure is logged, never with the password.
func (s *Server) checkLogin(ctx context.Context, c *conn, name string, byName bool, uid int64, pass string) (Account, error) {
	who, whoField := name, "name"
	if !byName {
		who, whoField = strconv.FormatInt(uid, 10), "id"
	}
	at, wait := s.loginTry(c)
	if at == nil {
		return Account{}, rateLimited(wait, "too many failed logins from your address; retry after %d ms", retryAfterMS(wait))
	}
	var acct Account
	var err error
	switch {
	case byName && !wire.ValidName(name), !byName && uid <= 0:
		err = ErrNoSuchUser
	default:
		acct, err = s.store.Account(ctx, name, uid)
	}
	key := "u" + strconv.FormatInt(acct.ID, 10)
	switch {
	case errors.Is(err, ErrNoSuchUser):
		key = whoField[:1] + ":" + who
	case err != nil:
		at.done(attemptCancelled)
		return Account{}, err
	}
	if wait := at.onAccount(key, c, whoField, who); wait > 0 {
		return Account{}, rateLimited(wait, "too many failed logins; retry after %d ms", retryAfterMS(wait))
	}
	match := false
	if herr := s.hash(ctx, func() {
		if err != nil || checkPassword(pass) != nil {
			// bcrypt would ignore bytes past 72: such a password never
			// matches. An unknown user costs a hash all the same.
			bcrypt.CompareHashAndPassword(s.dummyHash(), []byte(pass))
			return
		}
		match = bcrypt.CompareHashAndPassword(acct.Hash, []byte(pass)) == nil
	}); herr != nil {
		at.done(attemptCancelled)
		return Account{}, herr
	}
	if !match {
		at.done(attemptFailed)
		c.log.Info("login failed", whoField, logName(who), "reason", "bad_credentials")
		return Account{}, protoErr(wire.CodeBadCredentials, "wrong name or password")
	}
	at.done(attemptSucceeded)
	return acct, nil
}

// markOnline fills in the online flags of users and group members; me, the
// user asking, is online.
func (s *Server) markOnline(ctx context.Context, me int64, users []User, groups []Group) error {
	var ids []int64
	for _, u := range users {
		ids = append(ids, u.ID)
	}
	for _, g := range groups {
		for _, m := range g.Members {
			ids = append(ids, m.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	online, err := s.presence.AreOnline(ctx, ids)
	if err != nil {
		return err
	}
	online[me] = true
	for i := range users {
		users[i].Online = wire.Bool(online[users[i].ID])
	}
	for gi := range groups {
		for mi := range groups[gi].Members {
			m := &groups[gi].Members[mi]
			m.Online = online[m.ID]
		}
	}
	return nil
}

// logout {} -> {}
func handleLogout(ctx context.Context, c *conn, r *Request) response {
	if s := c.sess.Load(); s != nil {
		c.endSession(ctx, s)
	}
	return ok(nil)
}

// ping {} -> {}
func handlePing(ctx context.Context, c *conn, r *Request) response { return ok(nil) }

// --- messages ---

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
	topic, err := c.srv.dir.pairTopic(ctx, s.user.ID, a.to)
	if err != nil {
		return fail(err)
	}
	return c.srv.submitChat(&chatItem{
		msg: Message{Message: wire.Message{From: s.user.ID, FromName: s.user.Name, To: a.to, Text: a.text, TS: nowMS()}, Topic: topic},
		cid: a.cid,
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
		msg: Message{Message: wire.Message{From: s.user.ID, FromName: s.user.Name, Group: a.group, Text: a.text, TS: nowMS()}, Topic: a.group},
		cid: a.cid,
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

// history {with | group, before?, after?, limit?} -> {messages}
func handleHistory(ctx context.Context, c *conn, r *Request) response {
	a, perr := historyArgs(c, r)
	if perr != nil {
		return fail(perr)
	}
	srv, s := c.srv, c.sess.Load()
	var topic int64
	if a.hasWith {
		if _, err := srv.dir.user(ctx, a.with); err != nil {
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

// --- people ---

// userRef is how a request names a user: by "name", or by an id field.
type userRef struct {
	name   string
	byName bool
	id     int64
}

// refArgs reads the fields that name a user.
func refArgs(r *Request, idRaw []byte, idField string) (ref userRef, perr *ProtoError) {
	if ref.name, ref.byName, perr = optStr(r.f.Name, "name"); perr != nil || ref.byName {
		return ref, perr
	}
	var hasID bool
	if ref.id, hasID, perr = optInt(idRaw, idField); perr != nil {
		return ref, perr
	}
	if !hasID {
		return ref, protoErr(wire.CodeBadRequest, "%q or \"name\" is required", idField)
	}
	return ref, nil
}

func whoisArgs(c *conn, r *Request) (userRef, *ProtoError)  { return refArgs(r, r.f.ID, "id") }
func friendArgs(c *conn, r *Request) (userRef, *ProtoError) { return refArgs(r, r.f.Friend, "friend") }

// lookup finds the user a request names.
func (s *Server) lookup(ctx context.Context, ref userRef) (User, error) {
	if !ref.byName {
		return s.dir.user(ctx, ref.id)
	}
	if !wire.ValidName(ref.name) {
		return User{}, ErrNoSuchUser
	}
	a, err := s.store.Account(ctx, ref.name, 0)
	if err != nil {
		return User{}, err
	}
	s.dir.rememberUser(a.User)
	return a.User, nil
}

// withOnline returns u with its online flag set.
func (s *Server) withOnline(ctx context.Context, u User) (User, error) {
	online, err := s.presence.AreOnline(ctx, []int64{u.ID})
	if err != nil {
		return User{}, err
	}
	u.Online = wire.Bool(online[u.ID])
	return u, nil
}

// whois {name | id} -> {user}
func handleWhois(ctx context.Context, c *conn, r *Request) response {
	ref, perr := whoisArgs(c, r)
	if perr != nil {
		return fail(perr)
	}
	u, err := c.srv.lookup(ctx, ref)
	if err != nil {
		return fail(err)
	}
	if u, err = c.srv.withOnline(ctx, u); err != nil {
		return fail(err)
	}
	return ok(struct {
		User User `json:"user"`
	}{u})
}

// add_friend {friend | name} -> {friend}
func handleAddFriend(ctx context.Context, c *conn, r *Request) response {
	ref, perr := friendArgs(c, r)
	if perr != nil {
		return fail(perr)
	}
	srv, s := c.srv, c.sess.Load()
	f, err := srv.lookup(ctx, ref)
	if err != nil {
		return fail(err)
	}
	if f.ID == s.user.ID {
		return bad(wire.CodeBadRequest, "you cannot befriend yourself")
	}
	created, err := srv.store.AddFriend(ctx, s.user.ID, f.ID)
	if err != nil {
		return fail(err)
	}
	s.addFriend(f.ID)
	if created {
		me := User{ID: s.user.ID, Name: s.user.Name, Online: wire.Bool(true)}
		srv.router.ToUser(f.ID, &Push{Kind: pushFriendAdded, Friend: s.user.ID, Frame: pushFrame("friend_added", struct {
			Friend User `json:"friend"`
		}{me})})
	}
	if f, err = srv.withOnline(ctx, f); err != nil {
		return fail(err)
	}
	return ok(struct {
		Friend User `json:"friend"`
	}{f})
}

// friends {} -> {friends}
func handleFriends(ctx context.Context, c *conn, r *Request) response {
	friends, err := c.srv.store.Friends(ctx, c.userID())
	if err != nil {
		return fail(err)
	}
	if err := c.srv.markOnline(ctx, c.userID(), friends, nil); err != nil {
		return fail(err)
	}
	return ok(struct {
		Friends []User `json:"friends"`
	}{friends})
}

func onlineArgs(c *conn, r *Request) (limit int, perr *ProtoError) {
	return clamp(r.f.Limit, "limit", wire.DefaultOnline, wire.MaxOnline)
}

// online {limit?} -> {users, total}
func handleOnline(ctx context.Context, c *conn, r *Request) response {
	limit, perr := onlineArgs(c, r)
	if perr != nil {
		return fail(perr)
	}
	users, total, err := c.srv.presence.Online(ctx, limit)
	if err != nil {
		return fail(err)
	}
	for i := range users {
		users[i].Online = wire.Bool(true)
	}
	return ok(struct {
		Users []User `json:"users"`
		Total int    `json:"total"`
	}{users, total})
}

// --- groups ---

type groupResult struct {
	Group Group `json:"group"`
}

type groupSpec struct{ name, desc string }

// createGroupArgs reads a new group's name and description.
func createGroupArgs(c *conn, r *Request) (a groupSpec, perr *ProtoError) {
	if a.name, perr = str(r.f.Name, "name"); perr != nil {
		return a, perr
	}
	if utf8.RuneCountInString(a.name) > wire.MaxGroupNameRunes {
		return a, protoErr(wire.CodeBadRequest, "group names are 1-64 characters")
	}
	if present(r.f.Desc) {
		if r.f.Desc[0] != '"' || json.Unmarshal(r.f.Desc, &a.desc) != nil {
			return a, protoErr(wire.CodeBadRequest, `"desc" must be a string`)
		}
		if utf8.RuneCountInString(a.desc) > wire.MaxGroupDescRunes {
			return a, protoErr(wire.CodeBadRequest, "group descriptions are at most 256 characters")
		}
	}
	return a, nil
}

// create_group {name, desc?} -> {group}
func handleCreateGroup(ctx context.Context, c *conn, r *Request) response {
	a, perr := createGroupArgs(c, r)
	if perr != nil {
		return fail(perr)
	}
	name, desc := a.name, a.desc
	s := c.sess.Load()
	g, err := c.srv.store.CreateGroup(ctx, s.user.ID, name, desc)
	if err != nil {
		return fail(err)
	}
	c.srv.dir.rememberGroup(g)
	s.setGroup(g, true)
	c.srv.hub.subscribe(g, c)
	return ok(groupResult{Group{ID: g, Name: name, Desc: desc, Members: []Member{
		{ID: s.user.ID, Name: s.user.Name, Role: wire.RoleCreator, Online: true},
	}}})
}

// groupArg reads the group of join_group and leave_group.
func groupArg(c *conn, r *Request) (int64, *ProtoError) { return id(r.f.Group, "group") }

// join_group {group} -> {group}
func handleJoinGroup(ctx context.Context, c *conn, r *Request) response {
	g, perr := groupArg(c, r)
	if perr != nil {
		return fail(perr)
	}
	srv, s := c.srv, c.sess.Load()
	if g <= 0 {
		return fail(ErrNoSuchGroup)
	}
	joined, err := srv.store.JoinGroup(ctx, g, s.user.ID)
	if err != nil {
		return fail(err)
	}
	s.setGroup(g, true)
	srv.hub.subscribe(g, c)
	if joined {
		srv.pushMembership(g, s, "member_joined")
	}
	return srv.groupReply(ctx, s.user.ID, g)
}

// leave_group {group} -> {}
func handleLeaveGroup(ctx context.Context, c *conn, r *Request) response {
	g, perr := groupArg(c, r)
	if perr != nil {
		return fail(perr)
	}
	srv, s := c.srv, c.sess.Load()
	if g <= 0 {
		return fail(ErrNoSuchGroup)
	}
	if err := srv.store.LeaveGroup(ctx, g, s.user.ID); err != nil {
		return fail(err)
	}
	s.setGroup(g, false)
	srv.hub.unsubscribe(g, c)
	srv.pushMembership(g, s, "member_left")
	return ok(nil)
}

func (s *Server) pushMembership(g int64, sess *session, typ string) {
	s.router.ToGroup(g, sess.user.ID, &Push{Frame: pushFrame(typ, struct {
		Group int64 `json:"group"`
		User  User  `json:"user"`
	}{g, User{ID: sess.user.ID, Name: sess.user.Name, Online: wire.Bool(true)}})})
}

func (s *Server) groupReply(ctx context.Context, me, g int64) response {
	group, err := s.store.Group(ctx, g)
	if err != nil {
		return fail(err)
	}
	groups := []Group{group}
	if err := s.markOnline(ctx, me, nil, groups); err != nil {
		return fail(err)
	}
	return ok(groupResult{groups[0]})
}

// groups {} -> {groups}
func handleGroups(ctx context.Context, c *conn, r *Request) response {
	groups, err := c.srv.store.GroupsOf(ctx, c.userID())
	if err != nil {
		return fail(err)
	}
	if err := c.srv.markOnline(ctx, c.userID(), nil, groups); err != nil {
		return fail(err)
	}
	return ok(struct {
		Groups []Group `json:"groups"`
	}{groups})
}
