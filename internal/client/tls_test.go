package client

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chat/internal/testcert"
)

// testCert makes a CA and a server certificate it signed for names (IP
// addresses or DNS names); it returns the CA as PEM and the server's
// certificate ready for a tls.Config.
func testCert(t *testing.T, names ...string) (caPEM []byte, cert tls.Certificate) {
	t.Helper()
	ca := testcert.NewCA(t)
	cert, err := tls.X509KeyPair(ca.Issue(t, 2, names...))
	if err != nil {
		t.Fatal(err)
	}
	return ca.PEM, cert
}

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// A -ca file that is missing or holds no PEM certificate is a clear error;
// a good one is trusted, and the name checked is the address's host.
func TestTLSOptions(t *testing.T) {
	if conf, err := (Options{}).tlsConfig("h:1"); conf != nil || err != nil {
		t.Errorf("no TLS: %v, %v", conf, err)
	}
	conf, err := Options{TLS: true}.tlsConfig("chat.example.com:6000")
	if err != nil || conf.ServerName != "chat.example.com" || conf.MinVersion != tls.VersionTLS12 || conf.RootCAs != nil {
		t.Errorf("-tls: %+v, %v", conf, err)
	}
	missing := filepath.Join(t.TempDir(), "no-such-ca.pem")
	notPEM := writeFile(t, "ca.txt", []byte("this is not a certificate\n"))
	caPEM, _ := testCert(t, "127.0.0.1")
	good := writeFile(t, "ca.pem", caPEM)
	for _, tc := range []struct {
		ca, want string
	}{
		{missing, "-ca: open " + missing + ": no such file or directory"},
		{notPEM, "-ca " + notPEM + ": no PEM certificate in it"},
	} {
		if _, err := (Options{CA: tc.ca}).tlsConfig("127.0.0.1:6000"); err == nil || err.Error() != tc.want {
			t.Errorf("-ca %s: got %v, want %q", tc.ca, err, tc.want)
		}
		var stdout, stderr bytes.Buffer
		if rc := RunWith(Options{Addr: "127.0.0.1:1", CA: tc.ca}, strings.NewReader(""), &stdout, &stderr, false); rc != 1 {
			t.Errorf("-ca %s: exit status %d, want 1", tc.ca, rc)
		}
		if got := stderr.String(); got != "chat: "+tc.want+"\n" {
			t.Errorf("-ca %s: stderr %q, want one line", tc.ca, got)
		}
	}
	conf, err = Options{CA: good}.tlsConfig("127.0.0.1:6000")
	if err != nil || conf.RootCAs == nil || conf.ServerName != "127.0.0.1" {
		t.Fatalf("-ca good: %+v, %v", conf, err)
	}
}

// The handshake errors of dialServer say what is wrong: an untrusted
// certificate, one for another name, a server that does not speak TLS.
func TestTLSDialErrors(t *testing.T) {
	caPEM, cert := testCert(t, "localhost")
	ca := writeFile(t, "ca.pem", caPEM)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.(*tls.Conn).Handshake()
				io.Copy(io.Discard, c)
			}()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())

	// A plain server that never answers: the handshake times out.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()

	for _, tc := range []struct {
		name, addr string
		opt        Options
		want       string // in the error text; "" for success
	}{
		{"trusted", "localhost:" + port, Options{CA: ca}, ""},
		{"untrusted", "localhost:" + port, Options{TLS: true}, "TLS: the server's certificate is not trusted"},
		{"other name", "127.0.0.1:" + port, Options{CA: ca}, "TLS: the server's certificate is for another name"},
		{"plain server", silent.Addr().String(), Options{CA: ca}, "does the server speak TLS?"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf, err := tc.opt.tlsConfig(tc.addr)
			if err != nil {
				t.Fatal(err)
			}
			nc, err := dialServer(tc.addr, conf, time.Second)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				if v := nc.(*tls.Conn).ConnectionState().Version; v < tls.VersionTLS12 {
					t.Errorf("TLS version %x", v)
				}
				nc.Close()
				return
			}
			if err == nil {
				nc.Close()
				t.Fatal("dial succeeded")
			}
			if got := dialErrText(err); !strings.Contains(got, tc.want) || strings.Contains(got, "\n") {
				t.Errorf("error %q, want one line with %q", got, tc.want)
			}
			t.Log(dialErrText(err))
		})
	}
}
