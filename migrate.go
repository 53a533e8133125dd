package main

import (
	"context"
	"database/sql"
	_ "embed"
	"errors"
	"fmt"
	"strings"
)

// Schema migrations: the schema is a list of numbered migrations, applied in
// order at start and recorded in schema_migrations. A database is at version
// N when migrations 1..N are recorded as applied. The list is data, below;
// the machinery that applies it follows.

//go:embed schema.sql
var mysqlSchemaV1 string

//go:embed schema_sqlite.sql
var sqliteSchemaV1 string

// migration is one numbered change of the schema, in both dialects.
type migration struct {
	version int
	name    string
	// mysql and sqlite are the statements, each ending with ";" at the end
	// of a line; whole-line "--" comments are dropped.
	mysql, sqlite string
	// mysqlFn and sqliteFn, when set, run after their dialect's statements:
	// for what SQL cannot say (a SQLite table rebuild: sqliteRebuild; a
	// backfill computed in Go).
	mysqlFn, sqliteFn func(ctx context.Context, tx sqlTx) error
}

// schemaMigrations is the schema's history, oldest first: version N is
// schemaMigrations[N-1]. Rules for adding one (docs/design.md, "Schema
// migrations"):
//
//   - Append. Never edit, renumber, rename or remove a migration once
//     released: databases have recorded it by version and name, and a MySQL
//     migration's progress by statement number. Version 1 is schema.sql and
//     schema_sqlite.sql as the first release created them; those two files
//     are frozen (TestMigrateV1IsRelease checks them).
//   - Give the MySQL and the SQLite text side by side in the one entry.
//   - SQLite runs a migration in one transaction: all of it or nothing.
//   - MySQL commits every DDL statement on its own, so a migration runs a
//     statement at a time, each recorded in schema_migrations (steps_done)
//     as it completes; a data statement (INSERT, UPDATE, DELETE) commits
//     together with its record. A crash between a DDL statement and its
//     record leaves that one statement in doubt (in_doubt): the next start
//     runs it again and takes "already exists" or "already gone" (duplicate
//     column or key, table exists, cannot drop, unknown column or table)
//     as done. Hence:
//   - One schema change per MySQL statement. One ALTER TABLE may carry
//     several clauses (MySQL applies it whole or not at all); never mix DDL
//     and data in one statement (CREATE TABLE ... SELECT); put a backfill in
//     a statement of its own after the DDL it needs.
//   - A fn runs in a transaction with its record, like a data statement;
//     DDL in a MySQL fn commits on its own, so such a fn must check before
//     it changes (it may run twice).
//   - During a rolling restart the older nodes run on the new schema: add
//     tables, indexes, and columns that are NULL or have a default; drop or
//     rename only in a later release, once no running code uses the old.
//   - SQLite's ALTER TABLE adds, renames and drops columns but cannot change
//     a column or a constraint: rebuild the table in sqliteFn with
//     sqliteRebuild, which keeps the AUTOINCREMENT counter.
//   - No ";" at the end of a line inside a statement (no trigger bodies).
//   - Migrations run at start, inside the start timeout (15 s, NewServer):
//     one that rewrites a big table needs a longer one.
//   - Test it in migrate_test.go: a database of the previous version, with
//     data, upgraded on both stores, every row checked (TestMigrateUpgradeV1).
var schemaMigrations = []migration{
	{version: 1, name: "initial", mysql: mysqlSchemaV1, sqlite: sqliteSchemaV1},
	// Edited and deleted messages: edited_ms is the last edit's time (NULL
	// until one); a deleted message keeps its row as a tombstone, its body
	// blanked. One ALTER on MySQL: applied whole or not at all.
	{version: 2, name: "message edits and deletes",
		mysql: `ALTER TABLE messages ADD COLUMN edited_ms BIGINT NULL, ADD COLUMN deleted TINYINT NOT NULL DEFAULT 0;
`,
		sqlite: `ALTER TABLE messages ADD COLUMN edited_ms INTEGER NULL;
ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
`},
	// Read marks (conversations.go): a member has read the topic up to
	// read_seq. A database from before them counts what its users had
	// received as read, not their whole history as unread.
	{version: 3, name: "read marks",
		mysql: `ALTER TABLE members ADD COLUMN read_seq BIGINT NOT NULL DEFAULT 0;
UPDATE members SET read_seq = acked_seq;
`,
		sqlite: `ALTER TABLE members ADD COLUMN read_seq INTEGER NOT NULL DEFAULT 0;
UPDATE members SET read_seq = acked_seq;
`},
	{version: 4, name: "private groups, invitations and kicks",
		// topics.private: 1 for a private group. topics.name_fold: a
		// group's name case-folded (foldName), what find_groups searches,
		// NULL for private conversations. invitations: who may join a
		// private group, or come back after a kick, until they join.
		// kicks: who was removed from a group, until the creator or an
		// admin invites them again.
		mysql: `ALTER TABLE topics ADD COLUMN private TINYINT NOT NULL DEFAULT 0,
  ADD COLUMN name_fold VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL;
CREATE INDEX topics_find ON topics (kind, private, id);
CREATE TABLE invitations (
  topic_id   BIGINT NOT NULL,
  user_id    BIGINT NOT NULL,
  by_id      BIGINT NOT NULL,
  created_ms BIGINT NOT NULL,
  PRIMARY KEY (topic_id, user_id)
) ENGINE=InnoDB;
CREATE TABLE kicks (
  topic_id  BIGINT NOT NULL,
  user_id   BIGINT NOT NULL,
  by_id     BIGINT NOT NULL,
  kicked_ms BIGINT NOT NULL,
  PRIMARY KEY (topic_id, user_id)
) ENGINE=InnoDB;
`,
		sqlite: `ALTER TABLE topics ADD COLUMN private INTEGER NOT NULL DEFAULT 0;
ALTER TABLE topics ADD COLUMN name_fold TEXT NULL;
CREATE INDEX topics_find ON topics (kind, private, id);
CREATE TABLE invitations (
  topic_id   INTEGER NOT NULL,
  user_id    INTEGER NOT NULL,
  by_id      INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  PRIMARY KEY (topic_id, user_id)
) WITHOUT ROWID;
CREATE TABLE kicks (
  topic_id  INTEGER NOT NULL,
  user_id   INTEGER NOT NULL,
  by_id     INTEGER NOT NULL,
  kicked_ms INTEGER NOT NULL,
  PRIMARY KEY (topic_id, user_id)
) WITHOUT ROWID;
`,
		mysqlFn: backfillNameFold, sqliteFn: backfillNameFold},
	{version: 5, name: "friend requests, blocks, deleted accounts", mysql: mysqlPeopleV2, sqlite: sqlitePeopleV2},
}

