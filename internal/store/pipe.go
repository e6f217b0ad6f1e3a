package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/casetrail/casetrail/db"
)

// Pipe is one connection on which batches queue behind each other: the
// next batch's statement is written while the one before it still runs, and
// the database starts it the moment that one has committed, without waiting
// for a round trip to the committer. Each batch is its own transaction
// (Bind, Execute, Sync): it commits at its Sync, before its outcome is read,
// and an error in one batch discards nothing of the next.
//
// Pipe also paces the writers: Ingest tells its caller when the next batch
// should be written, shortly before the one just written is expected to
// start its last stretch, so that the next batch gathers as much as it can
// and still reaches the database before it would wait.
type Pipe struct {
	connect func(context.Context) (*pgconn.PgConn, error)
	// typeMap encodes under writeMu, where it memoizes its plans, and scans
	// in the waiters, concurrently, where it only reads (see NewPipe).
	typeMap *pgtype.Map

	writeMu sync.Mutex // one writer at a time; held while writing
	wbuf    []byte     // the messages, reused from batch to batch

	// readMu is held by the one waiter reading answers off the connection:
	// the waiter whose answer is next reads it itself (and any answers
	// before it), so that no other goroutine has to wake it.
	readMu sync.Mutex

	mu     sync.Mutex // guards what follows; never held while writing or reading
	conn   net.Conn
	fe     *pgproto3.Frontend
	stmt   *prepared
	queue  []*piped // written and not yet answered, oldest first
	closed bool
	pace   pacer
	// used is when the connection was made or last answered; a batch
	// written after it has been idle for idleCheck first checks that it
	// still reaches its backend.
	used      time.Time
	idleCheck time.Duration
}

// prepared is the pipe's statement on its connection, with the wire format
// of each parameter and result column.
type prepared struct {
	*pgconn.StatementDescription
	paramFormats, resultFormats []int16
}

func prepare(m *pgtype.Map, desc *pgconn.StatementDescription) *prepared {
	p := &prepared{StatementDescription: desc,
		paramFormats: make([]int16, len(desc.ParamOIDs)), resultFormats: make([]int16, len(desc.Fields))}
	for i, oid := range desc.ParamOIDs {
		p.paramFormats[i] = m.FormatCodeForOID(oid)
	}
	for i, f := range desc.Fields {
		p.resultFormats[i] = m.FormatCodeForOID(f.DataTypeOID)
	}
	return p
}

// piped is one written statement waiting for its answer.
type piped struct {
	written time.Time
	events  int
	conn    net.Conn
	fe      *pgproto3.Frontend
	stmt    *prepared
	rows    [][][]byte
	err     error
	done    chan struct{}
}

// errPipeClosed fails statements written to a closed pipe.
var errPipeClosed = errors.New("store: pipe closed")

// pipeStatement names the one prepared statement on a pipe's connection.
const pipeStatement = "casetrail_pipe"

// NewPipe opens nothing yet: the connection is made by the first Ingest and
// again after a failure. lead is how long before the expected end of the
// batch in the database the next one is released to be written.
func (s *Store) NewPipe(lead time.Duration) *Pipe {
	cfg := s.pool.Config().ConnConfig
	m := pgtype.NewMap()
	// The map builds its lookup by Go type on first use, which a scan can
	// make; build it now, so that the waiters' scans, run concurrently with
	// each other and with the writer's encoding, never write to the map.
	m.TypeForValue(nil)
	return &Pipe{
		connect:   func(ctx context.Context) (*pgconn.PgConn, error) { return pgconn.ConnectConfig(ctx, &cfg.Config) },
		typeMap:   m,
		pace:      pacer{lead: lead},
		idleCheck: pipeIdleCheck,
	}
}

// pipeIdleCheck is how long the pipe's connection may be idle before the
// next batch checks it, as the pool checks its connections; pipeCheckTimeout
// bounds the check.
const (
	pipeIdleCheck    = time.Second
	pipeCheckTimeout = 5 * time.Second
)

// Ingest is Store.Ingest on the pipe. written is called once the statement
// is on its way, with the time at which the next batch should be written.
func (p *Pipe) Ingest(ctx context.Context, events []NewEvent, written func(next time.Time)) ([]IngestResult, error) {
	return ingestOn(ctx, db.New(pipeDB{p: p, written: written, events: len(events)}), events)
}

