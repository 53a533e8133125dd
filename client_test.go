package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"chat/internal/client"
)

// End-to-end tests of the client (chat/internal/client) in plain mode:
// client.RunWith in-process, its standard input a pipe, its output
// lines collected, against a real server. The client's unit tests, and its
// terminal test against a fake server, are in internal/client.

// clProc is a client run by a test.
type clProc struct {
	t      *testing.T
	in     *io.PipeWriter
	out    *clLines
	stderr *syncBuffer
	rc     chan int
	kept   []string // lines read but not yet matched
	exited bool
	status int
}

// clLines collects output lines on a channel.
type clLines struct {
	mu   sync.Mutex
	part []byte
	ch   chan string
}

func (w *clLines) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.part = append(w.part, b...)
	for {
		i := bytes.IndexByte(w.part, '\n')
		if i < 0 {
			return len(b), nil
		}
		w.ch <- string(w.part[:i])
		w.part = w.part[i+1:]
	}
}

func clTestOptions(addr string) client.Options {
	return client.Options{
		Addr:       addr,
		BackoffMin: 50 * time.Millisecond,
		BackoffMax: 400 * time.Millisecond,
		Settle:     200 * time.Millisecond,
		GiveUp:     20 * time.Second,
	}
}

func clStart(t *testing.T, addr string, edit ...func(*client.Options)) *clProc {
	t.Helper()
	opt := clTestOptions(addr)
	for _, e := range edit {
		e(&opt)
	}
	pr, pw := io.Pipe()
	p := &clProc{t: t, in: pw, out: &clLines{ch: make(chan string, 100000)}, stderr: &syncBuffer{}, rc: make(chan int, 1)}
	go func() {
		rc := client.RunWith(opt, pr, p.out, p.stderr, true)
		pr.CloseWithError(io.ErrClosedPipe) // unblock a test still writing
		p.rc <- rc
	}()
	t.Cleanup(func() {
		if !p.exited {
			pw.Close()
			select {
			case <-p.rc:
			case <-time.After(20 * time.Second):
				t.Errorf("client still running 20 s after its input closed")
			}
		}
	})
	return p
}

// send types lines.
func (p *clProc) send(lines ...string) {
	p.t.Helper()
	for _, l := range lines {
		if _, err := io.WriteString(p.in, l+"\n"); err != nil {
			p.t.Fatalf("client input %q: %v", l, err)
		}
	}
}

// expect waits for a line matching the regexp pattern (lines read earlier
// and not matched are searched first) and returns its submatches.
func (p *clProc) expect(pattern string) []string {
	p.t.Helper()
	re := regexp.MustCompile(pattern)
	for i, l := range p.kept {
		if m := re.FindStringSubmatch(l); m != nil {
			p.kept = append(p.kept[:i:i], p.kept[i+1:]...)
			return m
		}
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l := <-p.out.ch:
			if m := re.FindStringSubmatch(l); m != nil {
				return m
			}
			p.kept = append(p.kept, l)
		case <-deadline:
			p.t.Fatalf("no line matching %q within 10 s; unmatched lines:\n%s", pattern, strings.Join(p.kept, "\n"))
		}
	}
}

// expectNext reads the next line, which must match the regexp pattern:
// for the lines of a message over several, which follow each other.
func (p *clProc) expectNext(pattern string) {
	p.t.Helper()
	select {
	case l := <-p.out.ch:
		if !regexp.MustCompile(pattern).MatchString(l) {
			p.t.Fatalf("next line %q does not match %q", l, pattern)
		}
	case <-time.After(10 * time.Second):
		p.t.Fatalf("no line within 10 s; want %q", pattern)
	}
}

// end closes the client's input and returns its exit status and the lines
// not matched yet.
func (p *clProc) end() (int, []string) {
	p.t.Helper()
	p.in.Close()
	select {
	case p.status = <-p.rc:
		p.exited = true
	case <-time.After(20 * time.Second):
		p.t.Fatalf("client did not exit within 20 s of the end of its input")
	}
	for {
		select {
		case l := <-p.out.ch:
			p.kept = append(p.kept, l)
		default:
			return p.status, p.kept
		}
	}
}

