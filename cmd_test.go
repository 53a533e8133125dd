package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// The command-line contract of docs/protocol.md's appendix: flags, their CHAT_*
// variables, exit statuses and the one-line error, signals, and the admin
// endpoints of a real server process.

// cmdDefaults is the configuration the appendix promises without flags.
var cmdDefaults = Config{
	Listen:      ":6000",
	DB:          "sqlite:chat.db",
	Redis:       "",
	RedisPrefix: "chat",
	Node:        cmdNode("6000"), // the listen address, with this host's name when it has none
	Admin:       "",
	IdleTimeout: 90 * time.Second,
	MaxFrame:    65536,
	SendQueue:   1024,
	MaxDevices:  8,
	Rate:        100,
	BcryptCost:  bcrypt.DefaultCost,
	LogLevel:    "info",

	MaxConns:      20000,
	MaxConnsPerIP: 256,
	LoginTimeout:  30 * time.Second,
	SendBuffer:    4 << 20,

	Web: ":8080",
}

func cmdNode(port string) string {
	h, _ := os.Hostname()
	return net.JoinHostPort(h, port)
}

func cmdEnv(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

func TestParseConfig(t *testing.T) {
	with := func(edit func(*Config)) Config {
		c := cmdDefaults
		edit(&c)
		return c
	}
	const dsn = "mysql:root:@tcp(127.0.0.1:3306)/chat"
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want Config
		err  string // a part of the error; empty: no error
	}{
		{name: "defaults", want: cmdDefaults},
		{name: "unrelated variables", env: map[string]string{"CHAT_TEST_MYSQL": "x", "DB": "x", "chat_db": "x"}, want: cmdDefaults},
		{name: "empty variable is unset", env: map[string]string{"CHAT_MAX_FRAME": "", "CHAT_LISTEN": ""}, want: cmdDefaults},

		// Each flag.
		{name: "-listen", args: []string{"-listen", "127.0.0.1:7000"},
			want: with(func(c *Config) { c.Listen, c.Node = "127.0.0.1:7000", "127.0.0.1:7000" })},
		{name: "--listen=", args: []string{"--listen=127.0.0.1:7000"},
			want: with(func(c *Config) { c.Listen, c.Node = "127.0.0.1:7000", "127.0.0.1:7000" })},
		{name: "-db mysql", args: []string{"-db", dsn}, want: with(func(c *Config) { c.DB = dsn })},
		{name: "-db sqlite", args: []string{"-db", "sqlite:/tmp/x.db"}, want: with(func(c *Config) { c.DB = "sqlite:/tmp/x.db" })},
		{name: "-redis", args: []string{"-redis", "127.0.0.1:6379", "-db", dsn}, want: with(func(c *Config) { c.Redis, c.DB = "127.0.0.1:6379", dsn })},
		{name: "-redis-prefix", args: []string{"-redis-prefix", "c2"}, want: with(func(c *Config) { c.RedisPrefix = "c2" })},
		{name: "-node", args: []string{"-node", "n1"}, want: with(func(c *Config) { c.Node = "n1" })},
		{name: "-node and -listen", args: []string{"-listen", ":7001", "-node", "n1"},
			want: with(func(c *Config) { c.Listen, c.Node = ":7001", "n1" })},
		{name: "-redis with sqlite", args: []string{"-redis", "127.0.0.1:6379"}, err: "-redis needs -db mysql"},
		{name: "-admin", args: []string{"-admin", "127.0.0.1:9100"}, want: with(func(c *Config) { c.Admin = "127.0.0.1:9100" })},
		{name: "-idle-timeout", args: []string{"-idle-timeout", "1m30s500ms"},
			want: with(func(c *Config) { c.IdleTimeout = 90*time.Second + 500*time.Millisecond })},
		{name: "-max-frame", args: []string{"-max-frame", "1024"}, want: with(func(c *Config) { c.MaxFrame = 1024 })},
		{name: "-max-frame smallest", args: []string{"-max-frame", "256"}, want: with(func(c *Config) { c.MaxFrame = 256 })},
		{name: "-send-queue", args: []string{"-send-queue", "1"}, want: with(func(c *Config) { c.SendQueue = 1 })},
		{name: "-rate", args: []string{"-rate", "2.5"}, want: with(func(c *Config) { c.Rate = 2.5 })},
		{name: "-rate 0 is unlimited", args: []string{"-rate", "0"}, want: with(func(c *Config) { c.Rate = 0 })},
		{name: "-bcrypt-cost", args: []string{"-bcrypt-cost", "4"}, want: with(func(c *Config) { c.BcryptCost = 4 })},
		{name: "-log-level", args: []string{"-log-level", "debug"}, want: with(func(c *Config) { c.LogLevel = "debug" })},
		{name: "every flag", args: []string{"-listen", ":1", "-db", dsn, "-redis", "r:1", "-node", "n", "-admin", ":2",
			"-idle-timeout", "3s", "-max-frame", "300", "-send-queue", "4", "-max-devices", "2", "-rate", "5", "-bcrypt-cost", "6", "-log-level", "warn",
			"-tls-cert", "c.pem", "-tls-key", "k.pem", "-max-conns", "7", "-max-conns-per-ip", "8", "-login-timeout", "9s",
			"-send-buffer", "512KiB", "-pprof", "-web", ":3", "-web-origins", "a.example"},
			want: Config{Listen: ":1", DB: dsn, Redis: "r:1", RedisPrefix: "chat", Node: "n", Admin: ":2", IdleTimeout: 3 * time.Second,
				MaxFrame: 300, SendQueue: 4, MaxDevices: 2, Rate: 5, BcryptCost: 6, LogLevel: "warn",
				TLSCert: "c.pem", TLSKey: "k.pem", MaxConns: 7, MaxConnsPerIP: 8, LoginTimeout: 9 * time.Second,
				SendBuffer: 512 << 10, Pprof: true, Web: ":3", WebOrigins: originList{"a.example"}}},
		{name: "-web", args: []string{"-web", "127.0.0.1:8081"}, want: with(func(c *Config) { c.Web = "127.0.0.1:8081" })},
		{name: "-web empty is off", args: []string{"-web="}, want: with(func(c *Config) { c.Web = "" })},
		{name: "-web off", args: []string{"-web", "off"}, want: with(func(c *Config) { c.Web = "" })},
		{name: "CHAT_WEB", env: map[string]string{"CHAT_WEB": ":9090"}, want: with(func(c *Config) { c.Web = ":9090" })},
		{name: "CHAT_WEB off", env: map[string]string{"CHAT_WEB": "off"}, want: with(func(c *Config) { c.Web = "" })},
		{name: "-web-origins", args: []string{"-web-origins", "chat.example.com, *.example.org,https://x.example"},
			want: with(func(c *Config) { c.WebOrigins = originList{"chat.example.com", "*.example.org", "https://x.example"} })},
		{name: "CHAT_WEB_ORIGINS", env: map[string]string{"CHAT_WEB_ORIGINS": "a.example"}, want: with(func(c *Config) { c.WebOrigins = originList{"a.example"} })},
		{name: "-trusted-proxies", args: []string{"-trusted-proxies", "10.0.0.10, 10.1.0.0/16,2001:db8::/48,::ffff:192.0.2.1"},
			want: with(func(c *Config) {
				c.TrustedProxies = prefixList{netip.MustParsePrefix("10.0.0.10/32"), netip.MustParsePrefix("10.1.0.0/16"),
					netip.MustParsePrefix("2001:db8::/48"), netip.MustParsePrefix("192.0.2.1/32")}
			})},
		{name: "-send-buffer in bytes", args: []string{"-send-buffer", "70000"}, want: with(func(c *Config) { c.SendBuffer = 70000 })},
		{name: "CHAT_SEND_BUFFER", env: map[string]string{"CHAT_SEND_BUFFER": "1GiB"}, want: with(func(c *Config) { c.SendBuffer = 1 << 30 })},
		{name: "CHAT_LOGIN_TIMEOUT", env: map[string]string{"CHAT_LOGIN_TIMEOUT": "5s"}, want: with(func(c *Config) { c.LoginTimeout = 5 * time.Second })},

		// Each variable.
		{name: "CHAT_LISTEN", env: map[string]string{"CHAT_LISTEN": "127.0.0.1:7000"},
			want: with(func(c *Config) { c.Listen, c.Node = "127.0.0.1:7000", "127.0.0.1:7000" })},
		{name: "CHAT_DB", env: map[string]string{"CHAT_DB": dsn}, want: with(func(c *Config) { c.DB = dsn })},
		{name: "CHAT_REDIS", env: map[string]string{"CHAT_REDIS": "127.0.0.1:6379", "CHAT_DB": dsn}, want: with(func(c *Config) { c.Redis, c.DB = "127.0.0.1:6379", dsn })},
		{name: "CHAT_NODE", env: map[string]string{"CHAT_NODE": "n1"}, want: with(func(c *Config) { c.Node = "n1" })},
		{name: "CHAT_ADMIN", env: map[string]string{"CHAT_ADMIN": ":9100"}, want: with(func(c *Config) { c.Admin = ":9100" })},
		{name: "CHAT_IDLE_TIMEOUT", env: map[string]string{"CHAT_IDLE_TIMEOUT": "2m"}, want: with(func(c *Config) { c.IdleTimeout = 2 * time.Minute })},
		{name: "CHAT_MAX_FRAME", env: map[string]string{"CHAT_MAX_FRAME": "4096"}, want: with(func(c *Config) { c.MaxFrame = 4096 })},
		{name: "CHAT_SEND_QUEUE", env: map[string]string{"CHAT_SEND_QUEUE": "16"}, want: with(func(c *Config) { c.SendQueue = 16 })},
		{name: "CHAT_RATE", env: map[string]string{"CHAT_RATE": "0"}, want: with(func(c *Config) { c.Rate = 0 })},
		{name: "CHAT_BCRYPT_COST", env: map[string]string{"CHAT_BCRYPT_COST": "4"}, want: with(func(c *Config) { c.BcryptCost = 4 })},
		{name: "CHAT_LOG_LEVEL", env: map[string]string{"CHAT_LOG_LEVEL": "error"}, want: with(func(c *Config) { c.LogLevel = "error" })},

		// A flag wins over its variable, whatever their order.
		{name: "flag over CHAT_LISTEN", args: []string{"-listen", ":7002"}, env: map[string]string{"CHAT_LISTEN": ":7001"},
			want: with(func(c *Config) { c.Listen, c.Node = ":7002", cmdNode("7002") })},
		{name: "flag over CHAT_DB", args: []string{"-db", "sqlite:b.db"}, env: map[string]string{"CHAT_DB": "sqlite:a.db"},
			want: with(func(c *Config) { c.DB = "sqlite:b.db" })},
		{name: "flag over CHAT_IDLE_TIMEOUT", args: []string{"-idle-timeout", "1s"}, env: map[string]string{"CHAT_IDLE_TIMEOUT": "1h"},
			want: with(func(c *Config) { c.IdleTimeout = time.Second })},
		{name: "flag over CHAT_MAX_FRAME", args: []string{"-max-frame", "512"}, env: map[string]string{"CHAT_MAX_FRAME": "4096"},
			want: with(func(c *Config) { c.MaxFrame = 512 })},
		{name: "zero flag over CHAT_RATE", args: []string{"-rate", "0"}, env: map[string]string{"CHAT_RATE": "7"},
			want: with(func(c *Config) { c.Rate = 0 })},
		{name: "flag over CHAT_NODE", args: []string{"-node", "b"}, env: map[string]string{"CHAT_NODE": "a"},
			want: with(func(c *Config) { c.Node = "b" })},
		{name: "variables and flags mixed", args: []string{"-send-queue", "3"},
			env:  map[string]string{"CHAT_SEND_QUEUE": "9", "CHAT_RATE": "1", "CHAT_ADMIN": ":9"},
			want: with(func(c *Config) { c.SendQueue, c.Rate, c.Admin = 3, 1, ":9" })},

		// Bad values.
		{name: "unknown flag", args: []string{"-bogus"}, err: "bogus"},
		{name: "argument", args: []string{"extra"}, err: "extra"},
		{name: "flag without its value", args: []string{"-listen"}, err: "listen"},
		{name: "-max-frame not a number", args: []string{"-max-frame", "big"}, err: "max-frame"},
		{name: "-max-frame too small", args: []string{"-max-frame", "255"}, err: "max-frame"},
		{name: "-idle-timeout without unit", args: []string{"-idle-timeout", "90"}, err: "idle-timeout"},
		{name: "-idle-timeout zero", args: []string{"-idle-timeout", "0s"}, err: "idle-timeout"},
		{name: "-idle-timeout negative", args: []string{"-idle-timeout", "-1s"}, err: "idle-timeout"},
		{name: "-send-queue zero", args: []string{"-send-queue", "0"}, err: "send-queue"},
		{name: "-rate negative", args: []string{"-rate", "-1"}, err: "rate"},
		{name: "-rate not a number", args: []string{"-rate", "fast"}, err: "rate"},
		{name: "-bcrypt-cost too low", args: []string{"-bcrypt-cost", "3"}, err: "bcrypt-cost"},
		{name: "-bcrypt-cost too high", args: []string{"-bcrypt-cost", "32"}, err: "bcrypt-cost"},
		{name: "-db without kind", args: []string{"-db", "chat.db"}, err: "-db"},
		{name: "-db other kind", args: []string{"-db", "postgres:x"}, err: "-db"},
		{name: "-db sqlite without path", args: []string{"-db", "sqlite:"}, err: "-db"},
		{name: "-db mysql without DSN", args: []string{"-db", "mysql:"}, err: "-db"},
		{name: "CHAT_MAX_FRAME not a number", env: map[string]string{"CHAT_MAX_FRAME": "big"}, err: "CHAT_MAX_FRAME"},
		{name: "CHAT_IDLE_TIMEOUT not a duration", env: map[string]string{"CHAT_IDLE_TIMEOUT": "forever"}, err: "CHAT_IDLE_TIMEOUT"},
		{name: "CHAT_IDLE_TIMEOUT zero", env: map[string]string{"CHAT_IDLE_TIMEOUT": "0s"}, err: "idle-timeout"},
		{name: "CHAT_SEND_QUEUE zero", env: map[string]string{"CHAT_SEND_QUEUE": "0"}, err: "send-queue"},
		{name: "CHAT_RATE negative", env: map[string]string{"CHAT_RATE": "-5"}, err: "rate"},
		{name: "CHAT_BCRYPT_COST too high", env: map[string]string{"CHAT_BCRYPT_COST": "99"}, err: "bcrypt-cost"},
		{name: "CHAT_DB bad", env: map[string]string{"CHAT_DB": "nope"}, err: "-db"},
		{name: "good variable, bad flag", args: []string{"-max-frame", "10"}, env: map[string]string{"CHAT_MAX_FRAME": "4096"}, err: "max-frame"},
		{name: "-tls-cert without -tls-key", args: []string{"-tls-cert", "c.pem"}, err: "tls-key"},
		{name: "-tls-key without -tls-cert", args: []string{"-tls-key", "k.pem"}, err: "tls-cert"},
		{name: "-max-conns zero", args: []string{"-max-conns", "0"}, err: "max-conns"},
		{name: "-max-conns-per-ip zero", args: []string{"-max-conns-per-ip", "0"}, err: "max-conns-per-ip"},
		{name: "-login-timeout zero", args: []string{"-login-timeout", "0s"}, err: "login-timeout"},
		{name: "-send-buffer in MB", args: []string{"-send-buffer", "4MB"}, err: "send-buffer"},
		{name: "-send-buffer negative", args: []string{"-send-buffer", "-1"}, err: "send-buffer"},
		{name: "-send-buffer overflows", args: []string{"-send-buffer", "9999999999GiB"}, err: "send-buffer"},
		{name: "-send-buffer below a frame", args: []string{"-send-buffer", "64KiB"}, err: "send-buffer"},
		{name: "-pprof without -admin", args: []string{"-pprof"}, err: "admin"},
		{name: "-trusted-proxies not an address", args: []string{"-trusted-proxies", "nginx.internal"}, err: "trusted-proxies"},
		{name: "-web-origins bad pattern", args: []string{"-web-origins", "[a"}, err: "web-origins"},
		{name: "-web-origins any", args: []string{"-web-origins", "*"}, err: "web-origins"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var usage bytes.Buffer
			got, err := parseConfig(tc.args, cmdEnv(tc.env), &usage)
			if tc.err != "" {
				if err == nil {
					t.Fatalf("args %q env %v: no error, config %+v", tc.args, tc.env, got)
				}
				if !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("args %q env %v: error %q does not mention %q", tc.args, tc.env, err, tc.err)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Fatalf("error spans lines: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("args %q env %v: %v", tc.args, tc.env, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("args %q env %v:\n got %+v\nwant %+v", tc.args, tc.env, got, tc.want)
			}
			if usage.Len() != 0 {
				t.Fatalf("usage printed without -h: %q", usage.String())
			}
		})
	}
}

