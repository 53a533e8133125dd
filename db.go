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

// Topic kinds, as stored in topics.kind.
const (
	topicPrivate = 1
	topicGroup   = 2
)

// Store is the chat's durable state over database/sql, for SQLite and MySQL
// alike. It holds no locks of its own: concurrency is the database's job.
type Store struct {
	db      *sql.DB
	d       *dialect
	metrics *Metrics
	// writeGate, for a store with one writer at a time (SQLite), queues
	// this process's transactions in order. Left to the database, a waiting
	// writer polls the lock (busy_timeout) and, under steady batch traffic,
	// can lose every race until its deadline: a first chat's create_pair
	// did, at 40k msgs/s. The gate is the database's own lock, taken a step
	// earlier, so holding it across the transaction adds no waiting.
	writeGate chan struct{}
	recent    *recentMessages
}

// OpenStore connects to dbURL ("sqlite:PATH" or "mysql:DSN") and creates the
// tables that are missing.
func OpenStore(ctx context.Context, dbURL string, m *Metrics) (*Store, error) {
	db, d, err := openDB(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	if err := applySchema(ctx, db, d); err != nil {
		db.Close()
		return nil, err
	}
	s := &Store{db: db, d: d, metrics: m, recent: newRecentMessages(recentSize)}
	if d.singleWriter {
		s.writeGate = make(chan struct{}, 1)
	}
	return s, nil
}

func (s *Store) Close() error { return s.db.Close() }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	return s.wrap("ping", s.db.PingContext(ctx))
}

// wrap classifies a database error: sentinels pass through, an unreachable
// database becomes ErrUnavailable, anything else stays a plain (internal) error.
func (s *Store) wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNameTaken), errors.Is(err, ErrNoSuchUser),
		errors.Is(err, ErrNoSuchGroup), errors.Is(err, ErrNotMember), errors.Is(err, ErrUnavailable):
		return err
	case s.d.down(err):
		return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
	default:
		return fmt.Errorf("%s: %w", op, err)
	}
}

func (s *Store) observe(op string, start time.Time) {
	if s.metrics != nil {
		s.metrics.storeLatency.observe(op, time.Since(start))
	}
}

func nowMS() int64 { return time.Now().UnixMilli() }

// Account is a user with its password hash, for login.
type Account struct {
	User
	Hash []byte
}

// CreateUser stores a new user; ErrNameTaken when the name exists.
func (s *Store) CreateUser(ctx context.Context, name string, hash []byte) (User, error) {
	defer s.observe("create_user", time.Now())
	release, err := s.enterWrite(ctx)
	if err != nil {
		return User{}, s.wrap("create user", err)
	}
	res, err := s.db.ExecContext(ctx,
		`INSERT INTO users (name, password_hash, created_ms) VALUES (?, ?, ?)`, name, hash, nowMS())
	release()
	if err != nil {
		if s.d.duplicate(err) {
			return User{}, ErrNameTaken
		}
		return User{}, s.wrap("create user", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return User{}, s.wrap("create user", err)
	}
	return User{ID: id, Name: name}, nil
}

// Account looks a user up by name (when name is not empty) or id.
func (s *Store) Account(ctx context.Context, name string, id int64) (Account, error) {
	defer s.observe("account", time.Now())
	var row *sql.Row
	if name != "" {
		row = s.db.QueryRowContext(ctx, `SELECT id, name, password_hash FROM users WHERE name = ?`, name)
	} else {
		row = s.db.QueryRowContext(ctx, `SELECT id, name, password_hash FROM users WHERE id = ?`, id)
	}
	var a Account
	err := row.Scan(&a.ID, &a.Name, &a.Hash)
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, ErrNoSuchUser
	}
	return a, s.wrap("account", err)
}

// AddFriend makes a and b friends both ways. created is false when they
// already were.
func (s *Store) AddFriend(ctx context.Context, a, b int64) (created bool, err error) {
	err = s.inTx(ctx, "add_friend", func(tx sqlTx) error {
		now := nowMS()
		res, err := tx.ExecContext(ctx, s.d.insertIgnore+
			` INTO friends (user_id, friend_id, created_ms) VALUES (?, ?, ?), (?, ?, ?)`, a, b, now, b, a, now)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		created = n > 0
		return err
	})
	return created, err
}

// Friends lists u's friends by id.
func (s *Store) Friends(ctx context.Context, u int64) ([]User, error) {
	defer s.observe("friends", time.Now())
	rows, err := s.db.QueryContext(ctx, `SELECT u.id, u.name FROM friends f JOIN users u ON u.id = f.friend_id
		WHERE f.user_id = ? ORDER BY u.id`, u)
	if err != nil {
		return nil, s.wrap("friends", err)
	}
	defer rows.Close()
	out := []User{}
	for rows.Next() {
		var f User
		if err := rows.Scan(&f.ID, &f.Name); err != nil {
			return nil, s.wrap("friends", err)
		}
		out = append(out, f)
	}
	return out, s.wrap("friends", rows.Err())
}

