// Package client is the chat's command-line client (docs/client.md): an
// interactive prompt on a terminal, or one command a line and one output
// line per event for scripts, over the line protocol of docs/protocol.md.
// Underneath it pings, acks, drops duplicates, reconnects, logs in again
// and resends its unconfirmed messages with the same cid.
//
// Its exported surface is small: Run is the main of the root package's
// client build; Options and RunWith let the root's integration tests run
// the client in-process against a real server, with shorter timings.
package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/term"
)

// The client's goroutines:
//
//   - the core (core.loop, on Run's goroutine) owns every piece of state:
//     the session, the requests in flight, the queue, the connection
//     pointer. Nothing else touches them, so there are no locks.
//   - per connection, a reader (decodes frames, hands them to the core) and
//     a writer (drains a buffered channel, flushes when it runs empty).
//   - the input goroutine (term.go) reads and parses lines and hands
//     commands to the core.
//   - a dialer goroutine per reconnect attempt.
//
// The core never blocks on the network: writes go to the writer's channel,
// and a full channel (which the in-flight bound makes impossible short of a
// stuck server) closes the connection.

// Options are the settings a caller may choose; a zero field takes its
// default. Tests shorten the timings.
type Options struct {
	Addr       string        // the server, HOST:PORT (default 127.0.0.1:6000)
	Settle     time.Duration // plain mode, at the end of input: wait for this much quiet, so that the pushes after a login are printed (default 0.3 s)
	BackoffMin time.Duration // the first reconnect delay; it doubles up to BackoffMax (default 0.2 s)
	BackoffMax time.Duration // the longest reconnect delay (default 10 s)
	GiveUp     time.Duration // plain mode, input ended: stop reconnecting after this long (default 2 min)

	// TLS makes every connection, reconnects included, a TLS one (TLS 1.2
	// at least), the server's certificate checked against the system's
	// roots for the host of Addr. CA names a PEM file of more roots to
	// trust (a private CA, a self-signed certificate); it implies TLS.
	TLS bool
	CA  string

	// Device names this client's device in every login (1-64 bytes): a
	// user has one session a device, and a login on the same device takes
	// it over. Empty sends none (the protocol's device ""). Run sets it
	// from -device, by default the host name.
	Device string
}

const defaultAddr = "127.0.0.1:6000"

// config is every setting of one run: the Options with their defaults,
// the timings only this package's tests change, and the mode.
type config struct {
	addr        string
	plain       bool           // no terminal: no prompt, no colour, exit at end of input
	loc         *time.Location // for times; nil: local
	pingEvery   time.Duration  // ping when nothing was sent for this long
	readIdle    time.Duration  // a connection silent this long is dead
	ackDelay    time.Duration  // batch acks for this long
	settle      time.Duration  // see Options
	backoffMin  time.Duration  // see Options
	backoffMax  time.Duration  // see Options
	giveUp      time.Duration  // see Options
	dialTimeout time.Duration  // the TCP connect, and the TLS handshake after it
	tls         *tls.Config    // nil: plain TCP
	device      string         // see Options
	readEvery   time.Duration  // read marks: at most one a conversation this often (read.go)
}

func (o Options) config() config {
	cfg := config{
		addr:        o.Addr,
		pingEvery:   25 * time.Second,
		readIdle:    70 * time.Second,
		ackDelay:    100 * time.Millisecond,
		settle:      300 * time.Millisecond,
		backoffMin:  200 * time.Millisecond,
		backoffMax:  10 * time.Second,
		giveUp:      2 * time.Minute,
		dialTimeout: 5 * time.Second,
		device:      o.Device,
		readEvery:   time.Second,
	}
	if cfg.addr == "" {
		cfg.addr = defaultAddr
	}
	for _, set := range []struct {
		dst *time.Duration
		src time.Duration
	}{
		{&cfg.settle, o.Settle}, {&cfg.backoffMin, o.BackoffMin}, {&cfg.backoffMax, o.BackoffMax}, {&cfg.giveUp, o.GiveUp},
	} {
		if set.src > 0 {
			*set.dst = set.src
		}
	}
	return cfg
}

// tlsConfig is the TLS configuration the options ask for, nil for plain
// TCP; addr is the server's (its host is the name checked). Its errors are
// about the -ca file.
func (o Options) tlsConfig(addr string) (*tls.Config, error) {
	if !o.TLS && o.CA == "" {
		return nil, nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	if o.CA != "" {
		pem, err := os.ReadFile(o.CA)
		if err != nil {
			return nil, fmt.Errorf("-ca: %w", err)
		}
		roots, err := x509.SystemCertPool()
		if err != nil {
			roots = x509.NewCertPool()
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-ca %s: no PEM certificate in it", o.CA)
		}
		conf.RootCAs = roots
	}
	return conf, nil
}

const usageText = `usage: chat-client [-tls] [-ca FILE] [-device NAME] [HOST:PORT | HOST PORT]   (default ` + defaultAddr + `)
  -tls          speak TLS; the server's certificate must be valid for HOST
  -ca FILE      also trust the PEM root certificate(s) in FILE; implies -tls
  -device NAME  this device's name (1-64 bytes; default: the host name): you
                have one session a device, and a login on the same device
                takes it over; -device "" sends none
On a terminal: an interactive prompt; /help lists the commands.
Otherwise: one command a line on standard input, one line a reply or push on
standard output; the exit status is 1 if a command failed (see docs/client.md).`

var errHelp = errors.New("help requested")

// parseArgs turns the command line, flags first, into Options;
// hostname is the default device name.
func parseArgs(args []string, hostname string) (Options, error) {
	var opt Options
	fs := flag.NewFlagSet("chat-client", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&opt.TLS, "tls", false, "")
	fs.StringVar(&opt.CA, "ca", "", "")
	fs.StringVar(&opt.Device, "device", deviceName(hostname), "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return opt, errHelp
		}
		return opt, err
	}
	if opt.CA != "" {
		opt.TLS = true
	}
	if len(opt.Device) > maxDeviceBytes {
		return opt, fmt.Errorf("-device: at most %d bytes", maxDeviceBytes)
	}
	addr, err := parseAddr(fs.Args())
	opt.Addr = addr
	return opt, err
}

