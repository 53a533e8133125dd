package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
)

// The cluster over Redis. Every node keeps in Redis:
//
//	P:where        hash  user -> "node\x1fsession\x1fname": who is online where
//	P:nusers:NODE  set   the users a node has claimed (to clean up after it)
//	P:hb:NODE      key   the node's heartbeat, expiring after nodeTTL
//	P:nodes        set   nodes that may hold claims
//	P:gn:GROUP     hash  node -> how many of the group's members it has online
//	P:ng:NODE      set   groups a node has members of (to clean up after it)
//
// and listens on its own channel P:to:NODE, and on P:all, which carries
// "r": push every session what is pending (after a Redis outage, and after
// a node died with pushes in its outbox). A claim counts only while its
// node's heartbeat lives: a node that dies takes its users offline within
// nodeTTL, and any node that notices removes what it left.
const (
	heartbeatEvery = 3 * time.Second
	nodeTTL        = 15 * time.Second
	redisTimeout   = 2 * time.Second
	outboxSize     = 1 << 16
	sep            = "\x1f"
)

// redisCluster is the Presence and Router of a node in a cluster.
type redisCluster struct {
	srv    *Server
	pool   *redis.Pool
	prefix string
	node   string

	outbox     chan outItem // pushes and counts for Redis, in order
	subscribed atomic.Bool  // our channel is subscribed: we receive pushes
	// dead holds the nodes whose heartbeat has expired, as of the last
	// heartbeat; any other node's claims count (a new node is alive at once).
	dead atomic.Pointer[map[string]bool]

	stop chan struct{}
	wg   sync.WaitGroup
}

// outItem is one thing for the outbox goroutine to send.
type outItem struct {
	user, group, except int64 // a push to user, or to group but except
	push                *Push
	kick                *SessionRef // kick this session of user
	count               *int        // set this node's member count of group
}

func newRedisCluster(srv *Server, addr, prefix string) (*redisCluster, error) {
	rc := &redisCluster{
		srv:    srv,
		prefix: prefix,
		node:   srv.cfg.Node,
		outbox: make(chan outItem, outboxSize),
		stop:   make(chan struct{}),
		pool: &redis.Pool{
			MaxIdle:     16,
			IdleTimeout: time.Minute,
			Dial: func() (redis.Conn, error) {
				return redis.Dial("tcp", addr, redis.DialConnectTimeout(redisTimeout),
					redis.DialReadTimeout(redisTimeout), redis.DialWriteTimeout(redisTimeout))
			},
			TestOnBorrow: func(c redis.Conn, t time.Time) error {
				if time.Since(t) < 10*time.Second {
					return nil
				}
				_, err := c.Do("PING")
				return err
			},
		},
	}
	rc.dead.Store(&map[string]bool{})
	c := rc.pool.Get()
	defer c.Close()
	if _, err := c.Do("PING"); err != nil {
		return nil, fmt.Errorf("redis %s: %w", addr, err)
	}
	return rc, nil
}

func (rc *redisCluster) key(parts ...string) string {
	return rc.prefix + ":" + strings.Join(parts, ":")
}

func (rc *redisCluster) channel(node string) string { return rc.key("to", node) }

func (rc *redisCluster) allChannel() string { return rc.key("all") }

// start runs the subscriber, the heartbeat and the outbox.
func (rc *redisCluster) start() {
	ready := make(chan struct{})
	rc.wg.Add(3)
	go func() { defer rc.wg.Done(); rc.subscribeLoop(ready) }()
	go func() { defer rc.wg.Done(); rc.heartbeatLoop() }()
	go func() { defer rc.wg.Done(); rc.outboxLoop() }()
	select { // the first subscription, so that pushes reach us from the start
	case <-ready:
	case <-time.After(5 * time.Second):
	}
}

// close stops the loops and removes this node's presence at once.
func (rc *redisCluster) close() {
	close(rc.stop)
	rc.wg.Wait()
	c := rc.pool.Get()
	rc.reap(c, rc.node, true)
	c.Do("DEL", rc.key("hb", rc.node))
	c.Close()
	rc.pool.Close()
}

// --- presence ---

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

