package main

import (
	"context"
	"errors"

	"chat/internal/wire"
)

// Handlers about other users: whois, friends, online (add_friend and the
// other friend requests: handlers_friends.go; blocks: handlers_blocks.go).

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

// lookup finds the live user a request names. By id it answers from the
// directory, which may not know yet of a deletion on another node: use it
// where the store checks again (add_friend) or where a deleted account does
// no harm; else lookupFresh.
func (s *Server) lookup(ctx context.Context, ref userRef) (User, error) {
	if !ref.byName {
		return s.dir.user(ctx, ref.id)
	}
	return s.freshUser(ctx, ref.name, 0)
}

// lookupFresh is lookup from the store, also by id: a deleted account is
// no user on every node at once.
func (s *Server) lookupFresh(ctx context.Context, ref userRef) (User, error) {
	if !ref.byName {
		return s.freshUser(ctx, "", ref.id)
	}
	return s.freshUser(ctx, ref.name, 0)
}

// freshUser reads a live user from the store, by name or else by id, and
// tells the directory what it found.
func (s *Server) freshUser(ctx context.Context, name string, id int64) (User, error) {
	if name != "" && !wire.ValidName(name) || name == "" && id <= 0 {
		return User{}, ErrNoSuchUser
	}
	a, err := s.store.Account(ctx, name, id)
	if err != nil {
		return User{}, err
	}
	if a.Deleted {
		s.dir.markDeleted(a.ID, a.Name)
		return User{}, ErrNoSuchUser
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
	u, err := c.srv.lookupFresh(ctx, ref)
	if errors.Is(err, ErrUnavailable) && !ref.byName {
		// The database is down: the names this node has met still answer.
		if cached, ok := c.srv.dir.cached(ref.id); ok {
			u, err = cached, nil
		}
	}
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
