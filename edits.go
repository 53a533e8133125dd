package main

import (
	"context"
	"database/sql"
	"errors"
)

// Changing stored messages: edits and deletes. A deleted message keeps its
// row, as a tombstone with its body blanked, so that its id, place and acks
// stay what they were.

// messageChange decides what becomes of message m when user, whose role in
// m's conversation is role, asks to change it: the message as it is to be
// stored and true; or false to leave it as it is; or an error, and nothing
// is stored. It runs inside the transaction, maybe more than once (a retry
// after a deadlock): it must only decide.
type messageChange func(m Message, role Role) (Message, bool, error)

// ChangeMessage finds message id in one of user's conversations and stores
// what change makes of its text, edit time and deleted flag, in one
// transaction with the message's row locked, so that an edit and a delete
// racing on other nodes are applied one after the other. A message that
// does not exist, or is in a conversation user is not part of (a private
// one of others, a group user is not a member of), is ErrNoSuchMessage. It
// returns the message as it now is and whether it changed.
func (s *Store) ChangeMessage(ctx context.Context, id, user int64, change messageChange) (Message, bool, error) {
	var out Message
	var changed bool
	err := s.inTx(ctx, "change_message", func(tx sqlTx) error {
		m, role, err := s.lockMessage(ctx, tx, id, user)
		if err != nil {
			return err
		}
		next, ok, err := change(*m, role)
		if err != nil || !ok {
			out, changed = *m, false
			return err
		}
		var edited any // NULL until edited
		if next.Edited != 0 {
			edited = next.Edited
		}
		deleted := 0
		if next.Deleted {
			deleted = 1
		}
		_, err = tx.ExecContext(ctx, `UPDATE messages`+s.d.byPrimary+` SET body = ?, edited_ms = ?, deleted = ? WHERE id = ?`,
			next.Text, edited, deleted, id)
		out, changed = next, err == nil
		return err
	})
	return out, changed, err
}

// lockMessage reads message id, its row locked until tx ends, with user's
// role in its conversation: RolePeer in a private one.
func (s *Store) lockMessage(ctx context.Context, tx sqlTx, id, user int64) (*Message, Role, error) {
	m := &Message{}
	var to, edited sql.NullInt64
	var deleted int64
	// The message's row alone: a join would lock the sender's and the
	// member's rows too (MySQL locks every row a locking read passes).
	err := tx.QueryRowContext(ctx, `SELECT id, topic_id, seq, sender_id, to_user, body, ts_ms, edited_ms, deleted FROM messages`+s.d.byPrimary+`
		WHERE id = ?`+s.d.forUpdate, id).Scan(&m.ID, &m.Topic, &m.Seq, &m.From, &to, &m.Text, &m.TS, &edited, &deleted)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, ErrNoSuchMessage
	}
	if err != nil {
		return nil, 0, err
	}
	if to.Valid {
		m.To = to.Int64
	} else {
		m.Group = m.Topic
	}
	m.Edited, m.Deleted = edited.Int64, deleted != 0
	if m.To != 0 && user != m.From && user != m.To {
		return nil, 0, ErrNoSuchMessage
	}
	// The sender's name, and in a group the caller's membership and role
	// (whoever left the group no longer sees its messages).
	var role sql.NullInt64
	err = tx.QueryRowContext(ctx, `SELECT u.name, mb.role FROM users u
		LEFT JOIN members mb ON mb.topic_id = ? AND mb.user_id = ?
		WHERE u.id = ?`, m.Topic, user, m.From).Scan(&m.FromName, &role)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, ErrNoSuchMessage // no sender: history does not show it either
	}
	if err != nil {
		return nil, 0, err
	}
	if m.Group != 0 && !role.Valid {
		return nil, 0, ErrNoSuchMessage
	}
	return m, Role(role.Int64), nil
}
