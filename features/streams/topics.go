package streams

// Coordinator topics of the feature. They start with "mesh:", which Mesh
// refuses for user channels, so that no Mesh client can publish into them.
const (
	topicRoomPrefix     = "mesh:zps:room:"     // + room: the room's durable events
	topicScopePrefix    = "mesh:zps:scope:"    // + scope: every durable event of the scope
	topicEphRoomPrefix  = "mesh:zps:eph:"      // + room: the room's ephemeral events
	topicEphScopePrefix = "mesh:zps:ephscope:" // + scope: every ephemeral event of the scope
)