// do runs fn on a pooled connection, once more on a fresh one if the first
// was broken (as pooled connections are after a Redis restart).
func (rc *redisCluster) do(ctx context.Context, fn func(redis.Conn) error) error {
	var err error
	for range 2 {
		var c redis.Conn
		if c, err = rc.pool.GetContext(ctx); err != nil {
			break
		}
		err = fn(c)
		c.Close()
		if _, isReply := err.(redis.Error); err == nil || isReply || errors.Is(err, redis.ErrNil) {
			return err
		}
	}
	return fmt.Errorf("redis: %w: %w", ErrUnavailable, err)
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

// --- routing ---

func (rc *redisCluster) ToUser(user int64, p *Push) {
	if rc.srv.hub.toUser(user, p) {
		return // local recipients never go through Redis
	}
	rc.send(outItem{user: user, push: p})
}

func (rc *redisCluster) ToGroup(group, except int64, p *Push) {
	rc.srv.hub.toGroup(group, except, p)
	rc.send(outItem{group: group, except: except, push: p})
}

func (rc *redisCluster) Kick(sess SessionRef, user int64) {
	rc.send(outItem{user: user, kick: &sess})
}

// groupCount records how many members of group this node has online.
func (rc *redisCluster) groupCount(group int64, n int) {
	rc.send(outItem{group: group, count: &n})
}

// send queues for the outbox. While Redis is out of reach pushes are
// dropped (counted): the messages among them stay pending and are pushed
// again once the subscription is back.
func (rc *redisCluster) send(it outItem) {
	if !rc.subscribed.Load() && it.count == nil {
		rc.srv.metrics.redisDropped.Add(1)
		return
	}
	select {
	case rc.outbox <- it:
	case <-rc.stop:
	}
}

// outboxLoop sends queued items in batches: one pipelined round trip to
// look up where the recipients are, then one PUBLISH per node carrying all
// that node's pushes of the batch.
func (rc *redisCluster) outboxLoop() {
	var batch []outItem
	for {
		select {
		case it := <-rc.outbox:
			batch = append(batch[:0], it)
		case <-rc.stop:
			return
		}
	drain:
		for len(batch) < 1024 {
			select {
			case it := <-rc.outbox:
				batch = append(batch, it)
			default:
				break drain
			}
		}
		err := rc.flush(batch)
		if _, isReply := err.(redis.Error); err != nil && !isReply {
			err = rc.flush(batch) // once more on a fresh connection: pushes may repeat, not vanish
		}
		if err != nil {
			rc.srv.metrics.redisErrors.Add(1)
			rc.srv.log.Warn("redis publish", "err", err, "items", len(batch))
		}
		clear(batch)
	}
}

func (rc *redisCluster) flush(batch []outItem) error {
	c := rc.pool.Get()
	defer c.Close()
	// 1. Look up user locations and group nodes; write member counts.
	type lookup struct {
		item   int
		lookup bool
	}
	var pending []lookup
	for i, it := range batch {
		switch {
		case it.count != nil:
			g := strconv.FormatInt(it.group, 10)
			if *it.count > 0 {
				c.Send("HSET", rc.key("gn", g), rc.node, *it.count)
				c.Send("SADD", rc.key("ng", rc.node), g)
			} else {
				c.Send("HDEL", rc.key("gn", g), rc.node)
				c.Send("SREM", rc.key("ng", rc.node), g)
			}
			pending = append(pending, lookup{i, false}, lookup{i, false})
		case it.kick != nil:
		case it.group != 0:
			c.Send("HGETALL", rc.key("gn", strconv.FormatInt(it.group, 10)))
			pending = append(pending, lookup{i, true})
		default:
			c.Send("HGET", rc.key("where"), it.user)
			pending = append(pending, lookup{i, true})
		}
	}
	if err := c.Flush(); err != nil {
		return err
	}
	envelopes := map[string]*bytes.Buffer{}
	add := func(node string, rec func(*bytes.Buffer)) {
		if node == rc.node || node == "" || !rc.isAlive(node) {
			return
		}
		b := envelopes[node]
		if b == nil {
			b = &bytes.Buffer{}
			envelopes[node] = b
		}
		rec(b)
	}
	for _, l := range pending {
		reply, err := c.Receive()
		if err != nil {
			return err
		}
		if !l.lookup {
			continue
		}
		it := batch[l.item]
		if it.group != 0 {
			counts, _ := redis.IntMap(reply, nil)
			for node, n := range counts {
				if n > 0 {
					add(node, func(b *bytes.Buffer) {
						fmt.Fprintf(b, "g %d %d %d %d %d %d\n", it.group, it.except, it.push.Kind,
							it.push.MsgID, it.push.At.topic, it.push.At.seq)
						b.Write(it.push.Frame)
					})
				}
			}
			continue
		}
		v, _ := redis.String(reply, nil)
		node, _, _ := parseClaim(v)
		add(node, func(b *bytes.Buffer) {
			fmt.Fprintf(b, "u %d %d %d %d %d %d\n", it.user, it.push.Kind, it.push.Friend,
				it.push.MsgID, it.push.At.topic, it.push.At.seq)
			b.Write(it.push.Frame)
		})
	}
	for _, it := range batch {
		if it.kick != nil && it.kick.Node != rc.node {
			b := envelopes[it.kick.Node]
			if b == nil {
				b = &bytes.Buffer{}
				envelopes[it.kick.Node] = b
			}
			fmt.Fprintf(b, "k %d %d\n", it.user, it.kick.ID)
		}
	}
	// 2. One PUBLISH per node.
	for node, b := range envelopes {
		c.Send("PUBLISH", rc.channel(node), b.Bytes())
	}
	if err := c.Flush(); err != nil {
		return err
	}
	for range envelopes {
		if _, err := c.Receive(); err != nil {
			return err
		}
		rc.srv.metrics.redisPublished.Add(1)
	}
	return nil
}

// receive applies an envelope published to this node.
func (rc *redisCluster) receive(data []byte) {
	rc.srv.metrics.redisReceived.Add(1)
	br := bufio.NewReader(bytes.NewReader(data))
	for {
		head, err := br.ReadString('\n')
		if err != nil {
			return
		}
		f := strings.Fields(head)
		if len(f) == 0 {
			return
		}
		num := func(i int) int64 {
			if i >= len(f) {
				return 0
			}
			n, _ := strconv.ParseInt(f[i], 10, 64)
			return n
		}
		switch f[0] {
		case "k":
			if c := rc.srv.hub.session(num(1)); c != nil && c.id == uint64(num(2)) {
				c.kick()
			}
		case "r":
			rc.srv.redeliverAll()
		case "u", "g":
			frame, err := br.ReadBytes('\n')
			if err != nil {
				return
			}
			// The message's id, topic and seq come last; a node of an
			// older version sends none (they read as 0).
			if f[0] == "u" {
				p := &Push{Kind: pushKind(num(2)), Friend: num(3), Frame: frame, MsgID: num(4), At: topicSeq{num(5), num(6)}}
				if rc.srv.hub.toUser(num(1), p) {
					rc.srv.store.recent.note(p.MsgID, p.At)
				}
			} else {
				p := &Push{Kind: pushKind(num(3)), Frame: frame, MsgID: num(4), At: topicSeq{num(5), num(6)}}
				rc.srv.hub.toGroup(num(1), num(2), p)
				rc.srv.store.recent.note(p.MsgID, p.At)
			}
		default:
			return
		}
	}
}

// subscribeLoop keeps this node's channels subscribed, reconnecting with
// backoff. After every reconnection it re-announces the node's sessions and
// asks every node (itself included) to push each of its sessions what is
// pending: pushes published to this node while it was not subscribed are
// lost, and so are the pushes this node dropped for other nodes meanwhile.
func (rc *redisCluster) subscribeLoop(ready chan struct{}) {
	backoff := 100 * time.Millisecond
	first := true
	for {
		select {
		case <-rc.stop:
			return
		default:
		}
		err := rc.subscribeOnce(func() error {
			if err := rc.announce(); err != nil {
				return fmt.Errorf("announce: %w", err)
			}
			backoff = 100 * time.Millisecond
			rc.subscribed.Store(true)
			rc.srv.metrics.redisSubscribed.Store(1)
			if first {
				close(ready)
				first = false
				return nil
			}
			rc.srv.log.Info("redis subscription back: every node pushes what is pending to its sessions")
			return rc.do(context.Background(), func(c redis.Conn) error {
				_, err := c.Do("PUBLISH", rc.allChannel(), "r\n")
				return err
			})
		})
		rc.subscribed.Store(false)
		rc.srv.metrics.redisSubscribed.Store(0)
		select {
		case <-rc.stop:
			return
		default:
		}
		rc.srv.metrics.redisReconnects.Add(1)
		rc.srv.log.Warn("redis subscription lost", "err", err, "retry_in", backoff)
		select {
		case <-rc.stop:
			return
		case <-time.After(backoff + rand.N(backoff/2+1)):
		}
		backoff = min(2*backoff, time.Second)
	}
}

func (rc *redisCluster) subscribeOnce(onSubscribed func() error) error {
	c, err := rc.pool.Dial()
	if err != nil {
		return err
	}
	psc := redis.PubSubConn{Conn: c}
	defer psc.Close()
	if err := psc.Subscribe(rc.channel(rc.node), rc.allChannel()); err != nil {
		return err
	}
	// Pings from a goroutine of their own keep replies coming well within
	// the receive timeout (redigo closes a connection whose read times out),
	// and show a silently dead connection.
	const pingEvery = 2 * time.Second
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(pingEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				if psc.Ping("") != nil {
					return
				}
			case <-rc.stop:
				psc.Close()
				return
			case <-done:
				return
			}
		}
	}()
	for {
		switch v := psc.ReceiveWithTimeout(3 * pingEvery).(type) {
		case redis.Message:
			rc.receive(v.Data)
		case redis.Subscription:
			if v.Kind == "subscribe" && v.Count == 2 { // both channels
				if err := onSubscribed(); err != nil {
					return err
				}
			}
		case error:
			return v
		}
	}
}