// Close closes the connection; statements still waiting fail.
func (p *Pipe) Close() {
	p.mu.Lock()
	p.closed = true
	c := p.conn
	p.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// write sends one execution of sql with args, for a batch of n events, and
// returns what will hold its answer, and when the next statement should be
// written.
func (p *Pipe) write(ctx context.Context, sql string, args []any, n int) (*piped, time.Time, error) {
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	conn, stmt, err := p.connection(ctx, sql)
	if err != nil {
		return nil, time.Time{}, err
	}
	if stmt.SQL != sql {
		return nil, time.Time{}, fmt.Errorf("store: a pipe runs one statement, not %.40q", sql)
	}
	if len(args) != len(stmt.ParamOIDs) {
		return nil, time.Time{}, fmt.Errorf("store: %d arguments for %d parameters", len(args), len(stmt.ParamOIDs))
	}

	// Bind, with each parameter encoded in place: the batch is copied once,
	// into the message.
	w := append(p.wbuf[:0], 'B', 0, 0, 0, 0) // the length is set below
	w = append(w, 0)                         // the unnamed portal
	w = append(append(w, pipeStatement...), 0)
	w = appendInt16s(w, stmt.paramFormats)
	w = binary.BigEndian.AppendUint16(w, uint16(len(args)))
	for i, arg := range args {
		at := len(w)
		w = append(w, 0, 0, 0, 0)
		nb, err := p.typeMap.Encode(stmt.ParamOIDs[i], stmt.paramFormats[i], arg, w)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("store: parameter %d: %w", i+1, err)
		}
		if nb == nil { // NULL
			binary.BigEndian.PutUint32(w[at:], math.MaxUint32)
			continue
		}
		w = nb
		binary.BigEndian.PutUint32(w[at:], uint32(len(w)-at-4))
	}
	w = appendInt16s(w, stmt.resultFormats)
	if len(w)-1 > math.MaxInt32 {
		return nil, time.Time{}, fmt.Errorf("store: a batch of %d bytes is too large for one message", len(w))
	}
	binary.BigEndian.PutUint32(w[1:], uint32(len(w)-1))
	w, _ = (&pgproto3.Execute{}).Encode(w)
	w, _ = (&pgproto3.Sync{}).Encode(w)
	p.wbuf = reusable(w)

	q := &piped{written: time.Now(), events: n, conn: conn, stmt: stmt, done: make(chan struct{})}
	p.mu.Lock()
	q.fe = p.fe
	if p.conn != conn { // the reader found the connection broken meanwhile
		p.mu.Unlock()
		return nil, time.Time{}, fmt.Errorf("%w: connection lost", ErrUnavailable)
	}
	p.queue = append(p.queue, q)
	next := p.pace.written(q.written, n)
	p.mu.Unlock()

	if _, err := conn.Write(w); err != nil {
		p.fail(conn, fmt.Errorf("%w: %v", ErrUnavailable, err))
	}
	return q, next, nil
}

// connection returns the pipe's connection, making it and preparing sql on
// it when there is none. The caller holds writeMu.
func (p *Pipe) connection(ctx context.Context, sql string) (net.Conn, *prepared, error) {
	p.mu.Lock()
	conn, fe, stmt, closed := p.conn, p.fe, p.stmt, p.closed
	idle := len(p.queue) == 0 && time.Since(p.used) >= p.idleCheck
	p.mu.Unlock()
	if closed {
		return nil, nil, errPipeClosed
	}
	if conn != nil && idle {
		if err := p.alive(conn, fe); err != nil {
			p.fail(conn, err) // nothing waits on it
			conn = nil
		}
	}
	if conn != nil {
		return conn, stmt, nil
	}
	pc, err := p.connect(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrUnavailable, redact(err))
	}
	desc, err := pc.Prepare(ctx, pipeStatement, sql, nil)
	if err != nil {
		pc.Close(context.WithoutCancel(ctx))
		return nil, nil, err
	}
	// From here on the connection is read and written directly.
	if err := pc.SyncConn(ctx); err != nil {
		pc.Close(context.WithoutCancel(ctx))
		return nil, nil, err
	}
	hc, err := pc.Hijack()
	if err != nil {
		pc.Close(context.WithoutCancel(ctx))
		return nil, nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		hc.Conn.Close()
		return nil, nil, errPipeClosed
	}
	stmt = prepare(p.typeMap, desc)
	p.conn, p.fe, p.stmt = hc.Conn, hc.Frontend, stmt
	p.used = time.Now()
	p.pace.restart()
	return hc.Conn, stmt, nil
}

