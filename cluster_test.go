package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The cluster as it is deployed: real server processes (the binary built with
// -tags server), a real nginx in front of them, a fresh MySQL database and
// Redis, all brought up and down by scripts/cluster.sh, as the README tells a
// person to. The tests place clients on known nodes (each node's own address)
// or go through nginx, kill and restart nodes and Redis under traffic, and
// count every acknowledged message: none may be lost.
//
// They need CHAT_TEST_MYSQL and CHAT_TEST_REDIS (scripts/test.sh sets both)
// and nginx with its stream module (scripts/cluster.sh installs it as root).
// They run one cluster at a time (no t.Parallel); a cluster on the shared
// Redis keys everything under a -redis-prefix of its own.

const clusterAptLine = "apt-get install nginx libnginx-mod-stream"

// clusterGate skips the test (fails it under CHAT_TEST_REQUIRE) when a
// service the cluster needs is not there.
func clusterGate(t testing.TB) {
	t.Helper()
	require := os.Getenv("CHAT_TEST_REQUIRE") != ""
	var missing []string
	for _, v := range []string{"CHAT_TEST_MYSQL", "CHAT_TEST_REDIS"} {
		if os.Getenv(v) == "" {
			missing = append(missing, v)
		}
	}
	if len(missing) > 0 {
		msg := strings.Join(missing, " and ") + " not set: skipping the cluster tests (scripts/test.sh runs them)"
		if require {
			t.Fatal(msg + ", but CHAT_TEST_REQUIRE is set")
		}
		t.Skip(msg)
	}
	if !clusterHaveNginx() && os.Geteuid() != 0 {
		// As root, scripts/cluster.sh installs it.
		msg := "nginx with the stream module is missing; as root run: " + clusterAptLine
		if require {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

func clusterHaveNginx() bool {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin = "/usr/sbin/nginx"
		if _, err := os.Stat(bin); err != nil {
			return false
		}
	}
	if _, err := os.Stat("/usr/lib/nginx/modules/ngx_stream_module.so"); err == nil {
		return true
	}
	out, _ := exec.Command(bin, "-V").CombinedOutput()
	return bytes.Contains(out, []byte("--with-stream ")) || bytes.HasSuffix(bytes.TrimSpace(out), []byte("--with-stream"))
}

// clusterNode is one node as scripts/cluster.sh reports it.
type clusterNode struct {
	name  string
	addr  string // clients connect here directly
	web   string // the node's web port (the page, /ws)
	admin string // /healthz, /metrics
}

// clusterEnv is a running cluster: DIR/cluster.env, parsed.
type clusterEnv struct {
	t     testing.TB
	dir   string
	env   []string // the environment scripts/cluster.sh runs in
	vars  map[string]string
	front string // nginx: the client port
	web   string // nginx: the web front (host:port)
	nodes []clusterNode
}

type clusterOpts struct {
	redis string   // Redis address; "" means CHAT_TEST_REDIS, under a prefix of our own
	up    []string // more flags for `scripts/cluster.sh up` (--tls CERT KEY)
	args  []string // more server flags for every node
}

// clusterUp brings up n nodes behind nginx on a fresh MySQL database, and
// brings them down when the test ends.
func clusterUp(t testing.TB, n int, o clusterOpts) *clusterEnv {
	t.Helper()
	clusterGate(t)
	dsn := strings.TrimPrefix(mysqlURL(t), "mysql:")
	redisAddr := o.redis
	args := []string{"-bcrypt-cost", "4", "-rate", "0"}
	if redisAddr == "" {
		redisAddr = os.Getenv("CHAT_TEST_REDIS")
		var rnd [4]byte
		rand.Read(rnd[:])
		args = append(args, "-redis-prefix", "chattest"+hex.EncodeToString(rnd[:]))
	}
	args = append(args, o.args...)
	ce := &clusterEnv{t: t, dir: t.TempDir()}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CHAT_MYSQL=") && !strings.HasPrefix(kv, "CHAT_REDIS=") && !strings.HasPrefix(kv, "CHAT_CLUSTER_DIR=") {
			ce.env = append(ce.env, kv)
		}
	}
	ce.env = append(ce.env, "CHAT_MYSQL="+dsn, "CHAT_REDIS="+redisAddr)
	t.Cleanup(ce.down)
	start := time.Now()
	up := append([]string{"up", "-n", strconv.Itoa(n), "-d", ce.dir, "-p", "0", "-w", "0"}, o.up...)
	out, err := ce.script(3*time.Minute, append(append(up, "--"), args...)...)
	if err != nil {
		t.Fatalf("scripts/cluster.sh up: %v\n%s", err, out)
	}
	ce.load()
	t.Logf("cluster of %d nodes up in %v, nginx on %s (web %s)", n, time.Since(start).Round(time.Millisecond), ce.front, ce.web)
	return ce
}

// script runs scripts/cluster.sh with the cluster's environment.
func (ce *clusterEnv) script(limit time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{filepath.Join("scripts", "cluster.sh")}, args...)...)
	cmd.Env = ce.env
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// load reads DIR/cluster.env: KEY='VALUE' lines, as a shell would.
func (ce *clusterEnv) load() {
	ce.t.Helper()
	b, err := os.ReadFile(filepath.Join(ce.dir, "cluster.env"))
	if err != nil {
		ce.t.Fatalf("cluster.env: %v", err)
	}
	ce.vars = map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
			v = strings.ReplaceAll(v[1:len(v)-1], `'\''`, `'`)
		}
		ce.vars[k] = v
	}
	n, err := strconv.Atoi(ce.vars["NODES"])
	if err != nil || n < 1 || ce.vars["FRONT"] == "" || ce.vars["WEB_FRONT"] == "" {
		ce.t.Fatalf("cluster.env lacks FRONT, WEB_FRONT or NODES:\n%s", b)
	}
	ce.front, ce.web = ce.vars["FRONT"], ce.vars["WEB_FRONT"]
	ce.nodes = ce.nodes[:0]
	for i := 1; i <= n; i++ {
		p := fmt.Sprintf("NODE%d_", i)
		nd := clusterNode{name: ce.vars[p+"NAME"], addr: ce.vars[p+"ADDR"], web: ce.vars[p+"WEB"], admin: ce.vars[p+"ADMIN"]}
		if nd.addr == "" || nd.web == "" || nd.admin == "" {
			ce.t.Fatalf("cluster.env lacks %sADDR, %sWEB or %sADMIN:\n%s", p, p, p, b)
		}
		ce.nodes = append(ce.nodes, nd)
	}
}

