package mesh

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"unicode/utf8"

	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/protocol"
	"github.com/meshfast/meshfast/protocol/jsonx"
)

// Records: versioned JSON values that clients subscribe to in full or patch
// mode (Mesh's exposeRecord / publishRecordUpdate).
//
// A write goes to the coordinator (SetRecord: compare, store, bump the
// version). If it changed the value, the writing node computes the RFC 6902
// patch once and publishes one message, with the version, the whole value
// and the patch, on the record's coordinator topic (recordSource), to
// which a node is subscribed while it has subscribers to that record.
// Each such node encodes at most two frames, the full-mode and the
// patch-mode push, and hands each to the engine once, on the record's
// engine topic for that mode (recordFullRoute, recordPatchRoute); the
// engine writes the same bytes to every local subscriber.

// recordState is the record feature's state of one Server.
type recordState struct {
	readable exposures // ExposeRecord
	writable exposures // ExposeWritableRecord; writable implies readable
	// order holds a record's stripe while this node stores and publishes a
	// write to it, so that this node publishes one record's versions in
	// order. It is held across coordinator calls on purpose; no delivery
	// path takes it.
	order [recordOrderStripes]sync.Mutex
}

const recordOrderStripes = 64

func (s *Server) records() *recordState { return &s.rec }

// ExposeRecord lets clients subscribe to the record id, if guard (when not
// nil) allows them. Exposing it again replaces the guard.
func (s *Server) ExposeRecord(id string, guard Guard) { s.records().readable.addExact(id, guard) }

// ExposeRecordPattern lets clients subscribe to every record whose id
// matches re, if guard allows them; the guard gets the concrete id.
func (s *Server) ExposeRecordPattern(re *regexp.Regexp, guard Guard) {
	s.records().readable.addPattern(re, guard)
}

// ExposeWritableRecord lets clients write the record id with
// mesh/publish-record-update, if guard allows them. A writable record is
// readable by every connection, whatever the guards (as in Mesh: the write
// guard gates writes only, and overrides a refusing read guard).
func (s *Server) ExposeWritableRecord(id string, guard Guard) {
	s.records().writable.addExact(id, guard)
}

// ExposeWritableRecordPattern is ExposeWritableRecord for every record
// whose id matches re.
func (s *Server) ExposeWritableRecordPattern(re *regexp.Regexp, guard Guard) {
	s.records().writable.addPattern(re, guard)
}

// recordReadable is Mesh's isRecordExposed: a read exposure whose guard
// allows c, or any writable exposure, without its guard.
func (s *Server) recordReadable(c *Connection, id string) bool {
	rs := s.records()
	return s.guardAllows(&rs.readable, c, id) || exposureMatches(&rs.writable, id)
}

// recordWritable is Mesh's isRecordWritable.
func (s *Server) recordWritable(c *Connection, id string) bool {
	return s.guardAllows(&s.records().writable, c, id)
}

// guardAllows runs x's guards for name; a guard that panics refuses, as a
// throwing guard does in Mesh.
func (s *Server) guardAllows(x *exposures, c *Connection, name string) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			s.opts.Logf("mesh: guard for %q panicked: %v", name, r)
			ok = false
		}
	}()
	return x.allowed(c, name)
}

// exposureMatches reports whether name is exposed in x, ignoring guards.
func exposureMatches(x *exposures, name string) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if _, ok := x.exact[name]; ok {
		return true
	}
	for _, p := range x.patterns {
		if p.re.MatchString(name) {
			return true
		}
	}
	return false
}

// Errors of the record API.
var (
	errEmptyRecordID     = errors.New("mesh: empty record id")
	errRecordInvalidJSON = errors.New("mesh: record value is not valid JSON")
	errRecordInvalidUTF8 = errors.New("mesh: record value is not valid UTF-8")
	// Mesh's own text, which clients receive verbatim (wire_test.go).
	//lint:ignore ST1005 wire-compatible message
	errRecordPayload  = errors.New(`Invalid payload: expected {"recordId": string, "newValue": any}`)
	errConnectionGone = errors.New("mesh: connection closed")
	// What mesh/publish-record-update's client is told of a newValue that
	// recordJSON refuses (one that came in a frame the decoder accepted
	// should not be).
	errRecordValue = errors.New("newValue is not valid JSON")
)

