package redis

import (
	"hash/fnv"
	"strconv"
	"strings"
)

// layout names every key the coordinator uses. On a single Redis the names
// are Mesh's (../shared/mesh-protocol/state.md §3) where Mesh has the data,
// so that redis-cli and a Mesh server read what meshfast writes. On a
// cluster, keys that a script touches together must share a hash slot, so
// they carry a hash tag:
//
//   - per record: {<id>} (value, version and canonical hash);
//   - per channel: {<channel>} on the history list, so that the history push
//     and the SPUBLISH on the channel's own name run in one script;
//   - per partition of a connection id: {<tag of p>} on the registry,
//     connection metadata, the connection's room list and its share of every
//     room's member set (a room's members are split over the partitions of
//     their ids), so that joining, leaving and removing a connection change
//     both sides of the membership in one script;
//   - per partition of a room name: presence (the room's entries, members
//     and states, and the partition's due-index of rooms). A partition, not
//     the room, because the presence sweeper must find every room with
//     something due without scanning the keyspace: each partition has one
//     due-index in the slot of the rooms it indexes, so a sweep of a
//     partition is one atomic script.
//
// Keys that are only touched by single-key commands keep Mesh's names on a
// cluster too: room metadata, node liveness.
type layout struct {
	cluster bool
	// tags[p] is partition p's hash tag, braces included ("" on a single
	// Redis, where there is one partition).
	tags []string
}

func newLayout(cluster bool, partitions int) layout {
	if !cluster {
		return layout{tags: []string{""}}
	}
	return layout{cluster: true, tags: partitionTags(partitions)}
}

// partitionTags returns n hash tags whose slots are spread evenly over the
// 16384 slots (tag i lands in the i-th n-th of the slot range), so that the
// partitions spread over the masters as evenly as the masters split the
// slots. Bare numbers would cluster: crc16("0".."15") leaves masters idle
// (centrifuge issue 554). Every node computes the same tags.
func partitionTags(n int) []string {
	tags := make([]string, n)
	for i := range tags {
		lo, hi := i*numSlots/n, (i+1)*numSlots/n
		for j := 0; ; j++ {
			t := "mf" + strconv.Itoa(j)
			if s := int(crc16(t) % numSlots); s >= lo && s < hi {
				tags[i] = "{" + t + "}"
				break
			}
		}
	}
	return tags
}

func (l layout) partitions() int { return len(l.tags) }

// part returns the partition of a connection id or room name.
func (l layout) part(id string) int {
	if len(l.tags) == 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % uint32(len(l.tags)))
}

// Registry group (partition of the connection id).

// registry is the hash connection id → node ("mesh:connections").
func (l layout) registry(p int) string {
	if !l.cluster {
		return "mesh:connections"
	}
	return "mesh:connections:" + l.tags[p]
}

// nodeConnsPrefix + node is the set of the node's connections
// ("mesh:connections:<node>").
func (l layout) nodeConnsPrefix(p int) string {
	if !l.cluster {
		return "mesh:connections:"
	}
	return "mesh:connections:" + l.tags[p] + ":"
}

// connMeta is the hash connection id → metadata ("mesh:connection-meta", as
// in Mesh's successor; Mesh itself overwrote the registry entry).
func (l layout) connMeta(p int) string {
	if !l.cluster {
		return "mesh:connection-meta"
	}
	return "mesh:connection-meta:" + l.tags[p]
}

// connRooms is the set of rooms of a connection
// ("mesh:connection:<id>:rooms"), in the registry group of the connection.
func (l layout) connRooms(connID string) string {
	if !l.cluster {
		return "mesh:connection:" + connID + ":rooms"
	}
	return "mesh:connection:" + l.tags[l.part(connID)] + connID + ":rooms"
}

// connRoomsPrefix + id + connRoomsSuffix is connRooms(id) for the ids of
// partition p.
func (l layout) connRoomsPrefix(p int) string {
	if !l.cluster {
		return "mesh:connection:"
	}
	return "mesh:connection:" + l.tags[p]
}

const connRoomsSuffix = ":rooms"

// Rooms.

// roomPrefix(p) + room is the set of room's members whose ids are in
// partition p ("mesh:room:<room>", all of them, on a single Redis).
func (l layout) roomPrefix(p int) string {
	if !l.cluster {
		return "mesh:room:"
	}
	return "mesh:room:" + l.tags[p]
}

