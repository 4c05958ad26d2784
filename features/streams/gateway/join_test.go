package gateway

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshfast/meshfast/features/streams"
	"github.com/meshfast/meshfast/protocol/zps"
)

// TestJoinMidStream: subscribers join a room at random moments while it
// is published to without pause, each from a random fromSequence (or its
// cursor), with a ring so small that most joins go back to the store at
// least once. Each must get exactly the sequences after its start, up to
// the last, in order: nothing missed or repeated at the seams between the
// store, the ring and the live topic.
func TestJoinMidStream(t *testing.T) {
	for _, ring := range []int{2, 64} {
		t.Run(fmt.Sprintf("ring%d", ring), func(t *testing.T) {
			const total, subscribers = 3000, 24
			n := startNode(t, Options{RecentEvents: ring, CatchUpBatch: 7, Limits: Limits{MaxMessagesPerWindow: -1}}, nil)
			var published atomic.Uint64
			pubDone := make(chan error, 1)
			go func() {
				for i := range total {
					p, err := n.st.Publish(bg(), streams.Message{Room: "feed:1", Type: "tick", Payload: []byte(fmt.Sprint(i))})
					if err != nil {
						pubDone <- err
						return
					}
					published.Store(p.Sequence)
					if i%100 == 0 {
						time.Sleep(time.Millisecond) // let joins land all along the run
					}
				}
				pubDone <- nil
			}()
			var wg sync.WaitGroup
			errs := make(chan error, subscribers)
			for i := range subscribers {
				// Spread the joins over the run.
				for published.Load() < uint64(i*total/subscribers) {
					time.Sleep(100 * time.Microsecond)
				}
				head := published.Load()
				from := uint64(rand.IntN(int(head) + 1))
				w := dialInit(t, n, fmt.Sprint("s", i))
				if i%4 == 0 {
					w.send(`{"type":"subscribe","room":"feed:1"}`) // the cursor: 0
					from = 0
				} else {
					w.send(fmt.Sprintf(`{"type":"subscribe","room":"feed:1","fromSequence":%d}`, from))
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- readExactly(w, from, total)
				}()
			}
			if err := <-pubDone; err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// readExactly reads a subscription's frames: subscribed, then exactly the
// sequences from+1..last, in order.
func readExactly(w *wire, from, last uint64) error {
	f, err := w.read(10 * time.Second)
	if err != nil || f != `{"type":"subscribed","room":"feed:1"}` {
		return fmt.Errorf("first frame %q, %v", f, err)
	}
	next := from + 1
	for next <= last {
		f, err := w.read(10 * time.Second)
		if err != nil {
			return fmt.Errorf("from %d: waiting for %d: %v", from, next, err)
		}
		room, seq := eventSeq(f)
		if room != "feed:1" || seq != next {
			return fmt.Errorf("from %d: got %s #%d, want #%d", from, room, seq, next)
		}
		next++
	}
	if f, err := w.read(50 * time.Millisecond); err != errTimeout {
		return fmt.Errorf("from %d: after the last, %q %v", from, f, err)
	}
	return nil
}

// TestJoinStorm: many connections subscribe to a busy room at once; the
// shard runs their joins in batches, and every one still gets exactly
// the events after its start.
func TestJoinStorm(t *testing.T) {
	const conns, total = 60, 400
	n := startNode(t, Options{Shards: 1}, nil)
	stop := make(chan struct{})
	var pubWG sync.WaitGroup
	pubWG.Add(1)
	var head atomic.Uint64
	go func() {
		defer pubWG.Done()
		for i := 0; i < total; i++ {
			p, err := n.st.Publish(bg(), streams.Message{Room: "feed:1", Type: "tick"})
			if err != nil {
				return
			}
			head.Store(p.Sequence)
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	ws := make([]*wire, conns)
	for i := range ws {
		ws[i] = dialInit(t, n, fmt.Sprint("s", i))
	}
	for _, w := range ws {
		w.send(`{"type":"subscribe","room":"feed:1","fromSequence":0}`)
	}
	pubWG.Wait()
	close(stop)
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := readExactly(w, 0, head.Load()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}

// eventSeq reads an event message's room and sequence ("", 0 if it is
// not one).
func eventSeq(frame string) (string, uint64) {
	var m zps.ServerMessage
	if zps.DecodeServerMessage([]byte(frame), &m) != nil || m.Type != zps.TypeEvent {
		return "", 0
	}
	return m.Event.Room, m.Event.Sequence
}
