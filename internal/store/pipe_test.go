package store_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/casetrail/casetrail/internal/dbtest"
	"github.com/casetrail/casetrail/internal/store"
)

// pipeCall is one Pipe.Ingest running in its own goroutine.
type pipeCall struct {
	written chan struct{} // closed once the statement is on its way
	done    chan struct{}
	results []store.IngestResult
	err     error
}

func ingestPiped(p *store.Pipe, events ...store.NewEvent) *pipeCall {
	c := &pipeCall{written: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		c.results, c.err = p.Ingest(context.Background(), events, func(time.Time) { close(c.written) })
	}()
	return c
}

// waitFor waits for ch to be closed or to yield, and fails the test when
// that takes longer than anything in it should.
func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("still waiting for %s", what)
		panic("unreachable")
	}
}

// lockEvents holds a lock that keeps every insert into events waiting until
// the returned function is called.
func lockEvents(t *testing.T, d *dbtest.DB) (unlock func()) {
	t.Helper()
	ctx := context.Background()
	tx, err := d.Connect(t).Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "LOCK TABLE events IN EXCLUSIVE MODE")
	require.NoError(t, err)
	return func() { require.NoError(t, tx.Rollback(ctx)) }
}

// A batch written while another runs is queued behind it on the same
// connection: it is on its way before the first is answered, and it runs
// after the first has committed.
func TestPipeQueuesBatchesBehindTheRunningOne(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.store.NewPipe(0)
	defer p.Close()

	unlock := lockEvents(t, b.db)
	first := ingestPiped(p, event(`{"n":1}`, "k1", true), event(`{"n":2}`, "k2", true))
	waitFor(t, first.written, "the first batch to be written")
	second := ingestPiped(p, withBlob(event(`{"n":3}`, "k3", true))) // with an attachment: arrays of every kind
	waitFor(t, second.written, "the second batch to be written behind the first")
	select {
	case <-first.done:
		t.Fatal("the first batch was answered while its insert had to wait")
	default:
	}
	unlock()

	waitFor(t, first.done, "the first batch to be answered")
	waitFor(t, second.done, "the second batch to be answered")
	require.NoError(t, first.err)
	require.NoError(t, second.err)
	require.Len(t, first.results, 2)
	require.Len(t, second.results, 1)
	require.Less(t, first.results[1].ID, second.results[0].ID, "the second batch ran after the first")
	require.Equal(t, 3, countEvents(t, b.db.URL))

	// Repeats are answered as through Store.Ingest.
	again := ingestPiped(p, withBlob(event(`{"n":3}`, "k3", true)), event(`{"other":3}`, "k3", true))
	waitFor(t, again.done, "the again batch to be answered")
	require.NoError(t, again.err)
	require.Equal(t, store.IngestResult{ID: second.results[0].ID, Duplicate: true}, again.results[0])
	require.ErrorIs(t, again.results[1].Err, store.ErrConflict)
}

// A batch the database refuses fails alone; the connection goes on.
func TestPipeRefusedBatchSparesTheNext(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.store.NewPipe(0)
	defer p.Close()

	bad := event(`{"bad":1}`, "b1", true)
	bad.Doc = []byte(`{not json`)
	refused := ingestPiped(p, bad)
	waitFor(t, refused.written, "the refused batch to be written")
	next := ingestPiped(p, event(`{"good":1}`, "g1", true)) // on the same connection, behind it
	waitFor(t, refused.done, "the refused batch to be answered")
	waitFor(t, next.done, "the next batch to be answered")
	require.Error(t, refused.err)
	require.NotErrorIs(t, refused.err, store.ErrUnavailable)
	require.NoError(t, next.err)
	require.NotZero(t, next.results[0].ID)
	require.Equal(t, 1, countEvents(t, b.db.URL))
}

