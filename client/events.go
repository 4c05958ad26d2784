package client

import (
	"bytes"
	"encoding/json"
	"runtime"
	"sync"
	"time"
)

// dispatcher runs callbacks one at a time, in the order they were posted,
// on a goroutine of its own. The goroutine is started when a task is posted
// to an idle dispatcher and exits as soon as the queue is empty, so an idle
// client holds no goroutine for it. The queue is unbounded: the goroutines
// that post (connection readers) never block on a slow callback, which is
// what lets callbacks call blocking client methods such as Command.
type dispatcher struct {
	mu      sync.Mutex
	cond    sync.Cond // L is &mu (set by New); broadcast when running becomes false
	queue   []func()
	running bool   // a worker goroutine exists
	worker  uint64 // its goroutine id, so that drain can tell a callback calling it
}

func (d *dispatcher) post(f func()) {
	d.mu.Lock()
	d.queue = append(d.queue, f)
	if !d.running {
		d.running = true
		go d.run()
	}
	d.mu.Unlock()
}

func (d *dispatcher) run() {
	id := goroutineID()
	d.mu.Lock()
	d.worker = id
	for len(d.queue) > 0 {
		f := d.queue[0]
		d.queue[0] = nil
		d.queue = d.queue[1:]
		d.mu.Unlock()
		f()
		d.mu.Lock()
	}
	d.queue = nil
	d.running = false
	d.worker = 0
	d.cond.Broadcast()
	d.mu.Unlock()
}

// drain waits until the queue is empty and the worker has exited, unless
// it is called by the worker itself (a callback calling Close), which
// would wait for itself.
func (d *dispatcher) drain() {
	id := goroutineID()
	d.mu.Lock()
	for d.running && d.worker != id {
		d.cond.Wait()
	}
	d.mu.Unlock()
}

// goroutineID returns the id of the calling goroutine, read from the
// header of its stack trace ("goroutine 42 [running]:"). Go has no API for
// it; drain needs it only to tell whether Close is called from a callback,
// and the header's format has been stable since Go 1.0. It costs about a
// microsecond and runs once per Close and once per burst of events.
func goroutineID() uint64 {
	var buf [32]byte
	n := runtime.Stack(buf[:], false)
	b := bytes.TrimPrefix(buf[:n], []byte("goroutine "))
	var id uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + uint64(c-'0')
	}
	return id
}

// entry is one registered handler; id lets its off func find it again.
type entry[F any] struct {
	id uint64
	fn F
}

// handlers holds every callback registered on a Client.
type handlers struct {
	mu              sync.Mutex
	next            uint64
	connect         []entry[func()]
	disconnect      []entry[func()]
	reconnect       []entry[func()]
	reconnectFailed []entry[func()]
	close           []entry[func()]
	ping            []entry[func()]
	latency         []entry[func(time.Duration)]
	message         []entry[func(string, json.RawMessage)]
	command         map[string][]entry[func(json.RawMessage)]
}

// register appends fn to *list and returns a func that removes it again.
func register[F any](h *handlers, list *[]entry[F], fn F) (off func()) {
	h.mu.Lock()
	h.next++
	id := h.next
	*list = append(*list, entry[F]{id, fn})
	h.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			for i, e := range *list {
				if e.id == id {
					*list = append((*list)[:i:i], (*list)[i+1:]...)
					return
				}
			}
		})
	}
}

// snapshot copies the handlers of *list, so they run without h.mu held.
func snapshot[F any](h *handlers, list *[]entry[F]) []F {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(*list) == 0 {
		return nil
	}
	fns := make([]F, len(*list))
	for i, e := range *list {
		fns[i] = e.fn
	}
	return fns
}

// emit posts a call of every handler in *list (as registered when the
// event is delivered).
func (c *Client) emit(list *[]entry[func()]) {
	c.events.post(func() {
		for _, f := range snapshot(&c.h, list) {
			f()
		}
	})
}

// OnConnect registers fn to be called after every successful connection,
// by Connect or by a reconnect (then before the OnReconnect handlers). It
// returns a func that unregisters fn. See the package documentation for
// the goroutine callbacks run on.
func (c *Client) OnConnect(fn func()) (off func()) { return register(&c.h, &c.h.connect, fn) }

// OnDisconnect registers fn to be called when Close ends a client that was
// not Offline, after the OnClose handlers (Mesh's "disconnect" event).
func (c *Client) OnDisconnect(fn func()) (off func()) { return register(&c.h, &c.h.disconnect, fn) }

// OnReconnect registers fn to be called after a successful reconnect, once
// the client has rejoined its rooms and restored its subscriptions, right
// after the OnConnect handlers.
func (c *Client) OnReconnect(fn func()) (off func()) { return register(&c.h, &c.h.reconnect, fn) }

// OnReconnectFailed registers fn to be called when the client gives up
// reconnecting after Options.MaxReconnectAttempts attempts.
func (c *Client) OnReconnectFailed(fn func()) (off func()) {
	return register(&c.h, &c.h.reconnectFailed, fn)
}

// OnClose registers fn to be called whenever an open connection closes,
// for any reason, Close included (Mesh's "close" event). A reconnect, if
// enabled, is already under way when fn runs.
func (c *Client) OnClose(fn func()) (off func()) { return register(&c.h, &c.h.close, fn) }

// OnPing registers fn to be called for every server ping. The pong has
// already been sent by then.
func (c *Client) OnPing(fn func()) (off func()) { return register(&c.h, &c.h.ping, fn) }

// OnLatency registers fn to be called with every latency the server
// reports (the "latency" push: its last round-trip measurement, which lags
// one latency interval).
func (c *Client) OnLatency(fn func(time.Duration)) (off func()) {
	return register(&c.h, &c.h.latency, fn)
}

// OnMessage registers fn to be called for every push the server sends
// (every frame that is not the reply to a command), built-in ones (ping,
// latency, mesh/record-update, …) included, before any more specific
// handler. payload is the raw JSON payload (nil if the frame had none); it
// must not be modified, and stays valid after fn returns.
func (c *Client) OnMessage(fn func(command string, payload json.RawMessage)) (off func()) {
	return register(&c.h, &c.h.message, fn)
}

// On registers fn to be called with the payload of every push whose
// command is command: how an application receives what the server
// broadcasts. Built-in pushes can be watched this way too, except ping,
// latency and latency:request, which have OnPing and OnLatency.
func (c *Client) On(command string, fn func(payload json.RawMessage)) (off func()) {
	h := &c.h
	h.mu.Lock()
	if h.command == nil {
		h.command = make(map[string][]entry[func(json.RawMessage)])
	}
	h.next++
	id := h.next
	h.command[command] = append(h.command[command], entry[func(json.RawMessage)]{id, fn})
	h.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			list := h.command[command]
			for i, e := range list {
				if e.id == id {
					list = append(list[:i:i], list[i+1:]...)
					break
				}
			}
			if len(list) == 0 {
				delete(h.command, command)
			} else {
				h.command[command] = list
			}
		})
	}
}

// commandHandlers copies the On handlers of command.
func (c *Client) commandHandlers(command string) []func(json.RawMessage) {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	list := c.h.command[command]
	if len(list) == 0 {
		return nil
	}
	fns := make([]func(json.RawMessage), len(list))
	for i, e := range list {
		fns[i] = e.fn
	}
	return fns
}