// alive checks with one round trip (a Sync, answered ReadyForQuery) that an
// idle connection still reaches its backend. The server may have ended it
// meanwhile (its idle_session_timeout, an operator's pg_terminate_backend,
// a restart), and the next batch written on it would fail unavailable
// although the database is up; a network that silently lost it is found by
// the check's deadline. The caller holds writeMu, and nothing is queued.
func (p *Pipe) alive(conn net.Conn, fe *pgproto3.Frontend) error {
	p.readMu.Lock()
	defer p.readMu.Unlock()
	if err := conn.SetDeadline(time.Now().Add(pipeCheckTimeout)); err != nil {
		return err
	}
	if _, err := conn.Write([]byte{'S', 0, 0, 0, 4}); err != nil {
		return err
	}
	for {
		msg, err := fe.Receive()
		if err != nil {
			return err
		}
		switch m := msg.(type) {
		case *pgproto3.ErrorResponse:
			return pgconn.ErrorResponseToPgError(m)
		case *pgproto3.ReadyForQuery:
			return conn.SetDeadline(time.Time{})
		}
	}
}

// await returns once q is answered (or has failed), reading the answers
// off q's connection in order, its own and those before it, unless another
// waiter is already reading.
func (p *Pipe) await(q *piped) {
	p.readMu.Lock()
	defer p.readMu.Unlock()
	for {
		select {
		case <-q.done:
			return
		default:
		}
		if err := p.readAnswer(q.conn, q.fe); err != nil {
			p.fail(q.conn, fmt.Errorf("%w: %v", ErrUnavailable, err))
		}
	}
}

// readAnswer reads one statement's answer, through its ReadyForQuery, and
// hands it to the oldest statement waiting. The caller holds readMu.
func (p *Pipe) readAnswer(conn net.Conn, fe *pgproto3.Frontend) error {
	var rows [][][]byte
	var stmtErr error
	for {
		msg, err := fe.Receive()
		if err != nil {
			return err
		}
		switch m := msg.(type) {
		case *pgproto3.DataRow:
			row := make([][]byte, len(m.Values))
			for i, v := range m.Values {
				if v != nil {
					row[i] = append([]byte(nil), v...)
				}
			}
			rows = append(rows, row)
		case *pgproto3.ErrorResponse:
			stmtErr = pgconn.ErrorResponseToPgError(m)
		case *pgproto3.ReadyForQuery:
			now := time.Now()
			p.mu.Lock()
			if p.conn != conn || len(p.queue) == 0 {
				p.mu.Unlock()
				return errors.New("an answer nobody waits for")
			}
			q := p.queue[0]
			p.queue = p.queue[1:]
			p.used = now
			p.pace.answered(now, q, p.queue)
			p.mu.Unlock()
			q.rows, q.err = rows, stmtErr
			close(q.done)
			return nil
		}
	}
}

// fail closes conn and fails every statement waiting on it.
func (p *Pipe) fail(conn net.Conn, err error) {
	conn.Close()
	p.mu.Lock()
	if p.conn != conn {
		p.mu.Unlock()
		return
	}
	waiting := p.queue
	p.conn, p.fe, p.stmt, p.queue = nil, nil, nil, nil
	p.mu.Unlock()
	for _, q := range waiting {
		q.err = err
		close(q.done)
	}
}

// reusable keeps a buffer for the next batch unless an unusually large
// batch grew it.
func reusable(buf []byte) []byte {
	if cap(buf) > 1<<20 {
		return nil
	}
	return buf
}

func appendInt16s(w []byte, vs []int16) []byte {
	w = binary.BigEndian.AppendUint16(w, uint16(len(vs)))
	for _, v := range vs {
		w = binary.BigEndian.AppendUint16(w, uint16(v))
	}
	return w
}

// pacer is when the pipe's batches are expected to end, and so when the
// next batch should be written.
type pacer struct {
	lead    time.Duration // how long before the expected end
	service serviceModel  // a batch's time in the database by its size
	lastEnd time.Time     // when the last answer arrived
	nextEnd time.Time     // when the last batch written is expected to be answered
}

// written records a batch of n events written at t, and returns when the
// next batch should be written: lead before this one is expected to end.
// It starts when the batches queued before it have ended, or at once.
func (c *pacer) written(t time.Time, n int) time.Time {
	begin := later(t, c.nextEnd)
	c.nextEnd = begin.Add(c.service.estimate(n))
	return later(begin, c.nextEnd.Add(-c.lead))
}

