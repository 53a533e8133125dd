package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/term"
)

// The client's entry point and its two user interfaces: a terminal (raw
// mode, line editing and history by golang.org/x/term, output printed above
// the input line) and plain lines (standard input not a terminal).

const clDefaultAddr = "127.0.0.1:6000"

const clUsageText = `usage: chat-client [HOST:PORT | HOST PORT]   (default ` + clDefaultAddr + `)
On a terminal: an interactive prompt; /help lists the commands.
Otherwise: one command a line on standard input, one line a reply or push on
standard output; the exit status is 1 if a command failed (see docs/client.md).`

var errClHelp = errors.New("help requested")

// clParseArgs turns the command line into an address.
func clParseArgs(args []string) (string, error) {
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			return "", errClHelp
		}
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			return "", fmt.Errorf("unknown flag %s", a)
		}
	}
	switch len(args) {
	case 0:
		return clDefaultAddr, nil
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

// runClient is the client's main: arguments in, exit status out.
func runClient(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	addr, err := clParseArgs(args)
	if err == errClHelp {
		fmt.Fprintln(stdout, clUsageText)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "chat: %v\n%s\n", err, clUsageText)
		return 2
	}
	return runClientOpts(defaultClOptions(addr), stdin, stdout, stderr, os.Getenv("NO_COLOR") == "")
}

// clTerminal returns the file descriptors of stdin and stdout when both
// are terminals.
func clTerminal(stdin io.Reader, stdout io.Writer) (in, out int, ok bool) {
	fi, ok1 := stdin.(*os.File)
	fo, ok2 := stdout.(*os.File)
	if !ok1 || !ok2 || !term.IsTerminal(int(fi.Fd())) || !term.IsTerminal(int(fo.Fd())) {
		return 0, 0, false
	}
	return int(fi.Fd()), int(fo.Fd()), true
}

// runClientOpts runs the client with opt; colour is allowed when the
// output is a terminal and NO_COLOR is not set.
func runClientOpts(opt clOptions, stdin io.Reader, stdout, stderr io.Writer, colorOK bool) int {
	inFD, outFD, isTerm := clTerminal(stdin, stdout)
	opt.plain = !isTerm
	var ui clUI
	var tui *clTermUI
	if isTerm {
		tui = &clTermUI{t: term.NewTerminal(struct {
			io.Reader
			io.Writer
		}{stdin, stdout}, "> "), color: colorOK}
		tui.t.History = &clHistory{}
		ui = tui
	} else {
		ui = &clPlainUI{w: stdout}
	}
	c := newClCore(opt, ui)
	if err := c.connect(); err != nil {
		fmt.Fprintf(stderr, "chat: cannot connect to %s: %s\n", opt.addr, clDialErrText(err))
		return 1
	}
	inputs := make(chan clInput)
	if isTerm {
		old, err := term.MakeRaw(inFD)
		if err != nil {
			fmt.Fprintf(stderr, "chat: terminal: %v\n", err)
			return 1
		}
		defer term.Restore(inFD, old)
		if w, h, err := term.GetSize(outFD); err == nil {
			tui.t.SetSize(w, h)
		}
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, syscall.SIGWINCH)
		defer signal.Stop(winch)
		go func() {
			for {
				select {
				case <-winch:
					if w, h, err := term.GetSize(outFD); err == nil {
						tui.t.SetSize(w, h)
					}
				case <-c.done:
					return
				}
			}
		}()
		ui.print(clOutInfo, "connected to "+opt.addr+"; /help lists the commands, /quit or Ctrl-D leaves")
		go clReadTerm(tui.t, inputs, c.done)
	} else {
		go clReadPlain(stdin, inputs, c.done)
	}
	return c.loop(inputs)
}

// clDialErrText is the cause of a failed dial, without Go's prefixes.
func clDialErrText(err error) string {
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

// clSend hands one input to the core unless it has finished.
func clSend(inputs chan<- clInput, done <-chan struct{}, in clInput) bool {
	select {
	case inputs <- in:
		return true
	case <-done:
		return false
	}
}

// clReadPlain reads commands, one a line, until the end of input.
func clReadPlain(r io.Reader, inputs chan<- clInput, done <-chan struct{}) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		cmd, err := clParseLine(sc.Text())
		if err == nil && (cmd.Kind == clCmdLogin || cmd.Kind == clCmdRegister) && cmd.Password == "" {
			err = clUsage("without a terminal, give the password as the second word: /%s NAME PASSWORD", cmd.Kind)
		}
		if !clSend(inputs, done, clInput{cmd: cmd, err: err}) {
			return
		}
	}
	clSend(inputs, done, clInput{eof: true})
}

// clReadTerm reads lines with editing and history; passwords left out of
// /login and /register are asked for without echo.
func clReadTerm(t *term.Terminal, inputs chan<- clInput, done <-chan struct{}) {
	for {
		line, err := t.ReadLine()
		if err != nil {
			clSend(inputs, done, clInput{eof: true})
			return
		}
		cmd, perr := clParseLine(line)
		if perr == nil && (cmd.Kind == clCmdLogin || cmd.Kind == clCmdRegister) && cmd.Password == "" {
			pw, err := t.ReadPassword("password: ")
			if err != nil {
				clSend(inputs, done, clInput{eof: true})
				return
			}
			cmd.Password = pw
		}
		if !clSend(inputs, done, clInput{cmd: cmd, err: perr}) {
			return
		}
	}
}

// clPlainUI prints one line per event; only the core goroutine calls it.
type clPlainUI struct{ w io.Writer }

func (u *clPlainUI) print(_ clOutKind, line string) { io.WriteString(u.w, line+"\n") }
func (u *clPlainUI) setPrompt(string)               {}

// clTermUI prints above the input line: term.Terminal's Write clears the
// prompt and the typed text, prints, and redraws them intact.
type clTermUI struct {
	t     *term.Terminal
	color bool
}

func (u *clTermUI) print(kind clOutKind, line string) {
	e := u.t.Escape
	var col []byte
	prefix := "  "
	switch kind {
	case clOutNew:
		prefix = "\a» " // a bell and a marker: a new message
		col = e.Green
	case clOutAway:
		prefix = "« "
		col = e.Yellow
	case clOutError:
		col = e.Red
	case clOutNotice:
		col = e.Cyan
	}
	if u.color && col != nil {
		line = string(col) + line + string(e.Reset)
	}
	u.t.Write([]byte(prefix + line + "\n"))
}

func (u *clTermUI) setPrompt(label string) {
	if label == "" {
		u.t.SetPrompt("> ")
		return
	}
	u.t.SetPrompt(label + "> ")
}

// clHistory is the line history; it keeps no passwords: "/login NAME PW"
// is remembered as "/login NAME".
type clHistory struct {
	entries []string // oldest first
}

const clHistoryLines = 200

func (h *clHistory) Add(entry string) {
	for _, p := range []string{"/login ", "/register "} {
		if strings.HasPrefix(entry, p) {
			name, _ := clSplitWord(entry[len(p):])
			entry = p + name
		}
	}
	if len(h.entries) == clHistoryLines {
		copy(h.entries, h.entries[1:])
		h.entries = h.entries[:clHistoryLines-1]
	}
	h.entries = append(h.entries, entry)
}

func (h *clHistory) Len() int { return len(h.entries) }

func (h *clHistory) At(i int) string { return h.entries[len(h.entries)-1-i] }
