package engine

import (
	"net"
	"net/netip"
	"sync"
)

// perIP counts the open TCP connections of each client address, for
// Options.MaxConnectionsPerIP. Accepts happen on every loop at once (with
// ReusePort each loop has its own listener), so the table is shared and
// locked; it is touched twice per connection, at accept and at close, and
// only when the limit is set. An address's entry goes when its last
// connection does, so the table holds only addresses connected now.
type perIP struct {
	mu sync.Mutex
	n  map[netip.Addr]int32
}

// ipOf is the key of a connection's remote address: the IP, with an
// IPv4-mapped IPv6 address counted as the IPv4 address it is.
func ipOf(a net.Addr) (netip.Addr, bool) {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.Addr{}, false
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	return ip.Unmap(), ok
}

// acquire counts one more connection from ip unless max are open; it
// reports whether it did. Any goroutine.
func (p *perIP) acquire(ip netip.Addr, max int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n == nil {
		p.n = make(map[netip.Addr]int32)
	}
	if int(p.n[ip]) >= max {
		return false
	}
	p.n[ip]++
	return true
}

// release uncounts one connection from ip. Any goroutine.
func (p *perIP) release(ip netip.Addr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch n := p.n[ip]; {
	case n > 1:
		p.n[ip] = n - 1
	case n == 1:
		delete(p.n, ip)
	}
}
