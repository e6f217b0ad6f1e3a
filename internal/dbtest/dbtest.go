// Package dbtest gives every test its own PostgreSQL database, cloned from a
// template that is migrated once per server. The server is the one `make
// test` started (CASETRAIL_TEST_PG), or, when a test binary runs on its own, a
// throw-away server that Main starts and stops around the binary's tests.
package dbtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/casetrail/casetrail/internal/localpg"
	"github.com/casetrail/casetrail/internal/store"
	"github.com/casetrail/casetrail/migrations"
)

// EnvAdminURL names the variable holding a superuser URL of the test server's
// maintenance database.
const EnvAdminURL = "CASETRAIL_TEST_PG"

// ServerSettings trade durability for speed; only throw-away test servers
// use them.
var ServerSettings = map[string]string{
	"fsync":              "off",
	"full_page_writes":   "off",
	"synchronous_commit": "off",
	"max_connections":    "400",
}

// Main runs a test binary's tests, starting a throw-away server first when
// none was given.
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Getenv(EnvAdminURL) != "" {
		return m.Run()
	}
	srv, dir, err := StartServer(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "dbtest:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	defer srv.Stop(context.Background()) //nolint:errcheck
	os.Setenv(EnvAdminURL, srv.URL("postgres"))
	return m.Run()
}

// StartServer starts a throw-away server in a new temporary directory.
func StartServer(ctx context.Context) (*localpg.Server, string, error) {
	dir, err := os.MkdirTemp("", "casetrail-pg-")
	if err != nil {
		return nil, "", err
	}
	// TCP: tests put a proxy between the server and PostgreSQL.
	srv, err := localpg.Start(ctx, localpg.Options{DataDir: dir, Settings: ServerSettings, TCP: true})
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	return srv, dir, nil
}

// DB is one test's database.
type DB struct {
	Name string
	// URL connects as the superuser (migrations, tampering in tests); the
	// application's own sessions switch to store.AppRole.
	URL string
}

// Connect opens a superuser connection to the database, closed when t ends.
func (d *DB) Connect(t testing.TB) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), d.URL)
	if err != nil {
		t.Fatalf("dbtest: connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

var (
	templateOnce sync.Once
	templateName string
	templateErr  error
)

// New returns a fresh, migrated database that is dropped when t ends.
func New(t testing.TB) *DB {
	t.Helper()
	templateOnce.Do(func() { templateName, templateErr = ensureTemplate(context.Background()) })
	if templateErr != nil {
		t.Fatalf("dbtest: template: %v", templateErr)
	}
	return create(t, templateName)
}

// NewEmpty returns a database with no migrations applied.
func NewEmpty(t testing.TB) *DB {
	t.Helper()
	return create(t, "template0")
}

func create(t testing.TB, template string) *DB {
	t.Helper()
	ctx := context.Background()
	admin := adminURL(t)
	name := "t_" + randomHex(8)
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("dbtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, template)); err != nil {
		t.Fatalf("dbtest: create database: %v", err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("dbtest: drop: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name)); err != nil {
			t.Errorf("dbtest: drop: %v", err)
		}
	})
	return &DB{Name: name, URL: WithDatabase(admin, name)}
}

// ensureTemplate creates and migrates the template database once per server
// and migration set; test binaries running in parallel wait on an advisory
// lock for the first one to finish.
func ensureTemplate(ctx context.Context) (string, error) {
	admin := os.Getenv(EnvAdminURL)
	if admin == "" {
		return "", fmt.Errorf("%s is not set: run the tests with `make test`, or call dbtest.Main from TestMain", EnvAdminURL)
	}
	name := "tpl_" + migrationsHash()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(7310001)"); err != nil {
		return "", err
	}
	defer conn.Exec(ctx, "SELECT pg_advisory_unlock(7310001)") //nolint:errcheck

	var ready bool
	err = conn.QueryRow(ctx, "SELECT datistemplate FROM pg_database WHERE datname = $1", name).Scan(&ready)
	if err == nil && ready {
		return name, nil
	}
	if err == nil { // left half-built by a crashed run
		if _, err := conn.Exec(ctx, fmt.Sprintf("DROP DATABASE %s WITH (FORCE)", name)); err != nil {
			return "", err
		}
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE template0", name)); err != nil {
		return "", err
	}
	m, err := store.NewMigrator(WithDatabase(admin, name))
	if err != nil {
		return "", err
	}
	err = m.Up(ctx, io.Discard)
	m.Close()
	if err != nil {
		return "", fmt.Errorf("migrate template: %w", err)
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s IS_TEMPLATE true", name)); err != nil {
		return "", err
	}
	return name, nil
}

func migrationsHash() string {
	h := sha256.New()
	fs.WalkDir(migrations.FS, ".", func(path string, d fs.DirEntry, err error) error { //nolint:errcheck
		if err == nil && !d.IsDir() {
			b, _ := fs.ReadFile(migrations.FS, path)
			h.Write([]byte(path))
			h.Write(b)
		}
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:12]
}

func adminURL(t testing.TB) string {
	u := os.Getenv(EnvAdminURL)
	if u == "" {
		t.Fatalf("dbtest: %s is not set: run the tests with `make test`, or call dbtest.Main from TestMain", EnvAdminURL)
	}
	return u
}

// WithDatabase returns url with its database name replaced.
func WithDatabase(rawURL, name string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		panic(err)
	}
	u.Path = "/" + name
	return u.String()
}

// TCPURL returns the same database reached over loopback TCP instead of the
// unix socket, for tests that put a proxy in between.
func TCPURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		panic(err)
	}
	q := u.Query()
	port := q.Get("port")
	q.Del("host")
	q.Del("port")
	u.RawQuery = q.Encode()
	u.Host = "127.0.0.1:" + port
	return u.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Logger sends a component's logs to the test's log; lines logged after the
// test ended (by goroutines still draining) are dropped, since testing
// panics on them.
func Logger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

// StandbyPair starts a throw-away primary and a hot standby of it, both
// stopped when t ends. before runs on the primary first, so that the standby
// starts as a copy of what it made.
func StandbyPair(t testing.TB, before func(primary *localpg.Server)) (primary, standby *localpg.Server) {
	t.Helper()
	ctx := context.Background()
	// Not ServerSettings: a base backup needs full_page_writes on.
	settings := map[string]string{"fsync": "off"}
	primary, err := localpg.Start(ctx, localpg.Options{DataDir: t.TempDir(), Settings: settings})
	if err != nil {
		t.Fatalf("dbtest: primary: %v", err)
	}
	t.Cleanup(func() { primary.Stop(context.Background()) }) //nolint:errcheck
	before(primary)
	standby, err = localpg.StartStandby(ctx, primary, localpg.Options{DataDir: t.TempDir(), Settings: settings})
	if err != nil {
		t.Fatalf("dbtest: standby: %v", err)
	}
	t.Cleanup(func() { standby.Stop(context.Background()) }) //nolint:errcheck
	return primary, standby
}
