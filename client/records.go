package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"

	"github.com/meshfast/meshfast/protocol"
	"github.com/meshfast/meshfast/protocol/jsonx"
)

// RecordMode is how a record subscription receives updates.
type RecordMode string

// Record subscription modes.
const (
	// RecordFull: every update carries the whole value. The default.
	RecordFull RecordMode = protocol.RecordModeFull
	// RecordPatch: updates carry RFC 6902 patches, which the client applies
	// to its copy of the value.
	RecordPatch RecordMode = protocol.RecordModePatch
)

// RecordUpdate is what a record callback receives.
type RecordUpdate struct {
	RecordID string
	// Version is the record's version after the update: 0 for a record
	// never written, then +1 per change.
	Version int64
	// Value is the whole value after the update: the server's, for the
	// initial call, a full update or a resync; in patch mode otherwise,
	// the client's copy with Patch applied by jsonx.Apply (compact JSON,
	// members in the order JavaScript would list them). JSON null for a
	// record never written. Read-only.
	Value json.RawMessage
	// Patch is the RFC 6902 patch this update brought, as received; nil
	// for a full value. Read-only.
	Patch json.RawMessage
}

// SubscribeRecordResult is the outcome of SubscribeRecord.
type SubscribeRecordResult struct {
	// Success is false when the server refused (record not exposed, or its
	// guard said no).
	Success bool
	// Record is the current value, JSON null when never written or refused.
	Record json.RawMessage
	// Version is the current version, 0 when never written or refused.
	Version int64
}

// recordSub is one record subscription. id, mode and fn never change.
// The other fields belong to the event goroutine; a (re)subscription
// always makes a new recordSub, so they are never shared across
// goroutines.
type recordSub struct {
	id   string
	mode RecordMode
	fn   func(RecordUpdate)

	awaiting bool                    // no snapshot yet: pushes are buffered
	buf      []protocol.RecordUpdate // pushes that came before the snapshot
	dropped  int64                   // highest version dropped from a full buffer
	version  int64
	value    json.RawMessage // last whole value, the base of the next patch
}

// maxBuffered bounds the pushes kept while a snapshot is awaited.
const maxBuffered = 1024

func (s *recordSub) renew() *recordSub {
	return &recordSub{id: s.id, mode: s.mode, fn: s.fn, awaiting: true}
}

// SubscribeRecord subscribes to the record id (mesh/subscribe-record) in
// mode ("" means RecordFull). On success fn is called once with the
// current value (Patch nil), ahead of every later update, and then for
// each update. In patch mode the client keeps a copy of the value, applies
// each patch to it and passes the result as Value; when an update's
// version is not the previous one + 1 (a missed update), or a patch does
// not apply, it drops the update, unsubscribes and subscribes again, and
// fn gets the current value in full (Mesh's resync, wire.md 5.9). A
// refusal is not an error: it returns Success false and fn is never
// called. The subscription is restored after a reconnect, where fn again
// gets the full value, until UnsubscribeRecord. Subscribing to the same
// record again replaces the earlier subscription.
//
// fn runs on the event goroutine, so the initial call may come just
// after SubscribeRecord returns; the result carries the same value.
func (c *Client) SubscribeRecord(ctx context.Context, id string, mode RecordMode, fn func(RecordUpdate)) (SubscribeRecordResult, error) {
	if mode == "" {
		mode = RecordFull
	}
	sub := &recordSub{id: id, mode: mode, fn: fn, awaiting: true}
	c.mu.Lock()
	c.records[id] = sub
	c.mu.Unlock()
	raw, err := c.call(ctx, nil, protocol.CmdSubscribeRecord, recordSubscribeRequest(sub), c.recordHook(sub))
	if err != nil {
		c.dropRecord(sub)
		return SubscribeRecordResult{}, err
	}
	var r protocol.SubscribeRecordReply
	if err := decodeReply(raw, &r); err != nil {
		return SubscribeRecordResult{}, err
	}
	if !r.Success {
		return SubscribeRecordResult{Record: json.RawMessage("null")}, nil
	}
	return SubscribeRecordResult{Success: true, Record: nullIfEmpty(r.Record), Version: r.Version}, nil
}

// UnsubscribeRecord ends the subscription to the record id: its callback
// is not called again from now on, and the server is told
// (mesh/unsubscribe-record). It returns the server's answer.
func (c *Client) UnsubscribeRecord(ctx context.Context, id string) (bool, error) {
	c.mu.Lock()
	delete(c.records, id)
	c.mu.Unlock()
	return c.boolCommand(ctx, protocol.CmdUnsubscribeRecord, protocol.UnsubscribeRecordRequest{RecordID: id})
}

// PublishRecordUpdate asks the server to set the record id to value
// (mesh/publish-record-update; value is encoded as JSON, nil as null). It
// returns true when the server accepted. Mesh refuses a write to a record
// that is not writable by this connection with an error reply, returned as
// false and a *protocol.CodeError.
func (c *Client) PublishRecordUpdate(ctx context.Context, id string, value any) (bool, error) {
	v, err := encodeValue(value)
	if err != nil {
		return false, err
	}
	raw, err := c.call(ctx, nil, protocol.CmdPublishRecordUpdate, mustMarshal(protocol.PublishRecordUpdateRequest{RecordID: id, NewValue: v}), nil)
	if err != nil {
		return false, err
	}
	var r protocol.SuccessReply
	if err := decodeReply(raw, &r); err != nil {
		return false, err
	}
	return r.Success, nil
}

