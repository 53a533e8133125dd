package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The browser tests drive Debian's Chromium, headless, with chromedp: the
// web client as a user meets it. scripts/chromium.sh installs the browser
// (test.sh does, as root); CHAT_CHROMIUM names another one.

// chromiumPath returns the browser to drive, or skips the test (fails it
// under CHAT_TEST_REQUIRE) when there is none.
func chromiumPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CHAT_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no chromium: skipping the browser tests (as root run: scripts/chromium.sh install)"
	if os.Getenv("CHAT_TEST_REQUIRE") != "" {
		t.Fatal(msg + ", but CHAT_TEST_REQUIRE is set")
	}
	t.Skip(msg)
	return ""
}

// browserTimeout bounds a browser's whole life: one test's steps together.
const browserTimeout = 3 * time.Minute

// newBrowser starts a browser of its own (its own profile: its own
// localStorage, as a separate device) and returns a context to drive its
// first tab. The browser is closed at the test's end.
func newBrowser(t testing.TB) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox, // root in CI
		chromedp.NoFirstRun,
		chromedp.WindowSize(1200, 800),
		// The machine's network is closed: keep the browser from calling home.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
	)
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		bcancel()
		acancel()
		cancel()
	})
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		t.Fatalf("start %s: %v", chromiumPath(t), err)
	}
	return bctx
}

// TestBrowserStarts: the browser the other tests drive starts, renders a
// page and runs its script.
func TestBrowserStarts(t *testing.T) {
	t.Parallel()
	ctx := newBrowser(t)
	err := chromedp.Do(ctx, chromedp.Navigate(`data:text/html,<p id="p">wait</p><script>document.getElementById("p").textContent = "ran"</script>`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(ctx, chromedp.Text("#p"))
	if err != nil || got != "ran" {
		t.Fatalf("got %q, %v", got, err)
	}
}

// page drives one browser tab through the web client's test hooks
// (docs/web.md, "Test hooks").
type page struct {
	t    testing.TB
	ctx  context.Context
	base string // http://HOST:PORT
	name string // who is logged in
	id   int64
}

func newPage(t testing.TB, base string) *page {
	return &page{t: t, ctx: newBrowser(t), base: base}
}

func (p *page) do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, steps...); err != nil {
		p.t.Fatalf("%s: %v", p.name, err)
	}
}

