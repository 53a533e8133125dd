package main

import (
	"context"
	"errors"
	"strconv"

	"golang.org/x/crypto/bcrypt"

	"chat/internal/wire"
)

// Handlers of accounts and sessions: register, login, logout, ping.

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

// login {name | id, password} -> {user, friends, groups, requests}, then the backlog
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
	device, perr := deviceArg(r)
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
	s, first, err := c.startSession(ctx, acct, device)
	if err != nil {
		return fail(err)
	}
	friends, groups, requests, blockedBy, err := srv.loginState(ctx, acct.ID)
	if err != nil {
		c.endSession(ctx, s) // nobody was told of it: its sets are empty
		return fail(err)
	}
	if srv.testAfterLoginState != nil {
		srv.testAfterLoginState(acct.ID)
	}
	c.loadSession(s, friends, groups, blockedBy, first)
	user := acct.User
	user.Online = wire.Bool(true)
	return response{
		result: struct {
			User     User    `json:"user"`
			Friends  []User  `json:"friends"`
			Groups   []Group `json:"groups"`
			Requests []User  `json:"requests"`
		}{user, friends, groups, requests},
		after: func() {
			c.releasePushes()
			go func() {
				// synced is queued before backlogDone is closed: a client
				// that half-closed is wound down once it is, and gets it.
				if c.streamBacklog(s.ctx, s) {
					c.enqueue(outFrame{b: syncedFrame}, s)
				}
				close(s.backlogDone)
			}()
		},
	}
}

// loginState reads what a login reply lists and a session keeps: the
// user's friends and groups, with who is online, the friend requests to
// the user and who has blocked the user.
func (s *Server) loginState(ctx context.Context, user int64) (friends []User, groups []Group, requests []User, blockedBy []int64, err error) {
	if friends, err = s.store.Friends(ctx, user); err != nil {
		return
	}
	if groups, err = s.store.GroupsOf(ctx, user); err != nil {
		return
	}
	if requests, blockedBy, err = s.store.LoginPeople(ctx, user); err != nil {
		return
	}
	err = s.markOnline(ctx, user, friends, groups)
	return
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
		if err == nil && acct.Deleted {
			acct, err = Account{}, ErrNoSuchUser // throttled and hashed like a name never used
		}
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

// deviceArg reads login's optional device: absent is the device "".
func deviceArg(r *Request) (string, *ProtoError) {
	device, _, perr := optStr(r.f.Device, "device")
	if perr == nil && len(device) > wire.MaxDeviceBytes {
		perr = protoErr(wire.CodeTooLong, "device is longer than %d bytes", wire.MaxDeviceBytes)
	}
	return device, perr
}

// syncedFrame follows the login backlog: from here on, everything is live.
var syncedFrame = pushFrame("synced", struct{}{})

func logoutArgs(c *conn, r *Request) (bool, *ProtoError) {
	all, _, perr := optBool(r.f.All, "all")
	return all, perr
}

// logout {all?} -> {}; with all, the user's other sessions are kicked first.
func handleLogout(ctx context.Context, c *conn, r *Request) response {
	all, perr := logoutArgs(c, r)
	if perr != nil {
		return fail(perr)
	}
	if s := c.sess.Load(); s != nil {
		if all {
			c.srv.kickUser(s.user.ID, c.id, reasonLoggedOutAll)
		}
		c.endSession(ctx, s)
	}
	return ok(nil)
}

// sessions {} -> {sessions: [{device, since, current?}]}, cluster-wide
func handleSessions(ctx context.Context, c *conn, r *Request) response {
	s := c.sess.Load()
	list, err := c.srv.presence.Sessions(ctx, s.user.ID)
	if err != nil {
		return fail(err)
	}
	for i := range list {
		list[i].Current = list[i].ref == s.ref
	}
	if list == nil {
		list = []SessionInfo{}
	}
	return ok(struct {
		Sessions []SessionInfo `json:"sessions"`
	}{list})
}

// ping {} -> {}
func handlePing(ctx context.Context, c *conn, r *Request) response { return ok(nil) }
