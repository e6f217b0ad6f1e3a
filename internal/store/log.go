package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/casetrail/casetrail/db"
)

// LogState is the tree after a sequencing round and the sequencer's position
// in commit order.
type LogState struct {
	Size        int64
	Root        []byte
	RangeHashes [][]byte // the compact range [0, Size)
	LastXid     int64
	LastEvent   int64
	At          time.Time
}

// LeafSource is what an event's leaf commits to.
type LeafSource struct {
	EventID                                                        int64
	CommitXid                                                      int64
	Source                                                         string
	Kind                                                           string
	Type                                                           string
	OccurredAt                                                     time.Time
	ReceivedAt                                                     time.Time
	CaseID, Phone, CustomerID, ConversationID, AgentID, WorkItemID *string
	// What the abandonment report counts by, besides the times and the phone.
	Queue         *string
	TimeInQueueMs *int64
	IsOutbound    *bool
	// What the event shows besides its body: the credential that sent it,
	// and the summary, actor, changes and before-* reply stored with it
	// (the JSON values as PostgreSQL gives them back, nil when null).
	Credential, Summary   string
	Actor, Changes, Reply []byte
	Salt                  []byte // the event's body salt
	BodyHash              []byte // SHA-256(salt || body)
	// What readers are shown of it besides: its content type, its
	// idempotency key, the plain SHA-256 of its body, and its indexed copy
	// (by SHA-256(salt || the document's text), nil when it has none) and
	// whether that copy had to change the body to hold it.
	ContentType, IdempotencyKey string
	BodySHA256, DocHash         []byte
	DocLossy                    bool
	// Expunged is set when the event's content was erased: BodyHash then
	// comes from the record of the expunge, and so does the detail's hash.
	Expunged *Expunged
}

// Expunged is the stored record of an event's erased content. Its
// Credential is the row's as it is now, so that checking the signed note
// against it checks the credential too.
type Expunged struct {
	ExpungeRecord
	Note string // the signed note over the record
	// Blank: the row's content is as blank as an expunge leaves it (read by
	// VerifyRows only).
	Blank bool
}

// expungedOf is the record of an expunged event; nil when at is (the event
// was not expunged).
func expungedOf(id int64, at *time.Time, reason *string, l LeafSource, detailHash []byte,
	blobs [][]byte, note *string) *Expunged {
	if at == nil {
		return nil
	}
	return &Expunged{Note: *note, ExpungeRecord: ExpungeRecord{EventID: id, At: *at, Reason: *reason,
		Credential: l.Credential, ContentType: l.ContentType, KeyHash: SaltedHash(l.Salt, []byte(l.IdempotencyKey)),
		BodyHash: l.BodyHash, DetailHash: detailHash, Blobs: blobs}}
}

// LogLeaf is one sequenced leaf.
type LogLeaf struct {
	Idx, EventID       int64
	LeafHash, BodyHash []byte
}

// LogNode is a perfect subtree hash above the leaves.
type LogNode struct {
	Key  int64 // level << 56 | index
	Hash []byte
}

// LogAppend is what one round adds.
type LogAppend struct {
	Leaves []LogLeaf
	Nodes  []LogNode
	State  LogState
}

// ErrNotLeader is returned when another sequencer holds the lock.
var ErrNotLeader = errors.New("another sequencer is running")

// ErrLogRewound stops a round that finds more rows it would pass over than
// direct writes of a second row under an id plausibly make: the log's
// position moved back (log_state rewritten), from which every row would be
// read, hashed and passed over again in every round. The log stops there,
// as it would have logging an event twice, until its state is put right.
var ErrLogRewound = errors.New("the log's position looks moved back: run casetrail verify")

// maxPassedOver is how many rows one round passes over before it stops
// with ErrLogRewound.
const maxPassedOver = 100

