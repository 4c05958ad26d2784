package streams

import (
	"context"
	"fmt"
	"iter"
	"time"

	"github.com/meshfast/meshfast/features/streams/store"
	"github.com/meshfast/meshfast/protocol/zps"
)

// CatchUpOptions selects a backlog to drain (the document's catchUp and
// streamReplay).
type CatchUpOptions struct {
	Room string
	// SubscriberID: with the zero From, start after its cursor.
	SubscriberID string
	// From: After(n) overrides the cursor (Live is refused).
	From Start
	// ToSequence, if not 0, stops after it.
	ToSequence uint64
	// EventTypes, if not empty, yields only these types.
	EventTypes []string
	// BatchSize is the page, 1..store.MaxLimit. Zero means
	// DefaultBatchSize.
	BatchSize int
	// MaxBatches, if positive, stops after that many pages (a circuit
	// breaker for one drain).
	MaxBatches int
}

// CatchUp returns an iterator over room's events after the start, page by
// page, until it reaches the room's head (as read by its last page) or
// ToSequence:
//
//	for ev, err := range st.CatchUp(ctx, streams.CatchUpOptions{Room: "bank:transactions", SubscriberID: "w1"}) {
//		if err != nil { return err }
//		process(ev)
//		st.Ack(ctx, ev.Room, ev.Sequence, "w1")
//	}
//
// It never holds more than one page: it lets go of a page before it reads
// the next, so draining any backlog takes memory for BatchSize events. An
// event yielded may be kept. On an error it yields (nil, err) once and
// stops. The catchUp middleware runs around the whole iteration.
func (s *Streams) CatchUp(ctx context.Context, o CatchUpOptions) iter.Seq2[*Event, error] {
	return func(yield func(*Event, error) bool) {
		if err := o.check(); err != nil {
			yield(nil, err)
			return
		}
		if o.BatchSize == 0 {
			o.BatchSize = DefaultBatchSize
		}
		op := &Op{Action: ActionCatchUp, Room: o.Room, SubscriberID: o.SubscriberID, Sequence: o.From.seq}
		stopped := false
		err := s.intercept(ctx, op, func(ctx context.Context) error {
			from := o.From.seq
			if o.From.kind == startCursor && o.SubscriberID != "" {
				var err error
				if from, err = s.st.Cursor(ctx, o.Room, o.SubscriberID); err != nil {
					return fmt.Errorf("streams: catch-up %q: %w", o.Room, err)
				}
			}
			req := store.ReadRequest{Room: o.Room, After: from, To: o.ToSequence, Limit: o.BatchSize, Types: o.EventTypes}
			for batches := 0; o.MaxBatches == 0 || batches < o.MaxBatches; batches++ {
				if err := s.check(ctx); err != nil {
					return fmt.Errorf("streams: catch-up %q: %w", o.Room, err)
				}
				start := time.Now()
				page, err := s.st.Read(ctx, req)
				s.m.replayRead(start)
				if err != nil {
					return fmt.Errorf("streams: catch-up %q: %w", o.Room, err)
				}
				s.m.replayed.Add(uint64(len(page.Events)))
				for i := range page.Events {
					if !yield(&page.Events[i], nil) {
						stopped = true
						return nil
					}
				}
				done := page.Done(&req)
				req.After = page.Last
				page = store.Page{} // let it go before the next read
				if done {
					return nil
				}
			}
			return nil
		})
		if err != nil && !stopped {
			yield(nil, err)
		}
	}
}

func (o *CatchUpOptions) check() error {
	if _, _, err := zps.ParseRoom(o.Room); err != nil {
		return fmt.Errorf("streams: catch-up: %w", err)
	}
	if o.SubscriberID != "" {
		if err := zps.CheckName("subscriber id", o.SubscriberID); err != nil {
			return fmt.Errorf("streams: catch-up: %w", err)
		}
	}
	if o.From.kind == startLive || o.BatchSize < 0 || o.BatchSize > store.MaxLimit || o.MaxBatches < 0 ||
		o.ToSequence != 0 && o.ToSequence < o.From.seq {
		return fmt.Errorf("streams: catch-up %q: %w: from %v, to %d, batch %d, max batches %d",
			o.Room, ErrInvalidOptions, o.From, o.ToSequence, o.BatchSize, o.MaxBatches)
	}
	return nil
}
