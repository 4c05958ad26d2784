package perf

import (
	_ "unsafe" // for go:linkname
)

// procPin and procUnpin expose the current P's index. The runtime keeps
// these linkname targets stable on purpose ("Do not remove or change the
// type signature", go.dev/issue/67401) because bytedance/gopkg, already in
// our dependency graph via sonic, relies on them.
//
//go:linkname procPin runtime.procPin
func procPin() int

//go:linkname procUnpin runtime.procUnpin
func procUnpin()

// currentP returns the index of the P running the caller, as a shard hint.
// The goroutine may migrate right after; callers must still lock the shard,
// so a stale hint costs only a possible contended lock, never correctness.
// Pinning is released immediately: blocking on a mutex while pinned would
// crash the scheduler.
func currentP() int {
	p := procPin()
	procUnpin()
	return p
}
