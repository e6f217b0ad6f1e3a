package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/casetrail/casetrail/migrations"
)

// Migrator applies the embedded migrations as the database owner (url
// connects as the owner, not as AppRole). A session advisory lock keeps two
// servers starting at once from racing.
type Migrator struct {
	db       *sql.DB
	provider *goose.Provider
}

// NewMigrator connects to url for migrating. url may carry the pool's own
// parameters (pool_max_conns and the like), as the server's DATABASE_URL
// does: they are read as the pool reads them and not sent to the database.
func NewMigrator(url string) (*Migrator, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database url: %w", redact(err))
	}
	sqlDB := stdlib.OpenDB(*cfg.ConnConfig)
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		sqlDB.Close()
		return nil, err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrations.FS, goose.WithSessionLocker(locker))
	if err != nil {
		sqlDB.Close()
		return nil, err
	}
	return &Migrator{db: sqlDB, provider: p}, nil
}

// Close releases the connection.
func (m *Migrator) Close() error { return m.db.Close() }

// Up applies every pending migration and reports each one to out.
func (m *Migrator) Up(ctx context.Context, out io.Writer) error {
	results, err := m.provider.Up(ctx)
	for _, r := range results {
		fmt.Fprintf(out, "migrated up %s (%s)\n", r.Source.Path, r.Duration.Round(time.Millisecond))
	}
	return migrationError(err)
}

// migrationError is err as interpretError says it, naming the migration
// that failed.
func migrationError(err error) error {
	var partial *goose.PartialError
	if errors.As(err, &partial) && partial.Failed != nil && partial.Failed.Source != nil {
		return fmt.Errorf("migration %s: %w", partial.Failed.Source.Path, interpretError(partial.Err))
	}
	return interpretError(err)
}

// Down rolls back the latest migration.
func (m *Migrator) Down(ctx context.Context, out io.Writer) error {
	if err := m.notNewer(ctx); err != nil {
		return err
	}
	r, err := m.provider.Down(ctx)
	if r != nil && err == nil {
		fmt.Fprintf(out, "migrated down %s\n", r.Source.Path)
	}
	if errors.Is(err, goose.ErrNoNextVersion) {
		return errors.New("nothing to roll back: no migration is applied")
	}
	return migrationError(err)
}

// DownTo rolls back every migration above version.
func (m *Migrator) DownTo(ctx context.Context, version int64, out io.Writer) error {
	if err := m.notNewer(ctx); err != nil {
		return err
	}
	results, err := m.provider.DownTo(ctx, version)
	for _, r := range results {
		fmt.Fprintf(out, "migrated down %s\n", r.Source.Path)
	}
	return migrationError(err)
}

// Status writes one line per migration.
func (m *Migrator) Status(ctx context.Context, out io.Writer) error {
	statuses, err := m.provider.Status(ctx)
	if err != nil {
		return interpretError(err)
	}
	for _, s := range statuses {
		applied := "pending"
		if s.State == goose.StateApplied {
			applied = "applied " + s.AppliedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(out, "%05d  %-40s  %s\n", s.Source.Version, s.Source.Path, applied)
	}
	current, target, err := m.provider.GetVersions(ctx)
	if err != nil {
		return interpretError(err)
	}
	if current > target {
		fmt.Fprintf(out, "%05d  %-40s  applied by a newer casetrail: this binary knows migrations up to %05d\n", current, "(not this binary's)", target)
	}
	return nil
}

// notNewer refuses to roll back a database a newer casetrail migrated: its
// newest migration is not this binary's to undo.
func (m *Migrator) notNewer(ctx context.Context) error {
	current, target, err := m.provider.GetVersions(ctx)
	if err != nil {
		return interpretError(err)
	}
	if current > target {
		return fmt.Errorf("%w: the database is at migration %d, which a newer casetrail applied (this binary knows up to %d); roll it back with that casetrail", ErrRefused, current, target)
	}
	return nil
}

// Ready reports whether the database answers, carries every migration of
// this binary and, unless the store was opened ReadOnly, takes writes.
func (s *Store) Ready(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return interpretError(err)
	}
	sqlDB := stdlib.OpenDBFromPool(s.pool)
	defer sqlDB.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrations.FS)
	if err != nil {
		return err
	}
	current, target, err := p.GetVersions(ctx)
	if err != nil {
		return interpretError(err)
	}
	if current < target {
		return fmt.Errorf("database schema is at version %d, this binary needs %d: run `casetrail migrate up`", current, target)
	}
	if current > target {
		// A newer casetrail migrated it: this binary may no longer be
		// able to store (a changed ingest function answers 503).
		return fmt.Errorf("database schema is at version %d, newer than this binary's %d: upgrade this server", current, target)
	}
	if s.readOnly {
		return nil
	}
	writable, err := s.q.DatabaseTakesWrites(ctx)
	if err != nil {
		return interpretError(err)
	}
	if !writable {
		return errors.New("the database takes no writes (a standby, or a database set read-only): no event could be stored")
	}
	return nil
}
