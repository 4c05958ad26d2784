package mesh

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/coord/memory"
	"github.com/meshfast/meshfast/internal/testutil"
)

// unreachableNodes is a coordinator whose heartbeats fail while down is
// set, as when the backend is out of reach or the process paused, without
// a reconnect to say so.
type unreachableNodes struct {
	coord.Coordinator
	down atomic.Bool
}

func (u *unreachableNodes) RegisterNode(ctx context.Context, node string, ttl time.Duration) error {
	if u.down.Load() {
		return fmt.Errorf("%w: heartbeat not sent", coord.ErrUnavailable)
	}
	return u.Coordinator.RegisterNode(ctx, node, ttl)
}

// TestLapsedNodeWritesItsStateBack: node A's heartbeat lapses while it
// lives; node B's janitor removes A's client from its room and the
// registry within 1.6 NodeTTL, as for a dead node; when A's heartbeat
// takes again, A writes its state back, and its client is in the room
// again, though its coordinator never reconnected.
func TestLapsedNodeWritesItsStateBack(t *testing.T) {
	const nodeTTL = 300 * time.Millisecond
	co := memory.New(memory.Options{})
	t.Cleanup(func() { _ = co.Close() })
	ua := &unreachableNodes{Coordinator: co}
	a := startServer(t, Options{Coordinator: ua, NodeTTL: nodeTTL})
	_ = startServer(t, Options{Coordinator: co, NodeTTL: nodeTTL}) // B: its janitor
	w := dialWire(t, a)
	w.call(1, "mesh/join-room", `{"roomName":"lobby"}`, `{"success":true,"present":[]}`)
	ctx := context.Background()
	members := func(want []string) func() error {
		return func() error {
			m, err := co.RoomMembers(ctx, "lobby")
			if err != nil {
				return err
			}
			if !slices.Equal(m, want) {
				return fmt.Errorf("members %q, want %q", m, want)
			}
			_, err = co.ConnectionNode(ctx, w.id)
			if registered := err == nil; registered != (len(want) > 0) {
				return fmt.Errorf("registered: %v (%v)", registered, err)
			}
			if err != nil && !errors.Is(err, coord.ErrNotFound) {
				return err
			}
			return nil
		}
	}
	if err := members([]string{w.id})(); err != nil {
		t.Fatal(err)
	}
	ua.down.Store(true)
	testutil.Eventually(t, 10*time.Second, members(nil))
	ua.down.Store(false)
	testutil.Eventually(t, 10*time.Second, members([]string{w.id}))
}
