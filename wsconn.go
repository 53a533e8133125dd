package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"chat/internal/wire"
)

// The protocol over WebSocket (docs/protocol.md, "WebSocket"): wsConn
// makes an upgraded connection look like the client port's byte stream,
// so that conn.go serves it unchanged (its reader and writer goroutines,
// its queues and bounds, the login and idle deadlines, sessions, pushes).
//
//   - Reading: a pump goroutine reads one message at a time and hands its
//     bytes to Read, then a '\n'. A raw '\n' inside a text message becomes
//     '\r': both are JSON whitespace, and inside a string both are invalid,
//     so the message stays one frame and means what JSON says it means. A
//     read deadline ends a waiting Read and leaves the WebSocket open: a
//     connection told to stop reading (shutdown, kicked) still sends its
//     last frame and a close frame. (The library's reads cannot be cut
//     short without closing the connection, hence the goroutine.) The pump
//     hands over a chunk and waits for Read to take it: a client that sends
//     more than the server reads is not read, as on TCP.
//   - Writing: the writer's output is split at each '\n' into text
//     messages; a frame split across two writes is sent as one message in
//     fragments. The writes of one Write go out in one flush (corkConn), as
//     the writer batches them on TCP.
//   - Pings are answered by the library while the pump reads; they never
//     reach Read, so they move neither the idle nor the login deadline.
type wsConn struct {
	ws    *websocket.Conn
	nc    *corkConn     // the upgraded connection under ws
	going func() bool   // the server is shutting down: close with 1001
	max   int           // -max-frame
	quit  chan struct{} // closed by Close: the pump stops
	once  sync.Once     // guards close(quit)

	in     chan wsChunk  // pump → Read; never closed
	taken  chan struct{} // Read → pump: the last chunk is read; 1-buffered
	rdl    deadline
	tooBig atomic.Bool // a message passed -max-frame: close with 1009

	// Read's own (the conn's reader goroutine).
	rest  []byte // the part of the current chunk not yet read
	fatal error  // the error that ended the input

	// Write's own (the conn's writer goroutine).
	wdl time.Time      // the write deadline, applied during each Write
	msg io.WriteCloser // a frame begun in an earlier Write; nil between frames
}

// wsChunk is what the pump hands to Read: bytes of a message, or an error.
type wsChunk struct {
	b   []byte
	err error
}

// errBinaryMessage is a binary message: a bad_frame reply, and the
// connection stays open (conn.readLoop). It is not a terminal error.
var errBinaryMessage = protoErr(wire.CodeBadFrame, "binary message: each frame goes in a text message")

// errClientClosed is a WebSocket the client closed (a close frame, or the
// TCP connection's end): like a TCP client that closed both ways.
var errClientClosed = fmt.Errorf("WebSocket closed by the client: %w", net.ErrClosed)

// newWSConn wraps an upgraded connection and starts its pump.
func newWSConn(ws *websocket.Conn, nc *corkConn, maxFrame int, going func() bool) *wsConn {
	// Messages are streamed through Read and bounded by -max-frame there:
	// the library's own limit would close the connection without the
	// frame_too_large reply.
	ws.SetReadLimit(-1)
	w := &wsConn{
		ws: ws, nc: nc, going: going, max: maxFrame,
		quit:  make(chan struct{}),
		in:    make(chan wsChunk),
		taken: make(chan struct{}, 1),
	}
	go w.pump()
	return w
}

// pump reads messages until the connection ends or a message is too long.
func (w *wsConn) pump() {
	for {
		typ, r, err := w.ws.Reader(context.Background())
		if err != nil {
			w.hand(wsChunk{err: wsReadErr(err)})
			return
		}
		if typ == websocket.MessageBinary {
			n, err := io.Copy(io.Discard, io.LimitReader(r, int64(w.max)+1))
			switch {
			case err != nil:
				w.hand(wsChunk{err: wsReadErr(err)})
				return
			case n > int64(w.max):
				w.hand(wsChunk{err: w.tooLarge()})
				return
			}
			if !w.hand(wsChunk{err: errBinaryMessage}) {
				return
			}
			continue
		}
		if !w.text(r) {
			return
		}
	}
}

