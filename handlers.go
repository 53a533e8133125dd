package main

import (
	"context"
	"encoding/json"
	"errors"
	"time"
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
}

var commands map[string]command

func init() {
	commands = map[string]command{
		"register":     {handle: handleRegister},
		"login":        {handle: handleLogin},
		"ping":         {handle: handlePing, local: true},
		"logout":       {handle: handleLogout, auth: true},
		"chat":         {handle: handleChat, auth: true, deferred: true},
		"group_chat":   {handle: handleGroupChat, auth: true, deferred: true},
		"ack":          {handle: handleAck, auth: true, deferred: true},
		"add_friend":   {handle: handleAddFriend, auth: true},
		"friends":      {handle: handleFriends, auth: true},
		"create_group": {handle: handleCreateGroup, auth: true},
		"join_group":   {handle: handleJoinGroup, auth: true},
		"leave_group":  {handle: handleLeaveGroup, auth: true},
		"groups":       {handle: handleGroups, auth: true},
		"whois":        {handle: handleWhois, auth: true},
		"online":       {handle: handleOnline, auth: true},
		"history":      {handle: handleHistory, auth: true},
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
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), c.srv.cfg.BcryptCost)
	if err != nil {
		return fail(err)
	}
	u, err := c.srv.store.CreateUser(ctx, name, hash)
	if err != nil {
		return fail(err)
	}
	c.srv.dir.rememberUser(u)
	return ok(struct {
		User User `json:"user"`
	}{u})
}

