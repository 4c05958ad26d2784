package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// readRSS returns the resident set of pid from /proc/<pid>/status (VmRSS).
func readRSS(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseUint(f[0], 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, fmt.Errorf("bench: no VmRSS for pid %d", pid)
}

// findListenerPID returns the pid of the process holding the listening TCP
// socket on port: the socket's inode from /proc/net/tcp{,6}, then the
// process whose /proc/<pid>/fd links to it.
func findListenerPID(port int) (int, error) {
	inodes := map[string]bool{}
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(file)
		if err != nil {
			continue
		}
		listenInodes(f, port, inodes)
		_ = f.Close()
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("bench: nothing listens on port %d", port)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		pid, err := strconv.Atoi(filepath.Base(p))
		if err != nil {
			continue
		}
		fds, err := os.ReadDir(p + "/fd")
		if err != nil {
			continue
		}
		for _, fd := range fds {
			l, err := os.Readlink(p + "/fd/" + fd.Name())
			if err != nil {
				continue
			}
			if s, ok := strings.CutPrefix(l, "socket:["); ok && inodes[strings.TrimSuffix(s, "]")] {
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("bench: no process found for the listener on port %d", port)
}

// listenInodes adds the inodes of sockets in LISTEN state (0A) on port.
func listenInodes(r io.Reader, port int, into map[string]bool) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[3] != "0A" {
			continue
		}
		_, hexPort, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil && int(p) == port {
			into[f[9]] = true
		}
	}
}

// acceptQueue is how many connections wait in the accept queues of the
// listeners on port: the rx_queue of its LISTEN sockets in
// /proc/net/tcp{,6}, which for a listener is the count the kernel has
// completed and the server not yet accepted. ok is false when no listener
// on port is visible (a server in another network namespace).
func acceptQueue(port int) (n int, ok bool) {
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(file)
		if err != nil {
			continue
		}
		k, found := listenQueue(f, port)
		_ = f.Close()
		n += k
		ok = ok || found
	}
	return n, ok
}

// listenQueue sums the accept queues of the LISTEN sockets on port. The
// kernel lists listeners before every other socket, so it stops at the first
// line that is not one: with tens of thousands of connections open the rest
// of the file is megabytes.
func listenQueue(r io.Reader, port int) (n int, found bool) {
	sc := bufio.NewScanner(r)
	sc.Scan() // header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 || f[3] != "0A" {
			break
		}
		_, hexPort, _ := strings.Cut(f[1], ":")
		_, hexRx, _ := strings.Cut(f[4], ":")
		p, err1 := strconv.ParseUint(hexPort, 16, 16)
		q, err2 := strconv.ParseUint(hexRx, 16, 32)
		if err1 == nil && err2 == nil && int(p) == port {
			n += int(q)
			found = true
		}
	}
	return n, found
}

// serverPIDs returns the pids serving targets: pid for all of them when
// given, else the listener of each target's port, deduplicated.
func serverPIDs(pid int, targets []string) ([]int, error) {
	if pid > 0 {
		return []int{pid}, nil
	}
	var pids []int
	seen := map[int]bool{}
	for _, t := range targets {
		_, ps, _ := net.SplitHostPort(t)
		port, err := strconv.Atoi(ps)
		if err != nil {
			return nil, err
		}
		p, err := findListenerPID(port)
		if err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			pids = append(pids, p)
		}
	}
	return pids, nil
}

// httpGet fetches http://addr/path with a short timeout.
func httpGet(addr, path string) ([]byte, error) {
	c := http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("bench: GET %s: %s", path, resp.Status)
	}
	return b, err
}

// heapMetrics are the Prometheus series read as the Go heap, in order.
var heapMetrics = []string{"go_memory_classes_heap_objects_bytes", "go_memstats_heap_alloc_bytes"}

// promValue returns the first sample of the first of names found in a
// Prometheus text exposition.
func promValue(text []byte, names []string) (float64, bool) {
	for _, name := range names {
		for line := range bytes.SplitSeq(text, []byte("\n")) {
			rest, ok := bytes.CutPrefix(line, []byte(name))
			if !ok || len(rest) == 0 || (rest[0] != ' ' && rest[0] != '{') {
				continue
			}
			f := strings.Fields(string(rest))
			if len(f) == 0 {
				continue
			}
			if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
				return v, true
			}
		}
	}
	return 0, false
}

// healthConns reads "connections" from a /health JSON document.
func healthConns(b []byte) (int64, bool) {
	var h struct {
		Connections *int64 `json:"connections"`
	}
	if json.Unmarshal(b, &h) != nil || h.Connections == nil {
		return 0, false
	}
	return *h.Connections, true
}

