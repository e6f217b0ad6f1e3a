package main

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// slowAck is the goal's bound on an acknowledgement's latency: -tail shows
// when in a measurement the acknowledgements slower than this finished.
const slowAck = 50 * time.Millisecond

// span is a stretch of a measurement, in seconds from its start, in which
// one of PostgreSQL's background workers was seen at one task.
type span struct {
	what       string
	start, end float64
}

// watcher samples, every 20 ms during a measurement, pg_stat_activity for
// autovacuum workers and for processes waiting on I/O or locks, and the
// WAL's insert position, so that a slow spell
// can be laid beside what ran in it and what it wrote. It reads on an admin
// connection of its own. The WAL is the cluster's: it holds the server's
// log rounds and any autovacuum's writes besides the ingest.
type watcher struct {
	stop  chan struct{}
	done  sync.WaitGroup
	spans []span
	err   error
	// checkpoints is the checkpoints the cluster completed during the
	// measurement; the bench's own before it is not among them.
	checkpoints int64
	// wal is the bytes written to the WAL, by the tenth of a second of
	// the watch in which they were seen.
	wal map[int]int64

	conn   *pgx.Conn
	before int64 // checkpoints completed before the measurement
}

// watch connects; the sampling starts with begin.
func watch(ctx context.Context, admin string) (*watcher, error) {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return nil, err
	}
	w := &watcher{stop: make(chan struct{}), wal: map[int]int64{}}
	before, err := checkpointCount(ctx, conn)
	if err != nil {
		conn.Close(ctx)
		return nil, err
	}
	w.conn, w.before = conn, before
	return w, nil
}

// begin starts sampling, with times counted from start.
func (w *watcher) begin(ctx context.Context, start time.Time) {
	conn, before := w.conn, w.before
	w.done.Add(1)
	go func() {
		defer w.done.Done()
		defer conn.Close(context.WithoutCancel(ctx))
		open := map[string]*span{}
		var lastLSN int64
		if err := conn.QueryRow(ctx, walQuery).Scan(&lastLSN); err != nil {
			w.err = err
			return
		}
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				for _, s := range open {
					w.spans = append(w.spans, *s)
				}
				after, err := checkpointCount(ctx, conn)
				w.checkpoints, w.err = after-before, err
				return
			case <-tick.C:
			}
			at := time.Since(start).Seconds()
			var lsn int64
			if err := conn.QueryRow(ctx, walQuery).Scan(&lsn); err != nil {
				w.err = err
				return
			}
			w.wal[int(at*10)] += lsn - lastLSN
			lastLSN = lsn
			// Autovacuum at its task; any other process waiting, by
			// its pid, so that one long wait shows as one span.
			rows, err := conn.Query(ctx, `SELECT CASE WHEN backend_type = 'autovacuum worker'
					THEN coalesce(datname, '') || ': ' || query
					ELSE 'wait ' || backend_type || ' ' || pid || ' ' || wait_event_type || ':' || wait_event END
				FROM pg_stat_activity
				WHERE (backend_type = 'autovacuum worker' AND query <> '')
				   OR (pid <> pg_backend_pid() AND wait_event_type IN ('IO', 'LWLock', 'Lock', 'BufferPin')
				       AND (state = 'active' OR backend_type <> 'client backend'))`)
			if err != nil {
				w.err = err
				return
			}
			seen, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				w.err = err
				return
			}
			for _, q := range seen {
				if s, ok := open[q]; ok {
					s.end = at
				} else {
					open[q] = &span{what: strings.TrimPrefix(q, "autovacuum: "), start: at, end: at}
				}
			}
			for q, s := range open {
				if !slices.Contains(seen, q) {
					w.spans = append(w.spans, *s)
					delete(open, q)
				}
			}
		}
	}()
}

// walQuery is the WAL's insert position, in bytes.
const walQuery = "SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn"

func checkpointCount(ctx context.Context, conn *pgx.Conn) (int64, error) {
	var n int64
	err := conn.QueryRow(ctx, "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter").Scan(&n)
	return n, err
}

// finish stops the sampling and records what it saw in r.
func (w *watcher) finish(r *row) error {
	close(w.stop)
	w.done.Wait()
	slices.SortFunc(w.spans, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	r.background, r.checkpoints, r.wal = w.spans, w.checkpoints, w.wal
	return w.err
}

// printTail prints, for every round of the watched level, when the slow
// acknowledgements finished (in tenths of a second from the start of the
// measurement), what autovacuum ran meanwhile, and every wait seen in
// three samples or more in a row (about 40 ms or longer; the same wait
// begun again between two samples counts as one).
func printTail(rows []row, level int, modes []string) {
	fmt.Printf("\nacknowledgements over %v at %d senders, by the tenth of a second in which they finished; autovacuum and waits of 40 ms or more meanwhile:\n", slowAck, level)
	for _, mode := range modes {
		for _, r := range rows {
			if r.mode != mode || r.senders != level || len(r.done) == 0 {
				continue // another level, or all of it warm-up
			}
			// Acknowledgements, and those over slowAck, by the tenth of a
			// second in which they came.
			end := slices.Max(r.done).Seconds()
			acks, slow := make([]int, int(end*10)+1), make([]int, int(end*10)+1)
			over := 0
			for i, d := range r.done {
				k := int(d.Seconds() * 10)
				acks[k]++
				if r.lat[i] > slowAck {
					slow[k]++
					over++
				}
			}
			var parts []string
			for k, n := range slow {
				if n > 0 {
					parts = append(parts, fmt.Sprintf("%.1fs:%d", float64(k)/10, n))
				}
			}
			if len(parts) > 12 {
				// A tail spread over the whole measurement, as the naive
				// path's is: no one spell to place.
				parts = []string{fmt.Sprintf("spread over %d tenths", len(parts))}
			}
			fmt.Printf("  %s round %d: %.1f s, p99 %.1f ms, %d of %d over; %s\n", mode, r.round+1, end,
				ms(percentile(r.lat, 99)), over, len(r.lat), strings.Join(parts, " "))
			// Acknowledgements and the WAL's growth per tenth of a second:
			// the first five tenths, then the median of the others but
			// the last, which is cut short.
			var first []string
			var restAcks, restWAL []float64
			for k, n := range acks[:len(acks)-1] {
				if k < 5 {
					first = append(first, fmt.Sprintf("%d acks %.0f KB", n, float64(r.wal[k])/1024))
				} else {
					restAcks, restWAL = append(restAcks, float64(n)), append(restWAL, float64(r.wal[k])/1024)
				}
			}
			if len(restAcks) > 0 {
				fmt.Printf("      per tenth: %s; then a median of %.0f acks %.0f KB\n", strings.Join(first, ", "), median(restAcks), median(restWAL))
			}
			if r.checkpoints > 0 {
				fmt.Printf("      %d checkpoints completed during it\n", r.checkpoints)
			}
			for _, s := range r.background {
				if strings.HasPrefix(s.what, "wait ") && s.end-s.start < 0.03 {
					// Seen in one or two samples: an ordinary wait.
					continue
				}
				fmt.Printf("      %.2f-%.2fs %s\n", s.start, s.end, s.what)
			}
		}
	}
}
