package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Config is everything the server's command line sets.
type Config struct {
	Listen      string
	DB          string
	Redis       string
	RedisPrefix string
	Node        string
	Admin       string
	IdleTimeout time.Duration
	MaxFrame    int
	SendQueue   int
	MaxDevices  int // sessions per user, cluster-wide
	Rate        float64
	BcryptCost  int
	LogLevel    string

	// Transport and abuse limits (docs/protocol.md, "Limits and abuse").
	TLSCert, TLSKey string        // PEM files; both set: the client port speaks TLS only
	MaxConns        int           // connections held at once; past it new ones are closed at once
	MaxConnsPerIP   int           // the same, per client address
	LoginTimeout    time.Duration // a connection not logged in by then is closed
	SendBuffer      byteSize      // bytes queued for one connection before its reading stops
	Pprof           bool          // serve /debug/pprof/ on the admin address
	TrustedProxies  prefixList    // proxies besides loopback: exempt from per-address limits

	// The web port (web.go): the browser client at /, the protocol over
	// WebSocket at /ws.
	Web        string     // HTTP address; empty: no web port
	WebOrigins originList // host patterns of other pages allowed to open /ws
}

func defaultConfig() Config {
	return Config{
		Listen:      ":6000",
		DB:          "sqlite:chat.db",
		IdleTimeout: 90 * time.Second,
		MaxFrame:    64 << 10,
		SendQueue:   1024,
		MaxDevices:  8,
		Rate:        100,
		BcryptCost:  bcrypt.DefaultCost,
		LogLevel:    "info",
		RedisPrefix: "chat",

		MaxConns:      20000,
		MaxConnsPerIP: 256,
		LoginTimeout:  30 * time.Second,
		SendBuffer:    4 << 20,

		Web: ":8080",
	}
}

// errHelp is returned for -h: the caller prints usage and exits 0.
var errHelp = flag.ErrHelp

// parseConfig reads flags, each of which may also come from the environment
// as CHAT_ + the flag's name upper-cased with '-' as '_'. A flag on the command
// line wins over its variable. getenv is os.Getenv outside tests.
func parseConfig(args []string, getenv func(string) string, usage io.Writer) (Config, error) {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("chat-server", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "TCP address for clients")
	fs.StringVar(&cfg.DB, "db", cfg.DB, "store: sqlite:PATH (embedded, single node) or mysql:DSN")
	fs.StringVar(&cfg.Redis, "redis", cfg.Redis, "Redis of a cluster (needs -db mysql:...): host:port, redis://[user:password@]host[:port][/db], or rediss://... for TLS; empty means one node with in-process routing")
	fs.StringVar(&cfg.RedisPrefix, "redis-prefix", cfg.RedisPrefix, "prefix of this cluster's Redis keys and channels (clusters sharing a Redis need different ones)")
	fs.StringVar(&cfg.Node, "node", cfg.Node, "this node's name in the cluster (default: the listen address)")
	fs.StringVar(&cfg.Admin, "admin", cfg.Admin, "HTTP address serving /healthz, /metrics and, with -pprof, the profiler; no authentication: keep it private (empty: off)")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", cfg.IdleTimeout, "close a connection silent for this long")
	fs.IntVar(&cfg.MaxFrame, "max-frame", cfg.MaxFrame, "largest frame in bytes")
	fs.IntVar(&cfg.SendQueue, "send-queue", cfg.SendQueue, "unsent live pushes a connection may hold before it is closed as too slow")
	fs.IntVar(&cfg.MaxDevices, "max-devices", cfg.MaxDevices, "sessions a user may hold at once, on different devices, across the cluster; a login past it gets too_many_sessions")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "request tokens a second per user (on each node), bursts of twice that: a chat costs 1, other requests their cost; 0 is unlimited")
	fs.IntVar(&cfg.BcryptCost, "bcrypt-cost", cfg.BcryptCost, "bcrypt cost of new password hashes (4-31)")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error")
	fs.StringVar(&cfg.TLSCert, "tls-cert", cfg.TLSCert, "PEM certificate (chain) file; with -tls-key the client port speaks TLS only and the web port HTTPS only (reloaded on SIGHUP)")
	fs.StringVar(&cfg.TLSKey, "tls-key", cfg.TLSKey, "PEM private key file for -tls-cert")
	fs.IntVar(&cfg.MaxConns, "max-conns", cfg.MaxConns, "connections held at once, the client and web ports together; past it new ones are closed at once")
	fs.IntVar(&cfg.MaxConnsPerIP, "max-conns-per-ip", cfg.MaxConnsPerIP, "connections held at once from one client address (IPv4, or an IPv6 /64); loopback and -trusted-proxies count only towards -max-conns")
	fs.DurationVar(&cfg.LoginTimeout, "login-timeout", cfg.LoginTimeout, "close a connection not logged in by then (blank lines and pings do not extend it; a TLS handshake, and a web request's headers, must come within it, at most 10s)")
	fs.Var(&cfg.SendBuffer, "send-buffer", "bytes queued for one connection (replies, login backlog and pushes) before the server stops reading it: a number, or with KiB, MiB or GiB")
	fs.Var(&cfg.TrustedProxies, "trusted-proxies", "addresses or CIDR prefixes of proxies in front of this server (nginx on another host), comma-separated: like loopback, exempt from -max-conns-per-ip and the per-address login throttle")
	fs.StringVar(&cfg.Web, "web", cfg.Web, "HTTP address serving the browser client at / and the protocol over WebSocket at /ws (HTTPS and wss with -tls-cert); empty or off: no web port")
	fs.Var(&cfg.WebOrigins, "web-origins", "host patterns (path.Match, e.g. chat.example.com or *.example.com; with a scheme, https://chat.example.com) of other pages' origins allowed to open /ws, comma-separated; * alone is refused; the web port's own origin (the request's Host) and programs sending no Origin are always allowed")
	fs.BoolVar(&cfg.Pprof, "pprof", cfg.Pprof, "serve /debug/pprof/ on the -admin address (CPU and memory profiles; keep that address private)")

	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := "CHAT_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(name); v != "" && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("invalid value %q for %s: %v", v, name, err)
			}
		}
	})
	if envErr != nil {
		return cfg, envErr
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(usage)
			fmt.Fprintln(usage, "usage: chat server [flags]; every flag may also be set as CHAT_<FLAG> in the environment")
			fs.PrintDefaults()
		}
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return cfg, cfg.validate()
}

