package main

import (
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
	// writeTimeout bounds one flush to a client, and each releaseEvery
	// bytes of a longer write: a client that reads nothing for this long
	// is closed.
	writeTimeout = 15 * time.Second
	// releaseEvery: the writer takes what it wrote off the queue's count
	// (and renews its deadline) at least this often within a batch.
	releaseEvery = 32 << 10
	// maxUnwritten bounds the deferred replies whose work is still running:
	// past it the reader waits for that work before the next request.
	maxUnwritten = 1024
	// deferredOverhead is what a deferred reply counts against
	// -send-buffer beyond its request's length (see outFrame.n).
	deferredOverhead = 256
	// An idle connection's read waits on its own idleReadSize bytes: a
	// ping fits, and a chat of a usual length (a longer frame costs one
	// more read). A readBufSize buffer is borrowed from readPool while
	// more comes in. See lineReader.
	idleReadSize = 256
	readBufSize  = 4096
	writeBufSize = 8192
)

// conn is one client connection. Its reader goroutine (serve) decodes and
// dispatches requests in order; its writer goroutine (writeLoop) sends what
// the queues hold and flushes when they run empty.
//
// Two queues: replies and the login backlog go in order through ordered;
// live pushes go through pushes, which anyone may add to without blocking.
// A push never waits behind a reply whose work is still running.
//
// What is queued, both queues together, is bounded in bytes by
// -send-buffer (docs/protocol.md, "Limits and abuse"). Replies and backlog
// frames wait for room: the reader before it decodes the next request
// (waitRoom), the backlog streamer before each message, until the writer
// has brought the queue under the bound; a client that does not read stops
// being read, and TCP pushes back on it. Pushes cannot wait: they count in
// the same total (so they too hold the reader back), and a connection whose
// unsent pushes pass -send-queue in number or -send-buffer in bytes is
// closed as too slow (what it missed stays pending in the store). So the
// queue holds at most -send-buffer, plus the frames admitted last (a reply,
// a few bytes or, for history, at most -send-buffer; a backlog message),
// plus pushes up to -send-buffer.
type conn struct {
	srv *Server
	nc  net.Conn
	id  uint64
	log *slog.Logger

	dead chan struct{} // closed once the connection is being torn down
	once sync.Once     // guards close(dead)
	wake chan struct{} // the writer's doorbell; never closed

	mu        sync.Mutex // guards the fields below
	ordered   []outFrame
	pushes    [][]byte
	unsent    int // live pushes queued or being written
	pushBytes int // their bytes
	// queued is the bytes of every frame queued or being written, replies,
	// backlog and pushes together (outFrame.n for ordered frames): what
	// -send-buffer bounds.
	queued int
	// room is closed when queued falls under -send-buffer, and by
	// stopReading; nil while nobody waits.
	room     chan struct{}
	held     bool // pushes wait until the login reply is queued
	draining bool // nothing more is queued; the writer flushes, sends last, closes
	last     []byte

	// sess is the logged-in session; nil when logged out. Set only by the
	// reader goroutine; read by others through userID.
	sess atomic.Pointer[session]

	// Reader-goroutine state.
	pending []<-chan struct{} // deferred replies not yet done
	// loginBy is the login deadline, zero while logged in (see
	// loggedIn); a read never waits past it.
	loginBy time.Time
	lineLen int                // the length of the request being handled
	idleBuf [idleReadSize]byte // where a read waits while no frame is coming in
}

func newConn(srv *Server, nc net.Conn, id uint64) *conn {
	c := &conn{
		srv:     srv,
		nc:      nc,
		id:      id,
		dead:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
		loginBy: time.Now().Add(srv.cfg.LoginTimeout),
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
		final = c.srv.shutdownPush
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
			if !c.waitRoom(nil) {
				return nil, false
			}
			c.handleLine(line)
			if c.isDraining() {
				return nil, false
			}
		case err == nil:
			lr.err = lr.fill() // the one call that waits
		case err == errBinaryMessage:
			// A WebSocket binary message (wsconn.go): answered as a
			// line that is not a frame would be; reading goes on.
			lr.err = nil
			if !c.waitRoom(nil) {
				return nil, false
			}
			c.badFrame(nil, errBinaryMessage)
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
	case errors.Is(err, os.ErrDeadlineExceeded) && !c.srv.closing.Load() && !c.isDraining() &&
		!c.loginBy.IsZero() && !time.Now().Before(c.loginBy):
		c.srv.metrics.loginTimeouts.Add(1)
		c.log.Debug("closed: not logged in within -login-timeout")
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
	c.lineLen = len(line)
	before := c.sess.Load()
	c.srv.dispatch(c, r)
	if after := c.sess.Load(); after != before {
		c.loggedIn(after != nil)
	}
}

// loggedIn sets the login deadline after the connection's session came or
// went. -login-timeout runs from the connection's start, and again, whole,
// from the end of a session (a logout, or a login on a logged-in connection
// that failed): a connection never stays without a session for longer,
// whatever it sends meanwhile, since blank lines and pings do not move the
// deadline. While logged in it does not apply; the idle timeout does.
func (c *conn) loggedIn(in bool) {
	if in {
		c.loginBy = time.Time{}
	} else {
		c.loginBy = time.Now().Add(c.srv.cfg.LoginTimeout)
	}
}

// readDeadline is when a read that starts waiting for a frame now must end:
// after the idle timeout, or at the login deadline if that comes first.
func (c *conn) readDeadline() time.Time {
	d := time.Now().Add(c.srv.cfg.IdleTimeout)
	if !c.loginBy.IsZero() && c.loginBy.Before(d) {
		return c.loginBy
	}
	return d
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

// reply queues a ready reply. It does not wait: the reader waited for room
// before it decoded the request (waitRoom).
func (c *conn) reply(b []byte) {
	c.queue(outFrame{b: b, n: len(b)}, nil)
}

// replyLater queues a reply that fill builds once wait is closed.
func (c *conn) replyLater(wait <-chan struct{}, fill func() []byte) {
	c.pending = append(c.pending, wait)
	c.queue(outFrame{n: c.lineLen + deferredOverhead, wait: wait, fill: fill}, nil)
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
	c.finish(kickedFrame(reasonTakenOver))
}

// The reasons of a kicked push.
const (
	reasonTakenOver       = "you logged in from another connection on this device"
	reasonLoggedOutAll    = "you logged out of every device"
	reasonPasswordChanged = "your password was changed on another device"
	reasonAccountDeleted  = "your account was deleted"
)

func kickedFrame(reason string) []byte {
	return pushFrame("kicked", struct {
		Reason string `json:"reason"`
	}{reason})
}

// abort closes the connection now, dropping whatever is queued.
func (c *conn) abort() {
	c.mu.Lock()
	c.draining = true
	c.forgetQueued(true)
	c.pushes, c.last = nil, nil
	c.mu.Unlock()
	c.markDead()
	c.signal() // the writer waits on wake alone when idle
	c.nc.Close()
}

func (c *conn) markDead() { c.once.Do(func() { close(c.dead) }) }

// stopReading wakes the reader out of its read, or out of its wait for
// room, so that it winds down.
func (c *conn) stopReading() {
	c.nc.SetReadDeadline(time.Now())
	c.mu.Lock()
	c.wakeRoom()
	c.mu.Unlock()
}
