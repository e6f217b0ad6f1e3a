package store

import (
	"context"
	"time"

	"github.com/casetrail/casetrail/db"
)

// EventRow is an event as listings show it (no body).
type EventRow struct {
	ID             int64
	ReceivedAt     time.Time
	OccurredAt     time.Time
	Source         string
	Kind           string
	Type           string
	CaseID         *string
	Phone          *string
	CustomerID     *string
	ConversationID *string
	AgentID        *string
	WorkItemID     *string
	Queue          *string
	TimeInQueueMs  *int64
	IsOutbound     *bool
	Actor          []byte
	Changes        []byte
	Summary        string
	IdempotencyKey string
	// LogIndex is the event's position in the tamper-evident log; nil until
	// it is sequenced (within a second of commit).
	LogIndex *int64
	// MatchedBy says why a timeline holds the event: caseId, phone,
	// customerId or conversationId. Empty in the feed.
	MatchedBy string
	// ExpungedAt and ExpungeReason are set when the event's content was
	// erased (Expunge).
	ExpungedAt    *time.Time
	ExpungeReason *string
}

// TimelineQuery selects a case's or a contact's events. For a case, CaseID
// is set and the keys are filled from the case's own events; for a contact,
// CaseID is nil and Phones or CustomerIDs name the contact.
type TimelineQuery struct {
	CaseID          *string
	Phones          []string
	CustomerIDs     []string
	ConversationIDs []string
	TypePatterns    []string // SQL ILIKE patterns (a type matches whatever its case); at least one
	From, To        *time.Time
	Ascending       bool
	AfterAt         *time.Time // keyset cursor, with AfterID
	AfterID         int64
	Limit           int
}

// CaseKeys fills q's correlation keys from the case's own events.
func (s *Store) CaseKeys(ctx context.Context, q *TimelineQuery) error {
	keys, err := s.q.EventCaseKeys(ctx, *q.CaseID)
	if err != nil {
		return interpretError(err)
	}
	q.Phones, q.CustomerIDs, q.ConversationIDs = keys.Phones, keys.CustomerIds, keys.ConversationIds
	return nil
}

// Timeline lists one page of a timeline.
//
// casetrail_timeline_page reads each key in its index's order and only as
// far as a page, so a page of a number with many events costs about what
// one of a quiet number does (BenchmarkTimelineBusyContact). The exception
// is a case's page: it takes only contact-center events of its numbers, and
// reads past the others.
func (s *Store) Timeline(ctx context.Context, q TimelineQuery) ([]EventRow, error) {
	rows, err := s.q.EventListTimeline(ctx, db.EventListTimelineParams{
		CaseID:          q.CaseID,
		Phones:          nonNil(q.Phones),
		CustomerIds:     nonNil(q.CustomerIDs),
		ConversationIds: nonNil(q.ConversationIDs),
		TypePatterns:    q.TypePatterns,
		From:            q.From,
		To:              q.To,
		AfterAt:         q.AfterAt,
		AfterID:         q.AfterID,
		Ascending:       q.Ascending,
		RowLimit:        int32(q.Limit),
	})
	if err != nil {
		return nil, interpretError(err)
	}
	out := make([]EventRow, len(rows))
	for i, r := range rows {
		out[i] = EventRow(r)
	}
	return out, nil
}

// FeedQuery selects a page of the global feed.
type FeedQuery struct {
	AfterIndex   int64 // -1: from the start
	Source       *string
	TypePatterns []string   // SQL ILIKE patterns, as TimelineQuery's
	From, To     *time.Time // receipt time
	Limit        int
}

// Feed lists events in log order: positions are gap-free and assigned after
// commit, so following AfterIndex from page to page never skips an event.
func (s *Store) Feed(ctx context.Context, q FeedQuery) ([]EventRow, error) {
	rows, err := s.q.EventListFeed(ctx, db.EventListFeedParams{
		AfterIndex:   q.AfterIndex,
		Source:       q.Source,
		TypePatterns: q.TypePatterns,
		From:         q.From,
		To:           q.To,
		RowLimit:     int32(q.Limit),
	})
	if err != nil {
		return nil, interpretError(err)
	}
	out := make([]EventRow, len(rows))
	for i, r := range rows {
		idx := r.LogIndex
		out[i] = EventRow{ID: r.ID, ReceivedAt: r.ReceivedAt, OccurredAt: r.OccurredAt, Source: r.Source,
			Kind: r.Kind, Type: r.Type, CaseID: r.CaseID, Phone: r.Phone, CustomerID: r.CustomerID,
			ConversationID: r.ConversationID, AgentID: r.AgentID, WorkItemID: r.WorkItemID, Queue: r.Queue,
			TimeInQueueMs: r.TimeInQueueMs, IsOutbound: r.IsOutbound, Actor: r.Actor, Changes: r.Changes,
			Summary: r.Summary, IdempotencyKey: r.IdempotencyKey, LogIndex: &idx,
			ExpungedAt: r.ExpungedAt, ExpungeReason: r.ExpungeReason}
	}
	return out, nil
}

// EventDetail is one event with its body and indexed document.
type EventDetail = db.EventGetDetailRow

// Event returns one event, or ErrNotFound.
func (s *Store) Event(ctx context.Context, id int64) (EventDetail, error) {
	e, err := s.q.EventGetDetail(ctx, id)
	return e, interpretError(err)
}

