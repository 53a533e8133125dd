package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseRedisTarget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want redisTarget // shown is checked apart
		err  string      // a part of the error
	}{
		{in: "127.0.0.1:6379", want: redisTarget{addr: "127.0.0.1:6379", host: "127.0.0.1"}},
		{in: "redis:6379", want: redisTarget{addr: "redis:6379", host: "redis"}}, // a host named redis, not a URL
		{in: "[::1]:6379", want: redisTarget{addr: "[::1]:6379", host: "::1"}},
		{in: "redis://10.0.0.5:6379", want: redisTarget{addr: "10.0.0.5:6379", host: "10.0.0.5"}},
		{in: "redis://cache", want: redisTarget{addr: "cache:6379", host: "cache"}},
		{in: "redis://:hunter2@cache:6380/", want: redisTarget{addr: "cache:6380", host: "cache", password: "hunter2"}},
		{in: "redis://chat:hunter2@cache:6380/3", want: redisTarget{addr: "cache:6380", host: "cache", username: "chat", password: "hunter2", db: 3}},
		{in: "redis://:p%40ss%3Aw%2Fd@cache", want: redisTarget{addr: "cache:6379", host: "cache", password: "p@ss:w/d"}},
		{in: "rediss://:hunter2@redis.internal:6380/0", want: redisTarget{addr: "redis.internal:6380", host: "redis.internal", password: "hunter2", tls: true}},
		{in: "rediss://[::1]:6380", want: redisTarget{addr: "[::1]:6380", host: "::1", tls: true}},

		{in: "localhost", err: "want host:port"},
		{in: "127.0.0.1:0", err: "bad port"},
		{in: "127.0.0.1:x", err: "bad port"},
		{in: "u:hunter2@h:1", err: "want host:port"},
		{in: "http://cache:6379", err: "scheme"},
		{in: "redis:/cache:6379", err: "want host:port"}, // not "://": taken for host:port, and refused
		{in: "redis://", err: "no host"},
		{in: "redis://:6379", err: "no host"},
		{in: "redis://cache:99999", err: "bad port"},
		{in: "redis://cache:1:2", err: "bad host"},
		{in: "redis://cache:6379?insecure=1", err: "not supported"},
		{in: "rediss://cache:6379?skip_verify=true", err: "not supported"},
		{in: "redis://cache:6379?", err: "not supported"},
		{in: "redis://cache:6379#x", err: "fragment"},
		{in: "redis://hunter2@cache", err: "without a password"},
		{in: "redis://chat:@cache", err: "empty password"},
		{in: "redis://cache/x", err: "database number"},
		{in: "redis://cache/-1", err: "database number"},
		{in: "redis://cache/01", err: "database number"},
		{in: "redis://cache/1/2", err: "database number"},
		{in: "redis://:hun ter2@cache", err: "invalid"},
	}
	for _, tt := range tests {
		got, err := parseRedisTarget(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want one with %q", tt.in, err, tt.err)
			}
			if err != nil && (strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "hun ter2")) {
				t.Errorf("%q: the error shows the password: %v", tt.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if got.shown != redactRedisURL(tt.in) || strings.Contains(got.String(), "hunter2") {
			t.Errorf("%q: shown as %q", tt.in, got.String())
		}
		got.shown = ""
		if got != tt.want {
			t.Errorf("%q:\n got %+v\nwant %+v", tt.in, got, tt.want)
		}
		if n := len(got.dialOptions()); got.tls && n < 6 {
			t.Errorf("%q: %d dial options: TLS not asked for", tt.in, n)
		}
	}
}

