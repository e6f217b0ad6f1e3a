package store

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/casetrail/casetrail/db"
)

// derivedKeyPrefix begins the idempotency key of a delivery that names
// none: sha256:<type>:<the body's SHA-256, hex>.
const derivedKeyPrefix = "sha256:"

// DerivedKey is the idempotency key of a delivery of typ that names none.
func DerivedKey(typ string, bodySHA256 [sha256.Size]byte) string {
	return derivedKeyPrefix + typ + ":" + hex.EncodeToString(bodySHA256[:])
}

// RedactDerivedKey hides the body hash in key when key has the form
// DerivedKey gives an event of typ (sha256:<type>:redacted); any other key
// is returned as it is.
func RedactDerivedKey(key, typ string) string {
	prefix := derivedKeyPrefix + typ + ":"
	hash, ok := strings.CutPrefix(key, prefix)
	if !ok || len(hash) != 2*sha256.Size || strings.Trim(hash, "0123456789abcdef") != "" {
		return key
	}
	return prefix + "redacted"
}

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
// statement, and so a single transaction, whatever their number
// (casetrail_ingest claims the keys, inserts the events and keeps the
// abandonment projection), and returns once that transaction is committed.
// Repeats of an idempotency key, in the store or within the batch, store
// nothing new. When it returns an error, no result may be acknowledged to a
// sender.
func (s *Store) Ingest(ctx context.Context, events []NewEvent) ([]IngestResult, error) {
	return ingestOn(ctx, s.q, events)
}

