package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/casetrail/casetrail/internal/store"
)

func TestBatcherConcurrentSenders(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	batcher := store.NewBatcher(b.store, store.BatchOptions{Committers: 2, MaxBatch: 16})
	defer batcher.Close()

	// 40 distinct events, each sent by 5 senders at once.
	const distinct, repeats = 40, 5
	type outcome struct {
		res store.IngestResult
		err error
	}
	out := make([][]outcome, distinct)
	var wg sync.WaitGroup
	for i := range distinct {
		out[i] = make([]outcome, repeats)
		for r := range repeats {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := batcher.Ingest(ctx, []store.NewEvent{event(fmt.Sprintf(`{"n":%d}`, i), fmt.Sprintf("key-%d", i), true)})
				o := outcome{err: err}
				if err == nil {
					o.res = res[0]
				}
				out[i][r] = o
			}()
		}
	}
	wg.Wait()
	seen := map[int64]bool{}
	for i := range distinct {
		fresh := 0
		for r := range repeats {
			require.NoError(t, out[i][r].err)
			require.NoError(t, out[i][r].res.Err)
			require.Equal(t, out[i][0].res.ID, out[i][r].res.ID, "every copy names the one stored event")
			if !out[i][r].res.Duplicate {
				fresh++
			}
		}
		require.Equal(t, 1, fresh)
		require.False(t, seen[out[i][0].res.ID])
		seen[out[i][0].res.ID] = true
	}
	require.Equal(t, distinct, countEvents(t, b.db.URL))
}

func TestBatcherBadEventFailsAlone(t *testing.T) {
	t.Parallel()
	b := setup(t)
	good1 := event(`{"good":1}`, "g1", true)
	bad := event(`{"bad":1}`, "b1", true)
	bad.Doc = []byte(`{not json`) // the database refuses it
	good2 := event(`{"good":2}`, "g2", true)

	results, errs := store.CommitTogether(b.store, [][]store.NewEvent{{good1}, {bad}, {good2}})
	require.NoError(t, errs[0])
	require.Error(t, errs[1])
	require.NotErrorIs(t, errs[1], store.ErrUnavailable)
	require.NoError(t, errs[2])
	require.NotZero(t, results[0][0].ID)
	require.NotZero(t, results[2][0].ID)
	require.Equal(t, 2, countEvents(t, b.db.URL))
}

func TestBatcherClosedRefuses(t *testing.T) {
	t.Parallel()
	b := setup(t)
	batcher := store.NewBatcher(b.store, store.BatchOptions{})
	batcher.Close()
	_, err := batcher.Ingest(context.Background(), []store.NewEvent{event(`{}`, "k", true)})
	require.ErrorIs(t, err, store.ErrClosed)
}