func (ce *clusterEnv) down() {
	if ce.t.Failed() {
		ce.dumpLogs()
	}
	if out, err := ce.script(2*time.Minute, "down", "-d", ce.dir); err != nil {
		ce.t.Errorf("scripts/cluster.sh down: %v\n%s", err, out)
	}
}

// dumpLogs shows the tails of the nodes' and nginx's logs.
func (ce *clusterEnv) dumpLogs() {
	names, _ := filepath.Glob(filepath.Join(ce.dir, "node*.log"))
	names = append(names, filepath.Join(ce.dir, "nginx-error.log"), filepath.Join(ce.dir, "nginx-web-access.log"))
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(lines) > 25 {
			lines = lines[len(lines)-25:]
		}
		ce.t.Logf("--- tail of %s:\n%s", filepath.Base(name), strings.Join(lines, "\n"))
	}
}

// nginxStatuses counts nginx's proxied sessions by status (200: proxied;
// 502: no node could be connected to), from DIR/nginx-access.log.
func (ce *clusterEnv) nginxStatuses() map[string]int {
	return ce.logStatuses("nginx-access.log")
}

// logStatuses counts the lines of one of nginx's access logs in DIR by
// status: each starts "ADDRESS [TIME] STATUS".
func (ce *clusterEnv) logStatuses(name string) map[string]int {
	out := map[string]int{}
	b, _ := os.ReadFile(filepath.Join(ce.dir, name))
	for _, line := range strings.Split(string(b), "\n") {
		// 127.0.0.1 [27/Nov/2026:23:14:31 +0000] 200 -> 127.0.0.1:22631 ...
		if _, rest, ok := strings.Cut(line, "] "); ok {
			status, _, _ := strings.Cut(rest, " ")
			out[status]++
		}
	}
	return out
}

// stopNode stops node i (1-based): SIGTERM, or SIGKILL when kill is set.
func (ce *clusterEnv) stopNode(i int, kill bool) time.Duration {
	ce.t.Helper()
	args := []string{"stop-node", strconv.Itoa(i), "-d", ce.dir}
	if kill {
		args = append(args, "--kill")
	}
	start := time.Now()
	if out, err := ce.script(time.Minute, args...); err != nil {
		ce.t.Fatalf("scripts/cluster.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return time.Since(start)
}

// startNode starts node i again (same name, same ports) and waits for /healthz.
func (ce *clusterEnv) startNode(i int) time.Duration {
	ce.t.Helper()
	start := time.Now()
	if out, err := ce.script(2*time.Minute, "start-node", strconv.Itoa(i), "-d", ce.dir); err != nil {
		ce.t.Fatalf("scripts/cluster.sh start-node %d: %v\n%s", i, err, out)
	}
	return time.Since(start)
}

// clusterWaitPush returns the first push of type typ for which match is
// true, from those kept or those still to come, keeping the others.
func clusterWaitPush(t testing.TB, c *testClient, typ string, match func(frame) bool, within time.Duration) frame {
	t.Helper()
	for i, f := range c.pushes {
		if f.str("type") == typ && match(f) {
			c.pushes = append(c.pushes[:i], c.pushes[i+1:]...)
			return f
		}
	}
	deadline := time.Now().Add(within)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("no matching %s push within %v (kept: %v)", typ, within, c.pushes)
		}
		f := c.next(left)
		if _, isReply := f["rid"]; !isReply && f.str("type") == typ && match(f) {
			return f
		}
		c.pushes = append(c.pushes, f)
	}
}

// clusterCountPushes counts the pushes of type typ matching match that are
// kept or arrive within d (and removes them).
func clusterCountPushes(c *testClient, typ string, match func(frame) bool, d time.Duration) int {
	n := 0
	kept := c.pushes[:0]
	for _, f := range c.pushes {
		if f.str("type") == typ && match(f) {
			n++
		} else {
			kept = append(kept, f)
		}
	}
	c.pushes = kept
	deadline := time.After(d)
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				return n
			}
			if _, isReply := f["rid"]; !isReply && f.str("type") == typ && match(f) {
				n++
			} else {
				c.pushes = append(c.pushes, f)
			}
		case <-deadline:
			return n
		}
	}
}

func clusterMsgID(id int64) func(frame) bool {
	return func(f frame) bool { return f.obj("message").num("id") == id }
}

func clusterUserIs(key string, id int64) func(frame) bool {
	return func(f frame) bool { return f.obj(key).num("id") == id }
}

// clusterOnlineFlag returns the user object's "online" and whether it was there.
func clusterOnlineFlag(u frame) (online, present bool) {
	online, present = u["online"].(bool)
	return
}

// clusterOnlineIDs returns the ids an `online` reply lists, and its total.
func clusterOnlineIDs(f frame) (map[int64]int, int64) {
	ids := map[int64]int{}
	for _, u := range f.list("users") {
		ids[u.num("id")]++
	}
	return ids, f.num("total")
}

func clusterRegister(t testing.TB, c *testClient, prefix string) int64 {
	t.Helper()
	return c.must("register", map[string]any{"name": uniqueName(prefix), "password": testPassword}).obj("user").num("id")
}

