package zps_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshfast/meshfast/client/zps"
	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/features/streams"
	"github.com/meshfast/meshfast/features/streams/gateway"
	"github.com/meshfast/meshfast/internal/testutil"
	wire "github.com/meshfast/meshfast/protocol/zps"
)

func TestMain(m *testing.M) {
	testutil.VerifyNoLeaks(m)
}

// node is a real gateway: an engine, a node's streams (memory) and the
// gateway on /zps.
type node struct {
	e  *engine.Engine
	st *streams.Streams
	g  *gateway.Gateway
}

func startNode(t testing.TB, o gateway.Options) *node {
	t.Helper()
	st, err := streams.New(streams.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := engine.New(engine.Options{Addr: "127.0.0.1:0", Loops: 2, IdleTimeout: -1, PingInterval: -1,
		TickInterval: 5 * time.Millisecond, SweepPeriod: 5 * time.Millisecond})
	if o.Limits.MaxMessagesPerWindow == 0 {
		o.Limits.MaxMessagesPerWindow = -1
	}
	g, err := gateway.New(e, st, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.Shutdown(ctx)
		_ = g.Close()
		_ = st.Close()
	})
	return &node{e: e, st: st, g: g}
}

func (n *node) publish(t testing.TB, room string, count int) {
	t.Helper()
	for i := range count {
		if _, err := n.st.Publish(context.Background(), streams.Message{Room: room, Type: "t", Payload: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
}

// recorder collects a handler's sequences.
type recorder struct {
	mu   sync.Mutex
	seqs []uint64
}

func (r *recorder) handle(_ context.Context, ev *zps.Event) error {
	r.mu.Lock()
	r.seqs = append(r.seqs, ev.Sequence)
	r.mu.Unlock()
	return nil
}

// waitExactly waits until the handler has 1..n and checks it got nothing
// else.
func (r *recorder) waitExactly(t testing.TB, n uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		got := append([]uint64(nil), r.seqs...)
		r.mu.Unlock()
		if err := exactly(got, n); err == nil {
			return
		} else if time.Now().After(deadline) || uint64(len(got)) > n {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func exactly(got []uint64, n uint64) error {
	for i, s := range got {
		if s != uint64(i)+1 {
			return fmt.Errorf("event %d is #%d (all: %v)", i, s, got)
		}
	}
	if uint64(len(got)) != n {
		return fmt.Errorf("%d events, want %d", len(got), n)
	}
	return nil
}

// TestGapReplay: an event lost on the way (a proxy drops it) is noticed by
// the next one's sequence; the client holds what follows, asks for a
// replay, and hands over 1..n in order.
func TestGapReplay(t *testing.T) {
	n := startNode(t, gateway.Options{})
	px := startProxy(t, n.e.Addr().String())
	px.drop.Store(3)
	c := zps.New("ws://"+px.addr+"/zps", zps.Options{SubscriberID: "dev", ReplayThrottle: 10 * time.Millisecond})
	defer c.Close()
	if err := c.Connect(ctx(t)); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	if _, err := c.Subscribe("chat:1", rec.handle); err != nil {
		t.Fatal(err)
	}
	px.waitSent(t, `{"type":"subscribe","room":"chat:1"}`)
	n.publish(t, "chat:1", 6)
	rec.waitExactly(t, 6)
	if !px.sent(`{"type":"replay_request","room":"chat:1","fromSequence":2,"limit":100}`) {
		t.Fatalf("no replay request; the client sent %v", px.clientMessages())
	}
	// Acknowledged after handling: the cursor reaches the last.
	waitCursor(t, n, "chat:1", "dev", 6)
}

// TestReconnectResume: connections cut in the middle of a stream; the
// client reconnects and subscribes again from the last sequence it got:
// 1..n, nothing twice.
func TestReconnectResume(t *testing.T) {
	n := startNode(t, gateway.Options{})
	px := startProxy(t, n.e.Addr().String())
	var reconnects atomic.Int32
	c := zps.New("ws://"+px.addr+"/zps", zps.Options{SubscriberID: "dev", ReconnectDelay: 5 * time.Millisecond,
		OnReconnect: func() { reconnects.Add(1) }})
	defer c.Close()
	if err := c.Connect(ctx(t)); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	sub, err := c.Subscribe("chat:1", rec.handle, zps.FromSequence(0))
	if err != nil {
		t.Fatal(err)
	}
	px.waitSent(t, `{"type":"subscribe","room":"chat:1","fromSequence":0}`)
	n.publish(t, "chat:1", 50)
	rec.waitExactly(t, 50)
	px.cut()
	n.publish(t, "chat:1", 50) // while it is away
	rec.waitExactly(t, 100)
	if reconnects.Load() < 1 || !px.sent(`{"type":"subscribe","room":"chat:1","fromSequence":50}`) {
		t.Fatalf("reconnects %d, the client sent %v", reconnects.Load(), px.clientMessages())
	}
	for range 3 {
		px.cut()
		n.publish(t, "chat:1", 10)
	}
	rec.waitExactly(t, 130)
	if got := sub.LastSequence("chat:1"); got != 130 {
		t.Fatalf("LastSequence %d", got)
	}
	waitCursor(t, n, "chat:1", "dev", 130)

	// A new client with the same subscriber id resumes after the cursor.
	c2 := zps.New("ws://"+n.e.Addr().String()+"/zps", zps.Options{SubscriberID: "dev"})
	defer c2.Close()
	if err := c2.Connect(ctx(t)); err != nil {
		t.Fatal(err)
	}
	rec2 := &recorder{}
	if _, err := c2.Subscribe("chat:1", rec2.handle); err != nil {
		t.Fatal(err)
	}
	n.publish(t, "chat:1", 1)
	deadline := time.Now().Add(5 * time.Second)
	for {
		rec2.mu.Lock()
		got := fmt.Sprint(rec2.seqs)
		rec2.mu.Unlock()
		if got == "[131]" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("resumed with %s, want [131]", got)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestPublish: a publish made before the connection opens waits for it; one
// whose connection drops is sent again with its id and stored once.
func TestPublish(t *testing.T) {
	n := startNode(t, gateway.Options{Limits: gateway.Limits{AllowClientPublish: true}})
	px := startProxy(t, n.e.Addr().String())
	c := zps.New("ws://"+px.addr+"/zps", zps.Options{SubscriberID: "pub", ReconnectDelay: 5 * time.Millisecond})
	defer c.Close()
	res := make(chan error, 1)
	var got zps.Published
	go func() {
		var err error
		got, err = c.Publish(ctx(t), zps.PublishEvent{Room: "chat:1", Type: "m", Payload: []byte(`"queued"`)})
		res <- err
	}()
	time.Sleep(20 * time.Millisecond) // the publish is waiting
	if err := c.Connect(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := <-res; err != nil || got.Sequence != 1 {
		t.Fatalf("queued publish: %+v %v", got, err)
	}
	// Stored, but its answer lost with the connection: the client sends it
	// again on the next connection, and its id makes it one event.
	px.mute.Store(true)
	go func() {
		var err error
		got, err = c.Publish(ctx(t), zps.PublishEvent{Room: "chat:1", Type: "m", Payload: []byte(`"again"`)})
		res <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		h, err := n.st.Store().Heads(context.Background(), []string{"chat:1"})
		if err == nil && h[0] == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second publish was not stored")
		}
		time.Sleep(time.Millisecond)
	}
	px.cut()
	px.mute.Store(false)
	if err := <-res; err != nil || got.Sequence != 2 {
		t.Fatalf("publish across a reconnect: %+v %v", got, err)
	}
	r, err := n.st.Replay(context.Background(), streams.ReplayOptions{Room: "chat:1", Limit: 10})
	if err != nil || len(r.Events) != 2 {
		t.Fatalf("stored %d events, %v", len(r.Events), err)
	}

	// Refused: the gateway's error, with its code.
	n2 := startNode(t, gateway.Options{})
	c2 := zps.New("ws://"+n2.e.Addr().String()+"/zps", zps.Options{})
	defer c2.Close()
	if err := c2.Connect(ctx(t)); err != nil {
		t.Fatal(err)
	}
	_, err = c2.Publish(ctx(t), zps.PublishEvent{Room: "chat:1", Type: "m"})
	var se *zps.ServerError
	if !errors.As(err, &se) || se.Code != wire.CodePublishDisabled {
		t.Fatalf("publish refused: %v", err)
	}
}

// TestAuthRefusals: a refused token stops Connect; a refused subscription
// goes to OnError.
func TestAuthRefusals(t *testing.T) {
	n := startNode(t, gateway.Options{Auth: gateway.Auth{Scopes: []string{"chat"},
		JWT: func(_ context.Context, tok string) (map[string]any, error) {
			if tok != "good" {
				return nil, errors.New("token expired")
			}
			return map[string]any{}, nil
		}}})
	url := "ws://" + n.e.Addr().String() + "/zps"
	bad := zps.New(url, zps.Options{Token: "bad"})
	defer bad.Close()
	err := bad.Connect(ctx(t))
	var se *zps.ServerError
	if !errors.As(err, &se) || se.Code != wire.CodeUnauthorized {
		t.Fatalf("bad token: %v", err)
	}
	errs := make(chan error, 4)
	good := zps.New(url, zps.Options{Token: "good", OnError: func(err error) { errs <- err }})
	defer good.Close()
	if err := good.Connect(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := good.Subscribe("admin:1", (&recorder{}).handle); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		if !errors.As(err, &se) || se.Code != wire.CodeAccessDenied || se.Message != "Access denied for room: admin:1" {
			t.Fatalf("refused subscription: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no error for a refused subscription")
	}
}

func waitCursor(t testing.TB, n *node, room, sub string, want uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := n.st.Cursor(context.Background(), room, sub)
		if err == nil && c == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cursor %d, %v; want %d", c, err, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// proxy is a WebSocket-aware TCP proxy for faults: it can drop the event
// message of one sequence, cut every connection, and hold back what the
// client sends; it records the client's messages.
type proxy struct {
	t      testing.TB
	ln     net.Listener
	addr   string
	target string
	drop   atomic.Uint64 // an event sequence to drop once; 0 none

	mute  atomic.Bool // drop every text message of the server's
	mu    sync.Mutex
	conns []net.Conn
	msgs  []string
	wg    sync.WaitGroup
}

func startProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, ln: ln, addr: ln.Addr().String(), target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.upstream(c, s)
		go p.downstream(s, c)
	}
}

// upstream copies the client's bytes: the handshake as is, then frames,
// unmasking a copy of each to record it.
func (p *proxy) upstream(c, s net.Conn) {
	defer p.wg.Done()
	defer s.Close()
	br := bufio.NewReader(c)
	head, err := readHead(br)
	if err != nil {
		return
	}
	if _, err := s.Write(head); err != nil {
		return
	}
	for {
		raw, op, payload, err := readFrame(br)
		if err != nil {
			return
		}
		if op == 1 {
			p.mu.Lock()
			p.msgs = append(p.msgs, string(payload))
			p.mu.Unlock()
		}
		if _, err := s.Write(raw); err != nil {
			return
		}
	}
}

// downstream copies the server's bytes, dropping the event of the
// sequence in drop.
func (p *proxy) downstream(s, c net.Conn) {
	defer p.wg.Done()
	defer c.Close()
	br := bufio.NewReader(s)
	head, err := readHead(br)
	if err != nil {
		return
	}
	if _, err := c.Write(head); err != nil {
		return
	}
	for {
		raw, op, payload, err := readFrame(br)
		if err != nil {
			return
		}
		if op == 1 && p.mute.Load() {
			continue
		}
		if d := p.drop.Load(); d != 0 && op == 1 && bytes.HasPrefix(payload, []byte(`{"type":"event"`)) &&
			bytes.Contains(payload, []byte(fmt.Sprintf(`"sequence":%d,`, d))) {
			p.drop.Store(0)
			continue
		}
		if _, err := c.Write(raw); err != nil {
			return
		}
	}
}

func readHead(br *bufio.Reader) ([]byte, error) {
	var head []byte
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return nil, err
		}
		head = append(head, line...)
		if len(line) <= 2 {
			return head, nil
		}
	}
}

// readFrame reads one WebSocket frame: its bytes, opcode and (unmasked)
// payload.
func readFrame(br *bufio.Reader) (raw []byte, op byte, payload []byte, err error) {
	var h [2]byte
	if _, err = io.ReadFull(br, h[:]); err != nil {
		return
	}
	raw = append(raw, h[:]...)
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err = io.ReadFull(br, b[:]); err != nil {
			return
		}
		raw = append(raw, b[:]...)
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err = io.ReadFull(br, b[:]); err != nil {
			return
		}
		raw = append(raw, b[:]...)
		n = binary.BigEndian.Uint64(b[:])
	}
	var mask []byte
	if h[1]&0x80 != 0 {
		mask = make([]byte, 4)
		if _, err = io.ReadFull(br, mask); err != nil {
			return
		}
		raw = append(raw, mask...)
	}
	body := make([]byte, n)
	if _, err = io.ReadFull(br, body); err != nil {
		return
	}
	raw = append(raw, body...)
	payload = bytes.Clone(body)
	for i := range payload {
		if mask != nil {
			payload[i] ^= mask[i%4]
		}
	}
	return raw, h[0] & 0x0f, payload, nil
}

func (p *proxy) cut() {
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

func (p *proxy) sent(msg string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.msgs {
		if m == msg {
			return true
		}
	}
	return false
}

func (p *proxy) waitSent(t testing.TB, msg string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !p.sent(msg) {
		if time.Now().After(deadline) {
			t.Fatalf("the client did not send %s: %v", msg, p.clientMessages())
		}
		time.Sleep(time.Millisecond)
	}
}

func (p *proxy) clientMessages() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.msgs...)
}
