package client

import (
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/meshfast/meshfast/protocol"
)

// PresenceGroup is one entry of a DedupedPresence: the connections that
// belong to one logical entity (a user with several tabs, say).
type PresenceGroup struct {
	// Representative is the member that stands for the group: the first to
	// join, then the next in join order when it leaves, and the sender of
	// the newest state whenever a state is accepted.
	Representative string
	// Members lists the group's connection ids in join order.
	Members []string
	// State is the group's newest presence state: nil until one arrives,
	// JSON null once cleared or expired.
	State json.RawMessage
	// Timestamp is the time of State, in Unix milliseconds; 0 if none.
	Timestamp int64
}

// DedupedPresenceOptions configures NewDedupedPresence.
type DedupedPresenceOptions struct {
	// GroupID maps a connection id to its group id, for example a user id
	// taken from the connection's metadata (Client.GetConnectionMetadata).
	// An error or "" puts the connection in a group of its own,
	// "conn:<connectionID>". The answer is cached while the connection is
	// present (an error is not cached). GroupID is called with no lock
	// held and may block.
	GroupID func(connectionID string) (string, error)
	// OnUpdate is called after every update handled, changed or not, with
	// a snapshot of all groups keyed by group id, which it may keep.
	OnUpdate func(groups map[string]PresenceGroup)
}

// DedupedPresence folds a room's per-connection presence updates into one
// entry per group, Mesh's createDedupedPresenceHandler (client-utils):
//   - a join adds the connection to its group, creating the group with the
//     connection as representative;
//   - a leave removes it; the group goes when its last member leaves, and
//     the next member in join order takes over as representative;
//   - a state update is taken when it is at least as new as the group's
//     state (its timestamp is not older: of two with the same timestamp,
//     the one handled later wins, as in Mesh's client-utils/index.ts, which
//     compares with >=), and then makes its sender the representative; an
//     older one is ignored, but OnUpdate is called all the same;
//   - updates for a connection whose group does not exist (a state or leave
//     before any join) change nothing.
//
// Use Handle as the presence callback:
//
//	d := client.NewDedupedPresence(client.DedupedPresenceOptions{GroupID: userOf, OnUpdate: render})
//	res, err := c.SubscribePresence(ctx, room, d.Handle)
//	d.Seed(res.Present, res.States)
//
// A DedupedPresence is safe for use from any goroutine; updates are
// applied in the order Handle is called.
type DedupedPresence struct {
	opts DedupedPresenceOptions

	mu        sync.Mutex
	groups    map[string]*PresenceGroup
	connGroup map[string]string // cached GroupID answers
}

// NewDedupedPresence returns an empty DedupedPresence.
func NewDedupedPresence(o DedupedPresenceOptions) *DedupedPresence {
	return &DedupedPresence{
		opts:      o,
		groups:    make(map[string]*PresenceGroup),
		connGroup: make(map[string]string),
	}
}

// Handle applies one presence update and calls OnUpdate.
func (d *DedupedPresence) Handle(u PresenceUpdate) {
	gid := d.groupOf(u.ConnectionID)
	ts := u.Timestamp
	if ts == 0 {
		ts = time.Now().UnixMilli()
	}
	d.mu.Lock()
	switch u.Type {
	case protocol.PresenceJoin:
		d.joinLocked(gid, u.ConnectionID)
	case protocol.PresenceLeave:
		d.leaveLocked(gid, u.ConnectionID)
	case protocol.PresenceState:
		d.stateLocked(gid, u.ConnectionID, u.State, ts)
	}
	groups := d.snapshotLocked()
	d.mu.Unlock()
	if d.opts.OnUpdate != nil {
		d.opts.OnUpdate(groups)
	}
}

// Seed adds the connections of a SubscribePresence (or JoinRoom) result as
// joins, in order, then their states, and calls OnUpdate once. Seeded
// states have timestamp 0, so any later state replaces them.
func (d *DedupedPresence) Seed(present []string, states map[string]json.RawMessage) {
	gids := make(map[string]string, len(present))
	for _, id := range present {
		gids[id] = d.groupOf(id)
	}
	ids := make([]string, 0, len(states))
	for id := range states {
		ids = append(ids, id)
		if _, ok := gids[id]; !ok {
			gids[id] = d.groupOf(id)
		}
	}
	slices.Sort(ids)
	d.mu.Lock()
	for _, id := range present {
		d.joinLocked(gids[id], id)
	}
	for _, id := range ids {
		d.stateLocked(gids[id], id, states[id], 0)
	}
	groups := d.snapshotLocked()
	d.mu.Unlock()
	if d.opts.OnUpdate != nil {
		d.opts.OnUpdate(groups)
	}
}

// Groups returns a snapshot of the groups, keyed by group id.
func (d *DedupedPresence) Groups() map[string]PresenceGroup {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.snapshotLocked()
}

// groupOf returns the (cached) group id of a connection.
func (d *DedupedPresence) groupOf(connID string) string {
	d.mu.Lock()
	gid, ok := d.connGroup[connID]
	d.mu.Unlock()
	if ok {
		return gid
	}
	if d.opts.GroupID != nil {
		if g, err := d.opts.GroupID(connID); err == nil && g != "" {
			d.mu.Lock()
			d.connGroup[connID] = g
			d.mu.Unlock()
			return g
		}
	}
	return "conn:" + connID
}

func (d *DedupedPresence) joinLocked(gid, connID string) {
	g := d.groups[gid]
	if g == nil {
		g = &PresenceGroup{Representative: connID}
		d.groups[gid] = g
	}
	if !slices.Contains(g.Members, connID) {
		g.Members = append(g.Members, connID)
	}
}

func (d *DedupedPresence) leaveLocked(gid, connID string) {
	delete(d.connGroup, connID)
	g := d.groups[gid]
	if g == nil {
		return
	}
	if i := slices.Index(g.Members, connID); i >= 0 {
		g.Members = slices.Delete(g.Members, i, i+1)
	}
	switch {
	case len(g.Members) == 0:
		delete(d.groups, gid)
	case g.Representative == connID:
		g.Representative = g.Members[0]
	}
}

func (d *DedupedPresence) stateLocked(gid, connID string, state json.RawMessage, ts int64) {
	g := d.groups[gid]
	if g == nil {
		return
	}
	if g.Timestamp == 0 || ts >= g.Timestamp {
		if state == nil {
			state = json.RawMessage("null")
		}
		g.State = state
		g.Timestamp = ts
		g.Representative = connID
	}
}

func (d *DedupedPresence) snapshotLocked() map[string]PresenceGroup {
	out := make(map[string]PresenceGroup, len(d.groups))
	for id, g := range d.groups {
		cp := *g
		cp.Members = slices.Clone(g.Members)
		out[id] = cp
	}
	return out
}