func (c *Config) validate() error {
	switch {
	case c.IdleTimeout <= 0:
		return errors.New("-idle-timeout must be positive")
	case c.MaxFrame < 256:
		return errors.New("-max-frame must be at least 256")
	case c.SendQueue < 1:
		return errors.New("-send-queue must be at least 1")
	case c.MaxDevices < 1:
		return errors.New("-max-devices must be at least 1")
	case c.Rate < 0:
		return errors.New("-rate must not be negative")
	case c.BcryptCost < bcrypt.MinCost || c.BcryptCost > bcrypt.MaxCost:
		return fmt.Errorf("-bcrypt-cost must be %d-%d", bcrypt.MinCost, bcrypt.MaxCost)
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return errors.New("-tls-cert and -tls-key go together")
	case c.MaxConns < 1:
		return errors.New("-max-conns must be at least 1")
	case c.MaxConnsPerIP < 1:
		return errors.New("-max-conns-per-ip must be at least 1")
	case c.LoginTimeout <= 0:
		return errors.New("-login-timeout must be positive")
	case c.SendBuffer < byteSize(c.MaxFrame)+1:
		return fmt.Errorf("-send-buffer must hold at least one frame (-max-frame %d bytes and its newline)", c.MaxFrame)
	case c.Pprof && c.Admin == "":
		return errors.New("-pprof needs -admin: it is served there")
	}
	if c.Web == "off" {
		// The environment has no empty value: CHAT_WEB= is unset.
		c.Web = ""
	}
	kind, _, err := splitDBURL(c.DB)
	if err != nil {
		return err
	}
	if c.Redis != "" {
		if _, err := parseRedisTarget(c.Redis); err != nil {
			return err
		}
	}
	if c.Redis != "" && kind != "mysql" {
		return errors.New("-redis needs -db mysql:DSN: an embedded SQLite store cannot be shared by several nodes")
	}
	if c.RedisPrefix == "" || strings.ContainsAny(c.RedisPrefix, " \n") {
		return errors.New("-redis-prefix must be a non-empty word")
	}
	if c.Node == "" {
		// The listen address names the node; an address without a host
		// (":6000") gets this machine's name, so that nodes on two hosts
		// listening on the same port are still two nodes.
		c.Node = c.Listen
		if host, port, err := net.SplitHostPort(c.Listen); err == nil && (host == "" || host == "0.0.0.0" || host == "::") {
			if name, err := os.Hostname(); err == nil {
				c.Node = net.JoinHostPort(name, port)
			}
		}
	}
	return nil
}

// splitDBURL splits "sqlite:PATH" or "mysql:DSN".
func splitDBURL(s string) (kind, dsn string, err error) {
	kind, dsn, ok := strings.Cut(s, ":")
	if !ok || dsn == "" || (kind != "sqlite" && kind != "mysql") {
		return "", "", fmt.Errorf("-db must be sqlite:PATH or mysql:DSN, not %q", redactDBURL(s))
	}
	return kind, dsn, nil
}

// byteSize is a size in bytes on the command line: "4194304", "4MiB",
// "512KiB", "1GiB" (binary units; "MB" and the like are refused rather
// than guessed at).
type byteSize int64

var byteUnits = []struct {
	suffix string
	n      int64
}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}

func (b *byteSize) Set(s string) error {
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.n
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		return fmt.Errorf("want a byte count such as 4194304, 4MiB or 512KiB")
	}
	*b = byteSize(n * mult)
	return nil
}

func (b byteSize) String() string {
	for _, u := range byteUnits {
		if b != 0 && int64(b)%u.n == 0 {
			return strconv.FormatInt(int64(b)/u.n, 10) + u.suffix
		}
	}
	return "0"
}

// prefixList is a comma-separated list of IP addresses and CIDR prefixes.
type prefixList []netip.Prefix

func (l *prefixList) Set(s string) error {
	var out prefixList
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return fmt.Errorf("%q is not an IP address or CIDR prefix", f)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		out = append(out, p.Masked())
	}
	*l = out
	return nil
}

func (l prefixList) String() string {
	parts := make([]string, len(l))
	for i, p := range l {
		parts[i] = p.String()
	}
	return strings.Join(parts, ",")
}

// originList is a comma-separated list of origin host patterns, as
// websocket.AcceptOptions.OriginPatterns takes them.
type originList []string

func (l *originList) Set(s string) error {
	var out originList
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		// Checked here: the WebSocket library would only log a bad
		// pattern, at each refused request.
		if _, err := path.Match(f, ""); err != nil || f == "*" {
			return fmt.Errorf("%q is not an origin host pattern (a host, a path.Match pattern such as *.example.com, not * alone)", f)
		}
		out = append(out, f)
	}
	*l = out
	return nil
}

func (l originList) String() string { return strings.Join(l, ",") }
