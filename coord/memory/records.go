package memory

import (
	"context"
	"fmt"
	"sync"

	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/protocol/jsonx"
)

type recordShard struct {
	mu sync.RWMutex // leaf
	m  map[string]*record
	_  [32]byte
}

// record is immutable once stored: a write stores a new *record, so that a
// reader may use one without the lock and a writer may compare-and-set on
// the pointer (which, unlike the version, cannot repeat after a delete).
type record struct {
	value   []byte
	version int64
}

// Record implements coord.Records.
func (m *Memory) Record(ctx context.Context, id string) (coord.Record, error) {
	if err := m.check(ctx); err != nil {
		return coord.Record{}, err
	}
	if r := m.loadRecord(id); r != nil {
		return coord.Record{Value: r.value, Version: r.version}, nil
	}
	return coord.Record{}, nil
}

func (m *Memory) loadRecord(id string) *record {
	rs := m.recordShard(id)
	rs.mu.RLock()
	r := rs.m[id]
	rs.mu.RUnlock()
	return r
}

// SetRecord implements coord.Records: read, compare outside the lock, then
// store only if the record is still the one compared against, else retry.
// Every changing write therefore gets its own version.
func (m *Memory) SetRecord(ctx context.Context, id string, value []byte) (coord.RecordUpdate, error) {
	if err := m.check(ctx); err != nil {
		return coord.RecordUpdate{}, err
	}
	if id == "" {
		return coord.RecordUpdate{}, errEmpty("SetRecord", "record id")
	}
	var stored []byte // the clone, made once
	rs := m.recordShard(id)
	for {
		cur := m.loadRecord(id)
		var old []byte
		var ver int64
		if cur != nil {
			old, ver = cur.value, cur.version
		}
		same, err := jsonx.Equal(old, value)
		if err != nil {
			return coord.RecordUpdate{}, fmt.Errorf("coord/memory: SetRecord %q: %w", id, err)
		}
		if same {
			return coord.RecordUpdate{Changed: false, Version: ver, Old: old}, nil
		}
		if stored == nil {
			stored = clone(value)
		}
		next := &record{value: stored, version: ver + 1}
		rs.mu.Lock()
		if rs.m[id] == cur {
			rs.m[id] = next
			rs.mu.Unlock()
			return coord.RecordUpdate{Changed: true, Version: next.version, Old: old}, nil
		}
		rs.mu.Unlock()
	}
}

// DeleteRecord implements coord.Admin.
func (m *Memory) DeleteRecord(ctx context.Context, id string) (bool, error) {
	if err := m.check(ctx); err != nil {
		return false, err
	}
	rs := m.recordShard(id)
	rs.mu.Lock()
	_, ok := rs.m[id]
	delete(rs.m, id)
	rs.mu.Unlock()
	return ok, nil
}

type historyShard struct {
	mu sync.RWMutex // leaf
	m  map[string]*history
	_  [32]byte
}

// history is one channel's stored messages, oldest first. Dropped messages
// are cleared and the slice advanced; append reallocates (copying only the
// live part) when the array is used up.
type history struct{ msgs [][]byte }

// PublishToChannel implements coord.Channels.
func (m *Memory) PublishToChannel(ctx context.Context, channel string, message []byte, keep int) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	if channel == "" {
		return errEmpty("PublishToChannel", "channel")
	}
	if keep > 0 {
		msg := clone(message)
		hs := m.historyShard(channel)
		hs.mu.Lock()
		h := hs.m[channel]
		if h == nil {
			h = &history{}
			hs.m[channel] = h
		}
		h.msgs = append(h.msgs, msg)
		if drop := len(h.msgs) - keep; drop > 0 {
			clear(h.msgs[:drop])
			h.msgs = h.msgs[drop:]
		}
		hs.mu.Unlock()
	}
	return m.Publish(ctx, channel, message)
}

// ChannelHistory implements coord.Channels, newest first.
func (m *Memory) ChannelHistory(ctx context.Context, channel string, limit int) ([][]byte, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return [][]byte{}, nil
	}
	hs := m.historyShard(channel)
	hs.mu.RLock()
	defer hs.mu.RUnlock()
	h := hs.m[channel]
	if h == nil {
		return [][]byte{}, nil
	}
	n := min(limit, len(h.msgs))
	out := make([][]byte, n)
	for i := range n {
		out[i] = h.msgs[len(h.msgs)-1-i]
	}
	return out, nil
}
