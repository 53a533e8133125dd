package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsPeer is the server end of a test WebSocket: what it received, one
// string a message, and a way to send it messages.
type wsPeer struct {
	got  chan string
	send chan func(*websocket.Conn) // run on the server's connection
}

// startWSPeer serves one WebSocket at /ws; tlsOn serves it over TLS.
func startWSPeer(t *testing.T, tlsOn bool) (*httptest.Server, *wsPeer) {
	t.Helper()
	p := &wsPeer{got: make(chan string, 100), send: make(chan func(*websocket.Conn), 10)}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ws" {
			http.NotFound(w, r)
			return
		}
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		ws.SetReadLimit(-1)
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		go func() {
			for {
				select {
				case fn := <-p.send:
					fn(ws)
				case <-ctx.Done():
					return
				}
			}
		}()
		for {
			typ, b, err := ws.Read(ctx)
			if err != nil {
				return
			}
			if typ != websocket.MessageText {
				b = append([]byte("binary:"), b...)
			}
			p.got <- string(b)
		}
	})
	ts := httptest.NewUnstartedServer(h)
	if tlsOn {
		ts.StartTLS()
	} else {
		ts.Start()
	}
	t.Cleanup(ts.Close)
	return ts, p
}

func wsURLOf(ts *httptest.Server) string {
	return "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws"
}

