//go:build !race

package zps

import (
	"testing"
	"time"
)

// The envelope is encoded on every publish and, by the gateway, once per
// delivered event: appending to a buffer with room allocates nothing.
func TestAppendJSONAllocs(t *testing.T) {
	ev := sampleEvent()
	eph := EphemeralEvent{ID: "e", Type: "typing", Room: "chat:1", EmittedAt: time.Now(), Payload: ev.Payload}
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() { buf = ev.AppendJSON(buf[:0]) }); n != 0 {
		t.Fatalf("Event.AppendJSON allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { buf = eph.AppendJSON(buf[:0]) }); n != 0 {
		t.Fatalf("EphemeralEvent.AppendJSON allocates %v times", n)
	}
}
