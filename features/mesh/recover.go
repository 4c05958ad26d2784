package mesh

import (
	"sync"
	"time"

	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/protocol"
)

// Recovery: a coordinator that lost this node's shared state behind its
// back (Redis restarted, failed over, or was out of reach long enough for
// another node's janitor to remove this one) says so through
// coord.Recovery.OnReconnect. The clients stayed connected all along, and
// only this node knows them, so it writes back what it knows: itself, its
// connections, the metadata it set for them, their rooms (the room
// subscriptions of its connections) and their presence in tracked rooms.
// Every write is idempotent, so a reconnect that lost nothing costs the
// writes and no events: JoinRoom publishes a "join" only for an entry that
// is not present (one that lapsed during the outage, or that a restarted
// Redis forgot). Presence states and what other nodes wrote for these
// connections are not known here and are not restored; channels, records
// and presence subscriptions are the coordinator's pub/sub, which it
// resubscribes itself.

// recoverWorkers is how many connections are re-registered at once: their
// calls share the coordinator's pipeline writes.
const recoverWorkers = 32

// recoverRetry is the first wait before a recovery that failed in part is
// run again (a Redis Cluster answers CLUSTERDOWN for a moment after its
// masters come back, and its masters come back one at a time); it doubles
// up to NodeTTL.
const recoverRetry = 250 * time.Millisecond

func (s *Server) startRecovery() {
	s.recoverKick = make(chan struct{}, 1)
	s.stopRecover = s.co.OnReconnect(s.kickRecovery)
	s.bg.Add(1)
	go s.recoverLoop()
}

// kickRecovery asks recoverLoop for a recovery; it never blocks (the
// coordinator's goroutine calls it).
func (s *Server) kickRecovery() {
	select {
	case s.recoverKick <- struct{}{}:
	default: // one is pending: it will see everything
	}
}

func (s *Server) stopRecovery() { s.stopRecover() }

func (s *Server) recoverLoop() {
	defer s.bg.Done()
	for {
		select {
		case <-s.stop:
			return
		case <-s.recoverKick:
		}
		for delay := recoverRetry; !s.recover(); delay = min(2*delay, s.opts.NodeTTL) {
			t := time.NewTimer(delay)
			select {
			case <-s.stop:
				t.Stop()
				return
			case <-s.recoverKick: // another reconnect: go again now
				t.Stop()
			case <-t.C:
			}
		}
	}
}

// recover writes back the node's state (see above) and reports whether
// every write succeeded.
func (s *Server) recover() bool {
	start := time.Now()
	ctx, cancel := s.ctx()
	err := s.co.RegisterNode(ctx, s.nodeID, s.opts.NodeTTL)
	cancel()
	if err != nil {
		s.log.Warn("mesh: recovery could not register the node; again shortly", "err", err)
		return false
	}
	var conns []*Connection
	s.e.Range(func(ec *engine.Conn) bool {
		if c, ok := ec.Value().(*Connection); ok && c.registered() && !c.closed.Load() {
			conns = append(conns, c)
		}
		return true
	})
	var (
		mu          sync.Mutex
		rooms, fail int
		firstErr    error
		next        int
		wg          sync.WaitGroup
	)
	for range min(recoverWorkers, len(conns)) {
		wg.Go(func() {
			for {
				mu.Lock()
				if next == len(conns) {
					mu.Unlock()
					return
				}
				c := conns[next]
				next++
				mu.Unlock()
				n, err := s.reregister(c)
				mu.Lock()
				rooms += n
				if err != nil {
					fail++
					if firstErr == nil {
						firstErr = err
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if fail > 0 {
		s.log.Warn("mesh: recovery after the coordinator reconnected failed in part; again shortly", "failed", fail, "connections", len(conns), "err", firstErr)
		return false
	}
	s.m.recovery()
	s.log.Info("mesh: recovered after the coordinator reconnected", "connections", len(conns), "rooms", rooms,
		"took", time.Since(start).Round(time.Millisecond))
	return true
}

// reregister writes back one connection's registration, metadata, rooms
// and presence, and returns how many rooms.
func (s *Server) reregister(c *Connection) (int, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	if err := s.co.RegisterConnection(ctx, c.id, s.nodeID); err != nil {
		return 0, err
	}
	var meta []byte
	var rooms []string
	if a := c.active.Load(); a != nil {
		a.mu.Lock()
		meta = a.meta
		for key := range a.subs {
			if key.src == roomSource {
				rooms = append(rooms, key.name)
			}
		}
		a.mu.Unlock()
	}
	if meta != nil {
		if err := s.co.SetConnectionMetadata(ctx, c.id, meta); err != nil {
			return 0, err
		}
	}
	for _, room := range rooms {
		var ttl time.Duration
		var event []byte
		if o, ok := s.pres.lookup(room); ok {
			// Present again even if its entry lapsed while its pongs could
			// not refresh it: it is alive and still in the room.
			ttl = o.TTL
			event = protocol.AppendPresenceUpdate(nil, protocol.PresenceJoin, c.id, room, time.Now().UnixMilli(), nil)
			c.setPresent(room, ttl)
		}
		if _, err := s.co.JoinRoom(ctx, room, c.id, ttl, event); err != nil {
			return 0, err
		}
	}
	if c.closed.Load() {
		// Its cleanup may have run before these writes: undo them.
		if r, err := s.co.RemoveConnection(ctx, c.id); err == nil {
			s.afterRemove(ctx, r)
		}
	}
	return len(rooms), nil
}
