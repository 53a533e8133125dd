package main

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"chat/internal/wire"
)

// TestSQLiteCheckpointsInBackground: SQLite's own checkpoints are off
// (wal_autocheckpoint 0), so without the local writer's checkpoints the WAL
// would hold every page ever written. With them it is copied into the
// database between write bursts and starts over, so it stays about one
// burst long however many bursts come.
func TestSQLiteCheckpointsInBackground(t *testing.T) {
	t.Parallel()
	url := sqliteURL(t)
	s := openTestStore(t, url, schemaMigrations)
	ctx := context.Background()
	if err := s.inTx(ctx, "test", func(tx sqlTx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE burst (b BLOB NOT NULL)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	const bursts, rows, rowSize = 12, 100, 4000 // about 400 KB of pages a burst
	row := []byte(strings.Repeat("x", rowSize))
	for range bursts {
		err := s.inTx(ctx, "test", func(tx sqlTx) error {
			for range rows {
				if _, err := tx.ExecContext(ctx, `INSERT INTO burst (b) VALUES (?)`, row); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * checkpointEvery)
	}
	fi, err := os.Stat(strings.TrimPrefix(url, "sqlite:") + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	written := int64(bursts * rows * rowSize)
	if fi.Size() > written/4 {
		t.Fatalf("WAL of %d bytes after %d bytes written in %d bursts: not checkpointed between them", fi.Size(), written, bursts)
	}
	t.Logf("WAL of %d bytes after %d bytes written", fi.Size(), written)
}

// TestStoreRefusesClosedPairAfterMessages: a pair whose counter is in use
// (SQLite keeps it in memory once a message is stored) refuses messages
// once delete_account closes it, whatever the store remembers.
func TestStoreRefusesClosedPairAfterMessages(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, db string) {
		s := openTestStore(t, db, schemaMigrations)
		ctx := t.Context()
		alice, err := s.CreateUser(ctx, "alice", []byte("h"))
		if err != nil {
			t.Fatal(err)
		}
		bob, err := s.CreateUser(ctx, "bob", []byte("h"))
		if err != nil {
			t.Fatal(err)
		}
		pair, err := s.PairTopic(ctx, alice.ID, bob.ID, true)
		if err != nil {
			t.Fatal(err)
		}
		chat := func(text string) *chatItem {
			it := &chatItem{msg: Message{Message: wire.Message{From: alice.ID, FromName: alice.Name, To: bob.ID, Text: text, TS: nowMS()}, Topic: pair}}
			s.StoreMessages(ctx, []*chatItem{it})
			return it
		}
		if it := chat("before"); it.err != nil || it.msg.Seq != 1 {
			t.Fatalf("a message before the delete: seq %d, %v", it.msg.Seq, it.err)
		}
		if _, err := s.DeleteAccount(ctx, bob.ID); err != nil {
			t.Fatal(err)
		}
		if it := chat("after"); !errors.Is(it.err, ErrNoSuchUser) {
			t.Fatalf("a message to the deleted bob: %v, want %v", it.err, ErrNoSuchUser)
		}
	})
}
