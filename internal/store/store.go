// Package store owns casetrail's PostgreSQL: the connection pool, the
// migrations, and the one write path every ingested event goes through. pgx
// and sqlc types stop here; callers speak the types of this package.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/casetrail/casetrail/db"
)

// AppRole is the restricted role the application's sessions run as: INSERT
// and SELECT on the event tables, nothing else.
const AppRole = "casetrail_app"

// Domain errors; HTTP maps them to statuses in one place.
var (
	ErrNotFound    = errors.New("not found")
	ErrConflict    = errors.New("conflict")
	ErrUnavailable = errors.New("database unavailable")
	// ErrUnstorable: the database refused a value as such (a data
	// exception, or a value over one of its limits). Sending the same
	// value again fails the same way.
	ErrUnstorable = errors.New("the database cannot store a value as sent")
	// ErrRefused: an operator command refused what it was asked to do, for
	// the reason its message gives.
	ErrRefused = errors.New("refused")
)

// Store is the application's handle on PostgreSQL.
type Store struct {
	pool *pgxpool.Pool
	q    *db.Queries
	// planned runs the queries whose best plan depends on their parameters,
	// each planned for its own (see ownPlans).
	planned  *db.Queries
	log      *slog.Logger
	readOnly bool
}

// ownPlans runs every query as an unnamed statement, which PostgreSQL plans
// for the parameters it is given, where a statement the pool prepared once
// would switch to a generic plan after five executions. A generic plan
// knows nothing of a report's range and expects a few rows: it would sort
// the inbound closes a report compares in index order (ReportHandledCounts)
// rather than merge them as the index holds them, a sort of every close of
// the range, on disk beyond work_mem. Planning costs a round trip and about
// a millisecond, once per report.
type ownPlans struct{ db.DBTX }

func (o ownPlans) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return o.DBTX.Query(ctx, sql, append([]any{pgx.QueryExecModeDescribeExec}, args...)...)
}

func (o ownPlans) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return o.DBTX.QueryRow(ctx, sql, append([]any{pgx.QueryExecModeDescribeExec}, args...)...)
}

// Options tune the pool.
type Options struct {
	MaxConns int32
	Logger   *slog.Logger
	// Owner: sessions run as the login role, not AppRole, for the one
	// operator command that does what AppRole may not (Expunge).
	Owner bool
	// ReadOnly: the database is only read from (the report replica), so
	// Ready does not ask it to take writes.
	ReadOnly bool
}

// Open connects to url. Every session runs as AppRole (unless opts.Owner) and with
// synchronous_commit on, whatever the server's defaults: an acknowledged event
// must survive a crash of the database server.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database url: %w", redact(err))
	}
	if !opts.Owner {
		cfg.ConnConfig.RuntimeParams["role"] = AppRole
	}
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	cfg.ConnConfig.RuntimeParams["application_name"] = "casetrail"
	cfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	// A dead server must surface as 503 quickly rather than hang a sender.
	cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	cfg.ConnConfig.DialFunc = dialer().DialContext
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", redact(err))
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{pool: pool, q: db.New(pool), planned: db.New(ownPlans{pool}), log: log, readOnly: opts.ReadOnly}, nil
}

// Close releases the pool.
func (s *Store) Close() { s.pool.Close() }

// MaxConns is the pool's size: pool_max_conns from the URL, else
// Options.MaxConns, else pgxpool's default (the larger of 4 and the CPUs).
func (s *Store) MaxConns() int32 { return s.pool.Config().MaxConns }

// Setting reads a server setting such as fsync.
func (s *Store) Setting(ctx context.Context, name string) (string, error) {
	v, err := s.q.ServerSetting(ctx, name)
	return v, interpretError(err)
}

// Identity names the database the store is in: the same for a streaming
// replica of it, another for any other database.
func (s *Store) Identity(ctx context.Context) (string, error) {
	id, err := s.q.StoreIdentity(ctx)
	return id, interpretError(err)
}

// EnsurePartitions creates the monthly event partitions from the month before
// now to two months after it, so that no insert waits for DDL.
func (s *Store) EnsurePartitions(ctx context.Context, now time.Time) (int, error) {
	from := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -1, 0)
	n, err := s.q.EventPartitionsEnsure(ctx, db.EventPartitionsEnsureParams{FromMonth: pgDate(from), Months: 4})
	return int(n), interpretError(err)
}

// inTx runs fn in a transaction that is always ended: committed when fn
// succeeds, rolled back (even after ctx is cancelled) otherwise.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return interpretError(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	if err := fn(tx); err != nil {
		return interpretError(err)
	}
	return interpretError(tx.Commit(ctx))
}