// SequenceRound runs one round in one transaction: it takes the sequencer
// lock (or returns ErrNotLeader), reads the latest state and up to limit
// committed events after it, lets build compute the leaves, nodes and new
// state, and stores them. It returns how many events were sequenced, and
// the ids of the rows it passed over because their id is the log's already
// (or that of a row before it in the round): only someone writing to the
// database directly stores a second row under an id, in another partition
// of the table, and a second leaf under one id cannot be stored. The log
// keeps the first row in commit order, goes on past the others, and verify
// reports the id. The round commits without waiting for its flush
// (LogRoundSettings in queries/log.sql): a round lost in a crash is redone
// alike.
func (s *Store) SequenceRound(ctx context.Context, limit int, build func(prev LogState, pending []LeafSource) (LogAppend, error)) (int, []int64, error) {
	n := 0
	var skipped []int64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		locked, err := q.LogLock(ctx)
		if err != nil {
			return err
		}
		if !locked {
			return ErrNotLeader
		}
		if err := q.LogRoundSettings(ctx); err != nil {
			return err
		}
		var prev LogState
		st, err := q.LogStateLatest(ctx)
		switch {
		case err == nil:
			prev = LogState{Size: st.Size, Root: st.Root, RangeHashes: st.RangeHashes, LastXid: st.LastXid, LastEvent: st.LastEvent, At: st.At}
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		// Pages are read until one holds an event to log: a state is
		// stored only with new leaves (its key is the tree's size), so a
		// page of passed-over rows alone would stop the log there.
		afterXid, afterEvent := prev.LastXid, prev.LastEvent
		var pending []LeafSource
		for len(pending) == 0 {
			rows, err := q.LogPending(ctx, db.LogPendingParams{AfterXid: afterXid, AfterEvent: afterEvent, RowLimit: int32(limit)})
			if err != nil || len(rows) == 0 {
				return err
			}
			ids := make([]int64, len(rows))
			for i, r := range rows {
				ids[i] = r.ID
			}
			logged, err := q.LogLoggedAmong(ctx, ids)
			if err != nil {
				return err
			}
			seen := make(map[int64]bool, len(rows)+len(logged))
			for _, id := range logged {
				seen[id] = true
			}
			for _, r := range rows {
				if seen[r.ID] {
					skipped = append(skipped, r.ID)
					continue
				}
				seen[r.ID] = true
				pending = append(pending, LeafSource{EventID: r.ID, CommitXid: r.CommitXid, Source: r.Source, Kind: r.Kind, Type: r.Type,
					OccurredAt: r.OccurredAt, ReceivedAt: r.ReceivedAt, CaseID: r.CaseID, Phone: r.Phone,
					CustomerID: r.CustomerID, ConversationID: r.ConversationID, AgentID: r.AgentID,
					WorkItemID: r.WorkItemID, Queue: r.Queue, TimeInQueueMs: r.TimeInQueueMs, IsOutbound: r.IsOutbound,
					Credential: r.Credential, Summary: r.Summary, Actor: r.Actor, Changes: r.Changes, Reply: r.Reply,
					Salt: r.BodySalt, BodyHash: r.BodyHash, ContentType: r.ContentType, IdempotencyKey: r.IdempotencyKey,
					BodySHA256: r.BodySha256, DocHash: r.DocHash, DocLossy: r.DocLossy})
			}
			if len(skipped) > maxPassedOver {
				return fmt.Errorf("%w: %d rows after the log's position in commit order carry ids of logged events", ErrLogRewound, len(skipped))
			}
			last := rows[len(rows)-1]
			afterXid, afterEvent = last.CommitXid, last.ID
			if len(rows) < limit {
				break
			}
		}
		if len(pending) == 0 {
			return nil
		}
		app, err := build(prev, pending)
		if err != nil {
			return err
		}
		leaves := make([]db.LogLeavesInsertParams, len(app.Leaves))
		for i, l := range app.Leaves {
			leaves[i] = db.LogLeavesInsertParams{Idx: l.Idx, EventID: l.EventID, LeafHash: l.LeafHash, BodyHash: l.BodyHash}
		}
		if _, err := q.LogLeavesInsert(ctx, leaves); err != nil {
			return err
		}
		if len(app.Nodes) > 0 {
			nodes := make([]db.LogNodesInsertParams, len(app.Nodes))
			for i, nd := range app.Nodes {
				nodes[i] = db.LogNodesInsertParams{NodeKey: nd.Key, Hash: nd.Hash}
			}
			if _, err := q.LogNodesInsert(ctx, nodes); err != nil {
				return err
			}
		}
		n = len(app.Leaves)
		// The position is the last leaf's event's, as verify holds it to:
		// rows passed over after it are read again by the next round.
		return q.LogStateInsert(ctx, db.LogStateInsertParams{Size: app.State.Size, Root: app.State.Root,
			RangeHashes: app.State.RangeHashes, LastXid: app.State.LastXid, LastEvent: app.State.LastEvent})
	})
	if err != nil {
		return 0, nil, err // the error says what the round found
	}
	return n, skipped, nil
}