// none checks that no line matching pattern was printed (of those kept).
func (p *clProc) none(pattern string) {
	p.t.Helper()
	re := regexp.MustCompile(pattern)
	for _, l := range p.kept {
		if re.MatchString(l) {
			p.t.Errorf("unexpected line %q", l)
		}
	}
}

func clID(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("id %q: %v", s, err)
	}
	return n
}

// clTS matches a message line's time and tag: "2026-11-27 14:03 [981]".
const clTS = `\d{4}-\d\d-\d\d \d\d:\d\d \[\d+\]`

// Two users register, befriend, chat, group-chat, log out and in again.
func TestClientSession(t *testing.T) {
	srv := startServer(t, sqliteURL(t))
	an, bn := uniqueName("alice"), uniqueName("bob")
	a, b := clStart(t, srv.addr), clStart(t, srv.addr)

	a.send("/register "+an+" wonderland", "/login "+an+" wonderland")
	aid := clID(t, a.expect(`^ok register ` + an + ` \(id (\d+)\)$`)[1])
	a.expect(`^ok login ` + an + ` \(id \d+\): 0 friends, 0 groups$`)
	a.expect(`^friends: none$`)
	a.expect(`^groups: none$`)
	b.send("/register "+bn+" builder1", "/login "+bn+" builder1")
	bid := clID(t, b.expect(`^ok register ` + bn + ` \(id (\d+)\)$`)[1])
	b.expect(`^ok login ` + bn)

	// friends, by name and with the seed project's command by id
	// (a request first: a's friend_added comes when b accepts)
	a.send("/add " + bn)
	a.expect(`^ok friend request sent to ` + bn + ` \(id \d+\)$`)
	b.expect(`^friend request from ` + an + ` \(id \d+\): /accept ` + an + ` or /decline ` + an + `$`)
	b.send("addfriend:" + strconv.FormatInt(aid, 10))
	b.expect(`^ok friend ` + an)
	a.expect(`^friend ` + bn + ` \(id \d+\) added you$`)
	a.send("/friends")
	a.expect(`^friends: ` + bn + ` \(online\)$`)

	// private messages: /msg, the seed form, and an open conversation
	a.send("/msg " + bn + " hi bob")
	a.expect(`^sent ` + clTS + ` you -> ` + bn + `: hi bob$`)
	b.expect(`^message ` + clTS + ` ` + an + ` -> you: hi bob$`)
	b.send("chat:"+strconv.FormatInt(aid, 10)+":hi: alice", "/open "+an, "how are you?", "/close", "stray line")
	a.expect(`^message ` + clTS + ` ` + bn + ` -> you: hi: alice$`)
	b.expect(`^ok open ` + an + `$`)
	a.expect(`^message ` + clTS + ` ` + bn + ` -> you: how are you\?$`)
	b.expect(`^ok close$`)
	b.expect(`^error msg: no conversation is open`)

	// a group: create, join with the seed form, talk both ways
	a.send("/create gophers all things Go")
	gid := a.expect(`^ok created #(\d+) gophers$`)[1]
	b.send("addgroup:" + gid)
	b.expect(`^ok joined #` + gid + ` gophers \[` + an + ` \(creator, online\), ` + bn + ` \(online\)\]$`)
	a.expect(`^member ` + bn + ` joined #` + gid + ` gophers$`)
	b.send("/g " + gid + " hello gophers")
	a.expect(`^message ` + clTS + ` ` + bn + ` -> #` + gid + ` gophers: hello gophers$`)
	a.send("groupchat:"+gid+":hi all", "/open #gophers", "via the open group")
	b.expect(`^message ` + clTS + ` ` + an + ` -> #` + gid + ` gophers: hi all$`)
	b.expect(`^message ` + clTS + ` ` + an + ` -> #` + gid + ` gophers: via the open group$`)
	a.send("/groups", "/who")
	a.expect(`^groups: #` + gid + ` gophers \[` + an + ` \(creator, online\), ` + bn + ` \(online\)\]$`)
	a.expect(`^online \(\d+\): .*` + an)

	// bob leaves; alice writes; bob comes back to the offline messages
	b.send("loginout")
	b.expect(`^ok logout$`)
	a.expect(`^presence ` + bn + ` offline$`)
	a.send("/msg "+bn+" while you were out", "/g "+gid+" group news")
	a.expect(`you -> ` + bn + `: while you were out$`)
	a.expect(`you -> #` + gid + ` gophers: group news$`)
	if rc, rest := b.end(); rc != 1 { // the stray line failed
		t.Errorf("bob's first run: exit status %d, want 1 (lines %q)", rc, rest)
	}
	b = clStart(t, srv.addr)
	b.send("/login "+strconv.FormatInt(bid, 10)+" builder1", "/history "+an+" 3", "/history #"+gid)
	b.expect(`^ok login ` + bn + ` \(id \d+\): 1 friend, 1 group$`)
	b.expect(`^friends: ` + an + ` \(online\)$`)
	b.expect(`^message \(away\) ` + clTS + ` ` + an + ` -> you: while you were out$`)
	b.expect(`^message \(away\) ` + clTS + ` ` + an + ` -> #` + gid + ` gophers: group news$`)
	a.expect(`^presence ` + bn + ` online$`)
	b.expect(`^ok history with ` + an + `: 3 messages$`)
	b.expect(`^history ` + clTS + ` you -> ` + an + `: how are you\?$`)
	b.expect(`^history ` + clTS + ` ` + an + ` -> you: while you were out$`)
	b.expect(`^ok history of #` + gid + ` gophers: 4 messages$`)
	if rc, rest := b.end(); rc != 0 {
		t.Errorf("bob: exit status %d, want 0 (lines %q)", rc, rest)
	}
	// Bob's client acked what it showed: nothing is pending for him now.
	c := dial(t, srv.addr)
	c.must("login", map[string]any{"id": bid, "password": "builder1"})
	c.quiet("message", 300*time.Millisecond)

	if rc, rest := a.end(); rc != 0 {
		t.Errorf("alice: exit status %d, want 0 (lines %q)", rc, rest)
	}
	a.none(`^error`)
}

