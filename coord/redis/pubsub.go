package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/redis/rueidis"

	"github.com/meshfast/meshfast/coord"
)

// pubsub is the node's side of Redis pub/sub, shaped like centrifuge's
// (../shared/notes/redis-coordination.md §1.3–1.5):
//
//   - topics maps each topic this node subscribes to to its handlers. A
//     topic is subscribed in Redis once, on the first handler, and
//     unsubscribed with the last: the node receives what its connections
//     need, whatever the number of connections.
//   - A cell is one dedicated connection with SetPubSubHooks: one for a
//     single Redis; on a cluster one per master, carrying the topics whose
//     slots that master serves (SSUBSCRIBE is only answered by the slot's
//     owner, and rueidis' cluster dedicated client is bound to one slot).
//     Each cell has a runner goroutine that (re)establishes it, resubscribes
//     every topic it carries in batches, and only then publishes the
//     connection: until then Subscribe fails fast with ErrUnavailable.
//   - The hooks never block: a message is handed to one of a few workers,
//     chosen by topic (so a topic's order is kept), and dropped and counted
//     when that worker's queue is full (blocking the reader can deadlock
//     rueidis, issue 596).
//
// Lock order: a topic stripe (locks; held across the topic's (UN)SUBSCRIBE,
// which may re-read the slot map), then cellsMu, mu, movedMu. A cell's mu is
// a leaf.
type pubsub struct {
	c       *Coordinator
	sharded bool

	locks [256]sync.Mutex // per-topic stripes, held across a (un)subscribe round trip

	mu     sync.RWMutex
	topics map[string]topicEntry // an entry's handlers are never modified in place: replaced

	// The dissolver (see unsubscribe): topics whose last handler left, in
	// the order they did, each dropped in Redis UnsubscribeDelay later if
	// no handler came back. dissolveMu is a leaf.
	dissolveMu sync.Mutex
	dissolving []idleTopic
	dissolveC  chan struct{} // capacity 1: the queue was empty

	nextID  atomic.Uint64
	workers []chan delivery

	topo    atomic.Pointer[topology]
	cellsMu sync.Mutex
	cells   map[string]*cell // by master address ("" on a single Redis)
	refresh chan struct{}    // capacity 1: re-read the cluster's slots
	movedMu sync.Mutex
	moved   map[string]bool // topics a server-side SUNSUBSCRIBE dropped

	started atomic.Bool // start has returned: later cells are new masters

	done chan struct{}
	wg   sync.WaitGroup
}

type handlerEntry struct {
	id uint64
	h  coord.Handler
}

// topicEntry is a topic the node is subscribed to in Redis: its handlers,
// or none while it lingers after the last one left (idleSince, unix ns,
// then says since when; 0 while it has handlers).
type topicEntry struct {
	hs        []handlerEntry
	idleSince int64
}

// idleTopic is one topic waiting in the dissolver's queue.
type idleTopic struct {
	topic string
	since int64 // the topicEntry's idleSince when queued
}

type delivery struct{ topic, payload string }

// topology maps each hash slot to the cell of its master (a single Redis:
// one cell for all).
type topology struct {
	single *cell
	owner  []*cell // len numSlots on a cluster
}

func (t *topology) cellFor(topic string) *cell {
	if t.single != nil {
		return t.single
	}
	return t.owner[slot(topic)]
}

func newPubSub(c *Coordinator) *pubsub {
	ps := &pubsub{
		c:       c,
		sharded: c.cluster,
		topics:  make(map[string]topicEntry),
		cells:   make(map[string]*cell),
		refresh: make(chan struct{}, 1),
		moved:   make(map[string]bool),
		done:    make(chan struct{}),

		dissolveC: make(chan struct{}, 1),
	}
	n := c.opts.PubSubWorkers
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	ps.workers = make([]chan delivery, n)
	for i := range ps.workers {
		ps.workers[i] = make(chan delivery, c.opts.PubSubQueue)
	}
	return ps
}

