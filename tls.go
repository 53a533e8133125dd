package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// TLS on the client port (docs/protocol.md, "TLS"): with -tls-cert and
// -tls-key the port speaks TLS only, with the same lines inside.
//
//   - The certificate is read at start (Listen fails on a bad one) and
//     again by ReloadCertificates (run.go calls it on SIGHUP). Handshakes
//     take whatever certificate is current (tls.Config.GetCertificate over
//     an atomic pointer), so a reload drops no connection: those already
//     open keep the keys they agreed on, new ones see the new certificate.
//     A reload that fails keeps the old certificate.
//   - The accept loop never handshakes: the listener hands out a *tlsConn
//     whose first Read (on the connection's own reader goroutine) or Write
//     does the handshake, which must be done within handshakeTimeout of
//     the accept or the connection is closed.

// maxHandshakeTimeout bounds the TLS handshake; -login-timeout, when
// shorter, bounds it instead.
const maxHandshakeTimeout = 10 * time.Second

func handshakeTimeout(cfg *Config) time.Duration {
	return min(cfg.LoginTimeout, maxHandshakeTimeout)
}

// certStore is the certificate the client port presents, swapped whole by
// a reload.
type certStore struct {
	certFile, keyFile string // never change
	cur               atomic.Pointer[tls.Certificate]
}

// loadCertStore reads the certificate and key files.
func loadCertStore(certFile, keyFile string) (*certStore, error) {
	cs := &certStore{certFile: certFile, keyFile: keyFile}
	cert, err := cs.read()
	if err != nil {
		return nil, err
	}
	cs.cur.Store(cert)
	return cs, nil
}

// read reads and checks the files. Its errors name the file at fault and
// never hold key material.
func (cs *certStore) read() (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(cs.certFile)
	if err != nil {
		return nil, fmt.Errorf("-tls-cert: %w", err)
	}
	keyPEM, err := os.ReadFile(cs.keyFile)
	if err != nil {
		return nil, fmt.Errorf("-tls-key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("-tls-cert %s with -tls-key %s: %w", cs.certFile, cs.keyFile, err)
	}
	if cert.Leaf == nil { // X509KeyPair fills it in since Go 1.23
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("-tls-cert %s: %w", cs.certFile, err)
		}
	}
	return &cert, nil
}

func (cs *certStore) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return cs.cur.Load(), nil
}

// certAttrs describe the current certificate for the log: names and
// validity, nothing secret.
func (cs *certStore) certAttrs() []any {
	leaf := cs.cur.Load().Leaf
	names := append(append([]string(nil), leaf.DNSNames...), ipStrings(leaf.IPAddresses)...)
	return []any{"cert", cs.certFile, "subject", leaf.Subject.String(), "names", strings.Join(names, ","),
		"not_after", leaf.NotAfter.UTC().Format(time.RFC3339)}
}

func ipStrings(ips []net.IP) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}

// serverTLSConfig is the client port's TLS configuration: TLS 1.2 at
// least, crypto/tls's defaults otherwise.
func serverTLSConfig(cs *certStore) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: cs.getCertificate}
}

// clientListener is what a port serves clients on: ln itself, or a TLS
// listener over it, offering nextProtos, when the server has a certificate.
func (s *Server) clientListener(ln net.Listener, certs *certStore, nextProtos ...string) net.Listener {
	if certs == nil {
		return ln
	}
	config := serverTLSConfig(certs)
	config.NextProtos = nextProtos
	return &tlsListener{Listener: ln, config: config, certs: certs, timeout: handshakeTimeout(&s.cfg)}
}

// logClientPort says, once Listen has succeeded, how the client port
// speaks: TLS with which certificate, or a warning when plain text is
// served on an address other hosts can reach.
func (s *Server) logClientPort() {
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()
	if tl, ok := ln.(*tlsListener); ok {
		s.log.Info("the client port speaks TLS", tl.certs.certAttrs()...)
		s.warnIfExpired(tl.certs)
		return
	}
	if addr := ln.Addr().String(); exposedAddr(addr) {
		s.log.Warn("the client port speaks plain TCP on an address other hosts can reach: passwords and messages cross the network in clear; -tls-cert and -tls-key turn TLS on",
			"addr", addr)
	}
}

func (s *Server) warnIfExpired(cs *certStore) {
	leaf := cs.cur.Load().Leaf
	if now := time.Now(); now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		s.log.Warn("the TLS certificate is not valid now: clients will refuse it", cs.certAttrs()...)
	}
}

// loadCertificates reads -tls-cert and -tls-key; nil without them.
func (s *Server) loadCertificates() (*certStore, error) {
	if s.cfg.TLSCert == "" {
		return nil, nil
	}
	return loadCertStore(s.cfg.TLSCert, s.cfg.TLSKey)
}

