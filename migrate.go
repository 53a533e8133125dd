package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
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
}

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

// migrateSQLite applies each migration in a transaction of its own, begun
// IMMEDIATE: it holds the database's write lock from the first read of
// schema_migrations to the commit, so another process opening the same file
// waits and then finds the work done.
func migrateSQLite(ctx context.Context, db *sql.DB, list []migration) error {
	for {
		done, err := sqliteMigrateNext(ctx, db, list)
		if err != nil || done {
			return err
		}
	}
}

// sqliteMigrateNext applies the next migration (or records a database of
// version 1 from before migrations) in one transaction; done when the
// database is current.
func sqliteMigrateNext(ctx context.Context, db *sql.DB, list []migration) (done bool, err error) {
	tx, err := beginImmediate(ctx, db)
	if err != nil {
		return false, fmt.Errorf("schema migration: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	d := &sqliteDialect
	st, exists, err := loadSchemaState(ctx, tx, d)
	if err != nil {
		return false, fmt.Errorf("schema migration: %w", err)
	}
	current, err := st.check(list)
	if err != nil {
		return false, err
	}
	if current == len(list) {
		return true, tx.Commit()
	}
	if n := len(st); n > 0 && !st[n-1].applied {
		return false, fmt.Errorf("schema_migrations holds version %d half-applied, which SQLite never records: it was changed by hand; refusing to guess", st[n-1].version)
	}
	if len(st) == 0 {
		v, err := detectV1(ctx, tx, d)
		if err != nil {
			return false, err
		}
		if !exists {
			if _, err := tx.ExecContext(ctx, sqliteMigrationsTable); err != nil {
				return false, fmt.Errorf("schema migration: create schema_migrations: %w", err)
			}
		}
		if v == 1 { // from before migrations: recorded, not run
			return false, recordSQLite(ctx, tx, list[0], len(list[0].steps(d)))
		}
	}
	m := list[current]
	steps := m.steps(d)
	for i, step := range steps {
		if err := step(ctx, tx); err != nil {
			return false, fmt.Errorf("schema migration %d (%s), step %d of %d: %w", m.version, m.name, i+1, len(steps), err)
		}
	}
	return false, recordSQLite(ctx, tx, m, len(steps))
}

func recordSQLite(ctx context.Context, tx *sql.Tx, m migration, steps int) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_ms, steps_done, in_doubt) VALUES (?, ?, ?, ?, 0)`,
		m.version, m.name, nowMS(), steps)
	if err == nil {
		err = tx.Commit()
	}
	if err != nil {
		return fmt.Errorf("schema migration %d (%s): record: %w", m.version, m.name, err)
	}
	return nil
}

// beginImmediate begins a transaction holding SQLite's write lock (the
// store's DSN makes every transaction IMMEDIATE), waiting past
// busy_timeout for as long as ctx allows: another process may be migrating.
func beginImmediate(ctx context.Context, db *sql.DB) (*sql.Tx, error) {
	for {
		tx, err := db.BeginTx(ctx, nil)
		if err == nil {
			return tx, nil
		}
		if !sqliteDialect.transient(err) && ctx.Err() == nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the database's write lock (another process holds it, writing or migrating): %w", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// migrateMySQL holds the database's migration lock (GET_LOCK) around the
// whole check-and-apply, so of several nodes starting at once one migrates
// and the others wait, then find the work done. Every step is recorded as
// it completes (see the rules at schemaMigrations), so a start after a
// crash or a failure resumes where the last one stopped.
func migrateMySQL(ctx context.Context, dbURL string, list []migration) error {
	conn, closeConn, err := openMySQLLongConn(ctx, dbURL)
	if err != nil {
		return err
	}
	defer closeConn()
	unlock, err := mysqlMigrationLock(ctx, conn)
	if err != nil {
		return err
	}
	defer unlock()
	d := &mysqlDialect
	st, exists, err := loadSchemaState(ctx, conn, d)
	if err != nil {
		return fmt.Errorf("schema migration: %w", err)
	}
	current, err := st.check(list)
	if err != nil || current == len(list) {
		return err
	}
	if len(st) == 0 {
		v, err := detectV1(ctx, conn, d)
		if err != nil {
			return err
		}
		if !exists {
			if _, err := conn.ExecContext(ctx, mysqlMigrationsTable); err != nil {
				return fmt.Errorf("schema migration: create schema_migrations: %w", err)
			}
		}
		if v == 1 {
			m := list[0]
			if _, err := conn.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_ms, steps_done, in_doubt) VALUES (?, ?, ?, ?, 0)`,
				m.version, m.name, nowMS(), len(m.steps(d))); err != nil {
				return fmt.Errorf("schema migration 1 (%s): record: %w", m.name, err)
			}
			current = 1
		}
	}
	for _, m := range list[current:] {
		from, doubt := 0, false
		if n := len(st); n > 0 && st[n-1].version == m.version { // under way
			from, doubt = st[n-1].stepsDone, st[n-1].inDoubt
		} else if _, err := conn.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_ms, steps_done, in_doubt) VALUES (?, ?, NULL, 0, 0)`,
			m.version, m.name); err != nil {
			return fmt.Errorf("schema migration %d (%s): record: %w", m.version, m.name, err)
		}
		steps := m.steps(d)
		for i := from; i < len(steps); i++ {
			if err := mysqlStep(ctx, conn, m.version, i, steps[i], doubt && i == from); err != nil {
				return fmt.Errorf("schema migration %d (%s), step %d of %d: %w", m.version, m.name, i+1, len(steps), err)
			}
		}
		if _, err := conn.ExecContext(ctx, `UPDATE schema_migrations SET applied_ms = ? WHERE version = ?`, nowMS(), m.version); err != nil {
			return fmt.Errorf("schema migration %d (%s): record: %w", m.version, m.name, err)
		}
	}
	return nil
}

// mysqlStep runs step i of migration version and records it. The record
// and in_doubt share a transaction with the step: a data step commits with
// its record, or neither does; a DDL step commits in_doubt before it runs
// (MySQL's implicit commit) and the record after, so a crash in between
// leaves in_doubt set. wasInDoubt: the last start stopped with this step in
// doubt, and an error saying it took effect counts as done.
func mysqlStep(ctx context.Context, conn *sql.Conn, version, i int, step func(context.Context, sqlTx) error, wasInDoubt bool) error {
	if _, err := conn.ExecContext(ctx, startTx); err != nil {
		return err
	}
	_, err := conn.ExecContext(ctx, `UPDATE schema_migrations SET in_doubt = 1 WHERE version = ?`, version)
	if err == nil {
		err = step(ctx, conn)
	}
	if err != nil && !(wasInDoubt && mysqlAlreadyDone(err)) {
		conn.ExecContext(ctx, "ROLLBACK")
		// The statement failed whole; if this does not get through, the
		// next start treats it as in doubt, which is safe too.
		conn.ExecContext(ctx, `UPDATE schema_migrations SET in_doubt = 0 WHERE version = ?`, version)
		return err
	}
	if _, err := conn.ExecContext(ctx, `UPDATE schema_migrations SET steps_done = ?, in_doubt = 0 WHERE version = ?`, i+1, version); err != nil {
		conn.ExecContext(ctx, "ROLLBACK")
		return err
	}
	_, err = conn.ExecContext(ctx, "COMMIT")
	return err
}

// mysqlAlreadyDone reports an error of a DDL statement run a second time:
// what it creates exists, or what it removes is gone.
func mysqlAlreadyDone(err error) bool {
	switch mysqlErrno(err) {
	case 1050, // table already exists
		1051, // unknown table (DROP TABLE)
		1054, // unknown column (a rename or drop done)
		1060, // duplicate column name
		1061, // duplicate key name
		1068, // multiple primary key defined
		1091, // can't DROP; check that it exists
		1146, // table doesn't exist (RENAME TABLE done)
		1826: // duplicate foreign key constraint name
		return true
	}
	return false
}

// mysqlMigrationLock takes the named lock '<database>.chat_migrate',
// waiting as long as ctx allows; unlock releases it.
func mysqlMigrationLock(ctx context.Context, conn *sql.Conn) (unlock func(), err error) {
	var db string
	if err := conn.QueryRowContext(ctx, `SELECT DATABASE()`).Scan(&db); err != nil {
		return nil, fmt.Errorf("schema migration lock: %w", err)
	}
	name := db + ".chat_migrate"
	if len(name) > 64 { // MySQL's limit for a lock name
		sum := sha256.Sum256([]byte(db))
		name = "chat_migrate." + hex.EncodeToString(sum[:16])
	}
	wait := int64(3600)
	if deadline, ok := ctx.Deadline(); ok {
		// In whole seconds, a little short of the deadline, so that GET_LOCK
		// answers "timed out" before the context cuts the connection.
		wait = max(int64(time.Until(deadline)/time.Second), 0)
	}
	// Ours for as long as this session lives: also while a DDL statement
	// waits for other sessions' transactions on its table.
	if _, err := conn.ExecContext(ctx, `SET SESSION lock_wait_timeout = ?`, max(wait, 1)); err != nil {
		return nil, fmt.Errorf("schema migration lock: %w", err)
	}
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, `SELECT GET_LOCK(?, ?)`, name, wait).Scan(&got); err != nil {
		return nil, fmt.Errorf("waiting for the schema migration lock %s: %w", name, err)
	}
	if got.Int64 != 1 {
		var holder sql.NullInt64
		conn.QueryRowContext(ctx, `SELECT IS_USED_LOCK(?)`, name).Scan(&holder)
		return nil, fmt.Errorf("waited %ds for the schema migration lock %s, held by MySQL connection %d: another node is migrating the database (or is stuck); try again", wait, name, holder.Int64)
	}
	return func() { conn.ExecContext(context.WithoutCancel(ctx), `DO RELEASE_LOCK(?)`, name) }, nil
}

// sqliteRebuild replaces a SQLite table by a new definition, for the
// changes SQLite's ALTER TABLE cannot make
// (https://sqlite.org/lang_altertable.html#otheralter), inside a
// migration's transaction. create makes the new table under the name
// table+"_new"; fill copies the rows (INSERT INTO table_new (...) SELECT
// ... FROM table); indexes are the table's indexes' CREATE INDEX statements,
// made again after (the old ones go with the old table). The AUTOINCREMENT
// counter is carried over, so no id is ever given twice. Foreign keys are
// off on the store's connections, and the schema has none.
func sqliteRebuild(ctx context.Context, tx sqlTx, table, create, fill string, indexes ...string) error {
	var seq sql.NullInt64
	err := tx.QueryRowContext(ctx, `SELECT seq FROM sqlite_sequence WHERE name = ?`, table).Scan(&seq)
	if err != nil && !errors.Is(err, sql.ErrNoRows) && !strings.Contains(err.Error(), "no such table") {
		return fmt.Errorf("rebuild %s: %w", table, err)
	}
	stmts := append([]string{create, fill, `DROP TABLE ` + table, `ALTER TABLE ` + table + `_new RENAME TO ` + table}, indexes...)
	for _, q := range stmts {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("rebuild %s: %w", table, err)
		}
	}
	if !seq.Valid {
		return nil
	}
	res, err := tx.ExecContext(ctx, `UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = ?`, seq.Int64, table)
	if err != nil {
		return fmt.Errorf("rebuild %s: %w", table, err)
	}
	if n, _ := res.RowsAffected(); n == 0 && strings.Contains(strings.ToUpper(create), "AUTOINCREMENT") {
		// The copy was empty: the new table has no counter yet.
		if _, err := tx.ExecContext(ctx, `INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)`, table, seq.Int64); err != nil {
			return fmt.Errorf("rebuild %s: %w", table, err)
		}
	}
	return nil
}
