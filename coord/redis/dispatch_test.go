package redis

import (
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/redis/rueidis"
)

// BenchmarkDispatch: what the coordinator adds per delivered message, from
// the connection's hook to the handler (rueidis allocates the message's
// two strings when it reads them). The hot path allocates nothing.
func BenchmarkDispatch(b *testing.B) {
	c := &Coordinator{opts: Options{PubSubWorkers: 1}.withDefaults()}
	ps := newPubSub(c)
	var n atomic.Int64
	ps.topics["room"] = topicEntry{hs: []handlerEntry{{id: 1, h: func(string, []byte) { n.Add(1) }}}}
	ps.wg.Add(1)
	go ps.worker(ps.workers[0])
	defer func() { close(ps.done); ps.wg.Wait() }()
	m := rueidis.PubSubMessage{Channel: "room", Message: "frame"}
	b.ReportAllocs()
	b.ResetTimer()
	wait := func(i int) {
		for n.Load() < int64(i) {
			runtime.Gosched()
		}
	}
	for i := range b.N {
		ps.onMessage(m)
		if i%1000 == 999 {
			wait(i + 1) // stay under the queue's capacity: nothing dropped
		}
	}
	wait(b.N)
	if d := c.st.psDropped.Load(); d != 0 {
		b.Fatalf("%d dropped", d)
	}
}