func TestParseConfigHelp(t *testing.T) {
	for _, arg := range []string{"-h", "-help", "--help"} {
		var usage bytes.Buffer
		_, err := parseConfig([]string{arg}, cmdEnv(nil), &usage)
		if !errors.Is(err, errHelp) {
			t.Fatalf("%s: err %v, want errHelp", arg, err)
		}
		for _, flag := range []string{"-listen", "-db", "-redis", "-node", "-admin", "-idle-timeout", "-max-frame", "-send-queue", "-rate", "CHAT_"} {
			if !strings.Contains(usage.String(), flag) {
				t.Errorf("%s: usage does not mention %s:\n%s", arg, flag, usage.String())
			}
		}
	}
}

// cmdFreeAddr returns a 127.0.0.1 address with a port from freePort.
func cmdFreeAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
}

// cmdHTTPGet fetches url with a bounded wait.
func cmdHTTPGet(url string) (status int, body string, err error) {
	hc := &http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// cmdOneLine checks that s is exactly one non-empty line, ended by '\n'.
func cmdOneLine(t testing.TB, what, s string) {
	t.Helper()
	if !strings.HasSuffix(s, "\n") || strings.Count(s, "\n") != 1 || strings.TrimSpace(s) == "" {
		t.Fatalf("%s: want exactly one line, got %q", what, s)
	}
}

func TestRunServerExitStatus(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	sqlite := func() string { return sqliteURL(t) }
	cases := []struct {
		name    string
		args    []string
		env     map[string]string
		mention string // a part of the line on stderr
	}{
		{name: "unknown flag", args: []string{"-bogus"}, mention: "bogus"},
		{name: "bad value", args: []string{"-max-frame", "x"}, mention: "max-frame"},
		{name: "value out of range", args: []string{"-bcrypt-cost", "99"}, mention: "bcrypt-cost"},
		{name: "argument", args: []string{"-db", sqlite(), "serve"}, mention: "serve"},
		{name: "bad variable", env: map[string]string{"CHAT_IDLE_TIMEOUT": "forever"}, mention: "CHAT_IDLE_TIMEOUT"},
		{name: "bad -db", args: []string{"-db", "postgres://x"}, mention: "-db"},
		{name: "bad -log-level", args: []string{"-db", sqlite(), "-log-level", "loud"}, mention: "log-level"},
		{name: "unreachable mysql", args: []string{"-db", "mysql:root:@tcp(127.0.0.1:1)/x"}, mention: "127.0.0.1:1"},
		{name: "bad mysql DSN", args: []string{"-db", "mysql:nonsense"}, mention: "DSN"},
		{name: "sqlite in a missing directory", args: []string{"-db", "sqlite:" + filepath.Join(t.TempDir(), "no", "such", "dir", "chat.db")}, mention: "sqlite"},
		{name: "unreachable redis", args: []string{"-db", sqlite(), "-listen", "127.0.0.1:0", "-redis", "127.0.0.1:1"}, mention: "redis"},
		{name: "listen address in use", args: []string{"-db", sqlite(), "-listen", busy.Addr().String()}, mention: busy.Addr().String()},
		{name: "admin address in use", args: []string{"-db", sqlite(), "-listen", "127.0.0.1:0", "-admin", busy.Addr().String()}, mention: busy.Addr().String()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			start := time.Now()
			status := runServer(tc.args, cmdEnv(tc.env), &stdout, &stderr)
			took := time.Since(start)
			if status != 1 {
				t.Fatalf("exit status %d, want 1 (stderr %q)", status, stderr.String())
			}
			cmdOneLine(t, "stderr", stderr.String())
			if !strings.Contains(stderr.String(), tc.mention) {
				t.Errorf("stderr %q does not mention %q", stderr.String(), tc.mention)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout: %q", stdout.String())
			}
			if took > 5*time.Second {
				t.Errorf("took %v to give up", took)
			}
			t.Logf("%v: %s", took.Round(time.Millisecond), strings.TrimSpace(stderr.String()))
		})
	}
	t.Run("help", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		if status := runServer([]string{"-h"}, cmdEnv(nil), &stdout, &stderr); status != 0 {
			t.Fatalf("-h: exit status %d, want 0 (stderr %q)", status, stderr.String())
		}
		if !strings.Contains(stdout.String(), "-listen") {
			t.Errorf("-h: no usage on stdout: %q", stdout.String())
		}
		if stderr.Len() != 0 {
			t.Errorf("-h: stderr %q", stderr.String())
		}
	})
}

