package main

import (
	"bufio"
	"sync"
	"time"
)

// What goes out on a connection: the two queues, the send buffer's byte
// count and the waits for room, live pushes, and the writer goroutine.

// outFrame is one frame waiting in a connection's ordered queue.
type outFrame struct {
	b []byte
	// n is what the frame counts against -send-buffer until it is written:
	// len(b); for a deferred reply, its request's length plus
	// deferredOverhead, about the memory its work holds meanwhile (the
	// item, the text to store). Its bytes exist from when fill builds
	// them, right before they are written.
	n int
	// A deferred reply: wait closes when the work is done, then fill
	// builds the frame. Later replies wait behind it, so replies go out in
	// request order; live pushes do not.
	wait <-chan struct{}
	fill func() []byte
}

func (f *outFrame) ready() bool {
	if f.wait == nil {
		return true
	}
	select {
	case <-f.wait:
		return true
	default:
		return false
	}
}

// queue adds f to the ordered queue without waiting. It returns false if
// the connection is winding down, or, when only is not nil, if only is no
// longer the connection's session (a backlog frame must not follow its
// session's logout reply).
func (c *conn) queue(f outFrame, only *session) bool {
	c.mu.Lock()
	if c.draining || only != nil && c.sess.Load() != only {
		c.mu.Unlock()
		return false
	}
	c.ordered = append(c.ordered, f)
	c.queued += f.n
	c.mu.Unlock()
	c.signal()
	return true
}

// enqueue adds a ready frame of only's backlog to the ordered queue once
// the queue has room (waitRoom). It returns false if the connection ended
// first, or if only is no longer the connection's session.
func (c *conn) enqueue(f outFrame, only *session) bool {
	f.n = len(f.b)
	return c.waitRoom(only) && c.queue(f, only)
}

// waitRoom waits until what is queued for the connection is under
// -send-buffer bytes: the reader calls it before it decodes each request,
// the backlog streamer before each message. It returns false if the
// connection is winding down first, or the server shutting down, or, when
// s is not nil, if s ended. The writer wakes it as it drains the queue
// (sent), stopReading and abort when the connection is to end.
func (c *conn) waitRoom(s *session) bool {
	limit := int(c.srv.cfg.SendBuffer)
	var ended <-chan struct{}
	if s != nil && s.ctx != nil {
		ended = s.ctx.Done()
	}
	for waited := false; ; waited = true {
		c.mu.Lock()
		if c.draining || c.queued < limit {
			ok := !c.draining
			c.mu.Unlock()
			return ok
		}
		if c.room == nil {
			c.room = make(chan struct{})
		}
		room := c.room
		c.mu.Unlock()
		if !waited {
			c.srv.metrics.sendBufferWaits.Add(1)
		}
		select {
		case <-room:
		case <-c.dead:
			return false
		case <-ended:
			return false
		}
		if c.srv.closing.Load() {
			return false
		}
	}
}

// wakeRoom wakes whoever waits in waitRoom. c.mu must be held.
func (c *conn) wakeRoom() {
	if c.room != nil {
		close(c.room)
		c.room = nil
	}
}

// sent takes what the writer wrote (or gave up on) off the queue's count:
// n bytes, of which pushBytes in pushes live pushes. It wakes the waiters
// once the queue is under -send-buffer.
func (c *conn) sent(n, pushes, pushBytes int) {
	c.mu.Lock()
	c.queued -= n
	c.unsent -= pushes
	c.pushBytes -= pushBytes
	if c.queued < int(c.srv.cfg.SendBuffer) {
		c.wakeRoom()
	}
	c.mu.Unlock()
}

// forgetQueued discards the queued pushes, and with all the ordered frames
// too, taking them off the count (frames the writer holds are its to count).
// c.mu must be held.
func (c *conn) forgetQueued(all bool) {
	n := 0
	for _, p := range c.pushes {
		n += len(p)
	}
	c.unsent -= len(c.pushes)
	c.pushBytes -= n
	clear(c.pushes)
	c.pushes = c.pushes[:0]
	if all {
		for _, f := range c.ordered {
			n += f.n
		}
		c.ordered = nil
	}
	c.queued -= n
	if c.queued < int(c.srv.cfg.SendBuffer) {
		c.wakeRoom()
	}
}

