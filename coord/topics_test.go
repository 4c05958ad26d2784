package coord_test

import (
	"testing"

	"github.com/meshfast/meshfast/coord"
)

func TestTopics(t *testing.T) {
	if got := coord.NodeTopic("n1"); got != "mesh:pubsub:n1" {
		t.Errorf("NodeTopic = %q", got)
	}
	if got := coord.PresenceTopic("lobby"); got != "mesh:presence:updates:lobby" {
		t.Errorf("PresenceTopic = %q", got)
	}
	if coord.ExpiredPresence.String() != "presence" || coord.ExpiredState.String() != "state" {
		t.Errorf("ExpiryKind strings")
	}
}
