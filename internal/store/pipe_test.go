package store_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
