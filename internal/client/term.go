package client

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"unicode/utf8"

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

// readPlain reads commands, one a line (a message perhaps over several,
// see joiner), until the end of input. A line of any length is read; one
// longer than maxInputLine is refused whole, never cut.
func readPlain(r io.Reader, inputs chan<- input, done <-chan struct{}) {
	br := bufio.NewReaderSize(r, 64<<10)
	tooLong := fmt.Sprintf("the line is longer than %d bytes", maxInputLine)
	var j joiner
	for {
		line, cut, err := readLine(br, maxInputLine)
		var whole string
		var ok bool
		if err != nil {
			if !j.pending() {
				break
			}
			whole, cut, ok = j.end() // the last line ended in a backslash
		} else {
			whole, cut, ok = j.add(line, cut)
		}
		if !ok {
			continue
		}
		in := lineInput(whole, cut, tooLong)
		if in.err == nil && in.cmd != nil && in.cmd.needsPassword() && in.args.Password == "" {
			in.err = usagef("without a terminal, give the password as the second word: /%s NAME PASSWORD", in.cmd.name)
		}
		if !sendInput(inputs, done, in) {
			return
		}
		if err != nil {
			break
		}
	}
	sendInput(inputs, done, input{eof: true})
}

// readLine reads one line, without its '\n', keeping at most max bytes of
// it; cut reports that more was read and dropped. A last line without a
// '\n' counts; err is set only when no line is left.
func readLine(br *bufio.Reader, limit int) (line string, cut bool, err error) {
	var buf []byte
	for {
		frag, err := br.ReadSlice('\n')
		if room := limit + 1 - len(buf); len(frag) > room { // +1: the '\n'
			buf, cut = append(buf, frag[:max(room, 0)]...), true
		} else {
			buf = append(buf, frag...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil && len(buf) == 0 && !cut {
			return "", false, err
		}
		buf = bytes.TrimSuffix(buf, []byte("\n"))
		return string(buf[:min(len(buf), limit)]), cut, nil
	}
}

// lineInput is the input a whole line makes: the line parsed, or, when
// it was cut, refused whole, tooLong saying what was too long.
func lineInput(whole string, cut bool, tooLong string) input {
	if cut {
		return tooLongLine(whole, tooLong)
	}
	cmd, a, err := parseLine(whole)
	return input{cmd: cmd, args: a, err: err}
}

// termLineMax is the most characters golang.org/x/term keeps on one input
// line (its maxLineLength); the keys typed past it are dropped.
const termLineMax = 4096

// readTerm reads lines with editing and history; passwords left out of
// /login and /register are asked for without echo (but not for a /login
// while logged in, which is refused). A line that the editor cut (keys
// typed past termLineMax were dropped) is refused whole.
func readTerm(ui *termUI, inputs chan<- input, done <-chan struct{}) {
	t := ui.t
	tooLong := fmt.Sprintf("the line is longer than the %d characters the terminal takes", termLineMax)
	var j joiner
	for {
		ui.cut = false
		line, err := t.ReadLine()
		if err != nil {
			// Ctrl-C or Ctrl-D: leave; a message being continued is dropped.
			sendInput(inputs, done, input{eof: true})
			return
		}
		whole, cut, ok := j.add(line, ui.cut)
		ui.setContinuing(!ok)
		if !ok {
			continue
		}
		in := lineInput(whole, cut, tooLong)
		if cmd := in.cmd; in.err == nil && cmd != nil && cmd.needsPassword() && in.args.Password == "" &&
			!(cmd.name == "login" && ui.loggedIn()) {
			pw, err := t.ReadPassword("password: ")
			if err != nil {
				sendInput(inputs, done, input{eof: true})
				return
			}
			in.args.Password = pw
		}
		if !sendInput(inputs, done, in) {
			return
		}
	}
}

// plainUI prints one line per event; only the core goroutine calls it.
type plainUI struct{ w io.Writer }

func (u *plainUI) print(_ outKind, line string) { io.WriteString(u.w, line+"\n") }
func (u *plainUI) setPrompt(string)             {}
func (u *plainUI) setUser(string)               {}

// termUI prints above the input line: term.Terminal's Write clears the
// prompt and the typed text, prints, and redraws them intact.
type termUI struct {
	t     *term.Terminal
	color bool

	// cut: the editor dropped a key typed on the current line (it was
	// full). Only the input goroutine touches it: the callback that sets
	// it runs inside ReadLine.
	cut bool

	mu         sync.Mutex // guards the fields below, set by the core and the input goroutine
	label      string     // the open conversation, shown in the prompt
	continuing bool       // a message goes on on the next line: the prompt says so
	user       string     // logged in as; "" when not
}

func newTermUI(stdin io.Reader, stdout io.Writer, color bool) *termUI {
	t := term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{stdin, stdout}, "> ")
	t.History = &lineHistory{}
	u := &termUI{t: t, color: color}
	// Called for each key that is not an editing key, before the editor
	// adds it to the line, or drops it when the line is full (a printable
	// key: the editor's own test).
	t.AutoCompleteCallback = func(line string, _ int, key rune) (string, int, bool) {
		if key >= ' ' && !(key >= 0xd800 && key <= 0xdbff) && utf8.RuneCountInString(line) >= termLineMax {
			u.cut = true
		}
		return "", 0, false
	}
	return u
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

// print prints an event: its first line after a two-character gutter (a
// marker for messages), and the further lines of a message (which start
// with contPrefix) under it, each in the event's colour.
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
	var b strings.Builder
	for i, l := range strings.Split(line, "\n") {
		if i > 0 {
			prefix = "  "
		}
		if u.color && col != nil {
			l = string(col) + l + string(e.Reset)
		}
		b.WriteString(prefix + l + "\n")
	}
	u.t.Write([]byte(b.String()))
}

func (u *termUI) setPrompt(label string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.label = label
	u.prompt()
}

func (u *termUI) setUser(name string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.user = name
}

// loggedIn reports whether the core last said that it was logged in.
func (u *termUI) loggedIn() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.user != ""
}

// setContinuing shows whether the next line continues a message: the
// prompt is then a "| " as wide as the prompt ("bob> ", then "   | ").
func (u *termUI) setContinuing(on bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.continuing != on {
		u.continuing = on
		u.prompt()
	}
}

// prompt sets the terminal's prompt; u.mu is held.
func (u *termUI) prompt() {
	p := "> "
	if u.label != "" {
		p = u.label + "> "
	}
	if u.continuing {
		p = strings.Repeat(" ", utf8.RuneCountInString(p)-2) + "| "
	}
	u.t.SetPrompt(p)
}

// lineHistory is the terminal's line history; it keeps no passwords:
// "/login NAME PW" is remembered as "/login NAME" (and so for every
// command of the table that takes a password), however the line is
// spaced: it is split as the parser splits it.
type lineHistory struct {
	entries []string // oldest first
}

const historyLines = 200

func (h *lineHistory) Add(entry string) {
	if e := strings.TrimSpace(entry); strings.HasPrefix(e, "/") {
		// "/NAME WORD PASSWORD": the password follows the first word.
		if name, rest := splitWord(e[1:]); bySlash[name] != nil && bySlash[name].needsPassword() {
			word, _ := splitWord(rest)
			entry = strings.TrimSpace("/" + name + " " + word)
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
