package memory

import (
	"context"
	"slices"
	"sync"

	"github.com/meshfast/meshfast/coord"
)

type topicShard struct {
	mu sync.RWMutex // leaf
	// m maps a topic to its subscribers. A slice is never modified once
	// stored (copy on write), so the dispatcher calls handlers from its
	// snapshot without the lock.
	m map[string][]subscriber
	_ [32]byte
}

type subscriber struct {
	id uint64
	h  coord.Handler
}

type delivery struct {
	topic   string
	payload []byte
}

// Subscribe implements coord.PubSub.
func (m *Memory) Subscribe(ctx context.Context, topic string, h coord.Handler) (coord.Subscription, error) {
	if err := m.check(ctx); err != nil {
		return coord.Subscription{}, err
	}
	if topic == "" {
		return coord.Subscription{}, errEmpty("Subscribe", "topic")
	}
	if h == nil {
		return coord.Subscription{}, errEmpty("Subscribe", "handler")
	}
	id := m.subID.Add(1)
	ts := m.topicShard(topic)
	ts.mu.Lock()
	old := ts.m[topic]
	subs := make([]subscriber, len(old), len(old)+1)
	copy(subs, old)
	ts.m[topic] = append(subs, subscriber{id: id, h: h})
	ts.mu.Unlock()
	return coord.Subscription{Topic: topic, ID: id}, nil
}

// Unsubscribe implements coord.PubSub.
func (m *Memory) Unsubscribe(ctx context.Context, sub coord.Subscription) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	ts := m.topicShard(sub.Topic)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	old := ts.m[sub.Topic]
	i := slices.IndexFunc(old, func(s subscriber) bool { return s.id == sub.ID })
	if i < 0 {
		return nil
	}
	if len(old) == 1 {
		delete(ts.m, sub.Topic)
		return nil
	}
	subs := make([]subscriber, 0, len(old)-1)
	subs = append(subs, old[:i]...)
	ts.m[sub.Topic] = append(subs, old[i+1:]...)
	return nil
}

func (m *Memory) subscribers(topic string) []subscriber {
	ts := m.topicShard(topic)
	ts.mu.RLock()
	s := ts.m[topic]
	ts.mu.RUnlock()
	return s
}

// Publish implements coord.PubSub. A topic without subscribers costs a map
// lookup; otherwise the payload is copied once and queued for the
// dispatcher. Publish blocks while the queue is full.
func (m *Memory) Publish(ctx context.Context, topic string, payload []byte) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	return m.publish(ctx, topic, payload)
}

func (m *Memory) publish(ctx context.Context, topic string, payload []byte) error {
	if len(m.subscribers(topic)) == 0 {
		return nil // nobody listens, as with Redis PUBLISH
	}
	d := delivery{topic: topic, payload: clone(payload)}
	if d.payload == nil {
		d.payload = []byte{}
	}
	select {
	case m.queue <- d:
		return nil
	default:
	}
	select {
	case m.queue <- d:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-m.done:
		return coord.ErrClosed
	}
}

// PublishBatch implements coord.PubSub.
func (m *Memory) PublishBatch(ctx context.Context, msgs []coord.Message) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	for _, msg := range msgs {
		if err := m.publish(ctx, msg.Topic, msg.Payload); err != nil {
			return err
		}
	}
	return nil
}

// dispatcher is the one goroutine that runs pub/sub handlers, in queue
// order. It looks the subscribers up at delivery time, so that a handler
// removed by Unsubscribe is not called afterwards.
func (m *Memory) dispatcher() {
	defer m.wg.Done()
	for {
		select {
		case <-m.done:
			return
		case d := <-m.queue:
			for _, s := range m.subscribers(d.topic) {
				s.h(d.topic, d.payload)
			}
		}
	}
}
