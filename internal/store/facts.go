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
	// factsLockClass is the first key of the advisory locks taken on numbers.
	factsLockClass = 0x43544146 // "CTAF"
)

// projectAbandons keeps abandon_facts current with the events a batch has
// just stored (stored[i] is the index of an event in events, ids[i] its id),
// inside the batch's transaction: each new abandon gets its first callback
// from the calls already stored, and each new outbound call becomes the
// first callback of the earlier abandons of its number that had none or a
// later one. Transactions touching the same number are serialised by an
// advisory lock on it, so neither side can miss the other.
func projectAbandons(ctx context.Context, q *db.Queries, events []NewEvent, stored []int, ids []int64) error {
	var add db.AbandonFactsAddParams
	var calls db.AbandonFactsCallbackParams
	var keys []int32
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
			keys = append(keys, lockKey(e.Phone))
		}
		if e.Type == typeOutbound {
			if e.Phone != "" {
				calls.ID = append(calls.ID, ids[j])
				calls.Phone = append(calls.Phone, e.Phone)
				calls.At = append(calls.At, e.OccurredAt)
				calls.Agent = append(calls.Agent, e.AgentID)
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
			if p, dup := seen[k]; dup {
				if ids[j] < add.ID[p] {
					add.ID[p], add.ReceivedAt[p], add.TimeInQueueMs[p] = ids[j], e.ReceivedAt, tiq
				}
				continue
			}
			seen[k] = len(add.ID)
		}
		add.ID = append(add.ID, ids[j])
		add.AbandonedAt = append(add.AbandonedAt, e.OccurredAt)
		add.ReceivedAt = append(add.ReceivedAt, e.ReceivedAt)
		add.Queue = append(add.Queue, e.Queue)
		add.Phone = append(add.Phone, e.Phone)
		add.TimeInQueueMs = append(add.TimeInQueueMs, tiq)
	}
	if len(add.ID) == 0 && len(calls.ID) == 0 {
		return nil
	}
	if len(keys) > 0 {
		slices.Sort(keys)
		keys = slices.Compact(keys)
		if err := q.AbandonFactsLock(ctx, db.AbandonFactsLockParams{Class: factsLockClass, Keys: keys}); err != nil {
			return err
		}
	}
	if len(add.ID) > 0 {
		if err := q.AbandonFactsAdd(ctx, add); err != nil {
			return err
		}
	}
	if len(calls.ID) > 0 {
		return q.AbandonFactsCallback(ctx, calls)
	}
	return nil
}

func lockKey(phone string) int32 {
	h := fnv.New32a()
	h.Write([]byte(phone)) //nolint:errcheck // hashes never fail
	return int32(h.Sum32())
}