func recordSubscribeRequest(s *recordSub) []byte {
	return mustMarshal(protocol.SubscribeRecordRequest{RecordID: s.id, Mode: string(s.mode)})
}

// recordHook returns the reply hook of a subscribe-record for sub: on
// success it queues the snapshot for the event goroutine, in order with
// the pushes; otherwise it forgets sub.
func (c *Client) recordHook(sub *recordSub) func([]byte) {
	return func(payload []byte) {
		var r protocol.SubscribeRecordReply
		if protocol.Unmarshal(payload, &r) != nil || !r.Success {
			c.dropRecord(sub)
			return
		}
		value := nullIfEmpty(r.Record)
		c.events.post(func() { c.recordSnapshot(sub, value, r.Version) })
	}
}

// dropRecord forgets sub unless it has been replaced.
func (c *Client) dropRecord(sub *recordSub) {
	c.mu.Lock()
	if c.records[sub.id] == sub {
		delete(c.records, sub.id)
	}
	c.mu.Unlock()
}

func (c *Client) recordIs(sub *recordSub) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.records[sub.id] == sub
}

// recordSnapshot runs on the event goroutine: it installs the value a
// (re)subscription returned, gives it to the callback, then replays the
// pushes that arrived before it.
func (c *Client) recordSnapshot(s *recordSub, value json.RawMessage, version int64) {
	if !c.recordIs(s) {
		return
	}
	s.awaiting = false
	s.version = version
	s.value = value
	s.fn(RecordUpdate{RecordID: s.id, Version: version, Value: value})
	buf, dropped := s.buf, s.dropped
	s.buf, s.dropped = nil, 0
	for _, u := range buf {
		if u.Version <= s.version {
			continue // already in the snapshot
		}
		if !c.applyRecordUpdate(s, u) {
			return
		}
	}
	if dropped > s.version {
		c.resyncRecord(s)
	}
}

// deliverRecordUpdate runs on the event goroutine.
func (c *Client) deliverRecordUpdate(payload []byte) {
	var u protocol.RecordUpdate
	if err := protocol.Unmarshal(payload, &u); err != nil {
		c.logf("ignoring malformed %s payload: %v", protocol.CmdRecordUpdate, err)
		return
	}
	c.mu.Lock()
	s := c.records[u.RecordID]
	c.mu.Unlock()
	if s == nil {
		return
	}
	if s.awaiting {
		if len(s.buf) < maxBuffered {
			s.buf = append(s.buf, u)
		} else {
			s.dropped = max(s.dropped, u.Version)
		}
		return
	}
	c.applyRecordUpdate(s, u)
}

// applyRecordUpdate applies one push to s and calls its callback. It
// reports false when it started a resync instead.
func (c *Client) applyRecordUpdate(s *recordSub, u protocol.RecordUpdate) bool {
	switch {
	case u.Patch != nil:
		if u.Version != s.version+1 {
			c.logf("record %q: version %d after %d; resubscribing", s.id, u.Version, s.version)
			c.resyncRecord(s)
			return false
		}
		base := []byte(s.value)
		if isNull(base) {
			// A null value (never written, or set to null by an earlier
			// update): Mesh's server diffs old ?? {}, so every patch, not
			// only the first, is relative to {} then.
			base = emptyObject
		}
		value, err := jsonx.Apply(base, u.Patch)
		if err == nil {
			s.value, s.version = value, u.Version
			s.fn(RecordUpdate{RecordID: s.id, Version: u.Version, Value: value, Patch: u.Patch})
			return true
		}
		c.logf("record %q: patch to version %d: %v; resubscribing", s.id, u.Version, err)
		c.resyncRecord(s)
		return false
	case u.Full != nil:
		s.version, s.value = u.Version, u.Full
		s.fn(RecordUpdate{RecordID: s.id, Version: u.Version, Value: u.Full})
	}
	return true
}

// resyncRecord replaces s by a fresh subscription that awaits a snapshot,
// and in the background sends mesh/unsubscribe-record then
// mesh/subscribe-record, as Mesh's client does. Runs on the event
// goroutine.
func (c *Client) resyncRecord(s *recordSub) {
	ns := s.renew()
	c.mu.Lock()
	if c.closed || c.records[s.id] != s {
		c.mu.Unlock()
		return
	}
	c.records[s.id] = ns
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		ctx := c.stop
		unsub := mustMarshal(protocol.UnsubscribeRecordRequest{RecordID: s.id})
		if _, err := c.call(ctx, nil, protocol.CmdUnsubscribeRecord, unsub, nil); err != nil && !errors.Is(err, ErrClosed) {
			c.logf("record %q: resync unsubscribe: %v", s.id, err)
		}
		raw, err := c.call(ctx, nil, protocol.CmdSubscribeRecord, recordSubscribeRequest(ns), c.recordHook(ns))
		switch {
		case errors.Is(err, ErrClosed):
		case err != nil:
			// A reconnect restores the subscription; anything else leaves
			// it awaiting until then.
			c.logf("record %q: resync subscribe: %v", s.id, err)
		default:
			var r protocol.SubscribeRecordReply
			if protocol.Unmarshal(raw, &r) != nil || !r.Success {
				c.logf("record %q: resync refused by the server", s.id)
			}
		}
	}()
}

var emptyObject = []byte("{}")

// isNull reports whether raw is JSON null (or empty).
func isNull(raw []byte) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

func nullIfEmpty(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage("null")
	}
	return raw
}
