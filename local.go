package main

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// localWriter is the store batch's write path for a database in this
// process (SQLite). There a statement costs no round trip, so the batched
// statements MySQL needs (their text different in every batch, parsed anew
// each time: parsing cost more than running them) give way to fixed-shape
// statements, prepared once and run once per topic and per row. Single-row
// writes also need no statement journal, which multi-row ones wrote page by
// page.
type localWriter struct {
	db *sql.DB

	mu    sync.Mutex // guards stmts
	stmts map[string]*sql.Stmt
}

const (
	localTopicState   = `SELECT last_seq, closed FROM topics WHERE id = ?`
	localTopicAdvance = `UPDATE topics SET last_seq = ? WHERE id = ?`
	localInsert       = `INSERT INTO messages (topic_id, seq, sender_id, to_user, cid, body, ts_ms) VALUES (?,?,?,?,?,?,?)`
)

func newLocalWriter(db *sql.DB) *localWriter {
	return &localWriter{db: db, stmts: map[string]*sql.Stmt{}}
}

// stmt returns q prepared on tx's connection: database/sql keeps one
// prepared copy per connection of the pool.
func (w *localWriter) stmt(ctx context.Context, tx *sql.Tx, q string) (*sql.Stmt, error) {
	w.mu.Lock()
	st := w.stmts[q]
	w.mu.Unlock()
	if st == nil {
		var err error
		if st, err = w.db.PrepareContext(ctx, q); err != nil {
			return nil, err
		}
		w.mu.Lock()
		if had := w.stmts[q]; had != nil {
			st.Close()
			st = had
		} else {
			w.stmts[q] = st
		}
		w.mu.Unlock()
	}
	return tx.StmtContext(ctx, st), nil
}

func (w *localWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, st := range w.stmts {
		st.Close()
	}
}

// asTx is the *sql.Tx under a SQLite transaction.
func asTx(tx sqlTx) (*sql.Tx, error) {
	t, ok := tx.(*sql.Tx)
	if !ok {
		return nil, fmt.Errorf("local write in a %T", tx)
	}
	return t, nil
}

// quick is ctx without its end: a statement of the batch, in process, runs
// in microseconds, and the driver would start a goroutine per statement to
// watch a context that can end. The transaction still ends with ctx.
func quick(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// counters reads the topics' counters and closed flags; the transaction
// (BEGIN IMMEDIATE) holds the database's write lock already.
func (w *localWriter) counters(ctx context.Context, tx sqlTx, topics []int64) (last map[int64]int64, closed map[int64]bool, err error) {
	t, err := asTx(tx)
	if err != nil {
		return nil, nil, err
	}
	st, err := w.stmt(ctx, t, localTopicState)
	if err != nil {
		return nil, nil, err
	}
	defer st.Close()
	last = make(map[int64]int64, len(topics))
	for _, id := range topics {
		var seq int64
		var isClosed bool
		err := st.QueryRowContext(quick(ctx), id).Scan(&seq, &isClosed)
		if err == sql.ErrNoRows {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		last[id] = seq
		if isClosed {
			if closed == nil {
				closed = map[int64]bool{}
			}
			closed[id] = true
		}
	}
	return last, closed, nil
}

// insert writes the batch's rows, each id from its insert, and the topics'
// new counters.
func (w *localWriter) insert(ctx context.Context, tx sqlTx, items []*chatItem, topics []int64, last map[int64]int64) error {
	t, err := asTx(tx)
	if err != nil {
		return err
	}
	ins, err := w.stmt(ctx, t, localInsert)
	if err != nil {
		return err
	}
	defer ins.Close()
	for _, it := range items {
		res, err := ins.ExecContext(quick(ctx), insertArgs(it)...)
		if err != nil {
			return err
		}
		if it.msg.ID, err = res.LastInsertId(); err != nil {
			return err
		}
	}
	adv, err := w.stmt(ctx, t, localTopicAdvance)
	if err != nil {
		return err
	}
	defer adv.Close()
	for _, id := range topics {
		if _, err := adv.ExecContext(quick(ctx), last[id], id); err != nil {
			return err
		}
	}
	return nil
}
