package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/perf"
	"github.com/meshfast/meshfast/protocol"
)

// ceilingServer is the kernel's limit for fanout: it accepts WebSocket
// clients (answering the upgrade and nothing else), switches their sockets
// to blocking mode and, per round, writes one pre-encoded frame to each
// with a plain write(2). No event loop, no queue, no per-connection state.
type ceilingServer struct {
	ln    net.Listener
	mu    sync.Mutex // guards conns, fds
	conns []net.Conn
	fds   []int
	wg    sync.WaitGroup
}

func startCeilingServer() (*ceilingServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &ceilingServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				if err := s.upgrade(c); err != nil {
					_ = c.Close()
				}
			}()
		}
	}()
	return s, nil
}

// upgrade answers the client's upgrade request and keeps the socket.
func (s *ceilingServer) upgrade(c net.Conn) error {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 0, 1024)
	for !bytes.Contains(buf, []byte("\r\n\r\n")) {
		if len(buf) == cap(buf) {
			return errors.New("bench: ceiling: request head too large")
		}
		n, err := c.Read(buf[len(buf):cap(buf)])
		if err != nil {
			return err
		}
		buf = buf[:len(buf)+n]
	}
	resp := append(append([]byte(nil), response101...), acceptKey(string(requestKey(buf)))...)
	if _, err := c.Write(append(resp, "\r\n\r\n"...)); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Time{})
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return err
	}
	var fd int
	var serr error
	if err := rc.Control(func(f uintptr) { fd, serr = int(f), unix.SetNonblock(int(f), false) }); err != nil {
		return err
	}
	if serr != nil {
		return serr
	}
	s.mu.Lock()
	s.conns = append(s.conns, c)
	s.fds = append(s.fds, fd)
	s.mu.Unlock()
	return nil
}

func (s *ceilingServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.fds)
}

func (s *ceilingServer) close() {
	_ = s.ln.Close()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		_ = c.Close()
	}
}

// ceilingResult is what the writers did.
type ceilingResult struct {
	rounds  int
	writes  uint64
	errors  uint64
	elapsed time.Duration
	sweep   *perf.Histogram // time to write one frame to every socket
}

// write runs up to rounds rounds within d, at rate rounds/s (0: back to
// back), from writers goroutines splitting the sockets between them.
func (s *ceilingServer) write(ctx context.Context, o Options) ceilingResult {
	s.mu.Lock()
	fds := append([]int(nil), s.fds...)
	s.mu.Unlock()
	res := ceilingResult{sweep: mustHist()}
	parts := share(len(fds), o.Ceiling.Writers)
	type writer struct {
		fds   []int
		frame chan []byte
		errs  uint64
	}
	ws := make([]*writer, len(parts))
	var done sync.WaitGroup
	var exit sync.WaitGroup
	off := 0
	for i, n := range parts {
		w := &writer{fds: fds[off : off+n], frame: make(chan []byte)}
		off += n
		ws[i] = w
		exit.Add(1)
		go func() {
			defer exit.Done()
			for f := range w.frame {
				for _, fd := range w.fds {
					if writeAll(fd, f) != nil {
						w.errs++
					}
				}
				done.Done()
			}
		}()
	}
	msg := make([]byte, 0, 256)
	frame := make([]byte, 0, 256)
	pad := bytes.Repeat([]byte{'x'}, o.Fanout.Payload)
	start := time.Now()
	for r := 0; r < o.Ceiling.Rounds && time.Since(start) < o.Duration && ctx.Err() == nil; r++ {
		if o.Ceiling.Rate > 0 {
			time.Sleep(time.Until(start.Add(time.Duration(float64(r) / o.Ceiling.Rate * 1e9))))
		}
		t0 := time.Now()
		m := strconv.AppendInt(nil, t0.UnixNano(), 10)
		m = append(strconv.AppendInt(append(m, '|'), int64(r), 10), '|')
		if p := o.Fanout.Payload - len(m); p > 0 {
			m = append(m, pad[:p]...)
		}
		msg = protocol.AppendSubscriptionMessage(msg[:0], o.Fanout.Channel, string(m))
		frame = engine.AppendFrame(frame[:0], engine.OpText, msg)
		done.Add(len(ws))
		for _, w := range ws {
			w.frame <- frame
		}
		done.Wait()
		res.sweep.Record(time.Since(t0))
		res.rounds++
		res.writes += uint64(len(fds))
	}
	res.elapsed = time.Since(start)
	for _, w := range ws {
		close(w.frame)
	}
	exit.Wait()
	for _, w := range ws {
		res.errors += w.errs
	}
	res.writes -= res.errors
	return res
}

// writeAll writes b to a blocking socket, resuming partial writes.
func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

func mustHist() *perf.Histogram {
	h, err := perf.NewHistogram(histOptions)
	if err != nil {
		panic(err) // histOptions is fixed in code
	}
	return h
}

func runCeiling(ctx context.Context, o Options, label string) (*RunResult, error) {
	srv, err := startCeilingServer()
	if err != nil {
		return nil, err
	}
	defer srv.close()
	targets := []string{srv.ln.Addr().String()}
	ps := o.plans(targets, roleRawSub)
	f, err := startFleet(ctx, o, label, ps, []showCounter{showOpen, {c: cDeliveries, rate: true, name: "deliveries"}, showClosed})
	if err != nil {
		return nil, err
	}
	defer f.abort()
	open, err := f.phase(ctx, o.Timeout, openCmd(o, ps, o.Conns))
	if err != nil {
		return nil, err
	}
	subs := sumCounts(open, cSubsReady)
	for deadline := time.Now().Add(o.Timeout); srv.count() < int(subs) && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if srv.count() < int(subs) {
		return nil, fmt.Errorf("%w: ceiling server holds %d of %d sockets", ErrTimeout, srv.count(), subs)
	}
	start := time.Now().UnixNano()
	cpu0 := processCPU()
	w := srv.write(ctx, o)
	writeCPU := processCPU() - cpu0
	drain, err := f.phase(ctx, o.Fanout.Drain, func(int) command {
		return command{Op: "drain", Published: uint64(w.rounds), Duration: o.Fanout.Drain}
	})
	if err != nil {
		return nil, err
	}
	results, err := f.close(ctx)
	if err != nil {
		return nil, err
	}
	r := &RunResult{Label: label, Targets: targets, Workers: o.Workers}
	c, err := r.collect(results)
	if err != nil {
		return nil, err
	}
	r.Latency["sweep"] = w.sweep
	r.add("subscribers", float64(subs), "")
	r.add("published", float64(w.rounds), "")
	r.add("writers", float64(o.Ceiling.Writers), "")
	r.add("writes/s", perSecond(w.writes, w.elapsed), "1/s")
	if w.writes > 0 {
		r.add("ns per write", float64(w.elapsed.Nanoseconds())/float64(w.writes), "ns")
	}
	r.add("write errors", float64(w.errors), "")
	// The writers run in this process; in-process workers would be counted too.
	r.addCPU("server", writeCPU, w.elapsed, !o.InProcess, w.writes, "delivery", "ns")
	deliveryStats(r, c, subs*uint64(w.rounds), start, drain)
	r.addLatency("delivery")
	r.addLatency("sweep")
	return r, nil
}
