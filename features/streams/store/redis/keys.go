package redis

// keys names a room's keys (see the package documentation). The room sits
// in braces right after the prefix, which holds none: whatever the room
// holds, the hash tag (up to the first '}' after the first '{') is the
// same for every key of the room, so they share a slot.
type keys struct {
	base string // prefix{room}
}

func roomKeys(prefix, room string) keys { return keys{base: prefix + "{" + room + "}"} }

func (k keys) seq() string      { return k.base + ":seq" }
func (k keys) events() string   { return k.base + ":events" }
func (k keys) idPrefix() string { return k.base + ":id:" }
func (k keys) cursors() string  { return k.base + ":cursors" }
func (k keys) snapshot() string { return k.base + ":snapshot" }
