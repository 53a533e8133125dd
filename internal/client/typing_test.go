package client

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"chat/internal/wire"
)

// recOut records what the core shows, for tests that drive the core
// directly.
type recOut struct {
	lines  []string
	status []string
}

func (r *recOut) print(_ outKind, l string) { r.lines = append(r.lines, l) }
func (r *recOut) setPrompt(string)          {}
func (r *recOut) setUser(string)            {}
func (r *recOut) setStatus(s string)        { r.status = append(r.status, s) }

// testCore is a core logged in as alice (1), who knows bob (2) and the
// group #3 gophers, not connected; plain says which mode.
func testCore(plain bool) (*core, *recOut) {
	out := &recOut{}
	cfg := testConfig("127.0.0.1:1")
	cfg.plain = plain
	cfg.loc = time.UTC
	c := newCore(cfg, out)
	c.setMe(&wire.User{ID: 1, Name: "alice"})
	c.names.addUser(2, "bob")
	c.names.addGroup(&group{Group: wire.Group{ID: 3, Name: "gophers"}})
	return c, out
}

// The conversation a line being typed goes to: a plain line to the open
// one, /msg and /g (and their seed forms) once their text has begun, to a
// user or group known without a lookup; nothing else.
func TestTypingTarget(t *testing.T) {
	c, _ := testCore(false)
	bob, gophers := convKey{with: 2}, convKey{group: 3}
	tests := []struct {
		open *ref
		line string
		want convKey // zero: no notice
	}{
		{nil, "hello", convKey{}},
		{&ref{ID: 2}, "h", bob},
		{&ref{ID: 3, Group: true}, "hello all", gophers},
		{&ref{ID: 2}, "/who", convKey{}},
		{&ref{ID: 2}, "/msg", convKey{}},
		{nil, "/msg bob", convKey{}},  // no text yet
		{nil, "/msg bob ", convKey{}}, // still none
		{nil, "/msg bob h", bob},
		{nil, "/msg 2 h", bob},
		{nil, "/msg 7 h", convKey{with: 7}},
		{nil, "/msg carol h", convKey{}}, // not known: no lookup for a notice
		{nil, "/msg alice h", convKey{}}, // oneself
		{nil, "/msg bob\nh", bob},        // a message over lines: its first line names the target
		{nil, "/g 3 h", gophers},
		{nil, "/g #gophers h", gophers},
		{nil, "/g #nosuch h", convKey{}},
		{nil, "chat:2:h", bob},
		{nil, "groupchat:3:h", gophers},
		{&ref{ID: 2}, "/edit 5 h", convKey{}},
		{&ref{ID: 2}, "/login alice pw", convKey{}},
	}
	for _, tt := range tests {
		c.open = tt.open
		got, ok := c.typingTarget(tt.line)
		if ok != (tt.want != convKey{}) || got != tt.want {
			t.Errorf("open %v, %q: %v %v, want %v", tt.open, tt.line, got, ok, tt.want)
		}
	}
}

// Typing notices go at most once every typingEvery per conversation, at
// once again after a message went, never while not logged in, and not at
// all once the server says it does not know them.
func TestTypingThrottle(t *testing.T) {
	fs := newFakeServer(t)
	c, _ := testCore(false)
	c.cfg.addr = fs.addr()
	if err := c.connect(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		close(c.done)
		c.conn.close()
	}()
	c.open = &ref{ID: 2}
	t0 := time.Now()
	c.typed("h", t0)
	checkFields(t, fs.next("typing"), `{"with":2}`)
	c.typed("he", t0.Add(time.Second))                   // too soon
	c.typed("hel", t0.Add(typingEvery-time.Millisecond)) // still too soon
	c.typed("/g 3 x", t0.Add(time.Second))               // another conversation: its own clock
	checkFields(t, fs.next("typing"), `{"group":3}`)
	c.typed("hell", t0.Add(typingEvery))
	checkFields(t, fs.next("typing"), `{"with":2}`)
	c.messageSent(convKey{with: 2}) // the message went: the next one is typed
	c.typed("n", t0.Add(typingEvery+time.Second))
	r := fs.next("typing")
	checkFields(t, r, `{"with":2}`)

	// The reply tells that the server does not know typing: no more.
	fs.fail(r, "unknown_type")
	var ev connEvent
	for ev.f == nil || ev.f.Type != "typing" {
		ev = <-c.events
		if ev.err != nil {
			t.Fatal(ev.err)
		}
	}
	c.onFrame(ev.f)
	c.typed("x", t0.Add(time.Hour))
	c.setMe(nil)
	c.typed("y", t0.Add(2*time.Hour))
	time.Sleep(100 * time.Millisecond)
	if left := leftOver(fs, "typing"); len(left) != 0 {
		t.Errorf("notices sent: %v", left)
	}
}

// Others typing: on a terminal a status before the prompt, until their
// message arrives or typingShow passes; one's own ignored; in plain mode a
// line a notice.
func TestTypingShown(t *testing.T) {
	c, out := testCore(false)
	now := time.Now()
	bob := &frame{Type: "typing", User: &wire.User{ID: 2, Name: "bob"}, With: 2}
	carol := &frame{Type: "typing", User: &wire.User{ID: 4, Name: "carol"}, Group: []byte("3")}
	c.onTypingPush(bob, now)
	c.onTypingPush(carol, now.Add(time.Second))
	c.onTypingPush(&frame{Type: "typing", User: &wire.User{ID: 1, Name: "alice"}, With: 2}, now) // oneself, elsewhere
	c.onTypingPush(bob, now.Add(2*time.Second))                                                  // the same: no change
	c.onMessage(&message{Message: wire.Message{ID: 5, From: 2, FromName: "bob", To: 1, Text: "hi", TS: 1}}, false, now.Add(3*time.Second))
	c.showTyping(now.Add(time.Second + typingShow)) // carol's expired
	want := []string{"typing: bob", "typing: bob, carol (#3 gophers)", "typing: carol (#3 gophers)", ""}
	if !reflect.DeepEqual(out.status, want) {
		t.Errorf("status %q, want %q", out.status, want)
	}
	if c.typingDue != nil {
		t.Errorf("a timer left with no one typing")
	}
	for _, l := range out.lines {
		if strings.HasPrefix(l, "typing") {
			t.Errorf("a line on a terminal: %q", l)
		}
	}

	p, pout := testCore(true)
	p.onTypingPush(bob, now)
	p.onTypingPush(carol, now)
	if want := []string{"typing bob -> you", "typing carol -> #3 gophers"}; !reflect.DeepEqual(pout.lines, want) || len(pout.status) != 0 {
		t.Errorf("plain: lines %q status %q", pout.lines, pout.status)
	}
}
