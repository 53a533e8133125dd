package main

import (
	"context"
	"errors"

	"golang.org/x/crypto/bcrypt"

	"chat/internal/wire"
)

// Handlers that need the account's password: change_password and
// delete_account. The password is checked as a login's is (checkLogin):
// within the same throttles, per address and per account, so that a
// stolen session cannot guess the password faster than a login could.

// checkOwnPassword checks the password of the session's user.
func (s *Server) checkOwnPassword(ctx context.Context, c *conn, sess *session, pass string) error {
	_, err := s.checkLogin(ctx, c, "", false, sess.user.ID, pass)
	var perr *ProtoError
	if errors.As(err, &perr) && perr.Code == wire.CodeBadCredentials {
		return protoErr(wire.CodeBadCredentials, "wrong password")
	}
	return err
}

type passwordChange struct{ old, new string }

// changePasswordArgs reads change_password's fields; the new password
// follows register's rules.
func changePasswordArgs(c *conn, r *Request) (a passwordChange, perr *ProtoError) {
	if a.old, perr = str(r.f.Old, "old"); perr != nil {
		return a, perr
	}
	if a.new, perr = str(r.f.New, "new"); perr != nil {
		return a, perr
	}
	return a, checkPassword(a.new)
}

// change_password {old, new} -> {}
//
// The user's other sessions, anywhere in the cluster, are kicked: whoever
// knew the old password is out. The calling session stays.
func handleChangePassword(ctx context.Context, c *conn, r *Request) response {
	a, perr := changePasswordArgs(c, r)
	if perr != nil {
		return fail(perr)
	}
	srv, s := c.srv, c.sess.Load()
	if err := srv.checkOwnPassword(ctx, c, s, a.old); err != nil {
		return fail(err)
	}
	var hash []byte
	var herr error
	if err := srv.hash(ctx, func() {
		hash, herr = bcrypt.GenerateFromPassword([]byte(a.new), srv.cfg.BcryptCost)
	}); err != nil {
		return fail(err)
	}
	if herr != nil {
		return fail(herr)
	}
	// Known before it is stored: a resync in between must not close the
	// session that changed it.
	s.setCredential(hash)
	if err := srv.store.SetPassword(ctx, s.user.ID, hash); err != nil {
		return fail(err)
	}
	srv.kickUser(s.user.ID, c.id, reasonPasswordChanged)
	return ok(nil)
}

func deleteAccountArgs(c *conn, r *Request) (string, *ProtoError) {
	return str(r.f.Password, "password")
}

// delete_account {password} -> {}, then the connection is closed
//
// Everyone who shared something with the account learns it is gone: its
// friends get friend_removed, its groups' online members member_left. The
// requests and blocks it had, either way, go silently (a session blocked
// by it is unblocked in memory). Then every session of it is closed: the
// others after a kicked push, this one after its reply.
func handleDeleteAccount(ctx context.Context, c *conn, r *Request) response {
	pass, perr := deleteAccountArgs(c, r)
	if perr != nil {
		return fail(perr)
	}
	srv, s := c.srv, c.sess.Load()
	if err := srv.checkOwnPassword(ctx, c, s, pass); err != nil {
		return fail(err)
	}
	gone, err := srv.store.DeleteAccount(ctx, s.user.ID)
	if err != nil {
		return fail(err)
	}
	me := User{ID: s.user.ID, Name: s.user.Name}
	srv.dir.markDeleted(me.ID, me.Name)
	removed := friendRemovedFrame(me)
	for _, f := range gone.friends {
		srv.router.ToUser(f, &Push{Kind: pushFriendRemoved, Ref: me.ID, Frame: removed})
		// Before the kick, in the same order: a closing session tells
		// only its friends it went offline, and these are no longer.
		srv.router.ToUser(me.ID, &Push{Kind: pushFriendRemoved, Ref: f, Except: c.id})
		c.changeOwn(s, &Push{Kind: pushFriendRemoved, Ref: f})
	}
	for _, b := range gone.blocked {
		srv.router.ToUser(b, &Push{Kind: pushUnblockedBy, Ref: me.ID})
	}
	for _, g := range gone.groups {
		srv.router.ToGroup(g, me.ID, &Push{Frame: pushFrame("member_left", struct {
			Group int64 `json:"group"`
			User  User  `json:"user"`
		}{g, me})})
	}
	srv.kickUser(me.ID, c.id, reasonAccountDeleted)
	c.log.Info("account deleted", "user", me.ID)
	return response{after: func() { c.finish(nil) }}
}