// start starts the workers and the cells, and waits until every cell is
// subscribed (or ctx, bounded by the dial and write timeouts, ends).
func (ps *pubsub) start(ctx context.Context) error {
	for _, w := range ps.workers {
		ps.wg.Add(1)
		go ps.worker(w)
	}
	if ps.c.opts.UnsubscribeDelay > 0 {
		ps.wg.Add(1)
		go ps.dissolver()
	}
	if !ps.sharded {
		cl := ps.newCell("", ps.c.client)
		ps.cells[""] = cl
		ps.topo.Store(&topology{single: cl})
		ps.startCell(cl)
	} else {
		if err := ps.refreshTopology(ctx); err != nil {
			return fmt.Errorf("coord/redis: read cluster slots: %w: %w", coord.ErrUnavailable, err)
		}
		ps.wg.Add(1)
		go ps.topologyLoop()
	}
	ctx, cancel := context.WithTimeout(ctx, ps.c.opts.DialTimeout+ps.c.opts.WriteTimeout)
	defer cancel()
	ps.cellsMu.Lock()
	cells := make([]*cell, 0, len(ps.cells))
	for _, cl := range ps.cells {
		cells = append(cells, cl)
	}
	ps.cellsMu.Unlock()
	defer ps.started.Store(true)
	for _, cl := range cells {
		select {
		case <-cl.ready:
		case <-ctx.Done():
			return fmt.Errorf("coord/redis: pub/sub connection to %s: %w: %w", cl.name(), coord.ErrUnavailable, ctx.Err())
		}
	}
	return nil
}

// stop closes every cell and stops the workers; queued messages are
// dropped.
func (ps *pubsub) stop() {
	select {
	case <-ps.done:
		return
	default:
	}
	// Under cellsMu, so that a concurrent refreshTopology either starts
	// its cells before (and Wait waits for them) or sees done.
	ps.cellsMu.Lock()
	close(ps.done)
	ps.cellsMu.Unlock()
	ps.wg.Wait()
	ps.cellsMu.Lock()
	defer ps.cellsMu.Unlock()
	for _, cl := range ps.cells {
		cl.closeClient()
	}
}

// down names a cell whose connection is not established, "" if none.
func (ps *pubsub) down() string {
	ps.cellsMu.Lock()
	defer ps.cellsMu.Unlock()
	for _, cl := range ps.cells {
		if cl.current() == nil {
			return cl.name()
		}
	}
	return ""
}

func (ps *pubsub) count() int {
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	return len(ps.topics)
}

func (ps *pubsub) lock(topic string) *sync.Mutex {
	return &ps.locks[fnv32(topic)%uint32(len(ps.locks))]
}

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

// Subscribe registers h for topic; the first handler of a topic subscribes
// the node in Redis (SUBSCRIBE, or SSUBSCRIBE on a cluster) on the topic's
// own name, so a PUBLISH (SPUBLISH) on that name by any client reaches it.
// It fails fast with coord.ErrUnavailable while the topic's connection is
// being re-established.
func (c *Coordinator) Subscribe(ctx context.Context, topic string, h coord.Handler) (coord.Subscription, error) {
	const op = "Subscribe"
	if err := c.check(ctx, op); err != nil {
		return coord.Subscription{}, err
	}
	if topic == "" {
		return coord.Subscription{}, invalid(op, "empty topic")
	}
	if h == nil {
		return coord.Subscription{}, invalid(op, "nil handler")
	}
	sub, err := c.ps.subscribe(ctx, topic, h)
	return sub, c.fail(ctx, op, err)
}

func (ps *pubsub) subscribe(ctx context.Context, topic string, h coord.Handler) (coord.Subscription, error) {
	sub := coord.Subscription{Topic: topic, ID: ps.nextID.Add(1)}
	e := handlerEntry{id: sub.ID, h: h}
	lk := ps.lock(topic)
	lk.Lock()
	defer lk.Unlock()
	cl := ps.topo.Load().cellFor(topic)
	if cl == nil || cl.current() == nil {
		return sub, ps.notReady(cl)
	}
	ps.mu.Lock()
	te, ok := ps.topics[topic]
	// Added before the round trip, so that a resubscription that snapshots
	// the topics meanwhile includes it. A lingering topic is still
	// subscribed in Redis: taking it back costs nothing.
	ps.topics[topic] = topicEntry{hs: append(slices.Clip(te.hs), e)}
	ps.mu.Unlock()
	if ok {
		return sub, nil
	}
	err := ps.redisSubscribe(ctx, topic)
	if err != nil {
		ps.mu.Lock()
		delete(ps.topics, topic)
		ps.mu.Unlock()
	}
	return sub, err
}

func (ps *pubsub) notReady(cl *cell) error {
	if cl == nil {
		return errors.New("no Redis node serves the topic's slot")
	}
	return fmt.Errorf("pub/sub connection to %s is being re-established", cl.name())
}