// A failed command makes the exit status 1; malformed lines get a hint.
func TestClientExitStatus(t *testing.T) {
	srv := startServer(t, sqliteURL(t))
	name := uniqueName("carol")
	ok := clStart(t, srv.addr)
	ok.send("/register "+name+" password1", "/login "+name+" password1", "/help", "/who")
	ok.expect(`^ok login ` + name)
	ok.expect(`^  /history USER\|#ID \[N\] `)
	ok.expect(`^  chat:ID:TEXT `)
	ok.expect(`^online \(1\): ` + name + `$`)
	if rc, rest := ok.end(); rc != 0 {
		t.Errorf("exit status %d, want 0 (%q)", rc, rest)
	}

	tests := []struct {
		lines []string
		want  string
	}{
		{[]string{"/login " + name + " wrongpass"}, `^error login: wrong name or password \(bad_credentials\)$`},
		{[]string{"/register " + name + " password1"}, `^error register: that name is taken \(name_taken\)$`},
		{[]string{"/register bad! password1"}, `^error register: names are 1-32 letters`},
		{[]string{"/register " + uniqueName("dave") + " short"}, `^error register: passwords are 6-72 bytes \(invalid_password\)$`},
		{[]string{"/friends"}, `^error friends: you are not logged in: /login NAME first \(not_logged_in\)$`},
		{[]string{"/login " + name}, `^error: without a terminal, give the password as the second word: /login NAME PASSWORD$`},
		{[]string{"/login " + name + " password1", "/join 99999"}, `^error join: there is no such group \(no_such_group\)$`},
		{[]string{"/login " + name + " password1", "/msg nosuchuser hi"}, `^error msg: there is no user nosuchuser \(no_such_user\)$`},
		{[]string{"/login " + name + " password1", "/msg " + name + " me"}, `^error msg: the server refused the request as malformed`},
		{[]string{"/login " + name + " password1", "/msg 1 " + strings.Repeat("x", 5000)}, `^error msg: too long`},
		{[]string{"/login " + name + " password1", "/leave #nosuch"}, `^error leave: no group named "nosuch" among yours`},
		{[]string{"/fly"}, `^error: unknown command /fly: /help lists the commands$`},
		{[]string{"chat:x"}, `^error: usage: chat:ID:TEXT$`},
	}
	for _, tt := range tests {
		p := clStart(t, srv.addr)
		p.send(tt.lines...)
		p.expect(tt.want)
		if rc, rest := p.end(); rc != 1 {
			t.Errorf("%q: exit status %d, want 1 (%q)", tt.lines, rc, rest)
		}
	}
}

