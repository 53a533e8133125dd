package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Storing messages: the batch transaction, cid replays, the inserts.

// chatItem is one chat or group_chat waiting in a store batch.
type chatItem struct {
	msg  Message // in: Topic, From, FromName, To or Group, Text, TS
	cid  string
	conn uint64 // the sender's connection: the sender's other sessions get a copy
	// out:
	dup       bool // the cid was seen before; msg is the first message
	uncertain bool // failed at COMMIT: msg may be stored after all
	err       error
	done      chan struct{}
}

// messageColumns are what every read of messages selects, in scanMessage's
// order: a message shown later always carries its latest text and state.
const messageColumns = `m.id, m.topic_id, m.seq, m.sender_id, u.name, m.to_user, m.body, m.ts_ms, m.edited_ms, m.deleted`

// scanMessage reads a row of messageColumns; before are the columns selected
// ahead of them, if any (findReplays' cid).
func scanMessage(rows *sql.Rows, before ...any) (*Message, error) {
	m := &Message{}
	var to, edited sql.NullInt64
	var deleted int64
	dest := append(before, &m.ID, &m.Topic, &m.Seq, &m.From, &m.FromName, &to, &m.Text, &m.TS, &edited, &deleted)
	if err := rows.Scan(dest...); err != nil {
		return nil, err
	}
	if to.Valid {
		m.To = to.Int64
	} else {
		m.Group = m.Topic
	}
	m.Edited, m.Deleted = edited.Int64, deleted != 0
	return m, nil
}

type senderCID struct {
	sender int64
	cid    string
}

// StoreMessages stores a batch of messages in one transaction (group
// commit). Each topic's counter is locked, advanced once for all its new
// messages, and the messages get consecutive seqs in batch order, so one
// sender's messages keep their order. Items whose cid was used before get the
// first message back and store nothing. Errors are per item.
func (s *Store) StoreMessages(ctx context.Context, items []*chatItem) {
	var built bool // the last attempt got as far as COMMIT
	store := func(lookup bool) error {
		return s.inTx(ctx, "store_messages", func(tx sqlTx) error {
			err := s.storeMessages(ctx, tx, items, lookup)
			built = err == nil
			return err
		})
	}
	// Replays are rare: insert first, and look cids up only when the
	// unique key says one was used before. The lookup cost more than the
	// insert itself (47% of SQLite's CPU at 14k msgs/s).
	err := store(false)
	if errors.Is(err, errReplayed) {
		err = store(true)
	}
	if err != nil && built && s.committed(items) {
		// The COMMIT went through but its answer was lost.
		err = nil
	}
	if err == nil {
		s.recent.add(items)
	}
	if err != nil && built {
		// Stored or not: nobody can tell now. A retry with the same cid
		// will find out.
		for _, it := range items {
			it.uncertain = !it.dup
		}
	}
	if err != nil && len(items) > 1 && !errors.Is(err, ErrUnavailable) {
		// One bad item (a cid racing another node, say) must not fail the
		// others: store them one by one.
		for _, it := range items {
			s.StoreMessages(ctx, []*chatItem{it})
		}
		return
	}
	for _, it := range items {
		if err != nil {
			it.err = err
		}
	}
}

