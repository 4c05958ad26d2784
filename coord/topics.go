package coord

// Topic names shared by every backend. They are Mesh's Redis pub/sub channel
// names, so that tools that watch Mesh's channels keep working. User channels
// use the channel name itself as topic, so a user channel must not start with
// one of these prefixes.
const (
	// NodeTopicPrefix prefixes the topic of messages to one node's
	// connections.
	NodeTopicPrefix = "mesh:pubsub:"
	// RecordUpdatesTopic carries every record update to every node.
	RecordUpdatesTopic = "mesh:record-updates"
	// PresenceTopicPrefix prefixes the topic of one room's presence events.
	PresenceTopicPrefix = "mesh:presence:updates:"
)

// NodeTopic returns the topic that nodeID subscribes to for messages to its
// connections ("mesh:pubsub:<node>").
func NodeTopic(nodeID string) string { return NodeTopicPrefix + nodeID }

// PresenceTopic returns the topic of room's presence events
// ("mesh:presence:updates:<room>").
func PresenceTopic(room string) string { return PresenceTopicPrefix + room }
