package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"chat/internal/wire"
)

const (
	// storeTimeout bounds every database call made for a request, so that a
	// database that hangs turns into "unavailable" replies, not stuck clients.
	storeTimeout = 5 * time.Second
	// batchTimeout bounds one group-commit transaction.
	batchTimeout = 5 * time.Second
)

// Server is one chat node. NewServer builds it; Serve runs it; Shutdown
// drains it.
type Server struct {
	cfg      Config
	log      *slog.Logger
	metrics  *Metrics
	store    *Store
	hub      *hub
	presence Presence
	router   Router
	dir      directory
	cluster  *redisCluster // nil on a single node
	boot     string        // this run of the node, for its heartbeat

	chats *batcher[*chatItem]
	acks  *batcher[*ackItem]

	// uncertain holds ids of messages whose COMMIT failed without an
	// answer: a cid replay that finds one stored routes it, since nobody did.
	uncertain idSet

	dummyOnce sync.Once
	dummy     []byte // bcrypt hash compared against for unknown users

	// abuse is the per-user rate limit, the login and register
	// throttles and the hashing slots (throttle.go); see guard().
	abuse guard

	closing atomic.Bool
	// shutdownPush is the last frame of every connection at a graceful
	// shutdown; only a cluster has another node to go to.
	shutdownPush []byte
	quit         chan struct{} // closed by Shutdown: stops the node's own goroutines
	nextID       atomic.Uint64
	userLocks    userLocks
	limiter      *connLimiter // -max-conns, -max-conns-per-ip
	typing       *typingGate  // drops typing notices over one a second
	// testAfterLoginState, set by tests before serving, runs in a login
	// between its reads and loadSession: where a change made by another
	// user is at its most likely to be lost.
	testAfterLoginState func(user int64)

	mu      sync.Mutex // guards the fields below
	ln      net.Listener
	admin   *http.Server
	web     *http.Server // nil without -web
	webAddr net.Addr
	conns   map[*conn]struct{}
	wg      sync.WaitGroup // serve goroutines
}

// NewServer opens the store and builds a node ready to Serve.
func NewServer(ctx context.Context, cfg Config, log *slog.Logger) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m := newMetrics()
	octx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	store, err := OpenStore(octx, cfg.DB, m)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	h := newHub()
	s := &Server{
		cfg:      cfg,
		log:      log,
		metrics:  m,
		store:    store,
		hub:      h,
		presence: newLocalPresence(),
		router:   localRouter{hub: h},
		conns:    map[*conn]struct{}{},
		limiter:  newConnLimiter(cfg.MaxConns, cfg.MaxConnsPerIP, cfg.TrustedProxies),
		typing:   newTypingGate(),
	}
	s.dir.store = store
	// Session ids must not repeat across restarts of a node: presence in
	// Redis may still name a session of the previous run.
	// A random start makes connection ids unique in the cluster (Push.Except).
	s.nextID.Store(rand.Uint64() >> 2)
	s.boot = strconv.FormatInt(time.Now().UnixNano(), 36)
	if cfg.Redis != "" {
		rc, err := newRedisCluster(s, cfg.Redis, cfg.RedisPrefix)
		if err != nil {
			store.Close()
			return nil, err
		}
		s.cluster, s.presence, s.router = rc, rc, rc
		h.onCount = rc.groupCount
	}
	reason := "the server is shutting down; reconnect later"
	if s.cluster != nil {
		reason = "this node is shutting down; reconnect, to another node if you know one"
	}
	s.shutdownPush = pushFrame("shutdown", struct {
		Reason string `json:"reason"`
	}{reason})
	// One batcher each, on both stores: SQLite has one writer, and on
	// MySQL a second, sharded by sender, no longer paid for its
	// transactions (BENCHMARKS.md, "Without pipelining").
	s.chats = newBatcher(2000, s.storeChats)
	s.acks = newBatcher(2000, s.storeAcks)
	if s.cluster != nil {
		s.cluster.start()
	}
	s.quit = make(chan struct{})
	go s.trimWhenQuiet(quietTrimEvery, s.quit, debug.FreeOSMemory)
	return s, nil
}