// memberKey is the member set of room that holds connID.
func (l layout) memberKey(room, connID string) string {
	return l.roomPrefix(l.part(connID)) + room
}

// roomName returns the room of a member set key found by SCAN.
func (l layout) roomName(key string) string {
	key = strings.TrimPrefix(key, "mesh:room:")
	if l.cluster {
		if i := strings.IndexByte(key, '}'); i >= 0 {
			key = key[i+1:]
		}
	}
	return key
}

func (l layout) roomMeta(room string) string { return "mesh:roommeta:" + room }

const (
	roomPattern     = "mesh:room:*"
	roomMetaPattern = "mesh:roommeta:*"
	roomMetaField   = "data"
)

// Records.

func (l layout) recordKeys(id string) (value, version, hash string) {
	if !l.cluster {
		return "mesh:record:" + id, "mesh:record-version:" + id, "mesh:record-hash:" + id
	}
	t := "{" + id + "}"
	return "mesh:record:" + t, "mesh:record-version:" + t, "mesh:record-hash:" + t
}

// history returns a channel's history list ("history:<channel>") and
// whether it shares the hash slot of the channel's pub/sub name, so that a
// script may push and SPUBLISH atomically. On a single Redis it always
// does. On a cluster it does unless the name's braces defeat the tag
// (a name like "a{b}" hashes on "b").
func (l layout) history(channel string) (key string, colocated bool) {
	if !l.cluster {
		return "history:" + channel, true
	}
	key = "history:{" + channel + "}"
	return key, slot(key) == slot(channel)
}

// Presence group (partition of the room).

func (l layout) presencePart(room string) int { return l.part(room) }

// presenceDeadlinesPrefix + room is the room's sorted set of deadlines:
// member "p"+id for a presence entry, "s"+id for a presence state with an
// expiry, scored by their deadline in Redis time (ms). Meshfast's own key:
// Mesh keeps one string key with a TTL per entry and learns of expiries
// from keyspace notifications, which a cluster does not broadcast and which
// every Mesh instance acts on (N duplicate leaves).
func (l layout) presenceDeadlinesPrefix(p int) string {
	return "mesh:presence:deadlines:" + l.tags[p]
}

// presenceMembersPrefix + room is Mesh's set of present connections
// ("mesh:presence:room:<room>"), kept for readers of Mesh's keys; the
// coordinator itself reads the deadlines, which know what has lapsed.
func (l layout) presenceMembersPrefix(p int) string {
	return "mesh:presence:room:" + l.tags[p]
}

// presenceStatePrefix + room + ":conn:" + id is Mesh's presence state key
// ("mesh:presence:state:<room>:conn:<id>").
func (l layout) presenceStatePrefix(p int) string {
	return "mesh:presence:state:" + l.tags[p]
}

// presenceDue is the partition's sorted set of rooms, each scored by a
// deadline no later than its earliest (a hint that a sweep corrects).
func (l layout) presenceDue(p int) string {
	if !l.cluster {
		return "mesh:presence:due"
	}
	return "mesh:presence:due:" + l.tags[p]
}

type presenceKeys struct {
	deadlines, members, due, statePrefix string
}

func (l layout) presence(room string) presenceKeys {
	p := l.presencePart(room)
	return presenceKeys{
		deadlines:   l.presenceDeadlinesPrefix(p) + room,
		members:     l.presenceMembersPrefix(p) + room,
		due:         l.presenceDue(p),
		statePrefix: l.presenceStatePrefix(p) + room + ":conn:",
	}
}

// Nodes (Mesh's successor's names; single-key commands only).

const instancesKey = "mesh:instances"

func (l layout) heartbeat(node string) string { return "mesh:instance:" + node + ":heartbeat" }

// Hash slots: Redis Cluster's CRC16 (XMODEM) of the key, or of its hash
// tag: the bytes between the first '{' and the next '}', when not empty.

const numSlots = 16384

func slot(key string) uint16 {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return crc16(key) % numSlots
}

var crcTable = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

func crc16(s string) uint16 {
	var c uint16
	for i := 0; i < len(s); i++ {
		c = c<<8 ^ crcTable[byte(c>>8)^s[i]]
	}
	return c
}
