package engine

import "sync"

// registry maps connection ids to open connections for Lookup. Sharded so
// opens and closes on different loops rarely meet on one lock; it is not
// touched per message.
type registry struct {
	shards [32]registryShard
}

type registryShard struct {
	mu sync.RWMutex
	m  map[uint64]*Conn
	_  [32]byte
}

func (r *registry) init() {
	for i := range r.shards {
		r.shards[i].m = make(map[uint64]*Conn)
	}
}

func (r *registry) add(c *Conn) {
	s := &r.shards[c.id&31]
	s.mu.Lock()
	s.m[c.id] = c
	s.mu.Unlock()
}

func (r *registry) del(c *Conn) {
	s := &r.shards[c.id&31]
	s.mu.Lock()
	delete(s.m, c.id)
	s.mu.Unlock()
}

func (r *registry) get(id uint64) *Conn {
	s := &r.shards[id&31]
	s.mu.RLock()
	c := s.m[id]
	s.mu.RUnlock()
	return c
}
