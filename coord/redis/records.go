package redis

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/rueidis"

	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/protocol/jsonx"
)

// Record returns id's value and version (Mesh: mesh:record:<id> and
// mesh:record-version:<id>), read by one MGET, so never a value with
// another value's version (the keys share a slot on a cluster).
func (c *Coordinator) Record(ctx context.Context, id string) (coord.Record, error) {
	const op = "Record"
	if err := c.check(ctx, op); err != nil {
		return coord.Record{}, err
	}
	vk, verk, _ := c.l.recordKeys(id)
	vals, err := c.run1(ctx, cmdOp(c.client.B().Mget().Key(vk, verk).Build())).ToArray()
	if err != nil {
		return coord.Record{}, c.fail(ctx, op, err)
	}
	if len(vals) != 2 {
		return coord.Record{}, c.fail(ctx, op, fmt.Errorf("MGET returned %d values", len(vals)))
	}
	v, err := vals[0].AsBytes()
	if rueidis.IsRedisNil(err) {
		return coord.Record{}, nil
	}
	ver, _ := vals[1].AsInt64()
	return coord.Record{Value: v, Version: ver}, nil
}

// SetRecord stores value and bumps the version in one script, one round
// trip, unless the value is the same JSON (compared by canonical hash in
// the script). A stored value without a hash (written by a Mesh server) is
// compared in Go and written with a compare-and-set on its version.
func (c *Coordinator) SetRecord(ctx context.Context, id string, value []byte) (coord.RecordUpdate, error) {
	const op = "SetRecord"
	if err := c.check(ctx, op); err != nil {
		return coord.RecordUpdate{}, err
	}
	if id == "" {
		return coord.RecordUpdate{}, invalid(op, "empty record id")
	}
	h, err := canonicalHash(value)
	if err != nil {
		return coord.RecordUpdate{}, fmt.Errorf("coord/redis: %s: %w", op, err)
	}
	if len(value) == 0 {
		value = []byte("null")
	}
	vk, verk, hk := c.l.recordKeys(id)
	keys := []string{vk, verk, hk}
	expect := int64(-1)
	for range c.opts.CASAttempts {
		res, err := c.run1(ctx, c.call(scriptRecordSet, keys,
			rueidis.BinaryString(value), h, nullHash, strconv.FormatInt(expect, 10))).ToArray()
		if err != nil {
			return coord.RecordUpdate{}, c.fail(ctx, op, err)
		}
		if len(res) < 2 {
			return coord.RecordUpdate{}, c.fail(ctx, op, fmt.Errorf("record_set returned %d values", len(res)))
		}
		code, _ := res[0].AsInt64()
		ver, _ := res[1].AsInt64()
		var old []byte
		if len(res) > 2 {
			old, _ = res[2].AsBytes()
		}
		switch code {
		case 0:
			return coord.RecordUpdate{Changed: false, Version: ver, Old: old}, nil
		case 1:
			return coord.RecordUpdate{Changed: true, Version: ver, Old: old}, nil
		}
		// A value without a canonical hash: compare here.
		if eq, err := jsonx.Equal(old, value); err == nil && eq {
			return coord.RecordUpdate{Changed: false, Version: ver, Old: old}, nil
		}
		expect = ver
	}
	return coord.RecordUpdate{}, fmt.Errorf("coord/redis: %s %q: %w", op, id, coord.ErrConflict)
}

// DeleteRecord removes id's value, version and hash.
func (c *Coordinator) DeleteRecord(ctx context.Context, id string) (bool, error) {
	const op = "DeleteRecord"
	if err := c.check(ctx, op); err != nil {
		return false, err
	}
	vk, verk, hk := c.l.recordKeys(id)
	res := c.run(ctx,
		cmdOp(c.client.B().Del().Key(vk).Build()),
		cmdOp(c.client.B().Del().Key(verk, hk).Build()))
	if err := firstErr(res); err != nil {
		return false, c.fail(ctx, op, err)
	}
	n, _ := res[0].AsInt64()
	return n == 1, nil
}

// PublishToChannel publishes message on the channel's own name (PUBLISH, or
// SPUBLISH on a cluster), so that any Redis client publishing there
// reaches the same subscribers. With history > 0 the push, the trim to
// exactly history messages and the publish are one script.
func (c *Coordinator) PublishToChannel(ctx context.Context, channel string, message []byte, history int) error {
	const op = "PublishToChannel"
	if err := c.check(ctx, op); err != nil {
		return err
	}
	if channel == "" {
		return invalid(op, "empty channel")
	}
	if history <= 0 {
		return c.fail(ctx, op, c.run1(ctx, cmdOp(c.publishCmd(channel, message))).Error())
	}
	key, together := c.l.history(channel)
	n := strconv.Itoa(history)
	if together {
		r := c.run1(ctx, c.call(scriptHistoryPublish, []string{key}, rueidis.BinaryString(message), n, c.publishName(), channel))
		return c.fail(ctx, op, r.Error())
	}
	// A channel name whose braces put it in another slot than any key could
	// share: store, then publish (two round trips; the message is stored
	// before anyone can receive it, but the pair is not atomic).
	r := c.run1(ctx, c.call(scriptHistoryPublish, []string{key}, rueidis.BinaryString(message), n, "", channel))
	if err := r.Error(); err != nil {
		return c.fail(ctx, op, err)
	}
	return c.fail(ctx, op, c.run1(ctx, cmdOp(c.publishCmd(channel, message))).Error())
}

// ChannelHistory returns up to limit messages, newest first (LRANGE).
func (c *Coordinator) ChannelHistory(ctx context.Context, channel string, limit int) ([][]byte, error) {
	const op = "ChannelHistory"
	if err := c.check(ctx, op); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return [][]byte{}, nil
	}
	key, _ := c.l.history(channel)
	msgs, err := c.run1(ctx, cmdOp(c.client.B().Lrange().Key(key).Start(0).Stop(int64(limit-1)).Build())).ToArray()
	if err != nil {
		return nil, c.fail(ctx, op, err)
	}
	out := make([][]byte, len(msgs))
	for i, m := range msgs {
		out[i], _ = m.AsBytes()
	}
	return out, nil
}