// announce writes this node's sessions and group counts into Redis anew,
// after removing whatever it had there (Redis may have restarted, or reaped
// us while we were cut off). A user who logged in elsewhere meanwhile keeps
// that session; ours is closed.
func (rc *redisCluster) announce() error {
	var err error
	for range 3 { // pooled connections from before a Redis restart fail once
		if err = rc.announceOnce(); err == nil {
			return nil
		}
	}
	return err
}

func (rc *redisCluster) announceOnce() error {
	c := rc.pool.Get()
	defer c.Close()
	if err := rc.beat(c); err != nil {
		return err
	}
	if _, err := rc.reap(c, rc.node, false); err != nil {
		return err
	}
	users, groups := rc.srv.hub.snapshot()
	for _, s := range users {
		n, err := redis.Int(announceScript.Do(c, rc.key("where"), rc.key("nusers", rc.node),
			s.user.ID, rc.claimValue(s.user, s.ref), rc.node, rc.key("hb", "")))
		if err != nil {
			return err
		}
		if n == 0 {
			if lc := rc.srv.hub.session(s.user.ID); lc != nil {
				lc.kick()
			}
		}
	}
	for g, n := range groups {
		c.Send("HSET", rc.key("gn", strconv.FormatInt(g, 10)), rc.node, n)
		c.Send("SADD", rc.key("ng", rc.node), g)
	}
	if err := c.Flush(); err != nil {
		return err
	}
	for range 2 * len(groups) {
		if _, err := c.Receive(); err != nil {
			return err
		}
	}
	return nil
}

