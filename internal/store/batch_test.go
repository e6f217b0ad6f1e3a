package store_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/casetrail/casetrail/internal/dbtest"
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
	require.ErrorIs(t, errs[1], store.ErrUnstorable, "a value the database refuses as such")
	require.Contains(t, errs[1].Error(), "SQLSTATE 22P02")
	require.NotContains(t, errs[1].Error(), "invalid input syntax", "the server's message, which may quote the value, is left out")
	require.NoError(t, errs[2])
	require.NotZero(t, results[0][0].ID)
	require.NotZero(t, results[2][0].ID)
	require.Equal(t, 2, countEvents(t, b.db.URL))
}

// A batch the database cancels for its statement_timeout (an operator's
// setting that a large batch can exceed, SQLSTATE 57014) is retried request
// by request, as other failures of a batch are: each request gets its own
// answer, and a request that fits in the time is stored. Here the batch
// waits on a key the test holds, until its statement_timeout ends it; the
// request of that key times out on its own too, the other is stored.
func TestBatcherStatementTimeoutRetriesEachRequest(t *testing.T) {
	t.Parallel()
	for _, piped := range []bool{false, true} {
		t.Run(fmt.Sprintf("piped=%v", piped), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			d := dbtest.New(t)
			admin := d.Connect(t)
			_, err := admin.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s SET statement_timeout = '1s'", pgx.Identifier{d.Name}.Sanitize()))
			require.NoError(t, err)
			s, err := store.Open(ctx, d.URL, store.Options{Logger: dbtest.Logger(t)})
			require.NoError(t, err)
			t.Cleanup(s.Close)

			// The test claims the key "held" and keeps its transaction open:
			// a statement storing that key waits for it.
			tx, err := admin.Begin(ctx)
			require.NoError(t, err)
			_, err = tx.Exec(ctx, `INSERT INTO idempotency_keys (source, key, explicit, body_sha256, event_id, received_at)
				VALUES ('case-updates', 'held', true, '\x00', 0, now())`)
			require.NoError(t, err)

			free, held, after := event(`{"n":2}`, "free", true), event(`{"n":1}`, "held", true), event(`{"n":3}`, "after", true)
			requests := [][]store.NewEvent{{free}, {held}, {after}}
			var results [][]store.IngestResult
			var errs []error
			if piped {
				p := s.NewPipe(0)
				defer p.Close()
				results, errs = store.CommitTogetherPiped(s, p, requests)
			} else {
				results, errs = store.CommitTogether(s, requests)
			}
			require.NoError(t, errs[0], "the first request fits in the time")
			require.NotZero(t, results[0][0].ID)
			require.False(t, results[0][0].Duplicate)
			require.ErrorIs(t, errs[1], store.ErrUnavailable, "the held key's request timed out on its own too")
			require.Nil(t, results[1])
			// A request that times out alone stops the retries: the one
			// after it is answered unavailable without waiting out the time.
			require.ErrorIs(t, errs[2], store.ErrUnavailable)
			require.Nil(t, results[2])
			require.NoError(t, tx.Rollback(ctx))
			require.Equal(t, 1, countEvents(t, d.URL), "only the stored request's event")

			// The requests answered unavailable, sent again, are stored once.
			for _, e := range []store.NewEvent{held, after} {
				res, err := s.Ingest(ctx, []store.NewEvent{e})
				require.NoError(t, err)
				require.False(t, res[0].Duplicate)
			}
			res, err := s.Ingest(ctx, []store.NewEvent{free})
			require.NoError(t, err)
			require.Equal(t, store.IngestResult{ID: results[0][0].ID, Duplicate: true}, res[0])
			require.Equal(t, 3, countEvents(t, d.URL))
		})
	}
}

// A failed batch is retried request by request; when the database goes away
// during the retries, the requests after it are answered unavailable at
// once instead of each waiting for a connection in turn.
func TestBatcherRetriesStopWhenTheDatabaseGoesAway(t *testing.T) {
	t.Parallel()
	var tried []string
	ingest := func(_ context.Context, events []store.NewEvent) ([]store.IngestResult, error) {
		if len(events) > 1 {
			return nil, errors.New("database error 23514: a check failed")
		}
		tried = append(tried, events[0].IdempotencyKey)
		if events[0].IdempotencyKey == "gone" {
			return nil, fmt.Errorf("%w: cannot connect to the database server", store.ErrUnavailable)
		}
		return []store.IngestResult{{ID: int64(len(tried))}}, nil
	}
	requests := [][]store.NewEvent{{event(`{"n":1}`, "first", true)}, {event(`{"n":2}`, "gone", true)}, {event(`{"n":3}`, "after", true)}}
	results, errs := store.CommitTogetherWith(ingest, requests)
	require.NoError(t, errs[0])
	require.NotNil(t, results[0])
	require.ErrorIs(t, errs[1], store.ErrUnavailable)
	require.ErrorIs(t, errs[2], store.ErrUnavailable)
	require.Equal(t, []string{"first", "gone"}, tried, "the request after it was not tried")
}

