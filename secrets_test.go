package main

import (
	"bytes"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Secrets on the command line are never printed: not in start errors, not
// in logs, not on the admin port.

func TestRedactDSN(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"root:hunter2@tcp(127.0.0.1:3306)/chat", "root:xxxxx@tcp(127.0.0.1:3306)/chat"},
		{"root:@tcp(127.0.0.1:3306)/chat", "root:@tcp(127.0.0.1:3306)/chat"},
		{"root@tcp(127.0.0.1:3306)/chat", "root@tcp(127.0.0.1:3306)/chat"},
		{"tcp(db:3306)/chat", "tcp(db:3306)/chat"},
		{"/chat", "/chat"},
		{"chat:hunter2@unix(/run/mysqld/mysqld.sock)/chat?tls=true", "chat:xxxxx@unix(/run/mysqld/mysqld.sock)/chat?tls=true"},
		// The driver takes the last '@' before the last '/': a password
		// may hold '@', ':' and '/'.
		{"u:hun@ter:2@tcp(h:1)/db", "u:xxxxx@tcp(h:1)/db"},
		{"u:hun/ter2@tcp(h:1)/db", "u:xxxxx@tcp(h:1)/db"},
		{"u:pw@tcp(h:1)/db?timeout=5s&tls=skip-verify", "u:xxxxx@tcp(h:1)/db?timeout=5s&tls=skip-verify"},
		// What the driver cannot parse loses everything from the first ':'
		// to the last '@'.
		{"root:hunter2@tcp(127.0.0.1:3306", "root:xxxxx@tcp(127.0.0.1:3306"},
		{"root:hun/ter2@tcp(127.0.0.1:3306)", "root:xxxxx@tcp(127.0.0.1:3306)"},
		{"root:hunter2@tcp(h)/x?tls=bogus&a", "root:xxxxx@tcp(h)/x?tls=bogus&a"},
	} {
		if got := redactDSN(tc.in); got != tc.want {
			t.Errorf("redactDSN(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRedactDBURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"sqlite:chat.db", "sqlite:chat.db"},
		{"sqlite:/data/a:b@c.db", "sqlite:/data/a:b@c.db"}, // a path, no secret
		{"mysql:root:hunter2@tcp(db:3306)/chat", "mysql:root:xxxxx@tcp(db:3306)/chat"},
		{"mysql:root:@tcp(db:3306)/chat", "mysql:root:@tcp(db:3306)/chat"},
		// Not a -db the server takes, but shown in the error saying so.
		{"postgres://u:hunter2@db/chat", "postgres://u:xxxxx@db/chat"},
		{"mysq:root:hunter2@tcp(db)/chat", "mysq:xxxxx@tcp(db)/chat"},
		{"chat.db", "chat.db"},
	} {
		if got := redactDBURL(tc.in); got != tc.want {
			t.Errorf("redactDBURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRedactRedisURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"127.0.0.1:6379", "127.0.0.1:6379"},
		{"redis:6379", "redis:6379"},
		{"redis://127.0.0.1:6379/2", "redis://127.0.0.1:6379/2"},
		{"redis://:hunter2@127.0.0.1:6379", "redis://:xxxxx@127.0.0.1:6379"},
		{"rediss://chat:hunter2@redis.internal:6380/1", "rediss://chat:xxxxx@redis.internal:6380/1"},
		{"redis://hunter2@h:1", "redis://xxxxx@h:1"}, // redis-cli reads a lone name as a password
		{"redis://:hun@ter2@h:1", "redis://:xxxxx@h:1"},
		{"redis://:hun/ter?2#x@h:1", "redis://:xxxxx@h:1"}, // unescaped: not a valid URL, hidden all the same
		{"redis://:hunter2@", "redis://:xxxxx@"},
		{"redis://@h:1", "redis://@h:1"},
		{"u:hunter2@h:1", "u:xxxxx@h:1"},
	} {
		if got := redactRedisURL(tc.in); got != tc.want {
			t.Errorf("redactRedisURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// mysqlUserURL makes a fresh database and a MySQL user with a password that
// may use it (with the privileges SECURITY.md names), and returns the -db
// value and the password.
//
// The private MariaDB of scripts/mariadb.sh runs with --skip-grant-tables:
// it has no users to create and takes any password. There the DSN is root's
// with the made-up password, a secret on the command line all the same, and
// checked is false: a wrong password cannot be told from a right one.
func mysqlUserURL(t testing.TB) (db, password string, checked bool) {
	t.Helper()
	dbURL := mysqlURL(t)
	cfg, err := mysql.ParseDSN(strings.TrimPrefix(dbURL, "mysql:"))
	if err != nil {
		t.Fatal(err)
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	user, password := "chat_u_"+hex.EncodeToString(rnd[:3]), "Sec"+hex.EncodeToString(rnd[3:])+"ret"
	admin, err := mysql.ParseDSN(mysqlAdminDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	admin.DBName = ""
	adb, err := sql.Open("mysql", admin.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		adb.Exec("DROP USER IF EXISTS '" + user + "'@'%'")
		adb.Close()
	})
	var grantsSkipped int
	if err := adb.QueryRow("SELECT COUNT(*) FROM information_schema.GLOBAL_VARIABLES WHERE VARIABLE_NAME = 'SKIP_GRANT_TABLES' AND VARIABLE_VALUE = 'ON'").Scan(&grantsSkipped); err == nil && grantsSkipped > 0 {
		cfg.Passwd = password
		return "mysql:" + cfg.FormatDSN(), password, false
	}
	if _, err := adb.Exec("CREATE USER '" + user + "'@'%' IDENTIFIED BY '" + password + "'"); err != nil && strings.Contains(err.Error(), "skip-grant-tables") {
		cfg.Passwd = password
		return "mysql:" + cfg.FormatDSN(), password, false
	} else if err != nil {
		t.Fatalf("create user: %v", err)
	}
	for _, q := range []string{
		// The privileges SECURITY.md asks for, and no more.
		"GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX ON `" + cfg.DBName + "`.* TO '" + user + "'@'%'",
	} {
		if _, err := adb.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	cfg.User, cfg.Passwd = user, password
	return "mysql:" + cfg.FormatDSN(), password, true
}

// TestStartErrorsHideSecrets: a server that cannot start prints one line
// on stderr, and the -db and -redis passwords are not in it.
func TestStartErrorsHideSecrets(t *testing.T) {
	const secret = "hunter2"
	type startCase struct {
		name    string
		args    []string
		mention string // a part of the line on stderr
	}
	run := func(t *testing.T, cases []startCase) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				var stdout, stderr bytes.Buffer
				if status := runServer(c.args, cmdEnv(nil), &stdout, &stderr); status != 1 {
					t.Fatalf("exit status %d, want 1 (stderr %q)", status, stderr.String())
				}
				cmdOneLine(t, "stderr", stderr.String())
				if strings.Contains(stderr.String(), secret) {
					t.Fatalf("stderr shows the password: %q", stderr.String())
				}
				if !strings.Contains(stderr.String(), c.mention) {
					t.Errorf("stderr %q does not mention %q", stderr.String(), c.mention)
				}
				t.Logf("%s", strings.TrimSpace(stderr.String()))
			})
		}
	}
	run(t, []startCase{
		{"unreachable mysql", []string{"-db", "mysql:root:" + secret + "@tcp(127.0.0.1:1)/x"}, "127.0.0.1:1"},
		{"bad mysql DSN", []string{"-db", "mysql:root:" + secret + "@tcp(127.0.0.1:1"}, "DSN"},
		{"bad mysql DSN option", []string{"-db", "mysql:root:" + secret + "@tcp(127.0.0.1:1)/x?tls=bogus"}, "bogus"},
	})
	// -redis is looked at once the store is open, so these need a MySQL
	// that answers.
	t.Run("mysql", func(t *testing.T) {
		db, password, checked := mysqlUserURL(t)
		redis := func(name, url, mention string) startCase {
			return startCase{name, []string{"-db", db, "-listen", "127.0.0.1:0", "-redis", url}, mention}
		}
		if checked {
			run(t, []startCase{
				{"wrong mysql password", []string{"-db", strings.Replace(db, ":"+password+"@", ":"+secret+"@", 1)}, "Access denied"},
			})
		} else {
			t.Log("this MySQL takes any password (--skip-grant-tables): no wrong-password case")
		}
		run(t, []startCase{
			redis("unreachable redis", "redis://:"+secret+"@127.0.0.1:1", "redis://:xxxxx@127.0.0.1:1"),
			redis("unreachable redis, TLS", "rediss://chat:"+secret+"@127.0.0.1:1/3", "rediss://chat:xxxxx@127.0.0.1:1/3"),
			redis("redis URL with a bad host", "redis://:"+secret+"@127.0.0.1:1:2", "redis://:xxxxx@127.0.0.1:1:2"),
			redis("redis URL with a space", "redis://:hun ter2@127.0.0.1:1", "redis://:xxxxx@127.0.0.1:1"),
			redis("redis URL with an option", "rediss://:"+secret+"@127.0.0.1:1?insecure=1", "not supported"),
			redis("redis URL with a bad port", "redis://:"+secret+"@127.0.0.1:99999", "port"),
			redis("redis URL with a user and no password", "redis://"+secret+"@127.0.0.1:1", "without a password"),
		})
	})
}

// TestAdminShowsNoSecrets runs a real server with secrets on its command
// line and walks its admin port, the profiler included: no page shows
// them, /debug/pprof/cmdline is not served, and the log shows them
// redacted. With CHAT_TEST_MYSQL the -db DSN has a password (a user made
// for the test) and, with CHAT_TEST_REDIS too, -redis is a URL with a
// password (a private Redis with requirepass); without them the secret
// rides in a SQLite path, on the command line all the same.
func TestAdminShowsNoSecrets(t *testing.T) {
	bin := cmdBuildServer(t, t.TempDir())
	listen, admin := cmdFreeAddr(t), cmdFreeAddr(t)
	var secrets, args []string
	passwords := os.Getenv("CHAT_TEST_MYSQL") != ""
	if passwords {
		db, password, _ := mysqlUserURL(t)
		secrets = append(secrets, password)
		args = append(args, "-db", db)
		if os.Getenv("CHAT_TEST_REDIS") != "" {
			rpw := "Redis" + password
			addr := privateRedisWith(t, map[string]string{"CHAT_REDIS_PASSWORD": rpw})
			secrets = append(secrets, rpw)
			args = append(args, "-redis", "redis://:"+rpw+"@"+addr, "-node", "n1")
		}
	} else {
		secret := "Sec" + hex.EncodeToString([]byte(t.Name()))[:12] + "ret"
		secrets = append(secrets, secret)
		args = append(args, "-db", "sqlite:"+filepath.Join(t.TempDir(), secret+".db"))
	}
	args = append(args, "-listen", listen, "-admin", admin, "-pprof", "-bcrypt-cost", "4")
	p := cmdStart(t, bin, args, nil)
	p.waitListening(t, listen, 15*time.Second)
	c := newUser(t, listen, "sec")
	d := newUser(t, listen, "sec")
	waitHealth(t, admin, http.StatusOK, 10*time.Second)
	// Some traffic, stored and acked (and the account's privileges enough for it).
	m := c.must("chat", map[string]any{"to": d.user, "text": "hi", "cid": "c1"}).obj("message")
	d.messages(1, 5*time.Second)
	d.must("ack", map[string]any{"ids": []int64{m.num("id")}})
	c.must("create_group", map[string]any{"name": "g"})

	for _, path := range []string{
		"/healthz", "/metrics", "/debug/pprof/", "/debug/pprof/cmdline",
		"/debug/pprof/goroutine?debug=1", "/debug/pprof/goroutine?debug=2",
		"/debug/pprof/heap?debug=1", "/debug/pprof/allocs?debug=1",
		"/debug/pprof/threadcreate?debug=1", "/debug/pprof/symbol", "/debug/pprof/nonesuch",
	} {
		status, body, err := cmdHTTPGet("http://" + admin + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		if notFound := path == "/debug/pprof/cmdline" || path == "/debug/pprof/nonesuch"; notFound != (status == 404) || !notFound && status != 200 {
			t.Errorf("GET %s: %d", path, status)
		}
		for _, s := range secrets {
			if strings.Contains(body, s) {
				t.Errorf("GET %s shows a secret", path)
			}
		}
	}
	// The secrets are on the command line, as the test means them to be.
	for _, s := range secrets {
		if !strings.Contains(strings.Join(p.cmd.Args, " "), s) {
			t.Fatalf("the test put no secret %q on the command line", s)
		}
	}
	p.signalStop(t, syscall.SIGTERM, c)
	log := p.stderr.String()
	t.Logf("log:\n%s", log)
	if !passwords {
		return // a SQLite path is no secret to the log
	}
	for _, s := range secrets {
		if strings.Contains(log, s) {
			t.Errorf("the log shows a secret:\n%s", log)
		}
	}
	if !strings.Contains(log, `:xxxxx@tcp(`) || len(secrets) > 1 && !strings.Contains(log, `redis=redis://:xxxxx@`) {
		t.Errorf("the log does not name the database and Redis, passwords redacted:\n%s", log)
	}
}
