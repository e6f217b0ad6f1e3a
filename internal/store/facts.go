package store

import (
	"hash/fnv"
	"slices"
)

// The event types the abandonment report's projection follows.
const (
	factsKind    = "service-hooks"
	typeAbandon  = "abandoned-conversation"
	typeOutbound = "outbound-call"
)

// abandonPositions finds, among the events at the given positions, what
// casetrail_ingest needs to keep abandon_facts current: the 1-based
// positions of the abandons and of the outbound calls with a number, and
// the sorted lock keys of their numbers. In the database each new abandon
// gets its first callback from the calls already stored, and each new
// outbound call becomes the first callback of the earlier abandons of its
// number that had none or a later one (casetrail_project_abandons).
// Transactions touching the same number are serialised by an advisory lock
// on it, so neither side can miss the other.
func abandonPositions(events []NewEvent, order []int) (lockKeys, abandons, calls []int32) {
	for j, i := range order {
		e := &events[i]
		if e.Kind != factsKind {
			continue
		}
		switch {
		case e.Type == typeAbandon:
			abandons = append(abandons, int32(j+1))
		case e.Type == typeOutbound && e.Phone != "":
			calls = append(calls, int32(j+1))
		default:
			continue
		}
		if e.Phone != "" {
			lockKeys = append(lockKeys, lockKey(e.Phone))
		}
	}
	slices.Sort(lockKeys)
	return slices.Compact(lockKeys), abandons, calls
}

func lockKey(phone string) int32 {
	h := fnv.New32a()
	h.Write([]byte(phone)) //nolint:errcheck // hashes never fail
	return int32(h.Sum32())
}
