package client

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"chat/internal/wire"
)

func TestSeen(t *testing.T) {
	var s seenSet
	if !s.add(1) || s.add(1) {
		t.Fatal("add(1) twice")
	}
	for i := int64(2); i <= seenMax+1; i++ {
		s.add(i)
	}
	if len(s.ids) != seenMax {
		t.Errorf("%d ids kept, want %d", len(s.ids), seenMax)
	}
	if !s.add(1) { // forgotten: the oldest go first
		t.Error("id 1 still remembered")
	}
	if s.add(seenMax) {
		t.Error("a recent id forgotten")
	}
}

// fakeServer is a scripted server for one client: it answers pings and
// acks by itself and hands every other request to the test, which answers
// with reply and pushes with send.
type fakeServer struct {
	t    *testing.T
	ln   net.Listener
	reqs chan map[string]any // every request but pings, acks included
	kept []map[string]any    // read by next, not yet matched

	mu sync.Mutex // guards nc and writes to it
	nc net.Conn
}

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fs := &fakeServer{t: t, ln: ln, reqs: make(chan map[string]any, 1000)}
	go fs.serve()
	t.Cleanup(func() {
		ln.Close()
		fs.mu.Lock()
		if fs.nc != nil {
			fs.nc.Close()
		}
		fs.mu.Unlock()
	})
	return fs
}

func (fs *fakeServer) addr() string { return fs.ln.Addr().String() }

func (fs *fakeServer) serve() {
	for {
		nc, err := fs.ln.Accept()
		if err != nil {
			return
		}
		fs.mu.Lock()
		fs.nc = nc
		fs.mu.Unlock()
		br := bufio.NewReader(nc)
		for {
			line, err := br.ReadBytes('\n')
			if err != nil {
				break
			}
			var r map[string]any
			if json.Unmarshal(line, &r) != nil {
				continue
			}
			switch r["type"] {
			case "ping", "ack":
				fs.reply(r, "")
			}
			if r["type"] != "ping" {
				fs.reqs <- r
			}
		}
		nc.Close()
	}
}

// next waits for a request of type typ; requests of other types are kept
// for later calls.
func (fs *fakeServer) next(typ string) map[string]any {
	fs.t.Helper()
	for i, r := range fs.kept {
		if r["type"] == typ {
			fs.kept = append(fs.kept[:i:i], fs.kept[i+1:]...)
			return r
		}
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case r := <-fs.reqs:
			if r["type"] == typ {
				return r
			}
			fs.kept = append(fs.kept, r)
		case <-deadline:
			fs.t.Fatalf("no %s request within 10 s (other requests: %v)", typ, fs.kept)
		}
	}
}

// reply answers r with ok and the JSON fields in body ("" for none).
func (fs *fakeServer) reply(r map[string]any, body string) {
	rid, _ := json.Marshal(r["rid"])
	typ, _ := json.Marshal(r["type"])
	if body != "" {
		body = "," + body
	}
	fs.send(`{"type":` + string(typ) + `,"rid":` + string(rid) + `,"ok":true` + body + `}`)
}

// send writes one frame.
func (fs *fakeServer) send(frame string) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.nc != nil {
		io.WriteString(fs.nc, frame+"\n")
	}
}

// testConfig is a plain-mode configuration with short timings.
func testConfig(addr string) config {
	cfg := Options{Addr: addr, Settle: 50 * time.Millisecond}.config()
	cfg.ackDelay = 10 * time.Millisecond
	cfg.readEvery = 20 * time.Millisecond
	return cfg
}

