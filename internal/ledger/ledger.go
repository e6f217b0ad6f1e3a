// Package ledger keeps casetrail's tamper-evident log: an append-only RFC
// 6962 Merkle tree with one leaf per stored event, assigned by a single
// sequencer after commit; signed checkpoints (C2SP tlog-checkpoint in an
// Ed25519 signed note); inclusion and consistency proofs; and the
// verification that recomputes everything from the stored rows.
package ledger

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/casetrail/casetrail/internal/store"
)

var hasher = rfc6962.DefaultHasher

var rangeFactory = compact.RangeFactory{Hash: hasher.HashChildren}

// leafData is what a leaf commits to, in a fixed field order. The body enters
// only through its salted hash, so the body can be expunged later and the
// leaf still verifies, and nobody can test a guess of its content against a
// published hash.
//
// Version 2 adds what the abandonment report counts by (queue, time in
// queue, outbound), absent when null. Version 3 adds what the event shows
// besides its body (the credential that sent it, its summary, actor and
// changes, and the reply a before-* hook was sent) through a hash salted
// like the body's, since a summary or an actor can name a person. Version 4
// adds the rest readers are shown to that detail: the content type, the
// idempotency key, the body's plain SHA-256 and the indexed copy of the
// body (by its salted hash), so that no column of an event can change
// without its leaf. Leaves of earlier versions, from stores sequenced
// before, lack them and still verify (leafMatches).
type leafData struct {
	Version        int     `json:"v"`
	EventID        int64   `json:"id"`
	Source         string  `json:"source"`
	Kind           string  `json:"kind"`
	Type           string  `json:"type"`
	OccurredAt     string  `json:"occurredAt"`
	ReceivedAt     string  `json:"receivedAt"`
	CaseID         *string `json:"caseId"`
	Phone          *string `json:"phone"`
	CustomerID     *string `json:"customerId"`
	ConversationID *string `json:"conversationId"`
	AgentID        *string `json:"agentId"`
	WorkItemID     *string `json:"workItemId"`
	Queue          *string `json:"queue,omitempty"`
	TimeInQueueMs  *int64  `json:"timeInQueueMs,omitempty"`
	IsOutbound     *bool   `json:"isOutbound,omitempty"`
	DetailHash     string  `json:"detailHash,omitempty"` // version 3
	BodyHash       string  `json:"bodyHash"`
}

// detail is what a leaf's detail hash is taken over (version 3 on):
// SHA-256(salt || these as JSON), the JSON values compact and absent when
// null; the fields of version 4 are absent from an earlier leaf's detail.
type detail struct {
	Credential string          `json:"credential"`
	Summary    string          `json:"summary"`
	Actor      json.RawMessage `json:"actor,omitempty"`
	Changes    json.RawMessage `json:"changes,omitempty"`
	Reply      json.RawMessage `json:"reply,omitempty"`
	// Version 4.
	ContentType    *string `json:"contentType,omitempty"`
	IdempotencyKey *string `json:"idempotencyKey,omitempty"`
	BodySHA256     *string `json:"bodySha256,omitempty"` // hex
	// DocHash is SHA-256(salt || the indexed copy's text), hex; absent when
	// the event has none.
	DocHash  string `json:"docHash,omitempty"`
	DocLossy bool   `json:"docLossy,omitempty"`
}

// saltSize is the length of every body salt the store makes (migration
// 00003). A leaf holds SHA-256(salt || body), which stays the same when
// bytes move from the front of the body to the end of the salt: the fixed
// length is what tells such a cut body, where the leaf commits to nothing
// else salted (before version 3).
const saltSize = 32

// leafVersion is the version of the leaves the sequencer writes; the
// versions before it still verify.
const leafVersion = 4

// LeafData is the canonical leaf data of an event.
func LeafData(l store.LeafSource) []byte { return leafDataOf(l, leafVersion) }

