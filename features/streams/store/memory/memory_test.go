package memory_test

import (
	"slices"
	"testing"

	"github.com/meshfast/meshfast/features/streams/store"
	"github.com/meshfast/meshfast/features/streams/store/memory"
	"github.com/meshfast/meshfast/features/streams/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, n int) []store.Store {
		s := memory.New(memory.Options{})
		return slices.Repeat([]store.Store{s}, n)
	})
}