// redisSubscribe subscribes the node to topic on its cell's connection. On
// a cluster, a MOVED reply (a stale slot map) re-reads the slots and
// retries once on the new owner.
func (ps *pubsub) redisSubscribe(ctx context.Context, topic string) error {
	for attempt := 0; ; attempt++ {
		cl := ps.topo.Load().cellFor(topic)
		dc := cl.current()
		if dc == nil {
			return ps.notReady(cl)
		}
		err := dc.Do(ctx, ps.subscribeCmd(dc, topic)).Error()
		if err == nil || attempt > 0 || !ps.sharded || !isMoved(err) {
			return err
		}
		if rerr := ps.refreshTopology(ctx); rerr != nil {
			return err
		}
	}
}

func isMoved(err error) bool {
	re, ok := rueidis.IsRedisErr(err)
	if !ok {
		return false
	}
	_, moved := re.IsMoved()
	_, ask := re.IsAsk()
	return moved || ask
}

func (ps *pubsub) subscribeCmd(dc rueidis.DedicatedClient, topics ...string) rueidis.Completed {
	if ps.sharded {
		return dc.B().Ssubscribe().Channel(topics...).Build()
	}
	return dc.B().Subscribe().Channel(topics...).Build()
}

// Unsubscribe removes the subscription at once. The node's Redis
// subscription to the topic is dropped UnsubscribeDelay (to 1.5× it) after
// its last handler left, unless a handler came back meanwhile (centrifuge's
// dissolver): a room left and joined again, a client reconnecting, cost no
// UNSUBSCRIBE and SUBSCRIBE, each a round trip the next joiner would wait
// for. A failed UNSUBSCRIBE is not an error: the topic is no longer
// resubscribed, and a message that still arrives finds no handler.
func (c *Coordinator) Unsubscribe(ctx context.Context, sub coord.Subscription) error {
	c.ps.unsubscribe(ctx, sub)
	return nil
}

func (ps *pubsub) unsubscribe(ctx context.Context, sub coord.Subscription) {
	lk := ps.lock(sub.Topic)
	lk.Lock()
	defer lk.Unlock()
	ps.mu.Lock()
	te, ok := ps.topics[sub.Topic]
	i := slices.IndexFunc(te.hs, func(e handlerEntry) bool { return e.id == sub.ID })
	if !ok || i < 0 {
		ps.mu.Unlock()
		return
	}
	hs := slices.Delete(slices.Clone(te.hs), i, i+1)
	if len(hs) > 0 {
		ps.topics[sub.Topic] = topicEntry{hs: hs}
		ps.mu.Unlock()
		return
	}
	if ps.c.opts.UnsubscribeDelay > 0 {
		since := time.Now().UnixNano()
		ps.topics[sub.Topic] = topicEntry{idleSince: since}
		ps.mu.Unlock()
		ps.dissolveLater(idleTopic{topic: sub.Topic, since: since})
		return
	}
	delete(ps.topics, sub.Topic)
	ps.mu.Unlock()
	ps.redisUnsubscribe(ctx, []string{sub.Topic})
}

// redisUnsubscribe drops topics in Redis: per cell, one (S)UNSUBSCRIBE per
// batch (per slot on a cluster), in one pipeline. The caller holds their
// stripe locks, so that no SUBSCRIBE of one of them passes the
// UNSUBSCRIBE.
func (ps *pubsub) redisUnsubscribe(ctx context.Context, topics []string) {
	t := ps.topo.Load()
	byCell := make(map[*cell]map[uint16][]string)
	for _, topic := range topics {
		cl := t.cellFor(topic)
		if cl == nil {
			continue
		}
		var s uint16
		if ps.sharded {
			s = slot(topic)
		}
		if byCell[cl] == nil {
			byCell[cl] = make(map[uint16][]string)
		}
		byCell[cl][s] = append(byCell[cl][s], topic)
	}
	for cl, groups := range byCell {
		dc := cl.current()
		if dc == nil {
			continue // the next connection does not resubscribe them
		}
		var cmds []rueidis.Completed
		for _, g := range groups {
			for _, b := range chunk(g, ps.c.opts.ResubscribeBatch) {
				if ps.sharded {
					cmds = append(cmds, dc.B().Sunsubscribe().Channel(b...).Build())
				} else {
					cmds = append(cmds, dc.B().Unsubscribe().Channel(b...).Build())
				}
			}
		}
		_ = dc.DoMulti(ctx, cmds...) // see Unsubscribe
	}
}

