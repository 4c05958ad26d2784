// Package streams is meshfast's durable event streams: zero-pub-sub's
// model (its README is the reference) on meshfast's coordination. Publish
// once; every event gets the next sequence of its room (1, 2, 3… without
// gap or duplicate, whatever the number of publishers and nodes);
// subscribers replay what they missed, acknowledge what they processed and
// resume from there; snapshots let a large room start from consolidated
// state; ephemeral events and presence ride on the same rooms without
// being stored.
//
//	st, err := streams.New(streams.Options{Store: redisStore, PubSub: redisCoord})
//	p, err := st.Publish(ctx, streams.Message{Room: "chat:123", Type: "message.created",
//		Payload: json.RawMessage(`{"text":"Hello"}`)})          // p.Sequence
//	sub, err := st.Subscribe(ctx, streams.SubscribeOptions{
//		Rooms: []string{"chat:123"}, SubscriberID: "worker-1",   // resumes after its cursor
//	}, func(ctx context.Context, ev *streams.Event) error {
//		handle(ev)
//		return st.Ack(ctx, ev.Room, ev.Sequence, "worker-1")
//	})
//	defer sub.Close()
//	for ev, err := range st.CatchUp(ctx, streams.CatchUpOptions{Room: "bank:transactions", BatchSize: 1000}) { … }
//
// # Model
//
// Rooms are scope:resourceId (zps.ParseRoom); a subscription may also name
// scope:* (every room of the scope, live only; the global "*" is refused).
// An Event is the document's envelope {id, type, room, sequence, emittedAt,
// expiresAt, payload, metadata, encrypted} (zps.Event). A publish with an
// id is idempotent: the same id in the same room returns the stored event
// (Published.Duplicate) while it is retained. Retention is by age (each
// event's TTL, Options.TTL by default) and by length (Options.MaxLen);
// Prune removes what expired.
//
// # Storage and fan-out
//
// Events are kept by a store (features/streams/store: memory, the default,
// or Redis Streams; the interface says what every backend guarantees and
// store/storetest checks it). Live events travel between nodes over
// coord.PubSub, one topic per room and one per scope, to which a node
// subscribes while it has local listeners (as features/mesh does for its
// channels). A publish stores first, then publishes; a node orders what
// arrives per room (the hub, hub.go), reads from the store any sequence
// that does not arrive in time, and compares idle rooms with their heads,
// so that a lost live message (pub/sub is at most once) costs latency,
// never an event.
//
// # Seams
//
// Listen attaches to a room at a position P: the listener gets exactly the
// events after P, and every event up to P is in the store. A subscription
// therefore reads (start, P] from the store, page by page, while live
// events after P wait in its queue, and then takes the queue: each event
// once, in order, whenever the subscription starts relative to concurrent
// publishes. A snapshot sync is the same with start = the snapshot's
// LastSequence. A handler slower than the publishers overflows its queue;
// the subscription then reads what it missed from the store: it falls
// behind, it loses nothing.
//
// # Middleware, health, metrics
//
// Middleware (Use) wraps every action of the document in onion order and
// may change or block it (ErrBlocked). Health reports the store and
// pub/sub; Stats and the meshfast_streams_* metrics on Options.Metrics
// report published, received, delivered, acked, replayed, gaps, snapshot
// use and the replay latency (an HDR histogram).
//
// # Concurrency
//
// Every method of Streams, Subscription, EphemeralSubscription,
// PresenceHandle and PresenceSubscription is safe from any goroutine and
// may block on the store or the coordinator, honouring its context.
// Handlers of a subscription run on a goroutine of that subscription, one
// event at a time; they may call Streams (Ack, Publish). The functions
// given to Listen, ListenScope and ListenEphemeral run on the hub's or the
// coordinator's goroutines and must not block or call Streams: they hand
// off. Events handed to handlers and listeners are shared and must not be
// modified; they may be kept.
package streams
