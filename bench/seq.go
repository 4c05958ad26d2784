package bench

// seqWindowWords sizes a subscriber's reorder window with one publisher: 64
// sequence numbers per word, 2,048 in all. Publishers interleave their
// numbers (publisher p's n-th message is n·P+p), so one publisher running
// k messages behind the fastest arrives k·P numbers late: the window grows
// with P (seqWindowFor), up to seqMaxWindowWords (8 KiB per subscriber).
const (
	seqWindowWords    = 32
	seqMaxWindowWords = 1024
)

// seqWindowFor is the window, in words, for pubs publishers: each may fall
// 512 messages behind the fastest before its messages count as stale (up to
// 128 publishers; the newest word is partly filled, hence the +1).
func seqWindowFor(pubs uint64) uint64 {
	return min(max(seqWindowWords, pubs*8+1), seqMaxWindowWords)
}

// seqTracker counts the distinct sequence numbers one subscriber received,
// with duplicates, in a sliding bitmap. Loss is then expected − unique
// (expected = messages published), exact as long as no message arrives
// more than the window behind the newest one; such a straggler is counted
// stale (and so as lost). It is owned by the subscriber's event loop; the
// bitmap is allocated on the first message, so idle connections pay nothing.
type seqTracker struct {
	words  uint64   // window size in words; zero means seqWindowWords
	lo     uint64   // lowest word index (seq/64) in the window
	bits   []uint64 // ring of words, index (seq/64) % words
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
		if t.words == 0 {
			t.words = seqWindowWords
		}
		t.bits = make([]uint64, t.words)
	}
	n := t.words
	w := seq >> 6
	if w < t.lo {
		t.stale++
		return seqStale
	}
	if w >= t.lo+n {
		newLo := w - n + 1
		end := min(newLo, t.lo+n)
		for i := t.lo; i < end; i++ {
			t.bits[i%n] = 0
		}
		t.lo = newLo
	}
	m := uint64(1) << (seq & 63)
	p := &t.bits[w%n]
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
