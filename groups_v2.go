package main

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"
	"unicode"

	"chat/internal/wire"
)

// Private groups and roles in the store: invitations, kicks, roles,
// updates, deletion and search. Each change runs in one transaction that
// first locks the group's topic row (lockGroup), so that the checks it
// makes (roles, membership, invitations) hold until it commits.

// The refusals of this file's requests, and of join_group. They are
// protocol errors from the store: the store is where the state they
// depend on is read under the lock.
var (
	errNotManager   = protoErr(wire.CodeForbidden, "only the group's creator or an admin may do that")
	errNotCreator   = protoErr(wire.CodeForbidden, "only the group's creator may do that")
	errPrivInvite   = protoErr(wire.CodeForbidden, "only the creator or an admin may invite to a private group")
	errKickedInvite = protoErr(wire.CodeForbidden, "that user was removed from the group: only the creator or an admin may invite them back")
	errKickCreator  = protoErr(wire.CodeForbidden, "the group's creator cannot be removed")
	errCreatorRole  = protoErr(wire.CodeForbidden, "the creator's role cannot change")
	errJoinPrivate  = protoErr(wire.CodeForbidden, "this group is private: joining needs an invitation")
	errJoinKicked   = protoErr(wire.CodeForbidden, "you were removed from this group: joining needs a new invitation from its creator or an admin")
	errThemNotIn    = protoErr(wire.CodeNotMember, "that user is not a member of the group")
)

// groupState is a group's row, locked until the transaction ends, and
// what a request needs to know of two users in it: the caller (me) and
// the user acted on (them; the same user for a join).
type groupState struct {
	info    wire.GroupInfo
	lastSeq int64
	creator int64 // 0: none (the creator left)
	me      Role
	meIn    bool
	them    Role
	themIn  bool
	kicked  bool // them
	invited bool // them
}

// lockGroup reads group g for update, with me's and them's roles and them's
// kick and invitation: ErrNoSuchGroup if g is not a group.
func (s *Store) lockGroup(ctx context.Context, tx sqlTx, g, me, them int64) (groupState, error) {
	st := groupState{info: wire.GroupInfo{ID: g}}
	var creator, meRole, themRole sql.NullInt64
	var kicked, invited int
	err := tx.QueryRowContext(ctx, `SELECT t.name, COALESCE(t.descr, ''), t.private, t.last_seq, t.creator_id,
		(SELECT role FROM members WHERE topic_id = t.id AND user_id = ?),
		(SELECT role FROM members WHERE topic_id = t.id AND user_id = ?),
		(SELECT COUNT(*) FROM kicks WHERE topic_id = t.id AND user_id = ?),
		(SELECT COUNT(*) FROM invitations WHERE topic_id = t.id AND user_id = ?)
		FROM topics t`+s.d.byPrimary+` WHERE t.id = ? AND t.kind = ?`+s.d.forUpdate,
		me, them, them, them, g, topicGroup).Scan(&st.info.Name, &st.info.Desc, &st.info.Private, &st.lastSeq, &creator,
		&meRole, &themRole, &kicked, &invited)
	if errors.Is(err, sql.ErrNoRows) {
		return st, ErrNoSuchGroup
	}
	if err != nil {
		return st, err
	}
	st.creator = creator.Int64
	st.me, st.meIn = Role(meRole.Int64), meRole.Valid
	st.them, st.themIn = Role(themRole.Int64), themRole.Valid
	st.kicked, st.invited = kicked > 0, invited > 0
	return st, nil
}

// Invite lets u join group g on by's word. It reports false, storing
// nothing, when u is a member already. An invitation from the creator or
// an admin also lifts a kick; one from a plain member of a public group
// cannot be given to a user who was kicked.
func (s *Store) Invite(ctx context.Context, g, by, u int64) (info wire.GroupInfo, invited bool, err error) {
	err = s.inTx(ctx, "invite", func(tx sqlTx) error {
		st, err := s.lockGroup(ctx, tx, g, by, u)
		if err != nil {
			return err
		}
		info = st.info
		switch {
		case !st.meIn:
			return ErrNotMember
		case st.info.Private && !st.me.manages():
			return errPrivInvite
		case st.kicked && !st.me.manages():
			return errKickedInvite
		case st.themIn:
			return nil
		}
		invited = true
		// A new invitation replaces an older one: it carries the latest
		// inviter.
		return s.execAll(ctx, tx, []stmt{
			{`DELETE FROM invitations WHERE topic_id = ? AND user_id = ?`, []any{g, u}},
			{`INSERT INTO invitations (topic_id, user_id, by_id, created_ms) VALUES (?, ?, ?, ?)`, []any{g, u, by, nowMS()}},
			{`DELETE FROM kicks WHERE topic_id = ? AND user_id = ?`, []any{g, u}},
		})
	})
	return info, invited, err
}

