package store

import (
	"context"
	"hash/fnv"
	"slices"

	"github.com/casetrail/casetrail/db"
)

// The event types the abandonment report's projection follows.
const (
	factsKind    = "service-hooks"
	typeAbandon  = "abandoned-conversation"
	typeOutbound = "outbound-call"
)

// projectAbandons keeps abandon_facts current with the events a batch has
// just stored (stored[i] is the index of an event in events, ids[i] its id),
// inside the batch's transaction: each new abandon gets its first callback
// from the calls already stored, and each new outbound call becomes the
// first callback of the earlier abandons of its number that had none or a
// later one. Transactions touching the same number are serialised by an
// advisory lock on it, so neither side can miss the other. It is one round
// trip: casetrail_project_abandons does the work in the database.
func projectAbandons(ctx context.Context, q *db.Queries, events []NewEvent, stored []int, ids []int64) error {
	var p db.AbandonFactsApplyParams
	type abandonKey struct {
		caller, queue string
		at            int64
	}
	seen := map[abandonKey]int{} // position in add
	for j, i := range stored {
		e := &events[i]
		if e.Kind != factsKind || (e.Type != typeAbandon && e.Type != typeOutbound) {
			continue
		}
		if e.Phone != "" {
			p.LockKeys = append(p.LockKeys, lockKey(e.Phone))
		}
		if e.Type == typeOutbound {
			if e.Phone != "" {
				p.CallID = append(p.CallID, ids[j])
				p.CallPhone = append(p.CallPhone, e.Phone)
				p.CallAt = append(p.CallAt, e.OccurredAt)
				p.CallAgent = append(p.CallAgent, e.AgentID)
			}
			continue
		}
		// A repeat of an abandon within the batch: the smaller id represents
		// it, as against the store. Times compare at the database's
		// microsecond precision.
		// An abandon without a number is its own caller and has no repeats.
		tiq := int64(-1)
		if e.TimeInQueueMs != nil {
			tiq = *e.TimeInQueueMs
		}
		if e.Phone != "" {
			k := abandonKey{caller: e.Phone, queue: e.Queue, at: e.OccurredAt.UnixMicro()}
			if at, dup := seen[k]; dup {
				if ids[j] < p.AbandonID[at] {
					p.AbandonID[at], p.ReceivedAt[at], p.TimeInQueueMs[at] = ids[j], e.ReceivedAt, tiq
				}
				continue
			}
			seen[k] = len(p.AbandonID)
		}
		p.AbandonID = append(p.AbandonID, ids[j])
		p.AbandonedAt = append(p.AbandonedAt, e.OccurredAt)
		p.ReceivedAt = append(p.ReceivedAt, e.ReceivedAt)
		p.Queue = append(p.Queue, e.Queue)
		p.AbandonPhone = append(p.AbandonPhone, e.Phone)
		p.TimeInQueueMs = append(p.TimeInQueueMs, tiq)
	}
	if len(p.AbandonID) == 0 && len(p.CallID) == 0 {
		return nil
	}
	slices.Sort(p.LockKeys)
	p.LockKeys = slices.Compact(p.LockKeys)
	return q.AbandonFactsApply(ctx, p)
}

func lockKey(phone string) int32 {
	h := fnv.New32a()
	h.Write([]byte(phone)) //nolint:errcheck // hashes never fail
	return int32(h.Sum32())
}