// Listen reads the TLS certificate, if any, and binds the client and admin
// addresses. Serve then accepts.
func (s *Server) Listen() error {
	certs, err := s.loadCertificates() // nil without -tls-cert
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.cfg.Listen, err)
	}
	ln = s.clientListener(ln, certs) // TLS with a certificate (tls.go)
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	if s.cfg.Admin != "" {
		aln, err := net.Listen("tcp", s.cfg.Admin)
		if err != nil {
			ln.Close()
			return fmt.Errorf("admin listen %s: %w", s.cfg.Admin, err)
		}
		srv := &http.Server{Handler: s.adminHandler(), ReadHeaderTimeout: 5 * time.Second}
		s.mu.Lock()
		s.admin = srv
		s.mu.Unlock()
		go srv.Serve(aln)
	}
	if s.cfg.Web != "" {
		if err := s.listenWeb(certs); err != nil { // web.go
			ln.Close()
			s.mu.Lock()
			admin := s.admin
			s.mu.Unlock()
			if admin != nil {
				admin.Close()
			}
			return err
		}
	}
	s.logClientPort() // TLS, or a warning for plain text on a reachable address
	s.logWebPort()
	return nil
}

// Addr is the client listener's address (for tests listening on port 0).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ln.Addr()
}

// Serve accepts clients until Shutdown. It returns nil after a shutdown.
func (s *Server) Serve() error {
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()
	warnFileLimit(s.log, s.cfg.MaxConns)
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accept", "err", err, "retry_in", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		backoff = 0
		// Past a connection cap the connection is closed at once: no
		// reply, nothing started for it.
		release, ok := s.admit(nc)
		if !ok {
			continue
		}
		c := newConn(s, nc, s.nextID.Add(1))
		if !s.track(c, transportTCP) {
			nc.Close()
			release()
			return nil
		}
		go func() {
			defer s.wg.Done()
			c.serve()
			release()
			s.untrack(c, transportTCP)
		}()
	}
}

// track registers a new connection, to be served, then untracked, and
// s.wg.Done called. It returns false, and registers nothing, when the
// server is shutting down: the caller closes the connection unserved.
func (s *Server) track(c *conn, t transport) bool {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	s.metrics.connections[t].Add(1)
	s.metrics.connectionsTotal[t].Add(1)
	return true
}

func (s *Server) untrack(c *conn, t transport) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.metrics.connections[t].Add(-1)
}

// Shutdown stops accepting, sends every client the shutdown push after the
// replies to what it already sent, ends every session, stores what is in
// flight and closes the store. It gives up waiting for clients when ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.closing.Swap(true) {
		return nil
	}
	close(s.quit)
	s.mu.Lock()
	if s.ln != nil {
		s.ln.Close()
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	admin, web := s.admin, s.web
	s.mu.Unlock()
	if web != nil {
		// No new connection, and those not upgraded to WebSocket close;
		// the WebSocket ones are among conns.
		web.Close()
	}
	for _, c := range conns {
		c.stopReading()
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("shutdown: clients still draining: %w", ctx.Err())
		for _, c := range conns {
			c.abort()
		}
		<-done
	}
	s.chats.close()
	s.acks.close()
	if s.cluster != nil {
		s.cluster.close() // our users' presence goes at once, not at expiry
	}
	if admin != nil {
		admin.Close()
	}
	return errors.Join(err, s.store.Close())
}

// storeChats is the chat batcher's work: one transaction for the batch,
// then the replies, then routing to the online recipients.
func (s *Server) storeChats(items []*chatItem) {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	s.store.StoreMessages(ctx, items)
	s.metrics.storeBatches.Add(1)
	s.metrics.storeBatched.Add(int64(len(items)))
	// Route first, reply after: once a sender has its ok, the message is
	// queued to every session its recipient has, and a session that logs
	// in later gets it in its backlog, in order, not live ahead of older
	// messages.
	defer func() {
		for _, it := range items {
			close(it.done)
		}
	}()
	for _, it := range items {
		if it.msg.To != 0 && errors.Is(it.err, ErrNoSuchUser) {
			s.dir.markDeleted(it.msg.To, "") // the store found the account deleted
		}
		if it.err != nil && it.uncertain {
			s.uncertain.add(it.msg.ID)
		}
		if it.err != nil || it.dup && !s.uncertain.take(it.msg.ID) {
			continue
		}
		s.metrics.messagesStored.Add(1)
		p := &Push{Kind: pushMessage, Frame: messagePush(&it.msg, false), MsgID: it.msg.ID, At: topicSeq{it.msg.Topic, it.msg.Seq}}
		if it.msg.Group != 0 {
			// Every member's sessions, the sender's other ones included.
			p.Except = it.conn
			s.router.ToGroup(it.msg.Group, 0, p)
			continue
		}
		s.router.ToUser(it.msg.To, p)
		if it.msg.To != it.msg.From {
			// A copy for the sender's other sessions: not pending for them.
			s.router.ToUser(it.msg.From, &Push{Kind: pushPlain, Frame: p.Frame, Except: it.conn})
		}
	}
}

