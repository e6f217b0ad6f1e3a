package ledger_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/casetrail/casetrail/internal/dbtest"
	"github.com/casetrail/casetrail/internal/ledger"
	"github.com/casetrail/casetrail/internal/store"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

type testBundle struct {
	db    *dbtest.DB
	store *store.Store
	seq   *ledger.Sequencer
	cp    *ledger.Checkpointer
	keys  *ledger.Keys
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	d := dbtest.New(t)
	st, err := store.Open(context.Background(), d.URL, store.Options{})
	require.NoError(t, err)
	t.Cleanup(st.Close)
	keys, err := ledger.LoadKeys("", t.TempDir(), "casetrail.test")
	require.NoError(t, err)
	return &testBundle{
		db: d, store: st, keys: keys,
		seq: &ledger.Sequencer{Store: st, Log: dbtest.Logger(t)},
		cp:  &ledger.Checkpointer{Store: st, Keys: keys, Origin: "casetrail.test/log", Every: 0, MaxAge: time.Hour},
	}
}

func newEvent(i int) store.NewEvent {
	body := []byte(fmt.Sprintf(`{"event":"CHANGE_CASE_STATUS","payload":{"caseId":"c-%d","n":%d}}`, i%7, i))
	now := time.Now().UTC()
	caseID := fmt.Sprintf("c-%d", i%7)
	return store.NewEvent{ReceivedAt: now, OccurredAt: now, Source: "case-updates", Kind: "case-updates",
		Type: "CHANGE_CASE_STATUS", Credential: "test", IdempotencyKey: fmt.Sprintf("k-%d", i), ExplicitKey: true,
		CaseID: caseID, Body: body, BodySHA256: sha256.Sum256(body), Doc: body}
}

// ingest stores events one per transaction and returns their ids.
func (b *testBundle) ingest(t *testing.T, from, n int) []int64 {
	t.Helper()
	var ids []int64
	for i := from; i < from+n; i++ {
		res, err := b.store.Ingest(context.Background(), []store.NewEvent{newEvent(i)})
		require.NoError(t, err)
		ids = append(ids, res[0].ID)
	}
	return ids
}

// sequenceAndSign sequences what is committed and signs a checkpoint.
func (b *testBundle) sequenceAndSign(t *testing.T) store.LogState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, b.seq.Drain(ctx))
	st, err := b.store.LatestLogState(ctx)
	require.NoError(t, err)
	require.NoError(t, b.cp.Sign(ctx, st))
	return st
}

// tamper runs SQL as the superuser with triggers off, as an intruder with
// full database access would.
func (b *testBundle) tamper(t *testing.T, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, b.db.URL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "SET session_replication_role = replica")
	require.NoError(t, err)
	_, err = conn.Exec(ctx, sql, args...)
	require.NoError(t, err)
}

func (b *testBundle) verify(t *testing.T) error {
	t.Helper()
	_, err := ledger.Verify(context.Background(), b.store, b.keys.Chain(), nil)
	return err
}

func TestSequenceProveAndVerify(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	ids := b.ingest(t, 0, 20)
	st := b.sequenceAndSign(t)
	require.EqualValues(t, 20, st.Size)
	more := b.ingest(t, 20, 13)
	st2 := b.sequenceAndSign(t)
	require.EqualValues(t, 33, st2.Size)
	rep, err := ledger.Verify(ctx, b.store, b.keys.Chain(), nil)
	require.NoError(t, err)
	require.EqualValues(t, 33, rep.Leaves)
	require.Equal(t, 2, rep.Checkpoints)

	// Inclusion proofs verify against the signed roots.
	for _, id := range append(ids, more...) {
		p, err := ledger.Inclusion(ctx, b.store, id, st2.Size)
		require.NoError(t, err)
		leaf, _ := base64.StdEncoding.DecodeString(p.LeafHash)
		require.NoError(t, proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(p.LeafIndex), uint64(p.TreeSize), leaf, decode(t, p.Hashes), st2.Root))
	}
	p, err := ledger.Inclusion(ctx, b.store, ids[3], st.Size)
	require.NoError(t, err)
	leaf, _ := base64.StdEncoding.DecodeString(p.LeafHash)
	require.NoError(t, proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(p.LeafIndex), 20, leaf, decode(t, p.Hashes), st.Root))
	_, err = ledger.Inclusion(ctx, b.store, more[0], st.Size)
	require.ErrorIs(t, err, ledger.ErrBadSize, "an event after the tree size cannot be proven in it")

	// Consistency between every pair of stored checkpoints.
	cps, err := b.store.Checkpoints(ctx, 0, 100)
	require.NoError(t, err)
	for _, a := range cps {
		for _, c := range cps {
			if a.Size > c.Size {
				continue
			}
			cp, err := ledger.Consistency(ctx, b.store, a.Size, c.Size)
			require.NoError(t, err)
			require.NoError(t, proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(a.Size), uint64(c.Size), decode(t, cp.Hashes), a.Root, c.Root))
		}
	}
}

