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

// outFrame is one frame waiting in a connection's ordered queue.
type outFrame struct {
	b []byte
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

// conn is one client connection. Its reader goroutine (serve) decodes and
// dispatches requests in order; its writer goroutine (writeLoop) sends what
// the queues hold and flushes when they run empty.
//
// Two queues: replies and the login backlog go in order through ordered,
// each holding an unwritten slot (bounded by slots); live pushes go through
// pushes, which anyone may add to without blocking. A push never waits
// behind a reply whose work is still running, and a full push queue closes
// the connection as too slow (what it missed stays pending in the store).
type conn struct {
	srv *Server
	nc  net.Conn
	id  uint64
	log *slog.Logger

	slots chan struct{} // unwritten ordered frames; never closed
	dead  chan struct{} // closed once the connection is being torn down
	once  sync.Once     // guards close(dead)

	mu       sync.Mutex // guards the fields below
	ordered  []outFrame
	pushes   [][]byte
	unsent   int  // live pushes queued or being written
	held     bool // pushes wait until the login reply is queued
	draining bool // nothing more is queued; the writer flushes, sends last, closes
	last     []byte
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
	final, eof := c.readLoop()
	c.waitPending()
	if s := c.sess.Load(); s != nil {
		if eof {
			// A client that half-closed after logging in (printf ... | nc)
			// still gets its backlog, as it would its replies.
			select {
			case <-s.backlogDone:
			case <-c.dead:
			}
		}
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
// It returns a last frame to send before closing, if any, and whether the
// client closed its side cleanly.
func (c *conn) readLoop() (last []byte, eof bool) {
	br := bufio.NewReaderSize(c.nc, readBufSize)
	var long []byte // a frame longer than the read buffer, gathered
	max := c.srv.cfg.MaxFrame
	for {
		if c.srv.closing.Load() {
			return nil, false
		}
		c.nc.SetReadDeadline(time.Now().Add(c.srv.cfg.IdleTimeout))
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(long)+len(chunk) > max+1 { // +1: a '\r' before '\n' is not counted
				return c.tooLarge(), false
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
			return nil, errors.Is(err, io.EOF)
		}
		line := chunk[:len(chunk)-1]
		if long != nil {
			line = append(long, line...)
			long = nil
		}
		if n := len(bytes.TrimSuffix(line, []byte{'\r'})); n > max {
			return c.tooLarge(), false
		}
		c.handleLine(line)
		if c.isDraining() {
			return nil, false
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
	c.enqueue(outFrame{b: b}, nil)
}

// replyLater queues a reply that fill builds once wait is closed.
func (c *conn) replyLater(wait <-chan struct{}, fill func() []byte) {
	c.pending = append(c.pending, wait)
	c.enqueue(outFrame{wait: wait, fill: fill}, nil)
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

// enqueue adds f to the ordered queue once an unwritten slot is free. It
// returns false if the connection ended first, or, when only is not nil,
// if only is no longer the connection's session (a backlog frame must not
// follow its session's logout reply).
func (c *conn) enqueue(f outFrame, only *session) bool {
	select {
	case c.slots <- struct{}{}:
	case <-c.dead:
		return false
	}
	c.mu.Lock()
	if c.draining || only != nil && c.sess.Load() != only {
		c.mu.Unlock()
		<-c.slots
		return false
	}
	c.ordered = append(c.ordered, f)
	c.mu.Unlock()
	c.signal()
	return true
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
	clear(c.pushes)
	c.pushes = c.pushes[:0]
	c.unsent = 0
	c.mu.Unlock()
}

// deliver queues a live push. It never blocks: when the queue already holds
// -send-queue unsent pushes the connection is closed as too slow.
func (c *conn) deliver(p *Push) {
	c.mu.Lock()
	if c.draining {
		c.mu.Unlock()
		return
	}
	if c.unsent >= c.srv.cfg.SendQueue {
		dropped := c.unsent
		c.mu.Unlock()
		c.srv.metrics.slowClosed.Add(1)
		c.srv.metrics.pushesDropped.Add(int64(dropped) + 1)
		c.log.Info("closing slow client", "unsent_pushes", dropped)
		c.abort()
		return
	}
	c.unsent++
	c.pushes = append(c.pushes, p.Frame)
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

// finish stops taking frames: the writer sends what is queued, then last
// (if any), and closes the connection.
func (c *conn) finish(last []byte) {
	c.mu.Lock()
	if !c.draining {
		c.last = last
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
	c.ordered, c.pushes, c.last = nil, nil, nil
	c.mu.Unlock()
	c.markDead()
	c.nc.Close()
}

func (c *conn) markDead() { c.once.Do(func() { close(c.dead) }) }

// stopReading wakes the reader out of its read so that it winds down.
func (c *conn) stopReading() { c.nc.SetReadDeadline(time.Now()) }

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
		replies = append(replies[:0], c.ordered[:n]...)
		rest := copy(c.ordered, c.ordered[n:])
		clear(c.ordered[rest:])
		c.ordered = c.ordered[:rest]
		var headWait <-chan struct{}
		if rest > 0 {
			headWait = c.ordered[0].wait
		}
		if !c.held {
			pushes, c.pushes = c.pushes, pushes[:0]
		}
		finished := c.draining && rest == 0 && (len(c.pushes) == 0 || c.held)
		last := c.last
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
			if tc, ok := c.nc.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
			return
		}
		select {
		case <-c.wake:
		case <-headWait:
		case <-c.dead:
			return
		}
	}
}

var writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, writeBufSize) }}

func (c *conn) writeFrames(bw *bufio.Writer, replies []outFrame, pushes [][]byte) error {
	c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	for _, f := range replies {
		if f.fill != nil {
			f.b = f.fill()
		}
		_, err := bw.Write(f.b)
		<-c.slots
		if err != nil {
			return err
		}
	}
	for _, p := range pushes {
		if _, err := bw.Write(p); err != nil {
			return err
		}
	}
	if len(pushes) > 0 {
		c.mu.Lock()
		c.unsent -= len(pushes)
		c.mu.Unlock()
	}
	return nil
}
