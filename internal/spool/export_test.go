package spool

// SetLimit lowers the largest record s takes, so that a test need not
// build one of MaxRecord bytes.
func (s *Spool) SetLimit(n int) { s.limit = n }
