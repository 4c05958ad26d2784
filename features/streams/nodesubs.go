package streams

import (
	"context"
	"fmt"
	"sync"

	"github.com/meshfast/meshfast/coord"
)

// nodeSubs holds the node's coordinator subscriptions, one per topic,
// counted by reference: the node subscribes to a room's topic while it has
// local listeners for it, whatever their number (features/mesh's
// subscriptions, without the per-connection layers).
type nodeSubs struct {
	ps  coord.PubSub
	log func(msg string, args ...any)

	mu sync.Mutex // guards m; never held across a coordinator call or a wait
	m  map[string]*nodeSub
}

type nodeSub struct {
	refs  int           // nodeSubs.mu
	ready chan struct{} // closed once sub and err are set
	sub   coord.Subscription
	err   error
}

func newNodeSubs(ps coord.PubSub, log func(string, ...any)) *nodeSubs {
	return &nodeSubs{ps: ps, log: log, m: make(map[string]*nodeSub)}
}

// retain takes a reference on topic, subscribing the node with h on the
// first one, and returns once the subscription is live: a message
// published after retain returned reaches h. Any goroutine.
func (n *nodeSubs) retain(ctx context.Context, topic string, h coord.Handler) error {
	n.mu.Lock()
	ns := n.m[topic]
	if ns != nil {
		ns.refs++
		n.mu.Unlock()
		select {
		case <-ns.ready:
		case <-ctx.Done():
			n.release(context.WithoutCancel(ctx), topic)
			return ctx.Err()
		}
		if ns.err != nil {
			n.release(context.WithoutCancel(ctx), topic)
			return ns.err
		}
		return nil
	}
	ns = &nodeSub{refs: 1, ready: make(chan struct{})}
	n.m[topic] = ns
	n.mu.Unlock()
	ns.sub, ns.err = n.ps.Subscribe(ctx, topic, h)
	if ns.err != nil {
		ns.err = fmt.Errorf("streams: subscribe %q: %w", topic, ns.err)
		n.mu.Lock()
		if n.m[topic] == ns {
			delete(n.m, topic)
		}
		n.mu.Unlock()
	}
	close(ns.ready)
	return ns.err
}

// release drops a reference taken by retain, unsubscribing the node with
// the last one.
func (n *nodeSubs) release(ctx context.Context, topic string) {
	n.mu.Lock()
	ns := n.m[topic]
	if ns == nil {
		n.mu.Unlock()
		return
	}
	ns.refs--
	if ns.refs > 0 {
		n.mu.Unlock()
		return
	}
	delete(n.m, topic)
	n.mu.Unlock()
	<-ns.ready
	if ns.err == nil {
		if err := n.ps.Unsubscribe(ctx, ns.sub); err != nil {
			n.log("streams: unsubscribing the node failed", "topic", topic, "err", err)
		}
	}
}

// count returns how many topics the node is subscribed to.
func (n *nodeSubs) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.m)
}

// closeAll drops every subscription, at Close.
func (n *nodeSubs) closeAll(ctx context.Context) {
	n.mu.Lock()
	m := n.m
	n.m = make(map[string]*nodeSub)
	n.mu.Unlock()
	for _, ns := range m {
		<-ns.ready
		if ns.err == nil {
			_ = n.ps.Unsubscribe(ctx, ns.sub)
		}
	}
}