// publicCause is the client-facing part of an error coordFailed returned:
// the text of its *protocol.CodeError.
func publicCause(err error) error {
	var ce *protocol.CodeError
	if errors.As(err, &ce) {
		return errors.New(ce.Message)
	}
	return errCoordinator
}

// PublishRecordUpdate sets recordID's value. If the value changed (as JSON:
// key order and number spelling do not count), its version goes up by one
// and every subscriber, on every node, gets the update: the whole value in
// full mode, an RFC 6902 patch from the previous value in patch mode. A
// write that changes nothing is not an error and sends nothing.
//
// value is encoded as JSON; a json.RawMessage is used as is (after removing
// insignificant whitespace) and must be valid JSON; nil means null.
func (s *Server) PublishRecordUpdate(ctx context.Context, recordID string, value any) error {
	raw, err := recordJSON(value)
	if err != nil {
		return fmt.Errorf("mesh: record %q: %w", recordID, err)
	}
	if err := s.writeRecord(ctx, recordID, raw); err != nil {
		return fmt.Errorf("mesh: publish record %q: %w", recordID, err)
	}
	return nil
}

// Record returns recordID's value and version: nil and 0 for a record that
// was never written.
func (s *Server) Record(ctx context.Context, recordID string) (json.RawMessage, int64, error) {
	r, err := s.co.Record(ctx, recordID)
	if err != nil {
		return nil, 0, err
	}
	return json.RawMessage(bytes.Clone(r.Value)), r.Version, nil
}

// recordJSON returns value as compact JSON.
func recordJSON(value any) ([]byte, error) {
	raw, ok := value.(json.RawMessage)
	if !ok {
		if value == nil {
			return []byte("null"), nil
		}
		return encodePayload(nil, value)
	}
	if len(raw) == 0 {
		return []byte("null"), nil
	}
	out := []byte(raw)
	if hasSpace(raw) {
		var buf bytes.Buffer
		buf.Grow(len(raw))
		if err := json.Compact(&buf, raw); err != nil {
			return nil, fmt.Errorf("%w: %v", errRecordInvalidJSON, err)
		}
		out = buf.Bytes()
	} else if !json.Valid(raw) {
		return nil, errRecordInvalidJSON
	}
	if !utf8.Valid(out) {
		return nil, errRecordInvalidUTF8 // it could not travel in a text frame
	}
	return out, nil
}

// hasSpace reports whether JSON text has whitespace outside its strings.
// It only looks at bytes; validity is checked separately.
func hasSpace(b []byte) bool {
	in := false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case in && c == '\\':
			i++
		case c == '"':
			in = !in
		case !in && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			return true
		}
	}
	return false
}

// writeRecord stores raw (compact, valid JSON) as id's value and, if that
// changed it, publishes the update to the nodes with subscribers.
func (s *Server) writeRecord(ctx context.Context, id string, raw []byte) error {
	if id == "" {
		return errEmptyRecordID
	}
	mu := &s.records().order[stripe(id)]
	mu.Lock()
	defer mu.Unlock()
	upd, err := s.co.SetRecord(ctx, id, raw)
	if err != nil {
		return err
	}
	if !upd.Changed {
		return nil
	}
	msg := make([]byte, 0, 128+len(id)+2*len(raw)+len(upd.Old))
	msg = appendRecordMessage(msg, id, upd.Version, raw)
	head := len(msg)
	msg = appendRecordPatch(msg, upd.Old, raw)
	if patchTooLarge(len(msg)-head, len(raw)) {
		msg = msg[:head] // no patch: patch-mode subscribers get the value
	}
	return s.co.Publish(ctx, recordSource.coordTopic(id), msg)
}

