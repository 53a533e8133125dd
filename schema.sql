-- MySQL/MariaDB schema, version 1: migration 1 of migrate.go, the tables as
-- the first release created them. Frozen: never change a statement here (a
-- test checks them); a change of the schema is a new migration in
-- migrate.go. schema_sqlite.sql is its SQLite twin.
--
-- Every conversation is a topic: a group, or the private conversation of a
-- pair of users. A topic numbers its messages 1, 2, 3... with no gaps (seq),
-- assigned inside the storing transaction. Each member keeps acked_seq: every
-- message of the topic at or below it is acked (or the member's own). Acks
-- that arrive out of order wait in `acks` until the gap below them closes.
-- Pending for a user = messages above its marks, not its own, not in `acks`.

CREATE TABLE IF NOT EXISTS users (
  id            BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name          VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  password_hash VARBINARY(72) NOT NULL,
  created_ms    BIGINT NOT NULL,
  UNIQUE KEY users_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- A friendship is two rows, one each way.
CREATE TABLE IF NOT EXISTS friends (
  user_id    BIGINT NOT NULL,
  friend_id  BIGINT NOT NULL,
  created_ms BIGINT NOT NULL,
  PRIMARY KEY (user_id, friend_id)
) ENGINE=InnoDB;

-- kind 1: private (pair_lo < pair_hi are its two users); kind 2: group.
CREATE TABLE IF NOT EXISTS topics (
  id         BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  kind       TINYINT NOT NULL,
  pair_lo    BIGINT NULL,
  pair_hi    BIGINT NULL,
  name       VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
  descr      VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
  creator_id BIGINT NULL,
  last_seq   BIGINT NOT NULL DEFAULT 0,
  created_ms BIGINT NOT NULL,
  UNIQUE KEY topics_pair (pair_lo, pair_hi)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- role: 0 peer (private topic), 1 member, 2 creator.
CREATE TABLE IF NOT EXISTS members (
  topic_id   BIGINT NOT NULL,
  user_id    BIGINT NOT NULL,
  role       TINYINT NOT NULL,
  acked_seq  BIGINT NOT NULL,
  joined_ms  BIGINT NOT NULL,
  PRIMARY KEY (topic_id, user_id),
  KEY members_user (user_id, topic_id)
) ENGINE=InnoDB;

-- to_user is the recipient of a private message, NULL for a group message.
CREATE TABLE IF NOT EXISTS messages (
  id        BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  topic_id  BIGINT NOT NULL,
  seq       BIGINT NOT NULL,
  sender_id BIGINT NOT NULL,
  to_user   BIGINT NULL,
  cid       VARBINARY(64) NULL,
  body      TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  ts_ms     BIGINT NOT NULL,
  UNIQUE KEY messages_topic_seq (topic_id, seq),
  UNIQUE KEY messages_cid (sender_id, cid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Acks above a member's acked_seq, waiting for the gap below them to close.
CREATE TABLE IF NOT EXISTS acks (
  user_id  BIGINT NOT NULL,
  topic_id BIGINT NOT NULL,
  seq      BIGINT NOT NULL,
  PRIMARY KEY (user_id, topic_id, seq)
) ENGINE=InnoDB;
