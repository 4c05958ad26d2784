package engine

// Echo is a Handler that writes every message back to its sender: the
// smallest example of a custom protocol, and the server the engine's and
// bench's tests load. The meshfast binary does not serve it: it speaks
// Mesh at "/".
type Echo struct{}

// OnOpen does nothing.
func (Echo) OnOpen(*Conn, *Request) {}

// OnMessage echoes the message with the same opcode.
func (Echo) OnMessage(c *Conn, op OpCode, payload []byte) {
	if op == OpBinary {
		_ = c.WriteBinary(payload)
		return
	}
	_ = c.WriteText(payload)
}

// OnClose does nothing.
func (Echo) OnClose(*Conn, CloseInfo) {}