func (s *Server) storeAcks(items []*ackItem) {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	s.store.AckMessages(ctx, items)
	for _, it := range items {
		close(it.done)
	}
}

// pushPresence tells the session's friends that its user came or went.
func (s *Server) pushPresence(sess *session, online bool) {
	p := &Push{Frame: pushFrame("presence", struct {
		User User `json:"user"`
	}{User{ID: sess.user.ID, Name: sess.user.Name, Online: wire.Bool(online)}})}
	for _, f := range sess.friendIDs() {
		s.router.ToUser(f, p)
	}
}

// adminHandler serves /healthz, /metrics and, with -pprof, the profiler
// under /debug/pprof/ (go tool pprof http://ADMIN/debug/pprof/profile).
// Nothing it serves shows a secret: /debug/pprof/cmdline, the command line
// with the -db and -redis passwords on it, is not served even with -pprof.
func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.store.Ping(ctx); err != nil {
			http.Error(w, "database unreachable", http.StatusServiceUnavailable)
			return
		}
		if s.closing.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		if s.cluster != nil && !s.cluster.healthy() {
			http.Error(w, "redis subscription down", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	if s.cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", http.NotFound)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		var buf bytes.Buffer // no metric lock is held while the client reads
		s.metrics.WritePrometheus(&buf)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Write(buf.Bytes())
	})
	return mux
}

// idSet is a small bounded set of ids; the oldest go first when it is full.
type idSet struct {
	mu    sync.Mutex // guards the fields below
	ids   map[int64]bool
	order []int64
}

const maxUncertain = 10000

func (s *idSet) add(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids == nil {
		s.ids = map[int64]bool{}
	}
	if len(s.order) >= maxUncertain {
		delete(s.ids, s.order[0])
		s.order = s.order[1:]
	}
	s.ids[id] = true
	s.order = append(s.order, id)
}

// take reports whether id was in the set, and removes it.
func (s *idSet) take(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ids[id] {
		return false
	}
	delete(s.ids, id)
	return true
}

// redeliverAll brings every local session up to date (resync) and pushes
// it what is pending for it, as at a login. The cluster calls it when a
// node's subscription comes back: pushes published to this node meanwhile
// were lost, and so were those other nodes could not publish. A session
// gets its state before its backlog: a group it joined meanwhile is
// subscribed before the group's messages are looked for.
//
// The resyncs run resyncWorkers at a time, each bounded by storeTimeout on
// its own: a node of many sessions must not send them all to the database
// at once, to time out in its pool's queue. Failures are logged once, with
// their count.
func (s *Server) redeliverAll() {
	conns := s.hub.conns()
	var next, failed atomic.Int64
	var firstErr atomic.Pointer[error]
	var workers sync.WaitGroup
	for range min(resyncWorkers, len(conns)) {
		workers.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(conns); i = int(next.Add(1)) - 1 {
				c := conns[i]
				sess := c.sess.Load()
				if sess == nil {
					continue
				}
				if err := c.resync(sess); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, &err)
				}
				go c.streamBacklog(sess.ctx, sess)
			}
		})
	}
	go func() {
		workers.Wait()
		if n := failed.Load(); n > 0 {
			s.log.Warn("resync after a Redis outage: sessions keep their state until their next login",
				"failed", n, "sessions", len(conns), "err", *firstErr.Load())
		}
	}()
}

// resyncWorkers is how many sessions redeliverAll resyncs at once.
const resyncWorkers = 8

// announceOffline tells the friends of users whose node died that they are
// offline. gone holds "user\x1fname" entries from the cluster's reaper.
func (s *Server) announceOffline(gone []string) {
	for _, g := range gone {
		id, name, _ := strings.Cut(g, sep)
		uid, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		friends, err := s.store.Friends(ctx, uid)
		cancel()
		if err != nil {
			s.log.Warn("friends of a user gone with its node", "user", uid, "err", err)
			continue
		}
		p := &Push{Frame: pushFrame("presence", struct {
			User User `json:"user"`
		}{User{ID: uid, Name: name, Online: wire.Bool(false)}})}
		for _, f := range friends {
			s.router.ToUser(f.ID, p)
		}
	}
}
