package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
)

// The cluster over Redis. Every node keeps in Redis:
//
//	P:sess:USER    hash  device -> "node\x1fconnection\x1fsince": the user's sessions
//	P:where        hash  user -> "name\x1fnode\x1fnode...": who is online, on which nodes
//	P:nusers:NODE  set   the users with a session on a node (to clean up after it)
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

	badMsgs  atomic.Int64 // malformed node messages dropped since the last warning
	badLogAt atomic.Int64 // when that warning was logged (Unix ns)

	stop chan struct{}
	wg   sync.WaitGroup
}

// newRedisCluster connects to the Redis of -redis (redisurl.go: host:port,
// redis:// or rediss://). Errors show -redis with its password redacted.
func newRedisCluster(srv *Server, redisURL, prefix string) (*redisCluster, error) {
	target, err := parseRedisTarget(redisURL)
	if err != nil {
		return nil, err
	}
	rc := &redisCluster{
		srv:    srv,
		prefix: prefix,
		node:   srv.cfg.Node,
		outbox: make(chan outItem, outboxSize),
		stop:   make(chan struct{}),
		pool: &redis.Pool{
			MaxIdle:     16,
			IdleTimeout: time.Minute,
			Dial:        target.dial,
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
		return nil, fmt.Errorf("redis %s: %w", target, err)
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
