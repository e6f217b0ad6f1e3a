package ledger_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/casetrail/casetrail/internal/ledger"
	"github.com/casetrail/casetrail/internal/store"
)

// duplicate stores, as someone writing to the database directly could, a
// second row under an event's id, received 40 days later (in another
// partition of the events table, where the primary key does not reach)
// and committed after every row so far.
func (b *testBundle) duplicate(t *testing.T, id int64) {
	t.Helper()
	b.tamper(t, `INSERT INTO events (id, received_at, occurred_at, source, kind, type, credential, idempotency_key, body, body_sha256)
		SELECT id, received_at + interval '40 days', occurred_at, source, kind, 'PAYMENT_ADDED', credential, 'forged-dup', '\x7b7d', sha256('\x7b7d')
		FROM events WHERE id = $1`, id)
}

func drain(t *testing.T, b *testBundle) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, b.seq.Drain(ctx))
}

// A second row under a logged id does not stop the log: the sequencer
// passes over it and logs the events after it, Drain does not wait for it,
// and verify names the id. Once the row is removed and the log has gone
// on past where it stood, the store verifies again.
func TestSequencerPassesOverASecondRowUnderALoggedID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	ids := b.ingest(t, 0, 3)
	b.sequenceAndSign(t)

	b.duplicate(t, ids[1])
	drain(t, b) // the second row, last in commit order, is not waited for
	more := b.ingest(t, 3, 2)
	st := b.sequenceAndSign(t)
	require.EqualValues(t, 5, st.Size, "the events after the second row are logged")
	for _, id := range more {
		_, err := ledger.Inclusion(ctx, b.store, id, 0)
		require.NoError(t, err)
	}
	n, err := b.store.UnsequencedCount(ctx)
	require.NoError(t, err)
	require.Zero(t, n)

	var f *ledger.Finding
	require.ErrorAs(t, b.verify(t), &f)
	require.Equal(t, "inserted", f.Kind, f.Error())
	require.Equal(t, ids[1], f.EventID, f.Error())
	require.Contains(t, f.Error(), "a second row carries the id of a logged event")

	b.tamper(t, `DELETE FROM events WHERE id = $1 AND type = 'PAYMENT_ADDED'`, ids[1])
	require.NoError(t, b.verify(t))

	// Second rows last in commit order, around an event: the log's
	// position stays on its last leaf's event, as verify holds it to.
	b.duplicate(t, more[1])
	b.ingest(t, 5, 1)
	b.duplicate(t, more[0])
	st = b.sequenceAndSign(t)
	require.EqualValues(t, 6, st.Size)
	require.ErrorAs(t, b.verify(t), &f)
	require.Contains(t, []int64{more[0], more[1]}, f.EventID, f.Error())
	b.tamper(t, `DELETE FROM events WHERE type = 'PAYMENT_ADDED'`)
	require.NoError(t, b.verify(t))
}

// A second row under an id that is not logged yet, waiting in the same
// round as the first: the log holds the first in commit order once, and
// the rounds after go on.
func TestSequencerLogsAnIDOnceWhenTwoRowsWaitInOneRound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	ids := b.ingest(t, 0, 2)
	b.duplicate(t, ids[0])
	more := b.ingest(t, 2, 1)
	st := b.sequenceAndSign(t)
	require.EqualValues(t, 3, st.Size)
	idx, _, err := b.store.LeafOf(ctx, more[0])
	require.NoError(t, err)
	require.EqualValues(t, 2, idx)

	var f *ledger.Finding
	require.ErrorAs(t, b.verify(t), &f)
	require.Equal(t, "inserted", f.Kind, f.Error())
	require.Equal(t, ids[0], f.EventID, f.Error())
}

// A position in commit order moved back (log_state rewritten) has every
// row after it carry a logged id: the sequencer stops there, loudly, rather
// than read, hash and pass over the whole table in every round while it
// warns of second rows.
func TestSequencerStopsAtARewoundPosition(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.ingestBatch(t, 0, 150)
	st := b.sequenceAndSign(t)
	require.EqualValues(t, 150, st.Size)
	b.tamper(t, "UPDATE log_state SET last_xid = 0, last_event = 0 WHERE size = $1", st.Size)
	b.ingest(t, 150, 1)

	// Drain, not one step: a round leaves out what the cluster's oldest
	// running transaction might still precede (another test's, under load)
	// until it ends.
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	require.ErrorIs(t, b.seq.Drain(dctx), store.ErrLogRewound)
	now, err := b.store.LatestLogState(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 150, now.Size, "nothing logged past the rewound position")
}

// ingestBatch stores n events in one transaction and returns their ids.
func (b *testBundle) ingestBatch(t *testing.T, from, n int) []int64 {
	t.Helper()
	batch := make([]store.NewEvent, 0, n)
	for i := from; i < from+n; i++ {
		batch = append(batch, newEvent(i))
	}
	res, err := b.store.Ingest(context.Background(), batch)
	require.NoError(t, err)
	ids := make([]int64, len(res))
	for i, r := range res {
		ids[i] = r.ID
	}
	return ids
}
