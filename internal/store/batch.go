package store

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Batcher is group commit in front of Store.Ingest: concurrent requests'
// events share transactions, so one durable commit (one WAL flush)
// acknowledges many events. It never waits for a batch to fill: a lone
// request is committed at once, and under load a committer gathers what
// arrives while another's transaction runs. A request is answered only
// after the commit that holds its events.
type Batcher struct {
	ingest func(context.Context, []NewEvent) ([]IngestResult, error) // Store.Ingest, or a test's stand-in
	// piped, when set, runs the batches that hold the first token (Pipe.Ingest,
	// or a test's stand-in): the token passes on at the time it names, before
	// the outcome is known.
	piped    func(context.Context, []NewEvent, func(next time.Time)) ([]IngestResult, error)
	pipe     *Pipe
	maxBatch int
	maxBytes int
	queue    chan *pending
	// A committer runs its transaction holding a token: the first, which
	// only one holds at a time, or, when its batch holds parallelBatch
	// events or more, one of the others. Committers gather while they wait.
	first, others chan struct{}
	parallelBatch int
	taken         atomic.Int64 // requests committers have taken from the queue
	wg            sync.WaitGroup
	// mu orders Ingest against Close: once closed is set, nothing more is
	// queued, so the committers' final drain finds every queued request.
	mu     sync.RWMutex
	closed bool
	stop   chan struct{}
}

type pending struct {
	ctx     context.Context
	events  []NewEvent
	size    int // bytes the events take in the statement
	results []IngestResult
	err     error
	done    chan struct{}
}

// BatchOptions bound a Batcher.
type BatchOptions struct {
	// Committers is how many transactions may be in flight at once; while
	// one flushes its commit, the next gathers events. Default 2: on two
	// cores, more committers take smaller batches and the per-transaction
	// cost eats the gain (docs/benchmarks.md).
	Committers int
	// MaxBatch bounds the events of one transaction. Default 256.
	MaxBatch int
	// MaxBatchBytes bounds the bodies, indexed copies and attachments of
	// one transaction, which travel in one message to the database (whose
	// limit is 1 GiB); a single larger request still goes alone. Default
	// 64 MiB.
	MaxBatchBytes int
	// ParallelBatch is the smallest batch that may run alongside another
	// committer's transaction. Smaller batches run one at a time: a
	// committer waits, gathering what arrives, until the one running ends,
	// and starts the moment it does. Two small batches at once cost the
	// database more per event than one batch of both, while under heavy
	// load large batches keep both cores busy (docs/benchmarks.md).
	// Default 64.
	ParallelBatch int
	// Pipeline queues the batches that run one at a time on one connection
	// (Pipe): the next is written shortly before the one running is
	// expected to end, and the database starts it as soon as that one has
	// committed (docs/benchmarks.md).
	Pipeline bool
}

// NewBatcher starts the committers; Close stops them after the queue drains.
func NewBatcher(s *Store, opts BatchOptions) *Batcher {
	if !opts.Pipeline {
		return newBatcher(s.Ingest, nil, opts)
	}
	p := s.NewPipe(pipeLead)
	b := newBatcher(s.Ingest, p.Ingest, opts)
	b.pipe = p
	return b
}

// pipeLead is how long before a piped batch's expected end the next one is
// written: about what writing it and the database reading it take under
// load (docs/benchmarks.md).
const pipeLead = 1500 * time.Microsecond

// newBatcher is NewBatcher in front of any function with the contract of
// Store.Ingest.
func newBatcher(ingest func(context.Context, []NewEvent) ([]IngestResult, error),
	piped func(context.Context, []NewEvent, func(time.Time)) ([]IngestResult, error), opts BatchOptions) *Batcher {
	if opts.Committers <= 0 {
		opts.Committers = 2
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	if opts.ParallelBatch <= 0 {
		opts.ParallelBatch = 64
	}
	if opts.MaxBatchBytes <= 0 {
		opts.MaxBatchBytes = 64 << 20
	}
	b := &Batcher{
		ingest:        ingest,
		piped:         piped,
		maxBatch:      opts.MaxBatch,
		maxBytes:      opts.MaxBatchBytes,
		queue:         make(chan *pending, opts.MaxBatch*opts.Committers),
		first:         make(chan struct{}, 1),
		others:        make(chan struct{}, max(opts.Committers-1, 1)),
		parallelBatch: opts.ParallelBatch,
		stop:          make(chan struct{}),
	}
	for range opts.Committers {
		b.wg.Add(1)
		go b.commitLoop()
	}
	return b
}

// ErrClosed is returned for events handed to a closed Batcher.
var ErrClosed = errors.New("store: batcher closed")

// Ingest queues events and waits for the commit that holds them. It has the
// contract of Store.Ingest.
func (b *Batcher) Ingest(ctx context.Context, events []NewEvent) ([]IngestResult, error) {
	p := &pending{ctx: ctx, events: events, size: batchSize(events), done: make(chan struct{})}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return nil, ErrClosed
	}
	select {
	case b.queue <- p:
	case <-ctx.Done():
		b.mu.RUnlock()
		return nil, ctx.Err()
	}
	b.mu.RUnlock()
	// Once queued, the request waits for its commit even if its caller gave
	// up: the outcome must be known before anything is said about it.
	<-p.done
	return p.results, p.err
}

