package engine

import (
	"sync"
	"sync/atomic"
)

// registry finds open connections by id for Lookup. An id carries a slot in
// its low bits: the connection's socket descriptor plus one. The kernel
// keeps descriptors dense, so a flat table indexed by slot costs one pointer
// per connection (a map entry cost four times that, and a lock per open and
// close) and a lookup is two atomic loads.
//
// A descriptor is reused only after its connection closed, but the new
// connection may open on another loop before the old one's loop has
// cleared the slot; del therefore clears only its own connection, and get
// checks the whole id.
type registry struct {
	mu     sync.Mutex // serializes chunk creation
	chunks [regChunks]atomic.Pointer[regChunk]
}

const (
	slotBits     = 24 // descriptors up to 16.7M; the other 40 bits count opens
	slotMask     = 1<<slotBits - 1
	regChunkBits = 12
	regChunks    = 1 << (slotBits - regChunkBits)
)

type regChunk [1 << regChunkBits]atomic.Pointer[Conn]

// makeID returns a new engine-unique id for a connection in slot (0: none,
// Lookup will not find it). Ids grow with every open, whatever the slot.
func (e *Engine) makeID(slot int) uint64 {
	if slot <= 0 || slot > slotMask {
		slot = 0
	}
	return e.nextID.Add(1)<<slotBits | uint64(slot)
}

// slotOf is the slot of a socket descriptor.
func slotOf(fd int) int { return fd + 1 }

func (r *registry) chunk(slot uint64, create bool) *regChunk {
	i := slot >> regChunkBits
	if ch := r.chunks[i].Load(); ch != nil || !create {
		return ch
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := r.chunks[i].Load()
	if ch == nil {
		ch = new(regChunk)
		r.chunks[i].Store(ch)
	}
	return ch
}

func (r *registry) add(c *Conn) {
	if slot := c.id & slotMask; slot != 0 {
		r.chunk(slot, true)[slot&(1<<regChunkBits-1)].Store(c)
	}
}

func (r *registry) del(c *Conn) {
	if slot := c.id & slotMask; slot != 0 {
		if ch := r.chunk(slot, false); ch != nil {
			ch[slot&(1<<regChunkBits-1)].CompareAndSwap(c, nil)
		}
	}
}

func (r *registry) get(id uint64) *Conn {
	slot := id & slotMask
	if slot == 0 {
		return nil
	}
	ch := r.chunk(slot, false)
	if ch == nil {
		return nil
	}
	if c := ch[slot&(1<<regChunkBits-1)].Load(); c != nil && c.id == id {
		return c
	}
	return nil
}

// each calls fn for every connection in the table until it returns false;
// chunks never made are skipped, so the walk costs the descriptors in use.
func (r *registry) each(fn func(*Conn) bool) {
	for i := range r.chunks {
		ch := r.chunks[i].Load()
		if ch == nil {
			continue
		}
		for j := range ch {
			if c := ch[j].Load(); c != nil && !fn(c) {
				return
			}
		}
	}
}
