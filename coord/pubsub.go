package coord

import "context"

// PubSub is cross-node messaging on named topics (Redis pub/sub). The server
// uses it for channel messages (topic = the channel name), room broadcasts
// and messages to connections of another node (NodeTopic), record updates
// (RecordUpdatesTopic) and presence events (PresenceTopic).
//
// Delivery is at most once: a message published while nobody is subscribed
// is dropped, and a backend failure can lose messages. Messages published by
// one goroutine to one topic are delivered to each handler in publish order.
// Delivery is asynchronous in every backend: Publish returns before handlers
// run, and a handler never runs on the publishing goroutine.
type PubSub interface {
	// Subscribe registers h for topic. Several handlers may subscribe to one
	// topic; each gets every message published after Subscribe returned.
	Subscribe(ctx context.Context, topic string, h Handler) (Subscription, error)

	// Unsubscribe removes the subscription. After it returns, h is not
	// called again for sub, except for a call already running. Unsubscribing
	// an unknown or removed subscription is not an error.
	Unsubscribe(ctx context.Context, sub Subscription) error

	// Publish sends payload to every handler subscribed to topic, on every
	// node. The payload is copied (or sent) before Publish returns; the
	// caller may reuse it.
	Publish(ctx context.Context, topic string, payload []byte) error

	// PublishBatch publishes every message in order, in one round trip where
	// the backend can.
	PublishBatch(ctx context.Context, msgs []Message) error
}

// Handler receives a message published on topic. It is called from a
// goroutine of the coordinator (memory: its dispatcher; Redis: the pub/sub
// reader), one message at a time per backend connection, and MUST NOT block:
// decode what it needs and hand off to the owning event loops. It must not
// call Coordinator methods (Publish may wait for the very goroutine that runs
// the handler). payload is owned by the handlers of the message, may be
// shared among them, and must not be modified.
type Handler func(topic string, payload []byte)

// Subscription identifies one Subscribe call.
type Subscription struct {
	Topic string
	ID    uint64
}

// Message is one message of PublishBatch.
type Message struct {
	Topic   string
	Payload []byte
}