// KickMember removes u from group g on by's word, with whatever u had
// pending there, and records the kick: u may come back only on a new
// invitation from the creator or an admin.
func (s *Store) KickMember(ctx context.Context, g, by, u int64) error {
	return s.inTx(ctx, "kick_member", func(tx sqlTx) error {
		st, err := s.lockGroup(ctx, tx, g, by, u)
		switch {
		case err != nil:
			return err
		case !st.meIn:
			return ErrNotMember
		case !st.themIn:
			return errThemNotIn
		case !st.me.manages():
			return errNotManager
		case st.them == RoleCreator:
			return errKickCreator
		}
		return s.execAll(ctx, tx, []stmt{
			{`DELETE FROM members WHERE topic_id = ? AND user_id = ?`, []any{g, u}},
			{`DELETE FROM acks WHERE user_id = ? AND topic_id = ?`, []any{u, g}},
			{`DELETE FROM invitations WHERE topic_id = ? AND user_id = ?`, []any{g, u}},
			{`DELETE FROM kicks WHERE topic_id = ? AND user_id = ?`, []any{g, u}},
			{`INSERT INTO kicks (topic_id, user_id, by_id, kicked_ms) VALUES (?, ?, ?, ?)`, []any{g, u, by, nowMS()}},
		})
	})
}

// SetRole makes member u of group g an admin or a plain member, on the
// creator's word. It reports false when u had that role already.
func (s *Store) SetRole(ctx context.Context, g, by, u int64, role Role) (changed bool, err error) {
	err = s.inTx(ctx, "set_role", func(tx sqlTx) error {
		st, err := s.lockGroup(ctx, tx, g, by, u)
		switch {
		case err != nil:
			return err
		case !st.meIn:
			return ErrNotMember
		case !st.themIn:
			return errThemNotIn
		case st.me != RoleCreator:
			return errNotCreator
		case st.them == RoleCreator:
			return errCreatorRole
		case st.them == role:
			return nil
		}
		changed = true
		_, err = tx.ExecContext(ctx, `UPDATE members SET role = ? WHERE topic_id = ? AND user_id = ?`, role, g, u)
		return err
	})
	return changed, err
}

// groupUpdate is what update_group changes: the fields given.
type groupUpdate struct {
	name, desc                   string
	private                      bool
	hasName, hasDesc, hasPrivate bool
}

// UpdateGroup changes group g's name, description or privacy on the word
// of its creator or an admin. It reports false when nothing changed.
func (s *Store) UpdateGroup(ctx context.Context, g, by int64, upd groupUpdate) (changed bool, err error) {
	err = s.inTx(ctx, "update_group", func(tx sqlTx) error {
		st, err := s.lockGroup(ctx, tx, g, by, by)
		switch {
		case err != nil:
			return err
		case !st.meIn:
			return ErrNotMember
		case !st.me.manages():
			return errNotManager
		}
		var set []string
		var args []any
		if upd.hasName && upd.name != st.info.Name {
			set, args = append(set, "name = ?", "name_fold = ?"), append(args, upd.name, foldName(upd.name))
		}
		if upd.hasDesc && upd.desc != st.info.Desc {
			set, args = append(set, "descr = ?"), append(args, upd.desc)
		}
		if upd.hasPrivate && upd.private != st.info.Private {
			set, args = append(set, "private = ?"), append(args, upd.private)
		}
		if len(set) == 0 {
			return nil
		}
		changed = true
		_, err = tx.ExecContext(ctx, `UPDATE topics SET `+strings.Join(set, ", ")+` WHERE id = ?`, append(args, g)...)
		return err
	})
	return changed, err
}

