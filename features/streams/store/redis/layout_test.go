package redis_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshfast/meshfast/features/streams/store"
	"github.com/meshfast/meshfast/features/streams/store/redis"
	"github.com/meshfast/meshfast/internal/testutil"
	"github.com/meshfast/meshfast/protocol/zps"
)

func bg(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// TestKeyLayout: the keys and fields are the ones doc.go documents, and
// only those; what expires expires and what must stay does not.
func TestKeyLayout(t *testing.T) {
	r := testutil.StartRedis(t)
	s := newStore(t, redis.Options{Addrs: []string{r.Addr}})
	_, err := s.Append(bg(t), []store.AppendRequest{{
		Event: zps.Event{ID: "evt_1", Type: "message.created", Room: "chat:123", Payload: json.RawMessage(`{"a":1}`),
			Metadata: json.RawMessage(`{"producer":"api"}`), Encrypted: true},
		TTL: time.Hour, Dedupe: true,
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Ack(bg(t), "chat:123", "device-1", 1); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSnapshot(bg(t), "chat:123", zps.Snapshot{LastSequence: 1, State: json.RawMessage(`{"s":1}`)}); err != nil {
		t.Fatal(err)
	}
	v, err := r.Do("KEYS", "*")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, k := range v.([]any) {
		keys = append(keys, k.(string))
	}
	slices.Sort(keys)
	want := []string{"zps:{chat:123}:cursors", "zps:{chat:123}:events", "zps:{chat:123}:id:evt_1", "zps:{chat:123}:seq", "zps:{chat:123}:snapshot"}
	if !slices.Equal(keys, want) {
		t.Fatalf("keys %q, want %q", keys, want)
	}
	e, err := r.Do("XRANGE", "zps:{chat:123}:events", "-", "+")
	if err != nil {
		t.Fatal(err)
	}
	entry := e.([]any)[0].([]any)
	fields := fmt.Sprint(entry[1])
	if entry[0] != "1-0" || !regexpMatch(fields, `^\[i evt_1 t message.created w \d{13} x \d{13} p {"a":1} m {"producer":"api"} c 1\]$`) {
		t.Fatalf("entry %v %s", entry[0], fields)
	}
	for key, wantTTL := range map[string]bool{
		"zps:{chat:123}:events": true, "zps:{chat:123}:id:evt_1": true,
		"zps:{chat:123}:seq": false, "zps:{chat:123}:cursors": false, "zps:{chat:123}:snapshot": false,
	} {
		ttl, err := r.Do("PTTL", key)
		if err != nil {
			t.Fatal(err)
		}
		if got := ttl.(int64) > 0; got != wantTTL || (wantTTL && ttl.(int64) > int64(time.Hour/time.Millisecond)) {
			t.Fatalf("PTTL %s = %v", key, ttl)
		}
	}
	if v, _ := r.Do("GET", "zps:{chat:123}:id:evt_1"); v != "1" {
		t.Fatalf("id key holds %v", v)
	}
	if v, _ := r.Do("HGET", "zps:{chat:123}:cursors", "device-1"); v != "1" {
		t.Fatalf("cursor %v", v)
	}
}

// TestClusterOneSlot: on a cluster every key of a room, whatever the room
// holds (braces included), is in one slot, and the scripts run there.
func TestClusterOneSlot(t *testing.T) {
	rc := testutil.StartRedisCluster(t, 3)
	s := newStore(t, redis.Options{Addrs: rc.Addrs(), Prefix: "t:"})
	if !s.Cluster() {
		t.Fatal("not detected as a cluster")
	}
	for _, room := range []string{"chat:123", "chat:a}b", "x:{y}", "order:{", "a:}}{{", "chat:" + string(make([]byte, 0)) + "ü"} {
		base := "t:{" + room + "}"
		var slot any
		for _, suffix := range []string{":seq", ":events", ":cursors", ":snapshot", ":id:evt_1", ":id:}{"} {
			v, err := rc.Nodes[0].Do("CLUSTER", "KEYSLOT", base+suffix)
			if err != nil {
				t.Fatal(err)
			}
			if slot == nil {
				slot = v
			} else if v != slot {
				t.Fatalf("room %q: key %q in slot %v, another in %v", room, base+suffix, v, slot)
			}
		}
		out, err := s.Append(bg(t), []store.AppendRequest{
			{Event: zps.Event{ID: "evt_1", Type: "t", Room: room}, TTL: time.Hour, Dedupe: true, MaxLen: 5},
			{Event: zps.Event{ID: "}{", Type: "t", Room: room}, TTL: time.Hour, Dedupe: true, MaxLen: 5},
		})
		if err != nil || out[1].Event.Sequence != 2 {
			t.Fatalf("append to %q: %+v %v", room, out, err)
		}
		if _, err := s.Ack(bg(t), room, "w", 2); err != nil {
			t.Fatal(err)
		}
		if err := s.SetSnapshot(bg(t), room, zps.Snapshot{LastSequence: 2}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Prune(bg(t), room, 1); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCrashKeepsSequenceAndEventTogether: Redis killed (SIGKILL) in the
// middle of concurrent appends, with an fsync'ed append-only file, comes
// back with, for each room, a head equal to its last event, every
// sequence 1..head stored, every idempotency key pointing at its event,
// and every append it acknowledged before dying.
func TestCrashKeepsSequenceAndEventTogether(t *testing.T) {
	r := testutil.StartRedisArgs(t, "--appendonly", "yes", "--appendfsync", "always")
	s := newStore(t, redis.Options{Addrs: []string{r.Addr}})
	rooms := []string{"crash:1", "crash:2", "crash:3"}
	var acked sync.Map // "room/id" → sequence
	var n atomic.Int64
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				var batch []store.AppendRequest
				for j := range 1 + i%4 {
					room := rooms[(w+j)%len(rooms)]
					id := fmt.Sprintf("w%d-%d-%d", w, i, j)
					batch = append(batch, store.AppendRequest{Event: zps.Event{ID: id, Type: "t", Room: room, Payload: json.RawMessage(`"` + id + `"`)},
						TTL: time.Hour, Dedupe: j%2 == 0})
				}
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				out, err := s.Append(ctx, batch)
				cancel()
				if err != nil {
					return // Redis is gone
				}
				for k, a := range out {
					acked.Store(batch[k].Event.Room+"/"+batch[k].Event.ID, a.Event.Sequence)
				}
				n.Add(int64(len(out)))
			}
		}()
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if n.Load() < 2000 {
			return fmt.Errorf("%d appended", n.Load())
		}
		return nil
	})
	r.Kill()
	wg.Wait()
	r.Restart(t)
	total := 0
	for _, room := range rooms {
		base := "zps:{" + room + "}"
		headV, err := r.Do("GET", base+":seq")
		if err != nil {
			t.Fatal(err)
		}
		head, _ := strconv.Atoi(headV.(string))
		v, err := r.Do("XRANGE", base+":events", "-", "+")
		if err != nil {
			t.Fatal(err)
		}
		entries := v.([]any)
		if len(entries) != head {
			t.Fatalf("%s: head %d, %d events", room, head, len(entries))
		}
		for i, e := range entries {
			e := e.([]any)
			if want := strconv.Itoa(i+1) + "-0"; e[0] != want {
				t.Fatalf("%s: entry %d is %v, want %s", room, i, e[0], want)
			}
			f := e[1].([]any)
			id := f[1].(string)
			if seq, ok := acked.Load(room + "/" + id); ok && seq != uint64(i+1) {
				t.Fatalf("%s: %s acknowledged at %v, stored at %d", room, id, seq, i+1)
			}
			acked.Delete(room + "/" + id)
			if k, _ := r.Do("GET", base+":id:"+id); k != nil && k != strconv.Itoa(i+1) {
				t.Fatalf("%s: id key of %s holds %v, event at %d", room, id, k, i+1)
			}
		}
		total += head
	}
	acked.Range(func(k, v any) bool {
		t.Errorf("acknowledged %v at %v, lost in the crash", k, v)
		return true
	})
	t.Logf("%d events appended before the kill, %d recovered", n.Load(), total)
}

func regexpMatch(s, pattern string) bool { return regexp.MustCompile(pattern).MatchString(s) }