// CreateGroup stores a group with its creator as first member.
func (s *Store) CreateGroup(ctx context.Context, creator int64, name, desc string) (int64, error) {
	var gid int64
	err := s.inTx(ctx, "create_group", func(tx sqlTx) error {
		now := nowMS()
		res, err := tx.ExecContext(ctx, `INSERT INTO topics (kind, name, descr, creator_id, last_seq, created_ms)
			VALUES (?, ?, ?, ?, 0, ?)`, topicGroup, name, desc, creator, now)
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

// JoinGroup adds u to group g. The new member's mark starts at the group's
// newest message: history is there to read, but nothing old is pending.
func (s *Store) JoinGroup(ctx context.Context, g, u int64) (joined bool, err error) {
	err = s.inTx(ctx, "join_group", func(tx sqlTx) error {
		var last int64
		var creator sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT last_seq, creator_id FROM topics WHERE id = ? AND kind = ?`+s.d.forUpdate,
			g, topicGroup).Scan(&last, &creator)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNoSuchGroup
		}
		if err != nil {
			return err
		}
		role := RoleMember
		if creator.Valid && creator.Int64 == u {
			role = RoleCreator
		}
		res, err := tx.ExecContext(ctx, s.d.insertIgnore+` INTO members (topic_id, user_id, role, acked_seq, joined_ms)
			VALUES (?, ?, ?, ?, ?)`, g, u, role, last, nowMS())
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		joined = n > 0
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
		_, err = tx.ExecContext(ctx, `DELETE FROM acks WHERE user_id = ? AND topic_id = ?`, u, g)
		return err
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
	rows, err := s.db.QueryContext(ctx, `SELECT t.id, t.name, COALESCE(t.descr, '') FROM topics t
		WHERE t.kind = ? AND `+where+` ORDER BY t.id`, topicGroup, arg)
	if err != nil {
		return nil, s.wrap("groups", err)
	}
	out := []Group{}
	index := map[int64]int{}
	for rows.Next() {
		g := Group{Members: []Member{}}
		if err := rows.Scan(&g.ID, &g.Name, &g.Desc); err != nil {
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
		if err := rows.Scan(&gid, &m.ID, &m.Name, &m.Role); err != nil {
			return nil, s.wrap("group members", err)
		}
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

// chatItem is one chat or group_chat waiting in a store batch.
type chatItem struct {
	msg Message // in: Topic, From, FromName, To or Group, Text, TS
	cid string
	// out:
	dup       bool // the cid was seen before; msg is the first message
	uncertain bool // failed at COMMIT: msg may be stored after all
	err       error
	done      chan struct{}
}

const messageColumns = `m.id, m.topic_id, m.seq, m.sender_id, u.name, m.to_user, m.body, m.ts_ms`

func scanMessage(rows *sql.Rows) (*Message, error) {
	m := &Message{}
	var to sql.NullInt64
	if err := rows.Scan(&m.ID, &m.Topic, &m.Seq, &m.From, &m.FromName, &to, &m.Text, &m.TS); err != nil {
		return nil, err
	}
	if to.Valid {
		m.To = to.Int64
	} else {
		m.Group = m.Topic
	}
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
		if it.dup {
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
		it.msg = seen[senderCID{it.msg.From, it.cid}].msg
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
		m := &Message{}
		var to sql.NullInt64
		if err := rows.Scan(&cid, &m.ID, &m.Topic, &m.Seq, &m.From, &m.FromName, &to, &m.Text, &m.TS); err != nil {
			return err
		}
		if to.Valid {
			m.To = to.Int64
		} else {
			m.Group = m.Topic
		}
		if it := seen[senderCID{m.From, string(cid)}]; it != nil {
			it.msg, it.dup = *m, true
		}
	}
	return rows.Err()
}

func (s *Store) insertMessages(ctx context.Context, tx sqlTx, items []*chatItem) error {
	// 2. Lock the topics' counters, in id order so that batches on other
	// nodes cannot deadlock with this one.
	counts := map[int64]int64{}
	for _, it := range items {
		counts[it.msg.Topic]++
	}
	topics := make([]int64, 0, len(counts))
	for t := range counts {
		topics = append(topics, t)
	}
	sort.Slice(topics, func(i, j int) bool { return topics[i] < topics[j] })
	args := make([]any, len(topics))
	for i, t := range topics {
		args[i] = t
	}
	in := placeholders(len(topics))
	rows, err := tx.QueryContext(ctx, `SELECT id, last_seq FROM topics`+s.d.byPrimary+` WHERE id IN (`+in+`) ORDER BY id`+s.d.forUpdate, args...)
	if err != nil {
		return err
	}
	last := make(map[int64]int64, len(topics))
	for rows.Next() {
		var t, seq int64
		if err := rows.Scan(&t, &seq); err != nil {
			rows.Close()
			return err
		}
		last[t] = seq
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	first := make(map[int64]int64, len(topics)) // first new seq per topic
	for _, t := range topics {
		if _, ok := last[t]; !ok {
			return fmt.Errorf("topic %d vanished", t)
		}
		first[t] = last[t] + 1
	}
	for _, it := range items {
		last[it.msg.Topic]++
		it.msg.Seq = last[it.msg.Topic]
	}

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
			var to, cid any
			if it.msg.To != 0 {
				to = it.msg.To
			}
			if it.cid != "" {
				cid = []byte(it.cid)
			}
			vals = append(vals, it.msg.Topic, it.msg.Seq, it.msg.From, to, cid, it.msg.Text, it.msg.TS)
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
	err = s.queryEach(ctx, tx, append(writes, stmt{q.String(), sel}), func(_ int, rows *sql.Rows) error {
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

func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?,", n-1) + "?"
}

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

// queryRows runs a query and calls each for every row.
func eachChunk(args []any, size int, fn func([]any) error) error {
	for start := 0; start < len(args); start += size {
		if err := fn(args[start:min(start+size, len(args))]); err != nil {
			return err
		}
	}
	return nil
}

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
