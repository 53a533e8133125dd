package main

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
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

	// seqs is each open topic's counter (topics.last_seq), read once. This
	// process is the database's only writer and the counters change only
	// in store batches, so the copy stays right; a topic closed or deleted
	// is forgotten inside that transaction, before a batch can use it. Only
	// transactions touch seqs and next, and the write gate runs one at a
	// time.
	seqs map[int64]int64
	next map[int64]int64 // this transaction's new counters, kept once it commits

	written   atomic.Bool // a transaction committed since the last checkpoint
	stop      chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once
}

const (
	localTopicState   = `SELECT last_seq, closed FROM topics WHERE id = ?`
	localTopicAdvance = `UPDATE topics SET last_seq = ? WHERE id = ?`
	localInsert       = `INSERT INTO messages (topic_id, seq, sender_id, to_user, cid, body, ts_ms) VALUES (?,?,?,?,?,?,?)`
)

// checkpointEvery is how often the WAL is copied into the database file.
// SQLite's own checkpoints ran inside the commit that crossed 1,000 pages
// of WAL, every ten store batches or so at window 1: 6% of the server's
// CPU, all of it on the store batch's critical path. A passive checkpoint
// from another goroutine runs beside the writer instead, and one every
// 100 ms writes a hot page (a counter's, an index's newest) once for many
// commits. The WAL stays under about 10 MB at 25,000 pages a second.
const checkpointEvery = 100 * time.Millisecond

func newLocalWriter(db *sql.DB) *localWriter {
	w := &localWriter{db: db, stmts: map[string]*sql.Stmt{}, seqs: map[int64]int64{}, stop: make(chan struct{}), stopped: make(chan struct{})}
	go w.checkpoints()
	return w
}

// checkpoints runs passive checkpoints until close, after writes only, so
// that an idle server stays idle. One that fails (the disk full, say) is
// simply tried again: the commits that need the disk report the trouble to
// their callers.
func (w *localWriter) checkpoints() {
	defer close(w.stopped)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			if w.written.Swap(false) {
				if _, err := w.db.Exec(`PRAGMA wal_checkpoint(PASSIVE)`); err != nil {
					w.written.Store(true)
				}
			}
		}
	}
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
	w.closeOnce.Do(func() { close(w.stop) })
	<-w.stopped
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

// counters returns the topics' counters and which are closed: from memory,
// or read once; the transaction (BEGIN IMMEDIATE) holds the database's
// write lock already.
func (w *localWriter) counters(ctx context.Context, tx sqlTx, topics []int64) (last map[int64]int64, closed map[int64]bool, err error) {
	w.next = nil
	last = make(map[int64]int64, len(topics))
	var st *sql.Stmt
	for _, id := range topics {
		if seq, ok := w.seqs[id]; ok {
			last[id] = seq
			continue
		}
		if st == nil {
			t, err := asTx(tx)
			if err != nil {
				return nil, nil, err
			}
			if st, err = w.stmt(ctx, t, localTopicState); err != nil {
				return nil, nil, err
			}
			defer st.Close()
		}
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

// committed keeps the counters of the transaction that just committed;
// failed drops them and everything remembered, in case the database was
// changed behind this process's back (another process on the same file).
func (w *localWriter) committed() {
	w.written.Store(true)
	for id, seq := range w.next {
		w.seqs[id] = seq
	}
	w.next = nil
}

func (w *localWriter) failed() {
	w.next = nil
	clear(w.seqs)
}

// forget drops topics closed or deleted by the running transaction.
func (w *localWriter) forget(topics ...int64) {
	for _, id := range topics {
		delete(w.seqs, id)
	}
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
	w.next = make(map[int64]int64, len(topics))
	for _, id := range topics {
		if _, err := adv.ExecContext(quick(ctx), last[id], id); err != nil {
			return err
		}
		w.next[id] = last[id]
	}
	return nil
}

// forgetTopics drops, inside the transaction that closes or deletes them,
// what the local writer remembers of topics.
func (s *Store) forgetTopics(topics ...int64) {
	if s.local != nil {
		s.local.forget(topics...)
	}
}