// The log stores subtree hashes from level 4 up; proofs hash the lower ones
// from the leaves. Every inclusion and consistency proof between trees of
// sizes on both sides of those levels verifies.
func TestProofsHashLowSubtreesFromLeaves(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	var ids []int64
	var states []store.LogState
	for _, size := range []int{1, 3, 8, 15, 16, 17, 40, 71} {
		ids = append(ids, b.ingest(t, len(ids), size-len(ids))...)
		st := b.sequenceAndSign(t)
		require.EqualValues(t, size, st.Size)
		states = append(states, st)
	}

	conn := b.db.Connect(t)
	var low, high int
	require.NoError(t, conn.QueryRow(ctx,
		"SELECT count(*) FILTER (WHERE node_key >> 56 < 4), count(*) FILTER (WHERE node_key >> 56 >= 4) FROM log_nodes").Scan(&low, &high))
	require.Zero(t, low, "no subtree below level 4 is stored")
	require.Equal(t, 4+2+1, high, "71 leaves hold four subtrees of 16, two of 32 and one of 64")

	for _, st := range states {
		for i, id := range ids[:st.Size] {
			p, err := ledger.Inclusion(ctx, b.store, id, st.Size)
			require.NoError(t, err)
			require.EqualValues(t, i, p.LeafIndex)
			leaf, _ := base64.StdEncoding.DecodeString(p.LeafHash)
			require.NoError(t, proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(i), uint64(st.Size), leaf, decode(t, p.Hashes), st.Root),
				"leaf %d in a tree of %d", i, st.Size)
		}
		for _, later := range states {
			if later.Size < st.Size {
				continue
			}
			cp, err := ledger.Consistency(ctx, b.store, st.Size, later.Size)
			require.NoError(t, err)
			require.NoError(t, proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(st.Size), uint64(later.Size), decode(t, cp.Hashes), st.Root, later.Root),
				"from %d to %d", st.Size, later.Size)
		}
	}

	// A leaf changed under the log makes the proofs that hash it wrong,
	// not silently right.
	b.tamper(t, "UPDATE log_leaves SET leaf_hash = sha256(leaf_hash) WHERE idx = 2")
	p, err := ledger.Inclusion(ctx, b.store, ids[0], states[len(states)-1].Size)
	require.NoError(t, err)
	leaf, _ := base64.StdEncoding.DecodeString(p.LeafHash)
	require.Error(t, proof.VerifyInclusion(rfc6962.DefaultHasher, 0, uint64(p.TreeSize), leaf, decode(t, p.Hashes), states[len(states)-1].Root))
}

func decode(t *testing.T, hs []string) [][]byte {
	out := make([][]byte, len(hs))
	for i, h := range hs {
		b, err := base64.StdEncoding.DecodeString(h)
		require.NoError(t, err)
		out[i] = b
	}
	return out
}

// Sequencing rounds commit without waiting for their flush, so a crash can
// take back the rounds after the last signed checkpoint. The events they
// covered were durable before the rounds read them, and the order they
// follow admits no later commit: the rounds are redone with the same
// leaves, nodes and roots, even in rounds of other sizes and with new
// events arrived meanwhile.
func TestLostRoundsAreRedoneAlike(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.ingest(t, 0, 20)
	signed := b.sequenceAndSign(t)
	b.ingest(t, 20, 37)
	b.seq.Batch = 6
	before := b.sequenceAndSign(t) // this checkpoint's commit is lost too
	require.EqualValues(t, 57, before.Size)
	leaves, nodes := b.logRows(t)

	// What a crash before the rounds' flush leaves: the log as signed at 20.
	b.tamper(t, `DELETE FROM log_checkpoints WHERE size > $1`, signed.Size)
	b.tamper(t, `DELETE FROM log_state WHERE size > $1`, signed.Size)
	b.tamper(t, `DELETE FROM log_leaves WHERE idx >= $1`, signed.Size)
	b.tamper(t, `DELETE FROM log_nodes WHERE ((node_key & ((1::bigint << 56) - 1)) + 1) << (node_key >> 56)::integer > $1`, signed.Size)
	left, _ := b.logRows(t)
	require.Len(t, left, int(signed.Size))

	b.ingest(t, 57, 5)
	b.seq.Batch = 11
	after := b.sequenceAndSign(t)
	require.EqualValues(t, 62, after.Size)
	redone, renodes := b.logRows(t)
	require.Equal(t, leaves, redone[:len(leaves)], "the redone leaves differ")
	for key, hash := range nodes {
		require.Equal(t, hash, renodes[key], "node %x", key)
	}
	p, err := ledger.Consistency(ctx, b.store, before.Size, after.Size)
	require.NoError(t, err)
	require.NoError(t, proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(before.Size), uint64(after.Size), decode(t, p.Hashes), before.Root, after.Root),
		"the redone tree at %d is not the one that was lost", before.Size)
	require.NoError(t, b.verify(t))
}

// logRows reads every leaf (as "idx event leaf body" lines, in index order)
// and every stored node hash by key.
func (b *testBundle) logRows(t *testing.T) ([]string, map[int64][]byte) {
	t.Helper()
	ctx := context.Background()
	conn := b.db.Connect(t)
	rows, err := conn.Query(ctx, `SELECT format('%s %s %s %s', idx, event_id, encode(leaf_hash, 'hex'), encode(body_hash, 'hex')) FROM log_leaves ORDER BY idx`)
	require.NoError(t, err)
	leaves, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	nodes := map[int64][]byte{}
	rows, err = conn.Query(ctx, `SELECT node_key, hash FROM log_nodes`)
	require.NoError(t, err)
	var key int64
	var hash []byte
	_, err = pgx.ForEachRow(rows, []any{&key, &hash}, func() error {
		nodes[key] = hash
		return nil
	})
	require.NoError(t, err)
	return leaves, nodes
}

