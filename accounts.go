package main

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Accounts and friendships in the store (requests, blocks and deletions:
// people.go).

// Account is a user with its password hash, for login.
type Account struct {
	User
	Hash []byte
	// Deleted: the account was deleted (delete_account). Its row stays, so
	// that its name is never given again and its messages keep a sender;
	// to everything else it is no user.
	Deleted bool
}

// CreateUser stores a new user; ErrNameTaken when the name exists.
func (s *Store) CreateUser(ctx context.Context, name string, hash []byte) (User, error) {
	defer s.observe("create_user", time.Now())
	release, err := s.enterWrite(ctx)
	if err != nil {
		return User{}, s.wrap("create user", err)
	}
	res, err := s.db.ExecContext(ctx,
		`INSERT INTO users (name, password_hash, created_ms) VALUES (?, ?, ?)`, name, hash, nowMS())
	release()
	if err != nil {
		if s.d.duplicate(err) {
			return User{}, ErrNameTaken
		}
		return User{}, s.wrap("create user", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return User{}, s.wrap("create user", err)
	}
	return User{ID: id, Name: name}, nil
}

// Account looks a user up by name (when name is not empty) or id, deleted
// accounts included (Deleted tells).
func (s *Store) Account(ctx context.Context, name string, id int64) (Account, error) {
	defer s.observe("account", time.Now())
	var row *sql.Row
	if name != "" {
		row = s.db.QueryRowContext(ctx, `SELECT id, name, password_hash, deleted FROM users WHERE name = ?`, name)
	} else {
		row = s.db.QueryRowContext(ctx, `SELECT id, name, password_hash, deleted FROM users WHERE id = ?`, id)
	}
	var a Account
	err := row.Scan(&a.ID, &a.Name, &a.Hash, &a.Deleted)
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, ErrNoSuchUser
	}
	return a, s.wrap("account", err)
}

// Friends lists u's friends by id.
func (s *Store) Friends(ctx context.Context, u int64) ([]User, error) {
	defer s.observe("friends", time.Now())
	rows, err := s.db.QueryContext(ctx, `SELECT u.id, u.name FROM friends f JOIN users u ON u.id = f.friend_id
		WHERE f.user_id = ? ORDER BY u.id`, u)
	if err != nil {
		return nil, s.wrap("friends", err)
	}
	defer rows.Close()
	out := []User{}
	for rows.Next() {
		var f User
		if err := rows.Scan(&f.ID, &f.Name); err != nil {
			return nil, s.wrap("friends", err)
		}
		out = append(out, f)
	}
	return out, s.wrap("friends", rows.Err())
}
