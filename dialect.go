package main

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dialect is every difference between the two stores, in one place. The
// queries elsewhere are plain SQL that both understand.
type dialect struct {
	name         string
	insertIgnore string // INSERT that skips rows colliding with a unique key
	forUpdate    string // suffix locking the selected rows until commit
	singleWriter bool   // one write transaction at a time (Store.writeGate)
	// byPrimary follows a table name in a locking read or an update by
	// primary key. On a small table MySQL's optimizer prefers a full scan,
	// which locks every row it passes: concurrent batches then deadlocked.
	byPrimary string
	// multiStatements: several statements may go in one round trip.
	multiStatements bool
	// duplicate reports a unique-key violation.
	duplicate func(error) bool
	// transient reports an error a retry of the same transaction may cure
	// (deadlock, lock wait, busy).
	transient func(error) bool
	// down reports an error that means the database cannot be reached.
	down func(error) bool
}

var mysqlDialect = dialect{
	name:         "mysql",
	insertIgnore: "INSERT IGNORE",
	forUpdate:    " FOR UPDATE",
	byPrimary:    " FORCE INDEX (PRIMARY)",
	// With InterpolateParams every argument is quoted by the driver (for
	// the session's sql_mode, NO_BACKSLASH_ESCAPES included, over utf8mb4),
	// and every statement's text is constants and placeholders, never
	// input: joined statements are as safe as single ones (docs/design.md,
	// "Security of the MySQL options"; dialect_test.go).
	multiStatements: true,
	duplicate:       func(err error) bool { return mysqlErrno(err) == 1062 },
	transient: func(err error) bool {
		n := mysqlErrno(err)
		return n == 1213 || n == 1205 // deadlock, lock wait timeout
	},
	down: func(err error) bool {
		switch mysqlErrno(err) {
		case 1040, 1053, 1077, 1152, 1158, 1159, 1160, 1161, 1205, 1213, 2002, 2003, 2006, 2013:
			return true
		}
		return errors.Is(err, mysql.ErrInvalidConn) || netDown(err)
	},
}

var sqliteDialect = dialect{
	name:         "sqlite",
	insertIgnore: "INSERT OR IGNORE",
	forUpdate:    "", // writers are serialised by BEGIN IMMEDIATE
	singleWriter: true,
	duplicate: func(err error) bool {
		c := sqliteCode(err)
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	},
	transient: func(err error) bool {
		c := sqliteCode(err) & 0xff
		return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
	},
	down: func(err error) bool {
		switch sqliteCode(err) & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL,
			sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT:
			return true
		}
		return netDown(err)
	},
}

func init() {
	// The driver logs some failures itself before returning them; the
	// server reports the returned error once, where it is handled.
	mysql.SetLogger(log.New(io.Discard, "", 0))
}

func mysqlErrno(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

func sqliteCode(err error) int {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code()
	}
	return 0
}

// netDown covers what both drivers return when the connection or the
// deadline is gone.
func netDown(err error) bool {
	var ne net.Error
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, context.Canceled) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, sql.ErrConnDone) || errors.As(err, &ne)
}

// openDB opens "sqlite:PATH" or "mysql:DSN" and returns the pool with its
// dialect. For MySQL a missing database is created, so that a fresh server
// needs nothing but credentials.
func openDB(ctx context.Context, dbURL string) (*sql.DB, *dialect, error) {
	kind, dsn, err := splitDBURL(dbURL)
	if err != nil {
		return nil, nil, err
	}
	if kind == "sqlite" {
		return openSQLite(ctx, dsn)
	}
	return openMySQL(ctx, dsn)
}

func openSQLite(ctx context.Context, path string) (*sql.DB, *dialect, error) {
	// WAL lets readers run beside the one writer; synchronous=FULL makes a
	// commit survive power loss, not just a crash of this process; IMMEDIATE
	// transactions take the write lock up front, so they wait (busy_timeout)
	// instead of failing at their first write. Checkpoints run in the
	// background (localWriter.checkpoints), not inside a commit.
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "foreign_keys(0)", "temp_store(MEMORY)", "wal_autocheckpoint(0)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(0)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return db, &sqliteDialect, nil
}

func openMySQL(ctx context.Context, dsn string) (*sql.DB, *dialect, error) {
	cfg, err := mysqlConfig(dsn)
	if err != nil {
		return nil, nil, err
	}
	db, err := openMySQLPool(ctx, cfg)
	var me *mysql.MySQLError
	if errors.As(err, &me) && me.Number == 1049 && cfg.DBName != "" { // unknown database
		if err := createMySQLDatabase(ctx, cfg); err != nil {
			return nil, nil, err
		}
		db, err = openMySQLPool(ctx, cfg)
	}
	if err != nil {
		return nil, nil, err
	}
	return db, &mysqlDialect, nil
}

// mysqlConfig parses a DSN and sets what the server needs of it.
func mysqlConfig(dsn string) (*mysql.Config, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("bad mysql DSN: %w", err)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 3 * time.Second
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = 10 * time.Second
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	cfg.ParseTime = false
	cfg.InterpolateParams = true  // one round trip per statement, not prepare+execute+close
	cfg.MultiStatements = true    // Store.execAll and queryEach join statements
	cfg.Collation = "utf8mb4_bin" // sets the connection's character set to utf8mb4 too, whatever the DSN says
	return cfg, nil
}

// openMySQLLongConn opens one connection to the MySQL database of dbURL
// without the pool's read timeout, for statements that may rightly wait
// longer (the schema migration lock, an ALTER TABLE of a big table); ctx
// bounds them instead. done closes it.
func openMySQLLongConn(ctx context.Context, dbURL string) (conn *sql.Conn, done func(), err error) {
	_, dsn, err := splitDBURL(dbURL)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := mysqlConfig(dsn)
	if err != nil {
		return nil, nil, err
	}
	cfg.ReadTimeout = 0
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("mysql: %w", err)
	}
	db := sql.OpenDB(connector)
	conn, err = db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("mysql %s: %w", cfg.Addr, err)
	}
	return conn, func() { conn.Close(); db.Close() }, nil
}

func openMySQLPool(ctx context.Context, cfg *mysql.Config) (*sql.DB, error) {
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("mysql: %w", err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	db.SetConnMaxLifetime(30 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("mysql %s: %w", cfg.Addr, err)
	}
	return db, nil
}

func createMySQLDatabase(ctx context.Context, cfg *mysql.Config) error {
	admin := cfg.Clone()
	admin.DBName = ""
	db, err := openMySQLPool(ctx, admin)
	if err != nil {
		return err
	}
	defer db.Close()
	name := strings.ReplaceAll(cfg.DBName, "`", "``")
	_, err = db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS `"+name+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
	if err != nil {
		return fmt.Errorf("create database %s: %w", cfg.DBName, err)
	}
	return nil
}