func TestVerifyNamesTamperedEvent(t *testing.T) {
	t.Parallel()
	// alter changes event ids[i] by a statement taking its id as $1.
	alter := func(sql string, i int) func(*testing.T, *testBundle, []int64) int64 {
		return func(t *testing.T, b *testBundle, ids []int64) int64 {
			b.tamper(t, sql, ids[i])
			return ids[i]
		}
	}
	cases := []struct {
		name   string
		tamper func(t *testing.T, b *testBundle, ids []int64) int64 // returns the event to be named
		kind   string
	}{
		{"change a byte of a body", alter(`UPDATE events SET body = overlay(body placing 'X'::bytea from 3 for 1) WHERE id = $1`, 5), "altered"},
		{"change a type", alter(`UPDATE events SET type = 'ESCALATE_CASE' WHERE id = $1`, 9), "altered"},
		{"move an event to another queue", alter(`UPDATE events SET queue = 'Sales' WHERE id = $1`, 3), "altered"},
		{"change a time in queue", alter(`UPDATE events SET time_in_queue_ms = 1000 WHERE id = $1`, 6), "altered"},
		{"mark an event outbound", alter(`UPDATE events SET is_outbound = true WHERE id = $1`, 8), "altered"},
		{"change the reply a before-hook was sent", alter(`UPDATE events SET reply = '{"cancelled": true}' WHERE id = $1`, 10), "altered"},
		{"change a summary", alter(`UPDATE events SET summary = 'Case closed' WHERE id = $1`, 11), "altered"},
		{"change who sent an event", alter(`UPDATE events SET credential = 'key:other' WHERE id = $1`, 13), "altered"},
		{"change an actor", alter(`UPDATE events SET actor = '{"id": "u-2"}' WHERE id = $1`, 1), "altered"},
		{"change what a change says", alter(`UPDATE events SET changes = '[{"field": "status", "from": "", "to": "CLOSED"}]' WHERE id = $1`, 14), "altered"},
		{"forge what analysts read of a body", alter(`UPDATE events SET doc = '{"event": "CHANGE_CASE_STATUS", "payload": {"note": "FORGED"}}' WHERE id = $1`, 0), "altered"},
		{"drop the indexed copy", alter(`UPDATE events SET doc = NULL WHERE id = $1`, 2), "altered"},
		{"mark the indexed copy lossy", alter(`UPDATE events SET doc_lossy = true WHERE id = $1`, 4), "altered"},
		{"change a body's plain SHA-256", alter(`UPDATE events SET body_sha256 = sha256('x') WHERE id = $1`, 7), "altered"},
		{"change a content type", alter(`UPDATE events SET content_type = 'text/plain' WHERE id = $1`, 12), "altered"},
		{"change an idempotency key", alter(`UPDATE events SET idempotency_key = 'k-other' WHERE id = $1`, 9), "altered"},
		{"delete a row", alter(`DELETE FROM events WHERE id = $1`, 2), "removed"},
		{"delete a leaf", alter(`DELETE FROM log_leaves WHERE event_id = $1`, 6), "removed"},
		{"delete the first leaf", alter(`DELETE FROM log_leaves WHERE event_id = $1`, 0), "removed"},
		{"insert a forged row among old ones", func(t *testing.T, b *testBundle, ids []int64) int64 {
			b.tamper(t, `INSERT INTO events (id, received_at, occurred_at, source, kind, type, credential, idempotency_key, body, body_sha256, commit_xid)
				SELECT 424242, received_at, occurred_at, source, kind, 'PAYMENT_ADDED', credential, 'forged', '\x7b7d', '\x00', commit_xid - 1
				FROM events WHERE id = $1`, ids[4])
			return 424242
		}, "inserted"},
		{"insert a forged row ahead of every transaction", func(t *testing.T, b *testBundle, ids []int64) int64 {
			// A commit_xid no transaction has had: the sequencer would
			// never reach it, while timelines show the row.
			b.tamper(t, `INSERT INTO events (id, received_at, occurred_at, source, kind, type, credential, idempotency_key, body, body_sha256, commit_xid)
				SELECT 434343, received_at, occurred_at, source, kind, 'PAYMENT_ADDED', credential, 'forged', '\x7b7d', '\x00', 9000000000000000000
				FROM events WHERE id = $1`, ids[4])
			return 434343
		}, "inserted"},
		{"duplicate a logged id", func(t *testing.T, b *testBundle, ids []int64) int64 {
			b.tamper(t, `INSERT INTO events (id, received_at, occurred_at, source, kind, type, credential, idempotency_key, body, body_sha256)
				SELECT id, received_at + interval '1 second', occurred_at, source, kind, 'PAYMENT_ADDED', credential, 'forged2', '\x7b7d', '\x00'
				FROM events WHERE id = $1`, ids[7])
			return ids[7]
		}, "inserted"},
		{"log a forged row under a negative index", func(t *testing.T, b *testBundle, ids []int64) int64 {
			// Shown with a log index by timelines and the event's page,
			// though no tree holds it.
			b.tamper(t, `INSERT INTO events (id, received_at, occurred_at, source, kind, type, credential, idempotency_key, body, body_sha256, commit_xid)
				SELECT 454545, received_at, occurred_at, source, kind, 'PAYMENT_ADDED', credential, 'forged', '\x7b7d', '\x00', commit_xid - 1
				FROM events WHERE id = $1`, ids[4])
			b.tamper(t, `INSERT INTO log_leaves (idx, event_id, leaf_hash, body_hash) VALUES (-1, 454545, sha256('x'), sha256('y'))`)
			return 454545
		}, "inserted"},
		{"log a forged row past the tree", func(t *testing.T, b *testBundle, ids []int64) int64 {
			b.tamper(t, `INSERT INTO events (id, received_at, occurred_at, source, kind, type, credential, idempotency_key, body, body_sha256, commit_xid)
				SELECT 464646, received_at, occurred_at, source, kind, 'PAYMENT_ADDED', credential, 'forged', '\x7b7d', '\x00', commit_xid - 1
				FROM events WHERE id = $1`, ids[4])
			b.tamper(t, `INSERT INTO log_leaves (idx, event_id, leaf_hash, body_hash) VALUES (1000, 464646, sha256('x'), sha256('y'))`)
			return 464646
		}, "inserted"},
		{"rewrite a leaf and its tree state together", func(t *testing.T, b *testBundle, ids []int64) int64 {
			// Change the event, then recompute its leaf and every stored
			// node and state from scratch, as a careful intruder would.
			b.tamper(t, `UPDATE events SET type = 'ESCALATE_CASE' WHERE id = $1`, ids[12])
			rebuildLog(t, b)
			return ids[12]
		}, "rewritten"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			var ids []int64
			// One checkpoint per event: an auditor holding them can pin a
			// rewrite of the log to a single event.
			for i := range 15 {
				ids = append(ids, b.ingest(t, i, 1)...)
				b.sequenceAndSign(t)
			}
			require.NoError(t, b.verify(t))
			want := tc.tamper(t, b, ids)
			err := b.verify(t)
			require.Error(t, err)
			var f *ledger.Finding
			require.ErrorAs(t, err, &f)
			require.Equal(t, tc.kind, f.Kind, err.Error())
			if tc.kind == "rewritten" {
				require.Contains(t, err.Error(), fmt.Sprint(want), "the finding names the event")
			} else {
				require.Equal(t, want, f.EventID, "the finding names the event")
			}
		})
	}
}

