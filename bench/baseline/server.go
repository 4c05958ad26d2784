package baseline

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/meshfast/meshfast/protocol"
)

// Defaults of Options. Each names the field it fills.
const (
	DefaultAddr           = "127.0.0.1:0" // Options.Addr
	DefaultPath           = "/"           // Options.Path
	DefaultSendQueue      = 256           // Options.SendQueue
	DefaultMaxMessageSize = 1 << 20       // Options.MaxMessageSize
)

// Commands served besides Mesh's built-ins.
const (
	CmdEcho    = "echo"
	CmdPublish = "bench/publish"
)

// ErrStarted is returned by Start on a server already started.
var ErrStarted = errors.New("baseline: already started")

// Options configures a Server. The zero value works.
type Options struct {
	// Addr is the listen address. Zero means DefaultAddr.
	Addr string
	// Path is the WebSocket path. Zero means DefaultPath.
	Path string
	// SendQueue is each connection's outbound channel capacity, in
	// messages; a publish finding it full closes the connection. Zero means
	// DefaultSendQueue.
	SendQueue int
	// MaxMessageSize is the largest client message. Zero means
	// DefaultMaxMessageSize.
	MaxMessageSize int64
}

// Server is a goroutine-per-connection WebSocket server.
type Server struct {
	o        Options
	ln       net.Listener
	http     *http.Server
	mu       sync.RWMutex // guards channels
	channels map[string]map[*client]struct{}
	cmu      sync.Mutex // guards clients
	clients  map[*client]struct{}
	conns    atomic.Int64
	slow     atomic.Uint64
	started  atomic.Bool
}

// client is one connection: the reader goroutine owns subs; send is
// written by anyone holding the channel table's read lock or by the reader.
type client struct {
	ws     *websocket.Conn
	send   chan []byte
	ctx    context.Context
	cancel context.CancelFunc
	subs   map[string]struct{}
	once   sync.Once
}

// New returns a server with o (zero fields take their defaults).
func New(o Options) *Server {
	if o.Addr == "" {
		o.Addr = DefaultAddr
	}
	if o.Path == "" {
		o.Path = DefaultPath
	}
	if o.SendQueue <= 0 {
		o.SendQueue = DefaultSendQueue
	}
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = DefaultMaxMessageSize
	}
	return &Server{o: o, channels: map[string]map[*client]struct{}{}, clients: map[*client]struct{}{}}
}

// Start listens and serves in the background.
func (s *Server) Start() error {
	if !s.started.CompareAndSwap(false, true) {
		return ErrStarted
	}
	ln, err := net.Listen("tcp", s.o.Addr)
	if err != nil {
		return err
	}
	s.ln = ln
	mux := http.NewServeMux()
	mux.HandleFunc("/health", s.health)
	mux.HandleFunc(s.o.Path, s.serveWS)
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.http.Serve(ln) }()
	return nil
}

// Addr is the bound address once started.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Connections is the number of open WebSocket connections.
func (s *Server) Connections() int64 { return s.conns.Load() }

// SlowConsumers is the number of connections closed for a full queue.
func (s *Server) SlowConsumers() uint64 { return s.slow.Load() }

// Shutdown stops listening and closes every connection.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.http == nil {
		return nil
	}
	err := s.http.Shutdown(ctx) // hijacked connections are not tracked by it
	s.cmu.Lock()
	all := make([]*client, 0, len(s.clients))
	for c := range s.clients {
		all = append(all, c)
	}
	s.cmu.Unlock()
	for _, c := range all {
		c.kill()
	}
	return err
}

