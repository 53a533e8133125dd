package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// The WebSocket transport (an -addr of ws://HOST:PORT/PATH or wss://):
// wsConn makes a WebSocket look like the client port's byte stream, the
// net.Conn that conn's bufio reader and writer sit on, so that everything
// above it (setup calls, the send and read loops, every scenario) runs
// unchanged, and the TCP path does not change at all.
//
//   - Reading: each text message the server sends comes out of Read
//     followed by '\n'. The server never puts a raw '\n' in a message (its
//     frames are JSON), so each message stays one line.
//   - Writing: each '\n'-terminated frame of a Write goes out as one text
//     message without its '\n'; a frame cut across two Writes (bufio
//     splits a batch longer than its buffer) is sent whole with the second.
//     The library flushes the socket after each message: wsSocket holds
//     those flushes until the Write ends, so a pipelined batch of frames
//     costs one socket write, as it does over TCP.
//   - The library reads the socket through a 4 KiB buffer; wsSocket reads
//     ahead with one of the size the TCP path reads with, so that a burst
//     of pushes costs as few socket reads.
//
// Only conn's reader goroutine reads and only one writer (under conn.wmu)
// writes, as for a net.Conn of the TCP path.

// isWS reports whether addr is a WebSocket URL rather than host:port.
func isWS(addr string) bool {
	return strings.HasPrefix(addr, "ws://") || strings.HasPrefix(addr, "wss://")
}

// parseWSAddr checks a WebSocket -addr entry and returns its URL: scheme
// ws or wss, a host, and a path (none means /ws, where the server serves
// the protocol).
func parseWSAddr(addr string) (string, error) {
	u, err := url.Parse(addr)
	if err != nil {
		return "", fmt.Errorf("-addr %q: %w", addr, err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" || u.Host == "" || u.User != nil || u.Fragment != "" {
		return "", fmt.Errorf("-addr %q: want ws://HOST:PORT/ws or wss://HOST:PORT/ws", addr)
	}
	if u.Path == "" {
		u.Path = "/ws"
	}
	return u.String(), nil
}

// transportOf names how the load generator reaches addrs: tcp, ws or wss,
// or those it mixes joined with "+", in the order of their first use.
func transportOf(addrs []string) string {
	var names []string
	for _, a := range addrs {
		name := "tcp"
		switch {
		case strings.HasPrefix(a, "wss://"):
			name = "wss"
		case strings.HasPrefix(a, "ws://"):
			name = "ws"
		}
		found := false
		for _, n := range names {
			found = found || n == name
		}
		if !found {
			names = append(names, name)
		}
	}
	return strings.Join(names, "+")
}

// dialWS opens a WebSocket to url (checked by parseWSAddr), reading the
// socket rbuf bytes at a time; tlsConf is for wss (nil: the system's
// roots).
func dialWS(url string, tlsConf *tls.Config, rbuf int) (*wsConn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var raw *wsSocket
	var d net.Dialer
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	// A transport per connection: its dialer hands back the socket, which
	// the WebSocket outlives the handshake on.
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			raw = &wsSocket{Conn: nc, r: bufio.NewReaderSize(nc, rbuf)}
			return raw, nil
		},
		TLSClientConfig: tlsConf,
		Protocols:       &protocols,
	}
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		return nil, err
	}
	// The server bounds its frames (-send-buffer); a long history reply
	// would pass the library's default of 32 KiB.
	ws.SetReadLimit(-1)
	return &wsConn{ws: ws, raw: raw}, nil
}

// errBinaryMessage: the server sends text messages only.
var errBinaryMessage = errors.New("the server sent a binary message")

// wsConn is a WebSocket as a byte stream of '\n'-terminated frames.
type wsConn struct {
	ws  *websocket.Conn
	raw *wsSocket // the socket under the WebSocket (under TLS for wss)

	// Read's own.
	msg io.Reader // the message being read; nil between messages
	nl  bool      // the message is read: its '\n' is owed

	// Write's own.
	part []byte // a frame begun in an earlier Write
}

// Read returns the bytes of the server's messages, each followed by '\n'.
// A close frame from the server reads as io.EOF, as a TCP close does.
func (c *wsConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if c.nl {
		c.nl = false
		p[0] = '\n'
		return 1, nil
	}
	if c.msg == nil {
		typ, r, err := c.ws.Reader(context.Background())
		if err != nil {
			if websocket.CloseStatus(err) != -1 {
				return 0, io.EOF
			}
			return 0, err
		}
		if typ != websocket.MessageText {
			return 0, errBinaryMessage
		}
		c.msg = r
	}
	n, err := c.msg.Read(p)
	if errors.Is(err, io.EOF) {
		c.msg = nil
		if n < len(p) {
			p[n] = '\n'
			return n + 1, nil
		}
		c.nl = true
		return n, nil
	}
	return n, err
}

// Write sends each '\n'-terminated frame of p as a text message, keeping
// an unterminated end for the next Write; the messages go out in one
// socket write.
func (c *wsConn) Write(p []byte) (int, error) {
	c.raw.cork()
	n, err := c.write(p)
	if ferr := c.raw.uncork(); err == nil {
		err = ferr
	}
	return n, err
}

func (c *wsConn) write(p []byte) (int, error) {
	done := 0
	for {
		i := bytes.IndexByte(p[done:], '\n')
		if i < 0 {
			c.part = append(c.part, p[done:]...)
			return len(p), nil
		}
		msg := p[done : done+i]
		if len(c.part) > 0 {
			c.part = append(c.part, msg...)
			msg = c.part
		}
		var err error
		if len(msg) > 0 { // a blank line is no frame
			err = c.ws.Write(context.Background(), websocket.MessageText, msg)
		}
		c.part = c.part[:0]
		if err != nil {
			return done, err
		}
		done += i + 1
	}
}

// Close drops the connection without a closing handshake, as the TCP
// path's Close does; the server sees the client gone.
func (c *wsConn) Close() error { return c.ws.CloseNow() }

func (c *wsConn) LocalAddr() net.Addr  { return c.raw.LocalAddr() }
func (c *wsConn) RemoteAddr() net.Addr { return c.raw.RemoteAddr() }

// The deadlines are the socket's: past one, a read or write fails and the
// library closes the WebSocket, which for the load generator (a setup
// call's 30 s) ends the connection anyway.
func (c *wsConn) SetDeadline(t time.Time) error      { return c.raw.SetDeadline(t) }
func (c *wsConn) SetReadDeadline(t time.Time) error  { return c.raw.SetReadDeadline(t) }
func (c *wsConn) SetWriteDeadline(t time.Time) error { return c.raw.SetWriteDeadline(t) }

// wsSocket is the socket under a WebSocket. Between cork and uncork the
// library's writes, which it flushes at the end of each message, are held
// and go out together at uncork. Reads go through r.
type wsSocket struct {
	net.Conn
	r *bufio.Reader // the library's reader's (one goroutine at a time)

	// mu orders held bytes against writes from outside a batch (the
	// library's answer to a close frame or a ping, from the reader) and
	// uncork's flush; it is held across those socket writes, as a net.Conn
	// holds its own write lock.
	mu     sync.Mutex
	corked bool
	buf    []byte // held bytes; kept for the next batch
}

func (c *wsSocket) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *wsSocket) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// uncork writes what the batch holds.
func (c *wsSocket) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	if cap(c.buf) > 64<<10 {
		c.buf = nil // an unusually long batch's buffer is not kept
	} else {
		c.buf = c.buf[:0]
	}
	return err
}

func (c *wsSocket) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}
