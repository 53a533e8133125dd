package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/gomodule/redigo/redis"
)

// Presence in Redis: a user's sessions by device, and the nodes that hold
// them (see redis.go for the keys). The scripts keep P:where in step with
// the sessions hash: its value is the user's name and the nodes holding a
// session of the user, which is all that routing and online lists read.

// luaRewhere rewrites the user's P:where entry from the sessions hash
// skey, and returns the user's name (the one given, or the one there).
const luaRewhere = `
local function nodeOf(v) return string.match(v, '^([^\31]*)') end
local function rewhere(where, skey, uid, name)
  if not name or name == '' then
    local cur = redis.call('HGET', where, uid)
    name = cur and nodeOf(cur) or ''
  end
  local vals = redis.call('HVALS', skey)
  if #vals == 0 then
    redis.call('HDEL', where, uid)
    return name
  end
  local seen, parts = {}, {name}
  for _, v in ipairs(vals) do
    local n = nodeOf(v)
    if not seen[n] then
      seen[n] = true
      table.insert(parts, n)
    end
  end
  redis.call('HSET', where, uid, table.concat(parts, '\31'))
  return name
end
local function onNode(skey, node)
  for _, v in ipairs(redis.call('HVALS', skey)) do
    if nodeOf(v) == node then return true end
  end
  return false
end
`

// claimScript: KEYS where, sessions, nusers:NODE; ARGV user, device,
// value, node, heartbeat prefix, nusers prefix, name, max. It returns
// {-1} past max, else {live sessions on other devices, 1 if the device's
// older session is on a live node (0 if not), that session's value}.
var claimScript = redis.NewScript(3, luaRewhere+`
local prev = redis.call('HGET', KEYS[2], ARGV[2])
local others = 0
local all = redis.call('HGETALL', KEYS[2])
for i = 1, #all, 2 do
  if all[i] ~= ARGV[2] and redis.call('EXISTS', ARGV[5] .. nodeOf(all[i+1])) == 1 then
    others = others + 1
  end
end
if others >= tonumber(ARGV[8]) then return {-1} end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[1])
local live = 0
if prev then
  local pnode = nodeOf(prev)
  if pnode ~= ARGV[4] and not onNode(KEYS[2], pnode) then redis.call('SREM', ARGV[6] .. pnode, ARGV[1]) end
  if redis.call('EXISTS', ARGV[5] .. pnode) == 1 then live = 1 end
end
rewhere(KEYS[1], KEYS[2], ARGV[1], ARGV[7])
return {others, live, prev or ''}`)

// releaseScript: KEYS where, sessions, nusers:NODE; ARGV user, device,
// value, node, heartbeat prefix, name. It returns 0 if the claim was no
// longer there, 1 if the user has other live sessions, 2 if none.
var releaseScript = redis.NewScript(3, luaRewhere+`
if redis.call('HGET', KEYS[2], ARGV[2]) ~= ARGV[3] then return 0 end
redis.call('HDEL', KEYS[2], ARGV[2])
if not onNode(KEYS[2], ARGV[4]) then redis.call('SREM', KEYS[3], ARGV[1]) end
rewhere(KEYS[1], KEYS[2], ARGV[1], ARGV[6])
for _, v in ipairs(redis.call('HVALS', KEYS[2])) do
  if redis.call('EXISTS', ARGV[5] .. nodeOf(v)) == 1 then return 1 end
end
return 2`)

// announceScript re-claims a local session after Redis lost track of it,
// unless a live node holds the device now. KEYS and ARGV as releaseScript.
var announceScript = redis.NewScript(3, luaRewhere+`
local prev = redis.call('HGET', KEYS[2], ARGV[2])
if prev and prev ~= ARGV[3] then
  local pnode = nodeOf(prev)
  if pnode ~= ARGV[4] and redis.call('EXISTS', ARGV[5] .. pnode) == 1 then return 0 end
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[1])
rewhere(KEYS[1], KEYS[2], ARGV[1], ARGV[6])
return 1`)

