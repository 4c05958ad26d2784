package zps

import "encoding/json"

// Snapshot is a room's consolidated state up to a sequence, the document's
// {lastSequence, state}: a subscriber that syncs from it applies State,
// then the events after LastSequence.
type Snapshot struct {
	LastSequence uint64          `json:"lastSequence"`
	State        json.RawMessage `json:"state"`
}
