package main

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Groups and private pairs in the store: both are topics, a conversation
// with members.

// CreateGroup stores a public group with its creator as first member.
func (s *Store) CreateGroup(ctx context.Context, creator int64, name, desc string) (int64, error) {
	return s.NewGroup(ctx, creator, groupSpec{name: name, desc: desc})
}

// NewGroup stores a group with its creator as first member.
func (s *Store) NewGroup(ctx context.Context, creator int64, spec groupSpec) (int64, error) {
	var gid int64
	err := s.inTx(ctx, "create_group", func(tx sqlTx) error {
		now := nowMS()
		res, err := tx.ExecContext(ctx, `INSERT INTO topics (kind, name, name_fold, descr, private, creator_id, last_seq, created_ms)
			VALUES (?, ?, ?, ?, ?, ?, 0, ?)`, topicGroup, spec.name, foldName(spec.name), spec.desc, spec.private, creator, now)
		if err != nil {
			return err
		}
		if gid, err = res.LastInsertId(); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO members (topic_id, user_id, role, acked_seq, joined_ms)
			VALUES (?, ?, ?, 0, ?)`, gid, creator, RoleCreator, now)
		return err
	})
	return gid, err
}

// JoinGroup adds u to group g. The new member's marks start at the group's
// newest message: history is there to read, but nothing old is pending or
// unread. A private group, or one u was kicked from, needs an invitation,
// which the join uses up; a member joining again needs none and changes
// nothing.
func (s *Store) JoinGroup(ctx context.Context, g, u int64) (joined bool, err error) {
	err = s.inTx(ctx, "join_group", func(tx sqlTx) error {
		st, err := s.lockGroup(ctx, tx, g, u, u)
		if err != nil || st.meIn {
			return err
		}
		switch {
		case st.kicked:
			return errJoinKicked
		case st.info.Private && !st.invited:
			return errJoinPrivate
		}
		role := RoleMember
		if st.creator == u {
			role = RoleCreator
		}
		res, err := tx.ExecContext(ctx, s.d.insertIgnore+` INTO members (topic_id, user_id, role, acked_seq, read_seq, joined_ms)
			VALUES (?, ?, ?, ?, ?, ?)`, g, u, role, st.lastSeq, st.lastSeq, nowMS())
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if joined = n > 0; err != nil || !st.invited {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM invitations WHERE topic_id = ? AND user_id = ?`, g, u)
		return err
	})
	return joined, err
}

