package client

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestHistoryKeepsNoPasswords(t *testing.T) {
	h := &lineHistory{}
	h.Add("/login alice s3cret")
	h.Add("/register bob builder")
	h.Add("/msg bob hi")
	h.Add("  /login carol  pass word ") // spaced as the parser takes it
	h.Add("/login\tdave\tpw")
	h.Add("/login")
	h.Add("/passwd old1 new pass")
	h.Add("  /delete-account  my pass")
	h.skip = true // an answer to a question
	h.Add("yes")
	h.skip = false
	want := []string{"/delete-account", "/passwd", "/login", "/login dave", "/login carol", "/msg bob hi", "/register bob", "/login alice"}
	for i, w := range want {
		if got := h.At(i); got != w {
			t.Errorf("At(%d) = %q, want %q", i, got, w)
		}
	}
	for i := 0; i < 2*historyLines; i++ {
		h.Add("x")
	}
	if h.Len() != historyLines {
		t.Errorf("Len = %d", h.Len())
	}
}

// The terminal mode under a real pseudo-terminal: the client runs
// in-process on the slave side against a fake server; the test types on
// the master side and reads what the terminal shows.

// openPTY opens a pseudo-terminal pair, 200 columns wide.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	mfd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil { // unlockpt
		unix.Close(mfd)
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(mfd, unix.TIOCGPTN) // ptsname
	if err != nil {
		unix.Close(mfd)
		t.Fatalf("ptsname: %v", err)
	}
	if err := unix.IoctlSetWinsize(mfd, unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 200}); err != nil {
		unix.Close(mfd)
		t.Fatalf("window size: %v", err)
	}
	path := fmt.Sprintf("/dev/pts/%d", n)
	sfd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(mfd)
		t.Fatalf("open %s: %v", path, err)
	}
	unix.SetNonblock(mfd, true) // so that closing the master ends a blocked Read
	return os.NewFile(uintptr(mfd), "/dev/ptmx"), os.NewFile(uintptr(sfd), path)
}

