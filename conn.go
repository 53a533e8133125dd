package main

import (
	"bufio"
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
	// An idle connection's read waits on its own idleReadSize bytes: a
	// ping fits, and a chat of a usual length (a longer frame costs one
	// more read). A readBufSize buffer is borrowed from readPool while
	// more comes in. See lineReader.
	idleReadSize = 256
	readBufSize  = 4096
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
	pending []<-chan struct{}  // deferred replies not yet done
	idleBuf [idleReadSize]byte // where a read waits while no frame is coming in
}

func newConn(srv *Server, nc net.Conn, id uint64) *conn {
	c := &conn{
		srv:   srv,
		nc:    nc,
		id:    id,
		slots: make(chan struct{}, maxUnwritten),
		dead:  make(chan struct{}),
		wake:  make(chan struct{}, 1),
	}
	c.log = slog.New(connLog{c})
	return c
}

// connLog is the handler of a connection's logger: srv.log's, with the
// connection's attributes first. It adds them when a record is logged;
// slog.With would format them up front, for every connection, in a few
// hundred bytes it keeps while idle.
type connLog struct{ c *conn }

func (h connLog) Enabled(ctx context.Context, l slog.Level) bool {
	return h.c.srv.log.Enabled(ctx, l)
}

func (h connLog) Handle(ctx context.Context, r slog.Record) error {
	r2 := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r2.AddAttrs(h.attrs()...)
	r.Attrs(func(a slog.Attr) bool {
		r2.AddAttrs(a)
		return true
	})
	return h.c.srv.log.Handler().Handle(ctx, r2)
}

func (h connLog) WithAttrs(as []slog.Attr) slog.Handler {
	return h.c.srv.log.Handler().WithAttrs(h.attrs()).WithAttrs(as)
}

func (h connLog) WithGroup(name string) slog.Handler {
	return h.c.srv.log.Handler().WithAttrs(h.attrs()).WithGroup(name)
}

func (h connLog) attrs() []slog.Attr {
	return []slog.Attr{slog.Uint64("conn", h.c.id), slog.String("remote", h.c.nc.RemoteAddr().String())}
}

func (c *conn) userID() int64 {
	if s := c.sess.Load(); s != nil {
		return s.user.ID
	}
	return 0
}

// serve runs the reader loop until the connection ends, then tears the
// session down and waits for the writer to finish.
//
// serve and readLoop stay on the reader's stack while it waits for input,
// and under every request it handles: they keep small frames and leave the
// rest of the work to the functions they call. An idle reader's stack is
// then 4 KiB, not 8 (see lineReader).
func (c *conn) serve() {
	var writer sync.WaitGroup
	writer.Go(c.writeLoop)
	c.windDown(c.readLoop())
	writer.Wait()
	c.nc.Close()
}

// windDown follows the reader loop: it ends the session, then has the
// writer send what is queued, then final (if any), and close.
func (c *conn) windDown(final []byte, eof bool) {
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
}

// readLoop reads frames until EOF, an error, the idle timeout or shutdown.
// It returns a last frame to send before closing, if any, and whether the
// client closed its side cleanly.
func (c *conn) readLoop() (last []byte, eof bool) {
	lr := lineReader{c: c, next: true}
	defer lr.release()
	for !c.srv.closing.Load() {
		line, ok, err := lr.line()
		switch {
		case ok && err == nil:
			c.handleLine(line)
			if c.isDraining() {
				return nil, false
			}
		case err == nil:
			lr.err = lr.fill() // the one call that waits
		default:
			return c.readEnd(line, ok, err)
		}
	}
	return nil, false
}

// readEnd handles the error that ends the reader loop, and a last frame
// without '\n' before EOF, which it serves: the client may have
// half-closed and be waiting for the reply.
func (c *conn) readEnd(line []byte, ok bool, err error) (last []byte, eof bool) {
	if perr, isProto := err.(*ProtoError); isProto {
		c.srv.metrics.errors.inc("error", string(perr.Code))
		return errReply("error", nil, perr), false
	}
	if ok {
		c.handleLine(line)
	}
	c.logReadEnd(err)
	return nil, errors.Is(err, io.EOF)
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
		c.badFrame(r, perr)
		return
	}
	c.srv.dispatch(c, r)
}

// badFrame answers a frame that is not a request.
func (c *conn) badFrame(r *Request, perr *ProtoError) {
	var rid []byte
	if r != nil {
		rid = r.RID
	}
	c.srv.metrics.errors.inc("error", string(perr.Code))
	c.reply(errReply("error", rid, perr))
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
	c.signal() // the writer waits on wake alone when idle
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
			if tc, ok := c.nc.(*net.TCPConn); ok {
				tc.CloseWrite()
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