// Snapshot runs fn with a Store whose queries all read one snapshot of the
// database (a read-only, repeatable-read transaction), so that what a
// verification of a live store reads in many statements stood together.
// fn's error is returned as it is. Such a transaction takes no transaction
// id, so it holds back neither the sequencer nor the feed.
func (s *Store) Snapshot(ctx context.Context, fn func(*Store) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return interpretError(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read only
	return fn(&Store{pool: s.pool, q: s.q.WithTx(tx), planned: db.New(ownPlans{tx}), log: s.log})
}

// interpretError is the one place driver errors become domain errors. Any
// failure to talk to the server is ErrUnavailable: the caller cannot know
// whether the statement ran and must not claim it did.
func interpretError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNotLeader) ||
		errors.Is(err, ErrRefused) || errors.Is(err, ErrLogRewound) {
		return err
	}
	var pgErr *pgconn.PgError
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) && errors.As(err, &pgErr) {
		// The server refused the login (a changed password, a role or
		// database that is gone): as unreachable as a refused connection.
		// Its message names no password.
		return fmt.Errorf("%w: %s: %s", ErrUnavailable, pgErr.Code, pgErr.Message)
	}
	if errors.As(err, &pgErr) {
		// A serialization failure is worth retrying; it is also what a
		// standby reports when it cancels a query to replay the primary's
		// changes (a conflict with recovery).
		if pgerrcode.IsConnectionException(pgErr.Code) || pgerrcode.IsInsufficientResources(pgErr.Code) ||
			pgerrcode.IsOperatorIntervention(pgErr.Code) || pgErr.Code == pgerrcode.SerializationFailure {
			return fmt.Errorf("%w: %s", ErrUnavailable, pgErr.Code)
		}
		if pgerrcode.IsDataException(pgErr.Code) || pgErr.Code == pgerrcode.ProgramLimitExceeded {
			// The code only: the server's message may quote the value, and
			// this error reaches the sender.
			return fmt.Errorf("%w (SQLSTATE %s)", ErrUnstorable, pgErr.Code)
		}
		if msg, ok := strings.CutPrefix(pgErr.Message, "casetrail: "); ok && pgErr.Code == pgerrcode.RaiseException {
			// The schema's own refusal (an append-only table, a migration
			// that cannot be undone), which says why in its own words.
			return fmt.Errorf("%w: %s", ErrRefused, msg)
		}
		return fmt.Errorf("database error %s: %s", pgErr.Code, pgErr.Message)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	// Dial failures, resets and closed pools carry no SQLSTATE.
	return fmt.Errorf("%w: %v", ErrUnavailable, redact(err))
}

// errCanceled marks a statement the database cancelled on its own
// (SQLSTATE 57014 while the caller's context was live): its
// statement_timeout ran out, or an operator cancelled it.
var errCanceled = errors.New("the database cancelled the statement")

// interpretStatementError is interpretError for a statement run with ctx.
// A statement the database cancelled on its own is still ErrUnavailable (a
// retry later may fit in the time), and also errCanceled: a batch that
// failed so is retried request by request, each smaller than the batch
// (Batcher). A cancel that ctx caused is left as interpretError has it.
func interpretStatementError(ctx context.Context, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == pgerrcode.QueryCanceled && ctx.Err() == nil {
		return fmt.Errorf("%w: %w (SQLSTATE %s)", ErrUnavailable, errCanceled, pgErr.Code)
	}
	return interpretError(err)
}

// CheckURL parses a database URL as Open does, and says what is wrong
// with it, without the URL.
func CheckURL(url string) error {
	_, err := pgxpool.ParseConfig(url)
	return redact(err)
}

// quotedURL is a URL quoted in a parse error, which may hold a password,
// and badEscape an escape quoted from one, which may be part of it.
var (
	quotedURL = regexp.MustCompile(`"[^"]*://[^"]*"`)
	badEscape = regexp.MustCompile(`invalid URL escape "[^"]*"`)
)

// redact drops connection details (which may include a password) from a
// driver error.
func redact(err error) error {
	if err == nil {
		return nil
	}
	var cfgErr *pgconn.ParseConfigError
	if errors.As(err, &cfgErr) {
		// "cannot parse `URL`: why (cause)": the reason is kept, and any
		// URL the cause quotes is taken out.
		why := cfgErr.Error()
		if i := strings.LastIndex(why, "`: "); i >= 0 {
			why = why[i+len("`: "):]
		} else {
			why = ""
		}
		why = quotedURL.ReplaceAllString(why, "the URL")
		why = badEscape.ReplaceAllString(why, "invalid URL escape")
		if why == "" {
			return errors.New("cannot parse the connection string")
		}
		return fmt.Errorf("cannot parse the connection string: %s", why)
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		// The cause (refused, no such host, timed out, a refused login)
		// names the server, not the password; the password is taken out
		// should it appear all the same.
		cause := connErr.Unwrap().Error()
		if connErr.Config != nil && connErr.Config.Password != "" {
			cause = strings.ReplaceAll(cause, connErr.Config.Password, "xxxxx")
		}
		return errors.New("cannot connect to the database server: " + cause)
	}
	return err
}

// IsText reports whether a text column can hold s as it is: valid UTF-8
// without NUL.
func IsText(s string) bool { return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 }

func pgDate(t time.Time) pgtype.Date { return pgtype.Date{Time: t, Valid: true} }

// Text is s as a text column can hold it: invalid UTF-8 and NUL, which
// PostgreSQL refuses, become U+FFFD, as in the indexed copy of a body.
// Header, path and query values are bytes a sender chose; passed through
// Text, a request carrying odd ones is still stored, kept or logged rather
// than refused by the database over and over.
func Text(s string) string {
	if IsText(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}