// until waits until the JavaScript expression is true in the page.
func (p *page) until(what, expr string) {
	p.t.Helper()
	_, err := chromedp.Run(p.ctx, chromedp.Poll[bool](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
	if err != nil {
		p.t.Fatalf("%s: waiting for %s (%s): %v", p.name, what, expr, err)
	}
}

// eval returns the value of a JavaScript expression in the page.
func eval[T any](p *page, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("%s: %s: %v", p.name, expr, err)
	}
	return v
}

// enter opens the page and registers (or logs in) name on device.
func (p *page) enter(name, device string, register bool) {
	p.t.Helper()
	p.name = name
	button := "#login-button"
	if register {
		button = "#register-button"
	}
	p.do(chromedp.Navigate(p.base+"/"),
		chromedp.WaitVisible(chromedp.CSS("#login-name")),
		chromedp.SetValue(chromedp.CSS("#login-name"), name),
		chromedp.SetValue(chromedp.CSS("#login-password"), testPassword),
		chromedp.SetValue(chromedp.CSS("#login-device"), device),
		chromedp.Click(chromedp.CSS(button)),
	)
	p.until("the app", `document.body.dataset.view === "app"`)
	p.online()
}

// online waits until the client is logged in and its backlog is in.
func (p *page) online() {
	p.t.Helper()
	p.until("online", `document.querySelector("#conn-status").dataset.state === "online"`)
}

// openWith opens the private conversation with user id, from the list.
func (p *page) openWith(id int64) {
	p.t.Helper()
	sel := fmt.Sprintf(`#conv-list [data-conv-id="u:%d"]`, id)
	p.do(chromedp.Click(chromedp.CSS("#tab-chats")))
	p.until("conversation u:"+fmt.Sprint(id), fmt.Sprintf(`!!document.querySelector(%q)`, sel))
	p.do(chromedp.Click(chromedp.CSS(sel)))
	p.until("the open chat", fmt.Sprintf(`document.querySelector("#chat").dataset.convId === "u:%d"`, id))
}

// startWith opens a conversation with a user by name from the friends tab
// (anyone may be written to, friend or not).
func (p *page) startWith(name string) {
	p.t.Helper()
	p.do(chromedp.Click(chromedp.CSS("#tab-friends")),
		chromedp.SetValue(chromedp.CSS("#friend-name"), name),
		chromedp.Click(chromedp.CSS("#friend-message")))
	p.until("the chat with "+name, `!!document.querySelector("#chat").dataset.convId`)
}

// send types text into the composer and presses Enter.
func (p *page) send(text string) {
	p.t.Helper()
	p.do(chromedp.SendKeys(chromedp.CSS("#composer"), text+"\r"))
}

// shows waits until the open chat shows a message with text, and returns
// its element's data (id, state).
func (p *page) shows(text string) (id int64, state string) {
	p.t.Helper()
	find := fmt.Sprintf(`[...document.querySelectorAll("#messages > li")].find(li => li.querySelector(".text")?.textContent === %q)`, text)
	p.until("the message "+text, "!!"+find)
	got := eval[map[string]any](p, fmt.Sprintf(`(() => { const li = %s; return {id: li.dataset.msgId || "", state: li.dataset.state || ""} })()`, find))
	n, _ := strconv.ParseInt(fmt.Sprint(got["id"]), 10, 64)
	return n, fmt.Sprint(got["state"])
}

// count returns how many messages with text the open chat shows.
func (p *page) count(text string) int {
	p.t.Helper()
	return int(eval[float64](p, fmt.Sprintf(`[...document.querySelectorAll("#messages > li")].filter(li => li.querySelector(".text")?.textContent === %q).length`, text)))
}

// stateOf waits until the message with text has state (sent, read).
func (p *page) stateOf(text, state string) {
	p.t.Helper()
	p.until(text+" "+state, fmt.Sprintf(`[...document.querySelectorAll("#messages > li")].some(li => li.querySelector(".text")?.textContent === %q && li.dataset.state === %q)`, text, state))
}

// screenshot saves the page as a PNG in $CHAT_SCREENSHOTS, if set.
func (p *page) screenshot(file string) {
	p.t.Helper()
	dir := os.Getenv("CHAT_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(dir, file)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot: %s", path)
}

// idOf looks a user up by name through c.
func idOf(c *testClient, name string) int64 {
	return c.must("whois", map[string]any{"name": name}).obj("user").num("id")
}

// TestBrowserChat: two browsers and a terminal client chat through one
// server: messages both ways, sent and read marks, text shown as text.
func TestBrowserChat(t *testing.T) {
	t.Parallel()
	ts := startServer(t, sqliteURL(t), withWeb)
	base := "http://" + ts.web
	carol := newUser(t, ts.addr, "carol")
	alice, bob := newPage(t, base), newPage(t, base)
	alice.enter(uniqueName("alice"), "alice-laptop", true)
	bob.enter(uniqueName("bob"), "bob-phone", true)
	alice.id, bob.id = idOf(carol, alice.name), idOf(carol, bob.name)

	// alice writes to bob; he opens the conversation, which reads it; her
	// message goes from sent to read.
	alice.startWith(bob.name)
	alice.send("hi bob, from a browser")
	alice.stateOf("hi bob, from a browser", "sent")
	bob.openWith(alice.id)
	if id, _ := bob.shows("hi bob, from a browser"); id <= 0 {
		t.Fatalf("bob's copy has no id: %d", id)
	}
	alice.stateOf("hi bob, from a browser", "read")
	hostile := `<img src=x onerror="document.title='owned'"><b>bold?</b>`
	bob.send(hostile)
	alice.shows(hostile)
	if title := eval[string](alice, "document.title"); strings.Contains(title, "owned") ||
		eval[int](alice, `document.querySelectorAll("#messages img, #messages b").length`) != 0 {
		t.Fatalf("received text became markup (title %q)", title)
	}

	// The terminal client and the browsers.
	carol.must("chat", map[string]any{"to": alice.id, "text": "hello from the terminal"})
	alice.openWith(carol.user)
	alice.shows("hello from the terminal")
	alice.send("hello terminal, from the browser")
	if m := carol.messages(1, 10*time.Second)[0]; m.str("text") != "hello terminal, from the browser" || m.num("from") != alice.id {
		t.Fatalf("carol got %v", m)
	}
	carol.must("chat", map[string]any{"to": alice.id, "text": "Lunch at noon? The terminal client says hi to the web client."})
	alice.shows("Lunch at noon? The terminal client says hi to the web client.")
	alice.send("Noon works. I am in the browser, you are in a terminal, and the server does not mind.")
	carol.messages(1, 10*time.Second)
	alice.screenshot("conversation.png")
}

// TestBrowserReconnect: the server restarts under a logged-in browser. What
// the user wrote meanwhile goes out once it is back, exactly once, and what
// others send after reaches the browser: nothing lost, nothing doubled.
func TestBrowserReconnect(t *testing.T) {
	t.Parallel()
	ts := startServer(t, sqliteURL(t), withWeb)
	base := "http://" + ts.web
	bob := newUser(t, ts.addr, "rbob")
	alice := newPage(t, base)
	alice.enter(uniqueName("ralice"), "laptop", true)
	alice.id = idOf(bob, alice.name)
	bob.must("chat", map[string]any{"to": alice.id, "text": "before the restart"})
	alice.openWith(bob.user)
	alice.shows("before the restart")

	ts.stop()
	alice.until("offline", `document.querySelector("#conn-status").dataset.state !== "online"`)
	alice.send("written while the server was down")
	ts.restart()
	alice.online()
	alice.stateOf("written while the server was down", "sent")

	bob2, _ := loginAs(t, ts.addr, bob.user)
	msgs := bob2.messages(1, 10*time.Second) // the backlog: alice's reply
	texts := map[string]int{}
	for _, m := range msgs {
		texts[m.str("text")]++
	}
	if texts["written while the server was down"] != 1 {
		t.Fatalf("bob's backlog: %v", msgs)
	}
	bob2.quiet("message", 500*time.Millisecond)
	bob2.must("chat", map[string]any{"to": alice.id, "text": "after the restart"})
	alice.shows("after the restart")
	if n := alice.count("written while the server was down"); n != 1 {
		t.Fatalf("alice shows her message %d times", n)
	}
}

// TestBrowserCluster: browsers on a 3-node cluster behind nginx, through its
// web front (the page and the WebSocket upgrade of /ws), chat with each
// other and with a terminal client on the stream front, wherever nginx put
// each of them.
func TestBrowserCluster(t *testing.T) {
	clusterGate(t)
	chromiumPath(t)
	ce := clusterUp(t, 3, clusterOpts{})
	base := "http://" + ce.web
	carol := newUser(t, ce.front, "ccarol")
	alice, bob := newPage(t, base), newPage(t, base)
	alice.enter(uniqueName("calice"), "alice-laptop", true)
	bob.enter(uniqueName("cbob"), "bob-phone", true)
	alice.id, bob.id = idOf(carol, alice.name), idOf(carol, bob.name)

	alice.startWith(bob.name)
	alice.send("across the cluster, from a browser")
	bob.openWith(alice.id)
	bob.shows("across the cluster, from a browser")
	alice.stateOf("across the cluster, from a browser", "read")
	bob.send("and back")
	alice.shows("and back")

	carol.must("chat", map[string]any{"to": bob.id, "text": "from the terminal, through nginx"})
	bob.openWith(carol.user)
	bob.shows("from the terminal, through nginx")
	bob.send("the browser answers")
	if m := carol.messages(1, 10*time.Second)[0]; m.str("text") != "the browser answers" {
		t.Fatalf("carol got %v", m)
	}
}
