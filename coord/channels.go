package coord

import "context"

// Channels publishes user channel messages with optional history (Redis:
// PUBLISH on the channel's own name, as Mesh does, so that any Redis client
// can publish to a channel's subscribers, and the list history:<channel>,
// newest first).
type Channels interface {
	// PublishToChannel publishes message on the pub/sub topic named channel
	// (the channel name itself, as in Mesh; subscribe with
	// PubSub.Subscribe(ctx, channel, h)). If history > 0 it first stores
	// message in channel's history and trims the history to exactly the
	// history newest messages (Mesh keeps history+1; meshfast does not copy
	// that). history <= 0 stores nothing and leaves the history untouched.
	// Each call trims to its own history, so the length follows the latest
	// publish. History never expires.
	//
	// The push and the trim are atomic (concurrent publishers never leave
	// more than history messages; LPUSH and LTRIM in one script or MULTI),
	// and the message is stored before it is published. One round trip
	// (the PUBLISH may share the script or the pipeline).
	PublishToChannel(ctx context.Context, channel string, message []byte, history int) error

	// ChannelHistory returns up to limit of channel's stored messages, NEWEST
	// FIRST, which is the order of Mesh's subscribe reply (LRANGE). limit <=
	// 0 returns an empty result.
	ChannelHistory(ctx context.Context, channel string, limit int) ([][]byte, error)
}
