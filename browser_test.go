package main

import (
	"context"
	"os"
	"os/exec"
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