// LeaveGroup removes u from g, with whatever u had pending there.
func (s *Store) LeaveGroup(ctx context.Context, g, u int64) error {
	return s.inTx(ctx, "leave_group", func(tx sqlTx) error {
		var kind int
		err := tx.QueryRowContext(ctx, `SELECT kind FROM topics WHERE id = ?`, g).Scan(&kind)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && kind != topicGroup) {
			return ErrNoSuchGroup
		}
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM members WHERE topic_id = ? AND user_id = ?`, g, u)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrNotMember
		}
		// The creator who leaves gives the role up for good: the group
		// goes on without a creator (docs/protocol.md, "Groups").
		return s.execAll(ctx, tx, []stmt{
			{`DELETE FROM acks WHERE user_id = ? AND topic_id = ?`, []any{u, g}},
			{`UPDATE topics SET creator_id = NULL WHERE id = ? AND creator_id = ?`, []any{g, u}},
		})
	})
}

// GroupExists reports whether g is a group.
func (s *Store) GroupExists(ctx context.Context, g int64) (bool, error) {
	defer s.observe("group_exists", time.Now())
	var one int
	err := s.db.QueryRowContext(ctx, `SELECT 1 FROM topics WHERE id = ? AND kind = ?`, g, topicGroup).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, s.wrap("group exists", err)
}

// Group returns g with its members (online left false).
func (s *Store) Group(ctx context.Context, g int64) (Group, error) {
	groups, err := s.groups(ctx, `t.id = ?`, g)
	if err != nil {
		return Group{}, err
	}
	if len(groups) == 0 {
		return Group{}, ErrNoSuchGroup
	}
	return groups[0], nil
}

// GroupsOf returns the groups u is a member of, with their members.
func (s *Store) GroupsOf(ctx context.Context, u int64) ([]Group, error) {
	return s.groups(ctx, `t.id IN (SELECT topic_id FROM members WHERE user_id = ?)`, u)
}

func (s *Store) groups(ctx context.Context, where string, arg int64) ([]Group, error) {
	defer s.observe("groups", time.Now())
	rows, err := s.db.QueryContext(ctx, `SELECT t.id, t.name, COALESCE(t.descr, ''), t.private FROM topics t
		WHERE t.kind = ? AND `+where+` ORDER BY t.id`, topicGroup, arg)
	if err != nil {
		return nil, s.wrap("groups", err)
	}
	out := []Group{}
	index := map[int64]int{}
	for rows.Next() {
		g := Group{Members: []Member{}}
		if err := rows.Scan(&g.ID, &g.Name, &g.Desc, &g.Private); err != nil {
			rows.Close()
			return nil, s.wrap("groups", err)
		}
		index[g.ID] = len(out)
		out = append(out, g)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(out) == 0 {
		return out, s.wrap("groups", err)
	}
	rows, err = s.db.QueryContext(ctx, `SELECT m.topic_id, u.id, u.name, m.role FROM members m
		JOIN topics t ON t.id = m.topic_id JOIN users u ON u.id = m.user_id
		WHERE t.kind = ? AND `+where+` ORDER BY m.topic_id, m.joined_ms, u.id`, topicGroup, arg)
	if err != nil {
		return nil, s.wrap("group members", err)
	}
	defer rows.Close()
	for rows.Next() {
		var gid int64
		var m Member
		var role Role
		if err := rows.Scan(&gid, &m.ID, &m.Name, &role); err != nil {
			return nil, s.wrap("group members", err)
		}
		m.Role = role.Wire()
		if i, ok := index[gid]; ok {
			out[i].Members = append(out[i].Members, m)
		}
	}
	return out, s.wrap("group members", rows.Err())
}

// PairTopic returns the topic of the private conversation of a and b,
// creating it when create is set; 0 when it does not exist and create is not.
func (s *Store) PairTopic(ctx context.Context, a, b int64, create bool) (int64, error) {
	lo, hi := min(a, b), max(a, b)
	find := func(q interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}) (int64, error) {
		var t int64
		err := q.QueryRowContext(ctx, `SELECT id FROM topics WHERE pair_lo = ? AND pair_hi = ?`, lo, hi).Scan(&t)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, nil
		}
		return t, err
	}
	t, err := find(s.db)
	if err != nil || t != 0 || !create {
		return t, s.wrap("pair topic", err)
	}
	err = s.inTx(ctx, "create_pair", func(tx sqlTx) error {
		// Under the users' locks, which a deletion takes too: a pair is
		// never opened with an account being deleted.
		live, err := s.lockUsers(ctx, tx, lo, hi)
		if err != nil {
			return err
		}
		if !live[lo] || !live[hi] {
			return ErrNoSuchUser
		}
		now := nowMS()
		if _, err := tx.ExecContext(ctx, s.d.insertIgnore+` INTO topics (kind, pair_lo, pair_hi, last_seq, created_ms)
			VALUES (?, ?, ?, 0, ?)`, topicPrivate, lo, hi, now); err != nil {
			return err
		}
		if t, err = find(tx); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.d.insertIgnore+` INTO members (topic_id, user_id, role, acked_seq, joined_ms)
			VALUES (?, ?, ?, 0, ?), (?, ?, ?, 0, ?)`, t, lo, RolePeer, now, t, hi, RolePeer, now)
		return err
	})
	return t, err
}
