package main

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"chat/internal/wire"
)

// Friend requests, friendships, blocks and deleted accounts in the store.
//
// Every change between two users (a request, a friendship, a block) and an
// account's deletion first lock the users' rows (lockUsers): on MySQL that
// serialises the changes of a pair, and each of them with the deletion of
// either account, so that what a transaction reads about the pair after
// the lock is what it changes. (SQLite has one writer at a time anyway.)

// Refusals between two users, as the client gets them.
var (
	errBlockedByThem = protoErr(wire.CodeBlocked, "this user has blocked you")
	errYouBlock      = protoErr(wire.CodeBlocked, "you have blocked this user: unblock them first")
)

// lockUsers locks the rows of ids, in id order, until the transaction
// ends, and reports which of them are live accounts (not deleted).
func (s *Store) lockUsers(ctx context.Context, tx sqlTx, ids ...int64) (map[int64]bool, error) {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	live := make(map[int64]bool, len(ids))
	err := queryRows(ctx, tx, `SELECT id, deleted FROM users`+s.d.byPrimary+` WHERE id IN (`+placeholders(len(ids))+`) ORDER BY id`+s.d.forUpdate, args,
		func(rows *sql.Rows) error {
			var id int64
			var deleted bool
			if err := rows.Scan(&id, &deleted); err != nil {
				return err
			}
			live[id] = !deleted
			return nil
		})
	return live, err
}

// askOutcome is what add_friend did.
type askOutcome uint8

const (
	askRequested askOutcome = iota // a new request
	askRepeated                    // the caller had asked already: nothing new
	askAccepted                    // the other side had asked: friends now
	askFriends                     // friends already: nothing new
)

// AskFriend is me's add_friend of other: a request, or the friendship when
// other had asked me. ErrNoSuchUser if other is not a live account;
// errBlockedByThem or errYouBlock if either blocks the other.
func (s *Store) AskFriend(ctx context.Context, me, other int64) (out askOutcome, err error) {
	err = s.inTx(ctx, "add_friend", func(tx sqlTx) error {
		live, err := s.lockUsers(ctx, tx, me, other)
		if err != nil {
			return err
		}
		if !live[me] || !live[other] {
			return ErrNoSuchUser
		}
		var theyBlock, iBlock, friends, theyAsked int
		err = tx.QueryRowContext(ctx, `SELECT
			(SELECT COUNT(*) FROM blocks WHERE user_id = ? AND blocked_id = ?),
			(SELECT COUNT(*) FROM blocks WHERE user_id = ? AND blocked_id = ?),
			(SELECT COUNT(*) FROM friends WHERE user_id = ? AND friend_id = ?),
			(SELECT COUNT(*) FROM friend_requests WHERE from_id = ? AND to_id = ?)`,
			other, me, me, other, me, other, other, me).Scan(&theyBlock, &iBlock, &friends, &theyAsked)
		switch {
		case err != nil:
			return err
		case theyBlock > 0:
			return errBlockedByThem
		case iBlock > 0:
			return errYouBlock
		case friends > 0:
			out = askFriends
			return nil
		case theyAsked > 0:
			out = askAccepted
			now := nowMS()
			return s.execAll(ctx, tx, []stmt{
				{`DELETE FROM friend_requests WHERE (from_id = ? AND to_id = ?) OR (from_id = ? AND to_id = ?)`, []any{other, me, me, other}},
				{s.d.insertIgnore + ` INTO friends (user_id, friend_id, created_ms) VALUES (?, ?, ?), (?, ?, ?)`, []any{me, other, now, other, me, now}},
			})
		}
		res, err := tx.ExecContext(ctx, s.d.insertIgnore+` INTO friend_requests (from_id, to_id, created_ms) VALUES (?, ?, ?)`, me, other, nowMS())
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		out = askRepeated
		if n > 0 {
			out = askRequested
		}
		return err
	})
	return out, err
}

// DeclineFriend drops other's request to me; false if there was none.
func (s *Store) DeclineFriend(ctx context.Context, me, other int64) (declined bool, err error) {
	err = s.inTx(ctx, "decline_friend", func(tx sqlTx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM friend_requests WHERE from_id = ? AND to_id = ?`, other, me)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		declined = n > 0
		return err
	})
	return declined, err
}

// RemoveFriend ends the friendship of me and other, and withdraws me's
// request to other if there is one. removed is false if they were not
// friends.
func (s *Store) RemoveFriend(ctx context.Context, me, other int64) (removed bool, err error) {
	err = s.inTx(ctx, "remove_friend", func(tx sqlTx) error {
		if _, err := s.lockUsers(ctx, tx, me, other); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM friends WHERE (user_id = ? AND friend_id = ?) OR (user_id = ? AND friend_id = ?)`,
			me, other, other, me)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		removed = n > 0
		_, err = tx.ExecContext(ctx, `DELETE FROM friend_requests WHERE from_id = ? AND to_id = ?`, me, other)
		return err
	})
	return removed, err
}

