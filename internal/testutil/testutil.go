// Package testutil is meshfast's one shared test helper package: private
// redis-server processes (a single server, or a Redis Cluster of several)
// on free loopback ports, and polling instead of sleeping. Helpers are safe
// from any goroutine; each registers its own cleanup.
package testutil

import (
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Eventually polls cond until it returns nil, failing the test with the
// last error once total has passed.
func Eventually(t testing.TB, total time.Duration, cond func() error) {
	t.Helper()
	if err := poll(total, cond); err != nil {
		t.Fatalf("condition not met within %v: %v", total, err)
	}
}

// poll is Eventually without a test: it returns cond's last error once
// total has passed.
func poll(total time.Duration, cond func() error) error {
	deadline := time.Now().Add(total)
	step := time.Millisecond
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(step)
		step = min(step*2, 50*time.Millisecond)
	}
}

// FreePort returns a loopback port that was free a moment ago, for
// programs (like redis-server) that cannot bind port 0 and report it.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// VerifyNoLeaks runs a package's tests and fails if goroutines outlive
// them. gnet's shared worker pool, the poller of sockets the runtime is
// still closing, and rueidis' delayed work (it closes the connections a
// cluster topology refresh replaced 5 s later, and delays a lazy refresh,
// on goroutines that outlive the client) are not leaks of ours.
func VerifyNoLeaks(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).purgeStaleWorkers"),
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).ticktock"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreAnyFunction("github.com/redis/rueidis.(*clusterClient)._refresh.func2"),
		goleak.IgnoreAnyFunction("github.com/redis/rueidis.(*call).DelayDo.func1"),
	)
}

// BuildBinary builds the Go package pkg (a path as `go build` takes it,
// relative to the test's package directory or a full import path) into a
// fresh temporary folder and returns the binary's path: tests that run a
// program as a user would.
func BuildBinary(t testing.TB, pkg string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	name := filepath.Base(pkg)
	if name == "." || name == ".." || name == "/" {
		name = "prog"
	}
	bin := filepath.Join(t.TempDir(), name)
	if out, err := exec.Command(goBin, "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}