// Friend requests, blocks and deleted accounts (people.go). A request is a
// row from the asker to the asked, dropped when answered; a block is a row
// from the blocker to the blocked. A deleted account keeps its users row
// (its name is never given again, its messages keep their sender) with
// deleted = 1 and no password; its private topics get closed = 1, which the
// chat's storing transaction reads as it locks the topic: a chat to a
// deleted account is refused on every node, whatever a node's caches hold.
const (
	mysqlPeopleV2 = `CREATE TABLE IF NOT EXISTS friend_requests (
  from_id    BIGINT NOT NULL,
  to_id      BIGINT NOT NULL,
  created_ms BIGINT NOT NULL,
  PRIMARY KEY (from_id, to_id),
  KEY friend_requests_to (to_id, from_id)
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS blocks (
  user_id    BIGINT NOT NULL,
  blocked_id BIGINT NOT NULL,
  created_ms BIGINT NOT NULL,
  PRIMARY KEY (user_id, blocked_id),
  KEY blocks_blocked (blocked_id, user_id)
) ENGINE=InnoDB;
ALTER TABLE users ADD COLUMN deleted TINYINT NOT NULL DEFAULT 0;
ALTER TABLE topics ADD COLUMN closed TINYINT NOT NULL DEFAULT 0;
`
	sqlitePeopleV2 = `CREATE TABLE IF NOT EXISTS friend_requests (
  from_id    INTEGER NOT NULL,
  to_id      INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  PRIMARY KEY (from_id, to_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS friend_requests_to ON friend_requests (to_id, from_id);
CREATE TABLE IF NOT EXISTS blocks (
  user_id    INTEGER NOT NULL,
  blocked_id INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  PRIMARY KEY (user_id, blocked_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS blocks_blocked ON blocks (blocked_id, user_id);
ALTER TABLE users ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE topics ADD COLUMN closed INTEGER NOT NULL DEFAULT 0;
`
)

