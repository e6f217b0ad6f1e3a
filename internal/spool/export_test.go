package spool

// SetLimit lowers the largest record s takes, so that a test need not
// build one of MaxRecord bytes.
func (s *Spool) SetLimit(n int) { s.limit = n }

// SetDrainBatch lowers how many events and record bytes a drain hands to
// commit at a time.
func (s *Spool) SetDrainBatch(events int, bytes int64) { s.drainEvents, s.drainBytes = events, bytes }
