package main

import (
	"context"
	"encoding/json"
	"unicode/utf8"

	"chat/internal/wire"
)

// Handlers of private groups and roles: invite, kick_member, set_role,
// update_group, delete_group, find_groups. The store checks roles and
// membership under the group's lock (groups_v2.go); the handlers route the
// pushes. A push about the caller's own action skips the caller's user
// (docs/protocol.md, "Groups and roles"): its other sessions get the change
// of state only.

// joinedHere makes the calling session a member of group g at once, and
// the user's other sessions, wherever they are, by a state push.
func (s *Server) joinedHere(c *conn, sess *session, g int64) {
	c.changeOwn(sess, &Push{Kind: pushGroupJoined, Ref: g})
	s.router.ToUser(sess.user.ID, &Push{Kind: pushGroupJoined, Ref: g, Except: c.id})
}

// leftHere is joinedHere's opposite: the user is no longer in group g.
func (s *Server) leftHere(c *conn, sess *session, g int64) {
	c.changeOwn(sess, &Push{Kind: pushGroupLeft, Ref: g})
	s.router.ToUser(sess.user.ID, &Push{Kind: pushGroupLeft, Ref: g, Except: c.id})
}

// optBool returns an optional boolean field; ok is false when it is absent.
func optBool(raw json.RawMessage, field string) (v, ok bool, perr *ProtoError) {
	switch {
	case !present(raw):
		return false, false, nil
	case string(raw) == "true":
		return true, true, nil
	case string(raw) == "false":
		return false, true, nil
	}
	return false, false, protoErr(wire.CodeBadRequest, "%q must be true or false", field)
}

// me is the session's user as pushes show it.
func (s *session) me() User {
	return User{ID: s.user.ID, Name: s.user.Name, Online: wire.Bool(true)}
}

// inviteReq is an invite: the group, and the user by id or name.
type inviteReq struct {
	group int64
	user  userRef
}

func inviteArgs(c *conn, r *Request) (a inviteReq, perr *ProtoError) {
	if a.group, perr = id(r.f.Group, "group"); perr != nil {
		return a, perr
	}
	a.user, perr = refArgs(r, r.f.User, "user")
	return a, perr
}

// invite {group, user | name} -> {}
func handleInvite(ctx context.Context, c *conn, r *Request) response {
	a, perr := inviteArgs(c, r)
	if perr != nil {
		return fail(perr)
	}
	srv, s := c.srv, c.sess.Load()
	u, err := srv.lookup(ctx, a.user)
	if err != nil {
		return fail(err)
	}
	if a.group <= 0 {
		return fail(ErrNoSuchGroup)
	}
	info, invited, err := srv.store.Invite(ctx, a.group, s.user.ID, u.ID)
	if err != nil {
		return fail(err)
	}
	if invited {
		srv.router.ToUser(u.ID, &Push{Frame: pushFrame("invited", struct {
			Group wire.GroupInfo `json:"group"`
			By    User           `json:"by"`
		}{info, s.me()})})
	}
	return ok(nil)
}

// memberReq is a request about one member of a group: kick_member, set_role.
type memberReq struct {
	group, user int64
	role        Role
}

func memberArgs(r *Request) (a memberReq, perr *ProtoError) {
	if a.group, perr = id(r.f.Group, "group"); perr != nil {
		return a, perr
	}
	a.user, perr = id(r.f.User, "user")
	return a, perr
}

func kickArgs(c *conn, r *Request) (memberReq, *ProtoError) {
	a, perr := memberArgs(r)
	if perr == nil && a.user == c.userID() {
		perr = protoErr(wire.CodeBadRequest, "you cannot remove yourself: leave_group instead")
	}
	return a, perr
}

func setRoleArgs(c *conn, r *Request) (memberReq, *ProtoError) {
	a, perr := memberArgs(r)
	if perr != nil {
		return a, perr
	}
	role, perr := str(r.f.Role, "role")
	switch {
	case perr != nil:
		return a, perr
	case role == string(wire.RoleAdmin):
		a.role = RoleAdmin
	case role == string(wire.RoleMember):
		a.role = RoleMember
	default:
		return a, protoErr(wire.CodeBadRequest, `"role" must be "admin" or "member"`)
	}
	return a, nil
}

// kick_member {group, user} -> {}
func handleKickMember(ctx context.Context, c *conn, r *Request) response {
	a, perr := kickArgs(c, r)
	if perr != nil {
		return fail(perr)
	}
	srv, s := c.srv, c.sess.Load()
	u, err := srv.dir.user(ctx, a.user)
	if err != nil {
		return fail(err)
	}
	if a.group <= 0 {
		return fail(ErrNoSuchGroup)
	}
	if err := srv.store.KickMember(ctx, a.group, s.user.ID, u.ID); err != nil {
		return fail(err)
	}
	frame := pushFrame("member_removed", struct {
		Group int64 `json:"group"`
		User  User  `json:"user"`
		By    User  `json:"by"`
	}{a.group, u, s.me()})
	// The kicked user's sessions first: each stops getting the group's
	// pushes as it takes this one, so the group's copy, queued after it on
	// every node, does not reach them twice.
	srv.router.ToUser(u.ID, &Push{Kind: pushGroupLeft, Ref: a.group, Frame: frame})
	srv.router.ToGroup(a.group, s.user.ID, &Push{Frame: frame})
	return ok(nil)
}

