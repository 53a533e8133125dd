package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Schema migrations, on SQLite and MySQL: version 1 is the release's
// schema; a database the release wrote is upgraded with every row kept; a
// fresh one gets every migration; a newer one is refused untouched; a
// failure rolls back (SQLite) or resumes (MySQL); concurrent starts migrate
// once; a current database costs one read. The code's own migrations are
// schemaMigrations, len(schemaMigrations) of them: the tests' own come
// after those (versions len+1, len+2), passed to openStore, and never
// assume how many the code has.

// v1Hashes are the SHA-256 of version 1's statements (comments dropped,
// joined by ";\n") as released, before migrations existed (commit 5e3b10a).
var v1Hashes = map[string]string{
	"mysql":  "50101299c2c4529400bbeb919ab335839d856e9d57417de096efdd59a76f062d",
	"sqlite": "d5c6e7e4eb76cd195abb34d3a23ea4e94be82296b9d0fead7070624ca2864ff1",
}

// createLikeRelease creates the tables as the release before migrations did
// at every start (its applySchema, verbatim): each statement of the version
// 1 text on its own, outside a transaction, nothing recorded.
func createLikeRelease(t testing.TB, dbURL string) {
	t.Helper()
	db, d := openTestDB(t, dbURL)
	text := sqliteSchemaV1
	if d == &mysqlDialect {
		text = mysqlSchemaV1
	}
	for _, stmt := range strings.Split(text, ";\n") {
		if strings.TrimSpace(stripComments(stmt)) == "" {
			continue
		}
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("apply schema: %v", err)
		}
	}
}

// openTestDB opens a pool on dbURL for looking inside; closed after the test.
func openTestDB(t testing.TB, dbURL string) (*sql.DB, *dialect) {
	t.Helper()
	db, d, err := openDB(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, d
}

// anotherURL is a second fresh database of dbURL's kind.
func anotherURL(t testing.TB, dbURL string) string {
	t.Helper()
	if strings.HasPrefix(dbURL, "sqlite:") {
		return sqliteURL(t)
	}
	return mysqlURL(t)
}

// openTestStore opens a store with list, closed after the test.
func openTestStore(t testing.TB, dbURL string, list []migration) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := openStore(ctx, dbURL, nil, list)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func tryOpenStore(dbURL string, list []migration) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := openStore(ctx, dbURL, nil, list)
	if err == nil {
		s.Close()
	}
	return err
}

// withMigrations is the real list and then the tests' own.
func withMigrations(more ...migration) []migration {
	return append(slices.Clone(schemaMigrations), more...)
}

// codeVersion is the schema version of the code: its last migration.
var codeVersion = len(schemaMigrations)

// migrationV2 is the first migration past the code's (version
// codeVersion+1), of a kind features need: a column with a backfill (read
// marks) and a table with a backfill (devices). Its names are the tests'
// own, so that no real migration has them.
func migrationV2() migration {
	return migration{
		version: codeVersion + 1,
		name:    "test: read marks and devices",
		mysql: `ALTER TABLE members ADD COLUMN test_read_seq BIGINT NOT NULL DEFAULT 0;
UPDATE members SET test_read_seq = acked_seq;
CREATE TABLE test_devices (
  id         BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id    BIGINT NOT NULL,
  name       VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  created_ms BIGINT NOT NULL,
  UNIQUE KEY test_devices_user_name (user_id, name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
-- every user gets a first device
INSERT INTO test_devices (user_id, name, created_ms) SELECT id, 'first', created_ms FROM users;
`,
		sqlite: `ALTER TABLE members ADD COLUMN test_read_seq INTEGER NOT NULL DEFAULT 0;
UPDATE members SET test_read_seq = acked_seq;
CREATE TABLE test_devices (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id    INTEGER NOT NULL,
  name       TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  UNIQUE (user_id, name)
);
-- every user gets a first device
INSERT INTO test_devices (user_id, name, created_ms) SELECT id, 'first', created_ms FROM users;
`,
	}
}

// migrationV3 adds a table, after migrationV2.
func migrationV3() migration {
	return migration{
		version: codeVersion + 2,
		name:    "test: blocks",
		mysql:   "CREATE TABLE test_blocks (user_id BIGINT NOT NULL, blocked_id BIGINT NOT NULL, PRIMARY KEY (user_id, blocked_id)) ENGINE=InnoDB;\n",
		sqlite:  "CREATE TABLE test_blocks (user_id INTEGER NOT NULL, blocked_id INTEGER NOT NULL, PRIMARY KEY (user_id, blocked_id)) WITHOUT ROWID;\n",
	}
}