// ---------------------------------------------------------------------------
// A real server process.

// cmdBuildServer builds the server binary into dir.
func cmdBuildServer(t *testing.T, dir string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
		if _, err := os.Stat(goBin); err != nil {
			if os.Getenv("CHAT_TEST_REQUIRE") != "" {
				t.Fatal("no go command on PATH nor in /usr/local/go/bin: cannot build the server")
			}
			t.Skip("no go command on PATH nor in /usr/local/go/bin: cannot build the server")
		}
	}
	bin := filepath.Join(dir, "chat-server")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, goBin, "build", "-tags", "server", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags server: %v\n%s", err, out)
	}
	t.Logf("built the server in %v", time.Since(start).Round(time.Millisecond))
	return bin
}

// cmdProc is a running server process.
type cmdProc struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	exited         chan struct{}
	status         int
}

// cmdStart starts bin with args and, over an environment without any
// CHAT_* variable of the test's own, env. It is killed at the end of the
// test if still running.
func cmdStart(t *testing.T, bin string, args []string, env map[string]string) *cmdProc {
	t.Helper()
	p := &cmdProc{stdout: &syncBuffer{}, stderr: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CHAT_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	if _, ok := env["CHAT_WEB"]; !ok {
		// A web port of its own, not the default :8080 that every
		// process would fight over (a -web argument still wins).
		p.cmd.Env = append(p.cmd.Env, "CHAT_WEB=127.0.0.1:0")
	}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		p.cmd.Wait()
		p.status = p.cmd.ProcessState.ExitCode()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// wait returns the exit status, failing the test if the process runs on
// past within.
func (p *cmdProc) wait(t testing.TB, within time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
		return p.status
	case <-time.After(within):
		p.cmd.Process.Kill()
		<-p.exited
		t.Fatalf("the server did not exit within %v; stderr:\n%s", within, p.stderr.String())
	}
	return -1
}

// waitListening waits until addr accepts connections.
func (p *cmdProc) waitListening(t testing.TB, addr string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		select {
		case <-p.exited:
			t.Fatalf("the server exited with status %d before listening; stderr:\n%s", p.status, p.stderr.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server does not accept on %s after %v; stderr:\n%s", addr, within, p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// signalStop sends sig and checks the graceful shutdown: c gets the
// shutdown push, its connection is closed, and the process exits 0.
func (p *cmdProc) signalStop(t testing.TB, sig os.Signal, c *testClient) {
	t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	if reason := c.push("shutdown", 5*time.Second).str("reason"); reason == "" {
		t.Errorf("shutdown push without a reason")
	}
	c.closed(5 * time.Second)
	if status := p.wait(t, 10*time.Second); status != 0 {
		t.Fatalf("%v: exit status %d, want 0; stderr:\n%s", sig, status, p.stderr.String())
	}
	t.Logf("%v: shutdown push, connection closed and exit 0 in %v", sig, time.Since(start).Round(time.Millisecond))
}

func TestServerProcess(t *testing.T) {
	bin := cmdBuildServer(t, t.TempDir())

	t.Run("lifecycle", func(t *testing.T) {
		db := "sqlite:" + filepath.Join(t.TempDir(), "chat.db")
		listen, admin := cmdFreeAddr(t), cmdFreeAddr(t)
		p := cmdStart(t, bin, []string{"-listen", listen, "-db", db, "-bcrypt-cost", "4", "-admin", admin}, nil)
		p.waitListening(t, listen, 15*time.Second)

		c := dial(t, listen)
		name := uniqueName("proc")
		id := c.must("register", map[string]any{"name": name, "password": testPassword}).obj("user").num("id")
		c.must("login", map[string]any{"name": name, "password": testPassword})

		code, body, err := cmdHTTPGet("http://" + admin + "/healthz")
		if err != nil || code != 200 || strings.TrimSpace(body) != "ok" {
			t.Fatalf("/healthz: %d %q %v", code, body, err)
		}
		// The address to open in a browser is logged, and serves the page.
		var m []string
		for deadline := time.Now().Add(5 * time.Second); m == nil; time.Sleep(20 * time.Millisecond) {
			m = regexp.MustCompile(`web client: (http://\S+/)`).FindStringSubmatch(p.stderr.String())
			if m == nil && time.Now().After(deadline) {
				t.Fatalf("no web client address logged; stderr:\n%s", p.stderr.String())
			}
		}
		if code, body, err := cmdHTTPGet(m[1]); err != nil || code != 200 || !strings.Contains(body, "<html") {
			t.Fatalf("GET %s: %d %v %.200q", m[1], code, err, body)
		}
		// The probe connection of waitListening may take a moment to be
		// counted out.
		wantMetrics := []string{
			`chat_connections{transport="tcp"} 1`,
			`chat_connections{transport="ws"} 0`,
			"chat_sessions 1",
			`chat_requests_total{type="login"} 1`,
			`chat_requests_total{type="register"} 1`,
		}
		var missing []string
		for deadline := time.Now().Add(3 * time.Second); ; {
			code, body, err = cmdHTTPGet("http://" + admin + "/metrics")
			if err != nil || code != 200 {
				t.Fatalf("/metrics: %d %v", code, err)
			}
			lines := map[string]bool{}
			for _, l := range strings.Split(body, "\n") {
				lines[l] = true
			}
			missing = missing[:0]
			for _, want := range wantMetrics {
				if !lines[want] {
					missing = append(missing, want)
				}
			}
			if len(missing) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("/metrics has no lines %q:\n%s", missing, body)
			}
			time.Sleep(50 * time.Millisecond)
		}
		p.signalStop(t, syscall.SIGTERM, c)

		// Again on the same database, configured through the environment
		// this time: the user is still there.
		p = cmdStart(t, bin, nil, map[string]string{"CHAT_LISTEN": listen, "CHAT_DB": db, "CHAT_BCRYPT_COST": "4", "CHAT_ADMIN": admin})
		p.waitListening(t, listen, 15*time.Second)
		c = dial(t, listen)
		if got := c.must("login", map[string]any{"name": name, "password": testPassword}).obj("user").num("id"); got != id {
			t.Fatalf("after the restart %s has id %d, was %d", name, got, id)
		}
		if code, _, err := cmdHTTPGet("http://" + admin + "/healthz"); err != nil || code != 200 {
			t.Fatalf("/healthz after the restart: %d %v", code, err)
		}
		p.signalStop(t, syscall.SIGINT, c)
		if s := p.stdout.String(); s != "" {
			t.Errorf("the server wrote on stdout: %q", s)
		}
	})

	t.Run("start failures", func(t *testing.T) {
		busy, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer busy.Close()
		hangs := cmdFakeDatabase(t, false)
		hangsUp := cmdFakeDatabase(t, true)
		cases := []struct {
			name  string
			args  []string
			env   map[string]string
			limit time.Duration
		}{
			{"unknown flag", []string{"-bogus"}, nil, 5 * time.Second},
			{"bad variable", nil, map[string]string{"CHAT_MAX_FRAME": "big"}, 5 * time.Second},
			{"unreachable mysql", []string{"-db", "mysql:root:@tcp(127.0.0.1:1)/x"}, nil, 5 * time.Second},
			// A database that accepts and then never answers: the server
			// gives up after its read timeout.
			{"mysql that never answers", []string{"-db", "mysql:root:@tcp(" + hangs + ")/x"}, nil, 20 * time.Second},
			{"mysql that hangs up", []string{"-db", "mysql:root:@tcp(" + hangsUp + ")/x"}, nil, 5 * time.Second},
			{"listen address in use", []string{"-listen", busy.Addr().String(), "-db", sqliteURL(t)}, nil, 5 * time.Second},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				start := time.Now()
				p := cmdStart(t, bin, tc.args, tc.env)
				status := p.wait(t, tc.limit+5*time.Second)
				took := time.Since(start)
				if status != 1 {
					t.Errorf("exit status %d, want 1", status)
				}
				if took > tc.limit {
					t.Errorf("took %v to give up", took)
				}
				cmdOneLine(t, "stderr", p.stderr.String())
				t.Logf("exit 1 in %v: %s", took.Round(time.Millisecond), strings.TrimSpace(p.stderr.String()))
			})
		}
		t.Run("help", func(t *testing.T) {
			p := cmdStart(t, bin, []string{"-h"}, nil)
			if status := p.wait(t, 10*time.Second); status != 0 {
				t.Errorf("-h: exit status %d, want 0", status)
			}
			if !strings.Contains(p.stdout.String(), "-listen") {
				t.Errorf("-h: no usage on stdout: %q", p.stdout.String())
			}
		})
	})
}

// cmdFakeDatabase listens on 127.0.0.1 and accepts connections, then says
// nothing (hangUp false) or closes them at once (hangUp true).
func cmdFakeDatabase(t testing.TB, hangUp bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if hangUp {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// A value that is refused is echoed in the error, but never its password.
func TestParseConfigHidesPasswords(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"-db", "postgres://u:hunter2@db:5432/chat"},
		{"-db", "oracle:u/hunter2@db"},
		{"-db", "mysql:root:@tcp(127.0.0.1:3306)/chat", "-redis", "redis://:hunter2@127.0.0.1:6379?insecure=1"},
		{"-db", "mysql:root:@tcp(127.0.0.1:3306)/chat", "-redis", "redis://u:hunter2@"},
	} {
		_, err := parseConfig(args, cmdEnv(nil), io.Discard)
		if err == nil {
			t.Errorf("%q: accepted", args)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%q: the error shows the password: %v", args, err)
		}
	}
}
