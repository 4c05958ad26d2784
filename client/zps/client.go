package zps

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	wire "github.com/meshfast/meshfast/protocol/zps"
)

// Event is a durable event as subscribers receive it (the document's
// envelope).
type Event = wire.Event

// Handler handles one event of a subscription. Once it returns nil the
// event is acknowledged (the server's cursor for the subscriber moves to
// it); an error is reported to Options.OnError and the event is not
// acknowledged on its own (a later one's acknowledgement covers it: a
// cursor is a position).
type Handler func(ctx context.Context, ev *Event) error

// Client is a connection to a zero-pub-sub gateway that comes back by
// itself: create it with New, start it with Connect, end it with Close.
// Every method is safe from any goroutine.
type Client struct {
	url string
	o   Options

	stop    context.Context // ends with Close
	cancel  context.CancelFunc
	started atomic.Bool
	wg      sync.WaitGroup // the run loop and the connections' goroutines
	done    chan struct{}  // closed when the run loop has ended
	ready1  chan struct{}  // closed when the first connection is ready

	mu      sync.Mutex
	cur     *conn         // the connection being set up or in use
	cn      *conn         // cur once ready (init answered, subscriptions sent); nil otherwise
	readyCh chan struct{} // closed when cn is set; replaced when it goes
	err     error         // why the client stopped, once done is closed
	waiting int           // publishes waiting for a connection
	byRoom  map[string]*Subscription
	byScope map[string]*Subscription
	// ephemeral subscriptions, by room and by scope
	ephByRoom  map[string]*EphemeralSubscription
	ephByScope map[string]*EphemeralSubscription
	acks       map[string]uint64 // handled and not yet acknowledged, by room
	ackAt      time.Time         // when acks were last sent
	ackT       *time.Timer

	q        *deliveryQueue
	handling atomic.Bool // a handler is running
	qdone    chan struct{}
}

// New returns a client of the gateway at url (ws://host:port/zps). It
// does nothing until Connect.
func New(url string, o Options) *Client {
	c := &Client{url: url, o: o.withDefaults(), done: make(chan struct{}), ready1: make(chan struct{}),
		readyCh: make(chan struct{}), byRoom: make(map[string]*Subscription), byScope: make(map[string]*Subscription),
		ephByRoom: make(map[string]*EphemeralSubscription), ephByScope: make(map[string]*EphemeralSubscription),
		acks: make(map[string]uint64), qdone: make(chan struct{})}
	c.stop, c.cancel = context.WithCancel(context.Background())
	c.q = newDeliveryQueue(c.o.MaxPendingEvents)
	return c
}

// SubscriberID is the id the client inits with.
func (c *Client) SubscriberID() string { return c.o.SubscriberID }

// Connect starts the client and returns once its first connection is
// ready (init answered), or with the error that keeps it from being so:
// ctx's, or a refusal that reconnecting cannot mend (a token the gateway
// refuses, without TokenFunc). The client keeps trying in the background
// after ctx ends, until Close. Later calls return at once.
func (c *Client) Connect(ctx context.Context) error {
	if c.started.CompareAndSwap(false, true) {
		c.wg.Add(1)
		go c.run()
		go c.deliverLoop()
	}
	select {
	case <-c.ready1:
		return nil
	case <-c.done:
		return c.failure()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done is closed once the client has stopped for good: Close, NoReconnect
// after a loss, or a refusal that reconnecting cannot mend (Err says).
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is why the client stopped, once Done is closed.
func (c *Client) Err() error { return c.failure() }

func (c *Client) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close ends the connection and the client. Events queued for handlers
// are dropped; a handler running is waited for, unless Close is called
// while one runs (from the handler, say). Idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.err == nil {
		c.err = ErrClosed
	}
	if c.ackT != nil {
		c.ackT.Stop()
	}
	c.mu.Unlock()
	c.cancel()
	c.q.close()
	if !c.started.Load() {
		return nil
	}
	c.wg.Wait()
	if !c.handling.Load() {
		<-c.qdone
	}
	return nil
}

func (c *Client) report(err error) {
	if c.o.OnError != nil && err != nil {
		c.o.OnError(err)
	}
}