func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"status":"ok","connections":` + strconv.FormatInt(s.conns.Load(), 10) + `}`))
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return
	}
	ws.SetReadLimit(s.o.MaxMessageSize)
	ctx, cancel := context.WithCancel(context.Background())
	c := &client{ws: ws, send: make(chan []byte, s.o.SendQueue), ctx: ctx, cancel: cancel, subs: map[string]struct{}{}}
	s.conns.Add(1)
	s.cmu.Lock()
	s.clients[c] = struct{}{}
	s.cmu.Unlock()
	go c.writeLoop()
	s.readLoop(c)
	s.mu.Lock()
	for ch := range c.subs {
		s.unsubscribeLocked(c, ch)
	}
	s.mu.Unlock()
	c.kill()
	s.cmu.Lock()
	delete(s.clients, c)
	s.cmu.Unlock()
	s.conns.Add(-1)
}

// writeLoop is the connection's writer goroutine.
func (c *client) writeLoop() {
	for {
		select {
		case <-c.ctx.Done():
			return
		case m := <-c.send:
			if err := c.ws.Write(c.ctx, websocket.MessageText, m); err != nil {
				c.kill()
				return
			}
		}
	}
}

// kill ends the connection once, from any goroutine.
func (c *client) kill() {
	c.once.Do(func() {
		c.cancel()
		_ = c.ws.CloseNow()
	})
}

// enqueue queues m for c without blocking; a full queue closes c.
func (s *Server) enqueue(c *client, m []byte) {
	select {
	case c.send <- m:
	default:
		s.slow.Add(1)
		c.once.Do(func() {
			c.cancel()
			go func() { _ = c.ws.Close(websocket.StatusTryAgainLater, "slow consumer") }()
		})
	}
}

// readLoop reads and dispatches until the connection ends.
func (s *Server) readLoop(c *client) {
	for {
		typ, data, err := c.ws.Read(c.ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			continue
		}
		var m protocol.Message
		if protocol.Decode(data, &m) != nil || !m.HasID {
			continue
		}
		s.dispatch(c, &m)
	}
}

type publishRequest struct {
	Channel string `json:"channel"`
	Message string `json:"message"`
}

func (s *Server) dispatch(c *client, m *protocol.Message) {
	cmd := string(m.Command)
	var reply []byte
	switch cmd {
	case CmdEcho:
		reply = protocol.AppendReply(nil, m.ID, cmd, m.Payload)
	case protocol.CmdSubscribeChannel:
		var req protocol.SubscribeChannelRequest
		if err := protocol.Unmarshal(m.Payload, &req); err != nil {
			reply = protocol.AppendErrorReply(nil, m.ID, cmd, err)
			break
		}
		s.mu.Lock()
		set := s.channels[req.Channel]
		if set == nil {
			set = map[*client]struct{}{}
			s.channels[req.Channel] = set
		}
		set[c] = struct{}{}
		s.mu.Unlock()
		c.subs[req.Channel] = struct{}{}
		reply = protocol.AppendReply(nil, m.ID, cmd, protocol.SubscribeChannelReply{Success: true}.AppendJSON(nil))
	case protocol.CmdUnsubscribeChannel:
		var req protocol.UnsubscribeChannelRequest
		if err := protocol.Unmarshal(m.Payload, &req); err != nil {
			reply = protocol.AppendErrorReply(nil, m.ID, cmd, err)
			break
		}
		s.mu.Lock()
		s.unsubscribeLocked(c, req.Channel)
		s.mu.Unlock()
		delete(c.subs, req.Channel)
		reply = protocol.AppendReply(nil, m.ID, cmd, protocol.SuccessReply{Success: true}.AppendJSON(nil))
	case CmdPublish:
		var req publishRequest
		if err := protocol.Unmarshal(m.Payload, &req); err != nil {
			reply = protocol.AppendErrorReply(nil, m.ID, cmd, err)
			break
		}
		reply = protocol.AppendReply(nil, m.ID, cmd, protocol.SuccessReply{Success: true}.AppendJSON(nil))
		s.enqueue(c, reply)
		s.Publish(req.Channel, req.Message)
		return
	default:
		reply = protocol.AppendErrorReply(nil, m.ID, cmd, protocol.CommandNotFound(cmd))
	}
	s.enqueue(c, reply)
}

// Publish sends message to every subscriber of channel, encoded once.
func (s *Server) Publish(channel, message string) {
	frame := protocol.AppendSubscriptionMessage(nil, channel, message)
	s.mu.RLock()
	defer s.mu.RUnlock()
	for c := range s.channels[channel] {
		s.enqueue(c, frame)
	}
}

// unsubscribeLocked removes c from channel. s.mu is held for writing.
func (s *Server) unsubscribeLocked(c *client, channel string) {
	set := s.channels[channel]
	delete(set, c)
	if len(set) == 0 {
		delete(s.channels, channel)
	}
}
