package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	zpsclient "github.com/meshfast/meshfast/client/zps"
	"github.com/meshfast/meshfast/coord/memory"
	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/features/mesh"
	"github.com/meshfast/meshfast/features/server"
	"github.com/meshfast/meshfast/features/streams"
	memstore "github.com/meshfast/meshfast/features/streams/store/memory"
	"github.com/meshfast/meshfast/internal/testutil"
)

// The no-loss test of durable streams: publishers on two meshfast nodes
// write lossTotal events to one room while lossClients gateway clients,
// spread over both nodes, lose their connections at random and come back;
// every client must end with exactly the sequences 1..lossTotal, each once,
// in order. The events are published as fast as the nodes take them.
const (
	lossTotal   = 10000
	lossClients = 50
	lossRoom    = "feed:noloss"
	// lossCuts is how many connections are cut over the run (one every
	// lossTotal/lossCuts events).
	lossCuts = 100
)

// lossRun is one run: where the nodes are, how to publish on each, and
// which node is dead (its clients then reach the other).
type lossRun struct {
	t     *testing.T
	addrs []string // the nodes' host:port
	// publish stores events (ids given) through node i and returns the
	// sequence of each; an error means none, some or all may be stored.
	publish func(node int, ids []string) ([]uint64, error)
	dead    atomic.Int32 // 1 + the index of a killed node; 0 none

	reconnects atomic.Int64

	mu    sync.Mutex
	conns map[int]net.Conn // each client's current connection
	acked map[string]uint64
}

// lossClient is one subscriber and what it has seen.
type lossClient struct {
	c          *zpsclient.Client
	mu         sync.Mutex
	next       uint64
	violations []string
}

func (lc *lossClient) handle(_ context.Context, ev *zpsclient.Event) error {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if ev.Sequence != lc.next {
		if len(lc.violations) < 5 {
			lc.violations = append(lc.violations, fmt.Sprintf("got #%d, want #%d", ev.Sequence, lc.next))
		}
		if ev.Sequence < lc.next {
			return nil
		}
	}
	lc.next = ev.Sequence + 1
	return nil
}

