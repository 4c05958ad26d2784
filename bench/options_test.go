package bench

import (
	"errors"
	"net"
	"os"
	"strings"
	"testing"
)

func TestValidateTargets(t *testing.T) {
	for _, addr := range []string{"10.0.0.1:80", "8.8.8.8:443", "[::1]:80", "example.com:80", "0.0.0.0:80", "192.168.1.2:9000"} {
		err := Options{Scenario: ScenarioConnect, Targets: []string{addr}}.Validate()
		if !errors.Is(err, ErrNotLoopback) || !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%s: err = %v, want ErrNotLoopback", addr, err)
		}
		err = Options{Scenario: ScenarioRPC, Targets: []string{"127.0.0.1:1"}, BaselineTargets: []string{addr}}.Validate()
		if !errors.Is(err, ErrNotLoopback) {
			t.Errorf("baseline %s: err = %v, want ErrNotLoopback", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:1", "127.9.8.7:9300", "localhost:2"} { // validation only: nothing binds
		if err := (Options{Targets: []string{addr}}).Validate(); err != nil {
			t.Errorf("%s: %v", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1", "127.0.0.1:"} {
		if err := (Options{Targets: []string{addr}}).Validate(); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%q: err = %v", addr, err)
		}
	}
}

func TestValidateSettings(t *testing.T) {
	ok := []string{"127.0.0.1:1"}
	for name, o := range map[string]Options{
		"unknown scenario":   {Scenario: "soak", Targets: ok},
		"no target":          {Scenario: ScenarioRPC},
		"per worker":         {Targets: ok, Conns: 40000, Workers: 2},
		"conns per worker":   {Targets: ok, ConnsPerWorker: 25000},
		"in process":         {Targets: ok, Conns: 30000, InProcess: true},
		"probe":              {Targets: ok, Connect: ConnectOptions{TCPProbe: "udp"}},
		"connect rounds":     {Targets: ok, Connect: ConnectOptions{Rounds: -1}},
		"depth":              {Scenario: ScenarioRPC, Targets: ok, RPC: RPCOptions{Depth: 5000}},
		"writers":            {Scenario: ScenarioCeiling, Ceiling: CeilingOptions{Writers: 3}},
		"channel":            {Scenario: ScenarioFanout, Targets: ok, Fanout: FanoutOptions{Channel: `a"b`}},
		"samples descending": {Scenario: ScenarioIdle, Targets: ok, Conns: 100, Idle: IdleOptions{SampleAt: []int{80, 40}}},
		"samples over conns": {Scenario: ScenarioIdle, Targets: ok, Conns: 100, Idle: IdleOptions{SampleAt: []int{50, 200}}},
		"ceiling in process": {Scenario: ScenarioCeiling, Conns: 15000, InProcess: true},
	} {
		if err := o.Validate(); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%s: err = %v, want ErrInvalidOptions", name, err)
		}
	}
	if err := (Options{Scenario: ScenarioSim}).Validate(); err != nil {
		t.Errorf("sim needs no target: %v", err)
	}
}

func TestDefaults(t *testing.T) {
	o := Options{Targets: []string{"127.0.0.1:1"}, Conns: 19000}.withDefaults()
	if o.Scenario != ScenarioConnect || o.Workers != 2 || o.Path != "/" || o.Idle.SampleAt[0] != 9500 ||
		o.Connect.Rounds != DefaultConnectRounds {
		t.Fatalf("defaults: %+v", o)
	}
	// Rounds split a worker's connections: cumulative targets end at its share.
	for _, c := range []struct{ n, rounds, k, want int }{{10, 4, 0, 3}, {10, 4, 1, 6}, {10, 4, 3, 10}, {3, 4, 3, 3}, {3, 4, 0, 1}} {
		if got := upTo(c.n, c.rounds, c.k); got != c.want {
			t.Errorf("upTo(%d, %d, %d) = %d, want %d", c.n, c.rounds, c.k, got, c.want)
		}
	}
	f := Options{Scenario: ScenarioFanout, Fanout: FanoutOptions{Rate: 50}, Duration: 4e9}.withDefaults()
	if f.Fanout.Messages != 200 {
		t.Fatalf("fanout messages %d, want rate x duration", f.Fanout.Messages)
	}
	ps := Options{Scenario: ScenarioFanout, Targets: []string{"127.0.0.1:1"}, Conns: 10, Workers: 2,
		Fanout: FanoutOptions{Publishers: 3, Messages: 10}}.withDefaults().plans([]string{"x"}, roleSub)
	if len(ps[0].Pubs) != 2 || len(ps[1].Pubs) != 1 || ps[0].PubBudgets[0]+ps[1].PubBudgets[0]+ps[0].PubBudgets[1] != 10 {
		t.Fatalf("publishers split: %+v %+v", ps[0], ps[1])
	}
	if ps[0].SourceIPs[0] != "127.0.0.2" || ps[1].SourceIPs[0] != sourceIP(DefaultSourceIPs) {
		t.Fatalf("source addresses overlap: %v %v", ps[0].SourceIPs, ps[1].SourceIPs)
	}
	if sourceIP(300) != "127.0.1.46" {
		t.Fatalf("sourceIP(300) = %s", sourceIP(300))
	}
}

func TestProcfs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pid, err := findListenerPID(ln.Addr().(*net.TCPAddr).Port)
	if err != nil || pid != os.Getpid() {
		t.Fatalf("findListenerPID = %d, %v; want %d", pid, err, os.Getpid())
	}
	if rss, err := readRSS(os.Getpid()); err != nil || rss < 1<<20 {
		t.Fatalf("readRSS = %d, %v", rss, err)
	}
	table := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: 0100007F:2454 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 123456 1 0 100 0 0 10 0\n" +
		"   1: 0100007F:2454 0200007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 777 1 0 100 0 0 10 0\n"
	inodes := map[string]bool{}
	listenInodes(strings.NewReader(table), 0x2454, inodes)
	if len(inodes) != 1 || !inodes["123456"] {
		t.Fatalf("inodes %v", inodes)
	}
	prom := "# HELP x\ngo_memory_classes_heap_objects_bytes_total 9\ngo_memory_classes_heap_objects_bytes 1.5e+06\n"
	if v, ok := promValue([]byte(prom), heapMetrics); !ok || v != 1.5e6 {
		t.Fatalf("promValue = %v %v", v, ok)
	}
	if n, ok := healthConns([]byte(`{"status":"ok","connections":12}`)); !ok || n != 12 {
		t.Fatalf("healthConns = %d %v", n, ok)
	}
}
