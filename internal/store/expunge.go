package store

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/casetrail/casetrail/db"
)

// ExpungeTarget is an event about to be expunged: what its leaf commits to
// and its leaf hash.
type ExpungeTarget struct {
	Leaf     LeafSource
	LeafHash []byte
}

// ExpungeResult is what an expunge erased of one event.
type ExpungeResult struct {
	EventID int64
	// Blobs is how many of its attachments were removed: those no other
	// event refers to.
	Blobs int
}

// Expunge erases the content of the given events in one transaction: the
// body and its unsalted hash, the normalised document, the summary, actor,
// changes and reply, and the attachments no other event refers to. Their
// ids, times, type, source and credential stay, and so do their leaves:
// the record of the expunge keeps the body hash and the detail hash each
// leaf commits to. check is called with each event, locked, before anything
// is erased; it returns the detail hash its leaf commits to (nil for a
// leaf without one), or an error that refuses the whole expunge.
//
// It refuses (ErrRefused) an event that does not exist, is not yet in the
// log, or was expunged already. The store must be opened with
// Options.Owner: the application's role may not erase.
func (s *Store) Expunge(ctx context.Context, ids []int64, reason string,
	check func(ExpungeTarget) ([]byte, error)) ([]ExpungeResult, error) {
	if reason == "" {
		return nil, fmt.Errorf("%w: an expunge needs a reason", ErrRefused)
	}
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	var results []ExpungeResult
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		rows, err := q.ExpungeTargets(ctx, ids)
		if err != nil {
			return err
		}
		found := make(map[int64]bool, len(rows))
		details := make(map[int64][]byte, len(rows))
		for _, r := range rows {
			found[r.ID] = true
			switch {
			case r.Expunged:
				return fmt.Errorf("%w: event %d was expunged already", ErrRefused, r.ID)
			case r.LeafHash == nil:
				return fmt.Errorf("%w: event %d is not yet in the log; expunge it once the sequencer has logged it (within seconds of its receipt)", ErrRefused, r.ID)
			}
			detail, err := check(ExpungeTarget{LeafHash: r.LeafHash, Leaf: LeafSource{EventID: r.ID,
				Source: r.Source, Kind: r.Kind, Type: r.Type, OccurredAt: r.OccurredAt, ReceivedAt: r.ReceivedAt,
				CaseID: r.CaseID, Phone: r.Phone, CustomerID: r.CustomerID, ConversationID: r.ConversationID,
				AgentID: r.AgentID, WorkItemID: r.WorkItemID, Queue: r.Queue, TimeInQueueMs: r.TimeInQueueMs,
				IsOutbound: r.IsOutbound, Credential: r.Credential, Summary: r.Summary, Actor: r.Actor,
				Changes: r.Changes, Reply: r.Reply, Salt: r.BodySalt, BodyHash: r.BodyHash}})
			if err != nil {
				return fmt.Errorf("%w: event %d: %v", ErrRefused, r.ID, err)
			}
			details[r.ID] = detail
		}
		for _, id := range ids {
			if !found[id] {
				return fmt.Errorf("%w: no event %d", ErrRefused, id)
			}
		}

		removed, err := unreferencedBlobs(ctx, q, ids)
		if err != nil {
			return err
		}
		var all [][]byte
		for _, r := range rows {
			blobs := removed[r.ID]
			if blobs == nil {
				blobs = [][]byte{}
			}
			all = append(all, blobs...)
			if _, err := q.ExpungeRecord(ctx, db.ExpungeRecordParams{ID: r.ID, Reason: Text(reason),
				DetailHash: details[r.ID], Blobs: blobs}); err != nil {
				return err
			}
			if _, err := q.ExpungeErase(ctx, r.ID); err != nil {
				return err
			}
			if _, err := q.ExpungeEraseKey(ctx, db.ExpungeEraseKeyParams{Source: r.Source, Key: r.IdempotencyKey, ID: r.ID}); err != nil {
				return err
			}
			results = append(results, ExpungeResult{EventID: r.ID, Blobs: len(blobs)})
		}
		if len(all) > 0 {
			if _, err := q.ExpungeDeleteBlobs(ctx, all); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

// unreferencedBlobs maps each of the given events to the attachments it
// refers to that no other event does. The first pass reads every event
// without holding anything up; then inserts into blobs are held off until
// the transaction ends, and the events inserted since the first pass's
// snapshot are read again. An attachment shared by two events is removed
// only when both are expunged together. Two events that refer to the same
// attachment share one row (blobs are content-addressed), so sharing is
// decided by the reference, not by the row.
func unreferencedBlobs(ctx context.Context, q *db.Queries, ids []int64) (map[int64][][]byte, error) {
	cands, err := q.ExpungeBlobCandidates(ctx, ids)
	if err != nil || len(cands) == 0 {
		return nil, err
	}
	var hashes [][]byte
	for _, c := range cands {
		if !slices.ContainsFunc(hashes, func(h []byte) bool { return bytes.Equal(h, c.Sha256) }) {
			hashes = append(hashes, c.Sha256)
		}
	}
	drop := func(referenced [][]byte) {
		hashes = slices.DeleteFunc(hashes, func(h []byte) bool {
			return slices.ContainsFunc(referenced, func(r []byte) bool { return bytes.Equal(h, r) })
		})
	}
	xmin, err := q.ExpungeSnapshotXmin(ctx)
	if err != nil {
		return nil, err
	}
	referenced, err := q.ExpungeBlobsReferenced(ctx, db.ExpungeBlobsReferencedParams{Blobs: hashes, MinXid: 0, Ids: ids})
	if err != nil {
		return nil, err
	}
	drop(referenced)
	if len(hashes) > 0 {
		if err := q.ExpungeLockBlobs(ctx); err != nil {
			return nil, err
		}
		referenced, err = q.ExpungeBlobsReferenced(ctx, db.ExpungeBlobsReferencedParams{Blobs: hashes, MinXid: xmin, Ids: ids})
		if err != nil {
			return nil, err
		}
		drop(referenced)
	}
	out := map[int64][][]byte{}
	for _, c := range cands {
		if slices.ContainsFunc(hashes, func(h []byte) bool { return bytes.Equal(h, c.Sha256) }) {
			out[c.EventID] = append(out[c.EventID], c.Sha256)
		}
	}
	return out, nil
}