// A server that is down at start: one line on stderr, exit status 1.
func TestClientServerDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var stdout, stderr bytes.Buffer
	rc := client.Run([]string{addr}, strings.NewReader("/who\n"), &stdout, &stderr)
	if rc != 1 || stdout.Len() != 0 {
		t.Errorf("exit status %d, stdout %q", rc, stdout.String())
	}
	if got := stderr.String(); got != "chat: cannot connect to "+addr+": connection refused\n" {
		t.Errorf("stderr %q", got)
	}
	stderr.Reset()
	if rc := client.Run([]string{"a", "b", "c"}, strings.NewReader(""), &stdout, &stderr); rc != 2 || !strings.HasPrefix(stderr.String(), "chat: too many arguments\nusage:") {
		t.Errorf("bad arguments: exit status %d, stderr %q", rc, stderr.String())
	}
}

// The server restarts mid-session: the client says so, reconnects, logs in
// again, and sends what the user typed meanwhile; nothing is lost or doubled.
func TestClientReconnect(t *testing.T) {
	srv := startServer(t, sqliteURL(t))
	bob := newUser(t, srv.addr, "bob")
	an := uniqueName("alice")
	a := clStart(t, srv.addr)
	a.send("/register "+an+" wonderland", "/login "+an+" wonderland", "/open "+strconv.FormatInt(bob.user, 10), "before")
	aid := clID(t, a.expect(`^ok login ` + an + ` \(id (\d+)\)`)[1])
	a.expect(`you -> bob\d+: before$`)
	bob.messages(1, 5*time.Second)

	srv.stop()
	// One server: the client says it will reconnect when the server is
	// back, not "to another node" (the server's reason is not shown).
	a.expect(`^shutdown: the server is shutting down; reconnecting when it is back$`)
	a.expect(`^connection lost \(closed by the server\); reconnecting$`)
	a.send("during 1", "during 2") // queued while the server is down
	time.Sleep(300 * time.Millisecond)
	srv.start()
	a.expect(`^reconnected to ` + regexp.QuoteMeta(srv.addr) + `$`)
	a.expect(`^reconnected: logged in again as ` + an + ` \(id \d+\)$`)
	a.expect(`: during 1$`)
	a.expect(`: during 2$`)
	a.send("after")
	a.expect(`: after$`)

	// A quick second restart while alice sends, without waiting.
	a.send("burst 1", "burst 2", "burst 3")
	srv.restart()
	a.send("burst 4")
	for i := 1; i <= 4; i++ {
		a.expect(`: burst ` + strconv.Itoa(i) + `$`)
	}
	if rc, rest := a.end(); rc != 0 {
		t.Errorf("exit status %d, want 0 (%q)", rc, rest)
	}

	// Bob finds each message once, in order.
	c, _ := loginAs(t, srv.addr, bob.user)
	h := c.must("history", map[string]any{"with": aid, "limit": 50})
	var texts []string
	for _, m := range h.list("messages") {
		texts = append(texts, m.str("text"))
	}
	want := "before|during 1|during 2|after|burst 1|burst 2|burst 3|burst 4"
	if got := strings.Join(texts, "|"); got != want {
		t.Errorf("bob's history:\n got %s\nwant %s", got, want)
	}
}