// holdPushes keeps live pushes back until releasePushes: a login registers
// its session before its reply is queued, and the reply must come first.
func (c *conn) holdPushes() {
	c.mu.Lock()
	c.held = true
	c.mu.Unlock()
}

func (c *conn) releasePushes() {
	c.mu.Lock()
	c.held = false
	c.mu.Unlock()
	c.signal()
}

// dropPushes discards unsent pushes and holds new ones until the next login.
func (c *conn) dropPushes() {
	c.mu.Lock()
	c.held = true
	c.forgetQueued(false)
	c.mu.Unlock()
}

// deliver queues a live push. It never blocks: when the queue already holds
// -send-queue unsent pushes, or this one would take their bytes past
// -send-buffer, the connection is closed as too slow. (One push alone is
// always taken, whatever its size.)
func (c *conn) deliver(p *Push) {
	if p.Except != 0 && p.Except == c.id {
		return
	}
	if p.Kind == pushKick {
		c.srv.metrics.kicked.Add(1)
		c.finish(p.Frame)
		return
	}
	c.applyPush(p)
	if len(p.Frame) == 0 {
		return
	}
	c.mu.Lock()
	if c.draining || c.held && c.sess.Load() == nil {
		// Winding down, or logged out (a push that raced the logout):
		// nothing for the old session after its logout reply, and nothing
		// of it for the next one.
		c.mu.Unlock()
		return
	}
	n := len(p.Frame)
	if c.unsent >= c.srv.cfg.SendQueue || c.unsent > 0 && c.pushBytes+n > int(c.srv.cfg.SendBuffer) {
		dropped, bytes := c.unsent, c.pushBytes
		c.mu.Unlock()
		c.srv.metrics.slowClosed.Add(1)
		c.srv.metrics.pushesDropped.Add(int64(dropped) + 1)
		c.log.Info("closing slow client", "unsent_pushes", dropped, "unsent_push_bytes", bytes)
		c.abort()
		return
	}
	c.unsent++
	c.pushBytes += n
	c.queued += n
	c.pushes = append(c.pushes, p.Frame)
	c.mu.Unlock()
	c.signal()
	if p.Kind == pushMessage {
		c.srv.metrics.messagesPushed.Add(1)
	}
}

// applyPush makes the change of state a push carries to the session it
// reaches: the friends whose presence it follows, the groups whose pushes
// it gets.
func (c *conn) applyPush(p *Push) {
	s := c.sess.Load()
	if s == nil || !p.changesState() || s.stashed(c, p) {
		return
	}
	c.applyState(s, p)
}

// changesState reports whether the push changes the state of the session
// it reaches (applyState).
func (p *Push) changesState() bool {
	switch p.Kind {
	case pushFriendAdded, pushFriendRemoved, pushGroupJoined, pushGroupLeft, pushBlockedBy, pushUnblockedBy:
		return true
	}
	return false
}

// subscribeFor subscribes c to groups, new in s's set of groups. The
// session may have ended meanwhile, its unregister done: no subscription
// is left behind that no session of c holds.
func (c *conn) subscribeFor(s *session, groups ...int64) {
	c.srv.hub.subscribeAll(c, groups...)
	now := c.sess.Load()
	if now == s {
		return
	}
	var orphans []int64
	for _, g := range groups {
		if now == nil || !now.inGroup(g) {
			orphans = append(orphans, g)
		}
	}
	c.srv.hub.unsubscribeAll(c, orphans...)
}

// applyState makes the change p carries to s, c's session.
func (c *conn) applyState(s *session, p *Push) {
	switch p.Kind {
	case pushFriendAdded:
		s.addFriend(p.Ref)
	case pushFriendRemoved:
		s.removeFriend(p.Ref)
	case pushGroupJoined:
		if !s.inGroup(p.Ref) {
			s.setGroup(p.Ref, true)
			c.subscribeFor(s, p.Ref)
		}
	case pushGroupLeft:
		if s.inGroup(p.Ref) {
			s.setGroup(p.Ref, false)
			c.srv.hub.unsubscribeAll(c, p.Ref)
		}
	case pushBlockedBy:
		s.setBlockedBy(p.Ref, true)
	case pushUnblockedBy:
		s.setBlockedBy(p.Ref, false)
	}
}

