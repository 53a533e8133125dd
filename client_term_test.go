package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The terminal mode under a real pseudo-terminal: the client runs
// in-process on the slave side; the test types on the master side and reads
// what the terminal shows.

// clOpenPTY opens a pseudo-terminal pair, 200 columns wide.
func clOpenPTY(t *testing.T) (master, slave *os.File) {
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

// clScreen collects everything the terminal shows.
type clScreen struct {
	t   *testing.T
	buf syncBuffer
}

// waitFor waits until s appears at or after offset from, and returns the
// offset just past it.
func (s *clScreen) waitFor(from int, want string) int {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := s.buf.String()
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

func TestClientTerminal(t *testing.T) {
	srv := startServer(t, sqliteURL(t))
	bob := newUser(t, srv.addr, "bob")
	bobName := bob.must("whois", map[string]any{"id": bob.user}).obj("user").str("name")
	alice := newUser(t, srv.addr, "alice")
	aliceName := alice.must("whois", map[string]any{"id": alice.user}).obj("user").str("name")
	alice.must("logout", nil)

	master, slave := clOpenPTY(t)
	screen := &clScreen{t: t}
	readDone := make(chan struct{})
	go func() {
		io.Copy(&screen.buf, master)
		close(readDone)
	}()
	rc := make(chan int, 1)
	go func() { rc <- runClientOpts(clTestOptions(srv.addr), slave, slave, io.Discard, true) }()
	defer func() {
		master.Close()
		slave.Close()
		<-readDone
	}()
	typeKeys := func(s string) {
		t.Helper()
		if _, err := master.WriteString(s); err != nil {
			t.Fatalf("type %q: %v", s, err)
		}
	}

	at := screen.waitFor(0, "/help lists the commands")
	at = screen.waitFor(at, "> ")
	// The password is asked for without echo.
	typeKeys("/login " + aliceName + "\r")
	at = screen.waitFor(at, "password: ")
	typeKeys(testPassword + "\r")
	at = screen.waitFor(at, "ok login "+aliceName)
	if strings.Contains(screen.buf.String(), testPassword) {
		t.Errorf("the password was echoed")
	}
	typeKeys("/open " + bobName + "\r")
	at = screen.waitFor(at, "ok open "+bobName)
	at = screen.waitFor(at, bobName+"> ")

	// Half a line typed, then a message arrives: it is printed above the
	// input line (with a bell, a marker and colour) and the typed text is
	// redrawn intact.
	typeKeys("hello wor")
	at = screen.waitFor(at, "hello wor")
	bob.must("chat", map[string]any{"to": alice.user, "text": "ping from bob"})
	msgAt := screen.waitFor(at, "ping from bob")
	shown := screen.buf.String()[at:msgAt]
	for _, mark := range []string{"\a", "» ", "\x1b[32m", "message ", bobName + " -> you: "} {
		if !strings.Contains(shown, mark) {
			t.Errorf("message line %q lacks %q", shown, mark)
		}
	}
	at = screen.waitFor(msgAt, bobName+"> hello wor")

	// Finish the line: it goes to bob as one message.
	typeKeys("ld\r")
	if got := bob.messages(1, 5*time.Second)[0].str("text"); got != "hello world" {
		t.Errorf("bob got %q, want %q", got, "hello world")
	}
	at = screen.waitFor(at, "you -> "+bobName+": hello world")

	typeKeys("/quit\r")
	select {
	case status := <-rc:
		if status != 0 {
			t.Errorf("exit status %d", status)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("client did not quit")
	}
	// The message was acked: it is not pushed again at the next login.
	c := dial(t, srv.addr)
	c.must("login", map[string]any{"id": alice.user, "password": testPassword})
	c.quiet("message", 300*time.Millisecond)
}