// TestClusterCrossNode: everything a user sees of another user works the
// same whichever nodes the two are on.
func TestClusterCrossNode(t *testing.T) {
	ce := clusterUp(t, 3, clusterOpts{})
	n1, n2, n3 := ce.nodes[0].addr, ce.nodes[1].addr, ce.nodes[2].addr
	const within = 5 * time.Second

	a := newUser(t, n1, "xa")
	b := newUser(t, n2, "xb")
	c := newUser(t, n3, "xc")

	// friend_request and friend_added reach the other side on another node.
	befriend(t, a, b)
	befriend(t, a, c)

	// Private chats in every direction, pushed live.
	for _, p := range []struct{ from, to *testClient }{{a, b}, {b, c}, {c, a}, {b, a}, {c, b}, {a, c}} {
		text := fmt.Sprintf("from %d to %d", p.from.user, p.to.user)
		m := p.from.must("chat", map[string]any{"to": p.to.user, "text": text}).obj("message")
		got := clusterWaitPush(t, p.to, "message", clusterMsgID(m.num("id")), within).obj("message")
		if got.str("text") != text || got.num("from") != p.from.user || got.num("to") != p.to.user {
			t.Fatalf("pushed %v, sent %v", got, m)
		}
	}

	// online lists the users of every node; whois knows who is online where.
	ids, total := clusterOnlineIDs(b.must("online", nil))
	if total != 3 || len(ids) != 3 || ids[a.user] != 1 || ids[b.user] != 1 || ids[c.user] != 1 {
		t.Fatalf("online from node2: total %d, users %v; want a, b, c (%d, %d, %d) once each", total, ids, a.user, b.user, c.user)
	}
	for _, who := range []*testClient{a, b} {
		u := c.must("whois", map[string]any{"id": who.user}).obj("user")
		if on, ok := clusterOnlineFlag(u); !ok || !on {
			t.Fatalf("whois from node3 of a user online elsewhere: %v", u)
		}
	}
	offline := clusterRegister(t, a, "xoff")
	if u := c.must("whois", map[string]any{"id": offline}).obj("user"); func() bool { on, ok := clusterOnlineFlag(u); return !ok || on }() {
		t.Fatalf("whois of a user who never logged in: %v, want online false", u)
	}

	// Presence across nodes: b (node2) goes and comes back on node3; a (node1) sees both.
	b.must("logout", nil)
	clusterWaitPush(t, a, "presence", func(f frame) bool {
		on, ok := clusterOnlineFlag(f.obj("user"))
		return f.obj("user").num("id") == b.user && ok && !on
	}, within)
	b2, _ := loginAs(t, n3, b.user)
	clusterWaitPush(t, a, "presence", func(f frame) bool {
		on, ok := clusterOnlineFlag(f.obj("user"))
		return f.obj("user").num("id") == b.user && ok && on
	}, within)
	b = b2

	// A group with a member on every node: member_joined and group chats
	// cross nodes, and each member gets a message exactly once.
	// b moved to node3 above: put c on node2 so that all three nodes still have one.
	c2, _ := loginAs(t, n2, c.user)
	c.closed(within)
	c = c2
	g := a.must("create_group", map[string]any{"name": uniqueName("xg")}).obj("group").num("id")
	b.must("join_group", map[string]any{"group": g})
	clusterWaitPush(t, a, "member_joined", func(f frame) bool { return f.num("group") == g && f.obj("user").num("id") == b.user }, within)
	c.must("join_group", map[string]any{"group": g})
	for _, who := range []*testClient{a, b} {
		clusterWaitPush(t, who, "member_joined", func(f frame) bool { return f.num("group") == g && f.obj("user").num("id") == c.user }, within)
	}
	for _, from := range []*testClient{a, b, c} {
		m := from.must("group_chat", map[string]any{"group": g, "text": fmt.Sprintf("to all from %d", from.user)}).obj("message")
		for _, to := range []*testClient{a, b, c} {
			if to == from {
				continue
			}
			clusterWaitPush(t, to, "message", clusterMsgID(m.num("id")), within)
		}
		for _, to := range []*testClient{a, b, c} {
			if n := clusterCountPushes(to, "message", clusterMsgID(m.num("id")), 300*time.Millisecond); n != 0 {
				t.Fatalf("user %d got group message %d %d more time(s) (sender %d)", to.user, m.num("id"), n, from.user)
			}
		}
	}

	// A second login on another node kicks the first session, without any
	// presence flapping for the user's friends.
	k := newUser(t, n1, "xk")
	befriend(t, a, k)
	a.quiet("presence", 300*time.Millisecond)
	k2, _ := loginAs(t, n2, k.user)
	got := k.closed(within)
	kicked := false
	for _, f := range got {
		if f.str("type") == "kicked" {
			kicked = true
		}
	}
	if !kicked {
		t.Fatalf("the session on node1 was closed without a kicked push: %v", got)
	}
	a.quiet("presence", time.Second)
	ids, total = clusterOnlineIDs(a.must("online", nil))
	if ids[k.user] != 1 || total != 4 {
		t.Fatalf("online after the kick: total %d, users %v; want 4 with %d once", total, ids, k.user)
	}
	m := a.must("chat", map[string]any{"to": k.user, "text": "to the new session"}).obj("message")
	clusterWaitPush(t, k2, "message", clusterMsgID(m.num("id")), within)

	// Through nginx, too.
	f := newUser(t, ce.front, "xf")
	m = f.must("chat", map[string]any{"to": a.user, "text": "via nginx"}).obj("message")
	clusterWaitPush(t, a, "message", clusterMsgID(m.num("id")), within)
	m = a.must("chat", map[string]any{"to": f.user, "text": "back via nginx"}).obj("message")
	clusterWaitPush(t, f, "message", clusterMsgID(m.num("id")), within)
	if _, total := clusterOnlineIDs(f.must("online", nil)); total != 5 {
		t.Fatalf("online through nginx: total %d, want 5", total)
	}
}

// --- traffic: senders and recipients that survive node deaths ---------------

// clusterLogin dials addr and logs user id in.
func clusterLogin(addr string, id int64, onPush func(frame)) (*wireConn, error) {
	return clusterLoginDevice(addr, id, "", onPush)
}

