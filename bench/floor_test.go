package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/meshfast/meshfast/internal/testutil"
)

// TestFloorServerUpgrade sends a request head in two writes (the floor's
// partial-head path), checks the accept key, then closes and checks the
// floor let the socket go.
func TestFloorServerUpgrade(t *testing.T) {
	s, err := startFloorServer(2)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	c, err := net.Dial("tcp", s.addr())
	if err != nil {
		t.Fatal(err)
	}
	const key = "dGhlIHNhbXBsZSBub25jZQ=="
	req := string(upgradeRequest(s.addr(), "/", key))
	half := strings.Index(req, "Sec-WebSocket-Key")
	if _, err := c.Write([]byte(req[:half])); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // let the floor read the first half alone
	if _, err := c.Write([]byte(req[half:])); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("response %d, accept %q", resp.StatusCode, resp.Header.Get("Sec-WebSocket-Accept"))
	}
	waitHolding(t, s, 1) // the floor holds after it writes: poll
	c.Close()
	waitHolding(t, s, 0)
}

func waitHolding(t *testing.T, s *floorServer, want int) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, func() error {
		if n := s.count(); n != want {
			return fmt.Errorf("floor holds %d sockets, want %d", n, want)
		}
		return nil
	})
}

// TestConnectFloor runs the connect scenario with the floor beside the
// server under test and checks both runs and their ratio row.
func TestConnectFloor(t *testing.T) {
	e := startEngine(t)
	o := quick(ScenarioConnect, e.Addr().String())
	o.Conns = 150
	o.Connect.Floor = true
	rep := run(t, o)
	if len(rep.Runs) != 2 || rep.Runs[1].Label != "floor" {
		t.Fatalf("runs %d", len(rep.Runs))
	}
	for _, r := range rep.Runs {
		if n := metric(t, r, "connections"); n != 150 {
			t.Fatalf("%s: connections %v", r.Label, n)
		}
		if r.Latency["tcp_connect"].Count() != 150 {
			t.Fatalf("%s: %d probe connects recorded, want 150 (warm-up must not count)", r.Label, r.Latency["tcp_connect"].Count())
		}
		if metric(t, r, "handshakes/s of tcp connects/s") <= 0 {
			t.Fatalf("%s: no ratio", r.Label)
		}
	}
	if rep.ratio("handshakes/s", "floor") == "-" {
		t.Fatal("no meshfast/floor ratio")
	}
}

// FuzzRequestKey: any head yields a key that is a trimmed slice of it, or nil.
func FuzzRequestKey(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\nsec-websocket-key:  abc \r\n\r\n"))
	f.Add([]byte("Sec-WebSocket-Key\r\n:\r\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, head []byte) {
		k := requestKey(head)
		if k == nil {
			return
		}
		if !bytes.Contains(head, k) || len(bytes.TrimSpace(k)) != len(k) {
			t.Fatalf("key %q from %q", k, head)
		}
	})
}
