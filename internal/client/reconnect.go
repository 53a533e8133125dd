package client

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sort"
	"time"
)

// Connection loss and reconnect, on the core goroutine.

// lost handles the end of the connection: requests in flight that are safe
// to repeat go back to the front of the queue, in the order they were sent
// (chats keep their cid, so the server stores each once); the others fail.
func (c *core) lost(err error) {
	c.conn.close()
	c.conn = nil
	c.relogging = false
	reqs := make([]*request, 0, len(c.inflight))
	for _, r := range c.inflight {
		reqs = append(reqs, r)
	}
	sort.Slice(reqs, func(i, j int) bool { return reqs[i].rid < reqs[j].rid })
	c.inflight = map[int64]*request{}
	var again []*request
	for _, r := range reqs {
		switch {
		case c.kicked:
			if r.op != nil {
				c.fail(r.op, "not done: %s", c.closedWhy)
			}
		case r.retry:
			again = append(again, r)
		case r.op != nil:
			c.fail(r.op, "the connection was lost before the server answered; it may or may not have happened")
		}
	}
	c.queue = append(again, c.queue...)
	if c.kicked {
		c.failQueue("not done: " + c.closedWhy)
		c.print(outNotice, "disconnected: the next command connects again")
		return
	}
	c.print(outNotice, "connection lost (%s); reconnecting", errText(err))
	c.downSince = time.Now()
	c.backoff = c.cfg.backoffMin
	c.redial = time.After(c.jitter(c.backoff))
}

func errText(err error) string {
	if errors.Is(err, io.EOF) {
		return "closed by the server"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "the server stopped answering"
	}
	return err.Error()
}

func (c *core) jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

// ensureConnected starts connecting when a command needs the server after
// a kick (which does not reconnect by itself).
func (c *core) ensureConnected() {
	if c.conn != nil || c.dialing || c.redial != nil {
		return
	}
	c.kicked = false
	c.downSince = time.Now()
	c.backoff = c.cfg.backoffMin
	c.dial()
}

func (c *core) dial() {
	if c.dialing {
		return
	}
	c.dialing = true
	addr, conf, timeout, dials, done := c.cfg.addr, c.cfg.tls, c.cfg.dialTimeout, c.dials, c.done
	go func() {
		nc, err := dialServer(addr, conf, timeout)
		if err != nil {
			nc = nil
		}
		select {
		case dials <- nc:
		case <-done:
			if nc != nil {
				nc.Close()
			}
		}
	}()
}

func (c *core) dialed(nc net.Conn) {
	c.dialing = false
	if nc == nil {
		if c.cfg.plain && c.inputEOF && c.cfg.giveUp > 0 && time.Since(c.downSince) > c.cfg.giveUp {
			c.giveUp()
			return
		}
		c.backoff = min(c.backoff*2, c.cfg.backoffMax)
		c.redial = time.After(c.jitter(c.backoff))
		return
	}
	c.attach(nc)
	c.print(outNotice, "reconnected to %s", c.cfg.addr)
	if c.creds != nil && !c.loginQueued(false) {
		c.relogin()
	}
	c.pump()
}

func (c *core) queuedLocal() bool {
	for _, r := range c.queue {
		if r.local != nil {
			return true
		}
	}
	return false
}

// loginQueued reports whether a login request waits in the queue; with
// checks, also a /login waiting for its turn (inTurn) to be checked.
func (c *core) loginQueued(checks bool) bool {
	for _, r := range c.queue {
		if r.typ == "login" && (checks || r.local == nil) {
			return true
		}
	}
	return false
}

func (c *core) giveUp() {
	c.print(outError, "error: gave up reconnecting to %s after %v", c.cfg.addr, c.cfg.giveUp)
	c.failQueue("not sent: no connection to the server")
	c.failed = true
}

// failQueue empties the queue in its order: output waiting for its turn
// is printed; user commands, sent or waiting for their turn (inTurn), fail
// with why.
func (c *core) failQueue(why string) {
	q := c.queue
	c.queue = nil
	c.releaseHeld() // the name lookups went with the queue
	for _, r := range q {
		if r.op != nil {
			c.fail(r.op, "%s", why)
		} else if r.local != nil {
			r.local()
		}
	}
}

// relogin logs in again with the remembered name and password; queued
// requests wait until it is answered.
func (c *core) relogin() {
	cr := c.creds
	c.relogging = true
	r := &request{typ: "login", fields: loginFields(cr.target, cr.password, c.cfg.device)}
	r.onReply = func(f *frame) {
		c.relogging = false
		if !f.OK || f.User == nil {
			c.out.print(outError, fmtError("relogin", f.Type, f.Code, f.Error))
			c.creds = nil
			c.setMe(nil)
			c.failed = true
			return
		}
		c.loggedIn(f, r.sentAt)
		c.print(outNotice, "reconnected: logged in again as %s (id %d)", clean(f.User.Name), f.User.ID)
		c.flushAcks()
	}
	c.write(r)
}
