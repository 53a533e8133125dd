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

type groupSpec struct {
	name, desc string
	private    bool
}

// createGroupArgs reads a new group's name, description and privacy.
func createGroupArgs(c *conn, r *Request) (a groupSpec, perr *ProtoError) {
	if a.name, perr = str(r.f.Name, "name"); perr != nil {
		return a, perr
	}
	if utf8.RuneCountInString(a.name) > wire.MaxGroupNameRunes {
		return a, protoErr(wire.CodeBadRequest, "group names are 1-64 characters")
	}
	if a.desc, _, perr = descArg(r); perr != nil {
		return a, perr
	}
	a.private, _, perr = optBool(r.f.Private, "private")
	return a, perr
}

// descArg reads an optional group description; "" is one (an empty one).
func descArg(r *Request) (desc string, ok bool, perr *ProtoError) {
	if !present(r.f.Desc) {
		return "", false, nil
	}
	if r.f.Desc[0] != '"' || json.Unmarshal(r.f.Desc, &desc) != nil {
		return "", false, protoErr(wire.CodeBadRequest, `"desc" must be a string`)
	}
	if utf8.RuneCountInString(desc) > wire.MaxGroupDescRunes {
		return "", false, protoErr(wire.CodeBadRequest, "group descriptions are at most 256 characters")
	}
	return desc, true, nil
}

// create_group {name, desc?, private?} -> {group}
func handleCreateGroup(ctx context.Context, c *conn, r *Request) response {
	a, perr := createGroupArgs(c, r)
	if perr != nil {
		return fail(perr)
	}
	s := c.sess.Load()
	g, err := c.srv.store.NewGroup(ctx, s.user.ID, a)
	if err != nil {
		return fail(err)
	}
	c.srv.joinedHere(c, s, g)
	return ok(groupResult{Group{ID: g, Name: a.name, Desc: a.desc, Private: a.private, Members: []Member{
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
	srv.joinedHere(c, s, g)
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
	srv.leftHere(c, s, g)
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