// v1Tables are version 1's tables and columns. A database with all of
// them and no schema_migrations was written by a server from before
// migrations: it is at version 1.
var v1Tables = []struct{ name, cols string }{
	{"users", "id, name, password_hash, created_ms"},
	{"friends", "user_id, friend_id, created_ms"},
	{"topics", "id, kind, pair_lo, pair_hi, name, descr, creator_id, last_seq, created_ms"},
	{"members", "topic_id, user_id, role, acked_seq, joined_ms"},
	{"messages", "id, topic_id, seq, sender_id, to_user, cid, body, ts_ms"},
	{"acks", "user_id, topic_id, seq"},
}

// schema_migrations has a row per migration applied or being applied.
// applied_ms is NULL while a MySQL migration is under way; steps_done counts
// its statements (and fn) done; in_doubt is 1 while the next one may or may
// not have taken effect. It is not itself migrated: keep it as it is.
const (
	mysqlMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version    INT NOT NULL PRIMARY KEY,
  name       VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  applied_ms BIGINT NULL,
  steps_done INT NOT NULL DEFAULT 0,
  in_doubt   TINYINT NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`
	sqliteMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version    INTEGER PRIMARY KEY,
  name       TEXT NOT NULL,
  applied_ms INTEGER NULL,
  steps_done INTEGER NOT NULL DEFAULT 0,
  in_doubt   INTEGER NOT NULL DEFAULT 0
)`
)

// schemaTooNewError: the database was migrated by a newer server.
type schemaTooNewError struct {
	version, known int
	partial        bool // the newest migration is under way, not done
}

func (e *schemaTooNewError) Error() string {
	under := ""
	if e.partial {
		under = " (being applied)"
	}
	return fmt.Sprintf("the database is at schema version %d%s; this server knows up to %d: upgrade the server", e.version, under, e.known)
}

// migrate brings the schema of the database up to the last migration of
// list. It never goes down: a database newer than list is refused.
func migrate(ctx context.Context, dbURL string, db *sql.DB, d *dialect, list []migration) error {
	if err := checkMigrations(list); err != nil {
		return err
	}
	// A database already current costs one read and takes no lock.
	if st, err := readSchemaState(ctx, db); err == nil {
		current, err := st.check(list)
		if err != nil {
			return err
		}
		if current == len(list) {
			return nil
		}
	}
	if d == &mysqlDialect {
		return migrateMySQL(ctx, dbURL, list)
	}
	return migrateSQLite(ctx, db, list)
}

// checkMigrations checks the list itself: versions 1, 2, 3... with a name
// and something to do in each dialect.
func checkMigrations(list []migration) error {
	if len(list) == 0 {
		return errors.New("schema migrations: the list is empty")
	}
	for i, m := range list {
		switch {
		case m.version != i+1:
			return fmt.Errorf("schema migrations: entry %d has version %d, want %d", i, m.version, i+1)
		case m.name == "" || len(m.name) > 128:
			return fmt.Errorf("schema migration %d: the name must be 1-128 bytes", m.version)
		case len(splitStatements(m.mysql)) == 0 && m.mysqlFn == nil:
			return fmt.Errorf("schema migration %d (%s): nothing to do on MySQL", m.version, m.name)
		case len(splitStatements(m.sqlite)) == 0 && m.sqliteFn == nil:
			return fmt.Errorf("schema migration %d (%s): nothing to do on SQLite", m.version, m.name)
		}
	}
	return nil
}

// appliedMigration is a row of schema_migrations.
type appliedMigration struct {
	version   int
	name      string
	applied   bool // applied_ms is set: done
	stepsDone int
	inDoubt   bool
}

// schemaState is schema_migrations, by version.
type schemaState []appliedMigration

// readSchemaState reads schema_migrations; an error when it is missing.
func readSchemaState(ctx context.Context, q sqlTx) (schemaState, error) {
	var st schemaState
	err := queryRows(ctx, q, `SELECT version, name, applied_ms, steps_done, in_doubt FROM schema_migrations ORDER BY version`, nil,
		func(rows *sql.Rows) error {
			var r appliedMigration
			var applied sql.NullInt64
			var doubt int64
			if err := rows.Scan(&r.version, &r.name, &applied, &r.stepsDone, &doubt); err != nil {
				return err
			}
			r.applied, r.inDoubt = applied.Valid, doubt != 0
			st = append(st, r)
			return nil
		})
	return st, err
}

