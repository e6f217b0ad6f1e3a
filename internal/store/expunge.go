package store

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/casetrail/casetrail/db"
)

// ExpungeTarget is an event about to be expunged: what its leaf commits to
// and its leaf hash.
type ExpungeTarget struct {
	Leaf     LeafSource
	LeafHash []byte
	// BodySHA256Matches is whether the SHA-256 the row shows for its body
	// is its body's.
	BodySHA256Matches bool
}

// ExpungeRecord is what the record of one event's expunge says, and what its
// signature covers.
type ExpungeRecord struct {
	EventID int64
	At      time.Time
	Reason  string
	// Credential is the event's, which stays on the row and which the
	// detail hash no longer checks once the rest of the detail is erased;
	// so are the content type and, by KeyHash = SHA-256(salt || key), the
	// idempotency key (salted: a derived key names the body's SHA-256).
	Credential, ContentType string
	KeyHash                 []byte
	// BodyHash and DetailHash are the salted hashes the leaf commits to
	// (DetailHash nil for a leaf without one).
	BodyHash, DetailHash []byte
	// Blobs are the attachments removed with it.
	Blobs [][]byte
}

// ExpungeHooks are the log's part of an expunge.
type ExpungeHooks struct {
	// Check is called with each event before anything is erased. It
	// returns the detail hash the event's leaf commits to (nil for a leaf
	// without one), or an error that refuses the whole expunge.
	Check func(ExpungeTarget) ([]byte, error)
	// Sign returns the signed note of a record.
	Sign func(ExpungeRecord) (string, error)
}

// ExpungeResult is what an expunge did to one event.
type ExpungeResult struct {
	EventID int64
	// Blobs is how many of its attachments were removed: those no other
	// event refers to.
	Blobs int
	// Already: an earlier expunge erased it; nothing was done.
	Already bool
}

