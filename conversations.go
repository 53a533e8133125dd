package main

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"
)

// Conversations and read marks in the store. A member's read mark is
// members.read_seq: the seq of the last message of the topic the member has
// read, 0 for none. A seq rather than an id: the unread messages are then a
// range of the (topic_id, seq) index, and a conversation with nothing new
// is one whose topics.last_seq is the mark, which needs no count at all.

// ConvGroup is a group in a conversations reply: without its members.
type ConvGroup struct {
	ID      int64  `json:"id"`
	Name    string `json:"name"`
	Desc    string `json:"desc"`
	Private bool   `json:"private"`
}

// Conv is one conversation of a user's, as the conversations reply has it.
type Conv struct {
	With   *User      `json:"with,omitempty"`  // a private conversation's other side
	Group  *ConvGroup `json:"group,omitempty"` // or the group
	Last   *Message   `json:"last"`            // nil: no message yet
	Read   int64      `json:"read"`            // the id of the message read up to, 0 for none
	Unread int64      `json:"unread"`

	// Where it stands in the store; never sent.
	topic, readSeq, lastSeq, lastID int64
}

// Conversations returns u's conversations, most recent activity first, at
// most limit of them: every group u is a member of, and every private
// conversation of u's with a message in it. A conversation's activity is
// the time of its last message, or, for a group without one, when u
// joined it; ties go to the newer last message, then the newer topic.
// Three queries however many conversations there are: the page itself
// (with the marks and the last message's id), the unread counts of those
// with something new (unreadCounts), the last messages.
func (s *Store) Conversations(ctx context.Context, u int64, limit int) ([]Conv, error) {
	defer s.observe("conversations", time.Now())
	out := []Conv{}
	// The other side of a private topic is whichever of pair_lo and
	// pair_hi is not u; its id comes from the topic, so that it is right
	// even where the user's row has no name to give.
	const peer = `CASE WHEN t.pair_lo = mb.user_id THEN t.pair_hi ELSE t.pair_lo END`
	err := queryRows(ctx, s.db, `SELECT t.id, t.kind, COALESCE(t.name, ''), COALESCE(t.descr, ''), t.private,
			CASE WHEN t.kind = ? THEN `+peer+` ELSE 0 END, COALESCE(pu.name, ''),
			mb.read_seq, COALESCE(rm.id, 0), t.last_seq, COALESCE(lm.id, 0)
		FROM members mb
		JOIN topics t ON t.id = mb.topic_id
		LEFT JOIN messages lm ON lm.topic_id = mb.topic_id AND lm.seq = t.last_seq
		LEFT JOIN messages rm ON rm.topic_id = mb.topic_id AND rm.seq = mb.read_seq
		LEFT JOIN users pu ON t.kind = ? AND pu.id = `+peer+`
		WHERE mb.user_id = ? AND (t.kind = ? OR t.last_seq > 0)
		ORDER BY COALESCE(lm.ts_ms, mb.joined_ms) DESC, COALESCE(lm.id, 0) DESC, t.id DESC
		LIMIT ?`, []any{topicPrivate, topicPrivate, u, topicGroup, limit},
		func(rows *sql.Rows) error {
			var cv Conv
			var kind int
			var name, desc, peerName string
			var peerID int64
			var private bool
			if err := rows.Scan(&cv.topic, &kind, &name, &desc, &private, &peerID, &peerName,
				&cv.readSeq, &cv.Read, &cv.lastSeq, &cv.lastID); err != nil {
				return err
			}
			if kind == topicGroup {
				cv.Group = &ConvGroup{ID: cv.topic, Name: name, Desc: desc, Private: private}
			} else {
				cv.With = &User{ID: peerID, Name: peerName}
			}
			out = append(out, cv)
			return nil
		})
	if err != nil {
		return nil, s.wrap("conversations", err)
	}
	if err := s.unreadCounts(ctx, u, out); err != nil {
		return nil, s.wrap("unread counts", err)
	}
	ids := make([]any, 0, len(out))
	for _, cv := range out {
		if cv.lastID != 0 {
			ids = append(ids, cv.lastID)
		}
	}
	last := make(map[int64]*Message, len(ids))
	err = eachChunk(ids, 1000, func(chunk []any) error {
		return queryRows(ctx, s.db, `SELECT `+messageColumns+` FROM messages m JOIN users u ON u.id = m.sender_id
			WHERE m.id IN (`+placeholders(len(chunk))+`)`, chunk, func(rows *sql.Rows) error {
			m, err := scanMessage(rows)
			if err == nil {
				last[m.ID] = m
			}
			return err
		})
	})
	if err != nil {
		return nil, s.wrap("last messages", err)
	}
	for i := range out {
		out[i].Last = last[out[i].lastID]
	}
	return out, nil
}

// unreadChunk bounds the conversations counted in one statement: SQLite
// allows at most 500 terms in a compound SELECT.
const unreadChunk = 400

// unreadCounts sets the Unread of each of u's conversations in convs: the
// messages above u's read mark that others sent. It is the one place that
// counts unread messages. A conversation whose last message is the mark
// has none and is not counted; the others are, all in one statement, a
// term each, every term a range of the (topic_id, seq) index. (A chain of
// ORs instead made SQLite scan the whole table; see findReplays.)
func (s *Store) unreadCounts(ctx context.Context, u int64, convs []Conv) error {
	// One conversation's count. Deleted messages are not unread.
	const term = `SELECT ?, COUNT(*) FROM messages m WHERE m.topic_id = ? AND m.seq > ? AND m.sender_id <> ? AND m.deleted = 0`
	at := map[int64]int{} // topic -> index in convs
	var args []any
	for i, cv := range convs {
		if cv.lastSeq > cv.readSeq {
			at[cv.topic] = i
			args = append(args, cv.topic, cv.topic, cv.readSeq, u)
		}
	}
	return eachChunk(args, 4*unreadChunk, func(chunk []any) error {
		q := strings.Repeat(term+" UNION ALL ", len(chunk)/4-1) + term
		return queryRows(ctx, s.db, q, chunk, func(rows *sql.Rows) error {
			var topic, n int64
			if err := rows.Scan(&topic, &n); err != nil {
				return err
			}
			if i, ok := at[topic]; ok {
				convs[i].Unread = n
			}
			return nil
		})
	})
}

// MarkRead moves u's read mark in topic up to message id, and reports
// whether it moved: a mark never moves back, so a read at or below it
// changes nothing. ErrNoSuchMessage when id is not a message of topic.
// Two reads racing (two devices) each move the mark only forward, and
// only the one that moved it reports so.
func (s *Store) MarkRead(ctx context.Context, u, topic, id int64) (moved bool, err error) {
	if id <= 0 {
		return false, ErrNoSuchMessage
	}
	var seq int64
	s.recent.find([]int64{id}, func(_ int64, at topicSeq) {
		if at.topic == topic {
			seq = at.seq
		}
	})
	err = s.inTx(ctx, "read", func(tx sqlTx) error {
		if seq == 0 {
			err := tx.QueryRowContext(ctx, `SELECT seq FROM messages WHERE id = ? AND topic_id = ?`, id, topic).Scan(&seq)
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNoSuchMessage
			}
			if err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, `UPDATE members SET read_seq = ? WHERE topic_id = ? AND user_id = ? AND read_seq < ?`,
			seq, topic, u, seq)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		moved = n > 0
		return err
	})
	return moved, err
}
