package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// fleet is the coordinator's side of a run's workers: it sends each a
// command, collects one answer per worker, and prints aggregated progress
// from the workers' progress events. One goroutine (the scenario driver)
// calls its methods; reader goroutines feed it through events.
type fleet struct {
	o       Options
	label   string
	out     io.Writer
	show    []showCounter
	handles []*handle
	events  chan workerEvent
	mu      sync.Mutex // guards latest
	latest  []counts
	start   time.Time
	stop    chan struct{}
	wg      sync.WaitGroup
	closed  bool
}

// handle is one worker: a child process or an in-process goroutine.
type handle struct {
	enc  *json.Encoder
	in   io.WriteCloser
	proc *exec.Cmd // nil in process
	done chan error
}

type workerEvent struct {
	idx int
	ev  event
	err error
}

// showCounter is one field of the progress line: a total or a rate.
type showCounter struct {
	c    counter
	rate bool
	name string
}

// startFleet starts one worker per plan and initialises them.
func startFleet(ctx context.Context, o Options, label string, plans []plan, show []showCounter) (*fleet, error) {
	f := &fleet{o: o, label: label, out: o.Stdout, show: show, events: make(chan workerEvent, 64),
		latest: make([]counts, len(plans)), start: time.Now(), stop: make(chan struct{})}
	for i := range plans {
		h, r, err := f.spawn()
		if err != nil {
			f.abort()
			return nil, err
		}
		f.handles = append(f.handles, h)
		f.wg.Add(1)
		go f.read(i, r)
	}
	if o.Progress > 0 {
		f.wg.Add(1)
		go f.printProgress()
	}
	_, err := f.phase(ctx, o.Timeout, func(i int) command {
		p := plans[i]
		return command{Op: "init", Plan: &p}
	})
	if err != nil {
		f.abort()
		return nil, err
	}
	return f, nil
}

// spawn starts one worker and returns its handle and event stream.
func (f *fleet) spawn() (*handle, io.Reader, error) {
	if f.o.InProcess {
		cr, cw := io.Pipe()
		er, ew := io.Pipe()
		h := &handle{enc: json.NewEncoder(cw), in: cw, done: make(chan error, 1)}
		go func() {
			err := ServeWorker(cr, ew)
			_ = ew.CloseWithError(err)
			_ = cr.Close()
			h.done <- err
		}()
		return h, er, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrWorker, err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), WorkerEnv+"=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, err
	}
	r, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("%w: start %s: %w", ErrWorker, exe, err)
	}
	h := &handle{enc: json.NewEncoder(in), in: in, proc: cmd, done: make(chan error, 1)}
	return h, r, nil
}

// read forwards worker i's events, keeping progress to itself.
func (f *fleet) read(i int, r io.Reader) {
	defer f.wg.Done()
	dec := json.NewDecoder(r)
	finished := false // the worker sent its result; EOF is expected next
	for {
		var ev event
		if err := dec.Decode(&ev); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			if p := f.handles[i].proc; p != nil {
				werr := p.Wait()
				if werr != nil {
					err = fmt.Errorf("%w (%w)", err, werr)
				}
				f.handles[i].done <- werr
			}
			if finished {
				return
			}
			select {
			case f.events <- workerEvent{idx: i, err: err}:
			case <-f.stop:
			}
			return
		}
		f.mu.Lock()
		f.latest[i] = ev.Counts
		f.mu.Unlock()
		if ev.Ev == "progress" {
			continue
		}
		finished = ev.Ev == "result"
		select {
		case f.events <- workerEvent{idx: i, ev: ev}:
		case <-f.stop:
			return
		}
	}
}

// phase sends cmd(i) to every worker and waits for one answer from each.
func (f *fleet) phase(ctx context.Context, timeout time.Duration, cmd func(i int) command) ([]event, error) {
	for i, h := range f.handles {
		if err := h.enc.Encode(cmd(i)); err != nil {
			return nil, fmt.Errorf("%w: worker %d: %w", ErrWorker, i, err)
		}
	}
	evs := make([]event, len(f.handles))
	got := make([]bool, len(f.handles))
	timer := time.NewTimer(timeout + 10*time.Second)
	defer timer.Stop()
	for n := 0; n < len(f.handles); {
		select {
		case we := <-f.events:
			if we.err != nil {
				return nil, fmt.Errorf("%w: worker %d: %w", ErrWorker, we.idx, we.err)
			}
			if we.ev.Ev == "error" {
				return nil, fmt.Errorf("%w: worker %d: %s", ErrWorker, we.idx, we.ev.Err)
			}
			if !got[we.idx] {
				got[we.idx], evs[we.idx] = true, we.ev
				n++
			}
		case <-timer.C:
			return nil, fmt.Errorf("%w: %s", ErrTimeout, cmd(0).Op)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return evs, nil
}

// hold waits d (or ctx) while progress keeps printing.
func (f *fleet) hold(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// total sums the latest counts of every worker.
func (f *fleet) total() counts {
	f.mu.Lock()
	defer f.mu.Unlock()
	var t counts
	for _, c := range f.latest {
		t.add(c)
	}
	return t
}

func (f *fleet) printProgress() {
	defer f.wg.Done()
	t := time.NewTicker(f.o.Progress)
	defer t.Stop()
	var prev counts
	last := time.Now()
	for {
		select {
		case <-f.stop:
			return
		case now := <-t.C:
			cur := f.total()
			dt := now.Sub(last).Seconds()
			var b strings.Builder
			fmt.Fprintf(&b, "[%6.1fs] %s:", now.Sub(f.start).Seconds(), f.label)
			for _, s := range f.show {
				if s.rate {
					fmt.Fprintf(&b, " %s=%.0f/s", s.name, float64(cur[s.c]-prev[s.c])/dt)
				} else {
					fmt.Fprintf(&b, " %s=%d", s.name, cur[s.c])
				}
			}
			fmt.Fprintln(f.out, b.String())
			prev, last = cur, now
		}
	}
}

// close asks every worker for its result and waits for it to exit.
func (f *fleet) close(ctx context.Context) ([]event, error) {
	evs, err := f.phase(ctx, f.o.Timeout, func(int) command { return command{Op: "close"} })
	f.abort()
	return evs, err
}

// abort stops the workers: closing stdin ends a worker; a child that has
// not exited a few seconds later is killed.
func (f *fleet) abort() {
	if f.closed {
		return
	}
	f.closed = true
	for _, h := range f.handles {
		_ = h.in.Close()
	}
	for _, h := range f.handles {
		select {
		case <-h.done:
		case <-time.After(10 * time.Second):
			if h.proc != nil {
				_ = h.proc.Process.Kill()
				<-h.done
			}
		}
	}
	close(f.stop)
	f.wg.Wait()
}
