package coord

// Two topics of the server's own (see PubSub), named as Mesh names its Redis
// channels for the same purposes (mesh-protocol state.md §3.0). Only the
// names are Mesh's: the payloads are whatever meshfast nodes exchange, not
// Mesh's JSON messages, so a Mesh (Node) server on the same Redis would not
// understand them.
const (
	// NodeTopicPrefix prefixes the topic of messages to one node's
	// connections (Mesh: "mesh:pubsub:<instanceId>").
	NodeTopicPrefix = "mesh:pubsub:"
	// PresenceTopicPrefix prefixes the topic of one room's presence events
	// (Mesh: "mesh:presence:updates:<room>").
	PresenceTopicPrefix = "mesh:presence:updates:"
)

// NodeTopic returns the topic that nodeID subscribes to for messages to its
// connections ("mesh:pubsub:<node>").
func NodeTopic(nodeID string) string { return NodeTopicPrefix + nodeID }

// PresenceTopic returns the topic of room's presence events
// ("mesh:presence:updates:<room>").
func PresenceTopic(room string) string { return PresenceTopicPrefix + room }