// LatestLogState returns the tree after the last round (size 0 when none).
func (s *Store) LatestLogState(ctx context.Context) (LogState, error) {
	st, err := s.q.LogStateLatest(ctx)
	if errors.Is(err, pgx.ErrNoRows) {
		return LogState{}, nil
	}
	if err != nil {
		return LogState{}, interpretError(err)
	}
	return LogState{Size: st.Size, Root: st.Root, RangeHashes: st.RangeHashes, LastXid: st.LastXid, LastEvent: st.LastEvent, At: st.At}, nil
}

// LeafOf returns an event's log index and leaf hash, or ErrNotFound while it
// is not sequenced.
func (s *Store) LeafOf(ctx context.Context, eventID int64) (int64, []byte, error) {
	l, err := s.q.LogLeafByEvent(ctx, eventID)
	if err != nil {
		return 0, nil, interpretError(err)
	}
	return l.Idx, l.LeafHash, nil
}

// LeafHashes returns leaf hashes by index.
func (s *Store) LeafHashes(ctx context.Context, idx []int64) (map[int64][]byte, error) {
	rows, err := s.q.LogLeafHashes(ctx, idx)
	if err != nil {
		return nil, interpretError(err)
	}
	out := make(map[int64][]byte, len(rows))
	for _, r := range rows {
		out[r.Idx] = r.LeafHash
	}
	return out, nil
}

// NodeHashes returns perfect subtree hashes by key.
func (s *Store) NodeHashes(ctx context.Context, keys []int64) (map[int64][]byte, error) {
	rows, err := s.q.LogNodeHashes(ctx, keys)
	if err != nil {
		return nil, interpretError(err)
	}
	out := make(map[int64][]byte, len(rows))
	for _, r := range rows {
		out[r.NodeKey] = r.Hash
	}
	return out, nil
}

// Checkpoint is a signed checkpoint as stored.
type Checkpoint struct {
	ID   int64
	Size int64
	Root []byte
	Note string
	At   time.Time
}

// AddCheckpoint stores a signed checkpoint if check, given the newest
// stored checkpoint (nil when there is none), returns nil; check's error is
// returned as it is. Signers take turns under a lock, so two servers cannot
// both store a first checkpoint, each signed with a key of its own. A
// checkpoint of a smaller tree than the newest is not stored (a server that
// read the tree before another signed a larger one): the newest checkpoint
// never shrinks.
func (s *Store) AddCheckpoint(ctx context.Context, size int64, root []byte, note string, check func(latest *Checkpoint) error) error {
	var refused error
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		if err := q.LogCheckpointLock(ctx); err != nil {
			return err
		}
		var latest *Checkpoint
		switch c, err := q.LogCheckpointLatest(ctx); {
		case err == nil:
			cp := Checkpoint(c)
			latest = &cp
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		if refused = check(latest); refused != nil {
			return refused
		}
		if latest != nil && size < latest.Size {
			return nil
		}
		return q.LogCheckpointInsert(ctx, db.LogCheckpointInsertParams{Size: size, Root: root, Note: note})
	})
	if refused != nil {
		return refused
	}
	return err
}

