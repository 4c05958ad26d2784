package bench

import (
	"strings"
	"testing"
)

func TestParseOutSegs(t *testing.T) {
	const snmp = `Ip: Forwarding DefaultTTL InReceives
Ip: 2 64 28909758
Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors
Tcp: 1 200 120000 -1 500 500 0 0 4 28906000 28924310 0 0 10 0
Udp: InDatagrams NoPorts
Udp: 5 0
`
	n, err := parseOutSegs(strings.NewReader(snmp))
	if err != nil || n != 28924310 {
		t.Fatalf("OutSegs %d, %v; want 28924310", n, err)
	}
	if _, err := parseOutSegs(strings.NewReader("Ip: a\nIp: 1\n")); err == nil {
		t.Fatal("no Tcp lines: want an error")
	}
	if _, ok := tcpOutSegs(); !ok {
		t.Fatal("this host's /proc/net/snmp has no Tcp OutSegs")
	}
}