// migrationHalfway is a migration past the code's (like migrationV2) of
// four statements and a fn, which fails
// while fail is set. halfway_runs counts what ran: the INSERT adds 1, the fn
// 10; a statement run twice would show, and the ALTER run twice would fail.
func migrationHalfway(fail *atomic.Bool) migration {
	fn := func(ctx context.Context, tx sqlTx) error {
		if fail.Load() {
			return errors.New("injected failure")
		}
		_, err := tx.ExecContext(ctx, `UPDATE halfway_runs SET n = n + 10`)
		return err
	}
	return migration{
		version: codeVersion + 1,
		name:    "test: fails halfway",
		mysql: `ALTER TABLE users ADD COLUMN nick VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL;
CREATE TABLE halfway_runs (n BIGINT NOT NULL) ENGINE=InnoDB;
INSERT INTO halfway_runs (n) VALUES (1);
UPDATE users SET nick = name;
`,
		sqlite: `ALTER TABLE users ADD COLUMN nick TEXT NULL;
CREATE TABLE halfway_runs (n INTEGER NOT NULL);
INSERT INTO halfway_runs (n) VALUES (1);
UPDATE users SET nick = name;
`,
		mysqlFn:  fn,
		sqliteFn: fn,
	}
}

// state reads schema_migrations.
func state(t testing.TB, db *sql.DB) schemaState {
	t.Helper()
	st, err := readSchemaState(context.Background(), db)
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	return st
}

// wantVersions checks that exactly versions 1..n are recorded as applied.
func wantVersions(t testing.TB, db *sql.DB, list []migration, n int) {
	t.Helper()
	st := state(t, db)
	if len(st) != n {
		t.Fatalf("schema_migrations: %+v, want versions 1..%d", st, n)
	}
	for i, r := range st {
		if r.version != i+1 || r.name != list[i].name || !r.applied || r.inDoubt {
			t.Fatalf("schema_migrations row %d: %+v, want version %d %q applied", i, r, i+1, list[i].name)
		}
	}
}

var autoIncrement = regexp.MustCompile(` AUTO_INCREMENT=\d+`)

// catalog describes the schema, one line per table or index, without
// schema_migrations.
func catalog(t testing.TB, db *sql.DB, d *dialect) string {
	t.Helper()
	var b strings.Builder
	if d == &sqliteDialect {
		for _, line := range dumpRows(t, db, `SELECT type, name, tbl_name, COALESCE(sql, '') FROM sqlite_master WHERE name <> 'schema_migrations'`) {
			b.WriteString(line + "\n")
		}
		return b.String()
	}
	for _, table := range tableNames(t, db, d) {
		if table == "schema_migrations" {
			continue
		}
		var name, create string
		if err := db.QueryRow("SHOW CREATE TABLE `"+table+"`").Scan(&name, &create); err != nil {
			t.Fatal(err)
		}
		b.WriteString(autoIncrement.ReplaceAllString(create, "") + "\n")
	}
	return b.String()
}

// columns lists a table's columns in order.
func columns(t testing.TB, db *sql.DB, d *dialect, table string) []string {
	t.Helper()
	q := `SELECT name FROM pragma_table_info('` + table + `') ORDER BY cid`
	if d == &mysqlDialect {
		q = `SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = '` + table + `' ORDER BY ordinal_position`
	}
	var out []string
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var c string
		rows.Scan(&c)
		out = append(out, c)
	}
	return out
}

