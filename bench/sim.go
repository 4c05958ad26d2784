package bench

import (
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/protocol"
)

// simHandler is a Handler that does nothing: simulated subscribers only
// receive.
type simHandler struct{}

func (simHandler) OnOpen(*engine.Conn, *engine.Request)          {}
func (simHandler) OnMessage(*engine.Conn, engine.OpCode, []byte) {}
func (simHandler) OnClose(*engine.Conn, engine.CloseInfo)        {}

// runSim opens o.Sim.Conns simulated connections subscribed to one topic,
// then times o.Sim.Publishes broadcasts through the engine's real write
// path over fake sockets: user-space cost per subscriber, no kernel.
func runSim(o Options) (*RunResult, error) {
	n, k := o.Sim.Conns, o.Sim.Publishes
	r := &RunResult{Label: "sim", Workers: 0}
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	s := engine.NewSimulator(engine.Options{Loops: o.Sim.Loops})
	conns := make([]*engine.SimConn, n)
	t0 := time.Now()
	for i := range conns {
		if i&1023 == 0 && time.Since(t0) > o.Timeout {
			conns, n = conns[:i], i
			break
		}
		conns[i] = s.Open(simHandler{})
		s.Subscribe(conns[i], o.Fanout.Channel)
	}
	openTime := time.Since(t0)
	runtime.GC()
	runtime.ReadMemStats(&m1)
	// The connection table and the topic index are the simulator's; the
	// conns slice is ours (8 B a connection) and is subtracted.
	heap := float64(m1.HeapAlloc) - float64(m0.HeapAlloc) - float64(8*n)

	pad := make([]byte, o.Fanout.Payload)
	for i := range pad {
		pad[i] = 'x'
	}
	msg := make([]byte, 0, 256)
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	w0 := time.Now()
	for j := range k {
		if j > 0 && time.Since(w0) > o.Duration {
			k = j
			break
		}
		m := strconv.AppendInt(nil, time.Now().UnixNano(), 10)
		m = append(strconv.AppendInt(append(m, '|'), int64(j), 10), '|')
		if p := o.Fanout.Payload - len(m); p > 0 {
			m = append(m, pad[:p]...)
		}
		msg = protocol.AppendSubscriptionMessage(msg[:0], o.Fanout.Channel, string(m))
		f := engine.NewTextFrame(msg)
		s.Publish(o.Fanout.Channel, f)
		f.Release()
	}
	wall := time.Since(w0)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano() - ru0.Utime.Nano() + ru1.Stime.Nano() - ru0.Stime.Nano())
	var writes, bytes uint64
	for _, c := range conns {
		writes += c.Writes()
		bytes += c.Bytes()
	}
	runtime.KeepAlive(s)
	deliveries := float64(n) * float64(k)
	r.add("simulated connections", float64(n), "")
	r.add("loops", float64(o.Sim.Loops), "")
	r.add("broadcasts", float64(k), "")
	r.add("open+subscribe time", openTime.Seconds(), "s")
	r.add("heap per connection", heap/float64(n), "B")
	r.add("cpu ns per subscriber per broadcast", float64(cpu.Nanoseconds())/deliveries, "ns")
	r.add("wall ns per subscriber per broadcast", float64(wall.Nanoseconds())/deliveries, "ns")
	r.add("deliveries/s", deliveries/wall.Seconds(), "1/s")
	r.add("writes per delivery", float64(writes)/deliveries, "")
	r.add("bytes written", float64(bytes), "B")
	return r, nil
}