// run starts the clients and the publishers; kill, if set, is called
// when half the events are published and returns the node it killed.
func (r *lossRun) run(kill func() int) {
	t := r.t
	r.conns = make(map[int]net.Conn)
	r.acked = make(map[string]uint64)
	clients := make([]*lossClient, lossClients)
	for i := range clients {
		lc := &lossClient{next: 1}
		clients[i] = lc
		home := i % len(r.addrs)
		lc.c = zpsclient.New("ws://"+r.addrs[home]+"/zps", zpsclient.Options{
			SubscriberID:   fmt.Sprint("loss-", i),
			ReconnectDelay: 5 * time.Millisecond, MaxReconnectDelay: 100 * time.Millisecond,
			OnReconnect: func() { r.reconnects.Add(1) },
			Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
				if d := int(r.dead.Load()); d != 0 && addr == r.addrs[d-1] {
					addr = r.addrs[2-d] // the other node
				}
				nc, err := (&net.Dialer{KeepAlive: -1}).DialContext(ctx, network, addr)
				if err == nil {
					r.mu.Lock()
					r.conns[i] = nc
					r.mu.Unlock()
				}
				return nc, err
			},
		})
		t.Cleanup(func() { _ = lc.c.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		if err := lc.c.Connect(ctx); err != nil {
			cancel()
			t.Fatal(err)
		}
		cancel()
		if _, err := lc.c.Subscribe(lossRoom, lc.handle, zpsclient.FromSequence(0)); err != nil {
			t.Fatal(err)
		}
	}

	var published atomic.Int64
	cuts := make(chan struct{}, lossCuts)
	half := make(chan struct{})
	var halfOnce sync.Once
	progress := func(n int64) {
		before := published.Add(n) - n
		for k := before/(lossTotal/lossCuts) + 1; k <= (before+n)/(lossTotal/lossCuts); k++ {
			select {
			case cuts <- struct{}{}:
			default:
			}
		}
		if before+n >= lossTotal/2 {
			halfOnce.Do(func() { close(half) })
		}
	}
	// Chaos: a random client's connection is cut at each step of the
	// publishing.
	chaosDone := make(chan struct{})
	go func() {
		defer close(chaosDone)
		for range lossCuts {
			<-cuts
			r.mu.Lock()
			var live []int
			for i, nc := range r.conns {
				if nc != nil {
					live = append(live, i)
				}
			}
			var nc net.Conn
			if len(live) > 0 {
				i := live[rand.IntN(len(live))]
				nc, r.conns[i] = r.conns[i], nil
			}
			r.mu.Unlock()
			if nc != nil {
				nc.Close()
			}
		}
	}()
	killed := make(chan int, 1)
	if kill != nil {
		go func() {
			<-half
			killed <- kill()
		}()
	}

	var wg sync.WaitGroup
	errs := make(chan error, len(r.addrs))
	per := lossTotal / len(r.addrs)
	for p := range r.addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := p
			const batch = 5
			for i := 0; i < per; i += batch {
				ids := make([]string, 0, batch)
				for k := i; k < min(i+batch, per); k++ {
					ids = append(ids, fmt.Sprintf("p%d-%d", p, k))
				}
				for attempt := 0; ; attempt++ {
					seqs, err := r.publish(node, ids)
					if err == nil {
						r.mu.Lock()
						for k, id := range ids {
							r.acked[id] = seqs[k]
						}
						r.mu.Unlock()
						break
					}
					if attempt == 50 {
						errs <- fmt.Errorf("publisher %d: %v", p, err)
						return
					}
					if d := int(r.dead.Load()); d != 0 && node == d-1 {
						node = 2 - d // its node is gone: the same ids on the other
					}
					time.Sleep(10 * time.Millisecond)
				}
				progress(int64(len(ids)))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	<-chaosDone
	if kill != nil {
		<-killed
	}

	// Every publish was acknowledged, each id once, with its own sequence:
	// 1..lossTotal.
	seen := make(map[uint64]string, lossTotal)
	for id, s := range r.acked {
		if other, dup := seen[s]; dup {
			t.Fatalf("sequence %d acknowledged for %s and %s", s, id, other)
		}
		seen[s] = id
	}
	if len(r.acked) != lossTotal || len(seen) != lossTotal {
		t.Fatalf("%d events acknowledged, want %d", len(r.acked), lossTotal)
	}
	for s := uint64(1); s <= lossTotal; s++ {
		if seen[s] == "" {
			t.Fatalf("no acknowledged event has sequence %d", s)
		}
	}
	testutil.Eventually(t, 60*time.Second, func() error {
		for i, lc := range clients {
			lc.mu.Lock()
			next, v := lc.next, lc.violations
			lc.mu.Unlock()
			if len(v) > 0 {
				return fmt.Errorf("client %d: %v", i, v)
			}
			if next != lossTotal+1 {
				return fmt.Errorf("client %d is at #%d of %d", i, next-1, lossTotal)
			}
		}
		return nil
	})
	if n := r.reconnects.Load(); n < lossCuts/4 { // cuts of a client still reconnecting count once
		t.Fatalf("only %d reconnects for %d cuts", n, lossCuts)
	}
	t.Logf("%d reconnects", r.reconnects.Load())
	time.Sleep(50 * time.Millisecond) // nothing after the last
	for i, lc := range clients {
		lc.mu.Lock()
		if len(lc.violations) > 0 || lc.next != lossTotal+1 {
			t.Errorf("client %d: next #%d, %v", i, lc.next, lc.violations)
		}
		lc.mu.Unlock()
	}
}

// TestNoLossMemory: two nodes in one process share a memory store and a
// memory coordinator (memory storage cannot span processes); publishers
// use each node's Go API.
func TestNoLossMemory(t *testing.T) {
	co := memory.New(memory.Options{})
	t.Cleanup(func() { _ = co.Close() })
	st := memstore.New(memstore.Options{})
	t.Cleanup(func() { _ = st.Close() })
	var nodes []*server.Node
	var addrs []string
	for range 2 {
		n, err := server.Start(server.Config{Engine: engine.Options{Addr: "127.0.0.1:0"},
			Mesh: mesh.Options{Coordinator: co}, Streams: server.StreamsConfig{Store: st}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = n.Shutdown(ctx)
		})
		nodes = append(nodes, n)
		addrs = append(addrs, n.Addr().String())
	}
	r := &lossRun{t: t, addrs: addrs, publish: func(node int, ids []string) ([]uint64, error) {
		ms := make([]streams.Message, len(ids))
		for i, id := range ids {
			ms[i] = streams.Message{ID: id, Room: lossRoom, Type: "tick", Payload: json.RawMessage(`{"id":"` + id + `"}`)}
		}
		ps, err := nodes[node].Streams.PublishBatch(context.Background(), ms)
		if err != nil {
			return nil, err
		}
		seqs := make([]uint64, len(ps))
		for i, p := range ps {
			seqs[i] = p.Sequence
		}
		return seqs, nil
	}}
	r.run(nil)
}

// TestNoLossRedis: two meshfast processes on one Redis (Redis Streams
// storage), publishers on the HTTP API of each; halfway through one
// process is killed with SIGKILL. Its publisher sends what it had not had
// acknowledged to the other node, with the same ids; its clients
// reconnect to the other node. Nothing acknowledged is lost, and every
// client still ends with 1..lossTotal.
func TestNoLossRedis(t *testing.T) {
	bin := buildMeshfast(t)
	rd := testutil.StartRedis(t)
	const key = "noloss-api-key-0123456789"
	env := []string{"MESHFAST_API_KEYS=[" + key + "]"}
	args := []string{"-redis", "redis://" + rd.Addr, "-addr", "127.0.0.1:0"}
	procs := []*proc{startMeshfast(t, bin, args, env), startMeshfast(t, bin, args, env)}
	r := &lossRun{t: t, addrs: []string{procs[0].addr, procs[1].addr}}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: (&net.Dialer{KeepAlive: -1}).DialContext}}
	r.publish = func(node int, ids []string) ([]uint64, error) {
		var body bytes.Buffer
		body.WriteString(`{"events":[`)
		for i, id := range ids {
			if i > 0 {
				body.WriteByte(',')
			}
			fmt.Fprintf(&body, `{"id":%q,"room":%q,"type":"tick","payload":{"id":%q}}`, id, lossRoom, id)
		}
		body.WriteString(`]}`)
		req, _ := http.NewRequest("POST", "http://"+r.addrs[node]+"/api/streams/publish_batch", &body)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return nil, fmt.Errorf("%d %s", resp.StatusCode, b)
		}
		var out struct {
			Published []struct {
				Event struct {
					ID       string `json:"id"`
					Sequence uint64 `json:"sequence"`
				} `json:"event"`
			} `json:"published"`
		}
		if err := json.Unmarshal(b, &out); err != nil || len(out.Published) != len(ids) {
			return nil, fmt.Errorf("answer %s: %v", b, err)
		}
		seqs := make([]uint64, len(ids))
		for i, p := range out.Published {
			if p.Event.ID != ids[i] {
				return nil, fmt.Errorf("answer for %s is %s", ids[i], p.Event.ID)
			}
			seqs[i] = p.Event.Sequence
		}
		return seqs, nil
	}
	r.run(func() int {
		r.dead.Store(1)
		if err := procs[0].cmd.Process.Kill(); err != nil { // SIGKILL
			t.Error(err)
		}
		return 0
	})
	// What the publishers were told is what Redis holds.
	res, err := testutil.Do(rd.Addr, "XLEN", "zps:{"+lossRoom+"}:events")
	if err != nil || res != int64(lossTotal) {
		t.Fatalf("the stream holds %v events (%v), want %d", res, err, lossTotal)
	}
	for _, s := range []uint64{1, lossTotal / 2, lossTotal} {
		id := ""
		r.mu.Lock()
		for k, v := range r.acked {
			if v == s {
				id = k
			}
		}
		r.mu.Unlock()
		got, err := testutil.Do(rd.Addr, "XRANGE", "zps:{"+lossRoom+"}:events", fmt.Sprintf("%d-0", s), fmt.Sprintf("%d-0", s))
		if err != nil || !strings.Contains(fmt.Sprint(got), id) {
			t.Fatalf("#%d in Redis: %v %v, want id %s", s, got, err, id)
		}
	}

}
