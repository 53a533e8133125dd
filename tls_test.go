package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"chat/internal/client"
	"chat/internal/testcert"
)

// TLS on the client port (tls.go; docs/protocol.md, "TLS"): the protocol
// over TLS, what a client that does not handshake gets, certificate
// reloads, the warning for plain text on a reachable address, start-up
// errors, SIGHUP on a real process, and the command-line client over TLS.

// testCA is a private certificate authority made for a test, with its
// certificate in a file (for the client's -ca).
type testCA struct {
	*testcert.CA
	file string // the CA certificate, PEM
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	ca := &testCA{CA: testcert.NewCA(t), file: filepath.Join(t.TempDir(), "ca.pem")}
	writeFile(t, ca.file, ca.PEM)
	return ca
}

// issue writes a server certificate for 127.0.0.1, ::1 and localhost,
// with the given serial number, and its key, to certFile and keyFile.
func (ca *testCA) issue(t testing.TB, serial int64, certFile, keyFile string) {
	t.Helper()
	certPEM, keyPEM := ca.Issue(t, serial, "localhost", "127.0.0.1", "::1")
	writeFile(t, certFile, certPEM)
	writeFile(t, keyFile, keyPEM)
}

func writeFile(t testing.TB, file string, b []byte) {
	t.Helper()
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// tlsFiles makes a CA and a first server certificate (serial 1) in a
// temporary directory.
func tlsFiles(t testing.TB) (ca *testCA, certFile, keyFile string) {
	t.Helper()
	ca = newTestCA(t)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.issue(t, 1, certFile, keyFile)
	return ca, certFile, keyFile
}

func withTLS(certFile, keyFile string) func(*Config) {
	return func(c *Config) { c.TLSCert, c.TLSKey = certFile, keyFile }
}

// dialTLS is dial over TLS, trusting roots.
func dialTLS(t testing.TB, addr string, roots *x509.CertPool) *testClient {
	t.Helper()
	nc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{RootCAs: roots})
	if err != nil {
		t.Fatalf("TLS dial %s: %v", addr, err)
	}
	return clientOn(t, newWireConn(nc, 10000))
}

// serial is the serial number of the certificate the server presented.
func (c *testClient) serial() int64 {
	return c.nc.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// Two TLS clients register, log in, become friends and chat; the
// connection is TLS 1.2 or later, and a client offering only TLS 1.1 is
// refused.
func TestTLSChat(t *testing.T) {
	forEachStore(t, func(t *testing.T, db string) {
		ca, certFile, keyFile := tlsFiles(t)
		srv := startServer(t, db, withTLS(certFile, keyFile))

		a, b := dialTLS(t, srv.addr, ca.Roots), dialTLS(t, srv.addr, ca.Roots)
		if v := a.nc.(*tls.Conn).ConnectionState().Version; v < tls.VersionTLS12 {
			t.Errorf("TLS version %#x", v)
		}
		an, bn := uniqueName("alice"), uniqueName("bob")
		a.must("register", map[string]any{"name": an, "password": testPassword})
		a.must("login", map[string]any{"name": an, "password": testPassword})
		bid := b.must("register", map[string]any{"name": bn, "password": testPassword}).obj("user").num("id")
		b.must("login", map[string]any{"name": bn, "password": testPassword})
		a.user, b.user = a.must("whois", map[string]any{"name": an}).obj("user").num("id"), bid
		befriend(t, a, b)
		a.must("chat", map[string]any{"to": bid, "text": "hello over TLS", "cid": "t1"})
		if m := b.messages(1, 5*time.Second)[0]; m.str("text") != "hello over TLS" || m.str("from_name") != an {
			t.Fatalf("message: %v", m)
		}

		old, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", srv.addr,
			&tls.Config{RootCAs: ca.Roots, MaxVersion: tls.VersionTLS11})
		if err == nil {
			old.Close()
			t.Fatal("a TLS 1.1 client was accepted")
		}
		t.Logf("TLS 1.1 refused: %v", err)
	})
}

