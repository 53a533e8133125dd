package main

import (
	"context"
	"database/sql"
	"sort"
	"strings"
)

// Acks: the per-member mark and the sparse acks above it.

// ackItem is one ack request waiting in a store batch.
type ackItem struct {
	user int64
	ids  []int64
	err  error
	done chan struct{}
}

// AckMessages records a batch of acks in one transaction. For each (user,
// topic) the acked seqs join the sparse acks above the mark, and the mark
// moves up over every seq that is acked or the user's own.
func (s *Store) AckMessages(ctx context.Context, items []*ackItem) {
	err := s.inTx(ctx, "ack", func(tx sqlTx) error { return s.ackMessages(ctx, tx, items) })
	for _, it := range items {
		it.err = err
	}
}

type userTopic struct{ user, topic int64 }

// ackState is one (user, topic) of an ack batch.
type ackState struct {
	mark, newMark int64
	acked         map[int64]bool // seqs acked by this batch, above the mark
	stored        map[int64]bool // seqs in the acks table
}

func (s *Store) ackMessages(ctx context.Context, tx sqlTx, items []*ackItem) error {
	// 1. Which (topic, seq) each id is.
	owners := map[int64][]int64{} // message id -> users acking it
	for _, it := range items {
		for _, id := range it.ids {
			if id > 0 {
				owners[id] = append(owners[id], it.user)
			}
		}
	}
	states := map[userTopic]*ackState{}
	place := func(id int64, at topicSeq) {
		for _, u := range owners[id] {
			k := userTopic{u, at.topic}
			st := states[k]
			if st == nil {
				st = &ackState{mark: -1, acked: map[int64]bool{}, stored: map[int64]bool{}}
				states[k] = st
			}
			st.acked[at.seq] = true
		}
	}
	all := make([]int64, 0, len(owners))
	for id := range owners {
		all = append(all, id)
	}
	missing := s.recent.find(all, place)
	ids := make([]any, len(missing))
	for i, id := range missing {
		ids[i] = id
	}
	err := eachChunk(ids, 1000, func(chunk []any) error {
		return queryRows(ctx, tx, `SELECT id, topic_id, seq FROM messages WHERE id IN (`+placeholders(len(chunk))+`)`, chunk,
			func(rows *sql.Rows) error {
				var id int64
				var at topicSeq
				if err := rows.Scan(&id, &at.topic, &at.seq); err != nil {
					return err
				}
				place(id, at)
				return nil
			})
	})
	if err != nil || len(states) == 0 {
		return err
	}
	keys := make([]userTopic, 0, len(states))
	for k := range states {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].topic != keys[j].topic {
			return keys[i].topic < keys[j].topic
		}
		return keys[i].user < keys[j].user
	})
	pairArgs := func(keys []userTopic) (string, []any) {
		var q strings.Builder
		args := make([]any, 0, 2*len(keys))
		for i, k := range keys {
			if i > 0 {
				q.WriteString(" OR ")
			}
			q.WriteString("(topic_id = ? AND user_id = ?)")
			args = append(args, k.topic, k.user)
		}
		return q.String(), args
	}

	// 2. The marks (locked), and the acks waiting above them.
	const perStmt = 500
	for start := 0; start < len(keys); start += perStmt {
		chunk := keys[start:min(start+perStmt, len(keys))]
		where, args := pairArgs(chunk)
		err := s.queryEach(ctx, tx, []stmt{
			{`SELECT topic_id, user_id, acked_seq FROM members` + s.d.byPrimary + ` WHERE ` + where + s.d.forUpdate, args},
			{`SELECT topic_id, user_id, seq FROM acks WHERE ` + where, args},
		}, func(i int, rows *sql.Rows) error {
			var k userTopic
			var v int64
			if err := rows.Scan(&k.topic, &k.user, &v); err != nil {
				return err
			}
			if i == 0 {
				states[k].mark = v
			} else {
				states[k].stored[v] = true
			}
			return nil
		})
		if err != nil {
			return err
		}
	}

	// 3. Move each mark up over acked seqs and the user's own messages.
	var changed []userTopic
	for _, k := range keys {
		st := states[k]
		if st.mark < 0 {
			continue // not (or no longer) a member: nothing is pending there
		}
		top := int64(0)
		for seq := range st.acked {
			if seq <= st.mark {
				delete(st.acked, seq)
			} else {
				top = max(top, seq)
			}
		}
		for seq := range st.stored {
			top = max(top, seq)
		}
		st.newMark = st.mark
		if len(st.acked) == 0 {
			continue
		}
		if len(st.stored) == 0 && int64(len(st.acked)) == top-st.mark {
			st.newMark = top // acked in order: every seq up to top is acked
		} else if err := s.walkMark(ctx, tx, k, st, top); err != nil {
			return err
		}
		if st.newMark > st.mark {
			changed = append(changed, k)
		}
	}

	// 4. Write the new marks in one statement, and the acks table's changes,
	// all in one round trip on MySQL.
	var writes []stmt
	if len(changed) > 0 {
		var q strings.Builder
		args := make([]any, 0, 5*len(changed))
		q.WriteString(`UPDATE members` + s.d.byPrimary + ` SET acked_seq = CASE`)
		for _, k := range changed {
			q.WriteString(` WHEN topic_id = ? AND user_id = ? THEN ?`)
			args = append(args, k.topic, k.user, states[k].newMark)
		}
		where, wargs := pairArgs(changed)
		q.WriteString(` ELSE acked_seq END WHERE ` + where)
		writes = append(writes, stmt{q.String(), append(args, wargs...)})
	}
	var ins strings.Builder
	var insArgs []any
	for _, k := range keys {
		st := states[k]
		if st.mark < 0 {
			continue
		}
		if len(st.stored) > 0 && st.newMark > st.mark {
			writes = append(writes, stmt{`DELETE FROM acks WHERE user_id = ? AND topic_id = ? AND seq <= ?`,
				[]any{k.user, k.topic, st.newMark}})
		}
		for seq := range st.acked {
			if seq > st.newMark && !st.stored[seq] {
				if len(insArgs) > 0 {
					ins.WriteByte(',')
				}
				ins.WriteString("(?,?,?)")
				insArgs = append(insArgs, k.user, k.topic, seq)
			}
		}
	}
	if len(insArgs) > 0 {
		writes = append(writes, stmt{s.d.insertIgnore + ` INTO acks (user_id, topic_id, seq) VALUES ` + ins.String(), insArgs})
	}
	return s.execAll(ctx, tx, writes)
}

// walkMark finds how far the mark of k can move when acks arrive out of
// order or the user's own messages lie in between: up over every seq that
// is acked (now or before) or the user's own, to the first that is neither.
func (s *Store) walkMark(ctx context.Context, tx sqlTx, k userTopic, st *ackState, top int64) error {
	for st.newMark < top {
		n, stop := 0, false
		err := queryRows(ctx, tx, `SELECT seq, sender_id FROM messages WHERE topic_id = ? AND seq > ? AND seq <= ?
			ORDER BY seq LIMIT 1000`, []any{k.topic, st.newMark, top}, func(rows *sql.Rows) error {
			var seq, sender int64
			if err := rows.Scan(&seq, &sender); err != nil {
				return err
			}
			n++
			if stop || seq != st.newMark+1 || (sender != k.user && !st.acked[seq] && !st.stored[seq]) {
				stop = true
				return nil
			}
			st.newMark = seq
			return nil
		})
		if err != nil || stop || n == 0 {
			return err
		}
	}
	return nil
}
