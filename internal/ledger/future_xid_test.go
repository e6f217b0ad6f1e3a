package ledger_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/casetrail/casetrail/internal/ledger"
)

// A row written with a commit_xid no transaction has had yet cannot be
// sequenced until the transaction ids reach it: a drain (at shutdown) does
// not wait for it, the events around it are logged, and verify names it.
func TestDrainDoesNotWaitForAForgedFutureTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	ids := b.ingest(t, 0, 2)
	b.tamper(t, `INSERT INTO events (id, received_at, occurred_at, source, kind, type, credential, idempotency_key, body, body_sha256, commit_xid)
		SELECT 484848, received_at, occurred_at, source, kind, 'PAYMENT_ADDED', credential, 'forged', '\x7b7d', sha256('\x7b7d'), 9000000000000000000
		FROM events WHERE id = $1`, ids[0])
	b.ingest(t, 2, 1)
	n, err := b.store.UnsequencedCount(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 3, n, "the forged row is not counted as waiting")

	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	require.NoError(t, b.seq.Drain(dctx))
	st := b.sequenceAndSign(t)
	require.EqualValues(t, 3, st.Size)

	var f *ledger.Finding
	require.ErrorAs(t, b.verify(t), &f)
	require.Equal(t, "inserted", f.Kind, f.Error())
	require.EqualValues(t, 484848, f.EventID, f.Error())
}
