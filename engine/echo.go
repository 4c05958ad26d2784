package engine

// Echo is a Handler that writes every message back to its sender: the
// diagnostic protocol `meshfast` serves until an application protocol is
// configured, and the smallest example of a custom protocol.
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