func TestBatcherClosedRefuses(t *testing.T) {
	t.Parallel()
	b := setup(t)
	batcher := store.NewBatcher(b.store, store.BatchOptions{})
	batcher.Close()
	_, err := batcher.Ingest(context.Background(), []store.NewEvent{event(`{}`, "k", true)})
	require.ErrorIs(t, err, store.ErrClosed)
}

// While one batch runs, the other committer gathers every request that
// arrives into one batch and runs it only when the first has ended; a batch
// of ParallelBatch events or more runs alongside.
func TestBatcherRunsSmallBatchesOneAtATime(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		parallel int
		most     int // transactions running at once, at most
	}{{"small batches wait", 64, 1}, {"large batches run alongside", 30, 2}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := newHeldIngest()
			b := store.NewBatcherWith(store.BatchOptions{Committers: 2, MaxBatch: 256, ParallelBatch: tc.parallel}, in.ingest)
			defer b.Close()

			// The other committer takes all 30 while the first batch runs;
			// when 30 reach ParallelBatch, their batch runs (and ends)
			// before the first is let go.
			in.sendBehind(t, b, 30, func(i int) store.NewEvent {
				return event(fmt.Sprintf(`{"n":%d}`, i), fmt.Sprintf("k%d", i), false)
			}, func() bool { return store.Taken(b) >= 31 && in.state().most >= tc.most })
			got := in.state()
			require.Equal(t, []int{1, 30}, got.sizes, "the 30 requests form one batch")
			require.Equal(t, tc.most, got.most)
		})
	}
}

// A batch holds no more bytes than MaxBatchBytes (a larger request goes
// alone), and a request that does not fit waits for the next batch.
func TestBatcherBoundsBatchBytes(t *testing.T) {
	t.Parallel()
	in := newHeldIngest()
	// Each event carries a 10 KB body and the same as its indexed copy:
	// three fit in 64 KB, four do not.
	b := store.NewBatcherWith(store.BatchOptions{Committers: 2, MaxBatch: 256, MaxBatchBytes: 64 << 10}, in.ingest)
	defer b.Close()
	big := strings.Repeat("x", 10<<10)
	in.sendBehind(t, b, 10, func(i int) store.NewEvent {
		return event(fmt.Sprintf(`{"n":%d,"pad":%q}`, i, big), fmt.Sprintf("k%d", i), false)
	}, func() bool { return store.Taken(b) >= 5 }) // the waiting committer has a full batch and one left over
	sizes := in.state().sizes
	total := 0
	for _, n := range sizes {
		require.LessOrEqual(t, n, 3, "batch sizes %v", sizes)
		total += n
	}
	require.Equal(t, 11, total)
	require.Contains(t, sizes, 3, "batch sizes %v", sizes)
}

// heldIngest stands in for Store.Ingest: it records each batch's size and
// how many run at once, and holds the first batch until release is closed.
type heldIngest struct {
	entered, release chan struct{}
	once             sync.Once
	mu               sync.Mutex
	running          int
	seen             heldState
}

type heldState struct {
	sizes []int
	most  int // batches running at once, at most
}

func newHeldIngest() *heldIngest {
	return &heldIngest{entered: make(chan struct{}), release: make(chan struct{})}
}

func (h *heldIngest) ingest(_ context.Context, events []store.NewEvent) ([]store.IngestResult, error) {
	h.mu.Lock()
	h.running++
	h.seen.most = max(h.seen.most, h.running)
	h.seen.sizes = append(h.seen.sizes, len(events))
	h.mu.Unlock()
	first := false
	h.once.Do(func() { first = true }) // (Do itself would hold the others back)
	if first {
		close(h.entered)
		<-h.release // the first batch holds on
	}
	h.mu.Lock()
	h.running--
	h.mu.Unlock()
	return make([]store.IngestResult, len(events)), nil
}

// sendBehind sends request 0 (one event, made by ev) through b and, once
// its batch is held, requests 1 to n; when ready reports true it lets the
// held batch go, and it returns when every request is answered.
func (h *heldIngest) sendBehind(t *testing.T, b *store.Batcher, n int, ev func(i int) store.NewEvent, ready func() bool) {
	var wg sync.WaitGroup
	send := func(i int) {
		defer wg.Done()
		res, err := b.Ingest(context.Background(), []store.NewEvent{ev(i)})
		require.NoError(t, err)
		require.Len(t, res, 1)
	}
	wg.Add(1)
	go send(0)
	<-h.entered
	for i := 1; i <= n; i++ {
		wg.Add(1)
		go send(i)
	}
	for !ready() {
		runtime.Gosched()
	}
	close(h.release)
	wg.Wait()
}

// state is what has been recorded so far.
func (h *heldIngest) state() heldState {
	h.mu.Lock()
	defer h.mu.Unlock()
	return heldState{sizes: slices.Clone(h.seen.sizes), most: h.seen.most}
}