// A newer login of the same user kicks the client, which says so and does
// not log in again (which would kick the other session in turn).
func TestClientKicked(t *testing.T) {
	srv := startServer(t, sqliteURL(t))
	name := uniqueName("erin")
	a := clStart(t, srv.addr)
	a.send("/register "+name+" password1", "/login "+name+" password1")
	id := clID(t, a.expect(`^ok login ` + name + ` \(id (\d+)\)`)[1])
	other, _ := loginAs(t, srv.addr, id)
	a.expect(`^kicked: you logged in somewhere else`)
	a.expect(`^disconnected: the next command connects again$`)
	other.quiet("kicked", 500*time.Millisecond)
	// A command connects again, without logging in.
	a.send("/who")
	a.expect(`^reconnected to `)
	a.expect(`^error who: you are not logged in`)
	if rc, _ := a.end(); rc != 1 {
		t.Errorf("exit status %d, want 1", rc)
	}
	other.quiet("kicked", 100*time.Millisecond)
}

// A chat whose reply was lost with the connection is sent again with the
// same cid, after logging in again. A fake server drops the first try.
func TestClientResendsWithSameCID(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type req map[string]any
	got := make(chan []req, 2)
	go func() {
		for round := 0; round < 2; round++ {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			var reqs []req
			br := bufio.NewReader(nc)
			for {
				line, err := br.ReadBytes('\n')
				if err != nil {
					break
				}
				var r req
				json.Unmarshal(line, &r)
				if r["type"] == "ping" {
					continue
				}
				reqs = append(reqs, r)
				rid, _ := json.Marshal(r["rid"])
				switch r["type"] {
				case "login":
					io.WriteString(nc, `{"type":"login","rid":`+string(rid)+`,"ok":true,"user":{"id":1,"name":"u","online":true},"friends":[],"groups":[]}`+"\n")
				case "chat":
					if round == 0 { // stored, but the reply is lost
						nc.Close()
						break
					}
					io.WriteString(nc, `{"type":"chat","rid":`+string(rid)+`,"ok":true,"message":{"id":9,"from":1,"from_name":"u","to":2,"text":"x","ts":1}}`+"\n")
				case "whois":
					io.WriteString(nc, `{"type":"whois","rid":`+string(rid)+`,"ok":true,"user":{"id":2,"name":"v","online":true}}`+"\n")
				}
				if r["type"] == "chat" && round == 0 {
					break
				}
			}
			nc.Close()
			got <- reqs
		}
	}()
	p := clStart(t, ln.Addr().String())
	p.send("/login u password1", "/msg v x")
	p.expect(`^connection lost`)
	p.expect(`^reconnected: logged in again as u`)
	p.expect(`^sent .* you -> v: x$`)
	if rc, rest := p.end(); rc != 0 {
		t.Errorf("exit status %d (%q)", rc, rest)
	}
	first, second := <-got, <-got
	if len(first) != 3 || len(second) != 2 || first[2]["type"] != "chat" || second[0]["type"] != "login" || second[1]["type"] != "chat" {
		t.Fatalf("requests:\n%v\n%v", first, second)
	}
	if second[0]["password"] != "password1" || second[0]["name"] != "u" {
		t.Errorf("relogin: %v", second[0])
	}
	cid, _ := first[2]["cid"].(string)
	if cid == "" || second[1]["cid"] != cid {
		t.Errorf("cid: first %v, again %v", first[2]["cid"], second[1]["cid"])
	}
}

