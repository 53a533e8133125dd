package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Metrics are the server's counters, written in the Prometheus text format
// by hand: a few dozen lines instead of a dependency.
type Metrics struct {
	connections      [numTransports]atomic.Int64 // open client connections, by transport
	connectionsTotal [numTransports]atomic.Int64
	sessions         atomic.Int64 // logged-in sessions on this node
	messagesStored   atomic.Int64
	messagesPushed   atomic.Int64 // message pushes queued to recipients
	pushesDropped    atomic.Int64 // pushes discarded when a slow client was closed
	slowClosed       atomic.Int64 // connections closed as too slow
	kicked           atomic.Int64
	storeBatches     atomic.Int64
	storeBatched     atomic.Int64 // items over all batches
	redisPublished   atomic.Int64 // envelopes published to other nodes
	redisReceived    atomic.Int64 // envelopes received from other nodes
	redisErrors      atomic.Int64
	redisDropped     atomic.Int64 // pushes not sent while Redis was out of reach
	redisReconnects  atomic.Int64
	redisSubscribed  atomic.Int64 // 1 while this node's channel is subscribed
	refusedMaxConns  atomic.Int64 // connections closed at accept: -max-conns reached
	refusedPerIP     atomic.Int64 // connections closed at accept: -max-conns-per-ip reached
	loginTimeouts    atomic.Int64 // connections closed for not logging in within -login-timeout
	sendBufferWaits  atomic.Int64 // times a reader or backlog streamer waited for -send-buffer room
	historyShrunk    atomic.Int64 // history replies cut to fit -send-buffer
	passwordHashes   atomic.Int64 // bcrypt operations done
	hashing          atomic.Int64 // bcrypt operations running
	loginFailures    atomic.Int64 // logins answered bad_credentials
	throttled        atomic.Int64 // logins and registers answered rate_limited by a throttle
	requests         counterVec   // by type
	errors           counterVec   // by type and code
	storeLatency     histogramVec // by op
}

func newMetrics() *Metrics {
	return &Metrics{
		requests:     counterVec{labels: []string{"type"}},
		errors:       counterVec{labels: []string{"type", "code"}},
		storeLatency: histogramVec{label: "op", buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}},
	}
}

// counterVec is a counter per label set.
type counterVec struct {
	labels []string
	mu     sync.Mutex // guards values
	values map[string]*atomic.Int64
}

func (c *counterVec) inc(values ...string) {
	key := strings.Join(values, "\x00")
	c.mu.Lock()
	v := c.values[key]
	if v == nil {
		if c.values == nil {
			c.values = map[string]*atomic.Int64{}
		}
		v = new(atomic.Int64)
		c.values[key] = v
	}
	c.mu.Unlock()
	v.Add(1)
}

func (c *counterVec) write(w io.Writer, name, help string) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n", name, help, name)
	c.mu.Lock()
	keys := make([]string, 0, len(c.values))
	for k := range c.values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		vals := strings.Split(k, "\x00")
		pairs := make([]string, len(vals))
		for i, v := range vals {
			pairs[i] = fmt.Sprintf("%s=%q", c.labels[i], v)
		}
		fmt.Fprintf(w, "%s{%s} %d\n", name, strings.Join(pairs, ","), c.values[k].Load())
	}
	c.mu.Unlock()
}

// histogramVec is a latency histogram per value of one label.
type histogramVec struct {
	label   string
	buckets []float64 // upper bounds in seconds
	mu      sync.Mutex
	hists   map[string]*histogram
}

type histogram struct {
	counts []uint64 // per bucket, not cumulative; last is +Inf
	sum    float64
	n      uint64
}

func (h *histogramVec) observe(value string, d time.Duration) {
	sec := d.Seconds()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.hists == nil {
		h.hists = map[string]*histogram{}
	}
	x := h.hists[value]
	if x == nil {
		x = &histogram{counts: make([]uint64, len(h.buckets)+1)}
		h.hists[value] = x
	}
	i := sort.SearchFloat64s(h.buckets, sec)
	x.counts[i]++
	x.sum += sec
	x.n++
}

func (h *histogramVec) write(w io.Writer, name, help string) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name)
	h.mu.Lock()
	defer h.mu.Unlock()
	keys := make([]string, 0, len(h.hists))
	for k := range h.hists {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		x := h.hists[k]
		var cum uint64
		for i, b := range h.buckets {
			cum += x.counts[i]
			fmt.Fprintf(w, "%s_bucket{%s=%q,le=%q} %d\n", name, h.label, k, formatFloat(b), cum)
		}
		fmt.Fprintf(w, "%s_bucket{%s=%q,le=\"+Inf\"} %d\n", name, h.label, k, x.n)
		fmt.Fprintf(w, "%s_sum{%s=%q} %s\n", name, h.label, k, formatFloat(x.sum))
		fmt.Fprintf(w, "%s_count{%s=%q} %d\n", name, h.label, k, x.n)
	}
}

func formatFloat(f float64) string {
	if math.IsInf(f, 1) {
		return "+Inf"
	}
	return fmt.Sprintf("%g", f)
}