func (ps *pubsub) dissolveLater(it idleTopic) {
	ps.dissolveMu.Lock()
	wasEmpty := len(ps.dissolving) == 0
	ps.dissolving = append(ps.dissolving, it)
	ps.dissolveMu.Unlock()
	if wasEmpty {
		select {
		case ps.dissolveC <- struct{}{}:
		default:
		}
	}
}

// dissolver drops the topics that got no handler back, between
// UnsubscribeDelay and 1.5× it after their last handler left: a topic is
// due at the end of the half-delay window in which its delay ends, so that
// the topics left together (a mass disconnect) are dropped together, every
// due topic at once, each (S)UNSUBSCRIBE carrying up to ResubscribeBatch of
// them: a few round trips, not one per room.
func (ps *pubsub) dissolver() {
	defer ps.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		ps.dissolveMu.Lock()
		queued := len(ps.dissolving) > 0
		var wait time.Duration
		if queued {
			wait = time.Until(time.Unix(0, ps.dissolveAt(ps.dissolving[0].since)))
		}
		ps.dissolveMu.Unlock()
		switch {
		case !queued:
			select {
			case <-ps.done:
				return
			case <-ps.dissolveC:
			}
			continue
		case wait > 0:
			t.Reset(wait)
			select {
			case <-ps.done:
				return
			case <-t.C:
			}
		}
		ps.dissolveDue(time.Now().UnixNano())
	}
}

// dissolveAt is when a topic idle since since (unix ns) is due: its delay
// rounded up to the next half-delay.
func (ps *pubsub) dissolveAt(since int64) int64 {
	delay := int64(ps.c.opts.UnsubscribeDelay)
	q := max(delay/2, 1)
	return (since + delay + q - 1) / q * q
}

// dissolveDue unsubscribes the queued topics due at now (unix ns) that
// are still idle since they were queued.
func (ps *pubsub) dissolveDue(now int64) {
	ps.dissolveMu.Lock()
	n := 0
	for n < len(ps.dissolving) && ps.dissolveAt(ps.dissolving[n].since) <= now {
		n++
	}
	due := slices.Clone(ps.dissolving[:n])
	ps.dissolving = slices.Delete(ps.dissolving, 0, n)
	ps.dissolveMu.Unlock()
	if len(due) == 0 {
		return
	}
	// Lock the stripes involved in ascending order (the only place that
	// takes more than one), so that no Subscribe of these topics runs
	// between the check and the UNSUBSCRIBE.
	stripes := make([]int, 0, len(due))
	for _, it := range due {
		stripes = append(stripes, int(fnv32(it.topic)%uint32(len(ps.locks))))
	}
	slices.Sort(stripes)
	stripes = slices.Compact(stripes)
	for _, i := range stripes {
		ps.locks[i].Lock()
	}
	defer func() {
		for _, i := range stripes {
			ps.locks[i].Unlock()
		}
	}()
	var drop []string
	ps.mu.Lock()
	for _, it := range due {
		// Still idle since this very leave: no handler came back (and left
		// again, which queued a later entry).
		if te, ok := ps.topics[it.topic]; ok && len(te.hs) == 0 && te.idleSince == it.since {
			delete(ps.topics, it.topic)
			drop = append(drop, it.topic)
		}
	}
	ps.mu.Unlock()
	if len(drop) == 0 {
		return
	}
	ps.c.st.dissolved.Add(uint64(len(drop)))
	ctx, cancel := context.WithTimeout(ps.c.bg, ps.c.opts.WriteTimeout)
	defer cancel()
	ps.redisUnsubscribe(ctx, drop)
}

// Publish sends payload on topic's name (PUBLISH; SPUBLISH on a cluster).
func (c *Coordinator) Publish(ctx context.Context, topic string, payload []byte) error {
	const op = "Publish"
	if err := c.check(ctx, op); err != nil {
		return err
	}
	return c.fail(ctx, op, c.run1(ctx, cmdOp(c.publishCmd(topic, payload))).Error())
}

// PublishBatch publishes every message in one round trip (one pipeline; on
// a cluster each master's share in parallel). Order per topic is kept.
func (c *Coordinator) PublishBatch(ctx context.Context, msgs []coord.Message) error {
	const op = "PublishBatch"
	if err := c.check(ctx, op); err != nil {
		return err
	}
	if len(msgs) == 0 {
		return nil
	}
	ops := make([]rop, len(msgs))
	for i, m := range msgs {
		ops[i] = cmdOp(c.publishCmd(m.Topic, m.Payload))
	}
	return c.fail(ctx, op, firstErr(c.run(ctx, ops...)))
}

