package loadgen

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"chat/internal/wire"
)

// config is the command line.
type config struct {
	addrs       []string    // host:port, or a ws:// or wss:// URL
	tls         *tls.Config // wss's; nil: the system's roots
	scenario    string      // pairs, group, conns or login
	duration    time.Duration
	warmup      time.Duration
	drain       time.Duration
	pairs       int
	window      int
	size        int
	rate        float64
	groups      int
	members     int
	senders     int
	devices     int // sessions of each recipient (pairs) or member who does not send (group)
	conns       int
	concurrency int
	settle      time.Duration
	pids        []int
	prefix      string
	password    string
	ackDelay    time.Duration
	cid         bool
	quiet       bool
}

const (
	// minTextSize holds the text's run, sender, sequence number and send
	// time (see appendText).
	minTextSize = 40
	// maxPrefix leaves room within wire.MaxNameRunes for the role letter
	// and numbers the load generator appends to make user names.
	maxPrefix = 20
	// maxDevices: a user's fan-out table counts its sessions in a byte
	// (user.got); servers allow 8 by default.
	maxDevices = 255
)

// parseConfig parses the command line; for -h it prints the usage on usage
// and returns flag.ErrHelp.
func parseConfig(args []string, usage io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("chat-bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr := fs.String("addr", "127.0.0.1:6000", "server address: host:port (TCP) or the URL of a web port's WebSocket endpoint, ws://host:port/ws or wss://host:port/ws (a URL without a path means /ws); a comma-separated list, of either kind or both, spreads clients over nodes, a pair's (or a group's) members on different ones")
	ca := fs.String("ca", "", "wss: PEM file of the certificates to trust instead of the system's")
	insecure := fs.Bool("insecure", false, "wss: trust any certificate (a test server's self-signed one)")
	fs.StringVar(&cfg.scenario, "scenario", "pairs", "pairs, group, conns or login")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "measured time (conns: how long the connections are held)")
	fs.DurationVar(&cfg.warmup, "warmup", 2*time.Second, "load before measuring starts")
	fs.DurationVar(&cfg.drain, "drain", 15*time.Second, "longest wait for replies and deliveries after sending stops")
	fs.IntVar(&cfg.pairs, "pairs", 50, "pairs: sender/recipient pairs")
	fs.IntVar(&cfg.window, "window", 64, "pairs, group: requests each sender keeps in flight")
	fs.IntVar(&cfg.size, "size", 64, "pairs, group: message text bytes")
	fs.Float64Var(&cfg.rate, "rate", 0, "pairs, group: total messages per second, spread over the senders (0: as fast as the window allows)")
	fs.IntVar(&cfg.groups, "groups", 10, "group: groups")
	fs.IntVar(&cfg.members, "members", 100, "group: members per group")
	fs.IntVar(&cfg.senders, "senders", 1, "group: senders per group")
	fs.IntVar(&cfg.devices, "devices", 1, "pairs, group: sessions each recipient (pairs) or each member but the senders (group) logs in, on devices d1..dN and, with several -addr, on consecutive nodes; at most the server's -max-devices (1: no device, as before v2)")
	fs.IntVar(&cfg.conns, "conns", 1000, "conns: idle logged-in connections")
	fs.IntVar(&cfg.concurrency, "concurrency", 32, "connections set up at once; login: concurrent register/login loops")
	fs.DurationVar(&cfg.settle, "settle", 3*time.Second, "conns: wait after the last login before reading the server's memory")
	pid := fs.String("pid", "", "server process id(s), comma-separated: report their CPU time and RSS")
	fs.StringVar(&cfg.prefix, "prefix", "", "user name prefix (default: random, so runs do not share users)")
	fs.StringVar(&cfg.password, "password", "lg-secret", "password of the load generator's users")
	fs.DurationVar(&cfg.ackDelay, "ack-delay", 100*time.Millisecond, "recipients batch acks for this long, like the client")
	fs.BoolVar(&cfg.cid, "cid", true, "pairs, group: send a cid with every message, as the client does")
	fs.BoolVar(&cfg.quiet, "quiet", false, "no progress lines on stderr")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(usage, "usage: go run -tags bench . [flags]")
			fs.SetOutput(usage)
			fs.PrintDefaults()
		}
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	wss := false
	for _, a := range strings.Split(*addr, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		if strings.Contains(a, "://") {
			u, err := parseWSAddr(a)
			if err != nil {
				return cfg, err
			}
			a = u
			wss = wss || strings.HasPrefix(u, "wss://")
		}
		cfg.addrs = append(cfg.addrs, a)
	}
	switch {
	case (*ca != "" || *insecure) && !wss:
		return cfg, errors.New("-ca and -insecure are for wss:// addresses, and -addr has none")
	case *ca != "" && *insecure:
		return cfg, errors.New("-ca and -insecure: give one")
	case *insecure:
		cfg.tls = &tls.Config{InsecureSkipVerify: true}
	case *ca != "":
		pem, err := os.ReadFile(*ca)
		if err != nil {
			return cfg, fmt.Errorf("-ca: %w", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return cfg, fmt.Errorf("-ca %s: no PEM certificate in it", *ca)
		}
		cfg.tls = &tls.Config{RootCAs: roots}
	}
	if *pid != "" {
		for _, p := range strings.Split(*pid, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(p))
			if err != nil || n <= 0 {
				return cfg, fmt.Errorf("-pid: %q is not a process id", p)
			}
			cfg.pids = append(cfg.pids, n)
		}
	}
	if cfg.prefix == "" {
		var b [3]byte
		rand.Read(b[:])
		cfg.prefix = "lg" + hex.EncodeToString(b[:])
	}
	switch {
	case len(cfg.addrs) == 0:
		return cfg, errors.New("-addr is empty")
	case cfg.scenario != "pairs" && cfg.scenario != "group" && cfg.scenario != "conns" && cfg.scenario != "login":
		return cfg, fmt.Errorf("-scenario %q: want pairs, group, conns or login", cfg.scenario)
	case cfg.duration <= 0 || cfg.warmup < 0 || cfg.drain <= 0:
		return cfg, errors.New("-duration and -drain must be positive, -warmup not negative")
	case cfg.pairs < 1 || cfg.window < 1 || cfg.groups < 1 || cfg.senders < 1 || cfg.devices < 1 || cfg.conns < 1 || cfg.concurrency < 1:
		return cfg, errors.New("-pairs, -window, -groups, -senders, -devices, -conns and -concurrency must be at least 1")
	case cfg.devices > maxDevices:
		return cfg, fmt.Errorf("-devices is at most %d", maxDevices)
	case cfg.members < 2 || cfg.senders > cfg.members:
		return cfg, errors.New("-members must be at least 2 and at least -senders")
	case cfg.size < minTextSize || cfg.size > wire.MaxTextBytes:
		return cfg, fmt.Errorf("-size must be %d to %d bytes (the text carries a sequence number and a send time)", minTextSize, wire.MaxTextBytes)
	case cfg.rate < 0:
		return cfg, errors.New("-rate must not be negative")
	case !utf8.ValidString(cfg.password):
		return cfg, errors.New("-password must be valid UTF-8")
	case len(cfg.prefix) > maxPrefix:
		return cfg, fmt.Errorf("-prefix is at most %d characters", maxPrefix)
	}
	return cfg, nil
}

// addrFor spreads clients over the addresses: with several, a pair's two
// ends (or a group's consecutive members, or a user's consecutive
// sessions) land on different nodes.
func (cfg *config) addrFor(i int) string { return cfg.addrs[i%len(cfg.addrs)] }
