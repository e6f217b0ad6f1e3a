package store

import (
	"hash/fnv"
)

// The event types the abandonment report's projection follows.
const (
	factsKind    = "service-hooks"
	typeAbandon  = "abandoned-conversation"
	typeOutbound = "outbound-call"
)

// abandonPositions finds, among the events at the given positions, what
// casetrail_ingest needs to keep abandon_facts current: the 1-based
// positions of the abandons and of the outbound calls with a number, and at
// those positions the lock key of the number. In the database each new
// abandon gets its first callback from the calls already stored, and each
// new outbound call becomes the first callback of the earlier abandons of
// its number that had none or a later one (casetrail_project_abandons).
// Transactions storing events of the same number are serialised by an
// advisory lock on it, so neither side can miss the other.
func abandonPositions(events []NewEvent, order []int) (locks, abandons, calls []int32) {
	locks = make([]int32, len(order))
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
			locks[j] = lockKey(e.Phone)
		}
	}
	return locks, abandons, calls
}

func lockKey(phone string) int32 {
	h := fnv.New32a()
	h.Write([]byte(phone)) //nolint:errcheck // hashes never fail
	return int32(h.Sum32())
}
