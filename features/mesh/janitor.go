package mesh

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/meshfast/meshfast/coord"
)

// janitor cleans up after nodes that died without cleaning up (killed with
// SIGKILL, a machine lost): every node, about every half NodeTTL (jittered,
// so that the nodes' janitors spread out), asks the coordinator for the
// nodes whose heartbeat lapsed and removes each one's connections from
// the registry, their rooms and their presence (coord.Admin.RemoveNode,
// safe when several janitors race: each connection is removed by one),
// and publishes a presence "leave" for each removed presence entry, so
// subscribers on every node see the dead node's clients go. Presence
// entries whose TTL lapsed first were already reported by the sweep, once.
// A coordinator without Admin (none of meshfast's) has no janitor.
func (s *Server) janitor() {
	defer s.bg.Done()
	admin, ok := s.co.(coord.Admin)
	if !ok {
		return
	}
	t := time.NewTimer(s.janitorDelay())
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.sweepDeadNodes(admin)
		t.Reset(s.janitorDelay())
	}
}

// janitorDelay is half NodeTTL, ±25%: a dead node's heartbeat lapses at
// most NodeTTL after its last one, and its clients leave rooms and
// presence on the other nodes at most 5/8 NodeTTL later, within 1.6
// NodeTTL, inside the presence TTL when NodeTTL is at most 5/8 of it (the
// defaults: 10 s and 30 s, so at most about 16 s).
func (s *Server) janitorDelay() time.Duration {
	d := s.opts.NodeTTL / 2
	return d*3/4 + rand.N(d/2+1)
}

func (s *Server) sweepDeadNodes(admin coord.Admin) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.CoordTimeout)
	defer cancel()
	dead, err := admin.DeadNodes(ctx)
	if err != nil {
		s.log.Warn("mesh: janitor could not list dead nodes", "err", err)
		return
	}
	for _, node := range dead {
		if node == s.nodeID {
			continue // this node is alive; a lapsed heartbeat is renewed by heartbeat and recovery
		}
		removed, err := admin.RemoveNode(ctx, node)
		for _, r := range removed {
			s.afterRemove(ctx, r)
		}
		if err != nil {
			s.log.Warn("mesh: janitor could not remove a dead node", "node", node, "err", err)
			return
		}
		s.m.deadNode(len(removed))
		s.log.Info("mesh: janitor removed a dead node", "node", node, "connections", len(removed))
	}
}