// When the connection is lost, every batch waiting on it fails as
// unavailable (nothing may be acknowledged), and the next batch gets a new
// connection.
func TestPipeLostConnection(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	p := b.store.NewPipe(0)
	defer p.Close()

	unlock := lockEvents(t, b.db)
	waiting := ingestPiped(p, event(`{"n":1}`, "k1", true))
	waitFor(t, waiting.written, "the waiting batch to be written")
	behind := ingestPiped(p, event(`{"n":2}`, "k2", true))
	waitFor(t, behind.written, "the behind batch to be written")

	// End the pipe's backend once it waits for the lock.
	admin := b.db.Connect(t)
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		var ended int
		require.NoError(t, admin.QueryRow(waitCtx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = 'casetrail' AND wait_event_type = 'Lock'`).Scan(&ended))
		if ended > 0 {
			break
		}
	}
	waitFor(t, waiting.done, "the waiting batch to be answered")
	waitFor(t, behind.done, "the behind batch to be answered")
	require.ErrorIs(t, waiting.err, store.ErrUnavailable)
	require.ErrorIs(t, behind.err, store.ErrUnavailable)
	unlock()

	after := ingestPiped(p, event(`{"n":3}`, "k3", true))
	waitFor(t, after.done, "the after batch to be answered")
	require.NoError(t, after.err)
	require.Equal(t, 1, countEvents(t, b.db.URL))
}

// A connection the server ended while it was idle is not the database
// being away: the next batch finds it ended before it is written and goes
// on a new one, where without the check it failed unavailable.
func TestPipeReplacesAConnectionEndedWhileIdle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, end := range map[string]func(t *testing.T, d *dbtest.DB, admin *pgx.Conn){
		// The server's idle_session_timeout, set for the database after
		// the pipe's connection was made, ends it once it is idle.
		"idle_session_timeout": func(t *testing.T, d *dbtest.DB, admin *pgx.Conn) {
			_, err := admin.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s SET idle_session_timeout = '50ms'", pgx.Identifier{d.Name}.Sanitize()))
			require.NoError(t, err)
			t.Cleanup(func() {
				_, _ = admin.Exec(context.Background(), fmt.Sprintf("ALTER DATABASE %s RESET idle_session_timeout", pgx.Identifier{d.Name}.Sanitize()))
			})
			// A setting for the database reaches new sessions only.
			_, err = admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
				WHERE datname = current_database() AND application_name = 'casetrail' AND state = 'idle'`)
			require.NoError(t, err)
		},
		// An operator, or a failover, ends the session.
		"pg_terminate_backend": func(t *testing.T, d *dbtest.DB, admin *pgx.Conn) {
			_, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
				WHERE datname = current_database() AND application_name = 'casetrail' AND state = 'idle'`)
			require.NoError(t, err)
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			p := b.store.NewPipe(0)
			defer p.Close()
			store.CheckPipeWhenIdleFor(p, 0)
			admin := b.db.Connect(t)

			first := ingestPiped(p, event(`{"n":1}`, "k1", true))
			waitFor(t, first.done, "the first batch to be answered")
			require.NoError(t, first.err)
			var before int64
			require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
				WHERE datname = current_database() AND application_name = 'casetrail'`).Scan(&before))
			require.NotZero(t, before)

			end(t, b.db, admin)
			if name == "idle_session_timeout" {
				// The pipe's next connection is made under the setting: the
				// first batch makes it, then it idles until the server ends it.
				second := ingestPiped(p, event(`{"n":2}`, "k2", true))
				waitFor(t, second.done, "the second batch to be answered")
				require.NoError(t, second.err)
			}
			waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			for { // until no session of the pipe's is left
				var left int64
				require.NoError(t, admin.QueryRow(waitCtx, `SELECT count(*) FROM pg_stat_activity
					WHERE datname = current_database() AND application_name = 'casetrail'`).Scan(&left))
				if left == 0 {
					break
				}
			}

			after := ingestPiped(p, event(`{"n":3}`, "k3", true))
			waitFor(t, after.done, "the batch after the connection ended to be answered")
			require.NoError(t, after.err)
			require.NotZero(t, after.results[0].ID)
			require.Equal(t, map[string]int{"idle_session_timeout": 3, "pg_terminate_backend": 2}[name], countEvents(t, b.db.URL))
		})
	}
}

// A piped batch hands the first token on at the time the pipe names, before
// its outcome is known, so that the other committer's batch is written
// behind it.
func TestBatcherWritesTheNextBatchBehindTheRunningOne(t *testing.T) {
	t.Parallel()
	entered := make(chan int, 2)
	held := make(chan struct{})
	release := sync.OnceFunc(func() { close(held) })
	var calls atomic.Int32
	piped := func(_ context.Context, events []store.NewEvent, written func(time.Time)) ([]store.IngestResult, error) {
		n := calls.Add(1)
		written(time.Now())
		entered <- len(events)
		if n == 1 {
			<-held
		}
		return make([]store.IngestResult, len(events)), nil
	}
	unpiped := func(context.Context, []store.NewEvent) ([]store.IngestResult, error) {
		return nil, fmt.Errorf("a small batch went around the pipe")
	}
	b := store.NewPipedBatcherWith(store.BatchOptions{Committers: 2, ParallelBatch: 64}, unpiped, piped)
	defer b.Close()
	defer release() // runs first: Close waits for the held batch

	answered := make(chan error, 2)
	send := func(key string) {
		_, err := b.Ingest(context.Background(), []store.NewEvent{event(`{}`, key, true)})
		answered <- err
	}
	go send("k1")
	require.Equal(t, 1, <-entered)
	go send("k2")
	require.Equal(t, 1, waitFor(t, entered, "the second batch to be written while the first is held"))
	release()
	require.NoError(t, <-answered)
	require.NoError(t, <-answered)
}