func (c *Coordinator) publishCmd(topic string, payload []byte) rueidis.Completed {
	if c.cluster {
		return c.client.B().Spublish().Channel(topic).Message(rueidis.BinaryString(payload)).Build()
	}
	return c.client.B().Publish().Channel(topic).Message(rueidis.BinaryString(payload)).Build()
}

// publishName is the publish command a script uses.
func (c *Coordinator) publishName() string {
	if c.cluster {
		return "spublish"
	}
	return "publish"
}

// onMessage is the hook of every cell: hand off, never block.
func (ps *pubsub) onMessage(m rueidis.PubSubMessage) {
	ps.c.st.psReceived.Add(1)
	w := ps.workers[fnv32(m.Channel)%uint32(len(ps.workers))]
	select {
	case w <- delivery{topic: m.Channel, payload: m.Message}:
	default:
		ps.c.st.psDropped.Add(1)
	}
}

// worker runs the handlers of its topics' messages, in arrival order.
func (ps *pubsub) worker(w chan delivery) {
	defer ps.wg.Done()
	for {
		select {
		case <-ps.done:
			return
		case d := <-w:
			ps.mu.RLock()
			hs := ps.topics[d.topic].hs
			ps.mu.RUnlock()
			// The handlers must not modify the payload (coord.Handler), so
			// the string rueidis allocated is shared, not copied.
			p := unsafe.Slice(unsafe.StringData(d.payload), len(d.payload))
			for _, e := range hs {
				e.h(d.topic, p)
			}
		}
	}
}

// A cell is one pub/sub connection and its runner.
type cell struct {
	ps   *pubsub
	addr string // master address; "" on a single Redis

	mu     sync.Mutex
	client rueidis.Client // a single Redis: the coordinator's; a master: its own
	ownsC  bool
	conn   rueidis.DedicatedClient // published once resubscribed, nil otherwise

	ready     chan struct{} // closed once the first connection is published
	readyOnce sync.Once
	// recovers: a connection established by this cell is a reconnect
	// (OnReconnect), true after its first one, or from the start for a
	// master that appeared after New. Runner only.
	recovers bool
	stop     chan struct{} // closed when the cell is removed
	stopOnce sync.Once
}

func (ps *pubsub) newCell(addr string, client rueidis.Client) *cell {
	return &cell{ps: ps, addr: addr, client: client, ready: make(chan struct{}),
		stop: make(chan struct{}), recovers: ps.started.Load()}
}

func (cl *cell) name() string {
	if cl.addr == "" {
		return "Redis"
	}
	return cl.addr
}

func (cl *cell) current() rueidis.DedicatedClient {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.conn
}

func (cl *cell) closeClient() {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.ownsC && cl.client != nil {
		cl.client.Close()
		cl.client = nil
	}
}

func (ps *pubsub) startCell(cl *cell) {
	ps.wg.Add(1)
	go cl.run()
}

// run keeps the cell's connection up: after a loss it waits
// ReconnectDelay, doubling to MaxReconnectDelay while attempts fail.
func (cl *cell) run() {
	ps := cl.ps
	defer ps.wg.Done()
	delay := ps.c.opts.ReconnectDelay
	for {
		established, err := cl.session()
		select {
		case <-ps.done:
			return
		case <-cl.stop:
			cl.closeClient()
			return
		default:
		}
		if err != nil {
			ps.c.opts.Logger.Warn("coord/redis: pub/sub connection lost", "node", cl.name(), "err", err)
			if ps.sharded {
				ps.askRefresh()
			}
		}
		if established {
			delay = ps.c.opts.ReconnectDelay
		}
		t := time.NewTimer(delay)
		select {
		case <-ps.done:
			t.Stop()
			return
		case <-cl.stop:
			t.Stop()
			cl.closeClient()
			return
		case <-t.C:
		}
		delay = min(2*delay, ps.c.opts.MaxReconnectDelay)
	}
}