// FriendRequests lists the requests made to u (incoming) and by u
// (outgoing), oldest first.
func (s *Store) FriendRequests(ctx context.Context, u int64) (incoming, outgoing []User, err error) {
	defer s.observe("friend_requests", time.Now())
	incoming, outgoing = []User{}, []User{}
	err = queryRows(ctx, s.db, `SELECT 0, u.id, u.name, r.created_ms FROM friend_requests r JOIN users u ON u.id = r.from_id WHERE r.to_id = ?
		UNION ALL SELECT 1, u.id, u.name, r.created_ms FROM friend_requests r JOIN users u ON u.id = r.to_id WHERE r.from_id = ?
		ORDER BY 1, 4, 2`, []any{u, u}, func(rows *sql.Rows) error {
		var out int
		var x User
		var at int64
		if err := rows.Scan(&out, &x.ID, &x.Name, &at); err != nil {
			return err
		}
		if out == 0 {
			incoming = append(incoming, x)
		} else {
			outgoing = append(outgoing, x)
		}
		return nil
	})
	return incoming, outgoing, s.wrap("friend requests", err)
}

// LoginPeople reads what a login needs beyond friends and groups, in one
// round trip: the requests made to u, oldest first, and the users who
// block u.
func (s *Store) LoginPeople(ctx context.Context, u int64) (requests []User, blockedBy []int64, err error) {
	defer s.observe("login_people", time.Now())
	requests = []User{}
	err = queryRows(ctx, s.db, `SELECT 0, u.id, u.name, r.created_ms FROM friend_requests r JOIN users u ON u.id = r.from_id WHERE r.to_id = ?
		UNION ALL SELECT 1, b.user_id, '', 0 FROM blocks b WHERE b.blocked_id = ?
		ORDER BY 1, 4, 2`, []any{u, u}, func(rows *sql.Rows) error {
		var blocker int
		var x User
		var at int64
		if err := rows.Scan(&blocker, &x.ID, &x.Name, &at); err != nil {
			return err
		}
		if blocker == 0 {
			requests = append(requests, x)
		} else {
			blockedBy = append(blockedBy, x.ID)
		}
		return nil
	})
	return requests, blockedBy, s.wrap("login people", err)
}

// SessionState reads the sets a session of u keeps, in one round trip: u's
// friends, u's groups and the users who block u.
func (s *Store) SessionState(ctx context.Context, u int64) (out sessionSets, err error) {
	defer s.observe("session_state", time.Now())
	err = queryRows(ctx, s.db, `SELECT 0, friend_id FROM friends WHERE user_id = ?
		UNION ALL SELECT 1, m.topic_id FROM members m JOIN topics t ON t.id = m.topic_id WHERE m.user_id = ? AND t.kind = ?
		UNION ALL SELECT 2, user_id FROM blocks WHERE blocked_id = ?`, []any{u, u, topicGroup, u}, func(rows *sql.Rows) error {
		var set int
		var id int64
		if err := rows.Scan(&set, &id); err != nil {
			return err
		}
		switch set {
		case 0:
			out.friends = append(out.friends, id)
		case 1:
			out.groups = append(out.groups, id)
		default:
			out.blockedBy = append(out.blockedBy, id)
		}
		return nil
	})
	return out, s.wrap("session state", err)
}

// blockOutcome is what a block changed.
type blockOutcome struct {
	added      bool // a new block (false: blocked already)
	unfriended bool // they were friends
}

// Block makes me block other: their friendship and any request between
// them end. ErrNoSuchUser if other is not a live account.
func (s *Store) Block(ctx context.Context, me, other int64) (out blockOutcome, err error) {
	err = s.inTx(ctx, "block", func(tx sqlTx) error {
		live, err := s.lockUsers(ctx, tx, me, other)
		if err != nil {
			return err
		}
		if !live[me] || !live[other] {
			return ErrNoSuchUser
		}
		res, err := tx.ExecContext(ctx, s.d.insertIgnore+` INTO blocks (user_id, blocked_id, created_ms) VALUES (?, ?, ?)`, me, other, nowMS())
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		out.added = n > 0
		if res, err = tx.ExecContext(ctx, `DELETE FROM friends WHERE (user_id = ? AND friend_id = ?) OR (user_id = ? AND friend_id = ?)`,
			me, other, other, me); err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		out.unfriended = n > 0
		_, err = tx.ExecContext(ctx, `DELETE FROM friend_requests WHERE (from_id = ? AND to_id = ?) OR (from_id = ? AND to_id = ?)`,
			me, other, other, me)
		return err
	})
	return out, err
}