// The pipe expects a batch to take the time its size predicts from the
// recent batches, so that the next one is released shortly before it ends
// whether it is short or long.
func TestPipeEstimatesABatchByItsSize(t *testing.T) {
	t.Parallel()
	line := func(fixed, perEvent time.Duration, sizes ...int) []store.BatchTime {
		var out []store.BatchTime
		for i := range 40 {
			n := sizes[i%len(sizes)]
			out = append(out, store.BatchTime{Events: n, Took: fixed + time.Duration(n)*perEvent})
		}
		return out
	}
	within := func(want, got time.Duration) {
		t.Helper()
		require.InDelta(t, float64(want), float64(got), float64(want)/100, "want %v, got %v", want, got)
	}

	require.Zero(t, store.EstimateAfter(nil, 30), "nothing answered yet")

	// Batches of 10 and 50 events, 1 ms plus 0.1 ms an event.
	mixed := line(time.Millisecond, 100*time.Microsecond, 10, 50, 10, 50, 30)
	within(2*time.Millisecond, store.EstimateAfter(mixed, 10))
	within(6*time.Millisecond, store.EstimateAfter(mixed, 50))
	within(11*time.Millisecond, store.EstimateAfter(mixed, 100))

	// Batches all of one size say nothing of other sizes: their mean time.
	within(5*time.Millisecond, store.EstimateAfter(line(5*time.Millisecond, 0, 32), 64))

	// Newer batches outweigh older ones: the database got twice as slow.
	twiceAsSlow := line(2*time.Millisecond, 200*time.Microsecond, 10, 50)
	slower := slices.Concat(mixed, twiceAsSlow, twiceAsSlow)
	within(12*time.Millisecond, store.EstimateAfter(slower, 50))

	// Larger batches that happened to be quicker predict no negative time.
	noisy := []store.BatchTime{{Events: 10, Took: 4 * time.Millisecond}, {Events: 50, Took: 2 * time.Millisecond}}
	require.Greater(t, store.EstimateAfter(noisy, 200), time.Duration(0))
}

// The next batch is released lead before the one written is expected to
// end, counting from when the batches before it actually ended: a batch
// that ended early does not hold back the ones after it.
func TestPipeReleasesTheNextBatchFromTheActualEnd(t *testing.T) {
	t.Parallel()
	const ms = time.Millisecond
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	p := store.NewPacer(ms)
	// A history of batches taking 1 ms plus 0.1 ms an event, one at a time.
	clock := -time.Second
	for i := range 40 {
		n := []int{10, 50}[i%2]
		written := at(clock)
		p.Written(written, n)
		clock += ms + time.Duration(n)*100*time.Microsecond
		p.Answered(at(clock), written, n)
		clock += 5 * ms
	}

	// Written with nothing queued: released 1 ms before its expected 6 ms.
	next := p.Written(at(0), 50)
	require.WithinDuration(t, at(5*ms), next, 100*time.Microsecond)

	// Queued behind it: released 1 ms before 6 + 2 ms.
	next = p.Written(at(ms), 10)
	require.WithinDuration(t, at(7*ms), next, 100*time.Microsecond)

	// The first ends early, at 3 ms: the queued one now ends about 2 ms
	// later, so a third written at 4 ms starts then, not at 8 ms.
	p.Answered(at(3*ms), at(0), 50, 10)
	next = p.Written(at(4*ms), 10)
	require.WithinDuration(t, at(6*ms), next, 300*time.Microsecond)

	// Both answered at 5 ms, before anything else is written: the next
	// batch starts when it is written, however late the last was expected.
	p.Answered(at(5*ms), at(ms), 10, 10)
	p.Answered(at(5*ms), at(4*ms), 10)
	next = p.Written(at(9*ms), 50)
	require.Less(t, next.Sub(at(9*ms)), 6*ms)
	require.Greater(t, next.Sub(at(9*ms)), 3*ms)
}