// session establishes the connection, resubscribes the cell's topics,
// publishes the connection, and waits until it breaks (or the cell is
// stopped). established reports whether it got that far.
func (cl *cell) session() (established bool, err error) {
	ps := cl.ps
	client, err := cl.clientFor()
	if err != nil {
		return false, err
	}
	dc, release := client.Dedicate()
	defer func() {
		dc.Close()
		release()
	}()
	var pr prober
	probe := cl.probeTopic()
	wait := dc.SetPubSubHooks(rueidis.PubSubHooks{
		OnMessage: func(m rueidis.PubSubMessage) {
			pr.received.Add(1)
			if m.Channel != probe {
				ps.onMessage(m)
			}
		},
		OnSubscription: cl.onSubscription,
	})
	if err := cl.resubscribe(dc, probe); err != nil {
		return false, err
	}
	cl.mu.Lock()
	cl.conn = dc
	cl.mu.Unlock()
	defer func() {
		cl.mu.Lock()
		cl.conn = nil
		cl.mu.Unlock()
	}()
	ps.c.st.psConnects.Add(1)
	cl.readyOnce.Do(func() { close(cl.ready) })
	if cl.recovers {
		ps.c.st.reconnects.Add(1)
		ps.c.reconnects.fire()
	}
	cl.recovers = true
	var tick <-chan time.Time
	if probe != "" {
		t := time.NewTicker(ps.c.opts.ProbeInterval / 8)
		defer t.Stop()
		tick = t.C
		pr.reset(time.Now())
	}
	for {
		select {
		case err := <-wait:
			if err == nil {
				err = errors.New("connection closed")
			}
			return true, err
		case <-cl.stop:
			return true, nil
		case <-ps.done:
			return true, nil
		case now := <-tick:
			if err := cl.probe(&pr, probe, now); err != nil {
				ps.c.st.probeRestarts.Add(1)
				return true, err
			}
		}
	}
}

// prober is a session's delivery probe (centrifuge PR 594): a connection
// can stay up, answering its keepalive PINGs, and yet receive nothing,
// e.g. attached to a master that failed over while the publishers moved to
// the new one (centrifugo issue 1189). A connection that received nothing
// for ProbeInterval publishes a probe to a channel of its own through the
// command client, which reaches whatever Redis publishers reach; if the
// probe has not come back half an interval later, the connection is
// replaced. Checked every eighth of an interval, so a connection gone
// silent is replaced within 1.9 intervals of its last message. A probe
// whose PUBLISH failed does not count: then publishing is what is broken,
// which calls report. received is the hook's; the rest the runner's.
type prober struct {
	received   atomic.Uint64
	seen       uint64    // received at the last change noticed
	lastChange time.Time // when it was noticed
	sentAt     time.Time // the probe in flight, zero if none
}

func (pr *prober) reset(now time.Time) {
	pr.seen, pr.lastChange, pr.sentAt = pr.received.Load(), now, time.Time{}
}

// probe runs one check of a session's prober, and returns an error when
// the connection must be replaced.
func (cl *cell) probe(pr *prober, topic string, now time.Time) error {
	c := cl.ps.c
	interval := c.opts.ProbeInterval
	if n := pr.received.Load(); n != pr.seen {
		pr.reset(now)
		return nil
	}
	if !pr.sentAt.IsZero() {
		if now.Sub(pr.sentAt) >= interval/2 {
			return fmt.Errorf("a probe published %v ago did not come back: the connection receives nothing", now.Sub(pr.sentAt).Round(time.Millisecond))
		}
		return nil
	}
	if now.Sub(pr.lastChange) < interval {
		return nil
	}
	ctx, cancel := context.WithTimeout(c.bg, min(c.opts.WriteTimeout, interval/2))
	defer cancel()
	if err := c.client.Do(ctx, c.publishCmd(topic, []byte("probe"))).Error(); err != nil {
		return nil // publishing is broken, not this connection
	}
	c.st.probes.Add(1)
	pr.sentAt = time.Now()
	return nil
}

// probeTopic is the channel the session's probes go to, "" with probes
// off: the coordinator's own ("mesh:probe:<random>"), on a cluster with a
// hash tag that puts it in a slot of this cell's master.
func (cl *cell) probeTopic() string {
	ps := cl.ps
	if ps.c.opts.ProbeInterval <= 0 {
		return ""
	}
	name := "mesh:probe:" + ps.c.id
	if !ps.sharded {
		return name
	}
	t := ps.topo.Load()
	for s, owner := range t.owner {
		if owner == cl {
			return name + ":{" + slotTag(uint16(s)) + "}"
		}
	}
	return "" // the master serves no slot: nothing to receive
}

