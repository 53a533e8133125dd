package client

import (
	"io"
	"strings"
	"testing"
	"time"
)

// startScripted runs the client in plain mode against fs with input from a
// pipe, logged in as alice (testLogin); it returns the input, the output
// and the exit status channel.
func startScripted(t *testing.T, fs *fakeServer, edit func(*config)) (in *io.PipeWriter, out *screen, rc chan int) {
	t.Helper()
	cfg := testConfig(fs.addr())
	if edit != nil {
		edit(&cfg)
	}
	out = &screen{t: t}
	rc = make(chan int, 1)
	pr, pw := io.Pipe()
	go func() { rc <- run(cfg, pr, out, io.Discard, false) }()
	t.Cleanup(func() { pw.Close() })
	io.WriteString(pw, "/login alice password1\n")
	fs.reply(fs.next("login"), testLogin)
	out.waitFor(0, "\ngroups: ")
	return pw, out, rc
}

// waitExit waits for the client's exit status.
func waitExit(t *testing.T, rc chan int) int {
	t.Helper()
	select {
	case status := <-rc:
		return status
	case <-time.After(15 * time.Second):
		t.Fatal("the client did not exit")
	}
	return 0
}

// leftOver returns the requests of type typ that fs got and the test did
// not take.
func leftOver(fs *fakeServer, typ string) []map[string]any {
	var left []map[string]any
	for _, r := range fs.kept {
		if r["type"] == typ {
			left = append(left, r)
		}
	}
	for len(fs.reqs) > 0 {
		if r := <-fs.reqs; r["type"] == typ {
			left = append(left, r)
		}
	}
	return left
}

// Read marks: what was shown from others is marked read, one request a
// conversation for a burst (the newest id), none for one's own messages,
// none at or below a mark another session set, and none at all once the
// server says it does not know the request.
func TestReadMarks(t *testing.T) {
	fs := newFakeServer(t)
	in, out, rc := startScripted(t, fs, func(cfg *config) { cfg.readEvery = 500 * time.Millisecond })
	for _, m := range []string{
		`{"id":5,"from":2,"from_name":"bob","to":1,"text":"a","ts":1}`,
		`{"id":6,"from":2,"from_name":"bob","to":1,"text":"b","ts":1}`,
		`{"id":8,"from":2,"from_name":"bob","group":3,"text":"g","ts":1}`,
		`{"id":7,"from":2,"from_name":"bob","to":1,"text":"c","ts":1}`,
		`{"id":9,"from":1,"from_name":"alice","to":2,"text":"mine, from my phone","ts":1}`,
	} {
		fs.send(`{"type":"message","message":` + m + `}`)
	}
	first, second := fs.next("read"), fs.next("read")
	checkFields(t, first, `{"with":2,"id":7}`)
	checkFields(t, second, `{"group":3,"id":8}`)
	fs.reply(first, "")
	fs.reply(second, "")

	// Another session of alice's read further: no mark at or below it.
	fs.send(`{"type":"read","user":{"id":1,"name":"alice"},"with":2,"id":12}`)
	fs.send(`{"type":"message","message":{"id":11,"from":2,"from_name":"bob","to":1,"text":"d","ts":1}}`)
	fs.send(`{"type":"message","message":{"id":13,"from":2,"from_name":"bob","to":1,"text":"e","ts":1}}`)
	r := fs.next("read")
	checkFields(t, r, `{"with":2,"id":13}`)
	// A server without read marks: none are sent again.
	fs.fail(r, "unknown_type")
	out.waitFor(0, "bob -> you: e")
	time.Sleep(50 * time.Millisecond) // the failed reply is in
	fs.send(`{"type":"message","message":{"id":14,"from":2,"from_name":"bob","to":1,"text":"f","ts":1}}`)
	out.waitFor(0, "bob -> you: f")
	in.Close()
	if status := waitExit(t, rc); status != 0 {
		t.Errorf("exit status %d", status)
	}
	if left := leftOver(fs, "read"); len(left) != 0 {
		t.Errorf("read marks sent: %v", left)
	}
	if s := out.String(); strings.Contains(s, "error") || strings.Contains(s, "read by") {
		t.Errorf("read marks are quiet; the output:\n%s", s)
	}
}

// Read receipts: a read push from the other side prints one line when it
// covers messages of one's own not yet seen read, and nothing otherwise.
func TestReadReceipts(t *testing.T) {
	fs := newFakeServer(t)
	in, out, rc := startScripted(t, fs, nil)
	io.WriteString(in, "/msg bob hi\n/msg bob again\n")
	fs.reply(fs.next("chat"), `"message":{"id":20,"from":1,"from_name":"alice","to":2,"text":"hi","ts":1}`)
	fs.reply(fs.next("chat"), `"message":{"id":22,"from":1,"from_name":"alice","to":2,"text":"again","ts":1}`)
	out.waitFor(0, "[22] you -> bob: again")
	for _, push := range []string{
		`{"type":"read","user":{"id":2,"name":"bob"},"with":2,"id":19}`,   // before them: nothing
		`{"type":"read","user":{"id":2,"name":"bob"},"with":2,"id":20}`,   // read by bob up to [20]
		`{"type":"read","user":{"id":2,"name":"bob"},"with":2,"id":21}`,   // nothing new of alice's
		`{"type":"read","user":{"id":1,"name":"alice"},"with":2,"id":22}`, // alice's other session: nothing
		`{"type":"read","user":{"id":2,"name":"bob"},"group":3,"id":30}`,  // a group: nothing
		`{"type":"read","user":{"id":2,"name":"bob"},"with":2,"id":25}`,   // read by bob up to [25]
		`{"type":"read","user":{"id":2,"name":"bob"},"with":2,"id":26}`,   // nothing
		// a message of alice's from another device, then read
		`{"type":"message","message":{"id":40,"from":1,"from_name":"alice","to":2,"text":"from my phone","ts":1}}`,
		`{"type":"read","user":{"id":2,"name":"bob"},"with":2,"id":40}`, // read by bob up to [40]
	} {
		fs.send(push)
	}
	out.waitFor(0, "read by bob up to [40]")
	in.Close()
	if status := waitExit(t, rc); status != 0 {
		t.Errorf("exit status %d", status)
	}
	var got []string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(l, "read ") {
			got = append(got, l)
		}
	}
	if want := "read by bob up to [20]|read by bob up to [25]|read by bob up to [40]"; strings.Join(got, "|") != want {
		t.Errorf("receipts %q, want %q", got, want)
	}
	if !strings.Contains(out.String(), "\nmessage TIME [40] you -> bob: from my phone\n") &&
		!strings.Contains(clientTimes.ReplaceAllString(out.String(), "TIME"), "\nmessage TIME [40] you -> bob: from my phone\n") {
		t.Errorf("the copy from another device:\n%s", out.String())
	}
}