// rebuildLog rewrites log_leaves, log_nodes and log_state from the current
// rows, keeping the stored checkpoints (which the intruder cannot re-sign).
func rebuildLog(t *testing.T, b *testBundle) {
	t.Helper()
	b.tamper(t, `DELETE FROM log_leaves; DELETE FROM log_nodes; DELETE FROM log_state`)
	require.NoError(t, b.seq.Drain(context.Background()))
}

func TestCheckpointFromUnknownKeyIsRejected(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.ingest(t, 0, 3)
	b.sequenceAndSign(t)
	other, err := ledger.LoadKeys("", t.TempDir(), "casetrail.test")
	require.NoError(t, err)
	cp, err := b.store.LatestCheckpoint(ctx)
	require.NoError(t, err)
	_, err = ledger.OpenCheckpoint([]byte(cp.Note), other.Chain())
	require.Error(t, err)
	_, err = ledger.Verify(ctx, b.store, other.Chain(), nil)
	require.Error(t, err)
	// A server with another key refuses to sign after the log's.
	forger := &ledger.Checkpointer{Store: b.store, Keys: other, Origin: "casetrail.test/log", MaxAge: time.Hour}
	st, err := b.store.LatestLogState(ctx)
	require.NoError(t, err)
	require.ErrorIs(t, forger.Sign(ctx, st), ledger.ErrForeignKey)
	require.NoError(t, forger.Sign(ctx, st), "said once")
	require.NoError(t, b.verify(t))
	// A checkpoint the intruder signed with their own key and stored.
	root := st.Root
	signed, err := note.Sign(&note.Note{Text: ledger.CheckpointText("casetrail.test/log", st.Size, root)}, other.Signer)
	require.NoError(t, err)
	_, err = b.db.Connect(t).Exec(ctx, "INSERT INTO log_checkpoints (size, root, note) VALUES ($1, $2, $3)", st.Size, root, string(signed))
	require.NoError(t, err)
	err = b.verify(t)
	var f *ledger.Finding
	require.ErrorAs(t, err, &f)
	require.Equal(t, "checkpoint", f.Kind)
}

// A server given another log_origin than the stored checkpoints name
// signs none: checkpoints of two names would be two logs to an auditor.
// Its key is still the log's.
func TestCheckpointsKeepTheirLogsName(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.ingest(t, 0, 3)
	b.sequenceAndSign(t)
	renamed := &ledger.Checkpointer{Store: b.store, Keys: b.keys, Origin: "casetrail.test/renamed", MaxAge: time.Hour}
	err := renamed.CheckKey(ctx)
	require.ErrorIs(t, err, ledger.ErrForeignLog)
	require.ErrorContains(t, err, `they are of the log "casetrail.test/log", not of "casetrail.test/renamed"`)
	require.False(t, renamed.Refusing(), "the key is the log's")

	b.ingest(t, 3, 2)
	require.NoError(t, b.seq.Drain(ctx))
	st, err := b.store.LatestLogState(ctx)
	require.NoError(t, err)
	require.NoError(t, renamed.Sign(ctx, st), "said once, at CheckKey")
	fresh := &ledger.Checkpointer{Store: b.store, Keys: b.keys, Origin: "casetrail.test/renamed", MaxAge: time.Hour}
	require.ErrorIs(t, fresh.Sign(ctx, st), ledger.ErrForeignLog)
	latest, err := b.store.LatestCheckpoint(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 3, latest.Size, "no checkpoint under the new name")
	require.NoError(t, b.cp.Sign(ctx, st), "the log's own name signs on")
}

