package bench

// seqWindowWords sizes a subscriber's reorder window: 64 sequence numbers
// per word, 2,048 in all.
const seqWindowWords = 32

// seqTracker counts the distinct sequence numbers one subscriber received,
// with duplicates, in a sliding bitmap. Loss is then expected − unique
// (expected = messages published), exact as long as no message arrives
// more than the window behind the newest one; such a straggler is counted
// stale (and so as lost). It is owned by the subscriber's event loop; the
// bitmap is allocated on the first message, so idle connections pay nothing.
type seqTracker struct {
	lo     uint64                  // lowest word index (seq/64) in the window
	bits   *[seqWindowWords]uint64 // ring of words, index (seq/64) % seqWindowWords
	unique uint64
	dups   uint64
	stale  uint64
}

// seqResult is what add made of a sequence number.
type seqResult uint8

const (
	seqNew seqResult = iota
	seqDup
	seqStale
)

// add records seq.
func (t *seqTracker) add(seq uint64) seqResult {
	if t.bits == nil {
		t.bits = new([seqWindowWords]uint64)
	}
	w := seq >> 6
	if w < t.lo {
		t.stale++
		return seqStale
	}
	if w >= t.lo+seqWindowWords {
		newLo := w - seqWindowWords + 1
		end := min(newLo, t.lo+seqWindowWords)
		for i := t.lo; i < end; i++ {
			t.bits[i%seqWindowWords] = 0
		}
		t.lo = newLo
	}
	m := uint64(1) << (seq & 63)
	p := &t.bits[w%seqWindowWords]
	if *p&m != 0 {
		t.dups++
		return seqDup
	}
	*p |= m
	t.unique++
	return seqNew
}

// lost returns how many of expected messages never arrived.
func (t *seqTracker) lost(expected uint64) uint64 {
	if t.unique >= expected {
		return 0
	}
	return expected - t.unique
}