// DeleteGroup deletes group g, on its creator's word, with everything it
// holds: messages, members, their acks, invitations and kicks. Its id is
// never given to another group (AUTOINCREMENT on SQLite; InnoDB keeps its
// counter, persisted since MySQL 8.0 and MariaDB 10.2.4).
func (s *Store) DeleteGroup(ctx context.Context, g, by int64) error {
	return s.inTx(ctx, "delete_group", func(tx sqlTx) error {
		st, err := s.lockGroup(ctx, tx, g, by, by)
		switch {
		case err != nil:
			return err
		case !st.meIn:
			return ErrNotMember
		case st.me != RoleCreator:
			return errNotCreator
		}
		s.forgetTopics(g)
		return s.execAll(ctx, tx, []stmt{
			// acks are keyed by user first: reach them through the members.
			{`DELETE FROM acks WHERE topic_id = ? AND user_id IN (SELECT user_id FROM members WHERE topic_id = ?)`, []any{g, g}},
			{`DELETE FROM messages WHERE topic_id = ?`, []any{g}},
			{`DELETE FROM members WHERE topic_id = ?`, []any{g}},
			{`DELETE FROM invitations WHERE topic_id = ?`, []any{g}},
			{`DELETE FROM kicks WHERE topic_id = ?`, []any{g}},
			{`DELETE FROM topics WHERE id = ?`, []any{g}},
		})
	})
}

// foundGroup is a find_groups result: a group without members, with how
// many it has.
type foundGroup struct {
	wire.GroupInfo
	Count int `json:"count"`
}

// FindGroups returns up to limit public groups whose name contains query
// (all, when query is empty), compared after foldName, oldest first.
// INSTR, not LIKE: the query is matched as it is, "%" and "_" included,
// with nothing to escape; on folded text both stores compare code points.
func (s *Store) FindGroups(ctx context.Context, query string, limit int) ([]foundGroup, error) {
	defer s.observe("find_groups", time.Now())
	q, args := ``, []any{topicGroup}
	if query != "" {
		q, args = ` AND INSTR(t.name_fold, ?) > 0`, append(args, foldName(query))
	}
	out := []foundGroup{}
	err := queryRows(ctx, s.db, `SELECT t.id, t.name, COALESCE(t.descr, ''), (SELECT COUNT(*) FROM members m WHERE m.topic_id = t.id)
		FROM topics t WHERE t.kind = ? AND t.private = 0`+q+` ORDER BY t.id LIMIT ?`, append(args, limit),
		func(rows *sql.Rows) error {
			var g foundGroup
			if err := rows.Scan(&g.ID, &g.Name, &g.Desc, &g.Count); err != nil {
				return err
			}
			out = append(out, g)
			return nil
		})
	return out, s.wrap("find groups", err)
}

// foldName is what find_groups compares: each character replaced by the
// least of its simple case folding orbit (unicode.SimpleFold), so that
// "Σ", "σ" and "ς" are one, as are "K", "k" and the Kelvin sign: the
// equivalence of strings.EqualFold, the same in every store. It keeps the
// number of characters (one for one, no "ß" to "ss"), so a folded group
// name fits where the name does. Changing it means refolding every stored
// name_fold.
func foldName(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		b.WriteRune(least)
	}
	return b.String()
}

// backfillNameFold sets name_fold for the groups made before it existed
// (migration 2). It may run twice (MySQL, after a crash): it only writes.
func backfillNameFold(ctx context.Context, tx sqlTx) error {
	type named struct {
		id   int64
		name string
	}
	var groups []named
	err := queryRows(ctx, tx, `SELECT id, name FROM topics WHERE kind = ? AND name IS NOT NULL`, []any{topicGroup},
		func(rows *sql.Rows) error {
			var g named
			err := rows.Scan(&g.id, &g.name)
			groups = append(groups, g)
			return err
		})
	if err != nil {
		return err
	}
	for _, g := range groups {
		if _, err := tx.ExecContext(ctx, `UPDATE topics SET name_fold = ? WHERE id = ?`, foldName(g.name), g.id); err != nil {
			return err
		}
	}
	return nil
}
