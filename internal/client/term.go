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
		if in.err == nil && in.cmd != nil && in.cmd.secretMissing(in.args) {
			in.err = plainSecretError(in.cmd)
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

// plainSecretError is the error for a line without the password(s) its
// command needs, read without a terminal (which would ask for them).
func plainSecretError(cmd *command) error {
	if cmd.secretAt() == 1 { // /login NAME, /register NAME
		return usagef("without a terminal, give the password as the second word: /%s NAME PASSWORD", cmd.name)
	}
	return usagef("without a terminal, give the password on the line: %s", strings.NewReplacer("[", "", "]", "").Replace(cmd.usage[0].form))
}

// readTerm reads lines with editing and history; passwords left out are
// asked for without echo (askSecrets). A line that the editor cut (keys
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
		ui.first = ""
		if !ok {
			ui.first = j.parts[0] // the line that names where the message goes, for typing notices
			continue
		}
		in := lineInput(whole, cut, tooLong)
		if in.err == nil && in.cmd != nil && (in.cmd.needsPassword() || in.cmd.confirm != "") {
			if !ui.askSecrets(&in) {
				sendInput(inputs, done, input{eof: true})
				return
			}
		}
		if !sendInput(inputs, done, in) {
			return
		}
	}
}

// askSecrets asks for what a command left out: the password of /login and
// /register (not for a /login while logged in, which is refused), the
// passwords of /passwd (the new one twice), the password of
// /delete-account; then the confirmation a command asks for. Commands that
// need a login ask nothing while logged out: the client refuses them. A
// refusal here (new passwords that differ, no confirmation) is in.err.
// It returns false at the end of input.
func (u *termUI) askSecrets(in *input) bool {
	cmd, a := in.cmd, &in.args
	loggedIn := u.loggedIn()
	if cmd.login && !loggedIn || cmd.name == "login" && loggedIn {
		return true
	}
	refuse := func(why string) { in.err = &usageError{cmd: cmd.name, hint: why + "; nothing was sent"} }
	ask := func(prompt string, dst *string) bool {
		s, err := u.readPassword(prompt)
		*dst = s
		return err == nil
	}
	if i := cmd.secretAt(); i >= 0 && a.Password == "" {
		if cmd.args[i] == argPasswords {
			var again string
			if !ask("old password: ", &a.Password) || !ask("new password: ", &a.New) || !ask("new password again: ", &again) {
				return false
			}
			if a.New != again {
				refuse("the new passwords differ")
				return true
			}
		} else if !ask("password: ", &a.Password) {
			return false
		}
	}
	if cmd.confirm != "" {
		answer, err := u.readAnswer(fmt.Sprintf(cmd.confirm, clean(u.userName())))
		if err != nil {
			return false
		}
		if strings.TrimSpace(answer) != "yes" {
			refuse("not confirmed")
		}
	}
	return true
}

// readPassword reads a password without echo after prompt; meanwhile the
// core's prompt changes (a typing status) wait, so the question stays.
func (u *termUI) readPassword(prompt string) (string, error) {
	u.setAsking(true)
	defer u.setAsking(false)
	return u.t.ReadPassword(prompt)
}

// readAnswer reads one line after question, with echo, kept out of the
// line history; meanwhile the core's prompt changes wait.
func (u *termUI) readAnswer(question string) (string, error) {
	u.setAsking(true)
	defer u.setAsking(false)
	u.t.SetPrompt(question)
	u.history.skip = true
	defer func() { u.history.skip = false }()
	return u.t.ReadLine()
}

// setAsking starts or ends a question: its end puts the prompt back as
// the core last set it.
func (u *termUI) setAsking(on bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.asking = on
	if !on {
		u.prompt()
	}
}

// plainUI prints one line per event; only the core goroutine calls it.
type plainUI struct{ w io.Writer }

func (u *plainUI) print(_ outKind, line string) { io.WriteString(u.w, line+"\n") }
func (u *plainUI) setPrompt(string)             {}
func (u *plainUI) setUser(string)               {}
func (u *plainUI) setStatus(string)             {}

// termUI prints above the input line: term.Terminal's Write clears the
// prompt and the typed text, prints, and redraws them intact.
type termUI struct {
	t     *term.Terminal
	color bool

	// Only the input goroutine touches these: the callback that uses them
	// runs inside ReadLine.
	cut     bool         // the editor dropped a key typed on the current line (it was full)
	first   string       // the first line of a message being continued, "" if none
	history *lineHistory // the editor's line history

	// keys carries the line being typed, after each printable key, to
	// the core (typing notices); a send that would block is dropped.
	keys chan string

	mu         sync.Mutex // guards the fields below, set by the core and the input goroutine
	label      string     // the open conversation, shown in the prompt
	status     string     // who is typing, shown before the prompt
	continuing bool       // a message goes on on the next line: the prompt says so
	asking     bool       // a question is asked (readAnswer): the prompt is its own
	user       string     // logged in as; "" when not
}

func newTermUI(stdin io.Reader, stdout io.Writer, color bool) *termUI {
	t := term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{stdin, stdout}, "> ")
	h := &lineHistory{}
	t.History = h
	u := &termUI{t: t, color: color, history: h, keys: make(chan string, 1)}
	// Called for each key that is not an editing key, before the editor
	// adds it to the line, or drops it when the line is full (a printable
	// key: the editor's own test). Not called while a password is read.
	t.AutoCompleteCallback = func(line string, pos int, key rune) (string, int, bool) {
		printable := key >= ' ' && !(key >= 0xd800 && key <= 0xdbff)
		if printable && utf8.RuneCountInString(line) >= termLineMax {
			u.cut = true
		}
		if printable && !u.cut && !u.history.skip { // not an answer to a question
			typed := line[:pos] + string(key) + line[pos:]
			if u.first != "" {
				typed = u.first + "\n" + typed
			}
			select {
			case u.keys <- typed:
			default:
			}
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

// setStatus shows who is typing before the prompt, redrawing the prompt
// and the line being typed at once.
func (u *termUI) setStatus(s string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.status = s
	if !u.asking {
		u.prompt()
		u.t.Write(nil) // redraws the prompt and the typed line, when they are shown
	}
}

// userName is the name logged in as.
func (u *termUI) userName() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.user
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

// prompt sets the terminal's prompt, unless a question is asked; u.mu is
// held.
func (u *termUI) prompt() {
	if u.asking {
		return
	}
	p := "> "
	if u.label != "" {
		p = u.label + "> "
	}
	if u.status != "" {
		p = "[" + u.status + "] " + p
	}
	if u.continuing {
		p = strings.Repeat(" ", utf8.RuneCountInString(p)-2) + "| "
	}
	u.t.SetPrompt(p)
}

// lineHistory is the terminal's line history; it keeps no passwords:
// "/login NAME PW" is remembered as "/login NAME", "/passwd OLD NEW" as
// "/passwd" (and so for every command of the table that takes a
// password: the words before it are kept), however the line is spaced:
// it is split as the parser splits it.
type lineHistory struct {
	entries []string // oldest first
	skip    bool     // an answer is read (readAnswer): not a line to keep
}

const historyLines = 200

func (h *lineHistory) Add(entry string) {
	if h.skip {
		return
	}
	if e := strings.TrimSpace(entry); strings.HasPrefix(e, "/") {
		name, rest := splitWord(e[1:])
		if cmd := bySlash[name]; cmd != nil && cmd.needsPassword() {
			kept := "/" + name
			for i := 0; i < cmd.secretAt(); i++ {
				var word string
				word, rest = splitWord(rest)
				kept += " " + word
			}
			entry = strings.TrimSpace(kept)
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