// clusterLoginDevice logs in on device ("": none, as a version 1 client).
func clusterLoginDevice(addr string, id int64, device string, onPush func(frame)) (*wireConn, error) {
	c, err := dialWire(addr, 4096)
	if err != nil {
		return nil, err
	}
	fields := map[string]any{"id": id, "password": testPassword}
	if device != "" {
		fields["device"] = device
	}
	f, err := c.call("login", fields, 10*time.Second, onPush)
	if err == nil && !f.ok() {
		err = fmt.Errorf("login: %s", f.code())
	}
	if err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

type clusterSender struct {
	name         string
	id           int64
	first, again string // the address of the first connection, and of every later one
	to           int    // index of the recipient
}

type clusterRecipient struct {
	id           int64
	first, again string
	devices      []string            // the names of its sessions' devices, one session each
	firsts       []string            // each device's first address
	logins       int                 // successful logins
	got          map[int64]int       // message id -> pushes received, on any device
	seen         []map[int64]bool    // per device: message ids received
	at           map[int64]time.Time // message id -> first received
	texts        map[string]int64    // text (the sender's cid) -> message id
}

type clusterAcked struct {
	to  int // recipient index
	cid string
	at  time.Time
}

// clusterTraffic runs senders, each sending numbered chats to its recipient
// with a cid per message and retrying with the same cid (after a reconnect,
// if need be) until the reply is ok; and recipients that record every
// message push, ack it, and reconnect and log in again whenever their
// connection ends.
type clusterTraffic struct {
	every      time.Duration // between one sender's messages
	senders    []*clusterSender
	recipients []*clusterRecipient
	stop       chan struct{} // senders
	rstop      chan struct{} // recipients
	wg, rwg    sync.WaitGroup

	mu          sync.Mutex // guards the fields below and the recipients' maps
	acked       map[int64]clusterAcked
	counts      map[string]int // events: reconnects, error codes, shutdown pushes...
	duplicates  int            // pushes of a message id the recipient had already
	storedTwice int            // one cid stored as two messages
	misrouted   int            // a message pushed to a user it is not addressed to
}

func newClusterTraffic(every time.Duration) *clusterTraffic {
	return &clusterTraffic{every: every, stop: make(chan struct{}), rstop: make(chan struct{}),
		acked: map[int64]clusterAcked{}, counts: map[string]int{}}
}

func (tr *clusterTraffic) addRecipient(id int64, first, again string) int {
	return tr.addRecipientDevices(id, again, map[string]string{"": first})
}

// addRecipientDevices adds a recipient logged in on several devices at
// once, each first through its address in firsts (device -> address).
func (tr *clusterTraffic) addRecipientDevices(id int64, again string, firsts map[string]string) int {
	r := &clusterRecipient{id: id, again: again,
		got: map[int64]int{}, at: map[int64]time.Time{}, texts: map[string]int64{}}
	for _, d := range slices.Sorted(maps.Keys(firsts)) {
		r.devices = append(r.devices, d)
		r.firsts = append(r.firsts, firsts[d])
		r.seen = append(r.seen, map[int64]bool{})
	}
	r.first = r.firsts[0]
	tr.recipients = append(tr.recipients, r)
	return len(tr.recipients) - 1
}

func (tr *clusterTraffic) addSender(id int64, first, again string, to int) {
	tr.senders = append(tr.senders, &clusterSender{name: fmt.Sprintf("s%d", id), id: id, first: first, again: again, to: to})
}

func (tr *clusterTraffic) count(what string, n int) {
	tr.mu.Lock()
	tr.counts[what] += n
	tr.mu.Unlock()
}

func (tr *clusterTraffic) start() {
	for _, r := range tr.recipients {
		for d := range r.devices {
			tr.rwg.Add(1)
			go tr.runRecipient(r, d)
		}
	}
	// the recipients log in first, so that the first messages are live
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		tr.mu.Lock()
		all := true
		for _, r := range tr.recipients {
			all = all && r.logins >= len(r.devices)
		}
		tr.mu.Unlock()
		if all {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, s := range tr.senders {
		tr.wg.Add(1)
		go tr.runSender(s)
	}
}

func (tr *clusterTraffic) notePush(who string) func(frame) {
	return func(f frame) {
		switch typ := f.str("type"); typ {
		case "shutdown", "kicked":
			tr.count(who+" "+typ+" pushes", 1)
		}
	}
}

func (tr *clusterTraffic) runSender(s *clusterSender) {
	defer tr.wg.Done()
	var c *wireConn
	defer func() {
		if c != nil {
			c.close()
		}
	}()
	addr := s.first
	onPush := tr.notePush("sender")
	connected := false
	for seq := 1; ; seq++ {
		select {
		case <-tr.stop:
			return
		default:
		}
		cid := fmt.Sprintf("%s-%d", s.name, seq)
		for attempt := 0; ; attempt++ {
			if attempt > 0 {
				select {
				case <-tr.stop:
					return // this one is not acknowledged: nothing is expected of it
				case <-time.After(time.Duration(min(attempt, 10)) * 50 * time.Millisecond):
				}
				tr.count("sender retries", 1)
			}
			if c == nil {
				var err error
				c, err = clusterLogin(addr, s.id, onPush)
				addr = s.again
				if err != nil {
					tr.count("sender login failed: "+clusterErrKind(err), 1)
					c = nil
					continue
				}
				if connected {
					tr.count("sender reconnects", 1)
				}
				connected = true
			}
			f, err := c.call("chat", map[string]any{"to": tr.recipients[s.to].id, "text": cid, "cid": cid}, 10*time.Second, onPush)
			if err != nil {
				tr.count("sender connection lost: "+clusterErrKind(err), 1)
				c.close()
				c = nil
				continue
			}
			if !f.ok() {
				tr.count("chat error "+f.code(), 1)
				continue
			}
			m := f.obj("message")
			id := m.num("id")
			tr.mu.Lock()
			if m.num("to") != tr.recipients[s.to].id || m.str("text") != cid {
				tr.counts["chat reply with a wrong message"]++
			}
			tr.acked[id] = clusterAcked{to: s.to, cid: cid, at: time.Now()}
			tr.mu.Unlock()
			break
		}
		select {
		case <-tr.stop:
			return
		case <-time.After(tr.every):
		}
	}
}

// clusterErrKind shortens an error to what can be counted.
func clusterErrKind(err error) string {
	s := err.Error()
	switch {
	case errors.Is(err, errConnClosed):
		return "closed"
	case strings.Contains(s, "refused"):
		return "refused"
	case strings.Contains(s, "reset"):
		return "reset"
	case strings.Contains(s, "broken pipe"):
		return "broken pipe"
	case strings.Contains(s, "within"):
		return "timeout"
	case strings.HasPrefix(s, "login: "):
		return s
	}
	return "other"
}

func (tr *clusterTraffic) runRecipient(r *clusterRecipient, dev int) {
	defer tr.rwg.Done()
	addr := r.firsts[dev]
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			select {
			case <-tr.rstop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
		select {
		case <-tr.rstop:
			return
		default:
		}
		var pending []int64
		onPush := func(f frame) { pending = tr.received(r, dev, f, pending) }
		c, err := clusterLoginDevice(addr, r.id, r.devices[dev], onPush)
		addr = r.again
		if err != nil {
			tr.count("recipient login failed: "+clusterErrKind(err), 1)
			continue
		}
		tr.mu.Lock()
		r.logins++
		tr.mu.Unlock()
		tr.serveRecipient(r, dev, c, pending)
		c.close()
	}
}

// received records one frame for recipient r on its device dev (-1: a
// session apart, the one that fetches a backlog at the end); message ids to
// ack go to pending. A duplicate is a message a device had already: each
// of a user's sessions gets every message live.
func (tr *clusterTraffic) received(r *clusterRecipient, dev int, f frame, pending []int64) []int64 {
	switch f.str("type") {
	case "message":
		m := f.obj("message")
		id := m.num("id")
		tr.mu.Lock()
		r.got[id]++
		if dev >= 0 && r.seen[dev][id] || dev < 0 && r.got[id] > 1 {
			tr.duplicates++
		}
		if dev >= 0 {
			r.seen[dev][id] = true
		}
		if r.got[id] == 1 {
			r.at[id] = time.Now()
		}
		if m.num("to") != r.id {
			tr.misrouted++
		}
		if prev, ok := r.texts[m.str("text")]; ok && prev != id {
			tr.storedTwice++
		} else {
			r.texts[m.str("text")] = id
		}
		tr.mu.Unlock()
		return append(pending, id)
	case "shutdown", "kicked":
		tr.count("recipient "+f.str("type")+" pushes", 1)
	}
	return pending
}

func (tr *clusterTraffic) serveRecipient(r *clusterRecipient, dev int, c *wireConn, pending []int64) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	lastSent := time.Now()
	for {
		select {
		case <-tr.rstop:
			return
		case f, ok := <-c.frames:
			if !ok {
				tr.count("recipient connection lost", 1)
				return
			}
			if _, isReply := f["rid"]; isReply {
				if !f.ok() {
					tr.count(f.str("type")+" error "+f.code(), 1)
				}
				continue
			}
			pending = tr.received(r, dev, f, pending)
		case <-tick.C:
			var err error
			switch {
			case len(pending) > 0:
				_, err = c.send("ack", map[string]any{"ids": pending})
				pending, lastSent = nil, time.Now()
			case time.Since(lastSent) > 20*time.Second:
				_, err = c.send("ping", nil)
				lastSent = time.Now()
			}
			if err != nil {
				tr.count("recipient connection lost", 1)
				return
			}
		}
	}
}

// missing returns the acknowledged messages (acked before `before`, if
// before is not zero) that their recipient has not received.
func (tr *clusterTraffic) missing(before time.Time) []int64 {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []int64
	for id, a := range tr.acked {
		if !before.IsZero() && !a.at.Before(before) {
			continue
		}
		if tr.recipients[a.to].got[id] == 0 {
			out = append(out, id)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// waitDelivered waits until every message acknowledged before `before` has
// reached its recipient; it returns how long that took, and what is still missing.
func (tr *clusterTraffic) waitDelivered(before time.Time, within time.Duration) (time.Duration, []int64) {
	start := time.Now()
	for {
		miss := tr.missing(before)
		if len(miss) == 0 || time.Since(start) > within {
			return time.Since(start), miss
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// clusterResult is what a traffic run delivered.
type clusterResult struct {
	acked       int     // chats with an ok reply
	missed      []int64 // the ids of missedLive
	missedLive  int     // not received while the recipients stayed connected...
	recovered   int     // ...but received at a fresh login
	lost        int     // never received
	duplicates  int
	storedTwice int
	misrouted   int
	logins      int // recipient logins after their first
	counts      map[string]int
}

func (r clusterResult) String() string {
	keys := make([]string, 0, len(r.counts))
	for k := range r.counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "acked %d, lost %d, missed live %d (recovered at a new login %d), duplicate pushes %d, stored twice %d, misrouted %d, recipient re-logins %d",
		r.acked, r.lost, r.missedLive, r.recovered, r.duplicates, r.storedTwice, r.misrouted, r.logins)
	for _, k := range keys {
		fmt.Fprintf(&b, "; %s %d", k, r.counts[k])
	}
	return b.String()
}

// finish stops the senders, gives the recipients `within` to receive every
// acknowledged message while connected, then stops them and logs each
// recipient still missing something in again, to tell a late message from a
// lost one.
func (tr *clusterTraffic) finish(t testing.TB, within time.Duration, front string) clusterResult {
	t.Helper()
	close(tr.stop)
	tr.wg.Wait()
	took, miss := tr.waitDelivered(time.Time{}, within)
	t.Logf("after the senders stopped, every acknowledged message arrived within %v (%d missing)", took.Round(time.Millisecond), len(miss))
	close(tr.rstop)
	tr.rwg.Wait()

	res := clusterResult{missed: miss, missedLive: len(miss)}
	if len(miss) > 0 {
		byRecipient := map[int][]int64{}
		tr.mu.Lock()
		for i, id := range miss {
			a := tr.acked[id]
			byRecipient[a.to] = append(byRecipient[a.to], id)
			if i < 10 {
				t.Logf("missed live: message %d (cid %s) to user %d, acknowledged at %s", id, a.cid, tr.recipients[a.to].id, a.at.Format("15:04:05.000"))
			}
		}
		tr.mu.Unlock()
		for i, ids := range byRecipient {
			r := tr.recipients[i]
			var pending []int64
			onPush := func(f frame) { pending = tr.received(r, -1, f, pending) }
			c, err := clusterLogin(front, r.id, onPush)
			if err != nil {
				t.Errorf("login of recipient %d to fetch its backlog: %v", r.id, err)
				continue
			}
			deadline := time.After(10 * time.Second)
		collect:
			for {
				tr.mu.Lock()
				left := 0
				for _, id := range ids {
					if r.got[id] == 0 {
						left++
					}
				}
				tr.mu.Unlock()
				if left == 0 {
					break
				}
				select {
				case f, ok := <-c.frames:
					if !ok {
						break collect
					}
					pending = tr.received(r, -1, f, pending)
				case <-deadline:
					break collect
				}
			}
			c.close()
		}
	}
	lost := tr.missing(time.Time{})
	tr.mu.Lock()
	defer tr.mu.Unlock()
	res.acked = len(tr.acked)
	res.lost = len(lost)
	res.recovered = res.missedLive - res.lost
	res.duplicates, res.storedTwice, res.misrouted = tr.duplicates, tr.storedTwice, tr.misrouted
	for _, r := range tr.recipients {
		res.logins += r.logins - 1
	}
	res.counts = map[string]int{}
	for k, v := range tr.counts {
		res.counts[k] = v
	}
	if len(lost) > 0 {
		for _, id := range clusterFirst(lost, 20) {
			a := tr.acked[id]
			t.Logf("lost: message %d (cid %s) to user %d, acknowledged at %s", id, a.cid, tr.recipients[a.to].id, a.at.Format("15:04:05.000"))
		}
	}
	return res
}

func clusterFirst(ids []int64, n int) []int64 {
	if len(ids) > n {
		return ids[:n]
	}
	return ids
}

// check fails the test for anything lost, stored twice or misrouted, and
// for a message an online recipient did not get without logging in again.
func (r clusterResult) check(t testing.TB) {
	t.Helper()
	t.Logf("result: %v", r)
	if r.acked == 0 {
		t.Errorf("no chat was acknowledged")
	}
	if r.lost > 0 {
		t.Errorf("%d acknowledged message(s) lost", r.lost)
	}
	if r.missedLive > 0 {
		t.Errorf("%d acknowledged message(s) did not reach their online recipient (%d of them came at a new login)", r.missedLive, r.recovered)
	}
	if r.storedTwice > 0 {
		t.Errorf("%d message(s) stored twice under one cid", r.storedTwice)
	}
	if r.misrouted > 0 || r.counts["chat reply with a wrong message"] > 0 {
		t.Errorf("%d push(es) to the wrong user, %d chat replies with another message", r.misrouted, r.counts["chat reply with a wrong message"])
	}
}

// clusterUsers registers n users through addr and returns their ids.
func clusterUsers(t testing.TB, addr, prefix string, n int) []int64 {
	t.Helper()
	c := dial(t, addr)
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = clusterRegister(t, c, prefix)
	}
	return ids
}

// TestClusterKillNode: node1 dies (SIGKILL) under traffic. Its senders
// reconnect through nginx and retry with the same cid; nothing acknowledged
// is lost; its users go offline everywhere within 30 s and can log in again
// at once on another node.
func TestClusterKillNode(t *testing.T) {
	ce := clusterUp(t, 3, clusterOpts{})
	n1, n2, n3 := ce.nodes[0].addr, ce.nodes[1].addr, ce.nodes[2].addr

	// Idle users on node1, and a watcher on node2 who is friends with one of them.
	watcher := newUser(t, n2, "kw")
	var victims []*testClient
	for range 3 {
		victims = append(victims, newUser(t, n1, "kv"))
	}
	befriend(t, watcher, victims[1])

	tr := newClusterTraffic(20 * time.Millisecond)
	ids := clusterUsers(t, n2, "kt", 12)
	// Recipients, each on two devices at once: phones two on node2, two
	// on node3, two through nginx (anywhere); laptops three on node1 (they
	// will have to move), one on each other node, one through nginx.
	laptops := []string{n1, n1, n3, n2, n1, ce.front}
	for i, phone := range []string{n2, n3, n2, n3, ce.front, ce.front} {
		tr.addRecipientDevices(ids[i], ce.front, map[string]string{"phone": phone, "laptop": laptops[i]})
	}
	// Senders: four on node1 (they will have to move), two through nginx.
	for i, first := range []string{n1, n1, n1, n1, ce.front, ce.front} {
		tr.addSender(ids[6+i], first, ce.front, i)
	}
	tr.start()
	time.Sleep(3 * time.Second)

	took := ce.stopNode(1, true)
	killed := time.Now()
	t.Logf("node1 killed (SIGKILL) in %v", took.Round(time.Millisecond))

	// A user of the dead node logs in again at once on another node.
	again := dial(t, n3)
	start := time.Now()
	f := again.req("login", map[string]any{"id": victims[0].user, "password": testPassword})
	if !f.ok() {
		t.Fatalf("login on node3 of a user of the dead node: %v", f)
	}
	relogin := time.Since(start)
	t.Logf("a user of the dead node logged in again on node3 in %v", relogin.Round(time.Millisecond))
	if relogin > 5*time.Second {
		t.Errorf("logging in again took %v, want at once", relogin)
	}

	time.Sleep(5 * time.Second) // the senders move to other nodes and go on
	res := tr.finish(t, 15*time.Second, ce.front)
	res.check(t)
	// Each device got what came while it was connected; a laptop that had
	// to move misses what its phone acked meanwhile, and catches up from
	// history, as a client would.
	tr.mu.Lock()
	for _, r := range tr.recipients {
		for d, seen := range r.seen {
			t.Logf("user %d's %s got %d of %d messages", r.id, r.devices[d], len(seen), len(r.got))
		}
	}
	tr.mu.Unlock()
	if res.counts["sender reconnects"] < 4 {
		t.Errorf("%d sender reconnects, want at least the 4 senders of node1", res.counts["sender reconnects"])
	}

	// The dead node's users go offline everywhere within 30 s, except the
	// one who logged in again.
	var offlineAfter time.Duration
	for {
		ids, _ := clusterOnlineIDs(watcher.must("online", map[string]any{"limit": 1000}))
		if ids[victims[1].user] == 0 && ids[victims[2].user] == 0 {
			offlineAfter = time.Since(killed)
			if ids[victims[0].user] != 1 {
				t.Errorf("the user who logged in again on node3 is not online after node1's users were removed: %v", ids)
			}
			break
		}
		if time.Since(killed) > 30*time.Second {
			t.Fatalf("users of the dead node still online %v after the kill: %v", time.Since(killed).Round(time.Millisecond), ids)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("the dead node's users were offline for node2 %v after the kill", offlineAfter.Round(time.Millisecond))
	u := ce.whois(t, n3, victims[2].user)
	if on, ok := clusterOnlineFlag(u); !ok || on {
		t.Errorf("whois on node3 of a user of the dead node: %v, want online false", u)
	}
	clusterWaitPush(t, watcher, "presence", func(f frame) bool {
		on, ok := clusterOnlineFlag(f.obj("user"))
		return f.obj("user").num("id") == victims[1].user && ok && !on
	}, 5*time.Second)
	if u := ce.whois(t, n2, victims[0].user); func() bool { on, ok := clusterOnlineFlag(u); return !ok || !on }() {
		t.Errorf("whois of the user who logged in again on node3: %v, want online", u)
	}
}

// whois asks about user id on addr, as a fresh user (whois needs a session).
func (ce *clusterEnv) whois(t testing.TB, addr string, id int64) frame {
	t.Helper()
	c := newUser(t, addr, "kq")
	u := c.must("whois", map[string]any{"id": id}).obj("user")
	c.must("logout", nil)
	return u
}

// TestClusterRedisOutage: Redis (a private one) goes away under traffic and
// comes back empty. Clients keep chatting with users on their own node,
// /healthz says 503 while Redis is away, and after it is back every online
// recipient gets what was stored meanwhile without logging in again.
func TestClusterRedisOutage(t *testing.T) {
	clusterGate(t)
	redisAddr, stopRedis, startRedis := privateRedis(t)
	ce := clusterUp(t, 3, clusterOpts{redis: redisAddr})

	tr := newClusterTraffic(20 * time.Millisecond)
	ids := clusterUsers(t, ce.nodes[0].addr, "rt", 12)
	// Pair i: sender on node i; local pairs have the recipient on the same
	// node, cross pairs on the next one. Everyone reconnects to the same node.
	var local []int
	for i := range 3 {
		here, next := ce.nodes[i].addr, ce.nodes[(i+1)%3].addr
		r := tr.addRecipient(ids[4*i], here, here)
		tr.addSender(ids[4*i+1], here, here, r)
		local = append(local, r)
		r = tr.addRecipient(ids[4*i+2], next, next)
		tr.addSender(ids[4*i+3], here, here, r)
	}
	tr.start()
	time.Sleep(2 * time.Second)

	took := stopRedis()
	down := time.Now()
	t.Logf("Redis stopped in %v", took.Round(time.Millisecond))
	t.Logf("/healthz on node1 went 503 %v after Redis stopped", waitHealth(t, ce.nodes[0].admin, 503, 10*time.Second).Round(time.Millisecond))
	time.Sleep(4 * time.Second)

	up := time.Now()
	t.Logf("Redis stopped at %s, started again at %s", down.Format("15:04:05.000"), up.Format("15:04:05.000"))
	took = startRedis()
	t.Logf("Redis was away for %v; started again in %v", up.Sub(down).Round(time.Millisecond), took.Round(time.Millisecond))
	for i, nd := range ce.nodes {
		waitHealth(t, nd.admin, 200, 20*time.Second)
		t.Logf("/healthz on node%d is 200 %v after Redis was started", i+1, time.Since(up).Round(time.Millisecond))
	}
	_, miss := tr.waitDelivered(up, 15*time.Second)
	t.Logf("what was acknowledged before Redis came back had reached every online recipient %v after it was started (%d missing)",
		time.Since(up).Round(time.Millisecond), len(miss))
	if len(miss) > 0 {
		t.Errorf("%d message(s) acknowledged during the outage still not delivered 15 s after Redis came back: %v", len(miss), clusterFirst(miss, 20))
	}

	// Local traffic went on during the outage: chats acknowledged and pushed live.
	tr.mu.Lock()
	for _, ri := range local {
		var acked, live int
		for id, a := range tr.acked {
			if a.to == ri && a.at.After(down) && a.at.Before(up) {
				acked++
				if at, ok := tr.recipients[ri].at[id]; ok && at.Before(up) {
					live++
				}
			}
		}
		t.Logf("local pair to user %d: %d chats acknowledged during the outage, %d of them pushed before Redis was back", tr.recipients[ri].id, acked, live)
		if acked == 0 || live == 0 {
			t.Errorf("local pair to user %d: %d chats acknowledged and %d pushed during the outage; want local traffic to go on", tr.recipients[ri].id, acked, live)
		}
	}
	tr.mu.Unlock()

	// Everybody still connected is online again for the whole cluster.
	q := newUser(t, ce.nodes[1].addr, "rq")
	var total int64
	deadline := time.Now().Add(15 * time.Second)
	for {
		var ids map[int64]int
		ids, total = clusterOnlineIDs(q.must("online", map[string]any{"limit": 1000}))
		if total == 13 && len(ids) == 13 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("online after Redis came back: total %d, want 13 (12 clients and the one asking)", total)
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	time.Sleep(time.Second)
	res := tr.finish(t, 15*time.Second, ce.nodes[0].addr)
	res.check(t)
	if res.logins > 0 {
		t.Errorf("recipients had to log in again %d time(s); the outage should not have closed them", res.logins)
	}
}

// TestClusterRollingRestart: under traffic through nginx, every node in turn
// is stopped gracefully and started again. Clients get `shutdown`,
// reconnect through nginx, and nothing acknowledged is lost.
func TestClusterRollingRestart(t *testing.T) {
	ce := clusterUp(t, 3, clusterOpts{})
	tr := newClusterTraffic(20 * time.Millisecond)
	ids := clusterUsers(t, ce.front, "rr", 12)
	for i := range 6 {
		tr.addRecipient(ids[i], ce.front, ce.front)
	}
	for i := range 6 {
		tr.addSender(ids[6+i], ce.front, ce.front, i)
	}
	tr.start()
	time.Sleep(2 * time.Second)
	for i := 1; i <= len(ce.nodes); i++ {
		stop := ce.stopNode(i, false)
		time.Sleep(500 * time.Millisecond)
		start := ce.startNode(i)
		t.Logf("node%d: graceful stop took %v, start until /healthz 200 %v", i, stop.Round(time.Millisecond), start.Round(time.Millisecond))
		// As README's "Cluster" says: nginx takes a node whose connect was
		// refused out of rotation for fail_timeout (5 s). Stopping the next
		// node sooner can leave nginx with no node it believes alive ("no
		// live upstreams": the client is closed at once, status 502).
		time.Sleep(5500 * time.Millisecond)
	}
	res := tr.finish(t, 15*time.Second, ce.front)
	statuses := ce.nginxStatuses()
	t.Logf("nginx sessions by status: %v", statuses)
	res.check(t)
	if statuses["502"] > 0 {
		t.Errorf("nginx could not place %d connection(s) on any node (status 502) during the rolling restart", statuses["502"])
	}
	if n := res.counts["sender shutdown pushes"] + res.counts["recipient shutdown pushes"]; n == 0 {
		t.Errorf("no client got a shutdown push")
	}
}

// BenchmarkClusterCrossNode: chats whose recipient is on another node (the
// push goes through Redis) against chats whose recipient is on the sender's
// node, in the same three-node cluster: "pipelined" is four sender/recipient
// pairs with up to 16 messages in flight each (throughput), "one-at-a-time"
// one pair sending the next message when the last one arrived (latency).
// Latency is from the sender's write to the recipient's push.
//
//	go test -run '^$' -bench ClusterCrossNode -benchtime 5000x .
func BenchmarkClusterCrossNode(b *testing.B) {
	ce := clusterUp(b, 3, clusterOpts{})
	for _, bc := range []struct {
		name          string
		from, to      int
		pairs, window int
	}{
		{"cross-node/pipelined", 0, 1, 4, 16},
		{"same-node/pipelined", 0, 0, 4, 16},
		{"cross-node/one-at-a-time", 0, 1, 1, 1},
		{"same-node/one-at-a-time", 0, 0, 1, 1},
	} {
		b.Run(bc.name, func(b *testing.B) {
			clusterBenchPairs(b, ce.nodes[bc.from].addr, ce.nodes[bc.to].addr, bc.pairs, bc.window)
		})
	}
}

// clusterBenchPairs runs b.N chats from users on from to users on to:
// pairs sender/recipient pairs, each with up to window messages in flight.
func clusterBenchPairs(b *testing.B, from, to string, pairs, window int) {
	ids := clusterUsers(b, from, "bn", 2*pairs)
	type pair struct {
		s, r  *wireConn
		n     int
		sent  []atomic.Int64 // unix nanos of each message's send
		lat   []time.Duration
		slots chan struct{}
	}
	ps := make([]*pair, pairs)
	for i := range ps {
		s, err := clusterLogin(from, ids[2*i], nil)
		if err != nil {
			b.Fatal(err)
		}
		r, err := clusterLogin(to, ids[2*i+1], nil)
		if err != nil {
			b.Fatal(err)
		}
		defer s.close()
		defer r.close()
		n := b.N / pairs
		if i == 0 {
			n += b.N % pairs
		}
		ps[i] = &pair{s: s, r: r, n: n, sent: make([]atomic.Int64, n), slots: make(chan struct{}, window)}
	}
	var failed atomic.Value
	quit := make(chan struct{})
	var quitOnce sync.Once
	fail := func(msg string) {
		failed.CompareAndSwap(nil, msg)
		quitOnce.Do(func() { close(quit) })
	}
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Add(3)
		go func() { // sender
			defer wg.Done()
			for k := range p.n {
				select {
				case p.slots <- struct{}{}:
				case <-quit:
					return
				}
				p.sent[k].Store(time.Now().UnixNano())
				if _, err := p.s.send("chat", map[string]any{"to": ids[2*i+1], "text": strconv.Itoa(k)}); err != nil {
					fail(err.Error())
					return
				}
			}
		}()
		go func() { // the sender's replies
			defer wg.Done()
			for k := 0; k < p.n; {
				var f frame
				var ok bool
				select {
				case f, ok = <-p.s.frames:
				case <-quit:
					return
				}
				if !ok {
					fail("sender connection closed")
					return
				}
				if _, isReply := f["rid"]; isReply {
					if !f.ok() {
						fail(fmt.Sprintf("chat: %v", f))
						return
					}
					k++
				}
			}
		}()
		go func() { // recipient
			defer wg.Done()
			timeout := time.After(2 * time.Minute)
			for len(p.lat) < p.n {
				select {
				case f, ok := <-p.r.frames:
					if !ok {
						fail("recipient connection closed")
						return
					}
					if f.str("type") != "message" {
						continue
					}
					k, err := strconv.Atoi(f.obj("message").str("text"))
					if err != nil || k < 0 || k >= p.n {
						continue
					}
					p.lat = append(p.lat, time.Duration(time.Now().UnixNano()-p.sent[k].Load()))
					<-p.slots
				case <-timeout:
					fail(fmt.Sprintf("recipient got %d of %d messages in 2 minutes", len(p.lat), p.n))
					return
				case <-quit:
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if v := failed.Load(); v != nil {
		b.Fatal(v)
	}
	var lat []time.Duration
	for _, p := range ps {
		lat = append(lat, p.lat...)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(q float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		i := int(math.Ceil(q*float64(len(lat)))) - 1
		return float64(lat[max(i, 0)].Microseconds()) / 1000
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
