// Package memory is the embedded streams store: events, cursors and
// snapshots in the process's memory, for a single node (the default when
// no store is configured). It gives every guarantee of the store package
// (see its documentation); durability is the process's lifetime.
//
//	s := memory.New(memory.Options{})
//	defer s.Close()
//	res, err := s.Append(ctx, []store.AppendRequest{{Event: ev, TTL: time.Hour}})
//
// # Concurrency
//
// Safe from any goroutine. Each room has its own mutex, held for the
// duration of one request and never across a call out; rooms are found in
// a map sharded by name. Appends to different rooms never contend.
package memory
