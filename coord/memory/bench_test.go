package memory_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/coord/memory"
)

// BenchmarkPublish publishes to a subscribed topic and waits for every
// delivery before stopping the timer, so the dispatcher's work counts.
func BenchmarkPublish(b *testing.B) {
	for _, size := range []int{64, 1024} {
		b.Run(fmt.Sprintf("subs=1/msg=%dB", size), func(b *testing.B) {
			m := memory.New(memory.Options{})
			defer m.Close()
			ctx := context.Background()
			var got atomic.Int64
			if _, err := m.Subscribe(ctx, "room:bench", func(string, []byte) { got.Add(1) }); err != nil {
				b.Fatal(err)
			}
			payload := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := m.Publish(ctx, "room:bench", payload); err != nil {
					b.Fatal(err)
				}
			}
			for got.Load() < int64(b.N) {
				time.Sleep(10 * time.Microsecond)
			}
		})
	}
	b.Run("subs=0", func(b *testing.B) {
		m := memory.New(memory.Options{})
		defer m.Close()
		ctx := context.Background()
		payload := make([]byte, 64)
		b.ReportAllocs()
		for range b.N {
			_ = m.Publish(ctx, "nobody", payload)
		}
	})
}

// BenchmarkRefreshPresence refreshes a batch of 1000 entries (100
// connections in 10 rooms), as a pong burst does.
func BenchmarkRefreshPresence(b *testing.B) {
	m := memory.New(memory.Options{})
	defer m.Close()
	ctx := context.Background()
	batch := make([]coord.PresenceEntry, 0, 1000)
	for r := range 10 {
		for c := range 100 {
			e := coord.PresenceEntry{Room: fmt.Sprintf("room-%d", r), ConnID: fmt.Sprintf("conn-%d", c), TTL: time.Minute}
			if _, err := m.JoinPresence(ctx, e.Room, e.ConnID, e.TTL); err != nil {
				b.Fatal(err)
			}
			batch = append(batch, e)
		}
	}
	b.Run("batch=1000", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if err := m.RefreshPresence(ctx, batch); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/entry")
	})
}

// BenchmarkSetRecord writes alternating values (every write is a change).
func BenchmarkSetRecord(b *testing.B) {
	m := memory.New(memory.Options{})
	defer m.Close()
	ctx := context.Background()
	vals := [][]byte{[]byte(`{"count":1,"name":"a"}`), []byte(`{"count":2,"name":"a"}`)}
	b.ReportAllocs()
	for i := range b.N {
		if _, err := m.SetRecord(ctx, "rec", vals[i&1]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRegisterConnection registers distinct connection ids to a
// registered node, so B/op is what one more open connection costs the
// coordinator, map growth included (its ids are made beforehand and not
// counted); "cycle" also unregisters each, as a connect/disconnect does.
func BenchmarkRegisterConnection(b *testing.B) {
	ctx := context.Background()
	ids := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("conn-%d", i)
		}
		return out
	}
	for _, cycle := range []bool{false, true} {
		name := map[bool]string{false: "new", true: "cycle"}[cycle]
		b.Run(name, func(b *testing.B) {
			m := memory.New(memory.Options{})
			defer m.Close()
			if err := m.RegisterNode(ctx, "node-a", time.Hour); err != nil {
				b.Fatal(err)
			}
			conns := ids(b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if err := m.RegisterConnection(ctx, conns[i], "node-a"); err != nil {
					b.Fatal(err)
				}
				if !cycle {
					continue
				}
				if err := m.UnregisterConnection(ctx, conns[i]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkNodeConnections lists one node's share of 10,000 connections
// spread over 4 nodes sharing the coordinator (a dead node's cleanup, or
// RemoveNode).
func BenchmarkNodeConnections(b *testing.B) {
	m := memory.New(memory.Options{})
	defer m.Close()
	ctx := context.Background()
	for i := range 10_000 {
		if err := m.RegisterConnection(ctx, fmt.Sprintf("conn-%d", i), fmt.Sprintf("node-%d", i%4)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for range b.N {
		if ids, err := m.NodeConnections(ctx, "node-1"); err != nil || len(ids) != 2500 {
			b.Fatal(len(ids), err)
		}
	}
}
