package main

import (
	"context"
	"database/sql"
	"time"
)

// Reading stored messages: the pending backlog and history.

// Pending returns up to limit messages addressed to u and not yet acked,
// with ids above after, oldest first.
func (s *Store) Pending(ctx context.Context, u, after int64, limit int) ([]*Message, error) {
	defer s.observe("pending", time.Now())
	rows, err := s.db.QueryContext(ctx, `SELECT `+messageColumns+` FROM members mb
		JOIN messages m ON m.topic_id = mb.topic_id AND m.seq > mb.acked_seq
		JOIN users u ON u.id = m.sender_id
		WHERE mb.user_id = ? AND m.sender_id <> ? AND m.id > ?
		  AND NOT EXISTS (SELECT 1 FROM acks a WHERE a.user_id = mb.user_id AND a.topic_id = m.topic_id AND a.seq = m.seq)
		ORDER BY m.id LIMIT ?`, u, u, after, limit)
	return s.messages("pending", rows, err)
}

// topicMark is a member's ack mark in one topic.
type topicMark struct{ topic, mark int64 }

// PendingTopics lists u's topics that have messages above u's mark.
func (s *Store) PendingTopics(ctx context.Context, u int64) ([]topicMark, error) {
	defer s.observe("pending_topics", time.Now())
	rows, err := s.db.QueryContext(ctx, `SELECT mb.topic_id, mb.acked_seq FROM members mb JOIN topics t ON t.id = mb.topic_id
		WHERE mb.user_id = ? AND t.last_seq > mb.acked_seq ORDER BY mb.topic_id`, u)
	if err != nil {
		return nil, s.wrap("pending topics", err)
	}
	defer rows.Close()
	var out []topicMark
	for rows.Next() {
		var m topicMark
		if err := rows.Scan(&m.topic, &m.mark); err != nil {
			return nil, s.wrap("pending topics", err)
		}
		out = append(out, m)
	}
	return out, s.wrap("pending topics", rows.Err())
}

// PendingIn returns up to limit of u's pending messages in one topic with
// seqs above afterSeq and ids above afterID, in order.
func (s *Store) PendingIn(ctx context.Context, u, topic, afterSeq, afterID int64, limit int) ([]*Message, error) {
	defer s.observe("pending_in", time.Now())
	rows, err := s.db.QueryContext(ctx, `SELECT `+messageColumns+` FROM messages m JOIN users u ON u.id = m.sender_id
		WHERE m.topic_id = ? AND m.seq > ? AND m.id > ? AND m.sender_id <> ?
		  AND NOT EXISTS (SELECT 1 FROM acks a WHERE a.user_id = ? AND a.topic_id = m.topic_id AND a.seq = m.seq)
		ORDER BY m.seq LIMIT ?`, topic, afterSeq, afterID, u, u, limit)
	return s.messages("pending in", rows, err)
}

// History returns the newest limit messages of topic with ids below before
// (all when before is 0), oldest first.
func (s *Store) History(ctx context.Context, topic, before int64, limit int) ([]*Message, error) {
	defer s.observe("history", time.Now())
	if before <= 0 {
		before = 1<<63 - 1
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+messageColumns+` FROM messages m JOIN users u ON u.id = m.sender_id
		WHERE m.topic_id = ? AND m.id < ? ORDER BY m.id DESC LIMIT ?`, topic, before, limit)
	msgs, err := s.messages("history", rows, err)
	for i, j := 0, len(msgs)-1; i < j; i, j = i+1, j-1 {
		msgs[i], msgs[j] = msgs[j], msgs[i]
	}
	return msgs, err
}

// HistoryAfter returns the oldest limit messages of topic with ids above
// after, and below before when before > 0, oldest first. Its plans are
// History's: SQLite reads the topic's (topic_id, seq) index and sorts the
// rows; MySQL walks the primary key from after for a busy topic, or reads
// that index and sorts for a small one. The upper bound is only there when
// given: with two bounds on m.id, a SQLite that was ANALYZEd estimates the
// rowid range as narrow and may walk it instead, over every topic.
func (s *Store) HistoryAfter(ctx context.Context, topic, after, before int64, limit int) ([]*Message, error) {
	defer s.observe("history_after", time.Now())
	q, args := ` AND m.id > ?`, []any{topic, after}
	if before > 0 {
		q += ` AND m.id < ?`
		args = append(args, before)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+messageColumns+` FROM messages m JOIN users u ON u.id = m.sender_id
		WHERE m.topic_id = ?`+q+` ORDER BY m.id ASC LIMIT ?`, append(args, limit)...)
	return s.messages("history after", rows, err)
}

func (s *Store) messages(op string, rows *sql.Rows, err error) ([]*Message, error) {
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	out := []*Message{}
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, s.wrap(op, err)
		}
		out = append(out, m)
	}
	return out, s.wrap(op, rows.Err())
}
