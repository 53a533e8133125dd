package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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
	local     *localWriter // SQLite's write path of store batches; nil on MySQL
}

// OpenStore connects to dbURL ("sqlite:PATH" or "mysql:DSN") and brings
// its schema up to date (migrate.go).
func OpenStore(ctx context.Context, dbURL string, m *Metrics) (*Store, error) {
	return openStore(ctx, dbURL, m, schemaMigrations)
}

// openStore is OpenStore with the list of migrations to apply.
func openStore(ctx context.Context, dbURL string, m *Metrics, migrations []migration) (*Store, error) {
	db, d, err := openDB(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	if err := migrate(ctx, dbURL, db, d, migrations); err != nil {
		db.Close()
		return nil, err
	}
	return newStore(db, d, m), nil
}

// newStore is a Store over an open, migrated database.
func newStore(db *sql.DB, d *dialect, m *Metrics) *Store {
	s := &Store{db: db, d: d, metrics: m, recent: newRecentMessages(recentSize)}
	if d.singleWriter {
		s.writeGate = make(chan struct{}, 1)
	}
	if !d.multiStatements {
		s.local = newLocalWriter(db)
	}
	return s
}

func (s *Store) Close() error {
	if s.local != nil {
		s.local.close()
	}
	return s.db.Close()
}

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
