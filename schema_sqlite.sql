-- SQLite twin of schema.sql (which explains the tables), version 1 of the
-- schema. Frozen like it: a change of the schema is a new migration in
-- migrate.go.
-- AUTOINCREMENT: ids are never reused, even after the newest row is gone.

CREATE TABLE IF NOT EXISTS users (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  name          TEXT NOT NULL UNIQUE,
  password_hash BLOB NOT NULL,
  created_ms    INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS friends (
  user_id    INTEGER NOT NULL,
  friend_id  INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  PRIMARY KEY (user_id, friend_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS topics (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  kind       INTEGER NOT NULL,
  pair_lo    INTEGER NULL,
  pair_hi    INTEGER NULL,
  name       TEXT NULL,
  descr      TEXT NULL,
  creator_id INTEGER NULL,
  last_seq   INTEGER NOT NULL DEFAULT 0,
  created_ms INTEGER NOT NULL,
  UNIQUE (pair_lo, pair_hi)
);

CREATE TABLE IF NOT EXISTS members (
  topic_id  INTEGER NOT NULL,
  user_id   INTEGER NOT NULL,
  role      INTEGER NOT NULL,
  acked_seq INTEGER NOT NULL,
  joined_ms INTEGER NOT NULL,
  PRIMARY KEY (topic_id, user_id)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS members_user ON members (user_id, topic_id);

CREATE TABLE IF NOT EXISTS messages (
  id        INTEGER PRIMARY KEY AUTOINCREMENT,
  topic_id  INTEGER NOT NULL,
  seq       INTEGER NOT NULL,
  sender_id INTEGER NOT NULL,
  to_user   INTEGER NULL,
  cid       BLOB NULL,
  body      TEXT NOT NULL,
  ts_ms     INTEGER NOT NULL,
  UNIQUE (topic_id, seq),
  UNIQUE (sender_id, cid)
);

CREATE TABLE IF NOT EXISTS acks (
  user_id  INTEGER NOT NULL,
  topic_id INTEGER NOT NULL,
  seq      INTEGER NOT NULL,
  PRIMARY KEY (user_id, topic_id, seq)
) WITHOUT ROWID;