// set_role {group, user, role} -> {}
func handleSetRole(ctx context.Context, c *conn, r *Request) response {
	a, perr := setRoleArgs(c, r)
	if perr != nil {
		return fail(perr)
	}
	srv, s := c.srv, c.sess.Load()
	if _, err := srv.dir.user(ctx, a.user); err != nil {
		return fail(err)
	}
	if a.group <= 0 {
		return fail(ErrNoSuchGroup)
	}
	changed, err := srv.store.SetRole(ctx, a.group, s.user.ID, a.user, a.role)
	if err != nil {
		return fail(err)
	}
	if changed {
		// The role is set: a push that cannot be built (the store or
		// presence failing now) is lost, like any push, not the request.
		if _, err := srv.pushGroupUpdated(ctx, s, a.group); err != nil {
			c.log.Warn("group_updated not pushed", "group", a.group, "err", err)
		}
	}
	return ok(nil)
}

// pushGroupUpdated pushes group g as it is now to its online members but
// the caller's user, and returns it.
func (s *Server) pushGroupUpdated(ctx context.Context, sess *session, g int64) (Group, error) {
	group, err := s.store.Group(ctx, g)
	if err != nil {
		return Group{}, err
	}
	groups := []Group{group}
	if err := s.markOnline(ctx, sess.user.ID, nil, groups); err != nil {
		return Group{}, err
	}
	s.router.ToGroup(g, sess.user.ID, &Push{Frame: pushFrame("group_updated", groupResult{groups[0]})})
	return groups[0], nil
}

// updateReq is an update_group: the group and the fields to change.
type updateReq struct {
	group int64
	upd   groupUpdate
}

func updateGroupArgs(c *conn, r *Request) (a updateReq, perr *ProtoError) {
	if a.group, perr = id(r.f.Group, "group"); perr != nil {
		return a, perr
	}
	u := &a.upd
	if u.name, u.hasName, perr = optStr(r.f.Name, "name"); perr != nil {
		return a, perr
	}
	if utf8.RuneCountInString(u.name) > wire.MaxGroupNameRunes {
		return a, protoErr(wire.CodeBadRequest, "group names are 1-64 characters")
	}
	if u.desc, u.hasDesc, perr = descArg(r); perr != nil {
		return a, perr
	}
	u.private, u.hasPrivate, perr = optBool(r.f.Private, "private")
	return a, perr
}

// update_group {group, name?, desc?, private?} -> {group}
func handleUpdateGroup(ctx context.Context, c *conn, r *Request) response {
	a, perr := updateGroupArgs(c, r)
	if perr != nil {
		return fail(perr)
	}
	srv, s := c.srv, c.sess.Load()
	if a.group <= 0 {
		return fail(ErrNoSuchGroup)
	}
	changed, err := srv.store.UpdateGroup(ctx, a.group, s.user.ID, a.upd)
	if err != nil {
		return fail(err)
	}
	if !changed {
		return srv.groupReply(ctx, s.user.ID, a.group)
	}
	g, err := srv.pushGroupUpdated(ctx, s, a.group)
	if err != nil {
		return fail(err)
	}
	return ok(groupResult{g})
}

// delete_group {group} -> {}
func handleDeleteGroup(ctx context.Context, c *conn, r *Request) response {
	g, perr := groupArg(c, r)
	if perr != nil {
		return fail(perr)
	}
	srv, s := c.srv, c.sess.Load()
	if g <= 0 {
		return fail(ErrNoSuchGroup)
	}
	if err := srv.store.DeleteGroup(ctx, g, s.user.ID); err != nil {
		return fail(err)
	}
	// Every member session drops the group as it takes the push; a
	// session that misses it (a node cut off from Redis) still trusts its
	// set, and its group_chat then fails in the store (no_such_group).
	srv.router.ToGroup(g, s.user.ID, &Push{Kind: pushGroupLeft, Ref: g, Frame: pushFrame("group_deleted", struct {
		Group int64 `json:"group"`
	}{g})})
	srv.leftHere(c, s, g)
	return ok(nil)
}

// findReq is a find_groups: the text to look for ("" for any) and how many.
type findReq struct {
	query string
	limit int
}

func findGroupsArgs(c *conn, r *Request) (a findReq, perr *ProtoError) {
	if a.query, _, perr = optStr(r.f.Query, "query"); perr != nil {
		return a, perr
	}
	a.limit, perr = clamp(r.f.Limit, "limit", wire.DefaultFindGroups, wire.MaxFindGroups)
	return a, perr
}

// find_groups {query?, limit?} -> {groups}
func handleFindGroups(ctx context.Context, c *conn, r *Request) response {
	a, perr := findGroupsArgs(c, r)
	if perr != nil {
		return fail(perr)
	}
	groups := []foundGroup{}
	// No group name is longer: nothing to look for.
	if utf8.RuneCountInString(a.query) <= wire.MaxGroupNameRunes {
		var err error
		if groups, err = c.srv.store.FindGroups(ctx, a.query, a.limit); err != nil {
			return fail(err)
		}
	}
	return ok(struct {
		Groups []foundGroup `json:"groups"`
	}{groups})
}
