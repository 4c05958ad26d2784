package coord

import "context"

// PubSub is cross-node messaging on named topics (Redis pub/sub). The
// server uses it for user channel messages (the topic is the channel's own
// name: see Channels) and, on topics of its own under the "mesh:" prefix,
// which it refuses for user channels, for broadcasts, messages to the
// connections of one node (NodeTopic), record updates and presence events
// (PresenceTopic).
//
// Delivery is at most once: a message published while nobody is subscribed
// is dropped, and a backend failure can lose messages. Messages published by
// one goroutine to one topic are delivered to each handler in publish order.
// Delivery is asynchronous in every backend: Publish returns before handlers
// run, and a handler never runs on the publishing goroutine.
//
// A node subscribes to a topic while it has local subscribers to it, so a
// backend may hold one backend subscription per topic for all of a node's
// handlers, and may delay dropping it after the last Unsubscribe (a topic
// that is left and joined again should not cost an UNSUBSCRIBE and a
// SUBSCRIBE).
type PubSub interface {
	// Subscribe registers h for topic. Several handlers may subscribe to one
	// topic; each gets every message published, on any node, after
	// Subscribe returned (Redis: the SUBSCRIBE was acknowledged, or the
	// topic was already subscribed). Concurrent calls may share one
	// SUBSCRIBE command.
	Subscribe(ctx context.Context, topic string, h Handler) (Subscription, error)

	// Unsubscribe removes the subscription. After it returns, h is not
	// called again for sub, except for a call already running. Unsubscribing
	// an unknown or removed subscription is not an error. The backend
	// subscription may outlive it (see above); the handler does not.
	Unsubscribe(ctx context.Context, sub Subscription) error

	// Publish sends payload to every handler subscribed to topic, on every
	// node. The payload is copied (or sent) before Publish returns; the
	// caller may reuse it. It returns once the backend accepted the message
	// (PUBLISH's reply); concurrent calls may share one pipeline write.
	Publish(ctx context.Context, topic string, payload []byte) error

	// PublishBatch publishes every message, in order per topic, in one
	// round trip (one pipeline of PUBLISH). It is not atomic: on an error
	// some of the messages may have been delivered.
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
