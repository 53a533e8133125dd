package main

import (
	"context"

	"chat/internal/wire"
)

// Handlers of friendships: add_friend (ask, or accept), decline_friend,
// remove_friend, friend_requests. A friendship is what presence follows:
// each session keeps its user's friends (session.friends), and every
// change reaches all the sessions of both users, the caller's own by a
// state push (no frame: a push about one's own action goes to one's other
// sessions only where the protocol says so).

// friendStatus is add_friend's "status".
func friendStatus(out askOutcome) string {
	if out == askRequested || out == askRepeated {
		return "requested"
	}
	return "friends"
}

// add_friend {friend | name} -> {friend, status}
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
	// The store checks again that f is live, and the blocks either way.
	out, err := srv.store.AskFriend(ctx, s.user.ID, f.ID)
	if err != nil {
		return fail(err)
	}
	me := User{ID: s.user.ID, Name: s.user.Name, Online: wire.Bool(true)}
	switch out {
	case askRequested:
		// Asking again pushes nothing: the request is there to be seen.
		srv.router.ToUser(f.ID, &Push{Frame: pushFrame("friend_request", struct {
			User User `json:"user"`
		}{me})})
	case askAccepted:
		srv.router.ToUser(f.ID, &Push{Kind: pushFriendAdded, Ref: me.ID, Frame: pushFrame("friend_added", struct {
			Friend User `json:"friend"`
		}{me})})
		srv.router.ToUser(me.ID, &Push{Kind: pushFriendAdded, Ref: f.ID, Except: c.id})
	}
	if out == askAccepted || out == askFriends {
		c.changeOwn(s, &Push{Kind: pushFriendAdded, Ref: f.ID})
	}
	if f, err = srv.withOnline(ctx, f); err != nil {
		return fail(err)
	}
	return ok(struct {
		Friend User   `json:"friend"`
		Status string `json:"status"`
	}{f, friendStatus(out)})
}

// otherUser finds the user a request names by friendArgs or blockArgs,
// who must not be the caller. From the store: these requests change
// nothing for a deleted account, so nothing else would refuse one.
func (s *Server) otherUser(ctx context.Context, c *conn, ref userRef) (User, error) {
	u, err := s.lookupFresh(ctx, ref)
	if err != nil {
		return User{}, err
	}
	if u.ID == c.userID() {
		return User{}, protoErr(wire.CodeBadRequest, "that is you")
	}
	return u, nil
}

// decline_friend {friend | name} -> {}
//
// Declining is silent: the asker is not told. A request that is not there
// (never made, answered, withdrawn) declines fine.
func handleDeclineFriend(ctx context.Context, c *conn, r *Request) response {
	ref, perr := friendArgs(c, r)
	if perr != nil {
		return fail(perr)
	}
	f, err := c.srv.otherUser(ctx, c, ref)
	if err != nil {
		return fail(err)
	}
	if _, err := c.srv.store.DeclineFriend(ctx, c.userID(), f.ID); err != nil {
		return fail(err)
	}
	return ok(nil)
}

// remove_friend {friend | name} -> {}
//
// It also withdraws the caller's own request to that user. Removing a
// friendship that is not there is fine and pushes nothing.
func handleRemoveFriend(ctx context.Context, c *conn, r *Request) response {
	ref, perr := friendArgs(c, r)
	if perr != nil {
		return fail(perr)
	}
	srv, s := c.srv, c.sess.Load()
	f, err := srv.otherUser(ctx, c, ref)
	if err != nil {
		return fail(err)
	}
	removed, err := srv.store.RemoveFriend(ctx, s.user.ID, f.ID)
	if err != nil {
		return fail(err)
	}
	c.changeOwn(s, &Push{Kind: pushFriendRemoved, Ref: f.ID})
	if removed {
		srv.router.ToUser(f.ID, &Push{Kind: pushFriendRemoved, Ref: s.user.ID,
			Frame: friendRemovedFrame(User{ID: s.user.ID, Name: s.user.Name})})
		srv.router.ToUser(s.user.ID, &Push{Kind: pushFriendRemoved, Ref: f.ID, Except: c.id})
	}
	return ok(nil)
}

func friendRemovedFrame(u User) []byte {
	return pushFrame("friend_removed", struct {
		User User `json:"user"`
	}{u})
}

// friend_requests {} -> {incoming, outgoing}
func handleFriendRequests(ctx context.Context, c *conn, r *Request) response {
	in, out, err := c.srv.store.FriendRequests(ctx, c.userID())
	if err != nil {
		return fail(err)
	}
	return ok(struct {
		Incoming []User `json:"incoming"`
		Outgoing []User `json:"outgoing"`
	}{in, out})
}
