package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// The web port (-web; docs/protocol.md, "WebSocket"): the browser client,
// embedded from web/, at /, and the protocol over WebSocket at /ws.
//
//   - Its TCP connections count against -max-conns and -max-conns-per-ip
//     with the client port's, from accept on (webListener): a page's
//     downloads too, and a WebSocket keeps the count of the connection it
//     was upgraded from. X-Forwarded-For is not read: behind a proxy, the
//     proxy's address counts, as on the client port (SECURITY.md).
//   - With -tls-cert it speaks HTTPS only, with the client port's
//     certificate (one certStore: SIGHUP reloads both), HTTP/1.1 only
//     (WebSocket over HTTP/2 is not served).
//   - /ws takes a WebSocket from a page of its own origin, or from a
//     client sending no Origin (not a browser); -web-origins allows other
//     pages. An upgraded connection is served by conn.go through wsConn.

// The page's files; web/test/, node's tests of its logic, stays out.
//
//go:embed web/*.html web/*.js web/*.css web/*.svg
var webFS embed.FS

// listenWeb binds -web and starts serving it; Shutdown closes it.
func (s *Server) listenWeb(certs *certStore) error {
	ln, err := net.Listen("tcp", s.cfg.Web)
	if err != nil {
		return fmt.Errorf("web listen %s: %w", s.cfg.Web, err)
	}
	ln = s.clientListener(&webListener{Listener: ln, srv: s}, certs, "http/1.1")
	static, err := newWebStatic(webFS, "web")
	if err != nil {
		ln.Close()
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", s.serveWS)
	mux.Handle("/", static)
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	srv := &http.Server{
		Handler: mux,
		// Each request, headers and body, as a TLS handshake: at most 10 s
		// (the headers' limit is this one too). No handler reads a body,
		// but net/http drains one before the next request, and a body
		// trickled in would hold the connection's place under the caps
		// for ever. A WebSocket is not bound by it: Hijack clears the
		// connection's deadlines.
		ReadTimeout:    handshakeTimeout(&s.cfg),
		IdleTimeout:    s.cfg.IdleTimeout,
		MaxHeaderBytes: 16 << 10,
		Protocols:      &protocols,
		// Its complaints (a failed handshake, a bad request) are the
		// clients', not the server's: debug lines.
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.mu.Lock()
	s.web, s.webAddr = srv, ln.Addr()
	s.mu.Unlock()
	go srv.Serve(ln)
	return nil
}

// WebAddr is the web port's address; nil without -web.
func (s *Server) WebAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.webAddr
}

// logWebPort logs the address to open in a browser, and warns, as for the
// client port, when plain HTTP is served on an address other hosts reach.
func (s *Server) logWebPort() {
	addr := s.WebAddr()
	if addr == nil {
		return
	}
	scheme, wsScheme := "http", "ws"
	if s.cfg.TLSCert != "" {
		scheme, wsScheme = "https", "wss"
	}
	s.log.Info("web client: "+webURL(scheme, s.cfg.Web, addr), "websocket", webURL(wsScheme, s.cfg.Web, addr)+"ws")
	if scheme == "http" && exposedAddr(addr.String()) {
		s.log.Warn("the web port speaks plain HTTP on an address other hosts can reach: passwords and messages cross the network in clear; -tls-cert and -tls-key turn HTTPS on",
			"addr", addr.String())
	}
}

// webURL is the URL of the web port bound at addr for the -web value
// listen: its host, or localhost when it names none (every interface).
func webURL(scheme, listen string, addr net.Addr) string {
	host, _, err := net.SplitHostPort(listen)
	if err != nil || host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	_, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return scheme + "://" + addr.String() + "/"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/"
}

// serveWS upgrades a request to a WebSocket and starts serving the
// protocol over it. The connection gets goroutines of its own, as the
// client port's do, and the request's returns: what net/http holds for a
// request (its buffers, a deep stack) is not kept for the WebSocket's life.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	if s.closing.Load() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	hw := &corkHijacker{ResponseWriter: w}
	ws, err := websocket.Accept(hw, r, &websocket.AcceptOptions{OriginPatterns: s.cfg.WebOrigins})
	if err != nil {
		// Accept has answered: 403 for an origin not allowed, 400 or 426
		// for a request that is no WebSocket handshake.
		s.log.Debug("WebSocket refused", "remote", r.RemoteAddr, "origin", r.Header.Get("Origin"), "err", err)
		return
	}
	nc := newWSConn(ws, hw.cork, s.cfg.MaxFrame, s.closing.Load)
	c := newConn(s, nc, s.nextID.Add(1))
	if !s.track(c, transportWS) {
		nc.Close()
		return
	}
	go func() {
		defer s.wg.Done()
		c.serve()
		s.untrack(c, transportWS)
	}()
}