// errNoTLS is ReloadCertificates' error on a plain client port.
var errNoTLS = errors.New("no TLS certificate to reload: the client port speaks plain TCP")

// ReloadCertificates reads -tls-cert and -tls-key again: new handshakes
// present the new certificate, connections already open go on untouched.
// When the files cannot be read or do not make a valid pair, the old
// certificate stays and the error says why. It logs the outcome (run.go
// calls it on SIGHUP).
func (s *Server) ReloadCertificates() error {
	s.mu.Lock()
	tl, _ := s.ln.(*tlsListener)
	s.mu.Unlock()
	if tl == nil {
		s.log.Info(errNoTLS.Error())
		return errNoTLS
	}
	cert, err := tl.certs.read()
	if err != nil {
		s.log.Warn("TLS certificate not reloaded: keeping the old one", "err", oneLine(err))
		return err
	}
	tl.certs.cur.Store(cert)
	s.log.Info("TLS certificate reloaded", tl.certs.certAttrs()...)
	s.warnIfExpired(tl.certs)
	return nil
}

// exposedAddr reports whether a listen address can be reached from other
// hosts: anything but a loopback address (127.0.0.0/8, ::1) or the name
// localhost. An address without a host (":6000") listens on every
// interface, and a host name other than localhost is taken as reachable.
func exposedAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") || strings.EqualFold(host, "localhost.") {
		return false
	}
	if i := strings.IndexByte(host, '%'); i >= 0 { // fe80::1%eth0
		host = host[:i]
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

// tlsListener accepts TCP connections and hands them out as server-side
// TLS connections that have not handshaken yet (see tlsConn).
type tlsListener struct {
	net.Listener
	config  *tls.Config
	certs   *certStore
	timeout time.Duration // for each handshake, from the accept
}

func (l *tlsListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	// The accept loop sets these on a *net.TCPConn, which a tlsConn is not.
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
		tc.SetKeepAlive(true)
	}
	return newTLSConn(nc, l.config, l.timeout), nil
}

// tlsConn is a server-side TLS connection whose handshake runs on its first
// Read or Write, on the goroutine that calls it, never the accept loop's. A
// timer closes the TCP connection unless the handshake is done within the
// timeout: a client that connects and never handshakes, or stalls halfway,
// holds nothing for long. After the handshake, reads, writes and deadlines
// go through the *tls.Conn as usual.
type tlsConn struct {
	*tls.Conn
	raw     net.Conn
	timeout time.Duration
	timer   *time.Timer // closes raw unless shaken
	shaken  atomic.Bool // the handshake succeeded
	expired atomic.Bool // the timer closed raw
}

func newTLSConn(raw net.Conn, config *tls.Config, timeout time.Duration) *tlsConn {
	c := &tlsConn{Conn: tls.Server(raw, config), raw: raw, timeout: timeout}
	c.timer = time.AfterFunc(timeout, c.handshakeExpired)
	return c
}

func (c *tlsConn) handshakeExpired() {
	if !c.shaken.Load() {
		c.expired.Store(true)
		c.raw.Close()
	}
}

// errHandshakeTimeout is a handshake cut short by the timer. It is a
// deadline error, which conn.go logs as an idle close.
var errHandshakeTimeout = fmt.Errorf("TLS handshake not done in time: %w", os.ErrDeadlineExceeded)

func (c *tlsConn) handshake() error {
	err := c.Conn.Handshake()
	if err == nil {
		c.shaken.Store(true)
		c.timer.Stop()
		return nil
	}
	if c.expired.Load() {
		return errHandshakeTimeout
	}
	return fmt.Errorf("TLS handshake: %w", err)
}

func (c *tlsConn) Read(b []byte) (int, error) {
	if !c.shaken.Load() {
		if err := c.handshake(); err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(b)
}

func (c *tlsConn) Write(b []byte) (int, error) {
	if !c.shaken.Load() {
		if err := c.handshake(); err != nil {
			return 0, err
		}
	}
	return c.Conn.Write(b)
}

// Close closes the TCP connection at once. It sends no close_notify alert:
// (*tls.Conn).Close would, and that write can wait up to 5 s on a client
// that does not read, while abort must never block whoever calls it.
// Clients take an end of the stream between records as a clean EOF.
func (c *tlsConn) Close() error {
	c.timer.Stop()
	return c.raw.Close()
}

// CloseWrite ends the sending side after the last frame, as on a plain TCP
// connection: the close_notify alert (after a handshake), then a TCP FIN.
func (c *tlsConn) CloseWrite() error {
	if c.shaken.Load() {
		c.Conn.CloseWrite() // bounded by a 5 s deadline of its own
	}
	if tc, ok := c.raw.(*net.TCPConn); ok {
		return tc.CloseWrite()
	}
	return nil
}
