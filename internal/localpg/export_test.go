package localpg

// Abandon lets go of s's hold on the cluster without stopping it, as a
// process that is killed does.
func (s *Server) Abandon() { s.closeUsers() }

// SocketDir is the directory of the server's unix socket.
func (s *Server) SocketDir() string { return s.sockDir }