// patchTooLarge reports whether an update's patch-mode subscribers should
// get the whole value instead of the patch: when the patch is the larger
// of the two, past minFullFallback. A patch can be several times the value
// (a list replaced by its reverse, every key of an object changed: each
// operation repeats a path and a value), and a patch of several MiB for a
// value of a few hundred KiB would cost every subscriber the difference,
// and could close a reader that keeps up as a slow consumer.
//
// Mesh's JavaScript client takes a full update in patch mode as a resync:
// handleRecordUpdate (nvms/prsm packages/mesh/src/client/client.ts,
// @48b41c9d) applies `patch` when present, and otherwise, when `full` is
// present, sets the subscription's localVersion to the update's version
// and calls the callback with {recordId, full, version}, whatever the
// mode; the callback already gets `full` from the subscribe reply.
// meshfast's Go client does the same (client/records.go,
// applyRecordUpdate).
//
// Below minFullFallback the patch is sent even when larger, as Mesh would
// send it: the bytes saved are few, and a small update (a primitive value
// replaced, whose patch always outweighs it) keeps Mesh's wire form.
func patchTooLarge(patch, value int) bool {
	return patch > value && patch > minFullFallback
}

// minFullFallback is the patch size below which patchTooLarge keeps the
// patch.
const minFullFallback = 1 << 10

func stripe(id string) int {
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	return int(h % recordOrderStripes)
}

var emptyObject = []byte("{}")

// appendRecordPatch appends the patch from old to new. As Mesh compares
// old ?? {}, a missing or null old value counts as {}: the first write of
// an object is a list of "add" operations. A value too deep to diff is
// replaced whole.
func appendRecordPatch(dst, old, new []byte) []byte {
	if o := bytes.TrimSpace(old); len(o) == 0 || string(o) == "null" {
		old = emptyObject
	}
	out, err := jsonx.AppendDiff(dst, old, new)
	if err != nil {
		out = append(dst, `[{"op":"replace","path":"","value":`...)
		out = append(out, new...)
		out = append(out, "}]"...)
	}
	return out
}

// A record update travels between nodes as
//
//	'R', uvarint version, uvarint len(id), id, uvarint len(full), full, patch
//
// where full is the whole new value and patch (the rest) the RFC 6902
// operations from the previous value, both JSON. An empty patch means the
// writer chose to send patch-mode subscribers the whole value
// (patchTooLarge).
const recordMessageTag = 'R'

func appendRecordMessage(dst []byte, id string, version int64, full []byte) []byte {
	dst = append(dst, recordMessageTag)
	dst = binary.AppendUvarint(dst, uint64(version))
	dst = binary.AppendUvarint(dst, uint64(len(id)))
	dst = append(dst, id...)
	dst = binary.AppendUvarint(dst, uint64(len(full)))
	return append(dst, full...)
}

func parseRecordMessage(p []byte) (id []byte, version int64, full, patch []byte, ok bool) {
	if len(p) == 0 || p[0] != recordMessageTag {
		return nil, 0, nil, nil, false
	}
	p = p[1:]
	v, k := binary.Uvarint(p)
	if k <= 0 || v > 1<<62 {
		return nil, 0, nil, nil, false
	}
	p = p[k:]
	field := func() []byte {
		n, k := binary.Uvarint(p)
		if k <= 0 || n > uint64(len(p)-k) {
			ok = false
			return nil
		}
		b := p[k : k+int(n)]
		p = p[k+int(n):]
		return b
	}
	ok = true
	id = field()
	full = field()
	if !ok || len(full) == 0 {
		return nil, 0, nil, nil, false
	}
	return id, int64(v), full, p, true
}

// recordUpdateHandler is what the node does with an update of recordID
// from the coordinator (recordSource's delivery).
func (s *Server) recordUpdateHandler(recordID string) coord.Handler {
	return s.deliverRecord(recordSource, recordID)
}

// deliverRecordUpdate encodes the two pushes once and publishes each to its
// mode's engine topic; the engine fans them out per loop without copying.
// Without a patch, both topics get the one full push.
func (s *Server) deliverRecordUpdate(recordID, fullTopic, patchTopic string, payload []byte) {
	id, version, full, patch, ok := parseRecordMessage(payload)
	if !ok || string(id) != recordID {
		s.opts.Logf("mesh: malformed record update on %q", recordID)
		return
	}
	f := engine.AcquireFrame()
	f.SetPayload(engine.OpText, protocol.AppendRecordUpdateFull(f.PayloadBuf(), recordID, full, version))
	s.e.Publish(fullTopic, f, nil)
	if len(patch) == 0 {
		s.e.Publish(patchTopic, f, nil) // the same frame: the value, not a patch
		f.Release()
		return
	}
	f.Release()
	f = engine.AcquireFrame()
	f.SetPayload(engine.OpText, protocol.AppendRecordUpdatePatch(f.PayloadBuf(), recordID, patch, version))
	s.e.Publish(patchTopic, f, nil)
	f.Release()
}