// run connects, and reconnects with backoff after each loss, until Close.
func (c *Client) run() {
	defer c.wg.Done()
	defer close(c.done)
	first := true
	for attempt := 0; ; {
		if attempt > 0 {
			t := time.NewTimer(c.o.backoff(attempt))
			select {
			case <-c.stop.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		cn, err := c.establish()
		if err != nil {
			if c.stop.Err() != nil {
				return
			}
			c.report(err)
			var se *ServerError
			if errors.As(err, &se) && se.Code == wire.CodeUnauthorized && c.o.TokenFunc == nil || c.o.NoReconnect && first {
				c.fail(err)
				return
			}
			attempt++
			continue
		}
		attempt = 0
		c.online(cn, !first)
		if first {
			close(c.ready1)
			first = false
		}
		select {
		case <-cn.done:
		case <-c.stop.Done():
			cn.closeGracefully()
		}
		c.offline(cn)
		if c.stop.Err() != nil {
			return
		}
		c.report(fmt.Errorf("%w: %w", ErrConnectionLost, cn.cause))
		if c.o.NoReconnect {
			c.fail(ErrConnectionLost)
			return
		}
		attempt = 1
	}
}

func (c *Client) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
}

// establish dials and inits one connection.
func (c *Client) establish() (*conn, error) {
	ctx, cancel := context.WithTimeout(c.stop, c.o.DialTimeout)
	defer cancel()
	token := c.o.Token
	if c.o.TokenFunc != nil {
		var err error
		if token, err = c.o.TokenFunc(ctx); err != nil {
			return nil, fmt.Errorf("zps client: token: %w", err)
		}
	}
	cn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.cur = cn
	c.mu.Unlock()
	c.wg.Add(2)
	go cn.readLoop()
	go cn.writeLoop()
	p := &pending{kind: wire.TypeReady, ch: make(chan result, 1)}
	cn.send(wire.AppendInit(nil, c.o.SubscriberID, token), p)
	select {
	case r := <-p.ch:
		if r.err != nil {
			cn.close(r.err)
			return nil, r.err
		}
		return cn, nil
	case <-ctx.Done():
		cn.close(ctx.Err())
		return nil, fmt.Errorf("zps client: init: %w", ctx.Err())
	}
}

// online sends every subscription again, from where each got, and the
// acknowledgements waiting, then makes cn the connection calls use.
func (c *Client) online(cn *conn, reconnect bool) {
	c.mu.Lock()
	for _, s := range c.byRoom {
		s.resubscribe(cn)
	}
	for _, s := range c.byScope {
		s.resubscribe(cn)
	}
	for _, s := range c.ephByRoom {
		s.resubscribe(cn)
	}
	for _, s := range c.ephByScope {
		s.resubscribe(cn)
	}
	c.sendAcksLocked(cn)
	c.cn = cn
	close(c.readyCh)
	c.mu.Unlock()
	if reconnect && c.o.OnReconnect != nil {
		c.o.OnReconnect()
	}
}

// offline forgets cn: calls wait for the next connection.
func (c *Client) offline(cn *conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cn == cn {
		c.cn = nil
		c.readyCh = make(chan struct{})
	}
	if c.cur == cn {
		c.cur = nil
	}
	for _, s := range c.byRoom {
		s.reset()
	}
	for _, s := range c.byScope {
		s.reset()
	}
}

// handle processes one message of cn. Reader goroutine.
func (c *Client) handle(cn *conn, data []byte) {
	var m wire.ServerMessage
	if err := wire.DecodeServerMessage(data, &m); err != nil {
		c.report(fmt.Errorf("zps client: ignoring a message: %w", err))
		return
	}
	switch m.Type {
	case wire.TypeEvent:
		c.onEvents(cn, m.Room, []wire.Event{m.Event}, false)
		return
	case wire.TypeEphemeral:
		c.onEphemeral(cn, &m.EphemeralEvent)
		return
	}
	p, expected := cn.take()
	if m.Type == wire.TypeReplay {
		c.onEvents(cn, m.Room, m.Events, true)
	}
	r := result{msg: &m}
	if m.Type == wire.TypeError {
		r.err = &ServerError{Code: m.Code, Message: m.Message}
	}
	if p != nil && p.ch != nil {
		p.ch <- r
		return
	}
	if r.err != nil {
		if !expected {
			r.err = fmt.Errorf("zps client: unsolicited: %w", r.err)
		}
		c.report(r.err)
	}
}

// Published is what the gateway answers a publish with.
type Published struct {
	Room     string
	Sequence uint64
	ID       string
}

// PublishEvent is what a publisher gives (the document's publish(event)).
type PublishEvent = wire.PublishEvent

// Publish publishes ev and returns its stored sequence (the gateway must
// allow client publishing). An event without an id is given one, so that
// a publish the connection lost is sent again, on the next connection,
// without risk of a second copy. It waits for a connection while none is
// ready, at most MaxQueuedMessages publishes at once.
func (c *Client) Publish(ctx context.Context, ev PublishEvent) (Published, error) {
	if ev.ID == "" {
		ev.ID = "go-" + rand.Text()
	}
	msg := wire.AppendPublish(nil, &ev)
	r, err := c.request(ctx, wire.TypeAck, msg)
	if err != nil {
		return Published{}, err
	}
	return Published{Room: r.Room, Sequence: r.Sequence, ID: r.ID}, nil
}

// Replay asks for one page of room's events after from (the document's
// replay: at most limit, 0 for the gateway's default). Events it returns
// also fill the gaps of the client's subscriptions.
func (c *Client) Replay(ctx context.Context, room string, from uint64, limit int) ([]Event, error) {
	r, err := c.request(ctx, wire.TypeReplay, wire.AppendReplayRequest(nil, room, from, limit))
	if err != nil {
		return nil, err
	}
	return r.Events, nil
}

// request sends msg on the ready connection, waiting for one, and returns
// the reply; a lost connection sends it again on the next.
func (c *Client) request(ctx context.Context, kind string, msg []byte) (*wire.ServerMessage, error) {
	for {
		cn, err := c.waitReady(ctx)
		if err != nil {
			return nil, err
		}
		p := &pending{kind: kind, ch: make(chan result, 1)}
		if !cn.send(msg, p) {
			continue
		}
		select {
		case r := <-p.ch:
			if errors.Is(r.err, ErrConnectionLost) {
				continue
			}
			if r.err != nil {
				return nil, r.err
			}
			return r.msg, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.stop.Done():
			return nil, ErrClosed
		}
	}
}

// waitReady returns the ready connection, waiting for one.
func (c *Client) waitReady(ctx context.Context) (*conn, error) {
	c.mu.Lock()
	if c.cn != nil {
		cn := c.cn
		c.mu.Unlock()
		return cn, nil
	}
	if c.waiting >= c.o.MaxQueuedMessages {
		c.mu.Unlock()
		return nil, ErrQueueFull
	}
	c.waiting++
	ch := c.readyCh
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.waiting--
		c.mu.Unlock()
	}()
	for {
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.done:
			if err := c.failure(); err != nil {
				return nil, err
			}
			return nil, ErrClosed
		}
		c.mu.Lock()
		cn := c.cn
		ch = c.readyCh
		c.mu.Unlock()
		if cn != nil {
			return cn, nil
		}
	}
}
