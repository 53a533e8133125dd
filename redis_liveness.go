package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Staying in the cluster: the subscription, re-announcing after Redis comes
// back, the heartbeat, and reaping the nodes that died.

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
				_, err := c.Do("PUBLISH", rc.allChannel(), redeliverEnvelope)
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
		cl := s.claim()
		n, err := redis.Int(announceScript.Do(c, rc.key("where"), rc.sessionsKey(cl.user.ID), rc.key("nusers", rc.node),
			cl.user.ID, cl.device, sessionValue(cl), rc.node, rc.key("hb", ""), cl.user.Name))
		if err != nil {
			return err
		}
		if n == 0 { // the device is another node's now
			if lc := rc.srv.hub.find(cl.user.ID, cl.ref.ID); lc != nil {
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

// reap removes node's sessions and group counts, returning "user\x1fname"
// for each user it left with no session.
func (rc *redisCluster) reap(c redis.Conn, node string, forget bool) ([]string, error) {
	f := "0"
	if forget {
		f = "1"
	}
	return redis.Strings(reapScript.Do(c, rc.key("where"), rc.key("nusers", node), rc.key("ng", node),
		node, rc.key("gn", ""), f, rc.key("nodes"), rc.key("sess", ""), rc.key("hb", "")))
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
			if _, err := c.Do("PUBLISH", rc.allChannel(), redeliverEnvelope); err != nil {
				return err
			}
		}
	}
	return nil
}

// healthy reports whether pushes can reach this node.
func (rc *redisCluster) healthy() bool { return rc.subscribed.Load() }