// answered records the answer at t of q, the oldest batch queued, with the
// batches still queued behind it. Its time ran from when it was written or
// when the one before it was answered. What is still queued starts now,
// whether q ended before or after it was expected to.
func (c *pacer) answered(t time.Time, q *piped, queued []*piped) {
	c.service.observe(q.events, t.Sub(later(q.written, c.lastEnd)))
	c.lastEnd, c.nextEnd = t, t
	for _, w := range queued {
		c.nextEnd = c.nextEnd.Add(c.service.estimate(w.events))
	}
}

// restart forgets the batches of a lost connection, not their times.
func (c *pacer) restart() { c.lastEnd, c.nextEnd = time.Time{}, time.Time{} }

// serviceModel estimates a batch's time in the database from its number of
// events: a line fitted by least squares to the batches answered, each
// weighing a sixteenth less with every newer one. Under load a batch holds
// from a few events to a hundred, and one average time for all of them
// released the next batch well after a short one had ended or long before a
// long one would.
type serviceModel struct {
	w, x, y, xx, xy float64 // decayed sums of 1, n, t, n², n·t
}

const serviceDecay = 15.0 / 16

func (m *serviceModel) observe(n int, took time.Duration) {
	x, y := float64(n), float64(took)
	m.w = m.w*serviceDecay + 1
	m.x = m.x*serviceDecay + x
	m.y = m.y*serviceDecay + y
	m.xx = m.xx*serviceDecay + x*x
	m.xy = m.xy*serviceDecay + x*y
}

// estimate is the expected time of a batch of n events: the fitted line at
// n, or the mean time while the recent batches have been of about one size,
// and never less than nothing.
func (m *serviceModel) estimate(n int) time.Duration {
	if m.w == 0 {
		return 0
	}
	meanX, meanY := m.x/m.w, m.y/m.w
	est := meanY
	if varX := m.xx/m.w - meanX*meanX; varX >= 1 {
		slope := max((m.xy/m.w-meanX*meanY)/varX, 0)
		est += slope * (float64(n) - meanX)
	}
	return time.Duration(max(est, 0))
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// pipeDB is the part of db.DBTX that sqlc's EventsIngest uses, on a pipe.
type pipeDB struct {
	p       *Pipe
	written func(next time.Time)
	events  int
}

func (d pipeDB) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	q, next, err := d.p.write(ctx, sql, args, d.events)
	if err != nil {
		return nil, err
	}
	if d.written != nil {
		d.written(next)
	}
	d.p.await(q)
	if q.err != nil {
		return nil, q.err
	}
	return &pipeRows{typeMap: d.p.typeMap, stmt: q.stmt, rows: q.rows, at: -1}, nil
}

var errPipeOnlyQuery = errors.New("store: a pipe runs queries only")

func (pipeDB) Exec(context.Context, string, ...any) (pgconn.CommandTag, error) {
	return pgconn.CommandTag{}, errPipeOnlyQuery
}

func (pipeDB) QueryRow(context.Context, string, ...any) pgx.Row { return errRow{errPipeOnlyQuery} }

func (pipeDB) CopyFrom(context.Context, pgx.Identifier, []string, pgx.CopyFromSource) (int64, error) {
	return 0, errPipeOnlyQuery
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// pipeRows are a statement's answer, read in full.
type pipeRows struct {
	typeMap *pgtype.Map
	stmt    *prepared
	rows    [][][]byte
	at      int
	err     error
}

func (r *pipeRows) Close()                                       {}
func (r *pipeRows) Err() error                                   { return r.err }
func (r *pipeRows) CommandTag() pgconn.CommandTag                { return pgconn.CommandTag{} }
func (r *pipeRows) FieldDescriptions() []pgconn.FieldDescription { return r.stmt.Fields }
func (r *pipeRows) RawValues() [][]byte                          { return r.rows[r.at] }
func (r *pipeRows) Conn() *pgx.Conn                              { return nil }

func (r *pipeRows) Next() bool {
	if r.err != nil || r.at+1 >= len(r.rows) {
		return false
	}
	r.at++
	return true
}

func (r *pipeRows) Scan(dest ...any) error {
	row := r.rows[r.at]
	if len(dest) != len(row) || len(row) != len(r.stmt.Fields) {
		r.err = fmt.Errorf("store: %d destinations for %d columns", len(dest), len(row))
		return r.err
	}
	for i, f := range r.stmt.Fields {
		if err := r.typeMap.Scan(f.DataTypeOID, r.stmt.resultFormats[i], row[i], dest[i]); err != nil {
			r.err = fmt.Errorf("store: column %s: %w", f.Name, err)
			return r.err
		}
	}
	return nil
}

func (r *pipeRows) Values() ([]any, error) { return nil, errPipeOnlyQuery }