// committed checks, after a failed COMMIT, whether the batch is stored: a
// transaction is all or nothing, so one fresh message decides.
func (s *Store) committed(items []*chatItem) bool {
	for _, it := range items {
		if it.dup || it.err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var n int
		err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM messages WHERE id = ? AND topic_id = ? AND seq = ? AND sender_id = ?`,
			it.msg.ID, it.msg.Topic, it.msg.Seq, it.msg.From).Scan(&n)
		return err == nil && n == 1
	}
	return false
}

// recentSize is how many stored messages' places the store remembers for
// acks: several seconds at 50,000 msgs/s, about 10 MiB.
const recentSize = 1 << 18

// errReplayed: an optimistic insert met a cid stored before.
var errReplayed = errors.New("a cid in the batch was used before")

// storeMessages stores items in tx. Without lookup it does not look for
// earlier uses of the items' cids and fails with errReplayed if there is
// one; the caller then retries with lookup.
func (s *Store) storeMessages(ctx context.Context, tx sqlTx, items []*chatItem, lookup bool) error {
	for _, it := range items {
		it.dup, it.err, it.uncertain = false, nil, false
	}
	// 1. cid replays, from earlier batches and within this one.
	fresh := items[:0:0]
	seen := map[senderCID]*chatItem{}
	var replays []*chatItem
	for _, it := range items {
		if it.cid == "" {
			fresh = append(fresh, it)
			continue
		}
		key := senderCID{it.msg.From, it.cid}
		if _, ok := seen[key]; ok {
			it.dup = true
			replays = append(replays, it)
			continue
		}
		seen[key] = it
		fresh = append(fresh, it)
	}
	if len(seen) > 0 && lookup {
		keys := make([]senderCID, 0, len(seen))
		for k := range seen {
			keys = append(keys, k)
		}
		for len(keys) > 0 {
			n := min(len(keys), cidLookupChunk)
			if err := s.findReplays(ctx, tx, keys[:n], seen); err != nil {
				return err
			}
			keys = keys[n:]
		}
		kept := fresh[:0]
		for _, it := range fresh {
			if !it.dup {
				kept = append(kept, it)
			}
		}
		fresh = kept
	}

	if len(fresh) > 0 {
		err := s.insertMessages(ctx, tx, fresh)
		if err != nil && !lookup && len(seen) > 0 && s.d.duplicate(err) {
			return errReplayed
		}
		if err != nil {
			return err
		}
	}
	for _, it := range replays {
		first := seen[senderCID{it.msg.From, it.cid}]
		it.msg, it.err = first.msg, first.err
	}
	return nil
}

// cidLookupChunk bounds one replay lookup: SQLite allows at most 500
// terms in a compound SELECT.
const cidLookupChunk = 400

// findReplays marks the items whose (sender, cid) is already stored. Each
// key is its own point lookup on the (sender_id, cid) index, joined by
// UNION ALL: a chain of ORs made SQLite scan the whole table.
func (s *Store) findReplays(ctx context.Context, tx sqlTx, keys []senderCID, seen map[senderCID]*chatItem) error {
	var q strings.Builder
	args := make([]any, 0, 2*len(keys))
	for i, k := range keys {
		if i > 0 {
			q.WriteString(" UNION ALL ")
		}
		q.WriteString(`SELECT m.cid, ` + messageColumns + ` FROM messages m JOIN users u ON u.id = m.sender_id WHERE m.sender_id = ? AND m.cid = ?`)
		args = append(args, k.sender, []byte(k.cid))
	}
	rows, err := tx.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var cid []byte
		m, err := scanMessage(rows, &cid)
		if err != nil {
			return err
		}
		if it := seen[senderCID{m.From, string(cid)}]; it != nil {
			it.msg, it.dup = *m, true
		}
	}
	return rows.Err()
}

func (s *Store) insertMessages(ctx context.Context, tx sqlTx, items []*chatItem) error {
	counts := map[int64]int64{}
	for _, it := range items {
		counts[it.msg.Topic]++
	}
	topics := make([]int64, 0, len(counts))
	for t := range counts {
		topics = append(topics, t)
	}
	sort.Slice(topics, func(i, j int) bool { return topics[i] < topics[j] })
	// 2. Lock the topics' counters, in id order so that batches on other
	// nodes cannot deadlock with this one. (SQLite: the transaction, BEGIN
	// IMMEDIATE, holds the database's write lock already.)
	var last map[int64]int64
	var closed map[int64]bool
	var err error
	if s.local != nil {
		last, closed, err = s.local.counters(ctx, tx, topics)
	} else {
		last, closed, err = s.lockCounters(ctx, tx, topics)
	}
	if err != nil {
		return err
	}
	if closed != nil {
		// A private topic closed by a deleted account takes nothing more.
		// Read under the topic's lock: on every node, whatever its caches.
		var open []*chatItem
		for _, it := range items {
			if closed[it.msg.Topic] {
				it.err = ErrNoSuchUser
			} else {
				open = append(open, it)
			}
		}
		if len(open) == 0 {
			return nil
		}
		return s.insertMessages(ctx, tx, open)
	}
	first := make(map[int64]int64, len(topics)) // first new seq per topic
	for _, t := range topics {
		if _, ok := last[t]; !ok {
			// A group deleted after the sender's session checked it
			// (pairs are never deleted).
			return fmt.Errorf("topic %d vanished: %w", t, ErrNoSuchGroup)
		}
		first[t] = last[t] + 1
	}
	for _, it := range items {
		last[it.msg.Topic]++
		it.msg.Seq = last[it.msg.Topic]
	}
	if s.local != nil {
		return s.local.insert(ctx, tx, items, topics, last)
	}
	return s.insertBatched(ctx, tx, items, topics, first, last)
}

// lockCounters reads the topics' counters and closed flags, locked until
// the transaction ends, in one statement.
func (s *Store) lockCounters(ctx context.Context, tx sqlTx, topics []int64) (last map[int64]int64, closed map[int64]bool, err error) {
	args := make([]any, len(topics))
	for i, t := range topics {
		args[i] = t
	}
	last = make(map[int64]int64, len(topics))
	err = queryRows(ctx, tx, `SELECT id, last_seq, closed FROM topics`+s.d.byPrimary+` WHERE id IN (`+placeholders(len(topics))+`) ORDER BY id`+s.d.forUpdate, args,
		func(rows *sql.Rows) error {
			var t, seq int64
			var isClosed bool
			if err := rows.Scan(&t, &seq, &isClosed); err != nil {
				return err
			}
			last[t] = seq
			if isClosed {
				if closed == nil {
					closed = map[int64]bool{}
				}
				closed[t] = true
			}
			return nil
		})
	return last, closed, err
}

// insertBatched writes a batch over the network (MySQL) in one round trip:
// every counter in one UPDATE, the rows in multi-row INSERTs, their ids
// read back. (Tried: the UPDATE taking the counters' locks itself and the
// rows their seqs by INSERT ... SELECT from the counters, a round trip
// fewer; MariaDB spent more CPU on those statements than the round trip
// saved, and window-1 throughput fell from 8.3-8.9k to 6.5-8.0k msgs/s.)
func (s *Store) insertBatched(ctx context.Context, tx sqlTx, items []*chatItem, topics []int64, first, last map[int64]int64) error {
	args := make([]any, len(topics))
	for i, t := range topics {
		args[i] = t
	}
	in := placeholders(len(topics))

	// 3. Advance every counter in one statement.
	var writes []stmt
	var q strings.Builder
	upd := make([]any, 0, 3*len(topics))
	q.WriteString(`UPDATE topics` + s.d.byPrimary + ` SET last_seq = CASE id`)
	for _, t := range topics {
		q.WriteString(` WHEN ? THEN ?`)
		upd = append(upd, t, last[t])
	}
	q.WriteString(` END WHERE id IN (` + in + `)`)
	writes = append(writes, stmt{q.String(), append(upd, args...)})

	// 4. Insert the rows, a few hundred per statement.
	const perStmt = 500
	for start := 0; start < len(items); start += perStmt {
		chunk := items[start:min(start+perStmt, len(items))]
		q.Reset()
		q.WriteString(`INSERT INTO messages (topic_id, seq, sender_id, to_user, cid, body, ts_ms) VALUES `)
		vals := make([]any, 0, 7*len(chunk))
		for i, it := range chunk {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteString("(?,?,?,?,?,?,?)")
			vals = append(vals, insertArgs(it)...)
		}
		writes = append(writes, stmt{q.String(), vals})
	}

	// 5. Read the ids back by (topic, seq): portable, and right whatever the
	// auto-increment lock mode. Steps 3 to 5 go in one round trip on MySQL.
	q.Reset()
	q.WriteString(`SELECT id, topic_id, seq FROM messages WHERE `)
	sel := make([]any, 0, 3*len(topics))
	for i, t := range topics {
		if i > 0 {
			q.WriteString(" OR ")
		}
		q.WriteString("(topic_id = ? AND seq BETWEEN ? AND ?)")
		sel = append(sel, t, first[t], last[t])
	}
	type key struct{ topic, seq int64 }
	ids := make(map[key]int64, len(items))
	err := s.queryEach(ctx, tx, append(writes, stmt{q.String(), sel}), func(_ int, rows *sql.Rows) error {
		var id int64
		var k key
		if err := rows.Scan(&id, &k.topic, &k.seq); err != nil {
			return err
		}
		ids[k] = id
		return nil
	})
	if err != nil {
		return err
	}
	for _, it := range items {
		it.msg.ID = ids[key{it.msg.Topic, it.msg.Seq}]
		if it.msg.ID == 0 {
			return fmt.Errorf("message %d/%d not read back", it.msg.Topic, it.msg.Seq)
		}
	}
	return nil
}

// insertArgs are a message's values in the order of the INSERTs' columns.
func insertArgs(it *chatItem) []any {
	var to, cid any
	if it.msg.To != 0 {
		to = it.msg.To
	}
	if it.cid != "" {
		cid = []byte(it.cid)
	}
	return []any{it.msg.Topic, it.msg.Seq, it.msg.From, to, cid, it.msg.Text, it.msg.TS}
}
