package main

import (
	"context"
	"sync"
)

// directory caches what never changes once it exists: user names (users
// are never renamed or deleted) and private topics of pairs. It saves a
// database round trip on every chat. Groups are not cached: delete_group
// ends one, and the other nodes of a cluster would not know.
type directory struct {
	store *Store
	users sync.Map // int64 -> string
	pairs sync.Map // [2]int64 -> int64 topic
}

func (d *directory) rememberUser(u User) { d.users.Store(u.ID, u.Name) }

// user returns the user with id, or ErrNoSuchUser.
func (d *directory) user(ctx context.Context, id int64) (User, error) {
	if id <= 0 {
		return User{}, ErrNoSuchUser
	}
	if name, ok := d.users.Load(id); ok {
		return User{ID: id, Name: name.(string)}, nil
	}
	a, err := d.store.Account(ctx, "", id)
	if err != nil {
		return User{}, err
	}
	d.rememberUser(a.User)
	return a.User, nil
}

func pairKey(a, b int64) [2]int64 { return [2]int64{min(a, b), max(a, b)} }

// pairTopic returns the private topic of a and b, creating it if needed.
func (d *directory) pairTopic(ctx context.Context, a, b int64) (int64, error) {
	if t, ok := d.pairs.Load(pairKey(a, b)); ok {
		return t.(int64), nil
	}
	t, err := d.store.PairTopic(ctx, a, b, true)
	if err != nil {
		return 0, err
	}
	d.pairs.Store(pairKey(a, b), t)
	return t, nil
}

// existingPairTopic is pairTopic without creating: 0 if they never talked.
func (d *directory) existingPairTopic(ctx context.Context, a, b int64) (int64, error) {
	if t, ok := d.pairs.Load(pairKey(a, b)); ok {
		return t.(int64), nil
	}
	t, err := d.store.PairTopic(ctx, a, b, false)
	if err != nil || t == 0 {
		return 0, err
	}
	d.pairs.Store(pairKey(a, b), t)
	return t, nil
}

// groupExists asks the store every time: it answers only requests about a
// group the session is not in (checkMember), which are errors anyway.
func (d *directory) groupExists(ctx context.Context, g int64) (bool, error) {
	if g <= 0 {
		return false, nil
	}
	return d.store.GroupExists(ctx, g)
}
