package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/jackc/pgx/v5"

	"github.com/casetrail/casetrail/internal/localpg"
	"github.com/casetrail/casetrail/internal/store"
)

func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	log := slog.New(slog.NewTextHandler(stderr, nil))
	cfg, rest, err := loadConfig("migrate", args, getenv, stderr)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return fmt.Errorf("usage: casetrail migrate up|down|status [--config FILE]")
	}
	url, stopDB, err := database(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer stopDB()
	m, err := store.NewMigrator(url)
	if err != nil {
		return err
	}
	defer m.Close()
	switch rest[0] {
	case "up":
		return m.Up(ctx, stdout)
	case "down":
		return m.Down(ctx, stdout)
	case "status":
		return m.Status(ctx, stdout)
	}
	return fmt.Errorf("unknown migrate command %q (want up, down or status)", rest[0])
}

func migrateUp(ctx context.Context, url string, log *slog.Logger) error {
	m, err := store.NewMigrator(url)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Up(ctx, logWriter{log}); err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	return nil
}

type logWriter struct{ log *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.log.Info(string(p[:len(p)-1]))
	return len(p), nil
}

// ensureDatabase creates the application database on a fresh local server.
func ensureDatabase(ctx context.Context, srv *localpg.Server, name string) error {
	conn, err := pgx.Connect(ctx, srv.URL("postgres"))
	if err != nil {
		return fmt.Errorf("local PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
			return err
		}
	}
	return nil
}
