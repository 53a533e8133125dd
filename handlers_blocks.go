package main

import (
	"context"
)

// Handlers of blocks: block, unblock, blocks.
//
// A block is checked where the blocked user acts: chat (and typing) from
// the session's memory (session.blockedBy, loaded at login and kept by
// pushBlockedBy / pushUnblockedBy to every session of the blocked user),
// add_friend in the store. The blocker may still write to the blocked user;
// only the blocked one's messages are refused. Groups are not affected.

func blockArgs(c *conn, r *Request) (userRef, *ProtoError) { return refArgs(r, r.f.User, "user") }

// block {user | name} -> {}
//
// Silent to the blocked user: their sessions only change state (they may
// no longer write, and lose the friend), with no frame; so do the caller's
// other sessions. Blocking twice is fine.
func handleBlock(ctx context.Context, c *conn, r *Request) response {
	ref, perr := blockArgs(c, r)
	if perr != nil {
		return fail(perr)
	}
	srv, s := c.srv, c.sess.Load()
	u, err := srv.otherUser(ctx, c, ref)
	if err != nil {
		return fail(err)
	}
	out, err := srv.store.Block(ctx, s.user.ID, u.ID)
	if err != nil {
		return fail(err)
	}
	if out.added {
		srv.router.ToUser(u.ID, &Push{Kind: pushBlockedBy, Ref: s.user.ID})
	}
	if out.unfriended {
		c.changeOwn(s, &Push{Kind: pushFriendRemoved, Ref: u.ID})
		srv.router.ToUser(u.ID, &Push{Kind: pushFriendRemoved, Ref: s.user.ID})
		srv.router.ToUser(s.user.ID, &Push{Kind: pushFriendRemoved, Ref: u.ID, Except: c.id})
	}
	return ok(nil)
}

// unblock {user | name} -> {}
//
// The friendship does not come back. Unblocking a user not blocked is fine.
func handleUnblock(ctx context.Context, c *conn, r *Request) response {
	ref, perr := blockArgs(c, r)
	if perr != nil {
		return fail(perr)
	}
	srv, s := c.srv, c.sess.Load()
	u, err := srv.otherUser(ctx, c, ref)
	if err != nil {
		return fail(err)
	}
	unblocked, err := srv.store.Unblock(ctx, s.user.ID, u.ID)
	if err != nil {
		return fail(err)
	}
	if unblocked {
		srv.router.ToUser(u.ID, &Push{Kind: pushUnblockedBy, Ref: s.user.ID})
	}
	return ok(nil)
}

// blocks {} -> {users}
func handleBlocks(ctx context.Context, c *conn, r *Request) response {
	users, err := c.srv.store.Blocks(ctx, c.userID())
	if err != nil {
		return fail(err)
	}
	return ok(struct {
		Users []User `json:"users"`
	}{users})
}