// writeLoop writes what the queues hold: ready replies first, in order,
// then live pushes. It flushes when there is nothing more to write now.
func (c *conn) writeLoop() {
	defer c.markDead()
	// The buffer is borrowed while there is something to write and given
	// back before waiting, so an idle connection holds none.
	var bw *bufio.Writer
	defer func() {
		if bw != nil {
			writerPool.Put(bw)
		}
	}()
	var replies []outFrame
	var pushes [][]byte
	for {
		c.mu.Lock()
		n := 0
		for n < len(c.ordered) && c.ordered[n].ready() {
			n++
		}
		if n == len(c.ordered) {
			replies, c.ordered = c.ordered, replies[:0]
		} else {
			replies = append(replies[:0], c.ordered[:n]...)
			rest := copy(c.ordered, c.ordered[n:])
			clear(c.ordered[rest:])
			c.ordered = c.ordered[:rest]
		}
		rest := len(c.ordered)
		var headWait <-chan struct{}
		if rest > 0 {
			headWait = c.ordered[0].wait
		}
		if !c.held {
			pushes, c.pushes = c.pushes, pushes[:0]
		}
		finished := c.draining && rest == 0 && (len(c.pushes) == 0 || c.held)
		last := c.last
		if len(replies)+len(pushes) == 0 {
			// Nothing to write: an idle connection keeps no queue arrays.
			if rest == 0 {
				c.ordered = nil
			}
			if len(c.pushes) == 0 {
				c.pushes = nil
			}
			replies, pushes = nil, nil
		}
		c.mu.Unlock()

		if bw == nil && (len(replies)+len(pushes) > 0 || finished && last != nil) {
			bw = writerPool.Get().(*bufio.Writer)
			bw.Reset(c.nc)
		}
		if len(replies)+len(pushes) > 0 {
			if err := c.writeFrames(bw, replies, pushes); err != nil {
				c.log.Debug("write failed", "err", err)
				c.abort()
				return
			}
			clear(replies)
			clear(pushes)
			replies, pushes = replies[:0], pushes[:0]
			continue // look again before flushing
		}
		if finished && last != nil {
			bw.Write(last)
		}
		if bw != nil {
			c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
			if err := bw.Flush(); err != nil {
				c.log.Debug("flush failed", "err", err)
				c.abort()
				return
			}
			bw.Reset(nil)
			writerPool.Put(bw)
			bw = nil
		}
		if finished {
			// A half close after the last frame: a TCP FIN, and over TLS
			// the close_notify alert before it (tlsConn.CloseWrite).
			if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
			return
		}
		// Each channel a goroutine waits on takes a sudog: an idle writer
		// waits on wake alone, which abort signals too.
		if headWait == nil {
			<-c.wake
		} else {
			select {
			case <-c.wake:
			case <-headWait:
			}
		}
		select {
		case <-c.dead:
			return
		default:
		}
	}
}

var writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, writeBufSize) }}

// writeFrames writes a batch the writer took from the queues, and takes it
// off the queue's count as it goes: every frame of it, also after an error.
// The write deadline is renewed at each releaseEvery bytes, so that it
// bounds the time a client reads nothing, not the time a long batch takes.
func (c *conn) writeFrames(bw *bufio.Writer, replies []outFrame, pushes [][]byte) error {
	c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	var err error
	// Written (or given up on) and still counted: bytes, of which push
	// bytes, and pushes.
	n, pn, np := 0, 0, 0
	for i := range replies {
		f := &replies[i]
		if err == nil {
			if f.fill != nil {
				f.b = f.fill()
			}
			_, err = bw.Write(f.b)
		}
		if n += f.n; n >= releaseEvery && err == nil {
			c.sent(n, 0, 0)
			n = 0
			c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
		}
	}
	for _, p := range pushes {
		if err == nil {
			_, err = bw.Write(p)
		}
		n, pn, np = n+len(p), pn+len(p), np+1
		if n >= releaseEvery && err == nil {
			c.sent(n, np, pn)
			n, pn, np = 0, 0, 0
			c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
		}
	}
	c.sent(n, np, pn)
	return err
}
