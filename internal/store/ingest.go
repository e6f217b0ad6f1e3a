package store

import (
	"bytes"
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/casetrail/casetrail/db"
)

// NewEvent is one normalised event on its way into the store.
type NewEvent struct {
	ReceivedAt time.Time
	OccurredAt time.Time
	Source     string
	Kind       string
	Type       string
	// Credential names the credential that accepted the request (an id or a
	// fingerprint, never the secret).
	Credential     string
	IdempotencyKey string
	// ExplicitKey is true when the sender chose the key (header); the same
	// key with another body is then a conflict.
	ExplicitKey bool

	CaseID, Phone, CustomerID, ConversationID, AgentID, WorkItemID, Queue string

	TimeInQueueMs *int64
	IsOutbound    *bool
	Actor         []byte // JSON or nil
	Changes       []byte // JSON or nil
	Summary       string
	ContentType   string

	Body       []byte
	BodySHA256 [32]byte
	Doc        []byte // indexed JSON copy, or nil
	DocLossy   bool
	Reply      []byte // the reply sent to a synchronous hook, or nil
	Blobs      []Blob
}

// Blob is attachment content, stored once per SHA-256.
type Blob struct {
	SHA256  [32]byte
	Content []byte
}

// IngestResult is the outcome of one event of a batch.
type IngestResult struct {
	ID        int64
	Duplicate bool
	// Err is ErrConflict when an explicit idempotency key was reused with
	// another body; the event was not stored.
	Err error
}

// Ingest is the one write path: it stores a batch of events in a single
// transaction (one statement claims the keys, one COPY stores the events,
// whatever their number) and returns once that transaction is committed.
// Repeats of an idempotency key, in the store or within the batch, store
// nothing new. When it returns an
// error, no result may be acknowledged to a sender.
func (s *Store) Ingest(ctx context.Context, events []NewEvent) ([]IngestResult, error) {
	results := make([]IngestResult, len(events))
	// The first event of each key is stored; later ones in the batch are
	// answered from it.
	type key struct{ source, key string }
	firstOf := make(map[key]int, len(events))
	var unique []int
	for i := range events {
		k := key{events[i].Source, events[i].IdempotencyKey}
		if _, seen := firstOf[k]; !seen {
			firstOf[k] = i
			unique = append(unique, i)
		}
	}
	// Rows are locked in one global order (blob hash, then source and key)
	// so that concurrent batches never deadlock on each other.
	slices.SortFunc(unique, func(a, b int) int {
		return cmp.Or(cmp.Compare(events[a].Source, events[b].Source),
			cmp.Compare(events[a].IdempotencyKey, events[b].IdempotencyKey))
	})
	blobs := uniqueBlobs(events)

	err := s.inTx(ctx, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		if len(blobs) > 0 {
			var blobErr error
			q.BlobInsert(ctx, blobs).Exec(func(_ int, err error) { blobErr = cmp.Or(blobErr, err) })
			if blobErr != nil {
				return blobErr
			}
		}
		// Claim the keys, then COPY the events whose keys were free: COPY
		// costs the database a fraction of an INSERT from arrays per row.
		claimed, err := q.IdempotencyClaim(ctx, claimParams(events, unique))
		if err != nil {
			return err
		}
		ids := make(map[key]int64, len(claimed))
		for _, c := range claimed {
			ids[key{c.Source, c.Key}] = c.EventID
		}
		var taken []int // keys that already existed in the store
		storedIdx, storedIDs := make([]int, 0, len(claimed)), make([]int64, 0, len(claimed))
		rows := make([]db.EventCopyInParams, 0, len(claimed))
		for _, i := range unique {
			id, ok := ids[key{events[i].Source, events[i].IdempotencyKey}]
			if !ok {
				taken = append(taken, i)
				continue
			}
			results[i].ID = id
			storedIdx, storedIDs = append(storedIdx, i), append(storedIDs, id)
			rows = append(rows, copyRow(id, &events[i]))
		}
		if len(rows) > 0 {
			if _, err := q.EventCopyIn(ctx, rows); err != nil {
				return err
			}
		}
		if err := projectAbandons(ctx, q, events, storedIdx, storedIDs); err != nil {
			return err
		}
		if len(taken) == 0 {
			return nil
		}
		keys := make([]db.IdempotencyKeyGetParams, len(taken))
		for j, i := range taken {
			keys[j] = db.IdempotencyKeyGetParams{Source: events[i].Source, Key: events[i].IdempotencyKey}
		}
		var getErr error
		q.IdempotencyKeyGet(ctx, keys).QueryRow(func(j int, row db.IdempotencyKeyGetRow, err error) {
			if err != nil {
				getErr = cmp.Or(getErr, err)
				return
			}
			i := taken[j]
			results[i] = answerRepeat(row.EventID, row.BodySha256, events[i])
		})
		return getErr
	})
	if err != nil {
		return nil, err
	}
	for i := range events {
		first := firstOf[key{events[i].Source, events[i].IdempotencyKey}]
		if first != i {
			if results[first].Err != nil {
				results[i] = results[first]
			} else {
				results[i] = answerRepeat(results[first].ID, events[first].BodySHA256[:], events[i])
			}
		}
	}
	return results, nil
}

