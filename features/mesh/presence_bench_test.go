package mesh

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/meshfast/meshfast/coord/memory"
	"github.com/meshfast/meshfast/engine"
)

// BenchmarkPresenceChurn has 10k connections join a presence-tracked room
// and then leave it, through AddToRoom and RemoveFromRoom: the coordinator's
// room and presence updates, the node's room topic reference and engine
// subscription, and a join and a leave event per connection fanned out to
// every presence subscriber of the room. One op is a whole round (10k
// joins, then 10k leaves, then every event written to every subscriber);
// ns/join+leave and allocs/join+leave are per connection. Sockets are the
// engine's simulated ones, as in BenchmarkRoomBroadcast.
//
// The simulator runs a loop's tasks on whichever goroutine posts them and
// is not safe for concurrent use, so the members and the subscribers are on
// two nodes (two simulated engines sharing one coordinator): this goroutine
// is the only one to touch the members' engine (room subscriptions), the
// coordinator's dispatcher the only one to touch the subscribers' engine
// (event delivery). Events take the same path as on one node, where they
// also go through the coordinator's pub/sub.
func BenchmarkPresenceChurn(b *testing.B) {
	const conns = 10_000
	for _, subscribers := range []int{0, 100} {
		b.Run(fmt.Sprintf("conns=%d/subscribers=%d", conns, subscribers), func(b *testing.B) {
			co := memory.New(memory.Options{})
			defer co.Close() // after the servers: they do not close it
			o := Options{Coordinator: co, PingInterval: -1, LatencyInterval: -1, AssignID: AssignIDNever}
			simA, simB := engine.NewSimulator(engine.Options{Loops: 2}), engine.NewSimulator(engine.Options{Loops: 2})
			sa, err := New(simA.Engine(), o)
			if err != nil {
				b.Fatal(err)
			}
			defer sa.Close()
			sb, err := New(simB.Engine(), o)
			if err != nil {
				b.Fatal(err)
			}
			defer sb.Close()
			const room = "bench:room"
			sa.TrackPresence(room, PresenceOptions{})
			sb.TrackPresence(room, PresenceOptions{})
			ids := make([]string, conns)
			for i := range ids {
				c := simA.Open(handlerOf(sa)).Conn().Value().(*Connection)
				waitRegistered(b, c)
				ids[i] = c.id
			}
			// subscribed as mesh/subscribe-presence does
			for range subscribers {
				c := simB.Open(handlerOf(sb)).Conn().Value().(*Connection)
				waitRegistered(b, c)
				if err := sb.subs.take(bg(), c, presenceRoute, room); err != nil {
					b.Fatal(err)
				}
			}
			want := simB.Engine().Stats().FramesWritten
			rounds := 0
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			mallocs := ms.Mallocs
			b.ReportAllocs()
			for b.Loop() {
				for _, id := range ids {
					if err := sa.AddToRoom(bg(), room, id); err != nil {
						b.Fatal(err)
					}
				}
				for _, id := range ids {
					if err := sa.RemoveFromRoom(bg(), room, id); err != nil {
						b.Fatal(err)
					}
				}
				// events are delivered asynchronously: the round ends when
				// every subscriber has been sent every join and leave
				want += uint64(2 * conns * subscribers)
				for simB.Engine().Stats().FramesWritten < want {
					time.Sleep(10 * time.Microsecond)
				}
				rounds++
			}
			runtime.ReadMemStats(&ms)
			if got := simB.Engine().Stats().FramesWritten; got != want {
				b.Fatalf("%d frames written to subscribers, want %d", got, want)
			}
			n := float64(rounds * conns)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/join+leave")
			b.ReportMetric(float64(ms.Mallocs-mallocs)/n, "allocs/join+leave")
		})
	}
}