// A command that needs a login is answered not_logged_in by the client
// itself when it knows it is logged out, with the server's line; while a
// login is on its way, the command goes to the server.
func TestLoginCheckedOnce(t *testing.T) {
	fs := newFakeServer(t)
	var out strings.Builder
	rc := make(chan int, 1)
	in := "/friends\n/open #3\n/login u password1\n/friends\n"
	go func() { rc <- run(testConfig(fs.addr()), strings.NewReader(in), &out, io.Discard, false) }()

	login := fs.next("login")
	if login["name"] != "u" || login["password"] != "password1" {
		t.Errorf("login: %v", login)
	}
	fs.reply(login, `"user":{"id":1,"name":"u","online":true},"friends":[],"groups":[]`)
	fs.reply(fs.next("friends"), `"friends":[{"id":2,"name":"v","online":true}]`)
	select {
	case status := <-rc:
		if status != 1 {
			t.Errorf("exit status %d, want 1", status)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the client did not exit")
	}
	want := strings.Join([]string{
		"error friends: you are not logged in: /login NAME first (not_logged_in)",
		"ok open #3", // /open needs no login: a group id is opened as it is
		"ok login u (id 1): 0 friends, 0 groups",
		"friends: none",
		"groups: none",
		"friends: v (online)",
	}, "\n") + "\n"
	if got := out.String(); got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
	if len(fs.kept) != 0 || len(fs.reqs) != 0 {
		t.Errorf("requests left over: %v, %d more", fs.kept, len(fs.reqs))
	}
}

// runScript runs the client in plain mode on the script in against fs,
// answering logins itself; it returns the exit status and the output.
func runScript(t *testing.T, fs *fakeServer, in string, serve func()) (int, string) {
	t.Helper()
	var out strings.Builder
	rc := make(chan int, 1)
	go func() { rc <- run(testConfig(fs.addr()), strings.NewReader(in), &out, io.Discard, false) }()
	serve()
	select {
	case status := <-rc:
		return status, out.String()
	case <-time.After(10 * time.Second):
		t.Fatal("the client did not exit")
	}
	return 0, ""
}

// While logged in, /login is refused without a request (the server would
// log the session out first, and a wrong password would end it); after a
// /logout, in a script too, it is sent.
func TestLoginWhileLoggedIn(t *testing.T) {
	fs := newFakeServer(t)
	in := "/login u password1\n/login v password2\n/login u password1\n/login 1 x\n/friends\n/logout\n/login v password2\n"
	status, out := runScript(t, fs, in, func() {
		fs.reply(fs.next("login"), `"user":{"id":1,"name":"u","online":true},"friends":[],"groups":[]`)
		fs.reply(fs.next("friends"), `"friends":[]`)
		fs.reply(fs.next("logout"), "")
		login := fs.next("login")
		if login["name"] != "v" || login["password"] != "password2" {
			t.Errorf("second login: %v", login)
		}
		fs.reply(login, `"user":{"id":2,"name":"v","online":true},"friends":[],"groups":[]`)
	})
	if status != 1 {
		t.Errorf("exit status %d, want 1", status)
	}
	want := strings.Join([]string{
		"ok login u (id 1): 0 friends, 0 groups",
		"friends: none",
		"groups: none",
		"error login: you are logged in as u: /logout first",
		"error login: you are already logged in as u",
		"error login: you are already logged in as u",
		"friends: none",
		"ok logout",
		"ok login v (id 2): 0 friends, 0 groups",
		"friends: none",
		"groups: none",
	}, "\n") + "\n"
	if out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	if len(fs.kept) != 0 || len(fs.reqs) != 0 {
		t.Errorf("requests left over: %v, %d more", fs.kept, len(fs.reqs))
	}
}

// A text longer than the protocol's limit is refused before anything is
// sent (no whois either), in the command's error format; one at the limit
// goes whole.
func TestTextTooLong(t *testing.T) {
	fs := newFakeServer(t)
	full := strings.Repeat("é", wire.MaxTextBytes/2) // 4096 bytes
	in := strings.Join([]string{
		"/login u password1",
		"/msg bob " + strings.Repeat("x", 10000),
		"/g 3 " + full + "x",
		"/open #3",
		full + `\`, // over two lines: 4096 bytes, a newline, a y
		"y",
		"/msg bob " + string([]byte{0xff}) + full[2:], // 4094 bytes and 1 not UTF-8, sent as 3
		"/g 3 " + full,
	}, "\n") + "\n"
	status, out := runScript(t, fs, in, func() {
		fs.reply(fs.next("login"), `"user":{"id":1,"name":"u","online":true},"friends":[],"groups":[]`)
		chat := fs.next("group_chat")
		if chat["text"] != full || chat["group"] != 3.0 {
			t.Errorf("group_chat: %d bytes to %v", len(chat["text"].(string)), chat["group"])
		}
		fs.reply(chat, `"message":{"id":5,"from":1,"from_name":"u","group":3,"text":"ok","ts":1}`)
	})
	if status != 1 {
		t.Errorf("exit status %d, want 1", status)
	}
	for _, line := range []string{
		"error msg: too long: messages are at most 4096 bytes, this one is 10000; nothing was sent",
		"error g: too long: messages are at most 4096 bytes, this one is 4097; nothing was sent",
		"ok open #3",
		"error msg: too long: messages are at most 4096 bytes, this one is 4098; nothing was sent",
		"error msg: too long: messages are at most 4096 bytes, this one is 4097; nothing was sent",
		"sent 1970-01-01 ",
	} {
		if !strings.Contains(out, "\n"+line) {
			t.Errorf("no line %q in:\n%s", line, out)
		}
	}
	if len(fs.kept) != 0 || len(fs.reqs) != 0 {
		t.Errorf("requests sent: %v, %d more", fs.kept, len(fs.reqs))
	}
}
