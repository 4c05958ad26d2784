package mesh

// onRecordUpdate delivers one record update from the coordinator to this
// node's subscribers. Runs on the coordinator's goroutine; must not block.
func (s *Server) onRecordUpdate(recordID string, payload []byte) {}

// registerRecordBuiltins exposes the record commands.
func (s *Server) registerRecordBuiltins() {}
