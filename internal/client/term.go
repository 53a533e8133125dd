package client

import (
	"bufio"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/term"
)

// The two user interfaces: a terminal (raw mode, line editing and history
// by golang.org/x/term, output printed above the input line) and plain
// lines (standard input not a terminal); and the input readers, which
// parse lines and hand them to the core.

// sendInput hands one input to the core unless it has finished.
func sendInput(inputs chan<- input, done <-chan struct{}, in input) bool {
	select {
	case inputs <- in:
		return true
	case <-done:
		return false
	}
}

// readPlain reads commands, one a line, until the end of input.
func readPlain(r io.Reader, inputs chan<- input, done <-chan struct{}) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		cmd, a, err := parseLine(sc.Text())
		if err == nil && cmd != nil && cmd.needsPassword() && a.Password == "" {
			err = usagef("without a terminal, give the password as the second word: /%s NAME PASSWORD", cmd.name)
		}
		if !sendInput(inputs, done, input{cmd: cmd, args: a, err: err}) {
			return
		}
	}
	sendInput(inputs, done, input{eof: true})
}

// readTerm reads lines with editing and history; passwords left out of
// /login and /register are asked for without echo.
func readTerm(t *term.Terminal, inputs chan<- input, done <-chan struct{}) {
	for {
		line, err := t.ReadLine()
		if err != nil {
			sendInput(inputs, done, input{eof: true})
			return
		}
		cmd, a, perr := parseLine(line)
		if perr == nil && cmd != nil && cmd.needsPassword() && a.Password == "" {
			pw, err := t.ReadPassword("password: ")
			if err != nil {
				sendInput(inputs, done, input{eof: true})
				return
			}
			a.Password = pw
		}
		if !sendInput(inputs, done, input{cmd: cmd, args: a, err: perr}) {
			return
		}
	}
}

// plainUI prints one line per event; only the core goroutine calls it.
type plainUI struct{ w io.Writer }

func (u *plainUI) print(_ outKind, line string) { io.WriteString(u.w, line+"\n") }
func (u *plainUI) setPrompt(string)             {}

// termUI prints above the input line: term.Terminal's Write clears the
// prompt and the typed text, prints, and redraws them intact.
type termUI struct {
	t     *term.Terminal
	color bool
}

func newTermUI(stdin io.Reader, stdout io.Writer, color bool) *termUI {
	t := term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{stdin, stdout}, "> ")
	t.History = &lineHistory{}
	return &termUI{t: t, color: color}
}

// start puts the terminal in raw mode and follows its size until done is
// closed; restore puts the terminal back.
func (u *termUI) start(inFD, outFD int, done <-chan struct{}) (restore func(), err error) {
	old, err := term.MakeRaw(inFD)
	if err != nil {
		return nil, err
	}
	if w, h, err := term.GetSize(outFD); err == nil {
		u.t.SetSize(w, h)
	}
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	go func() {
		for {
			select {
			case <-winch:
				if w, h, err := term.GetSize(outFD); err == nil {
					u.t.SetSize(w, h)
				}
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(winch)
		term.Restore(inFD, old)
	}, nil
}

func (u *termUI) print(kind outKind, line string) {
	e := u.t.Escape
	var col []byte
	prefix := "  "
	switch kind {
	case outNew:
		prefix = "\a» " // a bell and a marker: a new message
		col = e.Green
	case outAway:
		prefix = "« "
		col = e.Yellow
	case outError:
		col = e.Red
	case outNotice:
		col = e.Cyan
	}
	if u.color && col != nil {
		line = string(col) + line + string(e.Reset)
	}
	u.t.Write([]byte(prefix + line + "\n"))
}

func (u *termUI) setPrompt(label string) {
	if label == "" {
		u.t.SetPrompt("> ")
		return
	}
	u.t.SetPrompt(label + "> ")
}

// lineHistory is the terminal's line history; it keeps no passwords:
// "/login NAME PW" is remembered as "/login NAME" (and so for every
// command of the table that takes a password).
type lineHistory struct {
	entries []string // oldest first
}

const historyLines = 200

func (h *lineHistory) Add(entry string) {
	for name, cmd := range bySlash {
		p := "/" + name + " "
		if cmd.needsPassword() && strings.HasPrefix(entry, p) {
			word, _ := splitWord(entry[len(p):]) // the password follows the first word
			entry = p + word
		}
	}
	if len(h.entries) == historyLines {
		copy(h.entries, h.entries[1:])
		h.entries = h.entries[:historyLines-1]
	}
	h.entries = append(h.entries, entry)
}

func (h *lineHistory) Len() int { return len(h.entries) }

func (h *lineHistory) At(i int) string { return h.entries[len(h.entries)-1-i] }