// dummyHash is compared against when a login names no user, so that a
// missing user costs as much time as a wrong password.
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
	denied := bad(wire.CodeBadCredentials, "wrong name or password")
	var acct Account
	var err error
	switch {
	case byName && !wire.ValidName(name), !byName && uid <= 0:
		err = ErrNoSuchUser
	default:
		acct, err = srv.store.Account(ctx, name, uid)
	}
	if errors.Is(err, ErrNoSuchUser) || checkPassword(pass) != nil {
		// bcrypt would ignore bytes past 72: such a password never matches.
		bcrypt.CompareHashAndPassword(srv.dummyHash(), []byte(pass))
		return denied
	}
	if err != nil {
		return fail(err)
	}
	if bcrypt.CompareHashAndPassword(acct.Hash, []byte(pass)) != nil {
		return denied
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

func rateLimited(c *conn) *ProtoError {
	if s := c.sess.Load(); s != nil && !s.limiter.allow(time.Now()) {
		return protoErr(wire.CodeRateLimited, "more than %g messages a second; slow down", c.srv.cfg.Rate)
	}
	return nil
}

// chat {to, text, cid?} -> {message}, once stored
func handleChat(ctx context.Context, c *conn, r *Request) response {
	to, perr := id(r.f.To, "to")
	if perr != nil {
		return fail(perr)
	}
	text, cid, perr := textAndCID(r)
	if perr != nil {
		return fail(perr)
	}
	s := c.sess.Load()
	if to == s.user.ID {
		return bad(wire.CodeBadRequest, "you cannot send a message to yourself")
	}
	if perr := rateLimited(c); perr != nil {
		return fail(perr)
	}
	if _, err := c.srv.dir.user(ctx, to); err != nil {
		return fail(err)
	}
	topic, err := c.srv.dir.pairTopic(ctx, s.user.ID, to)
	if err != nil {
		return fail(err)
	}
	return c.srv.submitChat(&chatItem{
		msg: Message{Message: wire.Message{From: s.user.ID, FromName: s.user.Name, To: to, Text: text, TS: nowMS()}, Topic: topic},
		cid: cid,
	})
}

// group_chat {group, text, cid?} -> {message}, once stored
func handleGroupChat(ctx context.Context, c *conn, r *Request) response {
	g, perr := id(r.f.Group, "group")
	if perr != nil {
		return fail(perr)
	}
	text, cid, perr := textAndCID(r)
	if perr != nil {
		return fail(perr)
	}
	if perr := rateLimited(c); perr != nil {
		return fail(perr)
	}
	s := c.sess.Load()
	if err := c.srv.checkMember(ctx, s, g); err != nil {
		return fail(err)
	}
	return c.srv.submitChat(&chatItem{
		msg: Message{Message: wire.Message{From: s.user.ID, FromName: s.user.Name, Group: g, Text: text, TS: nowMS()}, Topic: g},
		cid: cid,
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

// ack {ids} -> {}, once recorded
func handleAck(ctx context.Context, c *conn, r *Request) response {
	ids, perr := intList(r.f.IDs, "ids")
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

// history {with | group, before?, limit?} -> {messages}
func handleHistory(ctx context.Context, c *conn, r *Request) response {
	with, hasWith, perr := optInt(r.f.With, "with")
	if perr != nil {
		return fail(perr)
	}
	g, hasGroup, perr := optInt(r.f.Group, "group")
	if perr != nil {
		return fail(perr)
	}
	if hasWith == hasGroup {
		return bad(wire.CodeBadRequest, `exactly one of "with" and "group" is required`)
	}
	before, hasBefore, perr := optInt(r.f.Before, "before")
	if perr != nil {
		return fail(perr)
	}
	limit, perr := clamp(r.f.Limit, "limit", wire.DefaultHistory, wire.MaxHistory)
	if perr != nil {
		return fail(perr)
	}
	srv, s := c.srv, c.sess.Load()
	var topic int64
	if hasWith {
		if _, err := srv.dir.user(ctx, with); err != nil {
			return fail(err)
		}
		t, err := srv.dir.existingPairTopic(ctx, s.user.ID, with)
		if err != nil {
			return fail(err)
		}
		topic = t
	} else {
		if err := srv.checkMember(ctx, s, g); err != nil {
			return fail(err)
		}
		topic = g
	}
	msgs := []*Message{}
	// Nothing to read: no conversation yet, one with oneself, or a page
	// before id 1.
	empty := topic == 0 || hasWith && with == s.user.ID || hasBefore && before <= 0
	if !empty {
		var err error
		if msgs, err = srv.store.History(ctx, topic, before, limit); err != nil {
			return fail(err)
		}
	}
	return ok(struct {
		Messages []*Message `json:"messages"`
	}{msgs})
}

// --- people ---

// lookup finds the user a request names by "name" or by an id field.
func (s *Server) lookup(ctx context.Context, r *Request, idRaw []byte, idField string) (User, error) {
	name, byName, perr := optStr(r.f.Name, "name")
	if perr != nil {
		return User{}, perr
	}
	if byName {
		if !wire.ValidName(name) {
			return User{}, ErrNoSuchUser
		}
		a, err := s.store.Account(ctx, name, 0)
		if err != nil {
			return User{}, err
		}
		s.dir.rememberUser(a.User)
		return a.User, nil
	}
	uid, hasID, perr := optInt(idRaw, idField)
	if perr != nil {
		return User{}, perr
	}
	if !hasID {
		return User{}, protoErr(wire.CodeBadRequest, "%q or \"name\" is required", idField)
	}
	return s.dir.user(ctx, uid)
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
	u, err := c.srv.lookup(ctx, r, r.f.ID, "id")
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
	srv, s := c.srv, c.sess.Load()
	f, err := srv.lookup(ctx, r, r.f.Friend, "friend")
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

// online {limit?} -> {users, total}
func handleOnline(ctx context.Context, c *conn, r *Request) response {
	limit, perr := clamp(r.f.Limit, "limit", wire.DefaultOnline, wire.MaxOnline)
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

// create_group {name, desc?} -> {group}
func handleCreateGroup(ctx context.Context, c *conn, r *Request) response {
	name, perr := str(r.f.Name, "name")
	if perr != nil {
		return fail(perr)
	}
	if utf8.RuneCountInString(name) > wire.MaxGroupNameRunes {
		return bad(wire.CodeBadRequest, "group names are 1-64 characters")
	}
	var desc string
	if present(r.f.Desc) {
		if r.f.Desc[0] != '"' || json.Unmarshal(r.f.Desc, &desc) != nil {
			return bad(wire.CodeBadRequest, `"desc" must be a string`)
		}
		if utf8.RuneCountInString(desc) > wire.MaxGroupDescRunes {
			return bad(wire.CodeBadRequest, "group descriptions are at most 256 characters")
		}
	}
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

// join_group {group} -> {group}
func handleJoinGroup(ctx context.Context, c *conn, r *Request) response {
	g, perr := id(r.f.Group, "group")
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
	g, perr := id(r.f.Group, "group")
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
