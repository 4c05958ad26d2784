package engine

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/meshfast/meshfast/internal/testutil"
)

// A message of exactly MaxMessageSize is delivered and one byte more
// closes the connection with 1009, whether it comes whole or in fragments.
func TestMaxMessageSizeBoundary(t *testing.T) {
	t.Parallel()
	const max = 4096
	e := startEngine(t, Options{MaxMessageSize: max}, Echo{})
	for _, tc := range []struct {
		name  string
		parts []int
	}{
		{"whole", []int{max}},
		{"fragmented", []int{1000, 2000, max - 3000}},
		{"fragmented, empty last", []int{max, 0}},
	} {
		for _, extra := range []int{0, 1} {
			t.Run(fmt.Sprintf("%s+%d", tc.name, extra), func(t *testing.T) {
				rc := rawDial(t, e, "/ws")
				parts := append([]int(nil), tc.parts...)
				parts[len(parts)-1] += extra
				var want []byte
				for i, n := range parts {
					p := bytes.Repeat([]byte{byte('a' + i)}, n)
					want = append(want, p...)
					b0 := byte(OpContinuation)
					if i == 0 {
						b0 = byte(OpBinary)
					}
					if i == len(parts)-1 {
						b0 |= 0x80
					}
					rc.send(clientFrame(b0, true, p))
				}
				if extra == 0 {
					op, got, err := rc.readFrame()
					if err != nil || op != OpBinary || !bytes.Equal(got, want) {
						t.Fatalf("a %d-byte message (the limit): %v, %d bytes, %v", len(want), op, len(got), err)
					}
					return
				}
				if code := rc.expectClose(); code != CloseMessageTooBig {
					t.Fatalf("a %d-byte message (limit %d): close %d, want 1009", len(want), max, code)
				}
			})
		}
	}
}

// churner subscribes each connection to a shared topic and one of its own.
type churner struct{ nopHandler }

func (churner) OnOpen(c *Conn, _ *Request) {
	c.loop.e.Subscribe(c, "shared")
	c.loop.e.Subscribe(c, fmt.Sprint("own-", c.ID()))
}

// When every subscriber has gone, every loop's topic table and the
// engine's topic index are empty: nothing is left behind per topic or per
// connection as clients come and go.
func TestTopicTablesEmptyAfterChurn(t *testing.T) {
	t.Parallel()
	e := startEngine(t, Options{Loops: 2}, churner{})
	for round := range 3 {
		var conns []*rawConn
		for range 20 {
			conns = append(conns, rawDial(t, e, "/ws"))
		}
		testutil.Eventually(t, 5*time.Second, func() error {
			if n := e.Stats().Connections; n != 20 {
				return fmt.Errorf("round %d: %d connections", round, n)
			}
			return nil
		})
		if mask := e.topicIdx.get("shared"); mask == 0 {
			t.Fatal("the shared topic is not indexed while subscribed")
		}
		for _, rc := range conns {
			rc.nc.Close()
		}
		testutil.Eventually(t, 5*time.Second, func() error {
			if s := e.Stats(); s.Connections != 0 || s.TCP != 0 {
				return fmt.Errorf("round %d: %d connections", round, s.Connections)
			}
			return nil
		})
	}
	loops := *e.loops.Load()
	type leftovers struct{ loop, topics, conns, closeErrs, frags, over int }
	left := make(chan leftovers, len(loops))
	e.ForEachLoop(func(i int) {
		l := loops[i]
		left <- leftovers{i, len(l.topics), len(l.conns), len(l.closeErrs), len(l.frags), len(l.over)}
	})
	for range loops {
		if got := <-left; got != (leftovers{loop: got.loop}) {
			t.Errorf("left behind on a loop: %+v", got)
		}
	}
	for i := range e.topicIdx.shards {
		sh := &e.topicIdx.shards[i]
		sh.mu.RLock()
		n := len(sh.loops)
		sh.mu.RUnlock()
		if n != 0 {
			t.Fatalf("topic index shard %d holds %d topics after every subscriber left", i, n)
		}
	}
}
