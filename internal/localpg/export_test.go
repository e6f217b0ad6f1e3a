package localpg

// Abandon lets go of s's hold on the cluster without stopping it, as a
// process that is killed does.
func (s *Server) Abandon() { s.closeUsers() }
