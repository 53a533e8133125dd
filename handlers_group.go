package main

import (
	"context"
	"encoding/json"
	"unicode/utf8"

	"chat/internal/wire"
)

// Handlers of groups: create, join, leave, list.

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
