package coord

import "context"

// Channels publishes user channel messages with optional history (Redis:
// PUBLISH <channel> and the list history:<channel>).
type Channels interface {
	// PublishToChannel publishes message on the pub/sub topic named channel
	// (the channel name itself, as in Mesh; subscribe with
	// PubSub.Subscribe(ctx, channel, h)). If history > 0 it first stores
	// message in channel's history and trims the history to exactly the
	// history newest messages (Mesh keeps history+1; meshfast does not copy
	// that). history <= 0 stores nothing and leaves the history untouched.
	// Each call trims to its own history, so the length follows the latest
	// publish. History never expires.
	PublishToChannel(ctx context.Context, channel string, message []byte, history int) error

	// ChannelHistory returns up to limit of channel's stored messages, NEWEST
	// FIRST, which is the order of Mesh's subscribe reply. limit <= 0 returns
	// an empty result.
	ChannelHistory(ctx context.Context, channel string, limit int) ([][]byte, error)
}