// Blob returns attachment content by its SHA-256, or ErrNotFound.
func (s *Store) Blob(ctx context.Context, sha256 []byte) ([]byte, error) {
	b, err := s.q.BlobGet(ctx, sha256)
	if err != nil {
		return nil, interpretError(err)
	}
	return b.Content, nil
}

// BlobEvents returns the ids of the events whose documents refer to the
// attachment with this SHA-256, in order, whether or not it is still
// stored: an expunge removes an attachment, not the record that the
// expunged events referred to it.
func (s *Store) BlobEvents(ctx context.Context, sha256 []byte) ([]int64, error) {
	ids, err := s.q.EventAttachmentListBySha(ctx, sha256)
	return ids, interpretError(err)
}

// Access is one recorded read.
type Access struct {
	ID       int64
	At       time.Time
	KeyName  string
	Role     string
	Method   string
	Route    string
	Path     string
	Params   []byte // JSON object
	Status   int
	EventIDs []int64
}

// RecordAccess appends to the access log.
func (s *Store) RecordAccess(ctx context.Context, a Access) error {
	_, err := s.q.AccessLogInsert(ctx, db.AccessLogInsertParams{
		KeyName:  a.KeyName,
		Role:     a.Role,
		Method:   a.Method,
		Route:    a.Route,
		Path:     a.Path,
		Params:   a.Params,
		Status:   int32(a.Status),
		EventIds: nonNil(a.EventIDs),
	})
	return interpretError(err)
}

// AccessLog lists the access log after the row afterID (0: from the
// start), in id order, of one key when keyName is set. Ids are taken in
// commit order (AccessLogInsert), so a reader resuming after the last row
// it read never passes one that commits later.
func (s *Store) AccessLog(ctx context.Context, afterID int64, keyName *string, limit int) ([]Access, error) {
	var rows []db.AccessLog
	var err error
	if keyName != nil {
		rows, err = s.q.AccessLogListByKey(ctx, db.AccessLogListByKeyParams{KeyName: *keyName, AfterID: afterID, RowLimit: int32(limit)})
	} else {
		rows, err = s.q.AccessLogList(ctx, db.AccessLogListParams{AfterID: afterID, RowLimit: int32(limit)})
	}
	if err != nil {
		return nil, interpretError(err)
	}
	out := make([]Access, len(rows))
	for i, r := range rows {
		out[i] = Access{ID: r.ID, At: r.At, KeyName: r.KeyName, Role: r.Role, Method: r.Method, Route: r.Route,
			Path: r.Path, Params: r.Params, Status: int(r.Status), EventIDs: r.EventIds}
	}
	return out, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// KeptRejection is a rejected request as kept: Body and BodySHA256 are set
// only when it is read on its own (Rejection).
type KeptRejection struct {
	ID int64
	Rejected
	BodySHA256 []byte
	// Expunged: its body, detail and event type were erased; nil if not.
	Expunged *RejectionExpunge
}

// RejectionExpunge is when and why a rejected request's body was erased.
type RejectionExpunge struct {
	At     time.Time
	Reason string
}

func rejectionExpunge(at *time.Time, reason *string) *RejectionExpunge {
	if at == nil {
		return nil
	}
	x := &RejectionExpunge{At: *at}
	if reason != nil {
		x.Reason = *reason
	}
	return x
}

// Rejections lists the rejected requests kept after the row afterID (0:
// from the start), without their bodies, in id order, of one source when
// source is set. Ids are taken in commit order, as the access log's are.
func (s *Store) Rejections(ctx context.Context, afterID int64, source *string, limit int) ([]KeptRejection, error) {
	var rows []db.RejectedPageRow
	if source != nil {
		bySource, err := s.q.RejectedPageBySource(ctx, db.RejectedPageBySourceParams{Source: *source, AfterID: afterID, RowLimit: int32(limit)})
		if err != nil {
			return nil, interpretError(err)
		}
		for _, r := range bySource {
			rows = append(rows, db.RejectedPageRow(r))
		}
	} else {
		var err error
		rows, err = s.q.RejectedPage(ctx, db.RejectedPageParams{AfterID: afterID, RowLimit: int32(limit)})
		if err != nil {
			return nil, interpretError(err)
		}
	}
	out := make([]KeptRejection, len(rows))
	for i, r := range rows {
		out[i] = KeptRejection{ID: r.ID, Rejected: Rejected{ReceivedAt: r.ReceivedAt, Source: r.Source,
			EventType: r.EventType, Status: int(r.Status), Cause: r.Cause, Detail: r.Detail, Credential: r.Credential,
			ContentType: r.ContentType, BodySize: r.BodySize, BodyTruncated: r.BodyTruncated},
			Expunged: rejectionExpunge(r.ExpungedAt, r.ExpungeReason)}
	}
	return out, nil
}

// Rejection is one kept rejected request with its body; ErrNotFound when
// there is none with this id.
func (s *Store) Rejection(ctx context.Context, id int64) (KeptRejection, error) {
	r, err := s.q.RejectedGet(ctx, id)
	if err != nil {
		return KeptRejection{}, interpretError(err)
	}
	return KeptRejection{ID: r.ID, BodySHA256: r.BodySha256, Rejected: Rejected{ReceivedAt: r.ReceivedAt,
		Source: r.Source, EventType: r.EventType, Status: int(r.Status), Cause: r.Cause, Detail: r.Detail,
		Credential: r.Credential, ContentType: r.ContentType, Body: r.Body, BodySize: r.BodySize,
		BodyTruncated: r.BodyTruncated}, Expunged: rejectionExpunge(r.ExpungedAt, r.ExpungeReason)}, nil
}
