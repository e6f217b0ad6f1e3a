package store

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/casetrail/casetrail/db"
)

// CommitTogether commits the requests as one batch, as a committer would
// when they arrive together, and returns each request's outcome.
func CommitTogether(s *Store, requests [][]NewEvent) ([][]IngestResult, []error) {
	return commitTogether(&Batcher{ingest: s.Ingest, maxBatch: 1 << 20, maxBytes: 1 << 30}, nil, requests)
}

// CommitTogetherWith is CommitTogether with ingest in place of Store.Ingest.
func CommitTogetherWith(ingest func(context.Context, []NewEvent) ([]IngestResult, error), requests [][]NewEvent) ([][]IngestResult, []error) {
	return commitTogether(&Batcher{ingest: ingest, maxBatch: 1 << 20, maxBytes: 1 << 30}, nil, requests)
}

// CommitTogetherPiped is CommitTogether for a batch that holds the first
// token and so runs on the pipe p.
func CommitTogetherPiped(s *Store, p *Pipe, requests [][]NewEvent) ([][]IngestResult, []error) {
	b := &Batcher{ingest: s.Ingest, piped: p.Ingest, maxBatch: 1 << 20, maxBytes: 1 << 30, first: make(chan struct{}, 1)}
	b.first <- struct{}{}
	return commitTogether(b, b.first, requests)
}

func commitTogether(b *Batcher, token chan struct{}, requests [][]NewEvent) ([][]IngestResult, []error) {
	batch := make([]*pending, len(requests))
	for i, evs := range requests {
		batch[i] = &pending{ctx: context.Background(), events: evs, done: make(chan struct{})}
	}
	b.commit(batch, token)
	results := make([][]IngestResult, len(batch))
	errs := make([]error, len(batch))
	for i, p := range batch {
		<-p.done
		results[i], errs[i] = p.results, p.err
	}
	return results, errs
}

// IngestParams are the arguments Ingest passes to casetrail_ingest for a
// batch of distinct keys, in the given order.
func IngestParams(events []NewEvent) db.EventsIngestParams {
	order := make([]int, len(events))
	for i := range order {
		order[i] = i
	}
	return ingestParams(events, order)
}

// NewBatcherWith is NewBatcher with ingest in place of Store.Ingest.
func NewBatcherWith(opts BatchOptions, ingest func(context.Context, []NewEvent) ([]IngestResult, error)) *Batcher {
	return newBatcher(ingest, nil, opts)
}

// NewPipedBatcherWith is NewBatcherWith whose batches holding the first
// token go through piped.
func NewPipedBatcherWith(opts BatchOptions, ingest func(context.Context, []NewEvent) ([]IngestResult, error),
	piped func(context.Context, []NewEvent, func(time.Time)) ([]IngestResult, error)) *Batcher {
	return newBatcher(ingest, piped, opts)
}

// Taken is how many requests committers have taken from the queue.
func Taken(b *Batcher) int64 { return b.taken.Load() }

// InterpretError is interpretError, for tests of the mapping.
var InterpretError = interpretError

// InterpretStatementError is interpretStatementError, and ErrCanceled the
// mark it gives a statement the database cancelled on its own.
var (
	InterpretStatementError = interpretStatementError
	ErrCanceled             = errCanceled
)

// BatchTime is one answered batch: its events and its time in the database.
type BatchTime struct {
	Events int
	Took   time.Duration
}

// EstimateAfter is the pipe's estimate of a batch of n events once the
// batches given, oldest first, have been answered.
func EstimateAfter(batches []BatchTime, n int) time.Duration {
	var m serviceModel
	for _, b := range batches {
		m.observe(b.Events, b.Took)
	}
	return m.estimate(n)
}

// Pacer is the pipe's pacing, on times the test gives.
type Pacer struct{ c pacer }

func NewPacer(lead time.Duration) *Pacer { return &Pacer{pacer{lead: lead}} }

// Written records a batch of n events written at t and returns when the
// next one should be written.
func (p *Pacer) Written(t time.Time, n int) time.Time { return p.c.written(t, n) }

// Answered records the answer at t of the oldest batch, of n events written
// at w, with the sizes of those still queued.
func (p *Pacer) Answered(t, w time.Time, n int, queued ...int) {
	behind := make([]*piped, len(queued))
	for i, m := range queued {
		behind[i] = &piped{events: m}
	}
	p.c.answered(t, &piped{written: w, events: n}, behind)
}

// CheckPipeWhenIdleFor sets how long p's connection may be idle before the
// next batch checks it.
func CheckPipeWhenIdleFor(p *Pipe, d time.Duration) { p.idleCheck = d }

// PoolConn is the network connection of one of s's pooled sessions, held
// until the test ends.
func PoolConn(t testing.TB, s *Store) net.Conn {
	c, err := s.pool.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Release)
	return c.Conn().PgConn().Conn()
}

// PipeConn is the pipe's network connection, nil while it has none.
func PipeConn(p *Pipe) net.Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conn
}

// OwnPlans is conn as Store.planned runs its queries: each planned for its
// own parameters.
func OwnPlans(conn db.DBTX) db.DBTX { return ownPlans{conn} }
