package main

import (
	"context"

	"chat/internal/wire"
)

// Handlers about other users: whois, add_friend, friends, online.

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
		srv.router.ToUser(f.ID, &Push{Kind: pushFriendAdded, Ref: s.user.ID, Frame: pushFrame("friend_added", struct {
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