// text hands over one text message and its '\n'. It reports whether the
// pump goes on. A message that fits the buffer goes over whole, '\n' and
// all, in one hand-over: each is two goroutine switches.
func (w *wsConn) text(r io.Reader) bool {
	// A buffer is held only while a message comes in.
	bp := readPool.Get().(*[]byte)
	defer readPool.Put(bp)
	buf := *bp
	room := len(buf) - 1 // for the '\n' at the end
	size, last, held := 0, byte(0), 0
	for {
		n, err := r.Read(buf[held:room])
		chunk := buf[held : held+n]
		for i := 0; ; {
			j := bytes.IndexByte(chunk[i:], '\n')
			if j < 0 {
				break
			}
			chunk[i+j] = '\r'
			i += j + 1
		}
		if n > 0 {
			size, last = size+n, chunk[n-1]
		}
		held += n
		// As on the client port: -max-frame bytes, a '\r' at the end not
		// counted (here, a '\n' at the end of the message).
		if size > w.max+1 || errors.Is(err, io.EOF) && size > w.max && !(size == w.max+1 && last == '\r') {
			w.hand(wsChunk{err: w.tooLarge()})
			return false
		}
		switch {
		case errors.Is(err, io.EOF):
			buf[held] = '\n'
			return w.hand(wsChunk{b: buf[:held+1]})
		case err != nil:
			w.hand(wsChunk{err: wsReadErr(err)})
			return false
		case held == room:
			if !w.hand(wsChunk{b: buf[:held]}) {
				return false
			}
			held = 0
		}
	}
}

func (w *wsConn) tooLarge() *ProtoError {
	w.tooBig.Store(true)
	return protoErr(wire.CodeFrameTooLarge, "frame longer than %d bytes", w.max)
}

// hand gives Read a chunk and, for bytes, waits until they are read (the
// pump's buffer is then free). It returns false once the connection is
// closed.
func (w *wsConn) hand(ch wsChunk) bool {
	select {
	case w.in <- ch:
	case <-w.quit:
		return false
	}
	if ch.b == nil {
		return true
	}
	select {
	case <-w.taken:
		return true
	case <-w.quit:
		return false
	}
}

// wsReadErr is the error Read returns for the library's read error err.
func wsReadErr(err error) error {
	if websocket.CloseStatus(err) != -1 || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errClientClosed
	}
	return err
}

// Read returns the bytes of the messages, each followed by '\n'. It
// returns errBinaryMessage once for a binary message and goes on after it;
// any other error ends the input.
func (w *wsConn) Read(p []byte) (int, error) {
	expired := w.rdl.wait()
	select {
	case <-expired:
		return 0, os.ErrDeadlineExceeded
	default:
	}
	if len(w.rest) == 0 {
		if w.fatal != nil {
			return 0, w.fatal
		}
		select {
		case ch := <-w.in:
			if ch.err != nil {
				if ch.err != errBinaryMessage {
					w.fatal = ch.err
				}
				return 0, ch.err
			}
			w.rest = ch.b
		case <-expired:
			return 0, os.ErrDeadlineExceeded
		case <-w.quit:
			return 0, net.ErrClosed
		}
	}
	n := copy(p, w.rest)
	w.rest = w.rest[n:]
	if len(w.rest) == 0 {
		w.rest = nil
		w.taken <- struct{}{}
	}
	return n, nil
}

// Write sends each complete frame of p ('\n' ends one) as a text message,
// and the end of p, if it does not end a frame, as the start of the next.
// The messages go out in one flush.
func (w *wsConn) Write(p []byte) (int, error) {
	w.nc.cork(w.wdl)
	n, err := w.write(p)
	if ferr := w.nc.uncork(); err == nil {
		err = ferr
	}
	return n, err
}

func (w *wsConn) write(p []byte) (int, error) {
	ctx := context.Background() // the write deadline bounds the writes (cork)
	done := 0
	for done < len(p) {
		rest := p[done:]
		i := bytes.IndexByte(rest, '\n')
		var err error
		switch {
		case i < 0: // a frame to be continued in the next Write
			if w.msg == nil {
				w.msg, err = w.ws.Writer(ctx, websocket.MessageText)
			}
			if err == nil {
				_, err = w.msg.Write(rest)
			}
			i = len(rest) - 1
		case w.msg != nil: // the end of a frame begun before
			if i > 0 {
				_, err = w.msg.Write(rest[:i])
			}
			if err == nil {
				err = w.msg.Close()
			}
			w.msg = nil
		default:
			err = w.ws.Write(ctx, websocket.MessageText, rest[:i])
		}
		if err != nil {
			return done, err
		}
		done += i + 1
	}
	return done, nil
}