// A text longer than the protocol's limit is refused by the client, with
// its error line and exit status 1, and nothing reaches the server; a text
// of exactly 4,096 bytes goes whole.
func TestClientLongText(t *testing.T) {
	srv := startServer(t, sqliteURL(t))
	bob := newUser(t, srv.addr, "bob")
	an := uniqueName("alice")
	a := clStart(t, srv.addr)
	bid := strconv.FormatInt(bob.user, 10)
	a.send("/register "+an+" wonderland", "/login "+an+" wonderland", "/msg "+bid+" "+strings.Repeat("x", 10000))
	aid := clID(t, a.expect(`^ok login ` + an + ` \(id (\d+)\)`)[1])
	a.expect(`^error msg: too long: messages are at most 4096 bytes, this one is 10000; nothing was sent$`)
	if h := bob.must("history", map[string]any{"with": aid, "limit": 10}); len(h.list("messages")) != 0 {
		t.Fatalf("bob's history after the refused text: %v", h)
	}
	full := strings.Repeat("é", 2048) // 4,096 bytes
	a.send("/msg " + bid + " " + full)
	a.expect(`^sent ` + clTS + ` you -> bob\d+: ` + full + `$`)
	if got := bob.messages(1, 5*time.Second)[0].str("text"); got != full {
		t.Errorf("bob got %d bytes, want %d", len(got), len(full))
	}
	if rc, rest := a.end(); rc != 1 {
		t.Errorf("exit status %d, want 1 (%q)", rc, rest)
	}
}

// A message typed over two lines (the first ending in a backslash) is one
// text with a newline; the recipient's client prints it as two lines, the
// second under the first after "  | ", in the live push and in /history.
func TestClientMultiline(t *testing.T) {
	srv := startServer(t, sqliteURL(t))
	an, bn := uniqueName("alice"), uniqueName("bob")
	a, b := clStart(t, srv.addr), clStart(t, srv.addr)
	a.send("/register "+an+" wonderland", "/login "+an+" wonderland")
	a.expect(`^ok login ` + an)
	b.send("/register "+bn+" builder1", "/login "+bn+" builder1")
	b.expect(`^ok login ` + bn)

	a.send("/msg "+bn+" first line\\", "\tsecond \x1b[2J line")
	a.expect(`^sent ` + clTS + ` you -> ` + bn + `: first line$`)
	a.expectNext(`^  \| \tsecond \\x1b\[2J line$`)
	b.expect(`^message ` + clTS + ` ` + an + ` -> you: first line$`)
	b.expectNext(`^  \| \tsecond \\x1b\[2J line$`)
	b.send("/history " + an)
	b.expect(`^ok history with ` + an + `: 1 message$`)
	b.expectNext(`^history ` + clTS + ` ` + an + ` -> you: first line$`)
	b.expectNext(`^  \| \tsecond \\x1b\[2J line$`)
	for _, p := range []*clProc{a, b} {
		if rc, rest := p.end(); rc != 0 {
			t.Errorf("exit status %d, want 0 (%q)", rc, rest)
		}
	}
}

// /login while logged in is refused by the client (the server would log
// the session out first): a wrong password leaves the session as it was,
// and the next /msg goes out.
func TestClientLoginWhileLoggedIn(t *testing.T) {
	srv := startServer(t, sqliteURL(t))
	bob := newUser(t, srv.addr, "bob")
	an, cn := uniqueName("alice"), uniqueName("carol")
	a := clStart(t, srv.addr)
	a.send("/register "+cn+" password1", "/register "+an+" wonderland", "/login "+an+" wonderland")
	a.expect(`^ok login ` + an)
	a.send("/login "+cn+" wrongpass", "/login "+an+" wrongpass", "/msg "+strconv.FormatInt(bob.user, 10)+" still here")
	a.expect(`^error login: you are logged in as ` + an + `: /logout first$`)
	a.expect(`^error login: you are already logged in as ` + an + `$`)
	a.expect(`^sent ` + clTS + ` you -> bob\d+: still here$`)
	if got := bob.messages(1, 5*time.Second)[0].str("text"); got != "still here" {
		t.Errorf("bob got %q", got)
	}
	// After /logout, /login goes to the server again.
	a.send("/logout", "/login "+cn+" wrongpass", "/login "+cn+" password1")
	a.expect(`^ok logout$`)
	a.expect(`^error login: wrong name or password \(bad_credentials\)$`)
	a.expect(`^ok login ` + cn)
	if rc, rest := a.end(); rc != 1 {
		t.Errorf("exit status %d, want 1 (%q)", rc, rest)
	}
}