// TestFirstCheckpointHasOneSigner: two servers with keys of their own that
// sign the first checkpoint at once store one checkpoint, not one each.
func TestFirstCheckpointHasOneSigner(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.ingest(t, 0, 3)
	_, err := b.seq.Step(ctx)
	require.NoError(t, err)
	st, err := b.store.LatestLogState(ctx)
	require.NoError(t, err)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range errs {
		keys, err := ledger.LoadKeys("", t.TempDir(), "casetrail.test")
		require.NoError(t, err)
		c := &ledger.Checkpointer{Store: b.store, Keys: keys, Origin: "casetrail.test/log", MaxAge: time.Hour}
		wg.Go(func() { errs[i] = c.Sign(ctx, st) })
	}
	wg.Wait()
	var stored int
	require.NoError(t, b.db.Connect(t).QueryRow(ctx, "SELECT count(*) FROM log_checkpoints").Scan(&stored))
	require.Equal(t, 1, stored)
	require.True(t, (errs[0] == nil) != (errs[1] == nil), "one signed, the other refused: %v", errs)
	for _, err := range errs {
		if err != nil {
			require.ErrorIs(t, err, ledger.ErrForeignKey)
		}
	}
}

func TestConcurrentWritersAndSequencers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	other := &ledger.Sequencer{Store: b.store, Log: dbtest.Logger(t), Batch: 7}
	const writers, each = 6, 40
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var seqWG sync.WaitGroup
	for _, s := range []*ledger.Sequencer{b.seq, other} {
		seqWG.Add(1)
		go func() {
			defer seqWG.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, err := s.Step(ctx)
				if err != nil && err != store.ErrNotLeader {
					t.Errorf("sequencer: %v", err)
					return
				}
			}
		}()
	}
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				_, err := b.store.Ingest(ctx, []store.NewEvent{newEvent(w*1000 + i)})
				if err != nil {
					t.Errorf("ingest: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	seqWG.Wait()
	require.NoError(t, b.seq.Drain(ctx)) // whatever committed last

	conn := b.db.Connect(t)
	var events, leaves, distinct, maxIdx int64
	require.NoError(t, conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM events), count(*), count(DISTINCT event_id), coalesce(max(idx), -1) FROM log_leaves`).Scan(&events, &leaves, &distinct, &maxIdx))
	require.EqualValues(t, writers*each, events)
	require.Equal(t, events, leaves, "every committed event is sequenced")
	require.Equal(t, leaves, distinct, "no event twice")
	require.Equal(t, leaves-1, maxIdx, "no gaps")
	st := b.sequenceAndSign(t)
	require.Equal(t, leaves, st.Size)
	require.NoError(t, b.verify(t))
}

// An event whose transaction is still open holds back every event after it
// in commit order, however many have committed since and whatever the
// round's size: the sequencer reads its round before cutting it at that
// transaction, and must still leave nothing behind it.
func TestSequencerWaitsForOpenTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.seq.Batch = 2
	before := b.ingest(t, 0, 3)

	conn := b.db.Connect(t)
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck
	var openID int64
	require.NoError(t, tx.QueryRow(ctx, `
		INSERT INTO events (received_at, occurred_at, source, kind, type, credential, idempotency_key, case_id, body, body_sha256)
		VALUES (now(), now(), 'case-updates', 'case-updates', 'CHANGE_CASE_STATUS', 'test', 'open', 'c-1', '\x7b7d', sha256('\x7b7d'))
		RETURNING id`).Scan(&openID))
	after := b.ingest(t, 200, 5)

	// A transaction of another database that ends while a round reads the
	// horizon can hold that round back (never let it pass the open one), so
	// rounds run until the events before the open transaction are in; then
	// one more round must add nothing.
	n := 0
	for deadline := time.Now().Add(time.Minute); n < len(before) && time.Now().Before(deadline); {
		added, err := b.seq.Step(ctx)
		require.NoError(t, err)
		if n += added; added == 0 {
			time.Sleep(10 * time.Millisecond) // a poll: the other transaction ends on its own
		}
	}
	added, err := b.seq.Step(ctx)
	require.NoError(t, err)
	require.Equal(t, len(before), n+added, "only the events before the open transaction")

	require.NoError(t, tx.Commit(ctx))
	st := b.sequenceAndSign(t)
	require.EqualValues(t, len(before)+1+len(after), st.Size)
	var order []int64
	require.NoError(t, conn.QueryRow(ctx, `SELECT array_agg(event_id ORDER BY idx) FROM log_leaves`).Scan(&order))
	want := append(append(append([]int64{}, before...), openID), after...)
	require.Equal(t, want, order, "the held-back event keeps its place, and nothing is left out")
	require.NoError(t, b.verify(t))
}

// A store sequenced by earlier builds, as version 1, 2 and 3 leaves, and
// then by this one verifies as a whole, and exports a bundle that verifies offline,
// each event's leaf of the version the log holds.
func TestStoreOfEveryLeafVersionVerifies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	var ids []int64
	for v := 1; v <= 4; v++ {
		ledger.WriteLeavesOfVersion(b.seq, v)
		ev := newEvent(v)
		ev.Summary, ev.Reply = fmt.Sprintf("Status changed (%d)", v), []byte(`{"cancelled": false}`)
		res, err := b.store.Ingest(ctx, []store.NewEvent{ev})
		require.NoError(t, err)
		ids = append(ids, res[0].ID)
		b.sequenceAndSign(t)
	}
	require.NoError(t, b.verify(t))

	dir := t.TempDir()
	_, err := ledger.Export(ctx, b.store, b.keys, ledger.Selection{Case: "every version"}, ids, dir)
	require.NoError(t, err)
	rep, err := ledger.VerifyBundle(dir, b.keys.Chain())
	require.NoError(t, err)
	require.Equal(t, 4, rep.Events)
	raw, err := os.ReadFile(filepath.Join(dir, "events.ndjson"))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	require.Len(t, lines, 4)
	// A version 4 leaf's detail carries what it adds; a version 3 one's not.
	require.Contains(t, lines[3], `"idempotencyKey"`)
	require.NotContains(t, lines[2], `"idempotencyKey"`)
	require.Contains(t, lines[2], `"detail"`)
	for i, line := range lines {
		var ev ledger.BundleEvent
		require.NoError(t, json.Unmarshal([]byte(line), &ev))
		require.True(t, strings.HasPrefix(string(ev.Leaf), fmt.Sprintf(`{"v":%d,`, i+1)), string(ev.Leaf))
		require.Equal(t, i+1 >= 3, ev.Detail != nil, "leaves from version 3 on have a detail")
	}

	// The version 3 event's reply is covered; the earlier ones' never was.
	b.tamper(t, `UPDATE events SET reply = '{"cancelled": true}' WHERE id = ANY ($1)`, ids[:2])
	require.NoError(t, b.verify(t))
	b.tamper(t, `UPDATE events SET reply = '{"cancelled": true}' WHERE id = $1`, ids[2])
	err = b.verify(t)
	var f *ledger.Finding
	require.ErrorAs(t, err, &f)
	require.Equal(t, ids[2], f.EventID)
}

// verify checks a live store as it stood when it began: rounds that commit
// while it reads the leaves are not a rewritten log.
func TestVerifyWhileSequencing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.ingest(t, 0, 30)
	b.sequenceAndSign(t)

	stop := make(chan struct{})
	done := make(chan error, 1)
	var steps atomic.Int64
	go func() {
		for i := 1000; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if _, err := b.store.Ingest(ctx, []store.NewEvent{newEvent(i)}); err != nil {
				done <- err
				return
			}
			if _, err := b.seq.Step(ctx); err != nil {
				done <- err
				return
			}
			steps.Add(1)
		}
	}()
	var leaves int64
	// At least 60 verifications, and as many as it takes for 20 rounds to
	// commit meanwhile.
	for i := 0; i < 60 || steps.Load() < 20; i++ {
		rep, err := ledger.Verify(ctx, b.store, b.keys.Chain(), nil)
		if err != nil {
			close(stop)
			<-done
			require.NoError(t, err)
		}
		require.GreaterOrEqual(t, rep.Leaves, int64(30))
		leaves = rep.Leaves
	}
	close(stop)
	require.NoError(t, <-done)
	require.Greater(t, leaves, int64(30), "the log grew while it was verified")
	require.NoError(t, b.verify(t))
}

// verify holds the log's state and stored tree to the tree its leaves
// give. The state is what the next checkpoint is signed from and what the
// next round of the sequencer extends: a root, a hash of its compact range
// or its position in commit order rewritten would have the log sign roots
// no leaves give, read logged events again (which stops it:
// TestSequencerStopsAtARewoundPosition) or pass over new ones. A
// subtree hash stored ahead of the tree would stop the sequencer when the
// log reaches it (its own cannot be stored there).
func TestVerifyFindsATamperedTree(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, sql  string
		kind, want string
	}{
		{"state root", "UPDATE log_state SET root = sha256(root) WHERE size = $1",
			"rewritten", "root"},
		{"state range", "UPDATE log_state SET range_hashes[2] = sha256(range_hashes[2]) WHERE size = $1",
			"rewritten", "compact range"},
		{"state position back", "UPDATE log_state SET last_xid = 0, last_event = 0 WHERE size = $1",
			"rewritten", "position in commit order"},
		{"state position ahead", "UPDATE log_state SET last_xid = last_xid + 1000 WHERE size = $1",
			"rewritten", "position in commit order"},
		{"subtree ahead of the tree", "INSERT INTO log_nodes (node_key, hash) SELECT (4::bigint << 56) | 5, sha256('x') WHERE $1::bigint > 0",
			"inserted", "level 4, index 5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.ingest(t, 0, 40)
			st := b.sequenceAndSign(t)
			require.Len(t, st.RangeHashes, 2, "32 leaves and 8")
			require.NoError(t, b.verify(t))
			b.tamper(t, tc.sql, st.Size)
			var f *ledger.Finding
			require.ErrorAs(t, b.verify(t), &f)
			require.Equal(t, tc.kind, f.Kind, f.Error())
			require.Contains(t, f.Detail, tc.want)
		})
	}
}

// A log state rewritten in the database is not signed: its tree does not
// extend the newest signed checkpoint, by a proof from the stored leaves.
func TestCheckpointerSignsNoRewrittenState(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.ingest(t, 0, 10)
	b.sequenceAndSign(t)
	b.ingest(t, 10, 7)
	require.NoError(t, b.seq.Drain(ctx))
	st, err := b.store.LatestLogState(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 17, st.Size)
	b.tamper(t, "UPDATE log_state SET root = sha256(root) WHERE size = $1", st.Size)

	forged, err := b.store.LatestLogState(ctx)
	require.NoError(t, err)
	require.ErrorIs(t, b.cp.Sign(ctx, forged), ledger.ErrNotExtended)
	last, err := b.store.LatestCheckpoint(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 10, last.Size, "nothing was signed")

	require.NoError(t, b.cp.Sign(ctx, st), "the tree the leaves give is signed")
}

// Two servers may read the tree at different sizes before each signs: the
// newest stored checkpoint never goes back to the smaller tree.
func TestCheckpointsNeverShrink(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.ingest(t, 0, 5)
	require.NoError(t, b.seq.Drain(ctx))
	small, err := b.store.LatestLogState(ctx)
	require.NoError(t, err)
	b.ingest(t, 5, 5)
	large := b.sequenceAndSign(t)
	require.Greater(t, large.Size, small.Size)

	require.NoError(t, b.cp.Sign(ctx, small)) // the slower server
	latest, err := b.store.LatestCheckpoint(ctx)
	require.NoError(t, err)
	require.Equal(t, large.Size, latest.Size)
	require.NoError(t, b.cp.Sign(ctx, large), "the same size again (a fresher checkpoint) is stored")
	require.NoError(t, b.verify(t))
}

// Verifying against an older checkpoint still holds the log to every
// stored one: a tail cut off together with its leaves and tree state
// leaves a newer signed checkpoint behind that covers it.
func TestVerifyFindsTailCutBelowAStoredCheckpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.ingest(t, 0, 10)
	first := b.sequenceAndSign(t)
	old, err := b.store.LatestCheckpoint(ctx)
	require.NoError(t, err)
	ids := b.ingest(t, 10, 5)
	b.sequenceAndSign(t)

	b.tamper(t, "DELETE FROM log_state WHERE size > $1", first.Size)
	b.tamper(t, "DELETE FROM log_leaves WHERE idx >= $1", first.Size)
	b.tamper(t, "DELETE FROM events WHERE id = ANY($1)", ids)
	_, err = ledger.Verify(ctx, b.store, b.keys.Chain(), []byte(old.Note))
	var f *ledger.Finding
	require.ErrorAs(t, err, &f)
	require.Equal(t, "removed", f.Kind)
	require.Contains(t, f.Detail, "covers 15 leaves but the log holds 10")
}

// Attachments are stored apart, by their SHA-256: content changed under
// its hash is found.
func TestVerifyFindsAlteredAttachment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	content := []byte("%PDF-1.4 scan")
	sum := sha256.Sum256(content)
	e := newEvent(5)
	e.Doc = []byte(fmt.Sprintf(`{"event":"ADD_CASE_ATTACHMENT","payload":{"attachment":{"content":{"sha256":"%x","size":%d}}}}`, sum, len(content)))
	e.Blobs = []store.Blob{{SHA256: sum, Content: content}}
	ids := b.ingest(t, 0, 1)
	res, err := b.store.Ingest(ctx, []store.NewEvent{e})
	require.NoError(t, err)
	ids = append(ids, res[0].ID)
	b.ingest(t, 1, 1)
	b.sequenceAndSign(t)
	require.NoError(t, b.verify(t))

	b.tamper(t, `UPDATE blobs SET content = '%PDF-1.4 forged' WHERE sha256 = $1`, sum[:])
	var f *ledger.Finding
	require.ErrorAs(t, b.verify(t), &f)
	require.Equal(t, "altered", f.Kind)
	require.Contains(t, f.Detail, fmt.Sprintf("attachment %x", sum))
	require.Equal(t, ids[1], f.EventID, "the finding names the event that refers to it")
}

// An attachment removed from the store while an event still refers to it
// is found, and the event named; an object of that form that the sender
// wrote itself needs no stored attachment.
func TestVerifyFindsRemovedAttachment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	content := []byte("%PDF-1.4 scan")
	sum := sha256.Sum256(content)
	b.ingest(t, 0, 2)
	e := newEvent(2)
	e.Doc = []byte(fmt.Sprintf(`{"event":"ADD_CASE_ATTACHMENT","payload":{"attachment":{"content":{"sha256":"%x","size":%d}}}}`, sum, len(content)))
	e.Blobs = []store.Blob{{SHA256: sum, Content: content}}
	own := newEvent(3)
	own.Body = []byte(`{"event":"ADD_CASE_ATTACHMENT","payload":{"link":{"sha256":"` + strings.Repeat("ab", 32) + `","size":3}}}`)
	own.BodySHA256, own.Doc = sha256.Sum256(own.Body), own.Body
	res, err := b.store.Ingest(ctx, []store.NewEvent{e, own})
	require.NoError(t, err)
	b.sequenceAndSign(t)
	require.NoError(t, b.verify(t))

	b.tamper(t, `DELETE FROM blobs WHERE sha256 = $1`, sum[:])
	var f *ledger.Finding
	require.ErrorAs(t, b.verify(t), &f)
	require.Equal(t, "removed", f.Kind)
	require.Equal(t, res[0].ID, f.EventID)
	require.Contains(t, f.Detail, fmt.Sprintf("attachment %x", sum))
}

// The plain SHA-256 readers are shown for a body is the body's, also when
// it was changed before the event's leaf was written: verify and an
// offline bundle check both find it.
func TestVerifyFindsABodySHA256ThatIsNotTheBodys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	ids := b.ingest(t, 0, 3)
	b.tamper(t, `UPDATE events SET body_sha256 = sha256('x') WHERE id = $1`, ids[1])
	b.sequenceAndSign(t)
	var f *ledger.Finding
	require.ErrorAs(t, b.verify(t), &f)
	require.Equal(t, "altered", f.Kind)
	require.Equal(t, ids[1], f.EventID)
	require.Contains(t, f.Detail, "SHA-256 it shows for its body")

	dir := t.TempDir()
	_, err := ledger.Export(ctx, b.store, b.keys, ledger.Selection{Case: "c"}, ids, dir)
	require.NoError(t, err)
	_, err = ledger.VerifyBundle(dir, b.keys.Chain())
	require.ErrorContains(t, err, "the body's SHA-256 its detail names is not the body's")
}

// verify reads the leaves by pages: a second row under a logged id is
// found where the first sits, also at the end of a page, before a later
// change.
func TestVerifyFindsADuplicateIDAtTheEndOfAPage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	var ids []int64
	for len(ids) < 5010 {
		ids = append(ids, b.ingestBatch(t, len(ids), min(1000, 5010-len(ids)))...)
	}
	b.sequenceAndSign(t)
	require.NoError(t, b.verify(t))
	idx, _, err := b.store.LeafOf(ctx, ids[0])
	require.NoError(t, err)
	require.Zero(t, idx)

	b.tamper(t, `INSERT INTO events (id, received_at, occurred_at, source, kind, type, credential, idempotency_key, body, body_sha256)
		SELECT id, received_at + interval '1 second', occurred_at, source, kind, 'PAYMENT_ADDED', credential, 'forged', '\x7b7d', '\x00'
		FROM events WHERE id = $1`, ids[4999])
	b.tamper(t, `UPDATE events SET type = 'ESCALATE_CASE' WHERE id = $1`, ids[5005])
	var f *ledger.Finding
	require.ErrorAs(t, b.verify(t), &f)
	require.Equal(t, "inserted", f.Kind, f.Error())
	require.Equal(t, ids[4999], f.EventID)
}

// Proofs are built from the stored subtree hashes: one changed or removed
// makes the API answer proofs that do not verify, and verify names it.
func TestVerifyFindsARewrittenOrMissingSubtreeHash(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, sql string
		leaf      int // one whose proof goes through the node
		want      string
	}{
		{"changed", `UPDATE log_nodes SET hash = sha256(hash) WHERE node_key = (4::bigint << 56) | 1`, 3, "subtree hash at level 4, index 1 (leaves 16 to 31)"},
		{"removed", `DELETE FROM log_nodes WHERE node_key = (5::bigint << 56)`, 35, "subtree hash at level 5, index 0 (leaves 0 to 31), from which inclusion and consistency proofs are built, is missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := setup(t)
			ids := b.ingest(t, 0, 40)
			st := b.sequenceAndSign(t)
			require.NoError(t, b.verify(t))

			b.tamper(t, tc.sql)
			p, err := ledger.Inclusion(ctx, b.store, ids[tc.leaf], st.Size)
			if err == nil {
				leaf, _ := base64.StdEncoding.DecodeString(p.LeafHash)
				require.Error(t, proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(p.LeafIndex), uint64(p.TreeSize), leaf, decode(t, p.Hashes), st.Root),
					"the proof through the node fails")
			}
			var f *ledger.Finding
			require.ErrorAs(t, b.verify(t), &f)
			require.Equal(t, "rewritten", f.Kind)
			require.Contains(t, f.Detail, tc.want)
		})
	}
}

// A leaf commits to SHA-256(salt || body): bytes moved from the front of a
// body to the end of its salt keep that hash. A leaf of version 1 or 2
// commits to nothing else of them, so the salt's length, always 32 bytes,
// is what tells the body was cut, in the store and in a bundle.
func TestVerifyFindsBodyBytesMovedIntoTheSalt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	ledger.WriteLeavesOfVersion(b.seq, 1)
	ids := b.ingest(t, 0, 3)
	b.sequenceAndSign(t)
	require.NoError(t, b.verify(t))

	dir := t.TempDir()
	_, err := ledger.Export(ctx, b.store, b.keys, ledger.Selection{Case: "c"}, ids, dir)
	require.NoError(t, err)
	_, err = ledger.VerifyBundle(dir, b.keys.Chain())
	require.NoError(t, err)
	raw, err := os.ReadFile(filepath.Join(dir, "events.ndjson"))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	var ev ledger.BundleEvent
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &ev))
	bodyPath := filepath.Join(dir, "bodies", fmt.Sprint(ids[1]))
	body, err := os.ReadFile(bodyPath)
	require.NoError(t, err)
	salt, err := base64.StdEncoding.DecodeString(ev.Salt)
	require.NoError(t, err)
	ev.Salt = base64.StdEncoding.EncodeToString(append(salt, body[:9]...))
	require.NoError(t, os.WriteFile(bodyPath, body[9:], 0o600))
	line, err := json.Marshal(ev)
	require.NoError(t, err)
	lines[1] = string(line)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "events.ndjson"), []byte(strings.Join(lines, "\n")+"\n"), 0o600))
	_, err = ledger.VerifyBundle(dir, b.keys.Chain())
	require.ErrorContains(t, err, fmt.Sprintf("event %d", ids[1]))
	require.ErrorContains(t, err, "salt")

	b.tamper(t, `UPDATE events SET body_salt = body_salt || substring(body from 1 for 9), body = substring(body from 10),
		body_sha256 = sha256(substring(body from 10)) WHERE id = $1`, ids[1])
	var f *ledger.Finding
	require.ErrorAs(t, b.verify(t), &f)
	require.Equal(t, "altered", f.Kind, f.Error())
	require.Equal(t, ids[1], f.EventID)
}
