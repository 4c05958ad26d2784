package streams

import (
	"context"
	"encoding/json"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshfast/meshfast/features/streams/store"
	"github.com/meshfast/meshfast/internal/testutil"
	"github.com/meshfast/meshfast/protocol/zps"
)

// Benchmarks, per storage: memory (with the in-process coordinator) and a
// single Redis on loopback (store and coordinator each with their own
// client). Figures and commands are in the report of the change; run for
// instance
//
//	go test -run '^$' -bench 'Publish|Replay|CatchUp' -benchtime 2s ./features/streams/
//	go test -run '^$' -bench CatchUpMillion -benchtime 1x ./features/streams/

var benchPayload = json.RawMessage(`{"text":"` + strings.Repeat("x", 80) + `","senderId":"user_1"}`)

func benchBackends(b *testing.B) []backend {
	r := testutil.StartRedis(b)
	return []backend{memoryBackend(), redisBackend("redis", singleRedis{r}, []string{r.Addr})}
}

// BenchmarkPublish: events stored and fanned out per second, one event
// per call from 16×GOMAXPROCS concurrent publishers, and 100 per
// PublishBatch from one.
func BenchmarkPublish(b *testing.B) {
	for _, be := range benchBackends(b) {
		b.Run(be.name+"/single", func(b *testing.B) {
			s := be.nodes(b, 1, Options{})[0]
			var room atomic.Uint64
			b.SetParallelism(16) // 16×GOMAXPROCS publishers: what auto-pipelining batches
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				r := "bench:" + strconv.FormatUint(room.Add(1)%4, 10)
				for pb.Next() {
					if _, err := s.Publish(context.Background(), Message{Room: r, Type: "message.created", Payload: benchPayload}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
		b.Run(be.name+"/batch100", func(b *testing.B) {
			s := be.nodes(b, 1, Options{})[0]
			batch := make([]Message, 100)
			for i := range batch {
				batch[i] = Message{Room: "bench:" + strconv.Itoa(i%4), Type: "message.created", Payload: benchPayload}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := s.PublishBatch(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// fillStore appends n events to room straight into the store, in batches.
func fillStore(b *testing.B, st store.Store, room string, n int) {
	b.Helper()
	const batch = 1000
	reqs := make([]store.AppendRequest, 0, batch)
	for i := 0; i < n; i++ {
		reqs = append(reqs, store.AppendRequest{Event: zps.Event{ID: "e" + strconv.Itoa(i), Type: "message.created", Room: room, Payload: benchPayload}, TTL: time.Hour})
		if len(reqs) == batch || i == n-1 {
			if _, err := st.Append(context.Background(), reqs); err != nil {
				b.Fatal(err)
			}
			reqs = reqs[:0]
		}
	}
}

// BenchmarkReplay: one Replay page of 1,000 events from a room of 100,000.
func BenchmarkReplay(b *testing.B) {
	const n, page = 100_000, 1000
	for _, be := range benchBackends(b) {
		b.Run(be.name, func(b *testing.B) {
			s := be.nodes(b, 1, Options{})[0]
			fillStore(b, s.Store(), "replay:1", n)
			b.ReportAllocs()
			b.ResetTimer()
			from := uint64(0)
			for b.Loop() {
				r, err := s.Replay(context.Background(), ReplayOptions{Room: "replay:1", FromSequence: from, Limit: page})
				if err != nil || len(r.Events) != page {
					b.Fatalf("%d events, %v", len(r.Events), err)
				}
				from = (from + page) % (n - page)
			}
			b.ReportMetric(float64(b.N*page)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkCatchUp: draining 100,000 events with the iterator, pages of
// 1,000.
func BenchmarkCatchUp(b *testing.B) {
	const n = 100_000
	for _, be := range benchBackends(b) {
		b.Run(be.name, func(b *testing.B) {
			s := be.nodes(b, 1, Options{})[0]
			fillStore(b, s.Store(), "catchup:1", n)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				got := 0
				for _, err := range s.CatchUp(context.Background(), CatchUpOptions{Room: "catchup:1", BatchSize: 1000}) {
					if err != nil {
						b.Fatal(err)
					}
					got++
				}
				if got != n {
					b.Fatalf("drained %d", got)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkCatchUpMillion: draining 1,000,000 stored events with pages of
// 1,000. The timed drain gives the throughput; a second drain samples the
// live heap (after a GC) every 50,000 events and reports the most it grew
// over the heap before the drain: bounded by about one page, whatever the
// backlog. (For the memory store the heap before the drain holds the
// million events themselves.)
func BenchmarkCatchUpMillion(b *testing.B) {
	const n, page = 1_000_000, 1000
	for _, be := range benchBackends(b) {
		b.Run(be.name, func(b *testing.B) {
			s := be.nodes(b, 1, Options{})[0]
			fillStore(b, s.Store(), "million:1", n)
			drain := func(sample func()) {
				got := 0
				for _, err := range s.CatchUp(context.Background(), CatchUpOptions{Room: "million:1", BatchSize: page}) {
					if err != nil {
						b.Fatal(err)
					}
					got++
					if sample != nil && got%50_000 == 0 {
						sample()
					}
				}
				if got != n {
					b.Fatalf("drained %d", got)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				drain(nil)
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
			b.StopTimer()
			var ms runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms)
			base := ms.HeapAlloc
			var peak uint64
			drain(func() {
				runtime.GC()
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapAlloc)
			})
			grew := float64(int64(peak)-int64(base)) / (1 << 20)
			b.ReportMetric(grew, "heap-growth-MiB")
			b.ReportMetric(float64(base)/(1<<20), "heap-before-MiB")
			b.Logf("%s: heap before the drain %.1f MiB, at most %.2f MiB more during it", be.name, float64(base)/(1<<20), grew)
		})
	}
}

// BenchmarkDeliver: one event published to a room with 10 or 100
// subscriptions on the node, each op waiting until every handler had it.
// allocs/op must not grow with the subscriptions: delivering to one more
// subscriber allocates nothing.
func BenchmarkDeliver(b *testing.B) {
	for _, subs := range []int{10, 100} {
		b.Run(strconv.Itoa(subs)+"subs", func(b *testing.B) {
			s := newNode(b, Options{})
			var got atomic.Int64
			for range subs {
				sub, err := s.Subscribe(context.Background(), SubscribeOptions{Rooms: []string{"fan:1"}, From: Live},
					func(context.Context, *Event) error { got.Add(1); return nil })
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = sub.Close() })
			}
			m := Message{Room: "fan:1", Type: "t", Payload: benchPayload}
			b.ReportAllocs()
			b.ResetTimer()
			want := int64(0)
			for b.Loop() {
				if _, err := s.Publish(context.Background(), m); err != nil {
					b.Fatal(err)
				}
				want += int64(subs)
				for got.Load() < want {
					runtime.Gosched()
				}
			}
			b.ReportMetric(float64(b.N*subs)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}