// CheckpointsMentioning returns, oldest first, the notes of the stored
// checkpoints that hold text (the start of a key's signature line), for
// the caller to verify: a line alone proves nothing.
func (s *Store) CheckpointsMentioning(ctx context.Context, text string) ([]string, error) {
	notes, err := s.q.LogCheckpointsMentioning(ctx, text)
	return notes, interpretError(err)
}

// LatestCheckpoint returns the newest checkpoint, or ErrNotFound.
func (s *Store) LatestCheckpoint(ctx context.Context) (Checkpoint, error) {
	c, err := s.q.LogCheckpointLatest(ctx)
	if err != nil {
		return Checkpoint{}, interpretError(err)
	}
	return Checkpoint(c), nil
}

// Checkpoints lists checkpoints after an id, oldest first.
func (s *Store) Checkpoints(ctx context.Context, afterID int64, limit int) ([]Checkpoint, error) {
	rows, err := s.q.LogCheckpointList(ctx, db.LogCheckpointListParams{AfterID: afterID, RowLimit: int32(limit)})
	if err != nil {
		return nil, interpretError(err)
	}
	out := make([]Checkpoint, len(rows))
	for i, r := range rows {
		out[i] = Checkpoint(r)
	}
	return out, nil
}

// VerifyRow is a leaf with the event row it should commit to; Source is
// nil when the row is gone.
type VerifyRow struct {
	Idx, EventID int64
	LeafHash     []byte
	Present      bool
	Leaf         LeafSource
	// BodySHA256Matches: the row's plain SHA-256 is its body's.
	BodySHA256Matches bool
	// BadAttachment is the first attachment the event's document refers to
	// that is not stored as it was: altered when AttachmentStored, else gone.
	BadAttachment    []byte
	AttachmentStored bool
	// Unreferenced is the first stored attachment the event's document
	// refers to for which event_attachments holds no reference of the
	// event's.
	Unreferenced []byte
}

// VerifyRows reads leaves from index from, in log order.
func (s *Store) VerifyRows(ctx context.Context, from int64, limit int) ([]VerifyRow, error) {
	rows, err := s.q.LogVerifyRows(ctx, db.LogVerifyRowsParams{FromIdx: from, RowLimit: int32(limit)})
	if err != nil {
		return nil, interpretError(err)
	}
	out := make([]VerifyRow, len(rows))
	for i, r := range rows {
		v := VerifyRow{Idx: r.Idx, EventID: r.EventID, LeafHash: r.LeafHash, Present: r.RowID != nil}
		if v.Present {
			v.Leaf = LeafSource{EventID: *r.RowID, Source: *r.Source, Kind: *r.Kind, Type: *r.Type,
				OccurredAt: *r.OccurredAt, ReceivedAt: *r.ReceivedAt, CaseID: r.CaseID, Phone: r.Phone,
				CustomerID: r.CustomerID, ConversationID: r.ConversationID, AgentID: r.AgentID,
				WorkItemID: r.WorkItemID, Queue: r.Queue, TimeInQueueMs: r.TimeInQueueMs, IsOutbound: r.IsOutbound,
				Credential: *r.Credential, Summary: *r.Summary, Actor: r.Actor, Changes: r.Changes, Reply: r.Reply,
				Salt: r.BodySalt, BodyHash: r.BodyHash, ContentType: *r.ContentType, IdempotencyKey: *r.IdempotencyKey,
				BodySHA256: r.BodySha256, DocHash: r.DocHash, DocLossy: *r.DocLossy}
			v.BodySHA256Matches = r.BodySha256Matches
			v.BadAttachment, v.AttachmentStored = r.BadAttachment, r.BadAttachmentStored
			v.Unreferenced = r.Unreferenced
			v.Leaf.Expunged = expungedOf(v.EventID, r.ExpungedAt, r.ExpungeReason, v.Leaf,
				r.ExpungedDetailHash, r.ExpungedBlobs, r.ExpungeNote)
			if v.Leaf.Expunged != nil {
				v.Leaf.Expunged.Blank = r.Blank != nil && *r.Blank
			}
		}
		out[i] = v
	}
	return out, nil
}