// Close stops accepting events, commits what is queued, and returns when
// every committer has finished.
func (b *Batcher) Close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.stop)
	}
	b.mu.Unlock()
	b.wg.Wait()
	if b.pipe != nil {
		b.pipe.Close()
	}
}

func (b *Batcher) commitLoop() {
	defer b.wg.Done()
	var carry *pending // taken from the queue but too large for the last batch
	for {
		first := carry
		carry = nil
		if first == nil {
			select {
			case first = <-b.queue:
				b.taken.Add(1)
			case <-b.stop:
				// Drain what was queued before the stop.
				for {
					select {
					case p := <-b.queue:
						b.commit([]*pending{p}, nil)
					default:
						return
					}
				}
			}
		}
		batch := []*pending{first}
		n, size := len(first.events), first.size
		// add takes p into the batch, or keeps it for the next one when the
		// batch has no room for it.
		add := func(p *pending) {
			b.taken.Add(1)
			if n+len(p.events) > b.maxBatch || size+p.size > b.maxBytes {
				carry = p
				return
			}
			batch = append(batch, p)
			n, size = n+len(p.events), size+p.size
		}
		// Take what is queued, then what arrives until this committer may
		// run its transaction: with none running, that is at once.
	queued:
		for carry == nil {
			select {
			case p := <-b.queue:
				add(p)
			default:
				break queued
			}
		}
		var token chan struct{}
		for token == nil {
			queue, others := b.queue, chan struct{}(nil)
			if carry != nil || n >= b.maxBatch {
				queue = nil // full: stop gathering
			}
			if n >= b.parallelBatch || queue == nil {
				others = b.others
			}
			select {
			case p := <-queue:
				add(p)
			case b.first <- struct{}{}:
				token = b.first
			case others <- struct{}{}:
				token = b.others
			}
		}
		b.commit(batch, token)
	}
}

// batchSize is roughly what events take in the statement that stores them.
func batchSize(events []NewEvent) int {
	size := 0
	for i := range events {
		e := &events[i]
		size += len(e.Body) + len(e.Doc) + len(e.Actor) + len(e.Changes) + len(e.Reply) + 512
		for _, bl := range e.Blobs {
			size += len(bl.Content)
		}
	}
	return size
}

// commit stores a batch in one transaction and gives token back (if it
// holds one) once its outcome is known, before answering: waking the batch's
// senders then overlaps the next transaction instead of delaying it. A piped
// batch gives the first token back earlier, when the next batch should be
// written behind it. If the transaction fails for a reason other than the
// database being unreachable, each request is retried on its own before the
// token is given back, so that one bad event fails alone. So is a batch the
// database cancelled on its own (its statement_timeout, which a large batch
// may exceed where each of its requests fits), until one request alone is
// cancelled too.
func (b *Batcher) commit(batch []*pending, token chan struct{}) {
	release := sync.OnceFunc(func() {
		if token != nil {
			<-token
		}
	})
	// The transaction serves several callers; none of them may cancel it
	// halfway for the others.
	ctx := context.WithoutCancel(batch[0].ctx)
	n := 0
	for _, p := range batch {
		n += len(p.events)
	}
	events := make([]NewEvent, 0, n)
	for _, p := range batch {
		events = append(events, p.events...)
	}
	var results []IngestResult
	var err error
	if b.piped != nil && token == b.first {
		var timer *time.Timer
		results, err = b.piped(ctx, events, func(next time.Time) { timer = time.AfterFunc(time.Until(next), release) })
		if timer != nil {
			timer.Stop()
		}
	} else {
		results, err = b.ingest(ctx, events)
	}
	if err != nil && len(batch) > 1 && (!errors.Is(err, ErrUnavailable) || errors.Is(err, errCanceled)) {
		for i, p := range batch {
			b.commit([]*pending{p}, nil)
			if errors.Is(p.err, ErrUnavailable) {
				// One request alone outlasted the database's time (it is
				// slow or locked, not the batch too large), or the
				// database went away meanwhile. The rest are answered
				// unavailable at once (their senders retry) instead of
				// each waiting out the time, or a connect timeout, in
				// turn.
				for _, q := range batch[i+1:] {
					q.err = p.err
					close(q.done)
				}
				break
			}
		}
		release()
		return
	}
	release()
	off := 0
	for _, p := range batch {
		if err != nil {
			p.err = err
		} else {
			p.results = results[off : off+len(p.events)]
		}
		off += len(p.events)
		close(p.done)
	}
}