// Unblock ends me's block of other; false if there was none.
func (s *Store) Unblock(ctx context.Context, me, other int64) (unblocked bool, err error) {
	err = s.inTx(ctx, "unblock", func(tx sqlTx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM blocks WHERE user_id = ? AND blocked_id = ?`, me, other)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		unblocked = n > 0
		return err
	})
	return unblocked, err
}

// Blocks lists the users u blocks, by id.
func (s *Store) Blocks(ctx context.Context, u int64) ([]User, error) {
	defer s.observe("blocks", time.Now())
	out := []User{}
	err := queryRows(ctx, s.db, `SELECT u.id, u.name FROM blocks b JOIN users u ON u.id = b.blocked_id
		WHERE b.user_id = ? ORDER BY u.id`, []any{u}, func(rows *sql.Rows) error {
		var x User
		if err := rows.Scan(&x.ID, &x.Name); err != nil {
			return err
		}
		out = append(out, x)
		return nil
	})
	return out, s.wrap("blocks", err)
}

// SetPassword replaces a live account's password hash.
func (s *Store) SetPassword(ctx context.Context, u int64, hash []byte) error {
	return s.inTx(ctx, "set_password", func(tx sqlTx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE id = ? AND deleted = 0`, hash, u)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrNoSuchUser
		}
		return nil
	})
}

// deletedAccount is what an account's deletion undid, for the pushes
// after it.
type deletedAccount struct {
	friends []int64 // its friends, now not
	groups  []int64 // the groups it was a member of, now not
	blocked []int64 // the users it blocked, now not
}

// DeleteAccount deletes the account u: the row stays, marked deleted and
// without a password; its friendships, requests, blocks (both ways) and
// group memberships go; its private topics are closed (no chat reaches it
// any more, on any node) and keep their history for the other side.
// ErrNoSuchUser if u is not a live account.
func (s *Store) DeleteAccount(ctx context.Context, u int64) (out deletedAccount, err error) {
	err = s.inTx(ctx, "delete_account", func(tx sqlTx) error {
		out = deletedAccount{}
		live, err := s.lockUsers(ctx, tx, u)
		if err != nil {
			return err
		}
		if !live[u] {
			return ErrNoSuchUser
		}
		var pairs []int64
		err = s.queryEach(ctx, tx, []stmt{
			{`SELECT friend_id FROM friends WHERE user_id = ?`, []any{u}},
			{`SELECT m.topic_id, t.kind FROM members m JOIN topics t ON t.id = m.topic_id WHERE m.user_id = ?`, []any{u}},
			{`SELECT blocked_id FROM blocks WHERE user_id = ?`, []any{u}},
		}, func(i int, rows *sql.Rows) error {
			var id int64
			var kind int
			switch i {
			case 0:
				if err := rows.Scan(&id); err != nil {
					return err
				}
				out.friends = append(out.friends, id)
			case 1:
				if err := rows.Scan(&id, &kind); err != nil {
					return err
				}
				if kind == topicPrivate {
					pairs = append(pairs, id)
				} else {
					out.groups = append(out.groups, id)
				}
			case 2:
				if err := rows.Scan(&id); err != nil {
					return err
				}
				out.blocked = append(out.blocked, id)
			}
			return nil
		})
		if err != nil {
			return err
		}
		writes := []stmt{
			{`UPDATE users SET deleted = 1, password_hash = ? WHERE id = ?`, []any{[]byte{}, u}},
			{`DELETE FROM friends WHERE user_id = ?`, []any{u}},
			{`DELETE FROM friend_requests WHERE from_id = ?`, []any{u}},
			{`DELETE FROM friend_requests WHERE to_id = ?`, []any{u}},
			{`DELETE FROM blocks WHERE user_id = ?`, []any{u}},
			{`DELETE FROM blocks WHERE blocked_id = ?`, []any{u}},
			{`DELETE FROM acks WHERE user_id = ?`, []any{u}},
		}
		// By primary key, never a scan: on MySQL a scan would lock every
		// row it passed (every friendship; every topic, stalling all chats).
		writes = append(writes, idChunks(`DELETE FROM friends WHERE friend_id = ? AND user_id IN (%s)`, []any{u}, out.friends)...)
		writes = append(writes, idChunks(`DELETE FROM members WHERE user_id = ? AND topic_id IN (%s)`, []any{u}, out.groups)...)
		writes = append(writes, idChunks(`UPDATE topics`+s.d.byPrimary+` SET closed = 1 WHERE id IN (%s)`, nil, pairs)...)
		s.forgetTopics(pairs...)
		return s.execAll(ctx, tx, writes)
	})
	return out, err
}

// idChunks makes statements of q, whose %s takes a list of ids, for ids
// in chunks; lead are the arguments before the list.
func idChunks(q string, lead []any, ids []int64) []stmt {
	const chunk = 500
	var out []stmt
	for start := 0; start < len(ids); start += chunk {
		part := ids[start:min(start+chunk, len(ids))]
		args := make([]any, 0, len(lead)+len(part))
		args = append(args, lead...)
		for _, id := range part {
			args = append(args, id)
		}
		out = append(out, stmt{strings.Replace(q, "%s", placeholders(len(part)), 1), args})
	}
	return out
}