// ingestOn is Ingest through q, a pool's or a Pipe's.
func ingestOn(ctx context.Context, q *db.Queries, events []NewEvent) ([]IngestResult, error) {
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
	// Rows are locked in one global order (source and key, then blob hash)
	// so that concurrent batches never deadlock on each other.
	slices.SortFunc(unique, func(a, b int) int {
		return cmp.Or(cmp.Compare(events[a].Source, events[b].Source),
			cmp.Compare(events[a].IdempotencyKey, events[b].IdempotencyKey))
	})
	rows, err := q.EventsIngest(ctx, ingestParams(events, unique))
	if err != nil {
		return nil, interpretStatementError(ctx, err)
	}
	if len(rows) != len(unique) {
		return nil, fmt.Errorf("store: %d outcomes for %d events", len(rows), len(unique))
	}
	// held is the body hash each key is held with: the first event's when
	// it was stored now, else the holder's, which a repeat later in the
	// batch is answered against (a retry behind a conflicting body is
	// still a duplicate).
	held := make([][]byte, len(events))
	for _, r := range rows {
		i := unique[r.Ord-1]
		if r.Stored {
			results[i].ID, held[i] = r.EventID, events[i].BodySHA256[:]
		} else {
			results[i], held[i] = answerRepeat(r.EventID, r.HeldSha256, events[i]), r.HeldSha256
		}
	}
	for i := range events {
		if first := firstOf[key{events[i].Source, events[i].IdempotencyKey}]; first != i {
			results[i] = answerRepeat(results[first].ID, held[first], events[i])
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

// ingestParams lays out the events at the given positions, in that order,
// as casetrail_ingest's parallel arrays, with their attachments and what the
// abandonment projection needs.
func ingestParams(events []NewEvent, order []int) db.EventsIngestParams {
	n := len(order)
	p := db.EventsIngestParams{
		Source: make([]string, n), Key: make([]string, n), Explicit: make([]bool, n), BodySha256: make([][]byte, n),
		ReceivedAt: make([]time.Time, n), OccurredAt: make([]time.Time, n), Kind: make([]string, n), Type: make([]string, n),
		Credential: make([]string, n), CaseID: make([]string, n), Phone: make([]string, n), CustomerID: make([]string, n),
		ConversationID: make([]string, n), AgentID: make([]string, n), WorkItemID: make([]string, n), Queue: make([]string, n),
		TimeInQueueMs: make([]int64, n), IsOutbound: make([]string, n), Actor: make([][]byte, n), Changes: make([][]byte, n),
		Summary: make([]string, n), ContentType: make([]string, n), Body: make([][]byte, n), Doc: make([][]byte, n),
		DocLossy: make([]bool, n), Reply: make([][]byte, n),
	}
	for j, i := range order {
		e := &events[i]
		p.Source[j], p.Key[j], p.Explicit[j], p.BodySha256[j] = e.Source, e.IdempotencyKey, e.ExplicitKey, e.BodySHA256[:]
		p.ReceivedAt[j], p.OccurredAt[j], p.Kind[j], p.Type[j] = e.ReceivedAt, e.OccurredAt, e.Kind, e.Type
		p.Credential[j], p.CaseID[j], p.Phone[j], p.CustomerID[j] = e.Credential, e.CaseID, e.Phone, e.CustomerID
		p.ConversationID[j], p.AgentID[j], p.WorkItemID[j], p.Queue[j] = e.ConversationID, e.AgentID, e.WorkItemID, e.Queue
		p.TimeInQueueMs[j] = -1
		if e.TimeInQueueMs != nil {
			p.TimeInQueueMs[j] = *e.TimeInQueueMs
		}
		if e.IsOutbound != nil {
			p.IsOutbound[j] = strconv.FormatBool(*e.IsOutbound)
		}
		p.Actor[j], p.Changes[j], p.Doc[j], p.Reply[j] = jsonOrNull(e.Actor), jsonOrNull(e.Changes), jsonOrNull(e.Doc), jsonOrNull(e.Reply)
		p.Summary[j], p.ContentType[j], p.Body[j], p.DocLossy[j] = e.Summary, e.ContentType, e.Body, e.DocLossy
		if p.Body[j] == nil {
			p.Body[j] = []byte{} // an empty body is still a body, not NULL
		}
	}
	for _, b := range uniqueBlobs(events, order) {
		p.BlobSha256 = append(p.BlobSha256, b.SHA256[:])
		p.BlobSize = append(p.BlobSize, int64(len(b.Content)))
		p.BlobContent = append(p.BlobContent, b.Content)
	}
	p.RefOrd, p.RefSha256 = attachmentRefs(events, order)
	p.LockKey, p.AbandonOrd, p.CallOrd = abandonPositions(events, order)
	return p
}

// jsonOrNull is a JSON value for a jsonb array element: nil (NULL) when
// there is none.
func jsonOrNull(v []byte) []byte {
	if len(v) == 0 {
		return nil
	}
	return v
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

// uniqueBlobs is the attachments of the events at the given positions, each
// once, in hash order (the order rows are locked in). A repeat of a key
// within the batch is not among them: its attachments are not stored.
func uniqueBlobs(events []NewEvent, order []int) []Blob {
	seen := map[[32]byte]bool{}
	var out []Blob
	for _, i := range order {
		for _, b := range events[i].Blobs {
			if !seen[b.SHA256] {
				seen[b.SHA256] = true
				out = append(out, b)
			}
		}
	}
	slices.SortFunc(out, func(a, b Blob) int { return bytes.Compare(a.SHA256[:], b.SHA256[:]) })
	return out
}

// attachmentRefs is which event refers to which attachment, as positions
// (from 1) among the events at the given positions and hashes, each pair
// once: nil, and no work in casetrail_ingest, for a batch without
// attachments.
func attachmentRefs(events []NewEvent, order []int) (ords []int32, sums [][]byte) {
	for j, i := range order {
		blobs := events[i].Blobs
		for k, b := range blobs {
			if !slices.ContainsFunc(blobs[:k], func(o Blob) bool { return o.SHA256 == b.SHA256 }) {
				ords, sums = append(ords, int32(j+1)), append(sums, b.SHA256[:])
			}
		}
	}
	return ords, sums
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

// EventType is the type of stored event id.
func (s *Store) EventType(ctx context.Context, id int64) (string, error) {
	t, err := s.q.EventTypeGet(ctx, id)
	return t, interpretError(err)
}

// Reject keeps a refused request with its cause, so that nothing a sender
// sent is lost. Its text is made storable (Text): a request is often
// refused for the very bytes a text column cannot hold.
// The body is stored apart from the row, once per SHA-256.
func (s *Store) Reject(ctx context.Context, r Rejected) (int64, error) {
	sum := sha256.Sum256(r.Body)
	if r.Body == nil { // a refusal kept without content (the column is NOT NULL)
		r.Body = []byte{}
	}
	id, err := s.q.RejectedInsert(ctx, db.RejectedInsertParams{
		ReceivedAt:    r.ReceivedAt,
		Source:        Text(r.Source),
		EventType:     Text(r.EventType),
		Status:        int32(r.Status),
		Cause:         r.Cause,
		Detail:        Text(r.Detail),
		Credential:    r.Credential,
		ContentType:   Text(r.ContentType),
		Body:          r.Body,
		BodySha256:    sum[:],
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