func (rc *redisCluster) beat(c redis.Conn) error {
	c.Send("SET", rc.key("hb", rc.node), rc.srv.boot, "PX", nodeTTL.Milliseconds())
	c.Send("SADD", rc.key("nodes"), rc.node)
	if err := c.Flush(); err != nil {
		return err
	}
	for range 2 {
		if _, err := c.Receive(); err != nil {
			return err
		}
	}
	return nil
}

// reap removes node's claims and group counts, returning the claims.
func (rc *redisCluster) reap(c redis.Conn, node string, forget bool) ([]string, error) {
	f := "0"
	if forget {
		f = "1"
	}
	return redis.Strings(reapScript.Do(c, rc.key("where"), rc.key("nusers", node), rc.key("ng", node),
		node, rc.key("gn", ""), f, rc.key("nodes")))
}

// heartbeatLoop renews this node's heartbeat, learns which nodes live, and
// reaps nodes whose heartbeat has expired: their users go offline, and
// their friends hear it.
func (rc *redisCluster) heartbeatLoop() {
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	for {
		select {
		case <-rc.stop:
			return
		case <-t.C:
		}
		if err := rc.heartbeat(); err != nil {
			rc.srv.metrics.redisErrors.Add(1)
			rc.srv.log.Warn("redis heartbeat", "err", err)
		}
	}
}

func (rc *redisCluster) heartbeat() error {
	c := rc.pool.Get()
	defer c.Close()
	if err := rc.beat(c); err != nil {
		return err
	}
	nodes, err := redis.Strings(c.Do("SMEMBERS", rc.key("nodes")))
	if err != nil {
		return err
	}
	dead := map[string]bool{}
	defer func() { rc.dead.Store(&dead) }()
	for _, n := range nodes {
		if n == rc.node {
			continue
		}
		ok, err := redis.Bool(c.Do("EXISTS", rc.key("hb", n)))
		if err != nil {
			return err
		}
		if ok {
			continue
		}
		dead[n] = true
		gone, err := rc.reap(c, n, true)
		if err != nil {
			return err
		}
		if len(gone) > 0 {
			rc.srv.log.Info("node gone: its users are offline", "node", n, "users", len(gone))
			go rc.srv.announceOffline(gone)
			// What the dead node stored but had not yet routed (its
			// outbox dies with it) is pending: every node pushes its
			// sessions what is pending. Only the node whose reap took the
			// users asks, once.
			if _, err := c.Do("PUBLISH", rc.allChannel(), "r\n"); err != nil {
				return err
			}
		}
	}
	return nil
}

// healthy reports whether pushes can reach this node.
func (rc *redisCluster) healthy() bool { return rc.subscribed.Load() }
