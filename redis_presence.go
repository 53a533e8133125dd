package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gomodule/redigo/redis"
)

// Presence in Redis: who is online on which node (see redis.go for the keys).

var claimScript = redis.NewScript(2, `
local prev = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
if prev then
  local pnode = string.match(prev, '^([^\31]*)')
  if pnode ~= ARGV[3] then redis.call('SREM', ARGV[5] .. pnode, ARGV[1]) end
  if redis.call('EXISTS', ARGV[4] .. pnode) == 1 then return prev end
end
return false`)

var releaseScript = redis.NewScript(2, `
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('SREM', KEYS[2], ARGV[1])
  return 1
end
return 0`)

// announceScript re-claims a local session after Redis lost track of it,
// unless a live node holds the user now.
var announceScript = redis.NewScript(2, `
local prev = redis.call('HGET', KEYS[1], ARGV[1])
if prev and prev ~= ARGV[2] then
  local pnode = string.match(prev, '^([^\31]*)')
  if pnode ~= ARGV[3] and redis.call('EXISTS', ARGV[4] .. pnode) == 1 then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
return 1`)

// reapScript removes what a node left: its claims and its group counts. It
// returns the claims it removed.
var reapScript = redis.NewScript(3, `
local gone = {}
for _, u in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local v = redis.call('HGET', KEYS[1], u)
  if v and string.match(v, '^([^\31]*)') == ARGV[1] then
    redis.call('HDEL', KEYS[1], u)
    table.insert(gone, u .. '\31' .. v)
  end
end
redis.call('DEL', KEYS[2])
for _, g in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  redis.call('HDEL', ARGV[2] .. g, ARGV[1])
end
redis.call('DEL', KEYS[3])
if ARGV[3] == '1' then redis.call('SREM', ARGV[4], ARGV[1]) end
return gone`)

func (rc *redisCluster) claimValue(u User, sess SessionRef) string {
	return sess.Node + sep + strconv.FormatUint(sess.ID, 10) + sep + u.Name
}

func parseClaim(v string) (node string, id uint64, name string) {
	parts := strings.SplitN(v, sep, 3)
	if len(parts) != 3 {
		return "", 0, ""
	}
	id, _ = strconv.ParseUint(parts[1], 10, 64)
	return parts[0], id, parts[2]
}

// Claim takes the user's presence. While our subscription is down it
// refuses: a login now could not be told apart from one elsewhere.
func (rc *redisCluster) Claim(ctx context.Context, u User, sess SessionRef) (*SessionRef, error) {
	if !rc.subscribed.Load() {
		return nil, fmt.Errorf("redis: not subscribed: %w", ErrUnavailable)
	}
	var prev *SessionRef
	err := rc.do(ctx, func(c redis.Conn) error {
		v, err := redis.String(claimScript.Do(c, rc.key("where"), rc.key("nusers", rc.node),
			u.ID, rc.claimValue(u, sess), rc.node, rc.key("hb", ""), rc.key("nusers", "")))
		if errors.Is(err, redis.ErrNil) {
			return nil
		}
		if err != nil {
			return err
		}
		node, id, _ := parseClaim(v)
		prev = &SessionRef{Node: node, ID: id}
		return nil
	})
	return prev, err
}

func (rc *redisCluster) Release(ctx context.Context, u User, sess SessionRef) (bool, error) {
	var released bool
	err := rc.do(ctx, func(c redis.Conn) error {
		n, err := redis.Int(releaseScript.Do(c, rc.key("where"), rc.key("nusers", rc.node),
			u.ID, rc.claimValue(u, sess)))
		released = n == 1
		return err
	})
	return released, err
}

func (rc *redisCluster) isAlive(node string) bool {
	return node != "" && !(*rc.dead.Load())[node]
}

func (rc *redisCluster) Online(ctx context.Context, limit int) ([]User, int, error) {
	var all map[string]string
	err := rc.do(ctx, func(c redis.Conn) error {
		var err error
		all, err = redis.StringMap(c.Do("HGETALL", rc.key("where")))
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	users := make([]User, 0, len(all))
	for k, v := range all {
		node, _, name := parseClaim(v)
		id, err := strconv.ParseInt(k, 10, 64)
		if err == nil && rc.isAlive(node) {
			users = append(users, User{ID: id, Name: name})
		}
	}
	users, total := firstByID(users, limit)
	return users, total, nil
}

func (rc *redisCluster) AreOnline(ctx context.Context, ids []int64) (map[int64]bool, error) {
	out := make(map[int64]bool, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	err := rc.do(ctx, func(c redis.Conn) error {
		args := redis.Args{rc.key("where")}
		for _, id := range ids {
			args = append(args, id)
		}
		vals, err := redis.Strings(c.Do("HMGET", args...))
		if err != nil {
			return err
		}
		for i, v := range vals {
			if node, _, _ := parseClaim(v); v != "" && rc.isAlive(node) {
				out[ids[i]] = true
			}
		}
		return nil
	})
	return out, err
}
