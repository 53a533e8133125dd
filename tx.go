package main

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Transactions: retries, the SQLite write gate, and on MySQL the ways a
// transaction saves round trips. Each round trip is a wait for the
// database's thread to be scheduled, and on a busy 2-core machine those
// waits, not the work, were most of a store batch's time.

// sqlTx is what a transaction's statements run on: a *sql.Tx, or on MySQL
// a lazyTx.
type sqlTx interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// inTx runs fn in a transaction, retrying a few times when the database
// reports a deadlock or a busy lock.
func (s *Store) inTx(ctx context.Context, op string, fn func(sqlTx) error) error {
	defer s.observe(op, time.Now())
	var err error
	for attempt := 0; attempt < 4; attempt++ {
		err = s.tryTx(ctx, fn)
		if err == nil || !s.d.transient(err) || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond)
	}
	return s.wrap(op, err)
}

// enterWrite takes the write gate, if the store has one; release gives it back.
func (s *Store) enterWrite(ctx context.Context) (release func(), err error) {
	if s.writeGate == nil {
		return func() {}, nil
	}
	select {
	case s.writeGate <- struct{}{}:
		return func() { <-s.writeGate }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting to write: %w", ctx.Err())
	}
}

// lazyTx is a MySQL transaction on one connection whose START TRANSACTION
// rides with its first query, a round trip saved (multiStatements; the
// driver skips the empty first result). An Exec, whose result callers may
// read, starts the transaction on its own.
type lazyTx struct {
	conn  *sql.Conn
	begun bool
}

const startTx = "START TRANSACTION"

func (t *lazyTx) begin(ctx context.Context) error {
	if t.begun {
		return nil
	}
	t.begun = true
	_, err := t.conn.ExecContext(ctx, startTx)
	return err
}

func (t *lazyTx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if err := t.begin(ctx); err != nil {
		return nil, err
	}
	return t.conn.ExecContext(ctx, q, args...)
}

func (t *lazyTx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return t.conn.QueryContext(ctx, t.withBegin(q), args...)
}

func (t *lazyTx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return t.conn.QueryRowContext(ctx, t.withBegin(q), args...)
}

func (t *lazyTx) withBegin(q string) string {
	if t.begun {
		return q
	}
	t.begun = true
	return startTx + ";\n" + q
}

func (s *Store) tryTx(ctx context.Context, fn func(sqlTx) error) error {
	release, err := s.enterWrite(ctx)
	if err != nil {
		return err
	}
	defer release()
	if s.d.multiStatements {
		return s.tryLazyTx(ctx, fn)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		s.settleLocal(err)
		return err
	}
	err = tx.Commit()
	s.settleLocal(err)
	return err
}

// settleLocal tells the local writer, if any, how its transaction ended,
// while the write gate is still held: no other transaction may see its
// counters before they are right.
func (s *Store) settleLocal(err error) {
	if s.local == nil {
		return
	}
	if err != nil {
		s.local.failed()
	} else {
		s.local.committed()
	}
}

func (s *Store) tryLazyTx(ctx context.Context, fn func(sqlTx) error) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	t := &lazyTx{conn: conn}
	end := func(stmt string) error {
		if !t.begun {
			return nil
		}
		_, err := conn.ExecContext(ctx, stmt)
		if err != nil {
			// The session is in an unknown state: never hand it back to
			// the pool with a transaction open.
			conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		return err
	}
	if err := fn(t); err != nil {
		end("ROLLBACK")
		return err
	}
	return end("COMMIT")
}

func queryRows(ctx context.Context, tx sqlTx, q string, args []any, each func(*sql.Rows) error) error {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// stmt is one SQL statement and its arguments.
type stmt struct {
	q    string
	args []any
}

// execAll runs statements that return no rows. Where the dialect allows
// it (MySQL) they go in one round trip: a transaction's round trips, each a
// wait for the database's thread to be scheduled, were most of its time.
func (s *Store) execAll(ctx context.Context, tx sqlTx, stmts []stmt) error {
	if len(stmts) == 0 {
		return nil
	}
	if !s.d.multiStatements {
		for _, st := range stmts {
			if _, err := tx.ExecContext(ctx, st.q, st.args...); err != nil {
				return err
			}
		}
		return nil
	}
	q, args := joinStmts(stmts)
	// The driver reads every statement's result and returns the first error.
	_, err := tx.ExecContext(ctx, q, args...)
	return err
}

// queryEach runs statements and calls each with the index of the
// statement and its rows, for every row of every SELECT among them; in one
// round trip where the dialect allows it.
func (s *Store) queryEach(ctx context.Context, tx sqlTx, stmts []stmt, each func(i int, rows *sql.Rows) error) error {
	var selects []int
	for i, st := range stmts {
		if strings.HasPrefix(st.q, "SELECT") {
			selects = append(selects, i)
		}
	}
	if !s.d.multiStatements {
		for i, st := range stmts {
			var err error
			if strings.HasPrefix(st.q, "SELECT") {
				err = queryRows(ctx, tx, st.q, st.args, func(rows *sql.Rows) error { return each(i, rows) })
			} else {
				_, err = tx.ExecContext(ctx, st.q, st.args...)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	q, args := joinStmts(stmts)
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	// Results without columns (the other statements') may or may not be
	// shown, depending on the driver; the SELECTs' come in order.
	n := 0
	for {
		cols, err := rows.Columns()
		if err != nil {
			return err
		}
		if len(cols) > 0 {
			if n == len(selects) {
				return errors.New("multi-statement query: more results than SELECTs")
			}
			for rows.Next() {
				if err := each(selects[n], rows); err != nil {
					return err
				}
			}
			n++
		}
		if !rows.NextResultSet() {
			break
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if n != len(selects) {
		return fmt.Errorf("multi-statement query: %d results for %d SELECTs", n, len(selects))
	}
	return nil
}

func joinStmts(stmts []stmt) (string, []any) {
	var q strings.Builder
	var args []any
	for i, st := range stmts {
		if i > 0 {
			q.WriteString(";\n")
		}
		q.WriteString(st.q)
		args = append(args, st.args...)
	}
	return q.String(), args
}

func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?,", n-1) + "?"
}

// eachChunk calls fn with args in slices of at most size.
func eachChunk(args []any, size int, fn func([]any) error) error {
	for start := 0; start < len(args); start += size {
		if err := fn(args[start:min(start+size, len(args))]); err != nil {
			return err
		}
	}
	return nil
}