// slotTag returns a short string whose hash slot is s.
func slotTag(s uint16) string {
	for i := 0; ; i++ {
		tag := "p" + strconv.Itoa(i)
		if crc16(tag)%numSlots == s {
			return tag
		}
	}
}

// clientFor returns the client to take the dedicated connection from: a
// master's own single-node client is created on first use (and again
// after a failure closed it).
func (cl *cell) clientFor() (rueidis.Client, error) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.client != nil {
		return cl.client, nil
	}
	client, err := rueidis.NewClient(cl.ps.c.clientOption([]string{cl.addr}, true))
	if err != nil {
		return nil, err
	}
	cl.client, cl.ownsC = client, true
	return client, nil
}

// resubscribe subscribes every topic the cell carries, in batches of at
// most ResubscribeBatch channels (on a cluster, one slot per SSUBSCRIBE),
// and the session's probe topic, unless "", all in one pipeline.
func (cl *cell) resubscribe(dc rueidis.DedicatedClient, probe string) error {
	ps := cl.ps
	t := ps.topo.Load()
	var groups map[uint16][]string
	var all []string
	ps.mu.RLock()
	for topic := range ps.topics {
		if t.cellFor(topic) != cl {
			continue
		}
		if ps.sharded {
			if groups == nil {
				groups = make(map[uint16][]string)
			}
			s := slot(topic)
			groups[s] = append(groups[s], topic)
		} else {
			all = append(all, topic)
		}
	}
	ps.mu.RUnlock()
	var batches [][]string
	if ps.sharded {
		for _, g := range groups {
			batches = append(batches, chunk(g, ps.c.opts.ResubscribeBatch)...)
		}
	} else {
		batches = chunk(all, ps.c.opts.ResubscribeBatch)
	}
	ctx, cancel := context.WithTimeout(ps.c.bg, 2*ps.c.opts.WriteTimeout)
	defer cancel()
	if len(batches) == 0 && probe == "" {
		// Nothing to resubscribe: make sure the connection is up before
		// publishing it, so that "ready" means reachable.
		return dc.Do(ctx, dc.B().Ping().Build()).Error()
	}
	cmds := make([]rueidis.Completed, 0, len(batches)+1)
	n := 0
	for _, b := range batches {
		cmds = append(cmds, ps.subscribeCmd(dc, b...))
		n += len(b)
	}
	if probe != "" {
		cmds = append(cmds, ps.subscribeCmd(dc, probe))
	}
	for _, r := range dc.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil {
			return fmt.Errorf("resubscribe %d topics: %w", n, err)
		}
	}
	ps.c.st.resubscribed.Add(uint64(n))
	return nil
}

func chunk(s []string, n int) [][]string {
	var out [][]string
	for len(s) > n {
		out = append(out, s[:n:n])
		s = s[n:]
	}
	if len(s) > 0 {
		out = append(out, s)
	}
	return out
}

// onSubscription watches for a server-side SUNSUBSCRIBE: the topic's slot
// moved to another master. Ours are sent under the topic's stripe lock
// after the topic left topics, so a topic that is still wanted was dropped
// by the server; it is subscribed again on its new owner once the slot map
// is re-read (never here: hooks must not wait).
func (cl *cell) onSubscription(s rueidis.PubSubSubscription) {
	ps := cl.ps
	if s.Kind != "sunsubscribe" {
		return
	}
	ps.mu.RLock()
	_, wanted := ps.topics[s.Channel]
	ps.mu.RUnlock()
	if !wanted {
		return
	}
	ps.movedMu.Lock()
	ps.moved[s.Channel] = true
	ps.movedMu.Unlock()
	ps.askRefresh()
}

// queueMoved queues the wanted topics whose slot's cell differs between
// two topologies.
func (ps *pubsub) queueMoved(old, cur *topology) {
	var moved []string
	ps.mu.RLock()
	for topic := range ps.topics {
		s := slot(topic)
		if old.owner[s] != cur.owner[s] {
			moved = append(moved, topic)
		}
	}
	ps.mu.RUnlock()
	if len(moved) == 0 {
		return
	}
	ps.movedMu.Lock()
	for _, topic := range moved {
		ps.moved[topic] = true
	}
	ps.movedMu.Unlock()
}

func (ps *pubsub) askRefresh() {
	select {
	case ps.refresh <- struct{}{}:
	default:
	}
}

