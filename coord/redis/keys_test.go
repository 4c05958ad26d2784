package redis

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/meshfast/meshfast/internal/testutil"
)

func TestSlotKnownValues(t *testing.T) {
	// Values from redis-cli CLUSTER KEYSLOT on Redis 7.
	for key, want := range map[string]uint16{
		"":                 0,
		"123456789":        12739,
		"foo":              12182,
		"{user1000}.a":     3443,
		"{user1000}.b":     3443,
		"user1000":         3443,
		"foo{}{bar}":       8363,
		"foo{{bar}}zap":    4015,
		"foo{bar}{zap}":    5061,
		"bar":              5061,
		"{}x":              slotOfWhole("{}x"),
		"history:{chat}":   slotOfWhole("chat"),
		"mesh:record:{id}": slotOfWhole("id"),
	} {
		if got := slot(key); got != want {
			t.Errorf("slot(%q) = %d, want %d", key, got, want)
		}
	}
}

func slotOfWhole(s string) uint16 { return crc16(s) % numSlots }

func TestSlotAgainstCluster(t *testing.T) {
	rc := testutil.StartRedisCluster(t, 3)
	for i, key := range []string{"", "a", "chat", "a{b}", "{}x", "x{", "a}b", "{a}{b}", "history:{a{b}}", "mesh:presence:due:{mf3}", "ünï{cødé}"} {
		v, err := rc.Nodes[i%3].Do("CLUSTER", "KEYSLOT", key)
		if err != nil {
			t.Fatal(err)
		}
		if got := slot(key); int64(got) != v.(int64) {
			t.Errorf("slot(%q) = %d, CLUSTER KEYSLOT = %v", key, got, v)
		}
	}
}

// Partition tags spread evenly over the slot range, so over the masters.
func TestPartitionTags(t *testing.T) {
	for _, n := range []int{1, 3, 16, 64, 1024} {
		tags := partitionTags(n)
		seen := map[string]bool{}
		for i, tag := range tags {
			s := int(slot(tag + "x"))
			if lo, hi := i*numSlots/n, (i+1)*numSlots/n; s < lo || s >= hi {
				t.Fatalf("n=%d: tag %d %s in slot %d, want [%d,%d)", n, i, tag, s, lo, hi)
			}
			if seen[tag] {
				t.Fatalf("n=%d: tag %s twice", n, tag)
			}
			seen[tag] = true
		}
	}
}

// Keys a script takes together share a slot on a cluster.
func TestClusterKeysColocated(t *testing.T) {
	l := newLayout(true, 16)
	for i := range 200 {
		id := "id-" + strconv.Itoa(i)
		if i%7 == 0 {
			id = fmt.Sprintf("we{ird}%d}", i)
		}
		v, ver, h := l.recordKeys(id)
		same(t, "record", v, ver, h)
		p := l.part(id)
		same(t, "registry", l.registry(p), l.nodeConnsPrefix(p)+"node", l.connMeta(p), l.connRooms(id), l.memberKey("room", id), l.connRoomsPrefix(p)+id+connRoomsSuffix)
		k := l.presence(id)
		same(t, "presence", k.deadlines, k.members, k.due, k.statePrefix+"conn-1")
		if key, ok := l.history(id); ok {
			same(t, "history", key, id)
		} else if i%7 != 0 {
			t.Fatalf("history of %q not colocated", id)
		}
	}
}

func same(t *testing.T, what string, keys ...string) {
	t.Helper()
	for _, k := range keys[1:] {
		if slot(k) != slot(keys[0]) {
			t.Fatalf("%s: %q (slot %d) and %q (slot %d)", what, keys[0], slot(keys[0]), k, slot(k))
		}
	}
}
