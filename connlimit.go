package main

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
)

// refusal is why connLimiter turned a connection away.
type refusal uint8

const (
	admitted refusal = iota
	refusedMaxConns
	refusedMaxConnsPerIP
)

// String is the refusal's metric label.
func (r refusal) String() string {
	switch r {
	case refusedMaxConns:
		return "max_conns"
	case refusedMaxConnsPerIP:
		return "max_conns_per_ip"
	}
	return "admitted"
}

// connLimiter caps the connections held at once: -max-conns in all and
// -max-conns-per-ip from one client address (docs/protocol.md, "Limits and
// abuse"). The accept loop asks it before it starts anything for a new
// connection; the web port asks the same limiter, so that the caps hold for
// both ports together.
//
// The address counts as clientKey says, as in the login throttles: proxies
// (loopback, and -trusted-proxies) only count towards -max-conns.
type connLimiter struct {
	maxConns, maxPerIP int
	proxies            []netip.Prefix // -trusted-proxies
	limitLoopback      bool           // test hook, set before serving: loopback counts per address too
	total              atomic.Int64   // connections held

	mu   sync.Mutex // guards byIP
	byIP map[netip.Prefix]int
}

func newConnLimiter(maxConns, maxPerIP int, proxies []netip.Prefix) *connLimiter {
	return &connLimiter{maxConns: maxConns, maxPerIP: maxPerIP, proxies: proxies, byIP: map[netip.Prefix]int{}}
}

// acquire counts a new connection from addr, or refuses it when a cap is
// reached. The caller must call release exactly once, when the connection
// has ended; a refused connection has no release.
func (l *connLimiter) acquire(addr net.Addr) (release func(), why refusal) {
	if l.total.Add(1) > int64(l.maxConns) {
		l.total.Add(-1)
		return nil, refusedMaxConns
	}
	ip, proxy := clientKey(addr, l.proxies)
	if proxy && !l.limitLoopback {
		return func() { l.total.Add(-1) }, admitted
	}
	l.mu.Lock()
	if l.byIP[ip] >= l.maxPerIP {
		l.mu.Unlock()
		l.total.Add(-1)
		return nil, refusedMaxConnsPerIP
	}
	l.byIP[ip]++
	l.mu.Unlock()
	return func() { l.release(ip) }, admitted
}

func (l *connLimiter) release(ip netip.Prefix) {
	l.mu.Lock()
	if n := l.byIP[ip] - 1; n > 0 {
		l.byIP[ip] = n
	} else {
		delete(l.byIP, ip) // the map holds only addresses with connections
	}
	l.mu.Unlock()
	l.total.Add(-1)
}

// held returns the connections held in all and from addr's address.
func (l *connLimiter) held(addr net.Addr) (total, fromIP int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ip, _ := clientKey(addr, l.proxies)
	return int(l.total.Load()), l.byIP[ip]
}

// clientKey is the key a client address counts under in the per-address
// limits (the connection caps, the login and register throttles): an IPv4
// address, or an IPv6 /64, which one host or home usually holds whole;
// without a zone, IPv4-mapped addresses as IPv4. An address that is not IP
// (a pipe, in tests) is the zero Prefix, one key for all of them.
//
// proxy reports a client that is a proxy: one on this host (loopback: nginx
// in scripts/cluster.sh, or the operator) or one in proxies
// (-trusted-proxies). Its clients are many, not one, so per-address limits
// do not apply to it; limiting each client is the proxy's job then
// (SECURITY.md, "Behind a proxy").
func clientKey(addr net.Addr, proxies []netip.Prefix) (key netip.Prefix, proxy bool) {
	var ap netip.AddrPort
	switch a := addr.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case nil:
		return netip.Prefix{}, false
	default:
		ap, _ = netip.ParseAddrPort(a.String())
	}
	ip := ap.Addr().Unmap().WithZone("")
	if !ip.IsValid() {
		return netip.Prefix{}, false
	}
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	key, _ = ip.Prefix(bits)
	if ip.IsLoopback() {
		return key, true
	}
	for _, p := range proxies {
		if p.Contains(ip) {
			return key, true
		}
	}
	return key, false
}

// filesBesideConns is about how many descriptors a node needs besides its
// client connections: listeners, the database, Redis, the admin port.
const filesBesideConns = 64

// warnFileLimit logs a warning when the process may not open as many files
// as -max-conns needs: past that limit a connection is not even accepted
// (the accept loop backs off), so the cap would never be what refuses.
// (Go raises the soft limit to the hard one at start.)
func warnFileLimit(log *slog.Logger, maxConns int) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return
	}
	if rl.Cur < uint64(maxConns)+filesBesideConns {
		log.Warn("the open-file limit leaves too few files for -max-conns connections and the server's own: lower -max-conns or raise the limit (ulimit -n)",
			"max_conns", maxConns, "open_files", rl.Cur, "wanted", uint64(maxConns)+filesBesideConns)
	}
}

// admit asks the caps for an accepted connection, on either port: past one
// it is closed at once, counted, and ok is false; else release gives its
// place back. An admitted TCP connection sends small frames at once and
// is kept alive.
func (s *Server) admit(nc net.Conn) (release func(), ok bool) {
	release, refused := s.limiter.acquire(nc.RemoteAddr())
	if refused != admitted {
		s.metrics.refused(refused)
		nc.Close()
		return nil, false
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
		tc.SetKeepAlive(true)
	}
	return release, true
}