func tableNames(t testing.TB, db *sql.DB, d *dialect) []string {
	t.Helper()
	tables, err := tablesOf(context.Background(), db, d)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for name := range tables {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// dumpRows returns a query's rows as text, sorted.
func dumpRows(t testing.TB, db *sql.DB, query string) []string {
	t.Helper()
	rows, err := db.Query(query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			switch v := v.(type) {
			case nil:
				parts[i] = "NULL"
			case []byte:
				parts[i] = fmt.Sprintf("%q", v)
			default:
				parts[i] = fmt.Sprintf("%q", fmt.Sprint(v))
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// dumpAll is the whole database as text: the schema and every row of
// every table, schema_migrations included.
func dumpAll(t testing.TB, dbURL string) string {
	t.Helper()
	db, d := openTestDB(t, dbURL)
	defer db.Close()
	var b strings.Builder
	b.WriteString(catalog(t, db, d))
	for _, table := range tableNames(t, db, d) {
		fmt.Fprintf(&b, "== %s %v\n", table, columns(t, db, d, table))
		for _, row := range dumpRows(t, db, "SELECT * FROM "+table) {
			b.WriteString(row + "\n")
		}
	}
	return b.String()
}

// dumpV1 is every row of version 1's tables, in version 1's columns.
func dumpV1(t testing.TB, db *sql.DB) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, tb := range v1Tables {
		out[tb.name] = dumpRows(t, db, "SELECT "+tb.cols+" FROM "+tb.name)
	}
	return out
}

func count(t testing.TB, db *sql.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// TestMigrateV1IsRelease: version 1 is the release's schema. Its text is
// byte for byte the release's (comments aside), and what the migrations
// make of it is what the release's applySchema made: the same tables,
// columns, keys and indexes.
func TestMigrateV1IsRelease(t *testing.T) {
	if m := schemaMigrations[0]; m.version != 1 || m.mysql != mysqlSchemaV1 || m.sqlite != sqliteSchemaV1 || m.mysqlFn != nil || m.sqliteFn != nil {
		t.Fatalf("migration 1 is not schema.sql and schema_sqlite.sql")
	}
	for name, text := range map[string]string{"mysql": mysqlSchemaV1, "sqlite": sqliteSchemaV1} {
		sum := sha256.Sum256([]byte(strings.Join(splitStatements(text), ";\n")))
		if got := hex.EncodeToString(sum[:]); got != v1Hashes[name] {
			t.Errorf("%s: version 1's statements changed (sha256 %s, released %s): schema.sql and schema_sqlite.sql are frozen; change the schema with a new migration",
				name, got, v1Hashes[name])
		}
	}
	forEachStore(t, func(t *testing.T, release string) {
		createLikeRelease(t, release)
		migrated := anotherURL(t, release)
		openTestStore(t, migrated, schemaMigrations[:1])
		rdb, d := openTestDB(t, release)
		mdb, _ := openTestDB(t, migrated)
		want, got := catalog(t, rdb, d), catalog(t, mdb, d)
		if got != want {
			t.Fatalf("version 1 made by the migrations:\n%s\nmade by the release:\n%s", got, want)
		}
		wantVersions(t, mdb, schemaMigrations[:1], 1)
		// v1Tables, which recognises a release's database, is version 1.
		var names []string
		for _, tb := range v1Tables {
			names = append(names, tb.name)
			if cols := strings.Join(columns(t, rdb, d, tb.name), ", "); cols != tb.cols {
				t.Errorf("v1Tables: %s has columns %s, version 1 makes %s", tb.name, tb.cols, cols)
			}
		}
		made := slices.DeleteFunc(tableNames(t, rdb, d), func(s string) bool { return s == "sqlite_sequence" })
		sort.Strings(names)
		if !slices.Equal(made, names) {
			t.Errorf("v1Tables names %v, version 1 makes %v", names, made)
		}
		t.Logf("%d tables, catalog %d bytes, identical", len(made), len(want))
	})
}

// fillV1 writes, in version 1's tables and columns, what the release
// before migrations stored for users, a friendship, a group with members,
// private and group messages, and acks (one out of order, left waiting in
// acks). Plain SQL: the Store is this code's, which needs this code's
// schema; version 1's tables are frozen, so the statements stay right.
func fillV1(t *testing.T, dbURL string) {
	db, _ := openTestDB(t, dbURL)
	now := nowMS()
	hash := func(name string) []byte { return []byte("$2a$04$hash-of-" + name) }
	for _, st := range []stmt{
		{`INSERT INTO users (id, name, password_hash, created_ms) VALUES (1, 'alice', ?, ?), (2, 'bob', ?, ?), (3, 'carol', ?, ?)`,
			[]any{hash("alice"), now, hash("bob"), now, hash("carol"), now}},
		{`INSERT INTO friends (user_id, friend_id, created_ms) VALUES (1, 2, ?), (2, 1, ?)`, []any{now, now}},
		// The group (alice its creator, bob and carol members), then the
		// pair of alice and bob.
		{`INSERT INTO topics (id, kind, pair_lo, pair_hi, name, descr, creator_id, last_seq, created_ms)
			VALUES (1, 2, NULL, NULL, 'upgraders', 'a group from before migrations', 1, 2, ?), (2, 1, 1, 2, NULL, NULL, NULL, 3, ?)`, []any{now, now}},
		// alice acked the first group message; bob the first and the third
		// private one: the third waits in acks.
		{`INSERT INTO members (topic_id, user_id, role, acked_seq, joined_ms)
			VALUES (1, 1, 2, 1, ?), (1, 2, 1, 0, ?), (1, 3, 1, 0, ?), (2, 1, 0, 0, ?), (2, 2, 0, 1, ?)`, []any{now, now, now, now, now}},
		{`INSERT INTO messages (id, topic_id, seq, sender_id, to_user, cid, body, ts_ms) VALUES
			(1, 2, 1, 1, 2, ?, 'private 0', ?), (2, 2, 2, 1, 2, ?, 'private 1', ?), (3, 2, 3, 1, 2, ?, 'private 2', ?),
			(4, 1, 1, 3, NULL, NULL, 'group 0', ?), (5, 1, 2, 3, NULL, NULL, 'group 1', ?)`,
			[]any{[]byte("cid-0"), now, []byte("cid-1"), now, []byte("cid-2"), now, now, now}},
		{`INSERT INTO acks (user_id, topic_id, seq) VALUES (2, 2, 3)`, nil},
	} {
		if _, err := db.Exec(st.q, st.args...); err != nil {
			t.Fatalf("%s: %v", st.q, err)
		}
	}
}

// fillThroughServer does the same through a real server and clients.
func fillThroughServer(t *testing.T, ts *testServer) {
	a := newUser(t, ts.addr, "mig")
	b := newUser(t, ts.addr, "mig")
	c := newUser(t, ts.addr, "mig")
	befriend(t, a, b)
	g := a.must("create_group", map[string]any{"name": "upgraders", "desc": "made by a server"}).obj("group").num("id")
	b.must("join_group", map[string]any{"group": g})
	c.must("join_group", map[string]any{"group": g})
	var private []int64
	for i := range 3 {
		private = append(private, a.must("chat", map[string]any{"to": b.user, "text": fmt.Sprint("private ", i), "cid": fmt.Sprint("k", i)}).obj("message").num("id"))
	}
	gm := c.must("group_chat", map[string]any{"group": g, "text": "to the group"}).obj("message").num("id")
	c.must("group_chat", map[string]any{"group": g, "text": "again"})
	b.messages(5, 5*time.Second)
	b.must("ack", map[string]any{"ids": []int64{private[0], private[2]}}) // the third waits in acks
	a.must("ack", map[string]any{"ids": []int64{gm}})
	for _, x := range []*testClient{a, b, c} {
		x.must("logout", nil)
	}
}

// checkUpgrade opens a database of version 1, or of the code's version,
// with the code's migrations and migrationV2, and checks that every row is
// there, the backfills are done, the store works (the features of the
// code's migrations too), and a server knowing only the code's refuses it.
func checkUpgrade(t *testing.T, dbURL string) {
	db, d := openTestDB(t, dbURL)
	before := dumpV1(t, db)
	for _, tb := range v1Tables {
		if len(before[tb.name]) == 0 {
			t.Fatalf("no rows in %s before the upgrade: the test writes too little", tb.name)
		}
	}
	list := withMigrations(migrationV2())
	s := openTestStore(t, dbURL, list)
	wantVersions(t, db, list, len(list))
	after := dumpV1(t, db)
	for _, tb := range v1Tables {
		if !slices.Equal(before[tb.name], after[tb.name]) {
			t.Errorf("%s changed:\nbefore %q\nafter  %q", tb.name, before[tb.name], after[tb.name])
		}
	}
	if n := count(t, db, `SELECT COUNT(*) FROM members WHERE test_read_seq <> acked_seq`); n != 0 {
		t.Errorf("%d members without their test_read_seq backfilled", n)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM members WHERE acked_seq > 0`); n == 0 {
		t.Errorf("no member has acked anything: the backfill checks nothing")
	}
	users := count(t, db, `SELECT COUNT(*) FROM users`)
	if n := count(t, db, `SELECT COUNT(*) FROM test_devices v JOIN users u ON u.id = v.user_id AND v.created_ms = u.created_ms AND v.name = 'first'`); n != users {
		t.Errorf("%d devices backfilled for %d users", n, users)
	}
	if !slices.Contains(columns(t, db, d, "members"), "test_read_seq") {
		t.Errorf("members has no test_read_seq")
	}
	// The store works on the upgraded database.
	ctx := context.Background()
	var alice, bob int64 // the one friendship, and the private conversation
	if err := db.QueryRow(`SELECT MIN(user_id), MAX(user_id) FROM friends`).Scan(&alice, &bob); err != nil {
		t.Fatal(err)
	}
	pair, err := s.PairTopic(ctx, alice, bob, false)
	if err != nil || pair == 0 {
		t.Fatalf("pair topic of %d and %d: %d %v", alice, bob, pair, err)
	}
	msgs, err := s.History(ctx, pair, 0, 10)
	if err != nil || len(msgs) != 3 || msgs[0].Text != "private 0" || msgs[2].Text != "private 2" {
		t.Fatalf("history after the upgrade: %v %v", msgs, err)
	}
	if _, err := s.CreateUser(ctx, uniqueName("after"), []byte("h")); err != nil {
		t.Fatal(err)
	}
	checkUpgradeEdits(t, s, db, pair)
	checkUpgradeGroups(t, s, db, alice, bob)
	checkUpgradedPeople(t, s, db, alice, bob, pair) // last: it deletes an account
	// This code's server knows only its own versions.
	snapshot := dumpAll(t, dbURL)
	err = tryOpenStore(dbURL, schemaMigrations)
	if want := fmt.Sprintf("the database is at schema version %d; this server knows up to %d: upgrade the server", codeVersion+1, codeVersion); err == nil || err.Error() != want {
		t.Fatalf("a server knowing version %d on a database at %d: %v, want %q", codeVersion, codeVersion+1, err, want)
	}
	if dumpAll(t, dbURL) != snapshot {
		t.Fatal("the refused start changed the database")
	}
}

// TestMigrateUpgradeV1: a database the release before migrations wrote
// (its rows, in SQL), and one a real server of this code wrote, are
// recognised as version 1 (or the code's version) and upgraded past the
// code's version with every row kept.
func TestMigrateUpgradeV1(t *testing.T) {
	forEachStore(t, func(t *testing.T, dbURL string) {
		t.Run("store", func(t *testing.T) {
			createLikeRelease(t, dbURL)
			fillV1(t, dbURL)
			db, _ := openTestDB(t, dbURL)
			if _, err := readSchemaState(context.Background(), db); err == nil {
				t.Fatal("the release's database has schema_migrations")
			}
			checkUpgrade(t, dbURL)
			checkReadMarks(t, dbURL)
		})
		t.Run("server", func(t *testing.T) {
			dbURL := anotherURL(t, dbURL)
			createLikeRelease(t, dbURL)
			// This code's server recognises the database as version 1 and
			// brings it to its own version.
			ts := startServer(t, dbURL)
			db, _ := openTestDB(t, dbURL)
			wantVersions(t, db, schemaMigrations, codeVersion)
			fillThroughServer(t, ts)
			ts.stop()
			checkUpgrade(t, dbURL)
		})
	})
}

// TestMigrateFresh: a fresh database gets every migration in order.
func TestMigrateFresh(t *testing.T) {
	forEachStore(t, func(t *testing.T, dbURL string) {
		list := withMigrations(migrationV2(), migrationV3())
		openTestStore(t, dbURL, list)
		db, d := openTestDB(t, dbURL)
		wantVersions(t, db, list, len(list))
		if got := strings.Join(columns(t, db, d, "test_blocks"), ","); got != "user_id,blocked_id" {
			t.Fatalf("test_blocks: %s", got)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM test_devices`); n != 0 {
			t.Fatalf("%d devices in a fresh database", n)
		}
		// The production list: a fresh database at the code's version.
		other := anotherURL(t, dbURL)
		s, err := OpenStore(context.Background(), other, nil)
		if err != nil {
			t.Fatal(err)
		}
		wantVersions(t, s.db, schemaMigrations, codeVersion)
		odb, _ := openTestDB(t, other)
		for table, cols := range map[string]string{
			"friend_requests": "from_id,to_id,created_ms",
			"blocks":          "user_id,blocked_id,created_ms",
		} {
			if got := strings.Join(columns(t, odb, d, table), ","); got != cols {
				t.Errorf("%s: %s, want %s", table, got, cols)
			}
		}
		for table, col := range map[string]string{"users": "deleted", "topics": "closed"} {
			if !slices.Contains(columns(t, odb, d, table), col) {
				t.Errorf("%s has no %s", table, col)
			}
		}
		s.Close()
	})
}

// TestMigrateNewerRefused: a database newer than the code, or from other
// code, is refused with a clear error and left as it was.
func TestMigrateNewerRefused(t *testing.T) {
	forEachStore(t, func(t *testing.T, dbURL string) {
		openTestStore(t, dbURL, withMigrations(migrationV2(), migrationV3())).Close()
		snapshot := dumpAll(t, dbURL)
		refused := func(list []migration, want string) {
			t.Helper()
			err := tryOpenStore(dbURL, list)
			if err == nil || err.Error() != want {
				t.Fatalf("got %v, want %q", err, want)
			}
			if dumpAll(t, dbURL) != snapshot {
				t.Fatal("the refused start changed the database")
			}
		}
		v := codeVersion
		refused(withMigrations(migrationV2()), fmt.Sprintf("the database is at schema version %d; this server knows up to %d: upgrade the server", v+2, v+1))
		refused(schemaMigrations, fmt.Sprintf("the database is at schema version %d; this server knows up to %d: upgrade the server", v+2, v))
		var tooNew *schemaTooNewError
		if err := tryOpenStore(dbURL, schemaMigrations); !errors.As(err, &tooNew) || tooNew.version != v+2 || tooNew.known != v {
			t.Fatalf("errors.As: %v", err)
		}
		// The same migrationV2 under another name: other code.
		other := migrationV2()
		other.name = "test: something else"
		refused(withMigrations(other, migrationV3()), fmt.Sprintf(`the database's schema version %d is "test: read marks and devices", this server's is "test: something else": they come from different code; refusing to guess`, v+1))
		// A newer server's migration under way (MySQL) is newer too.
		db, _ := openTestDB(t, dbURL)
		if _, err := db.Exec(`INSERT INTO schema_migrations (version, name, applied_ms, steps_done, in_doubt) VALUES (?, 'test: newer', NULL, 1, 1)`, v+3); err != nil {
			t.Fatal(err)
		}
		snapshot = dumpAll(t, dbURL)
		refused(withMigrations(migrationV2(), migrationV3()), fmt.Sprintf("the database is at schema version %d (being applied); this server knows up to %d: upgrade the server", v+3, v+2))
	})
}

// TestMigrateFailHalfway: a migration that fails after some of its steps.
// SQLite rolls it all back; MySQL keeps the steps done, and the next start
// resumes after them, running none twice.
func TestMigrateFailHalfway(t *testing.T) {
	forEachStore(t, func(t *testing.T, dbURL string) {
		createLikeRelease(t, dbURL)
		fillV1(t, dbURL)
		db, d := openTestDB(t, dbURL)
		before := dumpV1(t, db)
		v := codeVersion
		var fail atomic.Bool
		fail.Store(true)
		list := withMigrations(migrationHalfway(&fail))
		err := tryOpenStore(dbURL, list)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("schema migration %d (test: fails halfway), step 5 of 5: injected failure", v+1)) {
			t.Fatalf("open: %v", err)
		}
		t.Logf("failed start: %v", err)
		st := state(t, db)
		if d == &sqliteDialect {
			// Rolled back: version 1 (recognised and recorded in a
			// transaction of its own) and the code's (each in its own),
			// none of the failed one.
			wantVersions(t, db, list, v)
			if slices.Contains(columns(t, db, d, "users"), "nick") || slices.Contains(tableNames(t, db, d), "halfway_runs") {
				t.Fatal("the failed migration left changes behind")
			}
		} else {
			// Four steps done and recorded, the fn not.
			if len(st) != v+1 || !st[v-1].applied || st[v].applied || st[v].stepsDone != 4 || st[v].inDoubt {
				t.Fatalf("schema_migrations after the failure: %+v", st)
			}
			if n := count(t, db, `SELECT SUM(n) FROM halfway_runs`); n != 1 {
				t.Fatalf("halfway_runs %d, want 1", n)
			}
			// A server knowing only the code's versions does not take it either.
			var tooNew *schemaTooNewError
			if err := tryOpenStore(dbURL, schemaMigrations); !errors.As(err, &tooNew) || !tooNew.partial {
				t.Fatalf("open with version 1 only: %v", err)
			}
		}
		fail.Store(false)
		openTestStore(t, dbURL, list)
		wantVersions(t, db, list, v+1)
		if n := count(t, db, `SELECT SUM(n) FROM halfway_runs`); n != 11 {
			t.Fatalf("halfway_runs %d, want 11: a step ran twice or not at all", n)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM users WHERE nick IS NULL OR nick <> name`); n != 0 {
			t.Fatalf("%d users without nick", n)
		}
		after := dumpV1(t, db)
		for _, tb := range v1Tables {
			if !slices.Equal(before[tb.name], after[tb.name]) {
				t.Errorf("%s changed", tb.name)
			}
		}
	})
}

// TestMigrateMySQLInDoubt: a crash between a DDL statement and its record
// (simulated: the statement's effect there, the record not). With in_doubt
// set the next start takes the "duplicate column" error as done; without
// it, the error is an error.
func TestMigrateMySQLInDoubt(t *testing.T) {
	for _, doubt := range []bool{true, false} {
		t.Run(fmt.Sprint("in_doubt=", doubt), func(t *testing.T) {
			dbURL := mysqlURL(t)
			openTestStore(t, dbURL, schemaMigrations).Close()
			db, _ := openTestDB(t, dbURL)
			var fail atomic.Bool
			list := withMigrations(migrationHalfway(&fail))
			v := codeVersion
			if _, err := db.Exec(`INSERT INTO schema_migrations (version, name, applied_ms, steps_done, in_doubt) VALUES (?, ?, NULL, 0, ?)`, v+1, list[v].name, doubt); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(splitStatements(list[v].mysql)[0]); err != nil {
				t.Fatal(err)
			}
			err := tryOpenStore(dbURL, list)
			if !doubt {
				if err == nil || !strings.Contains(err.Error(), "step 1 of 5") || mysqlErrno(err) != 1060 {
					t.Fatalf("a duplicate column not in doubt: %v", err)
				}
				if st := state(t, db); st[v].applied || st[v].stepsDone != 0 || st[v].inDoubt {
					t.Fatalf("schema_migrations after the error: %+v", st)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			wantVersions(t, db, list, v+1)
			if n := count(t, db, `SELECT SUM(n) FROM halfway_runs`); n != 11 {
				t.Fatalf("halfway_runs %d, want 11", n)
			}
		})
	}
}

// TestMigrateConcurrent: several stores opening one database at once (the
// nodes of a cluster on MySQL; processes on one SQLite file) all succeed,
// and each migration runs once.
func TestMigrateConcurrent(t *testing.T) {
	forEachStore(t, func(t *testing.T, dbURL string) {
		for _, release := range []bool{false, true} {
			t.Run(map[bool]string{false: "fresh", true: "release"}[release], func(t *testing.T) {
				testMigrateConcurrent(t, anotherURL(t, dbURL), release)
			})
		}
	})
}

func testMigrateConcurrent(t *testing.T, dbURL string, release bool) {
	if release {
		createLikeRelease(t, dbURL)
		fillV1(t, dbURL)
	}
	var runs atomic.Int32
	slow := migrationV3()
	slow.version, slow.name = codeVersion+1, "test: slow"
	fn := func(ctx context.Context, tx sqlTx) error {
		runs.Add(1)
		time.Sleep(300 * time.Millisecond)
		_, err := tx.ExecContext(ctx, `INSERT INTO test_blocks (user_id, blocked_id) SELECT id, id FROM users`)
		return err
	}
	slow.mysqlFn, slow.sqliteFn = fn, fn
	list := withMigrations(slow)
	const nodes = 4
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range nodes {
		wg.Go(func() { errs[i] = tryOpenStore(dbURL, list) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("store %d: %v", i, err)
		}
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("the slow migration ran %d times", n)
	}
	db, _ := openTestDB(t, dbURL)
	wantVersions(t, db, list, len(list))
	if n, users := count(t, db, `SELECT COUNT(*) FROM test_blocks`), count(t, db, `SELECT COUNT(*) FROM users`); n != users {
		t.Fatalf("%d blocks rows for %d users", n, users)
	}
	t.Logf("%d stores opened in %v", nodes, time.Since(start).Round(time.Millisecond))
}

// TestMigrateNothingToDo: a database already current costs one read: no
// write, no lock (it opens while another process holds the write lock or
// the migration lock), well under a millisecond.
func TestMigrateNothingToDo(t *testing.T) {
	forEachStore(t, func(t *testing.T, dbURL string) {
		list := withMigrations(migrationV2())
		openTestStore(t, dbURL, list).Close()
		snapshot := dumpAll(t, dbURL)
		ctx := context.Background()
		db, d := openTestDB(t, dbURL)
		const n = 200
		start := time.Now()
		for range n {
			if err := migrate(ctx, dbURL, db, d, list); err != nil {
				t.Fatal(err)
			}
		}
		perCheck := time.Since(start) / n
		start = time.Now()
		for range 20 {
			if err := tryOpenStore(dbURL, list); err != nil {
				t.Fatal(err)
			}
		}
		perOpen := time.Since(start) / 20
		t.Logf("version check on a current database: %v; whole OpenStore: %v", perCheck, perOpen)
		if dumpAll(t, dbURL) != snapshot {
			t.Fatal("a start with nothing to do changed the database")
		}

		// Someone else holds the lock a migration would take.
		hold, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer hold.Close()
		if d == &sqliteDialect {
			_, err = hold.ExecContext(ctx, `BEGIN IMMEDIATE`)
			defer hold.ExecContext(ctx, `ROLLBACK`)
		} else {
			var dbName string
			hold.QueryRowContext(ctx, `SELECT DATABASE()`).Scan(&dbName)
			var got int
			err = hold.QueryRowContext(ctx, `SELECT GET_LOCK(?, 0)`, dbName+".chat_migrate").Scan(&got)
			if got != 1 {
				t.Fatalf("GET_LOCK: %d", got)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		start = time.Now()
		if err := tryOpenStore(dbURL, list); err != nil {
			t.Fatalf("open while the lock is held: %v", err)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("open while the lock is held took %v: it waited", took)
		}
		// A start with work to do waits for the lock, as long as its
		// context allows, and says why it gave up.
		tctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err = openStore(tctx, dbURL, nil, withMigrations(migrationV2(), migrationV3()))
		want := "schema migration lock"
		if d == &sqliteDialect {
			want = "waiting for the database's write lock"
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("open needing the held lock: %v, want %q", err, want)
		}
		t.Logf("gave up: %v", err)
	})
}

// TestMigrateForeignTables: a database without schema_migrations holding
// some of version 1's tables, or one of them with other columns, was not
// written by this server: refused, untouched.
func TestMigrateForeignTables(t *testing.T) {
	forEachStore(t, func(t *testing.T, dbURL string) {
		db, _ := openTestDB(t, dbURL)
		for _, q := range []string{
			`CREATE TABLE users (id INTEGER NOT NULL PRIMARY KEY, name VARCHAR(32) NOT NULL)`,
			`CREATE TABLE friends (user_id INTEGER NOT NULL, friend_id INTEGER NOT NULL, created_ms INTEGER NOT NULL)`,
		} {
			if _, err := db.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		snapshot := dumpAll(t, dbURL)
		err := tryOpenStore(dbURL, schemaMigrations)
		if err == nil || !strings.Contains(err.Error(), "the database has the chat's tables users, friends but not topics, members, messages, acks, and no schema_migrations") {
			t.Fatalf("some tables: %v", err)
		}
		if dumpAll(t, dbURL) != snapshot {
			t.Fatal("the refused start changed the database")
		}
		for _, q := range []string{
			`CREATE TABLE topics (id INTEGER, kind INTEGER, pair_lo INTEGER, pair_hi INTEGER, name TEXT, descr TEXT, creator_id INTEGER, last_seq INTEGER, created_ms INTEGER)`,
			`CREATE TABLE members (topic_id INTEGER, user_id INTEGER, role INTEGER, acked_seq INTEGER, joined_ms INTEGER)`,
			`CREATE TABLE messages (id INTEGER, topic_id INTEGER, seq INTEGER, sender_id INTEGER, to_user INTEGER, cid TEXT, body TEXT, ts_ms INTEGER)`,
			`CREATE TABLE acks (user_id INTEGER, topic_id INTEGER, seq INTEGER)`,
		} {
			if _, err := db.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		snapshot = dumpAll(t, dbURL)
		err = tryOpenStore(dbURL, schemaMigrations)
		if err == nil || !strings.Contains(err.Error(), "the database has a table users without the columns of schema version 1") {
			t.Fatalf("a users table of other columns: %v", err)
		}
		t.Logf("refused: %v", err)
		if dumpAll(t, dbURL) != snapshot {
			t.Fatal("the refused start changed the database")
		}
	})
}

// TestMigrateListChecked: a list that is not 1, 2, 3... with names and
// work in both dialects is a programming error, caught before anything runs.
func TestMigrateListChecked(t *testing.T) {
	v3 := migrationV3()
	noSQLite := migrationV2()
	noSQLite.sqlite = "-- nothing\n"
	noName := migrationV2()
	noName.name = ""
	for _, tc := range []struct {
		list []migration
		want string
	}{
		{nil, "the list is empty"},
		{withMigrations(v3), fmt.Sprintf("entry %d has version %d, want %d", codeVersion, codeVersion+2, codeVersion+1)},
		{withMigrations(noSQLite), "nothing to do on SQLite"},
		{withMigrations(noName), "the name must be"},
	} {
		if err := checkMigrations(tc.list); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want %q", err, tc.want)
		}
	}
	if err := checkMigrations(withMigrations(migrationV2(), v3)); err != nil {
		t.Fatal(err)
	}
	if got := splitStatements("-- a comment\nCREATE TABLE a (x INT);\n\nCREATE TABLE b (\n  y INT -- why\n);\n-- end\n"); len(got) != 2 || got[1] != "CREATE TABLE b (\n  y INT -- why\n)" {
		t.Fatalf("splitStatements: %q", got)
	}
}

// TestMigrateSQLiteRebuild: sqliteRebuild changes a table SQLite's ALTER
// TABLE cannot, keeps its rows and indexes, and keeps AUTOINCREMENT's
// promise: an id of a deleted newest row is not given again, whether rows
// are left or none.
func TestMigrateSQLiteRebuild(t *testing.T) {
	// On version 1's tables alone: the rebuild restates version 1's.
	dbURL := sqliteURL(t)
	s := openTestStore(t, dbURL, schemaMigrations[:1])
	ctx := context.Background()
	var ids []int64
	for i := range 3 {
		u, err := s.CreateUser(ctx, fmt.Sprint("user", i), []byte("h"))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.ID)
	}
	// Groups in version 1's columns: the Store's CreateGroup needs later ones.
	newGroup := func(db *sql.DB, name string) int64 {
		t.Helper()
		res, err := db.Exec(`INSERT INTO topics (kind, name, descr, creator_id, last_seq, created_ms) VALUES (?, ?, '', ?, 0, ?)`,
			topicGroup, name, ids[0], nowMS())
		if err != nil {
			t.Fatal(err)
		}
		id, err := res.LastInsertId()
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	g := newGroup(s.db, "gone")
	for _, q := range []string{`DELETE FROM users WHERE id = 3`, `DELETE FROM topics`, `DELETE FROM members`} {
		if _, err := s.db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	rebuild := migration{
		version: 2,
		name:    "test: rebuild users and topics",
		mysql:   "DO 0;\n",
		sqliteFn: func(ctx context.Context, tx sqlTx) error {
			err := sqliteRebuild(ctx, tx, "users", `CREATE TABLE users_new (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  name          TEXT NOT NULL UNIQUE CHECK (length(name) <= 32),
  password_hash BLOB NOT NULL,
  created_ms    INTEGER NOT NULL
)`, `INSERT INTO users_new (id, name, password_hash, created_ms) SELECT id, name, password_hash, created_ms FROM users`,
				`CREATE INDEX users_created ON users (created_ms)`)
			if err != nil {
				return err
			}
			// Version 1's topics (schema_sqlite.sql) restated on purpose, with
			// a CHECK added: a rebuild gives the whole new definition, and a
			// migration's text is frozen, never derived from a schema file.
			return sqliteRebuild(ctx, tx, "topics", `CREATE TABLE topics_new (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  kind       INTEGER NOT NULL CHECK (kind IN (1, 2)),
  pair_lo    INTEGER NULL,
  pair_hi    INTEGER NULL,
  name       TEXT NULL,
  descr      TEXT NULL,
  creator_id INTEGER NULL,
  last_seq   INTEGER NOT NULL DEFAULT 0,
  created_ms INTEGER NOT NULL,
  UNIQUE (pair_lo, pair_hi)
)`, `INSERT INTO topics_new SELECT * FROM topics`)
		},
	}
	list := []migration{schemaMigrations[0], rebuild}
	s = openTestStore(t, dbURL, list)
	wantVersions(t, s.db, list, 2)
	if got := dumpRows(t, s.db, `SELECT id, name FROM users`); !slices.Equal(got, []string{`"1"|"user0"`, `"2"|"user1"`}) {
		t.Fatalf("users after the rebuild: %q", got)
	}
	if n := count(t, s.db, `SELECT COUNT(*) FROM sqlite_master WHERE name IN ('users_created', 'users_new', 'topics_new')`); n != 1 {
		t.Fatalf("after the rebuild: the index missing or a _new table left (%d)", n)
	}
	u, err := s.CreateUser(ctx, "user3", []byte("h"))
	if err != nil || u.ID != 4 {
		t.Fatalf("a user after the rebuild: id %d (%v), want 4: an id given twice", u.ID, err)
	}
	if _, err := s.CreateUser(ctx, strings.Repeat("x", 33), []byte("h")); err == nil {
		t.Fatal("the new CHECK is not there")
	}
	if g2 := newGroup(s.db, "new"); g2 <= g {
		t.Fatalf("a group after the rebuild of an empty topics: id %d, want above %d", g2, g)
	}
}