// Expunge erases the content of the given events in one transaction: the
// body and its unsalted hash, the normalised document, the summary, actor,
// changes and reply, and the attachments no other event refers to. Their
// ids, times, type, source and credential stay, and so do their leaves:
// the signed record of each expunge keeps the salted hashes its leaf
// commits to. An event expunged already is reported as such and left.
//
// It refuses (ErrRefused), and erases nothing, when an event does not
// exist or is not yet in the log, or when hooks.Check refuses one. The store
// must be opened with Options.Owner: the application's role may not erase.
// Expunges run one at a time.
func (s *Store) Expunge(ctx context.Context, ids []int64, reason string, hooks ExpungeHooks) ([]ExpungeResult, error) {
	ids, err := expungeIDs(ids, reason)
	if err != nil {
		return nil, err
	}
	reason = Text(reason) // signed as stored
	var results []ExpungeResult
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		if err := q.ExpungeLock(ctx); err != nil {
			return err
		}
		rows, err := q.ExpungeTargets(ctx, ids)
		if err != nil {
			return err
		}
		if id, ok := firstMissing(ids, rows, func(r db.ExpungeTargetsRow) int64 { return r.ID }); ok {
			return fmt.Errorf("%w: no event %d", ErrRefused, id)
		}
		results = make([]ExpungeResult, len(rows))
		var todo []int // positions in rows and results
		records := make([]ExpungeRecord, len(rows))
		for i, r := range rows {
			results[i] = ExpungeResult{EventID: r.ID, Already: r.Expunged}
			if r.Expunged {
				continue
			}
			if r.LeafHash == nil {
				return fmt.Errorf("%w: event %d is not yet in the log; expunge it once the sequencer has logged it (within seconds of its receipt)", ErrRefused, r.ID)
			}
			detail, err := hooks.Check(ExpungeTarget{LeafHash: r.LeafHash, Leaf: LeafSource{EventID: r.ID,
				Source: r.Source, Kind: r.Kind, Type: r.Type, OccurredAt: r.OccurredAt, ReceivedAt: r.ReceivedAt,
				CaseID: r.CaseID, Phone: r.Phone, CustomerID: r.CustomerID, ConversationID: r.ConversationID,
				AgentID: r.AgentID, WorkItemID: r.WorkItemID, Queue: r.Queue, TimeInQueueMs: r.TimeInQueueMs,
				IsOutbound: r.IsOutbound, Credential: r.Credential, Summary: r.Summary, Actor: r.Actor,
				Changes: r.Changes, Reply: r.Reply, Salt: r.BodySalt, BodyHash: r.BodyHash,
				ContentType: r.ContentType, IdempotencyKey: r.IdempotencyKey, BodySHA256: r.BodySha256,
				DocHash: r.DocHash, DocLossy: r.DocLossy}, BodySHA256Matches: r.BodySha256Matches})
			if err != nil {
				return fmt.Errorf("%w: event %d: %v", ErrRefused, r.ID, err)
			}
			if r.BadAttachment != nil {
				return fmt.Errorf("%w: event %d: attachment %x that it refers to was altered or removed; run casetrail verify", ErrRefused, r.ID, r.BadAttachment)
			}
			records[i] = ExpungeRecord{EventID: r.ID, Reason: reason, Credential: r.Credential,
				ContentType: r.ContentType, KeyHash: SaltedHash(r.BodySalt, []byte(r.IdempotencyKey)),
				BodyHash: r.BodyHash, DetailHash: detail}
			todo = append(todo, i)
		}
		if len(todo) == 0 {
			return nil
		}
		todoIDs := make([]int64, len(todo))
		for j, i := range todo {
			todoIDs[j] = rows[i].ID
		}
		removed, err := unreferencedBlobs(ctx, q, todoIDs)
		if err != nil {
			return err
		}
		at := time.Now().UTC().Truncate(time.Microsecond) // as the column keeps it
		var all [][]byte
		for _, i := range todo {
			rec := records[i]
			rec.At, rec.Blobs = at, removed[rec.EventID]
			if rec.Blobs == nil {
				rec.Blobs = [][]byte{}
			}
			note, err := hooks.Sign(rec)
			if err != nil {
				return fmt.Errorf("signing the record of event %d's expunge: %w", rec.EventID, err)
			}
			if err := q.ExpungeRecord(ctx, db.ExpungeRecordParams{ID: rec.EventID, ExpungedAt: at, Reason: reason,
				BodyHash: rec.BodyHash, DetailHash: rec.DetailHash, Blobs: rec.Blobs, Note: note}); err != nil {
				return err
			}
			if _, err := q.ExpungeErase(ctx, db.ExpungeEraseParams{ID: rec.EventID, ReceivedAt: rows[i].ReceivedAt}); err != nil {
				return err
			}
			all = append(all, rec.Blobs...)
			results[i].Blobs = len(rec.Blobs)
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
// refers to that no other event does, looked up in the references the store
// keeps (event_attachments), not in the documents. The first pass holds
// nothing up and settles the attachments another event refers to already;
// then inserts into blobs are held off until the transaction ends, and the
// references of those left are read again (ExpungeBlobsReferenced says why
// that second read misses none). An attachment several of the events share
// is removed with each of them.
func unreferencedBlobs(ctx context.Context, q *db.Queries, ids []int64) (map[int64][][]byte, error) {
	cands, err := q.ExpungeBlobCandidates(ctx, ids)
	if err != nil || len(cands) == 0 {
		return nil, err
	}
	free := map[string]bool{} // the candidates no other event is known to refer to
	var hashes [][]byte
	for _, c := range cands {
		if _, ok := free[string(c.Sha256)]; !ok {
			free[string(c.Sha256)] = true
			hashes = append(hashes, c.Sha256)
		}
	}
	// still drops the referenced ones and returns the candidates left.
	still := func(referenced [][]byte) [][]byte {
		for _, h := range referenced {
			free[string(h)] = false
		}
		return slices.DeleteFunc(hashes, func(h []byte) bool { return !free[string(h)] })
	}
	referenced, err := q.ExpungeBlobsReferenced(ctx, db.ExpungeBlobsReferencedParams{Blobs: hashes, Ids: ids})
	if err != nil {
		return nil, err
	}
	if hashes = still(referenced); len(hashes) == 0 {
		return nil, nil
	}
	if err := q.ExpungeLockTimeout(ctx); err != nil {
		return nil, err
	}
	if err := q.ExpungeLockBlobs(ctx); err != nil {
		return nil, err
	}
	// The events a server of a version before 00016 stored while that
	// migration ran have no references yet; an ingest of such a server
	// that stores an attachment inserts into blobs too, so the lock has
	// waited for it as well.
	if _, err := q.ExpungeCatchUpReferences(ctx); err != nil {
		return nil, err
	}
	referenced, err = q.ExpungeBlobsReferenced(ctx, db.ExpungeBlobsReferencedParams{Blobs: hashes, Ids: ids})
	if err != nil {
		return nil, err
	}
	still(referenced)
	out := map[int64][][]byte{}
	for _, c := range cands {
		if free[string(c.Sha256)] {
			out[c.EventID] = append(out[c.EventID], c.Sha256)
		}
	}
	return out, nil
}

// SaltedHash is SHA-256(salt || data): how a leaf holds an event's body and
// detail, and an expunge's record the idempotency key its row keeps.
func SaltedHash(salt, data []byte) []byte {
	h := sha256.New()
	h.Write(salt)
	h.Write(data)
	return h.Sum(nil)
}

// RejectedExpungeResult is what an expunge did to one rejected request.
type RejectedExpungeResult struct {
	ID int64
	// Already: an earlier expunge erased it; nothing was done.
	Already bool
	// With is the request asked for whose body this one shared, when this
	// one was not asked for itself; 0 otherwise.
	With int64
}

// ExpungeRejected erases the bodies, details and event types of the given
// kept rejected requests in one transaction, and records when and why. A
// body is stored once for every request that sent it, so the other requests
// that sent the same body are erased and recorded with them. A request
// expunged already is reported as such and left. It refuses (ErrRefused),
// and erases nothing, when a request does not exist. The store must be
// opened with Options.Owner. Expunges run one at a time.
func (s *Store) ExpungeRejected(ctx context.Context, ids []int64, reason string) ([]RejectedExpungeResult, error) {
	ids, err := expungeIDs(ids, reason)
	if err != nil {
		return nil, err
	}
	var results []RejectedExpungeResult
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		if err := q.ExpungeLock(ctx); err != nil {
			return err
		}
		rows, err := q.RejectedExpungeTargets(ctx, ids)
		if err != nil {
			return err
		}
		if id, ok := firstMissing(ids, rows, func(r db.RejectedExpungeTargetsRow) int64 { return r.ID }); ok {
			return fmt.Errorf("%w: no rejected request %d", ErrRefused, id)
		}
		var todo []int64
		for _, r := range rows {
			results = append(results, RejectedExpungeResult{ID: r.ID, Already: r.Expunged})
			if !r.Expunged {
				todo = append(todo, r.ID)
			}
		}
		sharing, err := q.RejectedSharingBodies(ctx, todo)
		if err != nil {
			return err
		}
		for _, r := range sharing {
			if !slices.Contains(todo, r.ID) {
				results = append(results, RejectedExpungeResult{ID: r.ID, With: r.WithID})
				todo = append(todo, r.ID)
			}
		}
		if len(todo) == 0 {
			return nil
		}
		if err := q.RejectedExpungeRecord(ctx, db.RejectedExpungeRecordParams{Reason: Text(reason), Ids: todo}); err != nil {
			return err
		}
		if err := q.RejectedExpungeBodies(ctx, todo); err != nil {
			return err
		}
		return q.RejectedExpungeRows(ctx, todo)
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

// expungeIDs is ids sorted, each once, for an expunge; one without a reason
// is refused.
func expungeIDs(ids []int64, reason string) ([]int64, error) {
	if reason == "" {
		return nil, fmt.Errorf("%w: an expunge needs a reason", ErrRefused)
	}
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// firstMissing is the first of ids that rows, read for them in the same
// (id) order, do not hold.
func firstMissing[R any](ids []int64, rows []R, id func(R) int64) (int64, bool) {
	for i, want := range ids {
		if i >= len(rows) || id(rows[i]) != want {
			return want, true
		}
	}
	return 0, false
}
