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

func TestConformance(t *testing.T) {
	coordtest.Run(t, func(t *testing.T) coord.Coordinator { return newTestMemory(t) })
}

func TestConformanceCluster(t *testing.T) {
	// Nodes of one process share one Memory, as nodes of a cluster share
	// one Redis.
	coordtest.RunCluster(t, func(t *testing.T, n int) []coord.Coordinator {
		m := newTestMemory(t)
		cs := make([]coord.Coordinator, n)
		for i := range cs {
			cs[i] = m
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