// check compares the database's migrations with the code's and returns the
// version the database is at. Anything it cannot explain is an error:
// never guess.
func (st schemaState) check(list []migration) (current int, err error) {
	if n := len(st); n > 0 && st[n-1].version > len(list) {
		last := st[n-1]
		return 0, &schemaTooNewError{version: last.version, known: len(list), partial: !last.applied}
	}
	for i, r := range st {
		switch {
		case r.version != i+1:
			return 0, fmt.Errorf("schema_migrations holds version %d where %d was due: it was changed by hand; refusing to guess", r.version, i+1)
		case r.name != list[i].name:
			return 0, fmt.Errorf("the database's schema version %d is %q, this server's is %q: they come from different code; refusing to guess", r.version, r.name, list[i].name)
		case !r.applied && i != len(st)-1:
			return 0, fmt.Errorf("schema_migrations holds version %d half-applied below version %d: it was changed by hand; refusing to guess", r.version, st[len(st)-1].version)
		case r.applied:
			current = r.version
		}
	}
	return current, nil
}

// tablesOf lists the tables of the database.
func tablesOf(ctx context.Context, q sqlTx, d *dialect) (map[string]bool, error) {
	query := `SELECT name FROM sqlite_master WHERE type = 'table'`
	if d == &mysqlDialect {
		query = `SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()`
	}
	tables := map[string]bool{}
	err := queryRows(ctx, q, query, nil, func(rows *sql.Rows) error {
		var name string
		err := rows.Scan(&name)
		tables[name] = true
		return err
	})
	return tables, err
}

// loadSchemaState reads schema_migrations, an empty state when it is missing.
func loadSchemaState(ctx context.Context, q sqlTx, d *dialect) (st schemaState, exists bool, err error) {
	tables, err := tablesOf(ctx, q, d)
	if err != nil || !tables["schema_migrations"] {
		return nil, false, err
	}
	st, err = readSchemaState(ctx, q)
	return st, true, err
}

// detectV1 looks at a database without recorded migrations: 0 when it holds
// none of version 1's tables, 1 when it holds all of them with their
// columns (a server from before migrations wrote it), an error otherwise.
func detectV1(ctx context.Context, q sqlTx, d *dialect) (int, error) {
	tables, err := tablesOf(ctx, q, d)
	if err != nil {
		return 0, err
	}
	var have, missing []string
	for _, t := range v1Tables {
		if tables[t.name] {
			have = append(have, t.name)
		} else {
			missing = append(missing, t.name)
		}
	}
	if len(have) == 0 {
		return 0, nil
	}
	if len(missing) > 0 {
		return 0, fmt.Errorf("the database has the chat's tables %s but not %s, and no schema_migrations: this server did not write it; refusing to guess",
			strings.Join(have, ", "), strings.Join(missing, ", "))
	}
	for _, t := range v1Tables {
		// Every column, and nothing read: an error names what is missing.
		if err := queryRows(ctx, q, `SELECT `+t.cols+` FROM `+t.name+` WHERE 1 = 0`, nil, func(*sql.Rows) error { return nil }); err != nil {
			return 0, fmt.Errorf("the database has a table %s without the columns of schema version 1 (%s), and no schema_migrations: this server did not write it; refusing to guess: %w",
				t.name, t.cols, err)
		}
	}
	return 1, nil
}

// splitStatements splits a migration's text into statements.
func splitStatements(text string) []string {
	var out []string
	for _, s := range strings.Split(stripComments(text)+"\n", ";\n") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func stripComments(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// steps are a migration's statements, then its fn, in a dialect.
func (m migration) steps(d *dialect) []func(ctx context.Context, tx sqlTx) error {
	text, fn := m.sqlite, m.sqliteFn
	if d == &mysqlDialect {
		text, fn = m.mysql, m.mysqlFn
	}
	var steps []func(context.Context, sqlTx) error
	for _, q := range splitStatements(text) {
		steps = append(steps, func(ctx context.Context, tx sqlTx) error {
			_, err := tx.ExecContext(ctx, q)
			return err
		})
	}
	if fn != nil {
		steps = append(steps, fn)
	}
	return steps
}
