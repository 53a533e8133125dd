package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// The cluster's web front as deployed: scripts/cluster.sh's nginx proxies
// the nodes' web ports (the page at /, the protocol over WebSocket at /ws)
// next to the client port's stream proxy. WebSocket clients and TCP clients
// chat with each other through the two fronts, the origin check works
// through the proxy, and a WebSocket whose node dies reconnects through
// nginx to another node and loses nothing.

// conns returns each node's open client connections of a transport
// ("tcp" or "ws", from chat_connections on its /metrics); -1 for a node
// that does not answer.
func (ce *clusterEnv) conns(transport string) []int {
	hc := &http.Client{Timeout: 3 * time.Second}
	want := `chat_connections{transport="` + transport + `"} `
	out := make([]int, len(ce.nodes))
	for i, nd := range ce.nodes {
		out[i] = -1
		resp, err := hc.Get("http://" + nd.admin + "/metrics")
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), want); ok {
				if n, err := strconv.Atoi(v); err == nil {
					out[i] = n
				}
			}
		}
		resp.Body.Close()
	}
	return out
}

// waitConns waits until the live nodes hold total connections of a
// transport, and returns each node's count (-1: the node is down). A
// client's dial returns before its node counts it, hence the wait.
func (ce *clusterEnv) waitConns(t testing.TB, transport string, total int) []int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		counts := ce.conns(transport)
		sum := 0
		for _, n := range counts {
			sum += max(n, 0)
		}
		if sum == total {
			return counts
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s connections by node: %v, want %d in all", transport, counts, total)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// clusterNewOne returns the node whose count went up from before to after.
func clusterNewOne(t testing.TB, before, after []int) int {
	t.Helper()
	for i := range after {
		if after[i] == max(before[i], 0)+1 {
			return i
		}
	}
	t.Fatalf("no node holds the new connection: %v before, %v after", before, after)
	return -1
}

// clusterPage is a GET's answer, its body read.
type clusterPage struct {
	status int
	header http.Header
	body   []byte
	resp   *http.Response
}

func clusterGet(t testing.TB, hc *http.Client, url string) clusterPage {
	t.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return clusterPage{status: resp.StatusCode, header: resp.Header, body: body, resp: resp}
}

// checkSamePage fails unless the page through nginx is the node's own: same
// bytes, same content type and security headers.
func checkSamePage(t testing.TB, viaNginx, direct clusterPage) {
	t.Helper()
	if viaNginx.status != http.StatusOK || direct.status != http.StatusOK {
		t.Fatalf("GET / is %d through nginx, %d on a node; want 200", viaNginx.status, direct.status)
	}
	if !bytes.Equal(viaNginx.body, direct.body) || len(direct.body) == 0 {
		t.Fatalf("the page through nginx (%d bytes) is not the node's (%d bytes)", len(viaNginx.body), len(direct.body))
	}
	for _, h := range []string{"Content-Type", "Content-Security-Policy", "X-Content-Type-Options", "ETag"} {
		if got, want := viaNginx.header.Get(h), direct.header.Get(h); got != want || want == "" {
			t.Errorf("%s through nginx: %q; the node's: %q", h, got, want)
		}
	}
}

// clusterForeignOrigin checks that a WebSocket from a page of another
// origin is refused with 403.
func clusterForeignOrigin(t testing.TB, url string, hc *http.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: hc,
		HTTPHeader: http.Header{"Origin": {"https://evil.example"}}})
	if err == nil {
		ws.CloseNow()
		t.Fatalf("a page of https://evil.example got a WebSocket through nginx")
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("a foreign origin through nginx: status %d (%v), want 403", status, err)
	}
}