// CloseWrite ends the connection after the writer's last frame: a close
// frame, then the closing handshake (bounded by the library: 5 s to write,
// 5 s for the client's answer). 1001 (going away) at a shutdown, 1009
// (message too big) after frame_too_large, 1000 otherwise: the frame before
// says why (kicked, an error).
func (w *wsConn) CloseWrite() error {
	code, reason := websocket.StatusNormalClosure, ""
	switch {
	case w.tooBig.Load():
		code, reason = websocket.StatusMessageTooBig, "frame too large"
	case w.going():
		code, reason = websocket.StatusGoingAway, "server shutting down"
	}
	return w.ws.Close(code, reason)
}

// Close closes the connection at once, without a closing handshake, and
// stops the pump. It never waits: the socket's close unblocks the reads and
// writes in progress, and the library's own teardown waits for them on a
// goroutine of its own.
func (w *wsConn) Close() error {
	w.once.Do(func() { close(w.quit) })
	w.rdl.stop()
	err := w.nc.Close()
	go w.ws.CloseNow()
	return err
}

func (w *wsConn) LocalAddr() net.Addr  { return w.nc.LocalAddr() }
func (w *wsConn) RemoteAddr() net.Addr { return w.nc.RemoteAddr() }

func (w *wsConn) SetDeadline(t time.Time) error {
	w.SetReadDeadline(t)
	return w.SetWriteDeadline(t)
}

// SetReadDeadline may be called from any goroutine (stopReading does).
func (w *wsConn) SetReadDeadline(t time.Time) error {
	w.rdl.set(t)
	return nil
}

// SetWriteDeadline is the writer goroutine's: it applies to its next
// Writes. The socket has no write deadline between Writes, so that the
// library's pongs and close frame are not cut by an old one.
func (w *wsConn) SetWriteDeadline(t time.Time) error {
	w.wdl = t
	return nil
}

// deadline is a read deadline a blocked Read can wait on.
type deadline struct {
	mu    sync.Mutex // guards the fields below
	at    time.Time
	timer *time.Timer
	done  chan struct{} // closed once at has passed; replaced by set after
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.at = t
	if d.done == nil || isClosed(d.done) {
		d.done = make(chan struct{})
	}
	if t.IsZero() {
		if d.timer != nil {
			d.timer.Stop()
		}
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		close(d.done)
		return
	}
	// One timer, reset: a firing that was meant for an earlier deadline
	// finds at in the future and does nothing.
	if d.timer == nil {
		d.timer = time.AfterFunc(dur, d.fire)
	} else {
		d.timer.Reset(dur)
	}
}

func (d *deadline) fire() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.at.IsZero() && !time.Now().Before(d.at) && !isClosed(d.done) {
		close(d.done)
	}
}

// wait returns a channel closed once the deadline has passed.
func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done == nil {
		d.done = make(chan struct{})
	}
	return d.done
}

func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// corkConn is the connection under a WebSocket. Between cork and uncork
// the library's writes, which it flushes at the end of each message, are
// held in a buffer and go out together at uncork: a batch of frames costs
// one write to the socket, not one per frame.
type corkConn struct {
	net.Conn
	// mu orders the buffered bytes against writes from outside a batch
	// (the pongs the pump's reads answer) and uncork's flush: it is held
	// across those socket writes, as a net.Conn holds its own write lock.
	mu  sync.Mutex
	buf *bufio.Writer // borrowed from writerPool while corked; nil otherwise
}

// cork starts a batch, whose socket writes must end by deadline (zero:
// none).
func (c *corkConn) cork(deadline time.Time) {
	c.Conn.SetWriteDeadline(deadline)
	c.mu.Lock()
	c.buf = writerPool.Get().(*bufio.Writer)
	c.buf.Reset(c.Conn)
	c.mu.Unlock()
}

// uncork writes what the batch holds and clears the socket's write
// deadline.
func (c *corkConn) uncork() error {
	c.mu.Lock()
	err := c.buf.Flush()
	c.buf.Reset(nil)
	writerPool.Put(c.buf)
	c.buf = nil
	c.mu.Unlock()
	c.Conn.SetWriteDeadline(time.Time{})
	return err
}

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.buf != nil {
		return c.buf.Write(p)
	}
	return c.Conn.Write(p)
}
