package main

import (
	"strings"

	"github.com/go-sql-driver/mysql"
)

// Secrets on the command line (the -db password, the -redis password) are
// never printed: every message, log line or page that shows a -db or
// -redis value shows it through these functions, with the password as
// redacted. They work on what could not be parsed too, since a malformed
// value is the one most likely to be printed (in the error saying so).

// redacted stands in for a password.
const redacted = "xxxxx"

// redactDBURL is the -db value as it may be shown: "mysql:DSN" with the
// DSN's password redacted; "sqlite:PATH" as it is; anything else with
// whatever looks like a password (between the first ':' of the part before
// the last '@' and that '@') redacted.
func redactDBURL(s string) string {
	kind, dsn, ok := strings.Cut(s, ":")
	switch {
	case ok && kind == "sqlite":
		return s
	case ok && kind == "mysql":
		return "mysql:" + redactDSN(dsn)
	}
	return redactUserinfo(s)
}

// redactDSN is a go-sql-driver DSN (user:password@net(addr)/db?params)
// with its password redacted. It follows the driver's own parsing: the
// user information ends at the last '@' before the last '/', and the
// password starts after its first ':'. A DSN the driver cannot parse loses
// everything between its first ':' and its last '@'.
func redactDSN(dsn string) string {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return redactUserinfo(dsn)
	}
	if cfg.Passwd == "" {
		return dsn
	}
	slash := strings.LastIndexByte(dsn, '/')
	if slash < 0 {
		slash = len(dsn)
	}
	at := strings.LastIndexByte(dsn[:slash], '@')
	colon := strings.IndexByte(dsn[:max(at, 0)], ':')
	if at < 0 || colon < 0 || dsn[colon+1:at] != cfg.Passwd {
		return redactUserinfo(dsn) // not where the driver found it: be coarse
	}
	return dsn[:colon+1] + redacted + dsn[at:]
}

// redactRedisURL is a -redis value with its password redacted:
// redis://user:xxxxx@host:port/db. A lone user name (redis://secret@host)
// is taken as a password, as redis-cli takes it. A plain host:port has
// nothing to hide.
func redactRedisURL(s string) string {
	return redactUserinfo(s)
}

// redactUserinfo redacts the password of scheme://user:password@rest or
// user:password@rest: from after the first ':' of the user information
// (after the scheme) to the last '@'. With no ':' there, the whole user
// information goes, since it may be a password alone. The last '@' and
// not the first, nor the end of the host, bounds it, so that a password
// with an unescaped '@', '/' or '?' is hidden all the same.
func redactUserinfo(s string) string {
	start := 0
	if i := strings.Index(s, "://"); i >= 0 {
		start = i + len("://")
	}
	at := strings.LastIndexByte(s, '@')
	if at < start {
		return s
	}
	user := s[start:at]
	if colon := strings.IndexByte(user, ':'); colon >= 0 {
		return s[:start+colon+1] + redacted + s[at:]
	}
	if user == "" {
		return s
	}
	return s[:start] + redacted + s[at:]
}
