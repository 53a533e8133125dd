package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// writeTimeout bounds one flush to a client; a client that reads nothing
	// for this long is closed.
	writeTimeout = 15 * time.Second
	// maxUnwritten bounds replies and backlog frames queued but not yet
	// written; past it the reader (or the backlog streamer) waits, which
	// pushes back on the client through TCP.
	maxUnwritten = 1024
	readBufSize  = 2048
	writeBufSize = 8192
)

// outFrame is one frame waiting in a connection's send queue.
type outFrame struct {
	b []byte
	// A deferred reply: wait closes when the work is done, then fill
	// builds the frame. The writer keeps later frames behind it, so replies
	// go out in request order.
	wait <-chan struct{}
	fill func() []byte
	push bool // a live push: counts toward the -send-queue bound
	slot bool // holds an unwritten slot (a reply or a backlog frame)
}

// conn is one client connection. Its reader goroutine (serve) decodes and
// dispatches requests in order; its writer goroutine (writeLoop) sends what
// the queue holds and flushes when the queue runs empty. Anyone may queue a
// push; queuing never blocks, and a full queue closes the connection.
type conn struct {
	srv *Server
	nc  net.Conn
	id  uint64
	log *slog.Logger

	slots chan struct{} // unwritten replies and backlog frames; never closed
	dead  chan struct{} // closed once the connection is being torn down
	once  sync.Once     // guards close(dead)

	mu       sync.Mutex // guards the fields below
	queue    []outFrame
	pushes   int  // unwritten live pushes, in queue or being written
	draining bool // no more frames are taken; the writer flushes and closes
	wake     chan struct{}

	// sess is the logged-in session; nil when logged out. Set only by the
	// reader goroutine; read by others through userID.
	sess atomic.Pointer[session]

	// Reader-goroutine state.
	pending []<-chan struct{} // deferred replies not yet done
}

func newConn(srv *Server, nc net.Conn, id uint64) *conn {
	return &conn{
		srv:   srv,
		nc:    nc,
		id:    id,
		log:   srv.log.With("conn", id, "remote", nc.RemoteAddr().String()),
		slots: make(chan struct{}, maxUnwritten),
		dead:  make(chan struct{}),
		wake:  make(chan struct{}, 1),
	}
}

func (c *conn) userID() int64 {
	if s := c.sess.Load(); s != nil {
		return s.user.ID
	}
	return 0
}

// serve runs the reader loop until the connection ends, then tears the
// session down and waits for the writer to finish.
func (c *conn) serve() {
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop()
	}()
	final := c.readLoop()
	c.waitPending()
	if s := c.sess.Load(); s != nil {
		c.endSession(context.Background(), s)
	}
	if c.srv.closing.Load() {
		final = pushFrame("shutdown", struct {
			Reason string `json:"reason"`
		}{"the server is shutting down; reconnect to another node"})
	}
	c.finish(final)
	<-writerDone
	c.nc.Close()
}

// readLoop reads frames until EOF, an error, the idle timeout or shutdown.
// It returns a last frame to send before closing, if any.
func (c *conn) readLoop() []byte {
	br := bufio.NewReaderSize(c.nc, readBufSize)
	var long []byte // a frame longer than the read buffer, gathered
	max := c.srv.cfg.MaxFrame
	for {
		if c.srv.closing.Load() {
			return nil
		}
		c.nc.SetReadDeadline(time.Now().Add(c.srv.cfg.IdleTimeout))
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(long)+len(chunk) > max+1 { // +1: a '\r' before '\n' is not counted
				return c.tooLarge()
			}
			long = append(long, chunk...)
			continue
		}
		if err != nil {
			if len(chunk)+len(long) > 0 && errors.Is(err, io.EOF) {
				// A last frame without '\n': serve it, the client may have
				// half-closed and be waiting for the reply.
				line := append(long, chunk...)
				if len(line) <= max {
					c.handleLine(line)
				}
			}
			c.logReadEnd(err)
			return nil
		}
		line := chunk[:len(chunk)-1]
		if long != nil {
			line = append(long, line...)
			long = nil
		}
		if n := len(bytes.TrimSuffix(line, []byte{'\r'})); n > max {
			return c.tooLarge()
		}
		c.handleLine(line)
		if c.isDraining() {
			return nil
		}
	}
}

func (c *conn) tooLarge() []byte {
	c.srv.metrics.errors.inc("error", string(CodeFrameTooLarge))
	return errReply("error", nil, protoErr(CodeFrameTooLarge, "frame longer than %d bytes", c.srv.cfg.MaxFrame))
}

func (c *conn) logReadEnd(err error) {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		c.log.Debug("client closed")
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.log.Debug("closed: idle or shutting down")
	default:
		c.log.Debug("read failed", "err", err)
	}
}

// handleLine decodes one frame and dispatches it.
func (c *conn) handleLine(line []byte) {
	r, perr := decodeFrame(line)
	if r == nil && perr == nil {
		return // blank line
	}
	if perr != nil {
		var rid []byte
		if r != nil {
			rid = r.RID
		}
		c.srv.metrics.errors.inc("error", string(perr.Code))
		c.reply(errReply("error", rid, perr))
		return
	}
	c.srv.dispatch(c, r)
}

// reply queues a ready reply, waiting for an unwritten slot.
func (c *conn) reply(b []byte) {
	c.enqueueSlot(outFrame{b: b, slot: true})
}

