package bench

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/meshfast/meshfast/internal/testutil"
)

func TestListenQueue(t *testing.T) {
	const table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: 0100007F:2454 00000000:0000 0A 00000000:00000007 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n" +
		"   1: 0200007F:2454 00000000:0000 0A 00000000:00000010 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0\n" +
		"   2: 0100007F:1F90 00000000:0000 0A 00000000:00000005 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0\n" +
		"   3: 0100007F:2454 0200007F:9C40 01 00000000:00000003 00:00000000 00000000     0        0 4 1 0 100 0 0 10 0\n" +
		// Past the listeners the scan stops, even at a LISTEN line.
		"   4: 0300007F:2454 00000000:0000 0A 00000000:00000100 00:00000000 00000000     0        0 5 1 0 100 0 0 10 0\n"
	if n, found := listenQueue(strings.NewReader(table), 0x2454); n != 7+16 || !found {
		t.Fatalf("listenQueue = %d, %v; want 23, true (two listeners on the port)", n, found)
	}
	if n, found := listenQueue(strings.NewReader(table), 0x1234); n != 0 || found {
		t.Fatalf("listenQueue on an unused port = %d, %v", n, found)
	}
}

// The kernel completes loopback connects into a listener's accept queue
// whether the server accepts or not; acceptQueue reads that queue, and
// acceptsSettled waits for the server to take it.
func TestAcceptQueue(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	port := ln.Addr().(*net.TCPAddr).Port
	if n, ok := acceptQueue(port); n != 0 || !ok {
		t.Fatalf("acceptQueue before any connect = %d, %v", n, ok)
	}
	if at, q := acceptsSettled([]string{addr}, time.Second); at != 0 || q != 0 {
		t.Fatalf("acceptsSettled with nothing queued = %d, %d; want 0, 0", at, q)
	}
	d := net.Dialer{KeepAlive: -1}
	for range 5 {
		c, err := d.Dial("tcp4", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	testutil.Eventually(t, 2*time.Second, func() error {
		if n, _ := acceptQueue(port); n != 5 {
			return fmt.Errorf("accept queue %d, want 5 connected and not accepted", n)
		}
		return nil
	})
	const delay = 100 * time.Millisecond
	start := time.Now()
	go func() {
		time.Sleep(delay) // the server is slow to accept
		for range 5 {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	at, q := acceptsSettled([]string{addr}, 5*time.Second)
	if q != 5 || at < start.Add(delay).UnixNano() {
		t.Fatalf("acceptsSettled = %v after start, %d queued; want 5 queued, settled no sooner than %v",
			time.Duration(at-start.UnixNano()), q, delay)
	}
	if n, _ := acceptQueue(port); n != 0 {
		t.Fatalf("accept queue %d after settling", n)
	}
}

func TestSpanUntil(t *testing.T) {
	evs := []event{{Start: 100, End: 400}, {Start: 50, End: 300}}
	if got := spanUntil(evs, 0); got != 350 {
		t.Fatalf("span = %d, want 350", got)
	}
	if got := spanUntil(evs, 1000); got != 950 {
		t.Fatalf("span until 1000 = %d, want 950", got)
	}
	if got := spanUntil(evs, 200); got != 350 {
		t.Fatalf("span until before the last end = %d, want 350", got)
	}
}
