package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/gomodule/redigo/redis"
)

// redisTarget is where -redis points and how to connect there. It is one
// of (docs/protocol.md, the appendix):
//
//	host:port                                 plain TCP, no AUTH
//	redis://[user:password@]host[:port][/db]  AUTH when a password is given (ACL user too when named)
//	rediss://...                              the same over TLS
//
// The port defaults to 6379 in a URL. A user name alone is refused (is it
// a user or, as redis-cli reads it, a password?): write redis://:PASSWORD@
// for a password alone. URL options (?...) are refused: there are none,
// and none turns off the certificate check. A rediss:// server's
// certificate is checked against the system's roots (on Linux also
// SSL_CERT_FILE and SSL_CERT_DIR) for the URL's host name.
type redisTarget struct {
	addr     string // host:port
	tls      bool
	host     string // the name the certificate must carry (tls)
	username string // ACL user; "" is the default user
	password string
	db       int
	shown    string // the value as given, its password redacted
}

// parseRedisTarget parses a -redis value. Its errors show the value with
// its password redacted.
func parseRedisTarget(s string) (redisTarget, error) {
	t := redisTarget{shown: redactRedisURL(s)}
	bad := func(format string, args ...any) (redisTarget, error) {
		return redisTarget{}, fmt.Errorf("-redis %s: "+format, append([]any{t.shown}, args...)...)
	}
	if !strings.Contains(s, "://") {
		host, port, err := net.SplitHostPort(s)
		if err != nil || strings.ContainsAny(s, "@/?#") {
			return bad("want host:port, redis://[user:password@]host[:port][/db] or rediss://...")
		}
		if !validPort(port) {
			return bad("bad port %q", port)
		}
		t.addr, t.host = s, host
		return t, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, password and all
		}
		return bad("%v", err)
	}
	switch u.Scheme {
	case "redis":
	case "rediss":
		t.tls = true
	default:
		return bad("the scheme must be redis:// or rediss://")
	}
	switch {
	case u.Opaque != "":
		return bad("want redis://host:port")
	case u.RawQuery != "" || u.ForceQuery:
		return bad("URL options (?...) are not supported")
	case u.Fragment != "":
		return bad("a URL fragment (#...) is not supported")
	case u.Hostname() == "":
		return bad("no host")
	}
	port := u.Port()
	if port == "" {
		port = "6379"
	} else if !validPort(port) {
		return bad("bad port %q", port)
	}
	t.host = u.Hostname()
	if strings.Contains(t.host, ":") && net.ParseIP(t.host) == nil {
		return bad("bad host %q", t.host) // redis://h:1:2
	}
	t.addr = net.JoinHostPort(t.host, port)
	if u.User != nil {
		pw, ok := u.User.Password()
		switch {
		case !ok:
			return bad("a user name without a password; for a password alone write redis://:PASSWORD@host")
		case pw == "":
			return bad("an empty password")
		}
		t.username, t.password = u.User.Username(), pw
	}
	if p := strings.TrimPrefix(u.Path, "/"); p != "" {
		db, err := strconv.Atoi(p)
		if err != nil || db < 0 || strconv.Itoa(db) != p {
			return bad("the path must be a database number, as /0")
		}
		t.db = db
	}
	return t, nil
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n > 0 && n <= 65535 && strconv.Itoa(n) == p
}

// String is the target as it may be shown: the password redacted.
func (t redisTarget) String() string { return t.shown }

// dialOptions are redigo's options for the target.
func (t redisTarget) dialOptions() []redis.DialOption {
	opts := []redis.DialOption{
		redis.DialConnectTimeout(redisTimeout),
		redis.DialReadTimeout(redisTimeout),
		redis.DialWriteTimeout(redisTimeout),
	}
	if t.password != "" {
		opts = append(opts, redis.DialPassword(t.password))
		if t.username != "" {
			opts = append(opts, redis.DialUsername(t.username))
		}
	}
	if t.db != 0 {
		opts = append(opts, redis.DialDatabase(t.db))
	}
	if t.tls {
		opts = append(opts,
			redis.DialUseTLS(true),
			redis.DialTLSHandshakeTimeout(redisTimeout),
			// RootCAs nil: the system's roots. No option skips the check.
			redis.DialTLSConfig(&tls.Config{ServerName: t.host, MinVersion: tls.VersionTLS12}))
	}
	return opts
}

// dial opens one connection to the target.
func (t redisTarget) dial() (redis.Conn, error) {
	return redis.Dial("tcp", t.addr, t.dialOptions()...)
}
