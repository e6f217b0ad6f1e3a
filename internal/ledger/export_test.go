package ledger

// WriteLeavesOfVersion makes s write leaves of an earlier version, as the
// builds before it did, to test that stores they wrote still verify.
func WriteLeavesOfVersion(s *Sequencer, version int) { s.version = version }