// answerRepeat answers an event whose key is already held by event id with
// body hash sum: a duplicate when the bodies match, a conflict otherwise.
func answerRepeat(id int64, sum []byte, e NewEvent) IngestResult {
	if bytes.Equal(sum, e.BodySHA256[:]) {
		return IngestResult{ID: id, Duplicate: true}
	}
	return IngestResult{ID: id, Err: ErrConflict}
}

// claimParams lays out the keys of the events, in the given order.
func claimParams(events []NewEvent, order []int) db.IdempotencyClaimParams {
	n := len(order)
	p := db.IdempotencyClaimParams{Source: make([]string, n), Key: make([]string, n), Explicit: make([]bool, n),
		BodySha256: make([][]byte, n), ReceivedAt: make([]time.Time, n)}
	for j, i := range order {
		e := &events[i]
		p.Source[j], p.Key[j], p.Explicit[j] = e.Source, e.IdempotencyKey, e.ExplicitKey
		p.BodySha256[j], p.ReceivedAt[j] = e.BodySHA256[:], e.ReceivedAt
	}
	return p
}

// copyRow is the event as a row of events with its id.
func copyRow(id int64, e *NewEvent) db.EventCopyInParams {
	return db.EventCopyInParams{
		ID: id, ReceivedAt: e.ReceivedAt, OccurredAt: e.OccurredAt, Source: e.Source, Kind: e.Kind, Type: e.Type,
		Credential: e.Credential, IdempotencyKey: e.IdempotencyKey, CaseID: nullable(e.CaseID),
		Phone: nullable(e.Phone), CustomerID: nullable(e.CustomerID), ConversationID: nullable(e.ConversationID),
		AgentID: nullable(e.AgentID), WorkItemID: nullable(e.WorkItemID), Queue: nullable(e.Queue),
		TimeInQueueMs: e.TimeInQueueMs, IsOutbound: e.IsOutbound, Actor: e.Actor, Changes: e.Changes,
		Summary: e.Summary, ContentType: e.ContentType, Body: e.Body, BodySha256: e.BodySHA256[:],
		Doc: e.Doc, DocLossy: e.DocLossy, Reply: e.Reply,
	}
}

func uniqueBlobs(events []NewEvent) []db.BlobInsertParams {
	seen := map[[32]byte]bool{}
	var out []db.BlobInsertParams
	for i := range events {
		for _, b := range events[i].Blobs {
			if seen[b.SHA256] {
				continue
			}
			seen[b.SHA256] = true
			out = append(out, db.BlobInsertParams{Sha256: b.SHA256[:], Size: int64(len(b.Content)), Content: b.Content})
		}
	}
	slices.SortFunc(out, func(a, b db.BlobInsertParams) int { return bytes.Compare(a.Sha256, b.Sha256) })
	return out
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Rejected is a request that passed authentication (or could not be
// authenticated before it was refused) but was not stored as an event.
type Rejected struct {
	ReceivedAt    time.Time
	Source        string
	EventType     string
	Status        int
	Cause         string
	Detail        string
	Credential    string
	ContentType   string
	Body          []byte
	BodySize      int64
	BodyTruncated bool
}

// Reject keeps a refused request with its cause, so that nothing a sender
// sent is lost.
func (s *Store) Reject(ctx context.Context, r Rejected) (int64, error) {
	id, err := s.q.RejectedInsert(ctx, db.RejectedInsertParams{
		ReceivedAt:    r.ReceivedAt,
		Source:        r.Source,
		EventType:     r.EventType,
		Status:        int32(r.Status),
		Cause:         r.Cause,
		Detail:        r.Detail,
		Credential:    r.Credential,
		ContentType:   r.ContentType,
		Body:          r.Body,
		BodySize:      r.BodySize,
		BodyTruncated: r.BodyTruncated,
	})
	return id, interpretError(err)
}

// CopyEvents bulk-loads events by COPY in one statement, without
// idempotency keys or blobs: the database's own ingest limit, which the
// throughput benchmark compares the HTTP path with. The rows are those
// Ingest copies.
func (s *Store) CopyEvents(ctx context.Context, events []NewEvent) (int64, error) {
	ids, err := s.q.EventIDsReserve(ctx, int32(len(events)))
	if err != nil {
		return 0, interpretError(err)
	}
	rows := make([]db.EventCopyInParams, len(events))
	for i := range events {
		rows[i] = copyRow(ids[i], &events[i])
	}
	n, err := s.q.EventCopyIn(ctx, rows)
	return n, interpretError(err)
}