// topologyLoop re-reads a cluster's slot map every TopologyRefreshInterval
// and when asked, then moves topics that the server dropped.
func (ps *pubsub) topologyLoop() {
	defer ps.wg.Done()
	t := time.NewTicker(ps.c.opts.TopologyRefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-ps.done:
			return
		case <-t.C:
		case <-ps.refresh:
		}
		ctx, cancel := context.WithTimeout(ps.c.bg, ps.c.opts.WriteTimeout)
		if err := ps.refreshTopology(ctx); err != nil {
			ps.c.opts.Logger.Warn("coord/redis: could not read cluster slots", "err", err)
		} else {
			ps.resubscribeMoved(ctx)
		}
		cancel()
	}
}

// resubscribeMoved subscribes each topic dropped by a slot migration on its
// slot's current owner; one that fails stays for the next refresh.
func (ps *pubsub) resubscribeMoved(ctx context.Context) {
	ps.movedMu.Lock()
	moved := ps.moved
	ps.moved = make(map[string]bool)
	ps.movedMu.Unlock()
	var retry bool
	for topic := range moved {
		lk := ps.lock(topic)
		lk.Lock()
		ps.mu.RLock()
		_, wanted := ps.topics[topic]
		ps.mu.RUnlock()
		var err error
		if wanted {
			err = ps.redisSubscribe(ctx, topic)
		}
		lk.Unlock()
		if err != nil {
			retry = true
			ps.movedMu.Lock()
			ps.moved[topic] = true
			ps.movedMu.Unlock()
		}
	}
	if retry {
		go func() {
			select {
			case <-ps.done:
			case <-time.After(ps.c.opts.ReconnectDelay):
				ps.askRefresh()
			}
		}()
	}
}

// refreshTopology reads CLUSTER SLOTS and installs the slot → cell map,
// starting a cell for each new master and stopping those of masters that
// serve no slot any more. A cell whose master stays keeps its connection;
// the wanted topics of slots that changed master are queued for
// resubscription on their new owner (their old owner drops them with a
// SUNSUBSCRIBE, but that push is lost if its connection is).
func (ps *pubsub) refreshTopology(ctx context.Context) error {
	c := ps.c
	c.st.topology.Add(1)
	ranges, err := c.client.Do(ctx, c.client.B().ClusterSlots().Build()).ToArray()
	if err != nil {
		return err
	}
	owner := make([]string, numSlots)
	for _, r := range ranges {
		f, err := r.ToArray()
		if err != nil || len(f) < 3 {
			return fmt.Errorf("CLUSTER SLOTS: unexpected entry")
		}
		lo, _ := f[0].AsInt64()
		hi, _ := f[1].AsInt64()
		m, err := f[2].ToArray()
		if err != nil || len(m) < 2 {
			return fmt.Errorf("CLUSTER SLOTS: unexpected master")
		}
		host, _ := m[0].ToString()
		port, _ := m[1].AsInt64()
		addr := net.JoinHostPort(host, strconv.FormatInt(port, 10))
		for s := max(lo, 0); s <= hi && s < numSlots; s++ {
			owner[s] = addr
		}
	}
	old, t, err := ps.installTopology(owner)
	if err == nil && old != nil && old.single == nil {
		ps.queueMoved(old, t)
	}
	return err
}

// installTopology makes owner the slot map, under cellsMu, and returns the
// previous one.
func (ps *pubsub) installTopology(owner []string) (old, t *topology, err error) {
	ps.cellsMu.Lock()
	defer ps.cellsMu.Unlock()
	select {
	case <-ps.done:
		return nil, nil, errors.New("closed")
	default:
	}
	t = &topology{owner: make([]*cell, numSlots)}
	used := make(map[string]bool)
	var fresh []*cell
	for s, addr := range owner {
		if addr == "" {
			continue
		}
		cl := ps.cells[addr]
		if cl == nil {
			cl = ps.newCell(addr, nil)
			ps.cells[addr] = cl
			fresh = append(fresh, cl)
		}
		used[addr] = true
		t.owner[s] = cl
	}
	old = ps.topo.Swap(t)
	// Started once the map that names their slots is in place.
	for _, cl := range fresh {
		ps.startCell(cl)
	}
	for addr, cl := range ps.cells {
		if !used[addr] {
			delete(ps.cells, addr)
			cl.stopOnce.Do(func() { close(cl.stop) })
		}
	}
	return old, t, nil
}