// Unlogged returns events that sit behind the sequencer's position in commit
// order but have no leaf, events whose commit_xid no transaction has had,
// and event ids stored twice: rows slipped in.
func (s *Store) Unlogged(ctx context.Context, st LogState) ([]int64, error) {
	ids, err := s.q.LogUnsequenced(ctx, db.LogUnsequencedParams{LastXid: st.LastXid, LastEvent: st.LastEvent})
	if err != nil {
		return nil, interpretError(err)
	}
	ahead, err := s.q.LogAheadOfEveryTransaction(ctx)
	if err != nil {
		return nil, interpretError(err)
	}
	ids = append(ids, ahead...)
	dups, err := s.q.LogDuplicateEventIDs(ctx)
	if err != nil {
		return nil, interpretError(err)
	}
	return append(ids, dups...), nil
}

// EventCommitXid is the transaction id an event's row is ordered by in
// commit order (ErrNotFound when there is no such row).
func (s *Store) EventCommitXid(ctx context.Context, id int64) (int64, error) {
	xid, err := s.q.LogEventCommitXid(ctx, id)
	if err != nil {
		return 0, interpretError(err)
	}
	return xid, nil
}

// UnloggedBetween is the first event in commit order strictly between the
// positions (afterXid, afterEvent) and (beforeXid, beforeEvent) that no leaf
// holds; ErrNotFound when there is none.
func (s *Store) UnloggedBetween(ctx context.Context, afterXid, afterEvent, beforeXid, beforeEvent int64) (int64, error) {
	id, err := s.q.LogUnloggedBetween(ctx, db.LogUnloggedBetweenParams{AfterXid: afterXid, AfterEvent: afterEvent,
		BeforeXid: beforeXid, BeforeEvent: beforeEvent})
	if err != nil {
		return 0, interpretError(err)
	}
	return id, nil
}

// NodesOutsideTree lists the keys of stored subtree hashes that cover
// leaves past the tree of the given size (or that no subtree has).
func (s *Store) NodesOutsideTree(ctx context.Context, size int64) ([]int64, error) {
	keys, err := s.q.LogNodesOutsideTree(ctx, size)
	return keys, interpretError(err)
}

// LeafAt is a leaf's position and event.
type LeafAt struct {
	Idx     int64
	EventID int64
}

// LeavesBelowZero lists the leaves stored at a negative index, which no
// tree holds: only a hand that wrote them past the sequencer puts them
// there.
func (s *Store) LeavesBelowZero(ctx context.Context) ([]LeafAt, error) {
	rows, err := s.q.LogLeavesBelowZero(ctx)
	if err != nil {
		return nil, interpretError(err)
	}
	out := make([]LeafAt, len(rows))
	for i, r := range rows {
		out[i] = LeafAt{Idx: r.Idx, EventID: r.EventID}
	}
	return out, nil
}

// BundleRow is an event with what an offline auditor needs to recompute its
// leaf: the body (none for an expunged event), and the salt and the body
// hash in Leaf.
type BundleRow struct {
	Leaf  LeafSource
	Body  []byte
	Index int64
}

