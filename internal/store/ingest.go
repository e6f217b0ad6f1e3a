package store

import (
	"bytes"
	"cmp"
	"context"
	"errors"
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
// transaction and returns once that transaction is committed. Repeats of an
// idempotency key store nothing new. When it returns an error, no result may
// be acknowledged to a sender.
func (s *Store) Ingest(ctx context.Context, events []NewEvent) ([]IngestResult, error) {
	results := make([]IngestResult, len(events))
	// Rows are locked in one global order (blob hash, then source and key)
	// so that concurrent batches never deadlock on each other.
	order := make([]int, len(events))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
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

		params := make([]db.EventInsertParams, len(order))
		for j, i := range order {
			params[j] = insertParams(&events[i])
		}
		var taken []int // indexes into events whose key already existed
		var insErr error
		q.EventInsert(ctx, params).QueryRow(func(j int, id int64, err error) {
			switch {
			case err == nil:
				results[order[j]].ID = id
			case errors.Is(err, pgx.ErrNoRows):
				taken = append(taken, order[j])
			default:
				insErr = cmp.Or(insErr, err)
			}
		})
		if insErr != nil || len(taken) == 0 {
			return insErr
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
			results[i].ID = row.EventID
			if bytes.Equal(row.BodySha256, events[i].BodySHA256[:]) {
				results[i].Duplicate = true
			} else {
				results[i].Err = ErrConflict
			}
		})
		return getErr
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

func insertParams(e *NewEvent) db.EventInsertParams {
	return db.EventInsertParams{
		ReceivedAt:     e.ReceivedAt,
		OccurredAt:     e.OccurredAt,
		Source:         e.Source,
		Kind:           e.Kind,
		Type:           e.Type,
		Credential:     e.Credential,
		IdempotencyKey: e.IdempotencyKey,
		Explicit:       e.ExplicitKey,
		CaseID:         nullable(e.CaseID),
		Phone:          nullable(e.Phone),
		CustomerID:     nullable(e.CustomerID),
		ConversationID: nullable(e.ConversationID),
		AgentID:        nullable(e.AgentID),
		WorkItemID:     nullable(e.WorkItemID),
		Queue:          nullable(e.Queue),
		TimeInQueueMs:  e.TimeInQueueMs,
		IsOutbound:     e.IsOutbound,
		Actor:          e.Actor,
		Changes:        e.Changes,
		Summary:        e.Summary,
		ContentType:    e.ContentType,
		Body:           e.Body,
		BodySha256:     e.BodySHA256[:],
		Doc:            e.Doc,
		DocLossy:       e.DocLossy,
		Reply:          e.Reply,
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