// privateRedisWith starts a Redis of the test's own with scripts/redis.sh
// and the variables in env (CHAT_REDIS_PASSWORD, CHAT_REDIS_TLS_*), and
// returns its address. It is stopped at the end of the test.
func privateRedisWith(t testing.TB, env map[string]string) string {
	t.Helper()
	redisAddr(t) // the same gate as the other Redis tests
	dir := filepath.Join(t.TempDir(), "redis")
	port := strconv.Itoa(freePort(t))
	run := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", append([]string{filepath.Join("scripts", "redis.sh")}, args...)...)
		cmd.Env = os.Environ()
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		cmd.WaitDelay = 5 * time.Second
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("scripts/redis.sh %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("start", dir, port)
	t.Cleanup(func() { run("stop", dir) })
	return "127.0.0.1:" + port
}

// TestRedisAuth: a cluster on a Redis that wants a password. Nodes given
// redis://:PASSWORD@host:port work together; a wrong password or none is
// a clear error at start, without the password in it.
func TestRedisAuth(t *testing.T) {
	const password = "s3cret-for-redis"
	addr := privateRedisWith(t, map[string]string{"CHAT_REDIS_PASSWORD": password})
	nodes := startCluster(t, 2, "redis://:"+password+"@"+addr)
	a := newUser(t, nodes[0].addr, "auth")
	b := newUser(t, nodes[1].addr, "authb")
	m := a.must("chat", map[string]any{"to": b.user, "text": "through an authenticated Redis"}).obj("message")
	if got := b.messages(1, 5*time.Second)[0]; got.num("id") != m.num("id") {
		t.Fatalf("got %v", got)
	}
	// The ACL form names the default user.
	startCluster(t, 1, "redis://default:"+password+"@"+addr+"/1")

	db := mysqlURL(t)
	for _, tc := range []struct{ redis, mention string }{
		{"redis://:wrong-" + password + "@" + addr, "WRONGPASS"},
		{"redis://default:wrong-" + password + "@" + addr, "WRONGPASS"},
		{addr, "NOAUTH"},
		{"redis://" + addr, "NOAUTH"},
	} {
		cfg := testConfig(db)
		cfg.Redis, cfg.Node = tc.redis, "bad"
		_, err := NewServer(context.Background(), cfg, testLogger())
		if err == nil || !strings.Contains(err.Error(), tc.mention) || strings.Contains(err.Error(), password) {
			t.Errorf("-redis %s: got %v, want an error with %q and no password", redactRedisURL(tc.redis), err, tc.mention)
			continue
		}
		t.Logf("-redis %s: %v", redactRedisURL(tc.redis), err)
	}
}

// redisTestCerts writes a CA and a certificate for 127.0.0.1 (and no other
// name) signed by it, as PEM files in dir.
func redisTestCerts(t testing.TB, dir string) (ca, cert, key string) {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	now := time.Now()
	caKey, leafKey := newKey(), newKey()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "chat test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("redis.pem", "CERTIFICATE", leafDER), write("redis.key", "EC PRIVATE KEY", keyDER)
}

// TestRedisTLS: rediss:// speaks TLS and checks the certificate against
// the system's roots for the URL's host; nothing turns the check off. A
// node whose system roots hold the private CA (SSL_CERT_FILE, in a real
// server process) joins the cluster over TLS with a password.
func TestRedisTLS(t *testing.T) {
	const password = "tls-and-a-password"
	dir := t.TempDir()
	ca, cert, key := redisTestCerts(t, dir)
	tlsAddr := privateRedisWith(t, map[string]string{
		"CHAT_REDIS_PASSWORD": password,
		"CHAT_REDIS_TLS_CERT": cert, "CHAT_REDIS_TLS_KEY": key, "CHAT_REDIS_TLS_CA": ca,
	})
	plainAddr := redisAddr(t)
	_, tlsPort, _ := net.SplitHostPort(tlsAddr)

	dial := func(url string) error {
		t.Helper()
		target, err := parseRedisTarget(url)
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		c, err := target.dial()
		if err == nil {
			_, err = c.Do("PING")
			c.Close()
		}
		return err
	}
	for _, tc := range []struct{ name, url, mention string }{
		// The private CA is not among this process's system roots.
		{"private CA not trusted", "rediss://:" + password + "@" + tlsAddr, "certificate signed by unknown authority"},
		// TLS is asked for: a plain Redis does not answer a handshake.
		{"rediss to a plain Redis", "rediss://" + plainAddr, "TLS handshake"},
		// And no TLS without rediss://.
		{"redis to the TLS port", "redis://:" + password + "@" + tlsAddr, ""},
	} {
		err := dial(tc.url)
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tc.mention)) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.mention)
		}
		t.Logf("%s: %v", tc.name, err)
	}

	// A real node with the CA among its roots.
	bin := cmdBuildServer(t, t.TempDir())
	db := mysqlURL(t)
	env := map[string]string{"SSL_CERT_FILE": ca}
	listen, admin := cmdFreeAddr(t), cmdFreeAddr(t)
	p := cmdStart(t, bin, []string{"-listen", listen, "-admin", admin, "-db", db, "-node", "tls1",
		"-redis", "rediss://:" + password + "@" + tlsAddr, "-bcrypt-cost", "4"}, env)
	p.waitListening(t, listen, 15*time.Second)
	waitHealth(t, admin, http.StatusOK, 10*time.Second) // subscribed over TLS
	c := newUser(t, listen, "tls")
	c.must("online", nil)

	// The certificate is for 127.0.0.1, not localhost; a wrong password
	// is refused after the handshake.
	for _, tc := range []struct{ name, redis, mention string }{
		{"wrong host name", "rediss://:" + password + "@localhost:" + tlsPort, "x509"},
		{"wrong password", "rediss://:wrong-" + password + "@" + tlsAddr, "WRONGPASS"},
	} {
		q := cmdStart(t, bin, []string{"-listen", "127.0.0.1:0", "-db", db, "-node", "tls2", "-redis", tc.redis}, env)
		if status := q.wait(t, 15*time.Second); status != 1 {
			t.Errorf("%s: exit status %d, want 1", tc.name, status)
		}
		stderr := q.stderr.String()
		cmdOneLine(t, "stderr", stderr)
		if !strings.Contains(stderr, tc.mention) || strings.Contains(stderr, password) {
			t.Errorf("%s: stderr %q, want %q and no password", tc.name, stderr, tc.mention)
		}
		t.Logf("%s: %s", tc.name, strings.TrimSpace(stderr))
	}
}