// A plain-text client on the TLS port gets no protocol reply and is closed
// at once; one that connects and never handshakes (or stops halfway) is
// closed within the handshake deadline (here -login-timeout, 1 s), and
// meanwhile others are accepted and served without waiting.
func TestTLSNoHandshake(t *testing.T) {
	ca, certFile, keyFile := tlsFiles(t)
	srv := startServer(t, sqliteURL(t), withTLS(certFile, keyFile), func(c *Config) { c.LoginTimeout = time.Second })
	if got := handshakeTimeout(&srv.cfg); got != time.Second {
		t.Fatalf("handshake timeout %v, want -login-timeout's 1s", got)
	}

	// readAll reads until the server closes, within limit.
	readAll := func(nc net.Conn, limit time.Duration) ([]byte, time.Duration) {
		t.Helper()
		start := time.Now()
		nc.SetReadDeadline(start.Add(limit))
		b, err := io.ReadAll(nc)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("still open after %v", limit)
		}
		return b, time.Since(start)
	}

	t.Run("plain text", func(t *testing.T) {
		nc, err := net.Dial("tcp", srv.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.Write([]byte(`{"type":"ping","rid":1}` + "\n"))
		got, took := readAll(nc, 5*time.Second)
		if bytes.Contains(got, []byte(`"type"`)) {
			t.Errorf("a plain-text client got a protocol reply: %q", got)
		}
		if took > 500*time.Millisecond {
			t.Errorf("closed after %v, want at once", took)
		}
	})

	stalled := []struct {
		name string
		send []byte
	}{
		{"silent", nil},
		{"half a record header", []byte{0x16, 0x03}},
		{"half a ClientHello", []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00}},
	}
	conns := make([]net.Conn, len(stalled))
	start := time.Now()
	for i, s := range stalled {
		nc, err := net.Dial("tcp", srv.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.Write(s.send)
		conns[i] = nc
	}
	// The accept loop does not wait for them.
	c := dialTLS(t, srv.addr, ca.Roots)
	c.must("ping", nil)
	if took := time.Since(start); took > 700*time.Millisecond {
		t.Errorf("a TLS client took %v to be served beside stalled handshakes", took)
	}
	name := uniqueName("tls") // logged in, -login-timeout does not close it
	c.must("register", map[string]any{"name": name, "password": testPassword})
	c.must("login", map[string]any{"name": name, "password": testPassword})
	for i, s := range stalled {
		got, _ := readAll(conns[i], 5*time.Second)
		took := time.Since(start)
		if took < 800*time.Millisecond || took > 3*time.Second {
			t.Errorf("%s: closed after %v, want about 1 s", s.name, took)
		}
		if bytes.Contains(got, []byte(`"type"`)) {
			t.Errorf("%s: got a protocol frame: %q", s.name, got)
		}
	}
	// The TLS client's connection was not cut by the handshake deadline.
	c.must("ping", nil)
}