// MemorySample is the servers' memory at one open-connection count.
type MemorySample struct {
	Conns       int64  `json:"conns"`                  // client connections open
	ServerConns int64  `json:"server_conns,omitempty"` // as /health reports, when it does
	RSS         uint64 `json:"rss_bytes"`              // VmRSS, summed over the server processes
	Heap        uint64 `json:"heap_bytes,omitempty"`   // Go heap from /metrics, when served
}

// sampleMemory reads RSS of pids and, where served, heap and connections
// of targets.
func sampleMemory(pids []int, targets []string, conns int64) (MemorySample, error) {
	s := MemorySample{Conns: conns}
	for _, p := range pids {
		rss, err := readRSS(p)
		if err != nil {
			return s, err
		}
		s.RSS += rss
	}
	haveHeap, haveConns := true, true
	for _, t := range targets {
		if b, err := httpGet(t, "/metrics"); err == nil {
			v, ok := promValue(b, heapMetrics)
			haveHeap = haveHeap && ok
			s.Heap += uint64(v)
		} else {
			haveHeap = false
		}
		if b, err := httpGet(t, "/health"); err == nil {
			n, ok := healthConns(b)
			haveConns = haveConns && ok
			s.ServerConns += n
		} else {
			haveConns = false
		}
	}
	if !haveHeap {
		s.Heap = 0
	}
	if !haveConns {
		s.ServerConns = 0
	}
	return s, nil
}

// serverWriteStats sums the write path's counters (meshfast's
// meshfast_writes_total and meshfast_frames_out_total) over the targets'
// /metrics; ok is false when a target does not serve them.
func serverWriteStats(targets []string) (writes, frames float64, ok bool) {
	for _, t := range targets {
		b, err := httpGet(t, "/metrics")
		if err != nil {
			return 0, 0, false
		}
		w, okW := promValue(b, []string{"meshfast_writes_total"})
		f, okF := promValue(b, []string{"meshfast_frames_out_total"})
		if !okW || !okF {
			return 0, 0, false
		}
		writes += w
		frames += f
	}
	return writes, frames, true
}

// clockTicks is USER_HZ, the unit of the times in /proc/<pid>/stat.
const clockTicks = 100

// cpuTime returns the user plus system CPU time pids have used.
func cpuTime(pids []int) (time.Duration, error) {
	var total time.Duration
	for _, p := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			return 0, err
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 > len(b) {
			return 0, fmt.Errorf("bench: /proc/%d/stat: unexpected format", p)
		}
		f := strings.Fields(string(b[i+2:])) // from field 3, state
		if len(f) < 13 {
			return 0, fmt.Errorf("bench: /proc/%d/stat: unexpected format", p)
		}
		ut, err1 := strconv.ParseUint(f[11], 10, 64)
		st, err2 := strconv.ParseUint(f[12], 10, 64)
		if err1 != nil || err2 != nil {
			return 0, fmt.Errorf("bench: /proc/%d/stat: unexpected format", p)
		}
		total += time.Duration(ut+st) * time.Second / clockTicks
	}
	return total, nil
}

// cpuMeter measures the CPU time the server processes use over a phase.
// It is best effort: without a pid (a server in a container, say) ok stays
// false and the CPU rows are left out.
type cpuMeter struct {
	pids  []int
	start time.Duration
	wall  time.Time
	ok    bool
}

func newCPUMeter(pid int, targets []string) *cpuMeter {
	pids, _ := serverPIDs(pid, targets)
	return &cpuMeter{pids: pids}
}

func (m *cpuMeter) begin() {
	var err error
	m.start, err = cpuTime(m.pids)
	m.ok = err == nil && len(m.pids) > 0
	m.wall = time.Now()
}

// end returns the CPU time and wall time since begin.
func (m *cpuMeter) end() (cpu, wall time.Duration, ok bool) {
	t, err := cpuTime(m.pids)
	if !m.ok || err != nil {
		return 0, 0, false
	}
	return t - m.start, time.Since(m.wall), true
}

// processCPU is this process's user plus system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// tcpOutSegs reads the host's TCP OutSegs counter from /proc/net/snmp.
// Load targets are loopback only, so it counts the segments of both ends.
func tcpOutSegs() (uint64, bool) {
	f, err := os.Open("/proc/net/snmp")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	n, err := parseOutSegs(f)
	return n, err == nil
}

// parseOutSegs finds OutSegs in the "Tcp:" header and value lines of
// /proc/net/snmp.
func parseOutSegs(r io.Reader) (uint64, error) {
	sc := bufio.NewScanner(r)
	var header []string
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "Tcp:" {
			continue
		}
		if header == nil {
			header = f
			continue
		}
		for i, name := range header {
			if name == "OutSegs" && i < len(f) {
				return strconv.ParseUint(f[i], 10, 64)
			}
		}
		break
	}
	return 0, fmt.Errorf("bench: no Tcp OutSegs in /proc/net/snmp")
}
