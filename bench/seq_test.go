package bench

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/perf"
	"github.com/meshfast/meshfast/protocol"
)

func TestSeqTrackerGapsAndDuplicates(t *testing.T) {
	const published = 10_000
	rng := rand.New(rand.NewPCG(1, 2))
	var stream []uint64
	lost := map[uint64]bool{}
	dups := 0
	for s := range uint64(published) {
		switch r := rng.IntN(100); {
		case r < 3: // gap
			lost[s] = true
			continue
		case r < 6: // duplicate, right away or a little later
			stream = append(stream, s)
			dups++
		}
		stream = append(stream, s)
	}
	// Local reordering well inside the window.
	for i := 0; i+5 < len(stream); i += 7 {
		stream[i], stream[i+5] = stream[i+5], stream[i]
	}
	var tr seqTracker
	for _, s := range stream {
		tr.add(s)
	}
	if tr.unique != published-uint64(len(lost)) || tr.dups != uint64(dups) || tr.stale != 0 {
		t.Fatalf("unique %d dups %d stale %d, want %d %d 0", tr.unique, tr.dups, tr.stale, published-len(lost), dups)
	}
	if got := tr.lost(published); got != uint64(len(lost)) {
		t.Fatalf("lost %d, want %d", got, len(lost))
	}
}

func TestSeqTrackerWindow(t *testing.T) {
	var tr seqTracker
	tr.add(0)
	tr.add(10_000) // slides the window far past 0
	if r := tr.add(0); r != seqStale {
		t.Fatalf("far straggler: %v, want stale", r)
	}
	if r := tr.add(10_000); r != seqDup {
		t.Fatalf("repeat: %v, want dup", r)
	}
	if r := tr.add(10_000 - seqWindowWords*64 + 64); r != seqNew {
		t.Fatalf("inside window: %v, want new", r)
	}
	if tr.unique != 3 || tr.lost(10_001) != 10_001-3 {
		t.Fatalf("unique %d", tr.unique)
	}
}

// TestClientDeliveryPath feeds a subscriber the wire bytes of a stream with
// gaps and duplicates, split across reads, and checks the worker's counts.
func TestClientDeliveryPath(t *testing.T) {
	w := &worker{}
	for i := range w.hist {
		w.hist[i] = perf.MustNewTracker(histOptions)
	}
	cc := &cconn{w: w, role: roleRawSub, state: stReady}
	var wire []byte
	seqs := []uint64{0, 1, 1, 3, 2, 5, 5, 5, 6} // 4 missing, 1 and 5 repeated
	now := time.Now().UnixNano()
	for _, s := range seqs {
		msg := strconv.FormatInt(now-1000, 10) + "|" + strconv.FormatUint(s, 10) + "|xxxx"
		wire = engine.AppendFrame(wire, engine.OpText, protocol.AppendSubscriptionMessage(nil, "bench", msg))
	}
	for i := 0; i < len(wire); i += 13 {
		cc.now = now
		if err := cc.fp.parse(wire[i:min(i+13, len(wire))], cc); err != nil {
			t.Fatal(err)
		}
	}
	c := w.counts.snapshot()
	if c[cDeliveries] != 9 || c[cUnique] != 6 || c[cDups] != 3 || c[cSubFrames] != 9 {
		t.Fatalf("counts %v", c.named())
	}
	if lost := cc.seq.lost(7); lost != 1 {
		t.Fatalf("lost %d, want 1", lost)
	}
	if h := w.hist[hDelivery].Snapshot(); h.Count() != 9 || h.Max() < time.Microsecond {
		t.Fatalf("delivery histogram count %d max %v", h.Count(), h.Max())
	}
}

func TestParseHelpers(t *testing.T) {
	if id, ok := scanID([]byte(`{"id":42,"command":"echo","payload":"x"}`)); !ok || id != 42 {
		t.Fatalf("fast path: %d %v", id, ok)
	}
	if id, ok := scanID([]byte(`{"command":"echo", "id": 7}`)); !ok || id != 7 {
		t.Fatalf("codec path: %d %v", id, ok)
	}
	if _, ok := scanID([]byte(`{"command":"mesh/subscription-message"}`)); ok {
		t.Fatal("push has no id")
	}
	ts, seq, ok := parseDelivery([]byte(`{"command":"mesh/subscription-message","payload":{"channel":"c","message":"123|45|xx"}}`), messageKey)
	if !ok || ts != 123 || seq != 45 {
		t.Fatalf("parseDelivery = %d %d %v", ts, seq, ok)
	}
	if _, _, ok := parseDelivery([]byte(`{"payload":{"message":"hello"}}`), messageKey); ok {
		t.Fatal("foreign message parsed")
	}
}

// With P publishers a message from one running k messages behind the
// fastest arrives about k·P numbers late; the window is sized so that 500
// messages of lag are not counted stale.
func TestSeqTrackerWindowGrowsWithPublishers(t *testing.T) {
	for _, pubs := range []uint64{1, 4, 64, 500} {
		tr := seqTracker{words: seqWindowFor(pubs)}
		const lag = 500
		lagTol := (tr.words - 1) * 64 / pubs // the newest word may hold a single number
		if pubs <= 128 && lagTol < lag {
			t.Fatalf("%d publishers: window tolerates %d messages of lag, want ≥ %d", pubs, lagTol, lag)
		}
		// Publishers 1..pubs-1 run ahead; publisher 0 delivers everything
		// lagTol-1 messages late.
		const n = 2000
		stale := uint64(0)
		for i := uint64(0); i < n+lagTol; i++ {
			for p := uint64(1); p < pubs; p++ {
				if i < n {
					tr.add(i*pubs + p)
				}
			}
			if i >= lagTol-1 && i-(lagTol-1) < n {
				if tr.add((i-(lagTol-1))*pubs) == seqStale {
					stale++
				}
			}
		}
		if stale != 0 || tr.unique != n*pubs {
			t.Fatalf("%d publishers: %d stale, %d unique of %d", pubs, stale, tr.unique, n*pubs)
		}
	}
}