// The handshake deadline of tlsConn alone, without a server: a silent
// client's first Read fails with a deadline error at the deadline; a client
// that handshakes in time is not cut by it later.
func TestTLSHandshakeDeadline(t *testing.T) {
	ca, certFile, keyFile := tlsFiles(t)
	certs, err := loadCertStore(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const deadline = 300 * time.Millisecond
	tl := &tlsListener{Listener: ln, config: serverTLSConfig(certs), certs: certs, timeout: deadline}
	defer tl.Close()
	type result struct {
		err  error
		took time.Duration
	}
	// serveOne accepts a connection and echoes what it reads, as the
	// server's reader would read it; it reports how its reading ended.
	serveOne := func() <-chan result {
		done := make(chan result, 1)
		go func() {
			nc, err := tl.Accept()
			if err != nil {
				done <- result{err: err}
				return
			}
			defer nc.Close()
			start := time.Now()
			buf := make([]byte, 256)
			for {
				n, err := nc.Read(buf)
				if err != nil {
					done <- result{err, time.Since(start)}
					return
				}
				nc.Write(buf[:n])
			}
		}()
		return done
	}

	done := serveOne()
	silent, err := net.Dial("tcp", tl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	r := <-done
	if !errors.Is(r.err, os.ErrDeadlineExceeded) || r.took < deadline-50*time.Millisecond || r.took > deadline+time.Second {
		t.Errorf("silent client: read ended after %v with %v, want a deadline error after %v", r.took, r.err, deadline)
	}

	done = serveOne()
	time.Sleep(deadline / 3)
	tc, err := tls.Dial("tcp", tl.Addr().String(), &tls.Config{RootCAs: ca.Roots})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	time.Sleep(2 * deadline) // past the handshake deadline
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := tc.Write([]byte("still open\n")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 11)
	if _, err := io.ReadFull(tc, got); err != nil || string(got) != "still open\n" {
		t.Fatalf("after the handshake deadline: %q, %v", got, err)
	}
	tc.Close()
	if r := <-done; r.err == nil || errors.Is(r.err, os.ErrDeadlineExceeded) {
		t.Errorf("handshaken client: read ended with %v, want its close", r.err)
	}
}

// A reload swaps the certificate for new connections and keeps existing
// ones; a reload of bad files keeps the old certificate.
func TestTLSReload(t *testing.T) {
	ca, certFile, keyFile := tlsFiles(t)
	srv := startServer(t, sqliteURL(t), withTLS(certFile, keyFile))
	a := newTLSUser(t, srv.addr, ca)
	if s := a.serial(); s != 1 {
		t.Fatalf("serial %d, want 1", s)
	}

	ca.issue(t, 2, certFile, keyFile)
	if err := srv.srv.ReloadCertificates(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	b := newTLSUser(t, srv.addr, ca)
	if s := b.serial(); s != 2 {
		t.Fatalf("after the reload: serial %d, want 2", s)
	}
	// The connection made before the reload goes on.
	a.must("chat", map[string]any{"to": b.user, "text": "still here"})
	b.messages(1, 5*time.Second)

	dir := t.TempDir()
	otherCert, otherKey := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.issue(t, 3, otherCert, otherKey)
	keyPEM, _ := os.ReadFile(keyFile)
	bad := []struct {
		name  string
		setup func()
		want  string
	}{
		{"cert not PEM", func() { os.WriteFile(certFile, []byte("garbage\n"), 0o600) }, "-tls-cert " + certFile},
		{"key of another cert", func() { copyFile(t, otherCert, certFile) }, "private key does not match"},
		{"key missing", func() { os.Remove(keyFile) }, "-tls-key: open " + keyFile},
	}
	for _, tc := range bad {
		tc.setup()
		err := srv.srv.ReloadCertificates()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: reload error %v, want one with %q", tc.name, err, tc.want)
		}
		if strings.Contains(err.Error(), "PRIVATE KEY") || bytes.Contains([]byte(err.Error()), keyPEM[30:60]) {
			t.Fatalf("%s: the error shows key material: %v", tc.name, err)
		}
		c := dialTLS(t, srv.addr, ca.Roots)
		c.must("ping", nil)
		if s := c.serial(); s != 2 {
			t.Fatalf("%s: a failed reload changed the certificate: serial %d", tc.name, s)
		}
		t.Logf("%s: %v", tc.name, err)
	}
	a.must("ping", nil)
	b.must("ping", nil)

	// A good pair again.
	copyFile(t, otherKey, keyFile)
	if err := srv.srv.ReloadCertificates(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if s := dialTLS(t, srv.addr, ca.Roots).serial(); s != 3 {
		t.Fatalf("serial %d, want 3", s)
	}

	plain := startServer(t, sqliteURL(t))
	if err := plain.srv.ReloadCertificates(); !errors.Is(err, errNoTLS) {
		t.Errorf("reload on a plain port: %v", err)
	}
}

func newTLSUser(t testing.TB, addr string, ca *testCA) *testClient {
	t.Helper()
	c := dialTLS(t, addr, ca.Roots)
	signUp(t, c, "tls", "")
	return c
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Plain text on an address other hosts can reach gets one warning at
// start; loopback gets none, nor does a TLS port.
func TestTLSPlaintextWarning(t *testing.T) {
	for _, tc := range []struct {
		addr    string
		exposed bool
	}{
		{":6000", true},
		{":0", true},
		{"0.0.0.0:6000", true},
		{"[::]:6000", true},
		{"203.0.113.7:6000", true},
		{"10.0.0.11:6000", true},
		{"[2001:db8::1]:6000", true},
		{"chat.example.com:6000", true},
		{"127.0.0.1:6000", false},
		{"127.1.2.3:6000", false},
		{"[::1]:6000", false},
		{"[::ffff:127.0.0.1]:6000", false},
		{"localhost:6000", false},
		{"LocalHost:6000", false},
	} {
		if got := exposedAddr(tc.addr); got != tc.exposed {
			t.Errorf("exposedAddr(%q) = %v, want %v", tc.addr, got, tc.exposed)
		}
	}

	_, certFile, keyFile := tlsFiles(t)
	for _, tc := range []struct {
		listen string
		tls    bool
		warn   bool
	}{
		{":0", false, true},
		{"127.0.0.1:0", false, false},
		{"localhost:0", false, false},
		{":0", true, false},
	} {
		var logs syncBuffer
		cfg := testConfig(sqliteURL(t))
		cfg.Listen = tc.listen
		if tc.tls {
			withTLS(certFile, keyFile)(&cfg)
		}
		srv, err := NewServer(context.Background(), cfg, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Listen(); err != nil {
			t.Fatal(err)
		}
		srv.Shutdown(context.Background())
		out := logs.String()
		warned := strings.Count(out, "passwords and messages cross the network in clear")
		if tc.warn && (warned != 1 || !strings.Contains(out, "-tls-cert and -tls-key") || !strings.Contains(out, "level=WARN")) {
			t.Errorf("listen %s: want one warning naming -tls-cert and -tls-key, got:\n%s", tc.listen, out)
		}
		if !tc.warn && warned != 0 {
			t.Errorf("listen %s (TLS %v): unexpected warning:\n%s", tc.listen, tc.tls, out)
		}
	}
}

// A certificate or key that cannot be used at start: one line on stderr
// naming the file, exit status 1.
func TestTLSStartErrors(t *testing.T) {
	_, certFile, keyFile := tlsFiles(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600)
	otherCert, otherKey := filepath.Join(dir, "other.pem"), filepath.Join(dir, "other-key.pem")
	newTestCA(t).issue(t, 9, otherCert, otherKey)
	for _, tc := range []struct {
		name      string
		cert, key string
		mention   string
	}{
		{name: "missing certificate", cert: missing, key: keyFile, mention: missing},
		{name: "missing key", cert: certFile, key: missing, mention: missing},
		{name: "certificate not PEM", cert: notPEM, key: keyFile, mention: notPEM},
		{name: "key not PEM", cert: certFile, key: notPEM, mention: notPEM},
		{name: "key of another certificate", cert: certFile, key: otherKey, mention: "private key does not match"},
		{name: "certificate without key", cert: certFile, mention: "-tls-cert and -tls-key go together"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"-db", sqliteURL(t), "-listen", "127.0.0.1:0", "-tls-cert", tc.cert}
			if tc.key != "" {
				args = append(args, "-tls-key", tc.key)
			}
			var stdout, stderr bytes.Buffer
			if status := runServer(args, cmdEnv(nil), &stdout, &stderr); status != 1 {
				t.Fatalf("exit status %d, want 1 (stderr %q)", status, stderr.String())
			}
			cmdOneLine(t, "stderr", stderr.String())
			if !strings.HasPrefix(stderr.String(), "chat server: ") || !strings.Contains(stderr.String(), tc.mention) {
				t.Errorf("stderr %q does not mention %q", stderr.String(), tc.mention)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout: %q", stdout.String())
			}
			t.Log(strings.TrimSpace(stderr.String()))
		})
	}
}

// A real server process: SIGHUP reloads the certificate without dropping
// a connection, a bad one is refused with a warning and the old one kept,
// and SIGHUP never stops the server, with TLS or without.
func TestTLSServerProcessSIGHUP(t *testing.T) {
	bin := cmdBuildServer(t, t.TempDir())
	ca, certFile, keyFile := tlsFiles(t)
	listen := cmdFreeAddr(t)
	p := cmdStart(t, bin, []string{"-listen", listen, "-db", "sqlite:" + filepath.Join(t.TempDir(), "chat.db"),
		"-bcrypt-cost", "4", "-tls-cert", certFile, "-tls-key", keyFile}, nil)
	p.waitListening(t, listen, 15*time.Second)
	a := newTLSUser(t, listen, ca)

	// waitLog waits for a line of the server's log matching pattern.
	waitLog := func(pattern string) {
		t.Helper()
		re := regexp.MustCompile(pattern)
		deadline := time.Now().Add(5 * time.Second)
		for !re.MatchString(p.stderr.String()) {
			if time.Now().After(deadline) {
				t.Fatalf("no log line matching %q; stderr:\n%s", pattern, p.stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitLog(`level=INFO msg="the client port speaks TLS".*not_after=`)

	ca.issue(t, 2, certFile, keyFile)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(`msg="TLS certificate reloaded"`)
	if s := dialTLS(t, listen, ca.Roots).serial(); s != 2 {
		t.Fatalf("after SIGHUP: serial %d, want 2", s)
	}
	a.must("ping", nil)

	os.WriteFile(certFile, []byte("garbage\n"), 0o600)
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(`level=WARN msg="TLS certificate not reloaded: keeping the old one"`)
	if s := dialTLS(t, listen, ca.Roots).serial(); s != 2 {
		t.Fatalf("after a bad reload: serial %d, want 2", s)
	}
	a.must("ping", nil)
	if strings.Contains(p.stderr.String(), "PRIVATE KEY") {
		t.Errorf("the log shows key material:\n%s", p.stderr.String())
	}
	p.signalStop(t, syscall.SIGTERM, a)

	t.Run("plain", func(t *testing.T) {
		listen := cmdFreeAddr(t)
		p := cmdStart(t, bin, []string{"-listen", listen, "-db", "sqlite:" + filepath.Join(t.TempDir(), "chat.db")}, nil)
		p.waitListening(t, listen, 15*time.Second)
		c := dial(t, listen)
		p.cmd.Process.Signal(syscall.SIGHUP)
		time.Sleep(200 * time.Millisecond)
		c.must("ping", nil)
		if !strings.Contains(p.stderr.String(), "no TLS certificate to reload") {
			t.Errorf("no log line for SIGHUP; stderr:\n%s", p.stderr.String())
		}
		p.signalStop(t, syscall.SIGTERM, c)
	})
}

// The command-line client with -ca talks to a TLS server, and reconnects
// over TLS after a restart; without the CA it refuses the server's
// certificate with one line and exit status 1.
func TestTLSClient(t *testing.T) {
	ca, certFile, keyFile := tlsFiles(t)
	srv := startServer(t, sqliteURL(t), withTLS(certFile, keyFile))
	withCA := func(o *client.Options) { o.CA = ca.file }
	an, bn := uniqueName("alice"), uniqueName("bob")
	a := clStart(t, srv.addr, withCA)
	b := clStart(t, srv.addr, func(o *client.Options) { o.TLS, o.CA = true, ca.file })
	a.send("/register "+an+" wonderland", "/login "+an+" wonderland")
	a.expect(`^ok login ` + an + ` \(id \d+\)`)
	b.send("/register "+bn+" builder1", "/login "+bn+" builder1")
	b.expect(`^ok login ` + bn + ` \(id \d+\)`)
	a.send("/msg " + bn + " hi over TLS")
	a.expect(`^sent ` + clTS + ` you -> ` + bn + `: hi over TLS$`)
	b.expect(`^message ` + clTS + ` ` + an + ` -> you: hi over TLS$`)

	srv.restart()
	a.expect(`^reconnected: logged in again as ` + an + ` \(id \d+\)$`)
	b.expect(`^reconnected: logged in again as ` + bn + ` \(id \d+\)$`)
	b.send("/msg " + an + " back over TLS")
	a.expect(`^message ` + clTS + ` ` + bn + ` -> you: back over TLS$`)
	if status, _ := a.end(); status != 0 {
		t.Errorf("alice: exit status %d", status)
	}

	var stdout, stderr syncBuffer
	status := client.RunWith(client.Options{Addr: srv.addr, TLS: true}, strings.NewReader("/who\n"), &stdout, &stderr, false)
	if status != 1 {
		t.Fatalf("without -ca: exit status %d, want 1", status)
	}
	cmdOneLine(t, "stderr", stderr.String())
	if !strings.Contains(stderr.String(), "not trusted") {
		t.Errorf("without -ca: stderr %q does not say the certificate is not trusted", stderr.String())
	}
	t.Log(strings.TrimSpace(stderr.String()))
}