func leafDataOf(l store.LeafSource, version int) []byte {
	d := leafData{
		Version: version, EventID: l.EventID, Source: l.Source, Kind: l.Kind, Type: l.Type,
		OccurredAt: l.OccurredAt.UTC().Format(time.RFC3339Nano), ReceivedAt: l.ReceivedAt.UTC().Format(time.RFC3339Nano),
		CaseID: l.CaseID, Phone: l.Phone, CustomerID: l.CustomerID, ConversationID: l.ConversationID,
		AgentID: l.AgentID, WorkItemID: l.WorkItemID, BodyHash: hex.EncodeToString(l.BodyHash),
	}
	if version >= 2 {
		d.Queue, d.TimeInQueueMs, d.IsOutbound = l.Queue, l.TimeInQueueMs, l.IsOutbound
	}
	if version >= 3 {
		if l.Expunged != nil {
			d.DetailHash = hex.EncodeToString(l.Expunged.DetailHash)
		} else {
			d.DetailHash = hex.EncodeToString(store.SaltedHash(l.Salt, detailOf(l, version)))
		}
	}
	raw, _ := json.Marshal(d)
	return raw
}

// detailOf is the JSON the detail hash of a leaf of the given version (3
// on) is taken over.
func detailOf(l store.LeafSource, version int) []byte {
	d := detail{Credential: l.Credential, Summary: l.Summary,
		Actor: jsonValue(l.Actor), Changes: jsonValue(l.Changes), Reply: jsonValue(l.Reply)}
	if version >= 4 {
		sha := hex.EncodeToString(l.BodySHA256)
		d.ContentType, d.IdempotencyKey, d.BodySHA256 = &l.ContentType, &l.IdempotencyKey, &sha
		d.DocHash, d.DocLossy = hex.EncodeToString(l.DocHash), l.DocLossy
	}
	raw, err := json.Marshal(d)
	if err != nil {
		// A stored JSON value that is not JSON: commit to its text instead,
		// which still changes with every change of it.
		d.Actor, d.Changes, d.Reply = jsonText(l.Actor), jsonText(l.Changes), jsonText(l.Reply)
		raw, _ = json.Marshal(d)
	}
	return raw
}

// jsonValue is a stored JSON value as the detail holds it: nil when null.
// Marshalling compacts it, so the hash does not depend on the spacing
// PostgreSQL gives it back with.
func jsonValue(v []byte) json.RawMessage {
	if v == nil || string(v) == "null" {
		return nil
	}
	return v
}

// jsonText is v as a JSON string: nil when null.
func jsonText(v []byte) json.RawMessage {
	if v == nil {
		return nil
	}
	raw, _ := json.Marshal(string(v))
	return raw
}

// leafMatches reports whether the event's row hashes to the stored leaf, as
// a leaf of the current version or of an earlier one. Accepting each is
// sound: the version is inside what is hashed, so a row changed after its
// leaf was written matches none.
func leafMatches(l store.LeafSource, stored []byte) bool {
	_, v := matchingLeaf(l, stored)
	return v != 0
}

// matchingLeaf is the leaf data of the version the stored leaf hash was
// written from, newest first, and that version; 0 when none matches.
func matchingLeaf(l store.LeafSource, stored []byte) ([]byte, int) {
	for v := leafVersion; v >= 1; v-- {
		data := leafDataOf(l, v)
		if bytes.Equal(hasher.HashLeaf(data), stored) {
			return data, v
		}
	}
	return nil, 0
}

// storedLevel is the lowest level of the perfect subtree hashes the log
// stores. A proof hashes a lower node from its leaves (eight at most), which
// spares the sequencer seven in eight node rows: storing every node cost
// the write path about 7% of its rate at 64 senders (docs/benchmarks.md).
// Nodes below it that an older build stored are not read.
const storedLevel = 4

// NodeKey packs a node id into one column.
func NodeKey(id compact.NodeID) int64 { return int64(id.Level)<<56 | int64(id.Index) }

// rootOf returns the root of a compact range starting at 0 (the empty tree's
// root, SHA-256 of nothing, when it is empty).
func rootOf(r *compact.Range) ([]byte, error) {
	if r.End() == 0 {
		return hasher.EmptyRoot(), nil
	}
	return r.GetRootHash(nil)
}

