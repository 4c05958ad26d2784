package redis

import (
	"slices"
	"sync"

	"github.com/meshfast/meshfast/coord"
)

// OnReconnect registers h to be called after a pub/sub connection came
// back from a loss (coord.Recovery): on a single Redis its one connection,
// on a cluster any master's. A pub/sub connection is the coordinator's
// standing link to each master: it notices a loss at once (a broken read)
// or within WriteTimeout (its keepalive PING unanswered), or, if it stays
// up but stops delivering, within two ProbeIntervals; a master that
// restarted, failed over or was out of reach brings it down either way,
// while the command connections only notice when a call fails. h runs on
// the connection's runner goroutine once its topics are resubscribed, and
// must not block.
func (c *Coordinator) OnReconnect(h coord.ReconnectHandler) (remove func()) {
	return c.reconnects.add(h)
}

// handlers is a list of reconnect handlers; mu is a leaf.
type handlers struct {
	mu     sync.Mutex
	list   []reconnectEntry
	nextID uint64
}

type reconnectEntry struct {
	id uint64
	h  coord.ReconnectHandler
}

func (hs *handlers) add(h coord.ReconnectHandler) (remove func()) {
	if h == nil {
		return func() {}
	}
	hs.mu.Lock()
	hs.nextID++
	id := hs.nextID
	hs.list = append(hs.list, reconnectEntry{id: id, h: h})
	hs.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			hs.mu.Lock()
			hs.list = slices.DeleteFunc(slices.Clone(hs.list), func(e reconnectEntry) bool { return e.id == id })
			hs.mu.Unlock()
		})
	}
}

// fire calls every handler, outside the lock.
func (hs *handlers) fire() {
	hs.mu.Lock()
	list := hs.list
	hs.mu.Unlock()
	for _, e := range list {
		e.h()
	}
}