// BundleRows reads the events with the given ids that are in the log.
func (s *Store) BundleRows(ctx context.Context, ids []int64) ([]BundleRow, error) {
	rows, err := s.q.LogBundleRows(ctx, ids)
	if err != nil {
		return nil, interpretError(err)
	}
	out := make([]BundleRow, len(rows))
	for i, r := range rows {
		l := LeafSource{EventID: r.ID, Source: r.Source,
			Kind: r.Kind, Type: r.Type, OccurredAt: r.OccurredAt, ReceivedAt: r.ReceivedAt, CaseID: r.CaseID,
			Phone: r.Phone, CustomerID: r.CustomerID, ConversationID: r.ConversationID, AgentID: r.AgentID,
			WorkItemID: r.WorkItemID, Queue: r.Queue, TimeInQueueMs: r.TimeInQueueMs, IsOutbound: r.IsOutbound,
			Credential: r.Credential, Summary: r.Summary, Actor: r.Actor, Changes: r.Changes, Reply: r.Reply,
			Salt: r.BodySalt, BodyHash: r.BodyHash, ContentType: r.ContentType, IdempotencyKey: r.IdempotencyKey,
			BodySHA256: r.BodySha256, DocHash: r.DocHash, DocLossy: r.DocLossy}
		l.Expunged = expungedOf(r.ID, r.ExpungedAt, r.ExpungeReason, l, r.ExpungedDetailHash, r.ExpungedBlobs, r.ExpungeNote)
		out[i] = BundleRow{Body: r.Body, Index: r.Idx, Leaf: l}
	}
	return out, nil
}

// LogIndexes maps each of the given events that the log holds to its
// position in it.
func (s *Store) LogIndexes(ctx context.Context, ids []int64) (map[int64]int64, error) {
	rows, err := s.q.LogIndexesOf(ctx, ids)
	if err != nil {
		return nil, interpretError(err)
	}
	idx := make(map[int64]int64, len(rows))
	for _, r := range rows {
		idx[r.EventID] = r.Idx
	}
	return idx, nil
}

// EventsReceived lists the events received in [from, to), logged or not.
func (s *Store) EventsReceived(ctx context.Context, from, to time.Time) ([]int64, error) {
	ids, err := s.q.EventsReceivedBetween(ctx, db.EventsReceivedBetweenParams{FromAt: from, ToAt: to})
	return ids, interpretError(err)
}

// UnsequencedCount counts committed events the log does not hold yet.
func (s *Store) UnsequencedCount(ctx context.Context) (int64, error) {
	st, err := s.LatestLogState(ctx)
	if err != nil {
		return 0, err
	}
	n, err := s.q.LogUnsequencedCount(ctx, db.LogUnsequencedCountParams{LastXid: st.LastXid, LastEvent: st.LastEvent})
	return n, interpretError(err)
}

// AlteredBlobs returns attachments whose content no longer has the SHA-256
// or the size they are stored under (ten at most).
func (s *Store) AlteredBlobs(ctx context.Context) ([][]byte, error) {
	hs, err := s.q.LogAlteredBlobs(ctx)
	return hs, interpretError(err)
}

// AttachmentRef is a row of event_attachments: event EventID refers to the
// attachment SHA256.
type AttachmentRef struct {
	EventID int64
	SHA256  []byte
}

// AttachmentRefsUnfounded lists references that no stored document
// accounts for, ten at most, in order of event id (LogAttachmentRefsUnfounded
// says which are checked).
func (s *Store) AttachmentRefsUnfounded(ctx context.Context) ([]AttachmentRef, error) {
	rows, err := s.q.LogAttachmentRefsUnfounded(ctx)
	if err != nil {
		return nil, interpretError(err)
	}
	out := make([]AttachmentRef, len(rows))
	for i, r := range rows {
		out[i] = AttachmentRef{EventID: r.EventID, SHA256: r.Sha256}
	}
	return out, nil
}

// ErasedBlob is an attachment an expunge removed, and the first expunged
// event whose record lists it.
type ErasedBlob struct {
	SHA256  []byte
	EventID int64
}

// ErasedBlobsBack lists the attachments an expunge removed that are stored
// again although no event refers to them: erased content put back.
func (s *Store) ErasedBlobsBack(ctx context.Context) ([]ErasedBlob, error) {
	rows, err := s.q.LogErasedBlobsBack(ctx)
	if err != nil {
		return nil, interpretError(err)
	}
	out := make([]ErasedBlob, len(rows))
	for i, r := range rows {
		out[i] = ErasedBlob{SHA256: r.Sha256, EventID: r.EventID}
	}
	return out, nil
}
