package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// WebSocket test clients: wsTestConn makes a WebSocket look like the
// client port's byte stream, so that wireConn and testClient, and every
// helper built on them, work over /ws unchanged.

// withWeb gives a test server a web port of its own (ts.web).
func withWeb(c *Config) { c.Web = "127.0.0.1:0" }

// wsTestConn is the client side of a WebSocket as a net.Conn: Read returns
// each message the server sends followed by '\n'; Write sends each line it
// is given ('\n' ends one) as a text message, without its '\n'.
type wsTestConn struct {
	ws   *websocket.Conn
	resp *http.Response // the handshake's

	rbuf []byte // the rest of the message being read, and its '\n'
	part []byte // a line begun in an earlier Write

	mu      sync.Mutex // guards the fields below
	wdl     time.Time
	readErr error // what ended the reading: the server's close frame, say
}

var errNewlineInMessage = errors.New("the server sent a message with a newline in it")

func (c *wsTestConn) Read(p []byte) (int, error) {
	if len(c.rbuf) == 0 {
		typ, b, err := c.ws.Read(context.Background())
		if err != nil {
			c.mu.Lock()
			c.readErr = err
			c.mu.Unlock()
			if websocket.CloseStatus(err) != -1 {
				return 0, io.EOF
			}
			return 0, err
		}
		if typ != websocket.MessageText {
			return 0, fmt.Errorf("the server sent a %v message", typ)
		}
		if bytes.IndexByte(b, '\n') >= 0 {
			return 0, errNewlineInMessage
		}
		c.rbuf = append(b, '\n')
	}
	n := copy(p, c.rbuf)
	c.rbuf = c.rbuf[n:]
	return n, nil
}

func (c *wsTestConn) Write(p []byte) (int, error) {
	ctx := context.Background()
	c.mu.Lock()
	if !c.wdl.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, c.wdl)
		defer cancel()
	}
	c.mu.Unlock()
	n := 0
	for {
		i := bytes.IndexByte(p[n:], '\n')
		if i < 0 {
			c.part = append(c.part, p[n:]...)
			return len(p), nil
		}
		msg := p[n : n+i]
		if len(c.part) > 0 {
			msg = append(c.part, msg...)
			c.part = nil
		}
		if err := c.ws.Write(ctx, websocket.MessageText, msg); err != nil {
			return n, err
		}
		n += i + 1
	}
}

// closeStatus is the status of the close frame that ended the reading, -1
// if none did (or not yet).
func (c *wsTestConn) closeStatus() websocket.StatusCode {
	c.mu.Lock()
	defer c.mu.Unlock()
	return websocket.CloseStatus(c.readErr)
}

// Close drops the connection without a closing handshake, as a browser
// that loses its network would.
func (c *wsTestConn) Close() error { return c.ws.CloseNow() }

func (c *wsTestConn) LocalAddr() net.Addr  { return wsAddr{} }
func (c *wsTestConn) RemoteAddr() net.Addr { return wsAddr{} }

func (c *wsTestConn) SetDeadline(t time.Time) error     { return c.SetWriteDeadline(t) }
func (c *wsTestConn) SetReadDeadline(t time.Time) error { return nil }
func (c *wsTestConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.wdl = t
	c.mu.Unlock()
	return nil
}

type wsAddr struct{}

func (wsAddr) Network() string { return "websocket" }
func (wsAddr) String() string  { return "websocket" }

// wsURL is the /ws URL of a web port at addr.
func wsURL(addr string) string { return "ws://" + addr + "/ws" }

// dialWSRaw opens a WebSocket to url, failing the test if it cannot.
func dialWSRaw(t testing.TB, url string, opts *websocket.DialOptions) (*websocket.Conn, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("WebSocket dial %s: %v", url, err)
	}
	ws.SetReadLimit(64 << 20) // history replies are as long as -send-buffer
	t.Cleanup(func() { ws.CloseNow() })
	return ws, resp
}

// dialWS is dial over a WebSocket to the web port at addr.
func dialWS(t testing.TB, addr string) *testClient {
	t.Helper()
	return dialWSURL(t, wsURL(addr), nil)
}

func dialWSURL(t testing.TB, url string, opts *websocket.DialOptions) *testClient {
	t.Helper()
	ws, resp := dialWSRaw(t, url, opts)
	return wsClient(t, &wsTestConn{ws: ws, resp: resp})
}

// dialWSS is dialWS over TLS, trusting roots.
func dialWSS(t testing.TB, addr string, roots *x509.CertPool) *testClient {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	return dialWSURL(t, "wss://"+addr+"/ws", &websocket.DialOptions{HTTPClient: hc})
}

func wsClient(t testing.TB, nc *wsTestConn) *testClient {
	return clientOn(t, newWireConn(nc, 100000))
}

// ws is the WebSocket under a client made by dialWS.
func (c *testClient) ws() *wsTestConn { return c.nc.(*wsTestConn) }

// newWSUser is newUser over a WebSocket.
func newWSUser(t testing.TB, web, prefix string) *testClient {
	t.Helper()
	c := dialWS(t, web)
	signUp(t, c, prefix, "")
	return c
}

// wsClosedWith waits for the server to close c, and checks the status of
// its close frame. It returns the frames that came before.
func wsClosedWith(t testing.TB, c *testClient, status websocket.StatusCode) []frame {
	t.Helper()
	got := c.closed(10 * time.Second)
	if s := c.ws().closeStatus(); s != status {
		t.Fatalf("close status %v, want %v (frames before: %v)", s, status, got)
	}
	return got
}
