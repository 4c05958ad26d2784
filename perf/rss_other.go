//go:build !linux

package perf

// readRSS reports no value off Linux; RegisterRuntime then skips
// process_resident_memory_bytes rather than exporting a fake zero.
func readRSS() (uint64, bool) { return 0, false }