// screen collects everything the terminal shows.
type screen struct {
	t  *testing.T
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *screen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until want appears at or after offset from, and returns
// the offset just past it.
func (s *screen) waitFor(from int, want string) int {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := s.String()
		if from <= len(out) {
			if i := strings.Index(out[from:], want); i >= 0 {
				return from + i + len(want)
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("terminal never showed %q after offset %d; it shows:\n%q", want, from, out[min(from, len(out)):])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startTerminal runs the client in terminal mode, with colour, under a
// pseudo-terminal against a fake server. typeKeys types on the terminal,
// scr is what it shows, rc gets the exit status.
func startTerminal(t *testing.T) (fs *fakeServer, scr *screen, typeKeys func(string), rc <-chan int) {
	t.Helper()
	fs = newFakeServer(t)
	master, slave := openPTY(t)
	scr = &screen{t: t}
	readDone := make(chan struct{})
	go func() {
		io.Copy(scr, master)
		close(readDone)
	}()
	status := make(chan int, 1)
	cfg := Options{Addr: fs.addr()}.config()
	go func() { status <- run(cfg, slave, slave, io.Discard, true) }()
	t.Cleanup(func() {
		master.Close()
		slave.Close()
		<-readDone
	})
	typeKeys = func(s string) {
		t.Helper()
		if _, err := master.WriteString(s); err != nil {
			t.Fatalf("type %q: %v", s, err)
		}
	}
	return fs, scr, typeKeys, status
}

// The password is not echoed; a message arriving while a line is half
// typed is printed above it (bell, marker, colour) and the typed text is
// redrawn intact; the finished line is sent; the message is acked.
func TestTerminal(t *testing.T) {
	const password = "s3cret password"
	fs, scr, typeKeys, rc := startTerminal(t)

	at := scr.waitFor(0, "/help lists the commands")
	at = scr.waitFor(at, "> ")
	// The password is asked for without echo.
	typeKeys("/login alice\r")
	at = scr.waitFor(at, "password: ")
	typeKeys(password + "\r")
	login := fs.next("login")
	if login["name"] != "alice" || login["password"] != password {
		t.Errorf("login request %v", login)
	}
	fs.reply(login, `"user":{"id":1,"name":"alice","online":true},"friends":[],"groups":[]`)
	at = scr.waitFor(at, "ok login alice")
	if strings.Contains(scr.String(), password) {
		t.Errorf("the password was echoed")
	}
	typeKeys("/open bob\r")
	fs.reply(fs.next("whois"), `"user":{"id":2,"name":"bob","online":true}`)
	at = scr.waitFor(at, "ok open bob")
	at = scr.waitFor(at, "bob> ")

	// Half a line typed, then a message arrives: it is printed above the
	// input line (with a bell, a marker and colour) and the typed text is
	// redrawn intact.
	typeKeys("hello wor")
	at = scr.waitFor(at, "hello wor")
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	fs.send(`{"type":"message","message":{"id":7,"from":2,"from_name":"bob","to":1,"text":"ping from bob","ts":` + now + `}}`)
	msgAt := scr.waitFor(at, "ping from bob")
	shown := scr.String()[at:msgAt]
	for _, mark := range []string{"\a", "» ", "\x1b[32m", "message ", "bob -> you: "} {
		if !strings.Contains(shown, mark) {
			t.Errorf("message line %q lacks %q", shown, mark)
		}
	}
	at = scr.waitFor(msgAt, "bob> hello wor")

	// Finish the line: it goes to bob as one message.
	typeKeys("ld\r")
	chat := fs.next("chat")
	if chat["text"] != "hello world" || chat["to"] != 2.0 || chat["cid"] == "" {
		t.Errorf("chat request %v", chat)
	}
	fs.reply(chat, `"message":{"id":8,"from":1,"from_name":"alice","to":2,"text":"hello world","ts":`+now+`}`)
	at = scr.waitFor(at, "you -> bob: hello world")
	// The message shown is acked.
	if ack := fs.next("ack"); fmt.Sprint(ack["ids"]) != "[7]" {
		t.Errorf("ack %v", ack)
	}

	typeKeys("/quit\r")
	select {
	case status := <-rc:
		if status != 0 {
			t.Errorf("exit status %d", status)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("client did not quit")
	}
}

// Under a real pseudo-terminal: a /login while logged in is refused
// without asking for a password; a line longer than the editor takes is
// refused, not cut; a message typed over two lines (a backslash at the
// end of the first) goes as one text with a newline, the prompt showing
// the continuation; a message over several lines is shown as several,
// the further ones under the first.
func TestTerminalLongAndMultiline(t *testing.T) {
	fs, scr, typeKeys, rc := startTerminal(t)

	at := scr.waitFor(0, "/help lists the commands")
	typeKeys("/login alice s3cret\r")
	fs.reply(fs.next("login"), `"user":{"id":1,"name":"alice","online":true},"friends":[],"groups":[]`)
	at = scr.waitFor(at, "ok login alice")

	// Logged in: /login asks for no password and is refused.
	typeKeys("/login bob\r")
	at = scr.waitFor(at, "error login: you are logged in as alice: /logout first")
	if strings.Contains(scr.String(), "password:") {
		t.Errorf("a password was asked for")
	}

	typeKeys("/open bob\r")
	fs.reply(fs.next("whois"), `"user":{"id":2,"name":"bob","online":true}`)
	at = scr.waitFor(at, "bob> ")

	// 5,000 characters on one line: the editor keeps 4,096; the line is
	// refused, nothing is sent.
	typeKeys(strings.Repeat("x", 5000) + "\r")
	at = scr.waitFor(at, "error msg: too long: the line is longer than the 4096 characters the terminal takes; nothing was sent")

	// Two lines, one message.
	typeKeys("first line\\\r")
	at = scr.waitFor(at, "\n   | ")
	typeKeys("second line\r")
	chat := fs.next("chat") // the first chat request: the long line sent nothing
	if chat["text"] != "first line\nsecond line" {
		t.Errorf("chat text %q", chat["text"])
	}
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	fs.reply(chat, `"message":{"id":8,"from":1,"from_name":"alice","to":2,"text":"first line\nsecond line","ts":`+now+`}`)
	at = scr.waitFor(at, "you -> bob: first line\r\n    | second line\r\n")
	at = scr.waitFor(at, "bob> ")

	// A message over three lines arrives: its further lines under the
	// first, in its colour; its escape sequence escaped.
	fs.send(`{"type":"message","message":{"id":9,"from":2,"from_name":"bob","to":1,"text":"one\ntwo\u001b[2J\n\tthree","ts":` + now + `}}`)
	at = scr.waitFor(at, "bob -> you: one\x1b[0m\r\n  \x1b[32m  | two\\x1b[2J\x1b[0m\r\n  \x1b[32m  | \tthree\x1b[0m\r\n")

	typeKeys("/quit\r")
	select {
	case status := <-rc:
		if status != 1 { // the refused commands
			t.Errorf("exit status %d, want 1", status)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("client did not quit")
	}
}

// Under a real pseudo-terminal, version 2: typing a message to the open
// conversation sends one typing notice (not one a key); bob's notice shows
// before the prompt, the half-typed line redrawn intact, and goes when his
// message arrives; /passwd asks for the passwords without echo, the new
// one twice, and refuses two that differ; /delete-account asks for the
// password and a confirmation, and sends nothing without a "yes".
func TestTerminalV2(t *testing.T) {
	fs, scr, typeKeys, rc := startTerminal(t)
	at := scr.waitFor(0, "/help lists the commands")
	typeKeys("/login alice s3cret\r")
	fs.reply(fs.next("login"), testLogin)
	at = scr.waitFor(at, "ok login alice")
	typeKeys("/open bob\r")
	at = scr.waitFor(at, "bob> ")

	typeKeys("hel")
	checkFields(t, fs.next("typing"), `{"with":2}`)
	typeKeys("lo")
	at = scr.waitFor(at, "hello")
	fs.send(`{"type":"typing","user":{"id":2,"name":"bob"},"with":2}`)
	at = scr.waitFor(at, "[typing: bob] bob> hello")
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	fs.send(`{"type":"message","message":{"id":7,"from":2,"from_name":"bob","to":1,"text":"ping from bob","ts":` + now + `}}`)
	at = scr.waitFor(at, "ping from bob")
	at = scr.waitFor(at, "\x1b[Kbob> hello") // redrawn without the status
	typeKeys(" there\r")
	chat := fs.next("chat")
	if chat["text"] != "hello there" {
		t.Errorf("chat %v", chat)
	}
	for _, r := range fs.kept {
		if r["type"] == "typing" {
			t.Errorf("a second notice within %v: %v", typingEvery, r)
		}
	}
	fs.reply(chat, `"message":{"id":8,"from":1,"from_name":"alice","to":2,"text":"hello there","ts":`+now+`}`)
	at = scr.waitFor(at, "[8] you -> bob: hello there")

	typeKeys("/passwd\r")
	at = scr.waitFor(at, "old password: ")
	typeKeys("old1pw\r")
	at = scr.waitFor(at, "new password: ")
	typeKeys("new2pw\r")
	at = scr.waitFor(at, "new password again: ")
	typeKeys("typo2pw\r")
	at = scr.waitFor(at, "error passwd: the new passwords differ; nothing was sent")
	typeKeys("/passwd\r")
	at = scr.waitFor(at, "old password: ")
	typeKeys("old1pw\r")
	at = scr.waitFor(at, "new password: ")
	typeKeys("new2pw\r")
	at = scr.waitFor(at, "new password again: ")
	typeKeys("new2pw\r")
	passwd := fs.next("change_password")
	checkFields(t, passwd, `{"old":"old1pw","new":"new2pw"}`)
	fs.reply(passwd, "")
	at = scr.waitFor(at, "ok password changed")

	typeKeys("/delete-account\r")
	at = scr.waitFor(at, "password: ")
	typeKeys("new2pw\r")
	at = scr.waitFor(at, "delete the account alice for good (its name is never given out again)? type yes: ")
	typeKeys("no\r")
	at = scr.waitFor(at, "error delete-account: not confirmed; nothing was sent")
	for _, secret := range []string{"old1pw", "new2pw", "typo2pw"} {
		if strings.Contains(scr.String(), secret) {
			t.Errorf("%q was echoed", secret)
		}
	}

	typeKeys("/quit\r")
	select {
	case status := <-rc:
		if status != 1 { // the refused commands
			t.Errorf("exit status %d, want 1", status)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("client did not quit")
	}
	for _, r := range append(fs.kept, drain(fs.reqs)...) {
		if r["type"] == "delete_account" {
			t.Errorf("sent without a confirmation: %v", r)
		}
	}
}

func drain(ch chan map[string]any) []map[string]any {
	var rs []map[string]any
	for len(ch) > 0 {
		rs = append(rs, <-ch)
	}
	return rs
}