// expect reads the next messages the peer received.
func (p *wsPeer) expect(t *testing.T, want ...string) {
	t.Helper()
	for _, w := range want {
		select {
		case got := <-p.got:
			if got != w {
				t.Fatalf("server got %q, want %q", got, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("server got nothing, want %q", w)
		}
	}
}

// writeCounter counts the socket writes under a wsSocket.
type writeCounter struct {
	net.Conn
	mu     sync.Mutex
	writes int
}

func (w *writeCounter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.writes++
	w.mu.Unlock()
	return w.Conn.Write(p)
}

func (w *writeCounter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writes
}

// Frames written become one text message each, without the newline; a
// frame cut across writes goes whole; a batch costs one socket write.
func TestWSWriteFrames(t *testing.T) {
	ts, peer := startWSPeer(t, false)
	c, err := dial(wsURLOf(ts), nil, 4096, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer c.nc.Close()
	ws := c.nc.(*wsConn)
	wc := &writeCounter{Conn: ws.raw.Conn}
	ws.raw.Conn = wc // before any read: the library reads only when asked

	if err := c.write([]byte(`{"type":"ping","rid":1}` + "\n" + `{"type":"ping","rid":2}` + "\n\n" + `{"a":"b"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	peer.expect(t, `{"type":"ping","rid":1}`, `{"type":"ping","rid":2}`, `{"a":"b"}`)
	if n := wc.count(); n != 1 {
		t.Errorf("three frames in %d socket writes, want 1", n)
	}

	// Longer than the 64-byte bufio writer: it reaches wsConn in pieces.
	long := `{"type":"chat","text":"` + strings.Repeat("x", 300) + `"}`
	if err := c.write([]byte(long + "\n" + `{"n":1}` + "\n")); err != nil {
		t.Fatal(err)
	}
	peer.expect(t, long, `{"n":1}`)

	// A frame split across two writes of the adapter itself.
	ws.Write([]byte(`{"split":`))
	ws.Write([]byte(`true}` + "\n" + `{"next":`))
	ws.Write([]byte("1}\n"))
	peer.expect(t, `{"split":true}`, `{"next":1}`)
}

// Each message read comes out as one line; a close frame reads as EOF.
func TestWSReadFrames(t *testing.T) {
	ts, peer := startWSPeer(t, false)
	// A read buffer smaller than a message: lines span the adapter's reads.
	c, err := dial(wsURLOf(ts), nil, 16, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer c.nc.Close()
	long := strings.Repeat("y", 40<<10) // past the library's default read limit
	msgs := []string{`{"type":"ping","rid":1,"ok":true}`, "", long, `{"a":1}`, "0123456789abcde"}
	peer.send <- func(ws *websocket.Conn) {
		for _, m := range msgs {
			ws.Write(context.Background(), websocket.MessageText, []byte(m))
		}
		ws.Close(websocket.StatusNormalClosure, "bye")
	}
	for _, want := range msgs {
		line, err := c.readLine()
		if err != nil {
			t.Fatalf("reading %.20q: %v", want, err)
		}
		if string(line) != want+"\n" {
			t.Fatalf("read %.40q, want %.40q", line, want+"\n")
		}
	}
	if _, err := c.readLine(); !errors.Is(err, io.EOF) {
		t.Errorf("after the close frame: %v, want EOF", err)
	}
}

// A binary message is not a frame of the protocol.
func TestWSReadBinary(t *testing.T) {
	ts, peer := startWSPeer(t, false)
	c, err := dial(wsURLOf(ts), nil, 4096, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer c.nc.Close()
	peer.send <- func(ws *websocket.Conn) { ws.Write(context.Background(), websocket.MessageBinary, []byte("{}")) }
	if _, err := c.readLine(); !errors.Is(err, errBinaryMessage) {
		t.Errorf("binary message read as %v, want errBinaryMessage", err)
	}
}

// A setup call over WebSocket: the request goes as one message, the reply
// is found among pushes, the read deadline is the socket's.
func TestWSCall(t *testing.T) {
	ts, peer := startWSPeer(t, false)
	c, err := dial(wsURLOf(ts), nil, 4096, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer c.nc.Close()
	peer.send <- func(ws *websocket.Conn) {
		ws.Write(context.Background(), websocket.MessageText, []byte(`{"type":"presence","user":{"id":3}}`))
		ws.Write(context.Background(), websocket.MessageText, []byte(`{"type":"login","rid":1,"ok":true,"user":{"id":42,"name":"a"}}`))
	}
	r, err := c.call("login", `"name":"a","password":"p"`)
	if err != nil || !r.ok || r.userID != 42 {
		t.Fatalf("call: %+v, %v", r, err)
	}
	peer.expect(t, `{"type":"login","rid":1,"name":"a","password":"p"}`)

	c.nc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := c.readLine(); err == nil {
		t.Error("a read past the deadline returned a frame")
	}
}

// wss: with the server's certificate trusted (-ca), or any (-insecure);
// with neither, the dial fails.
func TestWSS(t *testing.T) {
	ts, peer := startWSPeer(t, true)
	url := "wss" + strings.TrimPrefix(ts.URL, "https") // no path: /ws
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, flags := range [][]string{{"-ca", caFile}, {"-insecure"}} {
		cfg, err := parseConfig(append([]string{"-addr", url}, flags...), nil)
		if err != nil {
			t.Fatal(err)
		}
		c, err := dial(cfg.addrFor(0), cfg.tls, 4096, 4096)
		if err != nil {
			t.Fatalf("%v: %v", flags, err)
		}
		c.write([]byte(`{"type":"ping"}` + "\n"))
		peer.expect(t, `{"type":"ping"}`)
		c.nc.Close()
	}
	if c, err := dial(url+"/ws", nil, 4096, 4096); err == nil {
		c.nc.Close()
		t.Error("a self-signed certificate was trusted without -ca or -insecure")
	}
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	if c, err := dial(url+"/nope", &tls.Config{RootCAs: pool}, 4096, 4096); err == nil {
		c.nc.Close()
		t.Error("a path that is no WebSocket endpoint: the dial succeeded")
	}
}

// wsSocket holds writes between cork and uncork, and passes them through
// outside.
func TestWSSocketCork(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	wc := &writeCounter{Conn: a}
	c := &wsSocket{Conn: wc, r: bufio.NewReader(wc)}
	got := make(chan []byte, 10)
	go func() {
		buf := make([]byte, 100)
		for {
			n, err := b.Read(buf)
			if err != nil {
				return
			}
			got <- bytes.Clone(buf[:n])
		}
	}()
	next := func() string {
		select {
		case b := <-got:
			return string(b)
		case <-time.After(5 * time.Second):
			t.Fatal("nothing reached the socket in 5 s")
			return ""
		}
	}
	c.cork()
	c.Write([]byte("ab"))
	c.Write([]byte("cd"))
	if wc.count() != 0 {
		t.Fatal("a corked write reached the socket")
	}
	if err := c.uncork(); err != nil {
		t.Fatal(err)
	}
	if s := next(); s != "abcd" || wc.count() != 1 {
		t.Errorf("uncork wrote %q in %d writes", s, wc.count())
	}
	c.Write([]byte("ef"))
	if s := next(); s != "ef" || wc.count() != 2 {
		t.Errorf("uncorked write %q, %d writes", s, wc.count())
	}
	if err := c.uncork(); err != nil || wc.count() != 2 {
		t.Errorf("an empty uncork: %v, %d writes", err, wc.count())
	}
}

func TestWSAddrs(t *testing.T) {
	for _, tc := range []struct {
		addrs     string
		want      []string
		transport string
		err       string
	}{
		{addrs: "a:1", want: []string{"a:1"}, transport: "tcp"},
		{addrs: "ws://a:1/ws", want: []string{"ws://a:1/ws"}, transport: "ws"},
		{addrs: "WS://a:1", want: []string{"ws://a:1/ws"}, transport: "ws"},
		{addrs: "wss://a:1/chat/ws,wss://b:2", want: []string{"wss://a:1/chat/ws", "wss://b:2/ws"}, transport: "wss"},
		{addrs: "ws://a:1/ws,b:2,wss://c:3/ws,d:4", want: []string{"ws://a:1/ws", "b:2", "wss://c:3/ws", "d:4"}, transport: "ws+tcp+wss"},
		{addrs: "http://a:1/ws", err: "want ws://HOST:PORT/ws"},
		{addrs: "ws:///ws", err: "want ws://HOST:PORT/ws"},
		{addrs: "ws://u:p@a:1/ws", err: "want ws://"},
		{addrs: "ws://a:1/%zz", err: "invalid URL escape"},
	} {
		cfg, err := parseConfig([]string{"-addr", tc.addrs}, nil)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: %v, want %q", tc.addrs, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.addrs, err)
			continue
		}
		if strings.Join(cfg.addrs, " ") != strings.Join(tc.want, " ") || transportOf(cfg.addrs) != tc.transport {
			t.Errorf("%s: addrs %q (%s), want %q (%s)", tc.addrs, cfg.addrs, transportOf(cfg.addrs), tc.want, tc.transport)
		}
		for i, a := range cfg.addrs {
			if isWS(a) != strings.Contains(tc.want[i], "://") {
				t.Errorf("isWS(%q) = %v", a, isWS(a))
			}
		}
	}
}

func TestWSTLSFlags(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "x.pem")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"-addr", "a:1", "-insecure"}, "-ca and -insecure are for wss:// addresses"},
		{[]string{"-addr", "ws://a:1/ws", "-ca", notPEM}, "-ca and -insecure are for wss:// addresses"},
		{[]string{"-addr", "wss://a:1/ws", "-ca", notPEM, "-insecure"}, "give one"},
		{[]string{"-addr", "wss://a:1/ws", "-ca", filepath.Join(dir, "none.pem")}, "-ca: open"},
		{[]string{"-addr", "wss://a:1/ws", "-ca", notPEM}, "no PEM certificate"},
	} {
		if _, err := parseConfig(tc.args, nil); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.err)
		}
	}
	cfg, err := parseConfig([]string{"-addr", "wss://a:1/ws,b:2", "-insecure"}, nil)
	if err != nil || cfg.tls == nil || !cfg.tls.InsecureSkipVerify {
		t.Errorf("-insecure: %v, %+v", err, cfg.tls)
	}
}