// reapScript removes what a node left: its sessions and its group counts.
// KEYS where, nusers:NODE, ng:NODE; ARGV node, gn prefix, forget (1: and
// from P:nodes), nodes key, sessions prefix, heartbeat prefix. It returns
// "user\x1fname" for each user who had a session there and has no live
// one left.
var reapScript = redis.NewScript(3, luaRewhere+`
local gone = {}
for _, u in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local skey = ARGV[5] .. u
  local all = redis.call('HGETALL', skey)
  local removed, live = 0, 0
  for i = 1, #all, 2 do
    local n = nodeOf(all[i+1])
    if n == ARGV[1] then
      redis.call('HDEL', skey, all[i])
      removed = removed + 1
    elseif redis.call('EXISTS', ARGV[6] .. n) == 1 then
      live = live + 1
    end
  end
  local name = rewhere(KEYS[1], skey, u, nil)
  if removed > 0 and live == 0 then table.insert(gone, u .. '\31' .. name) end
end
redis.call('DEL', KEYS[2])
for _, g in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  redis.call('HDEL', ARGV[2] .. g, ARGV[1])
end
redis.call('DEL', KEYS[3])
if ARGV[3] == '1' then redis.call('SREM', ARGV[4], ARGV[1]) end
return gone`)

// sessionValue is a session's entry in the user's sessions hash.
func sessionValue(cl claim) string {
	return cl.ref.Node + sep + strconv.FormatUint(cl.ref.ID, 10) + sep + strconv.FormatInt(cl.since, 10)
}

func parseSessionValue(v string) (ref SessionRef, since int64) {
	parts := strings.SplitN(v, sep, 3)
	if len(parts) != 3 {
		return SessionRef{}, 0
	}
	ref.Node = parts[0]
	ref.ID, _ = strconv.ParseUint(parts[1], 10, 64)
	since, _ = strconv.ParseInt(parts[2], 10, 64)
	return ref, since
}

// parseWhere reads a P:where value: the user's name and the nodes that
// hold a session of the user.
func parseWhere(v string) (name string, nodes []string) {
	parts := strings.Split(v, sep)
	return parts[0], parts[1:]
}

func (rc *redisCluster) sessionsKey(user int64) string {
	return rc.key("sess", strconv.FormatInt(user, 10))
}

// Claim takes the device's presence. While our subscription is down it
// refuses: a login now could not be told apart from one elsewhere.
func (rc *redisCluster) Claim(ctx context.Context, cl claim, max int) (claimed, error) {
	if !rc.subscribed.Load() {
		return claimed{}, fmt.Errorf("redis: not subscribed: %w", ErrUnavailable)
	}
	var res claimed
	err := rc.do(ctx, func(c redis.Conn) error {
		vals, err := redis.Values(claimScript.Do(c, rc.key("where"), rc.sessionsKey(cl.user.ID), rc.key("nusers", rc.node),
			cl.user.ID, cl.device, sessionValue(cl), rc.node, rc.key("hb", ""), rc.key("nusers", ""), cl.user.Name, max))
		if err != nil {
			return err
		}
		if len(vals) == 1 {
			return ErrTooManySessions
		}
		var others, live int
		var prev string
		if _, err := redis.Scan(vals, &others, &live, &prev); err != nil {
			return err
		}
		res.wasOnline = others > 0 || live == 1
		if prev != "" && live == 1 {
			ref, _ := parseSessionValue(prev)
			res.prev = &ref
		}
		return nil
	})
	return res, err
}

func (rc *redisCluster) Release(ctx context.Context, cl claim) (bool, error) {
	var offline bool
	err := rc.do(ctx, func(c redis.Conn) error {
		n, err := redis.Int(releaseScript.Do(c, rc.key("where"), rc.sessionsKey(cl.user.ID), rc.key("nusers", rc.node),
			cl.user.ID, cl.device, sessionValue(cl), rc.node, rc.key("hb", ""), cl.user.Name))
		offline = n == 2
		return err
	})
	return offline, err
}

func (rc *redisCluster) Sessions(ctx context.Context, user int64) ([]SessionInfo, error) {
	var all map[string]string
	err := rc.do(ctx, func(c redis.Conn) error {
		var err error
		all, err = redis.StringMap(c.Do("HGETALL", rc.sessionsKey(user)))
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]SessionInfo, 0, len(all))
	for device, v := range all {
		ref, since := parseSessionValue(v)
		if rc.isAlive(ref.Node) {
			out = append(out, SessionInfo{Device: device, Since: since, ref: ref})
		}
	}
	sortSessions(out)
	return out, nil
}

func (rc *redisCluster) isAlive(node string) bool {
	return node != "" && !(*rc.dead.Load())[node]
}

func (rc *redisCluster) anyAlive(nodes []string) bool {
	return slices.ContainsFunc(nodes, rc.isAlive)
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
		name, nodes := parseWhere(v)
		id, err := strconv.ParseInt(k, 10, 64)
		if err == nil && rc.anyAlive(nodes) {
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
			if _, nodes := parseWhere(v); v != "" && rc.anyAlive(nodes) {
				out[ids[i]] = true
			}
		}
		return nil
	})
	return out, err
}