// replyLater queues a reply that fill builds once wait is closed.
func (c *conn) replyLater(wait <-chan struct{}, fill func() []byte) {
	c.pending = append(c.pending, wait)
	c.enqueueSlot(outFrame{wait: wait, fill: fill, slot: true})
	if len(c.pending) >= maxUnwritten {
		c.waitPending()
	}
}

// waitPending is the barrier before a request that must see the effects of
// the deferred ones before it (a history after a chat, say).
func (c *conn) waitPending() {
	for _, w := range c.pending {
		<-w // deferred work always completes, also at shutdown
	}
	c.pending = c.pending[:0]
}

// enqueueSlot queues f once an unwritten slot is free. It returns false if
// the connection ended first.
func (c *conn) enqueueSlot(f outFrame) bool {
	select {
	case c.slots <- struct{}{}:
	case <-c.dead:
		return false
	}
	c.mu.Lock()
	if c.draining {
		c.mu.Unlock()
		<-c.slots
		return false
	}
	c.queue = append(c.queue, f)
	c.mu.Unlock()
	c.signal()
	return true
}

// deliver queues a live push. It never blocks: when the queue already holds
// -send-queue unwritten pushes the connection is closed as too slow, and
// what it missed stays pending in the store.
func (c *conn) deliver(p *Push) {
	c.mu.Lock()
	if c.draining {
		c.mu.Unlock()
		return
	}
	if c.pushes >= c.srv.cfg.SendQueue {
		dropped := c.pushes
		c.mu.Unlock()
		c.srv.metrics.slowClosed.Add(1)
		c.srv.metrics.pushesDropped.Add(int64(dropped) + 1)
		c.log.Info("closing slow client", "unsent_pushes", dropped)
		c.abort()
		return
	}
	c.pushes++
	c.queue = append(c.queue, outFrame{b: p.Frame, push: true})
	c.mu.Unlock()
	c.signal()
	if p.Kind == pushMessage {
		c.srv.metrics.messagesPushed.Add(1)
	}
	if p.Kind == pushFriendAdded {
		if s := c.sess.Load(); s != nil {
			s.addFriend(p.Friend)
		}
	}
}

func (c *conn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *conn) isDraining() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.draining
}

// finish queues a last frame (if any), stops taking frames and lets the
// writer flush what is queued before it closes the connection.
func (c *conn) finish(last []byte) {
	c.mu.Lock()
	if !c.draining {
		if last != nil {
			c.queue = append(c.queue, outFrame{b: last})
		}
		c.draining = true
	}
	c.mu.Unlock()
	c.signal()
	c.stopReading()
}

// kick closes a session replaced by a newer login: the kicked push, then close.
func (c *conn) kick() {
	c.srv.metrics.kicked.Add(1)
	c.finish(pushFrame("kicked", struct {
		Reason string `json:"reason"`
	}{"you logged in from another connection"}))
}

// abort closes the connection now, dropping whatever is queued.
func (c *conn) abort() {
	c.mu.Lock()
	c.draining = true
	c.queue = nil
	c.mu.Unlock()
	c.markDead()
	c.nc.Close()
}

func (c *conn) markDead() { c.once.Do(func() { close(c.dead) }) }

// stopReading wakes the reader out of its read so that it winds down.
func (c *conn) stopReading() { c.nc.SetReadDeadline(time.Now()) }

// writeLoop writes queued frames in order, flushing when the queue is empty.
func (c *conn) writeLoop() {
	defer c.markDead()
	bw := bufio.NewWriterSize(c.nc, writeBufSize)
	var batch []outFrame
	for {
		c.mu.Lock()
		for len(c.queue) == 0 && !c.draining {
			c.mu.Unlock()
			select {
			case <-c.wake:
			case <-c.dead:
				return
			}
			c.mu.Lock()
		}
		batch, c.queue = c.queue, batch[:0]
		draining := c.draining
		c.mu.Unlock()

		if err := c.writeBatch(bw, batch); err != nil {
			c.log.Debug("write failed", "err", err)
			c.abort()
			return
		}
		clear(batch) // let the frames go
		c.mu.Lock()
		empty := len(c.queue) == 0
		c.mu.Unlock()
		if empty {
			c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
			if err := bw.Flush(); err != nil {
				c.log.Debug("flush failed", "err", err)
				c.abort()
				return
			}
			if draining {
				if tc, ok := c.nc.(*net.TCPConn); ok {
					tc.CloseWrite()
				}
				return
			}
		}
	}
}

func (c *conn) writeBatch(bw *bufio.Writer, batch []outFrame) error {
	pushes := 0
	defer func() {
		if pushes > 0 {
			c.mu.Lock()
			c.pushes -= pushes
			c.mu.Unlock()
		}
	}()
	c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	for _, f := range batch {
		if f.wait != nil {
			select {
			case <-f.wait:
			default:
				// Do not sit on written replies while waiting for this one.
				if err := bw.Flush(); err != nil {
					return err
				}
				select {
				case <-f.wait:
				case <-c.dead:
					return net.ErrClosed
				}
				c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
			}
			f.b = f.fill()
		}
		if _, err := bw.Write(f.b); err != nil {
			return err
		}
		if f.push {
			pushes++
		}
		if f.slot {
			<-c.slots
		}
	}
	return nil
}
