package main

import (
	"errors"
	"strconv"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Routing through Redis: pushes for other nodes go out in batches from the
// outbox, as node messages (nodemsg.go), and come in through receive.

// outItem is one thing for the outbox goroutine to send.
type outItem struct {
	user, group, except int64 // a push to user, or to group but except
	push                *Push
	kick                *SessionRef // kick this session of user
	count               *int        // set this node's member count of group
}

// ToUser pushes to the user's local sessions at once, and through Redis to
// the other nodes that hold a session of the user, if any.
func (rc *redisCluster) ToUser(user int64, p *Push) {
	rc.srv.hub.toUser(user, p)
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
	envelopes := map[string][]byte{}
	add := func(node string, m nodeMsg) {
		if node == rc.node || node == "" || !rc.isAlive(node) {
			return
		}
		envelopes[node] = m.append(envelopes[node])
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
					add(node, nodeMsg{kind: nodeGroupPush, group: it.group, except: it.except, push: it.push})
				}
			}
			continue
		}
		v, _ := redis.String(reply, nil)
		if v == "" {
			continue
		}
		_, nodes := parseWhere(v)
		for _, node := range nodes {
			add(node, nodeMsg{kind: nodeUserPush, user: it.user, push: it.push})
		}
	}
	for _, it := range batch {
		if it.kick != nil && it.kick.Node != rc.node {
			m := nodeMsg{kind: nodeKick, user: it.user, session: it.kick.ID}
			envelopes[it.kick.Node] = m.append(envelopes[it.kick.Node])
		}
	}
	// 2. One PUBLISH per node.
	for node, b := range envelopes {
		c.Send("PUBLISH", rc.channel(node), b)
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
	for len(data) > 0 {
		m, rest, err := decodeNodeMsg(data)
		if err != nil {
			rc.malformed(err)
			if !errors.Is(err, errNodeMsgFrame) {
				return // the envelope's framing is lost
			}
			data = rest // only that record's frame was bad
			continue
		}
		data = rest
		switch m.kind {
		case nodeKick:
			if c := rc.srv.hub.find(m.user, m.session); c != nil {
				c.kick()
			}
		case nodeRedeliver:
			rc.srv.redeliverAll()
		case nodeUserPush:
			if rc.srv.hub.toUser(m.user, m.push) {
				rc.srv.store.recent.note(m.push.MsgID, m.push.At)
			}
		case nodeGroupPush:
			rc.srv.hub.toGroup(m.group, m.except, m.push)
			rc.srv.store.recent.note(m.push.MsgID, m.push.At)
		}
	}
}

// malformedLogEvery spaces the warnings about malformed node messages: a
// stream of them (another program publishing on our channel) must not
// flood the log.
const malformedLogEvery = 10 * time.Second

// malformed drops a node message that could not be read: it reaches no
// client. It is logged at most once per malformedLogEvery, with how many
// were dropped since the last warning.
func (rc *redisCluster) malformed(err error) {
	n := rc.badMsgs.Add(1)
	now := time.Now().UnixNano()
	last := rc.badLogAt.Load()
	if now-last < int64(malformedLogEvery) || !rc.badLogAt.CompareAndSwap(last, now) {
		return
	}
	rc.badMsgs.Add(-n)
	rc.srv.log.Warn("redis: dropped malformed node messages", "err", err, "dropped", n, "node", rc.node)
}