// clusterChatAround has each client send a chat to each other one and
// checks that each arrives; it returns the ids of the messages to to.
func clusterChatAround(t testing.TB, to *testClient, clients ...*testClient) []int64 {
	t.Helper()
	var ids []int64
	for _, from := range clients {
		for _, dst := range clients {
			if dst == from {
				continue
			}
			text := fmt.Sprintf("from %d to %d", from.user, dst.user)
			m := from.must("chat", map[string]any{"to": dst.user, "text": text}).obj("message")
			got := clusterWaitPush(t, dst, "message", clusterMsgID(m.num("id")), 5*time.Second).obj("message")
			if got.str("text") != text || got.num("from") != from.user {
				t.Fatalf("pushed %v, sent %v", got, m)
			}
			if dst == to {
				ids = append(ids, m.num("id"))
			}
		}
	}
	return ids
}

// TestClusterWebSocket: a 3-node cluster behind nginx's two fronts. The page
// comes through nginx as the nodes serve it; a foreign origin is refused and
// the page's own accepted; two WebSocket users and a TCP user chat with
// each other; the node of one WebSocket user is killed, and that user
// reconnects through nginx to another node and gets what was sent meanwhile.
func TestClusterWebSocket(t *testing.T) {
	ce := clusterUp(t, 3, clusterOpts{})
	if want := "http://" + ce.web + "/"; ce.vars["WEB_URL"] != want {
		t.Errorf("WEB_URL %q, want %q", ce.vars["WEB_URL"], want)
	}
	hc := &http.Client{Timeout: 10 * time.Second}

	checkSamePage(t, clusterGet(t, hc, "http://"+ce.web+"/"), clusterGet(t, hc, "http://"+ce.nodes[0].web+"/"))
	clusterForeignOrigin(t, wsURL(ce.web), nil)

	// The page's own origin, as a browser sends it: nginx passes the Host
	// on, so the node sees the two agree.
	own := &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"http://" + ce.web}}}

	// c: a terminal, through the stream front.
	c := dial(t, ce.front)
	nc := clusterNewOne(t, make([]int, 3), ce.waitConns(t, "tcp", 1))
	// Two browsers. least_conn puts them on two different nodes, at most
	// one of them c's: a is the other one, whose node will be killed.
	before := ce.waitConns(t, "ws", 0)
	w1 := dialWSURL(t, wsURL(ce.web), own)
	mid := ce.waitConns(t, "ws", 1)
	n1 := clusterNewOne(t, before, mid)
	w2 := dialWSURL(t, wsURL(ce.web), own)
	n2 := clusterNewOne(t, mid, ce.waitConns(t, "ws", 2))
	if n1 == n2 {
		t.Fatalf("least_conn put both WebSockets on node%d", n1+1)
	}
	a, b, na, nb := w1, w2, n1, n2
	if n1 == nc {
		a, b, na, nb = w2, w1, n2, n1
	}
	t.Logf("WebSocket users a on node%d and b on node%d, TCP user c on node%d", na+1, nb+1, nc+1)

	signUp(t, a, "wa", "browser")
	signUp(t, b, "wb", "browser")
	signUp(t, c, "wc", "terminal")
	befriend(t, a, c) // requests and friend_added, WebSocket <-> TCP
	befriend(t, b, a) // WebSocket <-> WebSocket
	got := clusterChatAround(t, a, a, b, c)
	a.must("ack", map[string]any{"ids": got})

	// a's node dies: nginx closes a's WebSocket.
	took := ce.stopNode(na+1, true)
	t.Logf("node%d killed (SIGKILL) in %v", na+1, took.Round(time.Millisecond))
	a.closed(10 * time.Second)

	// Meanwhile, b and c write to a; each chat is stored (ok).
	var meanwhile []int64
	for i := range 3 {
		for _, from := range []*testClient{b, c} {
			m := from.must("chat", map[string]any{"to": a.user, "text": fmt.Sprintf("while away %d", i), "cid": fmt.Sprintf("away-%d-%d", from.user, i)})
			meanwhile = append(meanwhile, m.obj("message").num("id"))
		}
	}

	// a reconnects through nginx, as the page does: the dead node refuses,
	// nginx passes the WebSocket to a live one.
	start := time.Now()
	a2 := dialWSURL(t, wsURL(ce.web), own)
	a2.must("login", map[string]any{"id": a.user, "password": testPassword, "device": "browser"})
	a2.user = a.user
	a2.waitSynced(10 * time.Second)
	t.Logf("a reconnected through nginx and logged in again in %v", time.Since(start).Round(time.Millisecond))
	counts := ce.waitConns(t, "ws", 2)
	if counts[na] != -1 {
		t.Fatalf("WebSocket connections by node after the kill: %v; node%d should be down", counts, na+1)
	}

	// What was sent meanwhile came with the login, each message once.
	seen := map[int64]int{}
	for _, f := range a2.pushes {
		if f.str("type") == "message" {
			seen[f.obj("message").num("id")]++
		}
	}
	for _, id := range meanwhile {
		if seen[id] != 1 {
			t.Errorf("message %d, sent while a was away, came %d times at the new login (got %v)", id, seen[id], seen)
		}
	}
	for id := range seen {
		if !slices.Contains(meanwhile, id) {
			t.Errorf("message %d came again at the new login though a had acknowledged it", id)
		}
	}
	a2.pushes = nil
	a2.must("ack", map[string]any{"ids": meanwhile})

	// And live again, both ways, with both other users.
	clusterChatAround(t, a2, a2, b, c)

	// nginx placed every WebSocket: none failed (502) for want of a node.
	statuses := ce.nginxWebStatuses()
	t.Logf("nginx web requests by status: %v", statuses)
	if statuses["502"] > 0 || statuses["504"] > 0 {
		t.Errorf("nginx could not place %d request(s) on a node", statuses["502"]+statuses["504"])
	}
}

