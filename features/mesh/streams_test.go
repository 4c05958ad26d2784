package mesh

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/coord/memory"
	"github.com/meshfast/meshfast/engine"
)

// A connection's first command, sent before its registration (on the
// workers) is done, runs after its user's subscription is in place: a
// message to its user sent once that command is answered reaches it.
func TestUserSubscriptionBeforeFirstCommand(t *testing.T) {
	t.Parallel()
	mem := memory.New(memory.Options{})
	t.Cleanup(func() { _ = mem.Close() })
	co := slowUserSubscriptions{delayedRegistry{mem}}
	auth := func(r *engine.Request) (Identity, error) { return Identity{User: r.QueryValue("user")}, nil }
	s := startServer(t, Options{Coordinator: co, Authenticate: auth})
	w, _, err := dialWireWith(t, s, "/?user=carol", nil)
	if err != nil {
		t.Fatal(err)
	}
	w.welcome(s)
	w.expect(`{"id":1,"command":"mesh/get-my-connection-metadata"}`, `{"id":1,"command":"mesh/get-my-connection-metadata","payload":{"metadata":null}}`)
	if err := s.SendToUser(context.Background(), "carol", "dm", 1); err != nil {
		t.Fatal(err)
	}
	if got := w.next(); got != `{"command":"dm","payload":1}` {
		t.Fatalf("carol got %s", got)
	}
}

// slowUserSubscriptions is a coordinator slow to subscribe to a user's
// topic, as Redis is slower than the memory coordinator.
type slowUserSubscriptions struct{ coord.Coordinator }

func (s slowUserSubscriptions) Subscribe(ctx context.Context, topic string, h coord.Handler) (coord.Subscription, error) {
	if strings.HasPrefix(topic, coordUserPrefix) {
		time.Sleep(100 * time.Millisecond)
	}
	return s.Coordinator.Subscribe(ctx, topic, h)
}
