package client

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"sync"
	"time"
)

// dialServer connects to addr: TCP, then, with conf, the TLS handshake,
// both within timeout.
func dialServer(addr string, conf *tls.Config, timeout time.Duration) (net.Conn, error) {
	deadline := time.Now().Add(timeout)
	nc, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil || conf == nil {
		return nc, err
	}
	tc := tls.Client(nc, conf)
	tc.SetDeadline(deadline)
	if err := tc.Handshake(); err != nil {
		nc.Close()
		return nil, &handshakeError{err}
	}
	tc.SetDeadline(time.Time{})
	return tc, nil
}

// handshakeError is a failed TLS handshake; its text says what to check.
type handshakeError struct{ err error }

func (e *handshakeError) Unwrap() error { return e.err }

func (e *handshakeError) Error() string {
	var unknown x509.UnknownAuthorityError
	var name x509.HostnameError
	var invalid x509.CertificateInvalidError
	var rec tls.RecordHeaderError
	var ne net.Error
	switch {
	case errors.As(e.err, &unknown):
		return "TLS: the server's certificate is not trusted (" + unknown.Error() + "); -ca FILE trusts a private root"
	case errors.As(e.err, &name):
		return "TLS: the server's certificate is for another name (" + name.Error() + ")"
	case errors.As(e.err, &invalid):
		return "TLS: the server's certificate is not valid (" + invalid.Error() + ")"
	case errors.As(e.err, &rec), errors.As(e.err, &ne) && ne.Timeout():
		return "TLS handshake failed (" + dialErrText(e.err) + "): does the server speak TLS?"
	}
	return "TLS handshake failed: " + dialErrText(e.err)
}

// conn is one connection to the server, TCP or TLS: a reader goroutine
// hands its frames to the core, a writer goroutine drains out.
type conn struct {
	nc     net.Conn
	gen    int         // which connection this is, to drop stale events
	out    chan []byte // to the writer; never closed
	closed chan struct{}
	once   sync.Once
}

// connEvent is a frame from a connection, or its end (err set).
type connEvent struct {
	gen int
	f   *frame
	err error
}

const (
	maxInflight  = 256  // requests sent and not yet answered
	writeQueue   = 1024 // frames waiting for the writer; > maxInflight + acks + pings
	writeTimeout = 15 * time.Second
)

func newConn(nc net.Conn, gen int) *conn {
	return &conn{nc: nc, gen: gen, out: make(chan []byte, writeQueue), closed: make(chan struct{})}
}

// close is safe to call twice and from any goroutine. It never blocks:
// on TLS it closes the TCP connection under it, without the close_notify
// alert that (*tls.Conn).Close may wait to write.
func (c *conn) close() {
	c.once.Do(func() {
		close(c.closed)
		if tc, ok := c.nc.(*tls.Conn); ok {
			tc.NetConn().Close()
		} else {
			c.nc.Close()
		}
	})
}

// send queues a frame without blocking; a full queue closes the connection.
func (c *conn) send(b []byte) {
	select {
	case c.out <- b:
	default:
		c.close()
	}
}

func (c *conn) readLoop(events chan<- connEvent, done <-chan struct{}, idle time.Duration) {
	br := bufio.NewReaderSize(c.nc, 64<<10)
	emit := func(ev connEvent) bool {
		select {
		case events <- ev:
			return true
		case <-done:
			return false
		}
	}
	for {
		c.nc.SetReadDeadline(time.Now().Add(idle))
		line, err := br.ReadBytes('\n')
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				select {
				case <-c.closed:
					err = errors.New("connection closed")
				default:
				}
			}
			emit(connEvent{gen: c.gen, err: err})
			c.close()
			return
		}
		f, derr := decodeFrame(line)
		if derr != nil {
			continue // not a frame we can read: ignore it, as unknown pushes
		}
		if !emit(connEvent{gen: c.gen, f: f}) {
			return
		}
	}
}

func (c *conn) writeLoop() {
	bw := bufio.NewWriterSize(c.nc, 32<<10)
	for {
		select {
		case b := <-c.out:
			c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
			if _, err := bw.Write(b); err != nil {
				c.close()
				return
			}
			if len(c.out) == 0 {
				if err := bw.Flush(); err != nil {
					c.close()
					return
				}
			}
		case <-c.closed:
			return
		}
	}
}