// nginxWebStatuses counts the web front's requests by status, from
// DIR/nginx-web-access.log. A WebSocket is logged when it ends.
func (ce *clusterEnv) nginxWebStatuses() map[string]int {
	return ce.logStatuses("nginx-web-access.log")
}

// TestClusterWebTLS: `cluster.sh up --tls`. nginx terminates the web
// front's TLS with the nodes' certificate and proxies to their HTTPS web
// ports; the client port's TLS is passed through. A wss:// user and a TLS
// TCP user chat through the two fronts; plain HTTP is sent to https://.
func TestClusterWebTLS(t *testing.T) {
	clusterGate(t)
	ca, cert, key := tlsFiles(t)
	ce := clusterUp(t, 3, clusterOpts{up: []string{"--tls", cert, key}})
	base := "https://" + ce.web + "/"
	if ce.vars["WEB_URL"] != base {
		t.Errorf("WEB_URL %q, want %q", ce.vars["WEB_URL"], base)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Roots}}}

	page := clusterGet(t, hc, base)
	if s := page.resp.TLS; s == nil || s.PeerCertificates[0].SerialNumber.Int64() != 1 {
		t.Fatalf("the web front's certificate is not the one given to --tls: %+v", s)
	}
	checkSamePage(t, page, clusterGet(t, hc, "https://"+ce.nodes[1].web+"/"))
	redirected := clusterGet(t, hc, "http://"+ce.web+"/")
	if u := redirected.resp.Request.URL; redirected.status != http.StatusOK || u.Scheme != "https" {
		t.Errorf("plain http://%s/ ended at %s with %d, want the https:// page", ce.web, u, redirected.status)
	}

	clusterForeignOrigin(t, "wss://"+ce.web+"/ws", hc)
	w := dialWSURL(t, "wss://"+ce.web+"/ws", &websocket.DialOptions{HTTPClient: hc,
		HTTPHeader: http.Header{"Origin": {"https://" + ce.web}}})
	signUp(t, w, "tw", "browser")
	c := dialTLS(t, ce.front, ca.Roots)
	if c.serial() != 1 {
		t.Errorf("the client port's certificate: serial %d, want 1 (passed through from a node)", c.serial())
	}
	signUp(t, c, "tc", "terminal")
	clusterChatAround(t, w, w, c)
}