// transport is how a client connection reaches the server; the label of
// the connection metrics.
type transport uint8

const (
	transportTCP transport = iota // the client port, TLS or not
	transportWS                   // WebSocket on the web port, https or not
	numTransports
)

func (t transport) String() string {
	if t == transportWS {
		return "ws"
	}
	return "tcp"
}

// refused counts a connection a cap turned away.
func (m *Metrics) refused(why refusal) {
	switch why {
	case refusedMaxConns:
		m.refusedMaxConns.Add(1)
	case refusedMaxConnsPerIP:
		m.refusedPerIP.Add(1)
	}
}

// WritePrometheus writes every metric in the text exposition format.
func (m *Metrics) WritePrometheus(w io.Writer) {
	gauge := func(name, help string, v int64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %d\n", name, help, name, name, v)
	}
	counter := func(name, help string, v int64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", name, help, name, name, v)
	}
	byTransport := func(name, help, typ string, v *[numTransports]atomic.Int64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
		for t := range transport(numTransports) {
			fmt.Fprintf(w, "%s{transport=%q} %d\n", name, t, v[t].Load())
		}
	}
	byTransport("chat_connections", "Open client connections, by transport: tcp (the client port, TLS or not) or ws (WebSocket on the web port).", "gauge", &m.connections)
	byTransport("chat_connections_total", "Client connections accepted, by transport (ws: WebSocket upgrades).", "counter", &m.connectionsTotal)
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n", "chat_connections_refused_total",
		"Connections closed at once at accept by a connection cap, by cap.", "chat_connections_refused_total")
	fmt.Fprintf(w, "chat_connections_refused_total{reason=%q} %d\n", refusedMaxConns, m.refusedMaxConns.Load())
	fmt.Fprintf(w, "chat_connections_refused_total{reason=%q} %d\n", refusedMaxConnsPerIP, m.refusedPerIP.Load())
	counter("chat_login_timeouts_total", "Connections closed for not logging in within -login-timeout.", m.loginTimeouts.Load())
	gauge("chat_sessions", "Logged-in sessions on this node.", m.sessions.Load())
	counter("chat_messages_stored_total", "Messages stored durably.", m.messagesStored.Load())
	counter("chat_messages_pushed_total", "Message pushes queued to recipients.", m.messagesPushed.Load())
	counter("chat_pushes_dropped_total", "Pushes discarded by closing clients too slow to read them (they stay pending).", m.pushesDropped.Load())
	counter("chat_slow_clients_closed_total", "Connections closed as too slow: their unsent pushes passed -send-queue or -send-buffer.", m.slowClosed.Load())
	counter("chat_send_buffer_waits_total", "Times reading a connection (or streaming its backlog) paused until its queue drained under -send-buffer.", m.sendBufferWaits.Load())
	counter("chat_history_shrunk_total", "History replies cut to fit -send-buffer (paging back: the newest messages kept; with after: the oldest).", m.historyShrunk.Load())
	counter("chat_password_hashes_total", "bcrypt operations (register, login, and the stand-in hash of a login with an unknown name).", m.passwordHashes.Load())
	gauge("chat_password_hashing", "bcrypt operations running (at most GOMAXPROCS).", m.hashing.Load())
	counter("chat_login_failures_total", "Logins answered bad_credentials.", m.loginFailures.Load())
	counter("chat_throttled_total", "Logins and registers answered rate_limited by the per-account or per-address throttles.", m.throttled.Load())
	counter("chat_sessions_kicked_total", "Sessions closed by a newer login of the same user.", m.kicked.Load())
	counter("chat_store_batches_total", "Group-commit transactions.", m.storeBatches.Load())
	counter("chat_store_batched_items_total", "Requests carried by group-commit transactions.", m.storeBatched.Load())
	counter("chat_redis_published_total", "Envelopes of pushes published to other nodes (one per node per batch).", m.redisPublished.Load())
	counter("chat_redis_received_total", "Envelopes of pushes received from other nodes.", m.redisReceived.Load())
	counter("chat_redis_errors_total", "Failed Redis operations (publish, heartbeat).", m.redisErrors.Load())
	counter("chat_redis_dropped_total", "Pushes not published while Redis was unreachable (messages among them are pushed again later).", m.redisDropped.Load())
	counter("chat_redis_reconnects_total", "Times the subscription to this node's channel was lost.", m.redisReconnects.Load())
	gauge("chat_redis_subscribed", "1 while this node's Redis channel is subscribed (cluster mode).", m.redisSubscribed.Load())
	m.requests.write(w, "chat_requests_total", "Requests by type.")
	m.errors.write(w, "chat_errors_total", "Failed replies by request type and error code.")
	m.storeLatency.write(w, "chat_store_seconds", "Store operation latency by operation.")
}

// accepted is how many client connections were accepted, on every
// transport.
func (m *Metrics) accepted() (n int64) {
	for t := range transport(numTransports) {
		n += m.connectionsTotal[t].Load()
	}
	return n
}
