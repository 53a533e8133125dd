package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Applying migrations: SQLite in one transaction each, MySQL a statement at
// a time under a lock, and the SQLite table rebuild (see migrate.go).

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

// insertMigration adds a migration's row to schema_migrations: version,
// name, applied_ms (NULL while under way), steps_done.
const insertMigration = `INSERT INTO schema_migrations (version, name, applied_ms, steps_done, in_doubt) VALUES (?, ?, ?, ?, 0)`

func recordSQLite(ctx context.Context, tx *sql.Tx, m migration, steps int) error {
	_, err := tx.ExecContext(ctx, insertMigration, m.version, m.name, nowMS(), steps)
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
			if _, err := conn.ExecContext(ctx, insertMigration, m.version, m.name, nowMS(), len(m.steps(d))); err != nil {
				return fmt.Errorf("schema migration 1 (%s): record: %w", m.name, err)
			}
			current = 1
		}
	}
	for _, m := range list[current:] {
		from, doubt := 0, false
		if n := len(st); n > 0 && st[n-1].version == m.version { // under way
			from, doubt = st[n-1].stepsDone, st[n-1].inDoubt
		} else if _, err := conn.ExecContext(ctx, insertMigration, m.version, m.name, nil, 0); err != nil {
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