// Sequencer assigns log positions to committed events. Any number may run
// (one per server); a database lock lets one work at a time.
type Sequencer struct {
	Store *store.Store
	Log   *slog.Logger
	// Batch bounds the events of one round.
	Batch int
	// version of the leaves it writes; 0 is leafVersion. Tests set an
	// earlier one to write a store as an earlier build did.
	version int

	mu     sync.Mutex
	warned map[int64]bool // rows passed over that were logged already
}

// build extends the previous tree with the pending events, as leaves of
// the given version.
func build(prev store.LogState, pending []store.LeafSource, version int) (store.LogAppend, error) {
	rng, err := rangeFactory.NewRange(0, uint64(prev.Size), prev.RangeHashes)
	if err != nil {
		return store.LogAppend{}, fmt.Errorf("stored tree state is inconsistent: %w", err)
	}
	app := store.LogAppend{}
	visit := func(id compact.NodeID, hash []byte) {
		if id.Level >= storedLevel {
			app.Nodes = append(app.Nodes, store.LogNode{Key: NodeKey(id), Hash: hash})
		}
	}
	for i, p := range pending {
		leaf := hasher.HashLeaf(leafDataOf(p, version))
		app.Leaves = append(app.Leaves, store.LogLeaf{Idx: prev.Size + int64(i), EventID: p.EventID, LeafHash: leaf, BodyHash: p.BodyHash})
		if err := rng.Append(leaf, visit); err != nil {
			return store.LogAppend{}, err
		}
	}
	root, err := rootOf(rng)
	if err != nil {
		return store.LogAppend{}, err
	}
	last := pending[len(pending)-1]
	app.State = store.LogState{Size: int64(rng.End()), Root: root, RangeHashes: rng.Hashes(), LastXid: last.CommitXid, LastEvent: last.EventID}
	return app, nil
}

// Step sequences every event committed so far and returns how many it
// added; 0 with ErrNotLeader when another sequencer holds the lock.
func (s *Sequencer) Step(ctx context.Context) (int, error) {
	batch := s.Batch
	if batch <= 0 {
		batch = 5000
	}
	total := 0
	for {
		n, skipped, err := s.Store.SequenceRound(ctx, batch, func(prev store.LogState, pending []store.LeafSource) (store.LogAppend, error) {
			return build(prev, pending, cmp.Or(s.version, leafVersion))
		})
		s.warnSkipped(skipped)
		total += n
		if err != nil || n < batch {
			return total, err
		}
	}
}

// warnSkipped logs, once per id, the rows a round passed over because
// their id is that of a logged event: written to the database directly,
// since no write path of casetrail stores an id twice.
func (s *Sequencer) warnSkipped(ids []int64) {
	if len(ids) == 0 || s.Log == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.warned == nil {
		s.warned = map[int64]bool{}
	}
	for _, id := range ids {
		if s.warned[id] || len(s.warned) >= 1000 {
			continue
		}
		s.warned[id] = true
		s.Log.Warn("sequencer: a second row carries the id of an event the log holds; the log keeps the first in commit order and leaves this one out, and casetrail verify reports it",
			"event", id)
	}
}

