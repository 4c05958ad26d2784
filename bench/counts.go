package bench

import (
	"sync/atomic"
	"time"

	"github.com/meshfast/meshfast/perf"
)

// counter indexes the counts a worker keeps.
type counter int

const (
	cDials           counter = iota // connect(2) calls for WebSocket connections
	cDialErrors                     // connect failures
	cUpgraded                       // 101 responses
	cHandshakeErrors                // refused or broken handshakes, and timeouts
	cReady                          // connections past handshake (and subscribe)
	cSubsReady                      // of those, subscribers
	cSubscribeFailed                // subscribe replies without success
	cClosed                         // ready connections the server or network closed
	cSlowCloses                     // of those, closes with 1013 (slow consumer)
	cTCP                            // plain TCP probe connects
	cTCPErrors                      // failed probe connects
	cRequests                       // echo or publish requests sent
	cReplies                        // replies matched to a request
	cDeliveries                     // subscription messages received
	cUnique                         // distinct sequence numbers received
	cDups                           // duplicates
	cStale                          // arrived too late for the reorder window
	cSubReads                       // read events on subscriber connections
	cSubFrames                      // frames parsed on subscriber connections
	cBytesIn                        // bytes read on all connections
	cLiveness                       // WebSocket and Mesh pings and latency probes answered
	cSSEReady                       // of the ready connections, SSE streams
	cSSEUnique                      // of the unique deliveries, those to SSE streams
	numCounters
)

var counterNames = [numCounters]string{
	"dials", "dial_errors", "upgraded", "handshake_errors", "ready", "subscribers_ready", "subscribe_failed",
	"closed", "slow_consumer_closes", "tcp_connects", "tcp_errors", "requests", "replies",
	"deliveries", "unique", "duplicates", "stale", "sub_reads", "sub_frames", "bytes_in", "liveness_answers",
	"sse_ready", "sse_unique",
}

// counts is a snapshot of a worker's counters.
type counts [numCounters]uint64

func (c *counts) add(o counts) {
	for i := range c {
		c[i] += o[i]
	}
}

// named returns the non-zero counts by name, for reports.
func (c counts) named() map[string]uint64 {
	m := make(map[string]uint64, numCounters)
	for i, v := range c {
		if v != 0 {
			m[counterNames[i]] = v
		}
	}
	return m
}

// liveCounts are a worker's counters, bumped by event loops and dialers.
type liveCounts [numCounters]atomic.Uint64

func (l *liveCounts) inc(c counter)           { l[c].Add(1) }
func (l *liveCounts) add(c counter, n uint64) { l[c].Add(n) }
func (l *liveCounts) get(c counter) uint64    { return l[c].Load() }

func (l *liveCounts) snapshot() counts {
	var s counts
	for i := range l {
		s[i] = l[i].Load()
	}
	return s
}

// Histograms a worker records, by index into worker.hist and their report names.
const (
	hHandshake = iota // dial start to 101
	hTCP              // plain TCP connect
	hRTT              // request to reply (echo, publish)
	hDelivery         // publish timestamp to receipt
	numHists
)

var histNames = [numHists]string{"handshake", "tcp_connect", "rtt", "delivery"}

// histOptions is the geometry of every latency histogram here: 1µs..60s, 3
// digits, so worker histograms merge losslessly.
var histOptions = perf.Options{Lowest: time.Microsecond, Highest: time.Minute, SignificantDigits: 3}

// mergeHists folds encoded worker histograms into acc (by name), creating
// accumulators as needed. Worker results carry histograms in perf's JSON
// form, whose HDR encoding is lossless.
func mergeHists(acc map[string]*perf.Histogram, in map[string]*perf.Histogram) error {
	for name, h := range in {
		if h == nil {
			continue
		}
		a := acc[name]
		if a == nil {
			var err error
			if a, err = perf.NewHistogram(histOptions); err != nil {
				return err
			}
			acc[name] = a
		}
		a.Merge(h)
	}
	return nil
}
