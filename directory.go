package main

import (
	"context"
	"sync"
)

// directory caches what does not change once it exists: user names (users
// are never renamed) and private topics of pairs. It saves a database round
// trip on every chat. Groups are not cached: delete_group ends one, and the
// other nodes of a cluster would not know.
//
// A deleted account is the one change to a user, and final. The node that
// deletes it, and a node whose chat to it the store refused, remember it
// as deleted here; any other node still finds it live, and the store
// refuses what must be refused: a chat (its pair topic is closed, read
// where the storing transaction locks the topic anyway), a new pair topic
// and add_friend (they lock the user's row). whois, decline_friend,
// remove_friend, block and unblock read the user from the store.
type directory struct {
	store *Store
	users sync.Map // int64 -> dirUser
	pairs sync.Map // [2]int64 -> int64 topic
}

type dirUser struct {
	name    string
	deleted bool
}

// rememberUser never overwrites: a name does not change, and an entry
// marked deleted must stay so.
func (d *directory) rememberUser(u User) { d.users.LoadOrStore(u.ID, dirUser{name: u.Name}) }

// markDeleted records that the account id is deleted.
func (d *directory) markDeleted(id int64, name string) {
	if name == "" {
		if v, ok := d.users.Load(id); ok {
			name = v.(dirUser).name
		}
	}
	d.users.Store(id, dirUser{name: name, deleted: true})
}

// cached returns the live user with id if the directory holds it.
func (d *directory) cached(id int64) (User, bool) {
	v, ok := d.users.Load(id)
	if !ok || v.(dirUser).deleted {
		return User{}, false
	}
	return User{ID: id, Name: v.(dirUser).name}, true
}

// user returns the live user with id, or ErrNoSuchUser (for a deleted
// account too, once this node knows).
func (d *directory) user(ctx context.Context, id int64) (User, error) {
	u, deleted, err := d.anyUser(ctx, id)
	if err == nil && deleted {
		return User{}, ErrNoSuchUser
	}
	return u, err
}

// anyUser returns the user with id, deleted or not (history with a deleted
// account still works), or ErrNoSuchUser if there never was one.
func (d *directory) anyUser(ctx context.Context, id int64) (u User, deleted bool, err error) {
	if id <= 0 {
		return User{}, false, ErrNoSuchUser
	}
	if v, ok := d.users.Load(id); ok {
		e := v.(dirUser)
		return User{ID: id, Name: e.name}, e.deleted, nil
	}
	a, err := d.store.Account(ctx, "", id)
	if err != nil {
		return User{}, false, err
	}
	if a.Deleted {
		d.markDeleted(a.ID, a.Name)
	} else {
		d.rememberUser(a.User)
	}
	return a.User, a.Deleted, nil
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
