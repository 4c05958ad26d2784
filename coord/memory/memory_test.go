package memory_test

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/coord/coordtest"
	"github.com/meshfast/meshfast/coord/memory"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newTestMemory(t *testing.T) *memory.Memory {
	m := memory.New(memory.Options{SweepInterval: 5 * time.Millisecond})
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// newCluster hands out one Memory n times: nodes of one process share one
// Memory, as nodes of a cluster share one Redis.
func newCluster(t *testing.T, n int) []coord.Coordinator {
	m := newTestMemory(t)
	cs := make([]coord.Coordinator, n)
	for i := range cs {
		cs[i] = m
	}
	return cs
}

func TestConformance(t *testing.T) {
	coordtest.RunAll(t, newCluster)
}

// coreOnly hides everything of a Memory but coord.Coordinator, as a
// backend without coord.Admin would be.
type coreOnly struct{ coord.Coordinator }

// The suite must hold for a coordinator without Admin: its Admin tests are
// skipped and no other test needs Admin.
func TestConformanceWithoutAdmin(t *testing.T) {
	coordtest.RunAll(t, func(t *testing.T, n int) []coord.Coordinator {
		cs := newCluster(t, n)
		for i, c := range cs {
			cs[i] = coreOnly{c}
		}
		return cs
	})
}

func TestZeroOptions(t *testing.T) {
	m := memory.New(memory.Options{})
	defer m.Close()
	if _, err := m.AddToRoom(t.Context(), "room", "conn"); err != nil {
		t.Fatal(err)
	}
}