// corkHijacker hands the WebSocket library a connection that batches its
// writes (corkConn) when it hijacks the request's.
type corkHijacker struct {
	http.ResponseWriter
	cork *corkConn
}

func (h *corkHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := brw.Flush(); err != nil { // the 101 response, if still held
		nc.Close()
		return nil, nil, err
	}
	h.cork = &corkConn{Conn: nc}
	// Small buffers instead of net/http's 4 KiB ones, held for the
	// WebSocket's life. The writer holds a frame's header while the
	// payload, written straight through, follows it to the cork's batch.
	// The reader must start with what net/http read past the request (a
	// client's first message may have come with it), held in its buffer:
	// the library takes what is buffered there and reads the connection
	// after it. A frame's header is read through it, a payload longer than
	// it straight into its place.
	ahead, _ := brw.Reader.Peek(brw.Reader.Buffered())
	br := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(ahead)), nc), max(1024, len(ahead)))
	if _, err := br.Peek(len(ahead)); err != nil {
		nc.Close()
		return nil, nil, err
	}
	return h.cork, bufio.NewReadWriter(br, bufio.NewWriterSize(h.cork, 512)), nil
}

func (h *corkHijacker) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// webListener counts the web port's connections against the connection
// caps, as the client port's accept loop does: past one, a connection is
// closed at once.
type webListener struct {
	net.Listener
	srv *Server
}

func (l *webListener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		release, ok := l.srv.admit(nc)
		if !ok {
			continue
		}
		return &countedConn{Conn: nc, release: release}, nil
	}
}

// countedConn gives its place under the caps back when closed.
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// webStatic serves the embedded client: GET and HEAD of its files, /
// (and a directory's path) as index.html, nothing else. Each file has an
// ETag of its content and Cache-Control no-cache: a browser asks again
// each time and gets 304 until a new binary serves a new client.
type webStatic struct {
	files map[string]webFile // by URL path
}

type webFile struct {
	name  string
	body  []byte
	ctype string
	etag  string
}

// webTypes are the content types of what the client is made of, fixed
// here rather than taken from the host's mime.types.
var webTypes = map[string]string{
	".html":        "text/html; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".mjs":         "text/javascript; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".json":        "application/json",
	".webmanifest": "application/manifest+json",
	".svg":         "image/svg+xml",
	".png":         "image/png",
	".ico":         "image/x-icon",
	".webp":        "image/webp",
	".woff2":       "font/woff2",
	".txt":         "text/plain; charset=utf-8",
	".map":         "application/json",
}

// webSecurityHeaders go with every file. The policy lets the page load
// only its own files and connect only to its own origin (the WebSocket
// included): injected markup could neither run a script nor send data
// elsewhere. Inline styles are allowed, inline scripts are not.
var webSecurityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; " +
		"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
	"X-Content-Type-Options": "nosniff",
	"Referrer-Policy":        "no-referrer",
	"Cache-Control":          "no-cache",
}

func newWebStatic(fsys fs.FS, dir string) (*webStatic, error) {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		return nil, err
	}
	st := &webStatic{files: map[string]webFile{}}
	err = fs.WalkDir(sub, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(sub, name)
		if err != nil {
			return err
		}
		ext := path.Ext(name)
		ctype := webTypes[ext]
		if ctype == "" {
			if ctype = mime.TypeByExtension(ext); ctype == "" {
				ctype = "application/octet-stream"
			}
		}
		sum := sha256.Sum256(body)
		f := webFile{name: name, body: body, ctype: ctype, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`}
		st.files["/"+name] = f
		if base := path.Base(name); base == "index.html" {
			st.files["/"+strings.TrimSuffix(name, base)] = f
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("the embedded web client: %w", err)
	}
	if _, ok := st.files["/"]; !ok {
		return nil, errors.New("the embedded web client has no index.html")
	}
	return st, nil
}

func (st *webStatic) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	f, ok := st.files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	for k, v := range webSecurityHeaders {
		h.Set(k, v)
	}
	h.Set("Content-Type", f.ctype)
	h.Set("ETag", f.etag)
	// ServeContent answers If-None-Match with 304, and ranges and HEAD.
	http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(f.body))
}
