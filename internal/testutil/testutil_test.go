package testutil

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// The helper starts a private redis-server that answers, and stops it.
func TestStartRedis(t *testing.T) {
	r := StartRedis(t)
	c, err := net.DialTimeout("tcp", r.Addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprint(c, "SET k v\r\nGET k\r\n")
	br := bufio.NewReader(c)
	ok, _ := br.ReadString('\n')
	_, _ = br.ReadString('\n')
	v, _ := br.ReadString('\n')
	c.Close()
	if !strings.HasPrefix(ok, "+OK") || strings.TrimSpace(v) != "v" {
		t.Fatalf("redis answered %q %q", ok, v)
	}
	r.Stop()
	if r.ping() {
		t.Fatal("redis still answering after Stop")
	}
}

func TestEventually(t *testing.T) {
	n := 0
	Eventually(t, time.Second, func() error {
		n++
		if n < 3 {
			return fmt.Errorf("n=%d", n)
		}
		return nil
	})
}