// subscribeRecord subscribes c to id in the given mode (switching it if c
// was subscribed in the other one) and then reads the record. Subscribing
// first means no update after the snapshot is missed; one at or before the
// snapshot's version may still arrive, and clients skip it.
func (s *Server) subscribeRecord(ctx context.Context, c *Connection, id string, patch bool) (coord.Record, error) {
	r := recordFullRoute
	if patch {
		r = recordPatchRoute
	}
	fresh := s.subs.holds(c, recordSource, id) == nil
	if err := s.subs.take(ctx, c, r, id); err != nil {
		return coord.Record{}, err
	}
	rec, err := s.co.Record(ctx, id)
	if err != nil {
		// The client is told it failed: leave no new subscription behind.
		if fresh {
			s.subs.drop(context.WithoutCancel(ctx), c, recordSource, id)
		}
		return coord.Record{}, err
	}
	return rec, nil
}

// unsubscribeRecord ends c's subscription to id; it reports whether there
// was one.
func (s *Server) unsubscribeRecord(ctx context.Context, c *Connection, id string) bool {
	return s.subs.drop(ctx, c, recordSource, id)
}

// registerRecordBuiltins exposes the record commands.
func (s *Server) registerRecordBuiltins() {
	s.Expose(protocol.CmdSubscribeRecord, func(c *Context) (any, error) {
		var req protocol.SubscribeRecordRequest
		if c.Bind(&req) != nil || req.RecordID == "" {
			return protocol.SubscribeRecordReply{}, nil
		}
		patch := false
		switch req.Mode {
		case "", protocol.RecordModeFull:
		case protocol.RecordModePatch:
			patch = true
		default:
			return protocol.SubscribeRecordReply{}, nil
		}
		if !s.recordReadable(c.Conn, req.RecordID) {
			return protocol.SubscribeRecordReply{}, nil
		}
		rec, err := s.subscribeRecord(c, c.Conn, req.RecordID, patch)
		if err != nil {
			s.opts.Logf("mesh: subscribe %s to record %q: %v", c.Conn.id, req.RecordID, err)
			return protocol.SubscribeRecordReply{}, nil
		}
		return protocol.SubscribeRecordReply{Success: true, Record: rec.Value, Version: rec.Version}, nil
	})
	s.Expose(protocol.CmdUnsubscribeRecord, func(c *Context) (any, error) {
		var req protocol.UnsubscribeRecordRequest
		if c.Bind(&req) != nil || req.RecordID == "" {
			return false, nil
		}
		return s.unsubscribeRecord(c, c.Conn, req.RecordID), nil
	})
	s.Expose(protocol.CmdPublishRecordUpdate, func(c *Context) (any, error) {
		var req protocol.PublishRecordUpdateRequest
		if c.Bind(&req) != nil {
			return nil, errRecordPayload
		}
		if req.RecordID == "" || !s.recordWritable(c.Conn, req.RecordID) {
			return nil, protocol.RecordNotWritable(req.RecordID)
		}
		raw, err := recordJSON(json.RawMessage(req.NewValue))
		if err != nil {
			return nil, fmt.Errorf("%w (%w)", protocol.RecordPublishFailed(req.RecordID, errRecordValue), err)
		}
		if err := s.writeRecord(c, req.RecordID, raw); err != nil {
			// Mesh's text, with the cause the client may see: the
			// coordinator's own is logged (coordFailed, then run).
			cause := s.coordFailed(c.Command, err)
			return nil, fmt.Errorf("%w (%w)", protocol.RecordPublishFailed(req.RecordID, publicCause(cause)), cause)
		}
		return protocol.SuccessReply{Success: true}, nil
	})
}
