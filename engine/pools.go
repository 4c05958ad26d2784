package engine

import "github.com/valyala/bytebufferpool"

// fragPool holds reassembly buffers for fragmented messages; only
// connections in the middle of a fragmented message own one.
var fragPool bytebufferpool.Pool

func acquireBuf() *bytebufferpool.ByteBuffer { return fragPool.Get() }

func releaseBuf(b *bytebufferpool.ByteBuffer) {
	if cap(b.B) > 4<<20 {
		return // let a rare huge message's buffer go to the GC
	}
	fragPool.Put(b)
}