// Drain sequences until every event committed so far is in the log, or ctx
// ends. A round can be held back by a transaction still in flight that it
// cannot tell apart from this database's own; Drain waits it out, so that at
// shutdown every acknowledged event is sequenced.
func (s *Sequencer) Drain(ctx context.Context) error {
	for {
		if _, err := s.Step(ctx); err != nil && !errors.Is(err, store.ErrNotLeader) {
			return err
		}
		pending, err := s.Store.UnsequencedCount(ctx)
		if err != nil || pending == 0 {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d events still unsequenced: %w", pending, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Run sequences every interval until ctx ends, and signs checkpoints with
// cp when the log grew (every CheckpointEvery) or at least hourly.
func (s *Sequencer) Run(ctx context.Context, interval time.Duration, cp *Checkpointer) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.Step(ctx); err != nil && !errors.Is(err, store.ErrNotLeader) && ctx.Err() == nil {
			s.Log.Warn("sequencer", "err", err)
		}
		if cp != nil {
			if err := cp.Maybe(ctx, time.Now()); err != nil && ctx.Err() == nil {
				s.Log.Warn("checkpoint", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Proof is an inclusion proof as the API answers it.
type Proof struct {
	LeafIndex int64    `json:"leafIndex"`
	TreeSize  int64    `json:"treeSize"`
	LeafHash  string   `json:"leafHash"`
	Hashes    []string `json:"hashes"`
}

// ConsistencyProof is a consistency proof as the API answers it.
type ConsistencyProof struct {
	From   int64    `json:"from"`
	To     int64    `json:"to"`
	Hashes []string `json:"hashes"`
}

// ErrBadSize is a tree size the log cannot prove against.
var ErrBadSize = errors.New("tree size out of range")

// Inclusion proves that an event's leaf is in the tree of the given size
// (0: the current size).
func Inclusion(ctx context.Context, st *store.Store, eventID, size int64) (Proof, error) {
	idx, leaf, err := st.LeafOf(ctx, eventID)
	if err != nil {
		return Proof{}, err
	}
	cur, err := st.LatestLogState(ctx)
	if err != nil {
		return Proof{}, err
	}
	if size == 0 {
		size = cur.Size
	}
	if size <= idx || size > cur.Size {
		return Proof{}, fmt.Errorf("%w: the event has index %d and the log has %d leaves", ErrBadSize, idx, cur.Size)
	}
	nodes, err := proof.Inclusion(uint64(idx), uint64(size))
	hashes, err := proofHashes(ctx, st, nodes, err)
	if err != nil {
		return Proof{}, err
	}
	return Proof{LeafIndex: idx, TreeSize: size, LeafHash: b64(leaf), Hashes: b64s(hashes)}, nil
}

// Consistency proves that the tree of size from is a prefix of the tree of
// size to.
func Consistency(ctx context.Context, st *store.Store, from, to int64) (ConsistencyProof, error) {
	cur, err := st.LatestLogState(ctx)
	if err != nil {
		return ConsistencyProof{}, err
	}
	if from < 0 || to < from || to > cur.Size {
		return ConsistencyProof{}, fmt.Errorf("%w: need 0 <= from <= to <= %d", ErrBadSize, cur.Size)
	}
	nodes, err := proof.Consistency(uint64(from), uint64(to))
	hashes, err := proofHashes(ctx, st, nodes, err)
	if err != nil {
		return ConsistencyProof{}, err
	}
	return ConsistencyProof{From: from, To: to, Hashes: b64s(hashes)}, nil
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func b64s(bs [][]byte) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b64(b)
	}
	return out
}

// Service answers the log's read routes.
type Service struct {
	Store *store.Store
	Keys  *Keys
	// Checkpointer, when set, is this server's signer: while it refuses to
	// sign (its key did not sign the stored checkpoints), the server has no
	// key to give.
	Checkpointer *Checkpointer
}

// VerifierKey is the public key that checks checkpoints, or "" when this
// server's key is not the log's.
func (s *Service) VerifierKey() string {
	if s.Checkpointer != nil && s.Checkpointer.Refusing() {
		return ""
	}
	return s.Keys.VerifierKey
}

// Inclusion proves an event's leaf in the tree of the given size.
func (s *Service) Inclusion(ctx context.Context, eventID, size int64) (Proof, error) {
	return Inclusion(ctx, s.Store, eventID, size)
}

// Consistency proves that one tree size is a prefix of another.
func (s *Service) Consistency(ctx context.Context, from, to int64) (ConsistencyProof, error) {
	return Consistency(ctx, s.Store, from, to)
}

// LatestCheckpoint is the newest signed checkpoint.
func (s *Service) LatestCheckpoint(ctx context.Context) (store.Checkpoint, error) {
	return s.Store.LatestCheckpoint(ctx)
}

// Checkpoints lists signed checkpoints after an id.
func (s *Service) Checkpoints(ctx context.Context, afterID int64, limit int) ([]store.Checkpoint, error) {
	return s.Store.Checkpoints(ctx, afterID, limit)
}
