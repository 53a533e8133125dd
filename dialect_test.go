package main

import (
	"bytes"
	"database/sql"
	"net/url"
	"strings"
	"testing"
)

// The MySQL connection's security: TLS asked for in the DSN is TLS or an
// error, never plain text; and the client-side interpolation of arguments
// (interpolateParams, with multiStatements) stores hostile text as text
// whatever the server's sql_mode (docs/design.md, "Security of the MySQL
// options").

// TestMySQLTLSRequired: tls=true in the DSN against a MySQL without TLS
// fails at start with a clear line; it does not go on in plain text.
func TestMySQLTLSRequired(t *testing.T) {
	dsn := mysqlAdminDSN(t)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	var name, haveSSL string
	err = db.QueryRow("SHOW VARIABLES LIKE 'have_ssl'").Scan(&name, &haveSSL)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if haveSSL == "YES" {
		t.Skipf("the MySQL of CHAT_TEST_MYSQL speaks TLS (have_ssl %s): this test needs one that does not", haveSSL)
	}
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	for _, mode := range []string{"true", "custom-name"} {
		var stdout, stderr bytes.Buffer
		status := runServer([]string{"-db", "mysql:" + dsn + sep + "tls=" + mode, "-listen", "127.0.0.1:0"}, cmdEnv(nil), &stdout, &stderr)
		if status != 1 {
			t.Fatalf("tls=%s: exit status %d, want 1 (stderr %q)", mode, status, stderr.String())
		}
		cmdOneLine(t, "stderr", stderr.String())
		want := map[string]string{"true": "TLS requested but server does not support TLS", "custom-name": "unknown config name"}[mode]
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("tls=%s: stderr %q, want %q", mode, stderr.String(), want)
		}
		t.Logf("tls=%s: %s", mode, strings.TrimSpace(stderr.String()))
	}
}

// hostileTexts are stored and read back byte for byte: quotes, backslashes
// and comment markers that would end a string literal or a statement if
// an argument were escaped for the wrong sql_mode, and placeholders.
var hostileTexts = []string{
	`'); DROP TABLE users; -- `,
	`\'; DELETE FROM messages; SELECT '`,
	`\\'; UPDATE members SET acked_seq = 0; #`,
	`" OR "1"="1`,
	`\"; SELECT 1; /*`,
	`*/ ? ?, ? -- ?`,
	`\`,
	`\\`,
	`'`,
	`''`,
	"\\0 \\n \\Z %_ \u00bf' \u2028 😀",
	"a\tb\u0007c",
}

// TestMySQLHostileText: chats, cids, group names and descriptions made of
// SQL punctuation come back as they were sent, with the server's sql_mode
// as it is and with NO_BACKSLASH_ESCAPES (where a backslash is no escape:
// the driver learns the mode from the server's status flags and doubles
// quotes instead), and the tables are intact afterwards.
func TestMySQLHostileText(t *testing.T) {
	for _, mode := range []string{"", "NO_BACKSLASH_ESCAPES", "ANSI_QUOTES,NO_BACKSLASH_ESCAPES,STRICT_TRANS_TABLES"} {
		t.Run("sql_mode="+mode, func(t *testing.T) {
			db := mysqlURL(t)
			if mode != "" {
				db += "?sql_mode=" + url.QueryEscape("'"+mode+"'")
				// The DSN's sql_mode reaches the session.
				sdb, err := sql.Open("mysql", strings.TrimPrefix(db, "mysql:"))
				if err != nil {
					t.Fatal(err)
				}
				var got string
				err = sdb.QueryRow("SELECT @@SESSION.sql_mode").Scan(&got)
				sdb.Close()
				if err != nil || !strings.Contains(got, "NO_BACKSLASH_ESCAPES") {
					t.Fatalf("session sql_mode %q, %v", got, err)
				}
			}
			ts := startServer(t, db)
			a := newUser(t, ts.addr, "hx")
			b := newUser(t, ts.addr, "hy")
			for i, text := range hostileTexts {
				cid := text
				if i%2 == 1 {
					cid = strings.Repeat(text, 3)
				}
				cid = string([]rune(cid)[:min(len([]rune(cid)), 20)])
				m := a.must("chat", map[string]any{"to": b.user, "text": text, "cid": cid}).obj("message")
				// The same cid again: the replay lookup compares it in SQL.
				if again := a.must("chat", map[string]any{"to": b.user, "text": "other", "cid": cid}).obj("message"); again.num("id") != m.num("id") {
					t.Fatalf("cid %q: the replay got message %d, want %d", cid, again.num("id"), m.num("id"))
				}
			}
			msgs := b.must("history", map[string]any{"with": a.user, "limit": 200}).list("messages")
			if len(msgs) != len(hostileTexts) {
				t.Fatalf("%d messages in the history, want %d", len(msgs), len(hostileTexts))
			}
			for i, m := range msgs {
				if got := m.str("text"); got != hostileTexts[i] {
					t.Errorf("message %d: stored %q, sent %q", i, got, hostileTexts[i])
				}
			}
			for _, text := range hostileTexts[:6] {
				name := string([]rune(text)[:min(len([]rune(text)), 64)])
				g := a.must("create_group", map[string]any{"name": name, "desc": text}).obj("group")
				if g.str("name") != name || g.str("desc") != text {
					t.Errorf("group %q %q came back as %q %q", name, text, g.str("name"), g.str("desc"))
				}
			}
			groups := a.must("groups", nil).list("groups")
			if len(groups) != 6 {
				t.Fatalf("%d groups, want 6", len(groups))
			}
			// Nothing was dropped or rewritten: both users and every message
			// are there.
			if f := a.must("online", nil); f.num("total") != 2 {
				t.Fatalf("online: %v", f)
			}
			b.must("whois", map[string]any{"id": a.user})
			if n := len(a.must("history", map[string]any{"with": b.user, "limit": 200}).list("messages")); n != len(hostileTexts) {
				t.Fatalf("a sees %d messages", n)
			}
		})
	}
}