// maxDeviceBytes is the protocol's limit on a device name.
const maxDeviceBytes = 64

// deviceName is the default device name: the host name, cut to the
// protocol's limit on a character boundary.
func deviceName(host string) string {
	host = strings.ToValidUTF8(host, "")
	for len(host) > maxDeviceBytes {
		_, size := utf8.DecodeLastRuneInString(host)
		host = host[:len(host)-size]
	}
	return host
}

// parseAddr turns the arguments after the flags into an address.
func parseAddr(args []string) (string, error) {
	for _, a := range args {
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			return "", fmt.Errorf("%s after the address: flags go first", a)
		}
	}
	switch len(args) {
	case 0:
		return defaultAddr, nil
	case 1:
		host, port, err := net.SplitHostPort(args[0])
		if err != nil {
			return "", fmt.Errorf("%q is not HOST:PORT", args[0])
		}
		if host == "" {
			host = "127.0.0.1"
		}
		return net.JoinHostPort(host, port), nil
	case 2:
		if args[0] == "" || args[1] == "" || strings.Contains(args[1], ":") {
			return "", fmt.Errorf("%q %q is not HOST PORT", args[0], args[1])
		}
		return net.JoinHostPort(args[0], args[1]), nil
	}
	return "", errors.New("too many arguments")
}

// Run is the client's main: the command-line arguments ([-tls] [-ca FILE]
// [-device NAME] [HOST:PORT | HOST PORT]) in, the exit status out: 0 when every command
// succeeded, 1 when one failed or the server could not be reached or
// trusted, or the -ca file is bad (one line on stderr), 2 for bad
// arguments. Colour is used on a terminal unless NO_COLOR is set.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	host, _ := os.Hostname()
	opt, err := parseArgs(args, host)
	if err == errHelp {
		fmt.Fprintln(stdout, usageText)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "chat: %v\n%s\n", err, usageText)
		return 2
	}
	return RunWith(opt, stdin, stdout, stderr, os.Getenv("NO_COLOR") == "")
}

// RunWith runs the client as Run does, with opt instead of arguments. The
// terminal interface is used when stdin and stdout are both terminals
// (*os.File), plain lines otherwise; color allows colour on a terminal. It
// returns the exit status.
func RunWith(opt Options, stdin io.Reader, stdout, stderr io.Writer, color bool) int {
	cfg := opt.config()
	var err error
	if cfg.tls, err = opt.tlsConfig(cfg.addr); err != nil {
		fmt.Fprintf(stderr, "chat: %s\n", err)
		return 1
	}
	return run(cfg, stdin, stdout, stderr, color)
}

func run(cfg config, stdin io.Reader, stdout, stderr io.Writer, color bool) int {
	inFD, outFD, isTerm := terminalFDs(stdin, stdout)
	cfg.plain = !isTerm
	var out output
	var tui *termUI
	if isTerm {
		tui = newTermUI(stdin, stdout, color)
		out = tui
	} else {
		out = &plainUI{w: stdout}
	}
	c := newCore(cfg, out)
	if tui != nil {
		c.keys = tui.keys
	}
	if err := c.connect(); err != nil {
		fmt.Fprintf(stderr, "chat: cannot connect to %s: %s\n", cfg.addr, dialErrText(err))
		return 1
	}
	inputs := make(chan input)
	if isTerm {
		restore, err := tui.start(inFD, outFD, c.done)
		if err != nil {
			fmt.Fprintf(stderr, "chat: terminal: %v\n", err)
			return 1
		}
		defer restore()
		out.print(outInfo, "connected to "+cfg.addr+"; /help lists the commands, /quit or Ctrl-D leaves")
		go readTerm(tui, inputs, c.done)
	} else {
		go readPlain(stdin, inputs, c.done)
	}
	return c.loop(inputs)
}

// terminalFDs returns the file descriptors of stdin and stdout when both
// are terminals.
func terminalFDs(stdin io.Reader, stdout io.Writer) (in, out int, ok bool) {
	fi, ok1 := stdin.(*os.File)
	fo, ok2 := stdout.(*os.File)
	if !ok1 || !ok2 || !term.IsTerminal(int(fi.Fd())) || !term.IsTerminal(int(fo.Fd())) {
		return 0, 0, false
	}
	return int(fi.Fd()), int(fo.Fd()), true
}

// dialErrText is the cause of a failed dial, without Go's prefixes.
func dialErrText(err error) string {
	var he *handshakeError
	if errors.As(err, &he) {
		return he.Error()
	}
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Err.Error()
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err.Error()
	}
	return err.Error()
}
