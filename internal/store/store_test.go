package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/casetrail/casetrail/internal/dbtest"
	"github.com/casetrail/casetrail/internal/store"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

type testBundle struct {
	db    *dbtest.DB
	store *store.Store
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	d := dbtest.New(t)
	s, err := store.Open(context.Background(), d.URL, store.Options{Logger: dbtest.Logger(t)})
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return &testBundle{db: d, store: s}
}

func event(body string, key string, explicit bool) store.NewEvent {
	now := time.Now().UTC()
	return store.NewEvent{
		ReceivedAt: now, OccurredAt: now,
		Source: "case-updates", Kind: "case-updates", Type: "CHANGE_CASE_STATUS",
		Credential: "test", IdempotencyKey: key, ExplicitKey: explicit,
		CaseID: "case-1", Body: []byte(body), BodySHA256: sha256.Sum256([]byte(body)),
		Doc: []byte(body),
	}
}

func TestMigrationsUpDownUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.NewEmpty(t)
	m, err := store.NewMigrator(d.URL)
	require.NoError(t, err)
	defer m.Close()

	var out bytes.Buffer
	require.NoError(t, m.Up(ctx, &out))
	require.Contains(t, out.String(), "00001_events.sql")
	requireTable(t, d.URL, "events", true)

	// One step down leaves exactly the newest migration pending.
	require.NoError(t, m.Down(ctx, &out))
	var status bytes.Buffer
	require.NoError(t, m.Status(ctx, &status))
	lines := strings.Split(strings.TrimSpace(status.String()), "\n")
	require.Equal(t, 1, strings.Count(status.String(), "pending"))
	require.Contains(t, lines[len(lines)-1], "pending")
	requireTable(t, d.URL, "events", true)
	require.NoError(t, m.DownTo(ctx, 0, &out))
	requireTable(t, d.URL, "events", false)
	require.EqualError(t, m.Down(ctx, &out), "nothing to roll back: no migration is applied")

	require.NoError(t, m.Up(ctx, &out))
	requireTable(t, d.URL, "events", true)

	out.Reset()
	require.NoError(t, m.Status(ctx, &out))
	require.Contains(t, out.String(), "applied")
	require.NotContains(t, out.String(), "pending")
}

// The server's DATABASE_URL may size its pool (pool_max_conns); the
// migrations run over the same URL and must not send that to the database
// as a setting, which it refuses.
func TestPoolParametersInTheURL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.NewEmpty(t)
	url := d.URL + "&pool_max_conns=3&pool_min_conns=1"
	m, err := store.NewMigrator(url)
	require.NoError(t, err)
	defer m.Close()
	require.NoError(t, m.Up(ctx, &bytes.Buffer{}))
	requireTable(t, d.URL, "events", true)

	s, err := store.Open(ctx, url, store.Options{Logger: dbtest.Logger(t)})
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Ready(ctx))
	require.EqualValues(t, 3, s.MaxConns())
}

func requireTable(t *testing.T, url, name string, want bool) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var exists bool
	require.NoError(t, conn.QueryRow(context.Background(), "SELECT to_regclass($1) IS NOT NULL", name).Scan(&exists))
	require.Equal(t, want, exists, "table %s", name)
}

// Migrating down never drops what the store holds: the events, nor the
// salts their leaves commit to.
func TestMigrationsDownKeepWhatIsStored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.NewEmpty(t)
	m, err := store.NewMigrator(d.URL)
	require.NoError(t, err)
	defer m.Close()
	require.NoError(t, m.Up(ctx, &bytes.Buffer{}))
	s, err := store.Open(ctx, d.URL, store.Options{})
	require.NoError(t, err)
	defer s.Close()
	res, err := s.Ingest(ctx, []store.NewEvent{event(`{"kept":1}`, "kept", true)})
	require.NoError(t, err)
	_, err = s.Reject(ctx, store.Rejected{ReceivedAt: time.Now(), Source: "s", Status: 400, Cause: "invalid_json",
		Credential: "c", Body: []byte("{")})
	require.NoError(t, err)
	// The schema's refusal is the operator's to read, in its own words.
	err = m.DownTo(ctx, 11, &bytes.Buffer{})
	require.ErrorIs(t, err, store.ErrRefused)
	require.ErrorContains(t, err, "rejected requests keep their bodies in rejected_bodies")
	require.ErrorContains(t, err, "migration 00012_", "the migration that refused is named")
	require.NotContains(t, err.Error(), "database error")
	requireTable(t, d.URL, "rejected_bodies", true)
	conn := d.Connect(t)
	_, err = conn.Exec(ctx, `SET session_replication_role = replica; DELETE FROM rejected_bodies; RESET session_replication_role`)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `INSERT INTO log_leaves (idx, event_id, leaf_hash, body_hash) VALUES (0, $1, '\x00', '\x00')`, res[0].ID)
	require.NoError(t, err)

	require.ErrorContains(t, m.DownTo(ctx, 2, &bytes.Buffer{}), "the log holds leaves")
	requireTable(t, d.URL, "log_leaves", true)
	_, err = conn.Exec(ctx, `SET session_replication_role = replica`)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `DELETE FROM log_leaves`)
	require.NoError(t, err)
	require.ErrorContains(t, m.DownTo(ctx, 0, &bytes.Buffer{}), "events or rejected requests are stored")
	requireTable(t, d.URL, "events", true)
	require.Equal(t, 1, countEvents(t, d.URL))
}

func TestReadyNeedsMigrations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	empty := dbtest.NewEmpty(t)
	s, err := store.Open(ctx, empty.URL, store.Options{})
	require.NoError(t, err)
	defer s.Close()
	require.Error(t, s.Ready(ctx), "a database without the schema is not ready")

	m, err := store.NewMigrator(empty.URL)
	require.NoError(t, err)
	defer m.Close()
	require.NoError(t, m.Up(ctx, &bytes.Buffer{}))
	require.NoError(t, s.Ready(ctx))

	require.NoError(t, m.Down(ctx, &bytes.Buffer{}))
	require.Error(t, s.Ready(ctx), "a schema behind the binary is not ready")
	require.NoError(t, m.Up(ctx, &bytes.Buffer{}))

	// A newer casetrail migrated it further: this binary may not be able
	// to store, and is not ready.
	var version int64
	require.NoError(t, empty.Connect(t).QueryRow(ctx, "SELECT max(version_id) FROM goose_db_version").Scan(&version))
	_, err = empty.Connect(t).Exec(ctx, "INSERT INTO goose_db_version (version_id, is_applied) VALUES ($1, true)", version+1)
	require.NoError(t, err)
	require.ErrorContains(t, s.Ready(ctx), fmt.Sprintf("database schema is at version %d, newer than this binary's %d: upgrade this server", version+1, version))
	var status bytes.Buffer
	require.NoError(t, m.Status(ctx, &status))
	require.Contains(t, status.String(), fmt.Sprintf("%05d  (not this binary's)", version+1))
	require.Contains(t, status.String(), fmt.Sprintf("applied by a newer casetrail: this binary knows migrations up to %05d", version))
	err = m.Down(ctx, &bytes.Buffer{})
	require.ErrorIs(t, err, store.ErrRefused)
	require.ErrorContains(t, err, "roll it back with that casetrail")
}

// A database that takes no writes (a standby left behind by a failover, a
// database set read-only) is not ready: every event would be answered 503.
// A store opened ReadOnly, the report replica's, only reads and is.
func TestReadyNeedsWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	conn := d.Connect(t)
	var name string
	require.NoError(t, conn.QueryRow(ctx, "SELECT current_database()").Scan(&name))
	_, err := conn.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" SET default_transaction_read_only = on")
	require.NoError(t, err)

	s, err := store.Open(ctx, d.URL, store.Options{})
	require.NoError(t, err)
	defer s.Close()
	require.ErrorContains(t, s.Ready(ctx), "takes no writes")

	replica, err := store.Open(ctx, d.URL, store.Options{ReadOnly: true})
	require.NoError(t, err)
	defer replica.Close()
	require.NoError(t, replica.Ready(ctx))
}

func TestIngestIdempotency(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)

	res, err := b.store.Ingest(ctx, []store.NewEvent{event(`{"a":1}`, "k1", true)})
	require.NoError(t, err)
	require.False(t, res[0].Duplicate)
	first := res[0].ID

	res, err = b.store.Ingest(ctx, []store.NewEvent{event(`{"a":1}`, "k1", true)})
	require.NoError(t, err)
	require.True(t, res[0].Duplicate)
	require.Equal(t, first, res[0].ID)

	res, err = b.store.Ingest(ctx, []store.NewEvent{event(`{"a":2}`, "k1", true)})
	require.NoError(t, err)
	require.ErrorIs(t, res[0].Err, store.ErrConflict)

	// Within one batch the second use of a key is a duplicate of the first.
	res, err = b.store.Ingest(ctx, []store.NewEvent{event(`{"b":1}`, "k2", true), event(`{"b":1}`, "k2", true)})
	require.NoError(t, err)
	require.NotEqual(t, res[0].Duplicate, res[1].Duplicate)
	require.Equal(t, res[0].ID, res[1].ID)

	require.Equal(t, 2, countEvents(t, b.db.URL))
}

func TestIngestConcurrentDeliveriesStoreOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	const senders = 50
	var wg sync.WaitGroup
	results := make([]store.IngestResult, senders)
	errs := make([]error, senders)
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := b.store.Ingest(ctx, []store.NewEvent{event(`{"same":true}`, "derived", false)})
			errs[i] = err
			if err == nil {
				results[i] = r[0]
			}
		}()
	}
	wg.Wait()
	fresh := 0
	for i := range senders {
		require.NoError(t, errs[i])
		require.Equal(t, results[0].ID, results[i].ID)
		if !results[i].Duplicate {
			fresh++
		}
	}
	require.Equal(t, 1, fresh)
	require.Equal(t, 1, countEvents(t, b.db.URL))
}

func TestAppendOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	_, err := b.store.Ingest(ctx, []store.NewEvent{event(`{"x":1}`, "k", true), withBlob(event(`{"y":1}`, "k2", true))})
	require.NoError(t, err)
	_, err = b.store.Reject(ctx, store.Rejected{ReceivedAt: time.Now(), Source: "s", Status: 400, Cause: "invalid_json", Credential: "c", Body: []byte("x")})
	require.NoError(t, err)

	for _, asRole := range []string{store.AppRole, ""} { // the app role, then the owner
		for _, stmt := range []string{
			"UPDATE events SET type = 'forged'",
			"DELETE FROM events",
			"TRUNCATE events",
			"TRUNCATE events_default",
			"UPDATE idempotency_keys SET key = 'x'",
			"DELETE FROM idempotency_keys",
			"TRUNCATE blobs",
			"DELETE FROM blobs",
			"DELETE FROM rejected_requests",
			"UPDATE rejected_requests SET body_sha256 = NULL",
			"UPDATE rejected_bodies SET body = 'forged'",
			"DELETE FROM rejected_bodies",
			"TRUNCATE rejected_bodies",
			"UPDATE event_attachments SET event_id = 0",
			"DELETE FROM event_attachments",
			"TRUNCATE event_attachments",
		} {
			t.Run(fmt.Sprintf("%s/%s", asRole, stmt), func(t *testing.T) {
				conn := b.db.Connect(t)
				if asRole != "" {
					_, err = conn.Exec(ctx, "SET ROLE "+asRole)
					require.NoError(t, err)
				}
				_, err = conn.Exec(ctx, stmt)
				require.Error(t, err)
			})
		}
	}
	require.Equal(t, 2, countEvents(t, b.db.URL))
	var refs int
	require.NoError(t, b.db.Connect(t).QueryRow(ctx, "SELECT count(*) FROM event_attachments").Scan(&refs))
	require.Equal(t, 1, refs, "the attachment's reference")
}

func withBlob(e store.NewEvent) store.NewEvent {
	content := []byte("attachment bytes")
	e.Blobs = []store.Blob{{SHA256: sha256.Sum256(content), Content: content}}
	return e
}

func TestEnsurePartitions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	future := time.Date(2031, 5, 17, 0, 0, 0, 0, time.UTC)
	n, err := b.store.EnsurePartitions(ctx, future)
	require.NoError(t, err)
	require.Equal(t, 4, n)
	n, err = b.store.EnsurePartitions(ctx, future)
	require.NoError(t, err)
	require.Equal(t, 0, n)
	requireTable(t, b.db.URL, "events_2031_04", true)
	requireTable(t, b.db.URL, "events_2031_07", true)

	// An event received in that month lands in its partition.
	e := event(`{"future":1}`, "f", true)
	e.ReceivedAt = future
	_, err = b.store.Ingest(ctx, []store.NewEvent{e})
	require.NoError(t, err)
	conn := b.db.Connect(t)
	var part string
	require.NoError(t, conn.QueryRow(ctx, "SELECT tableoid::regclass::text FROM events WHERE idempotency_key = 'f'").Scan(&part))
	require.Equal(t, "events_2031_05", part)
}

func countEvents(t *testing.T, url string) int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var n int
	require.NoError(t, conn.QueryRow(context.Background(), "SELECT count(*) FROM events").Scan(&n))
	return n
}

func TestSessionsAreDurableWhateverTheServerDefault(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	// The throw-away test server runs with synchronous_commit=off.
	conn := b.db.Connect(t)
	var serverDefault string
	require.NoError(t, conn.QueryRow(ctx, "SHOW synchronous_commit").Scan(&serverDefault))
	require.Equal(t, "off", serverDefault)

	v, err := b.store.Setting(ctx, "synchronous_commit")
	require.NoError(t, err)
	require.Equal(t, "on", v)
	role, err := b.store.Setting(ctx, "role")
	require.NoError(t, err)
	require.Equal(t, store.AppRole, role)
}

// A sequencing round commits without waiting for its flush, and only it:
// the connection it ran on, the pool's only one here, commits the next
// ingest synchronously again.
func TestSequenceRoundLeavesCommitsSynchronous(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	s, err := store.Open(ctx, d.URL, store.Options{MaxConns: 1, Logger: dbtest.Logger(t)})
	require.NoError(t, err)
	t.Cleanup(s.Close)
	_, err = s.Ingest(ctx, []store.NewEvent{event(`{"a":1}`, "k-1", true)})
	require.NoError(t, err)

	round := func() (int, error) {
		n, _, err := s.SequenceRound(ctx, 100, func(prev store.LogState, pending []store.LeafSource) (store.LogAppend, error) {
			app := store.LogAppend{State: store.LogState{Size: prev.Size + int64(len(pending)), Root: make([]byte, 32), RangeHashes: [][]byte{make([]byte, 32)},
				LastXid: pending[len(pending)-1].CommitXid, LastEvent: pending[len(pending)-1].EventID}}
			for i, p := range pending {
				app.Leaves = append(app.Leaves, store.LogLeaf{Idx: prev.Size + int64(i), EventID: p.EventID, LeafHash: make([]byte, 32), BodyHash: p.BodyHash})
			}
			return app, nil
		})
		return n, err
	}
	// A round takes only events behind every open transaction of the
	// cluster; the tests running beside this one may hold one open a while.
	deadline := time.Now().Add(30 * time.Second)
	sequenced, err := round()
	for err == nil && sequenced == 0 && time.Now().Before(deadline) {
		<-time.After(20 * time.Millisecond)
		sequenced, err = round()
	}
	require.NoError(t, err)
	require.Equal(t, 1, sequenced)
	v, err := s.Setting(ctx, "synchronous_commit")
	require.NoError(t, err)
	require.Equal(t, "on", v, "the round's setting must not outlive its transaction")
}

// TestRetryableErrorsAreUnavailable: errors a retry can cure answer 503
// (ErrUnavailable); others stay errors of their own. A hot standby that
// cancels a report to replay the primary's changes reports 40001.
func TestRetryableErrorsAreUnavailable(t *testing.T) {
	t.Parallel()
	for code, unavailable := range map[string]bool{
		"40001": true,  // serialization failure: a conflict with recovery on a standby
		"57P01": true,  // the server is shutting down
		"08006": true,  // connection failure
		"53300": true,  // too many connections
		"57014": true,  // query cancelled: statement_timeout, an operator, or the caller
		"23505": false, // unique violation
		"42P01": false, // undefined table
	} {
		err := store.InterpretError(&pgconn.PgError{Code: code, Message: "m"})
		require.Equal(t, unavailable, errors.Is(err, store.ErrUnavailable), code)
	}
}

// A statement the database cancelled while the caller's context was live
// (its statement_timeout) is marked so that a batch is retried request by
// request; one the caller's own context cancelled is not.
func TestStatementCancelledByTheDatabase(t *testing.T) {
	t.Parallel()
	canceled := &pgconn.PgError{Code: "57014", Message: "canceling statement due to statement timeout"}
	err := store.InterpretStatementError(context.Background(), canceled)
	require.ErrorIs(t, err, store.ErrUnavailable)
	require.ErrorIs(t, err, store.ErrCanceled)
	require.NotContains(t, err.Error(), "canceling statement", "the server's message is left out")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = store.InterpretStatementError(ctx, canceled)
	require.ErrorIs(t, err, store.ErrUnavailable)
	require.NotErrorIs(t, err, store.ErrCanceled)
	require.Equal(t, store.InterpretError(canceled).Error(), err.Error(), "as interpretError has it")
}

// An event received while its month had no partition (a server clock far
// ahead) stays in the default partition; that month is then left to it,
// and the months around it are still made.
func TestEnsurePartitionsBesideEventsInTheDefault(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	e := event(`{"ahead":1}`, "ahead", true)
	e.ReceivedAt = time.Date(2031, 5, 17, 0, 0, 0, 0, time.UTC)
	_, err := b.store.Ingest(ctx, []store.NewEvent{e})
	require.NoError(t, err)

	n, err := b.store.EnsurePartitions(ctx, time.Date(2031, 5, 2, 0, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	require.Equal(t, 3, n)
	requireTable(t, b.db.URL, "events_2031_04", true)
	requireTable(t, b.db.URL, "events_2031_05", false)
	requireTable(t, b.db.URL, "events_2031_06", true)
	requireTable(t, b.db.URL, "events_2031_07", true)

	conn := b.db.Connect(t)
	var part string
	require.NoError(t, conn.QueryRow(ctx, "SELECT tableoid::regclass::text FROM events WHERE idempotency_key = 'ahead'").Scan(&part))
	require.Equal(t, "events_default", part)
	// The month goes on taking events, beside the one already there.
	e2 := event(`{"ahead":2}`, "ahead-2", true)
	e2.ReceivedAt = time.Date(2031, 5, 20, 0, 0, 0, 0, time.UTC)
	_, err = b.store.Ingest(ctx, []store.NewEvent{e2})
	require.NoError(t, err)
	require.Equal(t, 2, countEvents(t, b.db.URL))
}

// A retry that shares a batch with another body under the same key, behind
// it, is still a duplicate of the stored event; the other body is the
// conflict. Within one call and between two requests of one batch alike.
func TestRetryBehindAConflictInOneBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	stored, err := b.store.Ingest(ctx, []store.NewEvent{event(`{"n":1}`, "K", true)})
	require.NoError(t, err)
	want := store.IngestResult{ID: stored[0].ID, Duplicate: true}

	res, err := b.store.Ingest(ctx, []store.NewEvent{event(`{"other":2}`, "K", true), event(`{"n":1}`, "K", true)})
	require.NoError(t, err)
	require.ErrorIs(t, res[0].Err, store.ErrConflict)
	require.Equal(t, want, res[1])

	together, errs := store.CommitTogether(b.store, [][]store.NewEvent{
		{event(`{"other":2}`, "K", true)},
		{event(`{"n":1}`, "K", true)},
	})
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	require.ErrorIs(t, together[0][0].Err, store.ErrConflict)
	require.Equal(t, want, together[1][0])

	// A new key's first event stored now answers its repeats as before.
	res, err = b.store.Ingest(ctx, []store.NewEvent{event(`{"n":3}`, "L", true), event(`{"n":3}`, "L", true), event(`{"n":4}`, "L", true)})
	require.NoError(t, err)
	require.False(t, res[0].Duplicate)
	require.Equal(t, store.IngestResult{ID: res[0].ID, Duplicate: true}, res[1])
	require.ErrorIs(t, res[2].Err, store.ErrConflict)
	require.Equal(t, 2, countEvents(t, b.db.URL))
}

// A server that refuses the login (a changed password, a role or database
// that is gone) is a database this server cannot reach: unavailable, as a
// refused connection is, so that reads answer 503 as ingest does.
func TestLoginRefusedIsUnavailable(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	s, err := store.Open(context.Background(), dbtest.WithDatabase(d.URL, "no_such_database"), store.Options{})
	require.NoError(t, err)
	defer s.Close()
	_, err = s.Setting(context.Background(), "fsync")
	require.ErrorIs(t, err, store.ErrUnavailable)
	require.ErrorContains(t, err, "3D000")
}

// A server that cannot be reached is named with the cause, so that an
// operator can tell a refused connection from an unknown host; the
// password never appears.
func TestConnectFailureSaysWhy(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now
	s, err := store.Open(context.Background(), "postgres://owner:Pa55-w0rd-xyz@"+addr+"/casetrail?sslmode=disable", store.Options{})
	require.NoError(t, err)
	defer s.Close()
	_, err = s.Setting(context.Background(), "fsync")
	require.ErrorIs(t, err, store.ErrUnavailable)
	require.ErrorContains(t, err, "connection refused")
	require.ErrorContains(t, err, addr)
	require.NotContains(t, err.Error(), "Pa55-w0rd-xyz")
}

// Ingest keeps which stored event refers to which attachment, each pair
// once, through the pool and through a pipe alike: an attachment listed
// twice by one event is one reference, and a repeat of a key, in the batch
// or later, adds none.
func TestIngestKeepsAttachmentReferences(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	blob := func(content string) store.Blob {
		return store.Blob{SHA256: sha256.Sum256([]byte(content)), Content: []byte(content)}
	}
	a, bb, c := blob("a"), blob("b"), blob("c")
	with := func(e store.NewEvent, blobs ...store.Blob) store.NewEvent { e.Blobs = blobs; return e }
	refs := func() []string {
		rows, err := b.db.Connect(t).Query(ctx, "SELECT encode(sha256, 'hex') || ' ' || event_id FROM event_attachments ORDER BY 1")
		require.NoError(t, err)
		out, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		return out
	}
	ref := func(bl store.Blob, id int64) string { return fmt.Sprintf("%x %d", bl.SHA256, id) }

	res, err := b.store.Ingest(ctx, []store.NewEvent{
		with(event(`{"n":1}`, "k1", true), a, bb, a),
		with(event(`{"n":2}`, "k2", true), a),
		with(event(`{"n":1}`, "k1", true), c), // a repeat within the batch
		event(`{"n":3}`, "k3", true),
	})
	require.NoError(t, err)
	want := []string{ref(a, res[0].ID), ref(a, res[1].ID), ref(bb, res[0].ID)}
	slices.Sort(want)
	require.Equal(t, want, refs())

	p := b.store.NewPipe(0)
	defer p.Close()
	again := ingestPiped(p, with(event(`{"n":2}`, "k2", true), a), with(event(`{"n":4}`, "k4", true), c, bb))
	waitFor(t, again.done, "the piped batch to be answered")
	require.NoError(t, again.err)
	require.True(t, again.results[0].Duplicate)
	want = append(want, ref(bb, again.results[1].ID), ref(c, again.results[1].ID))
	slices.Sort(want)
	require.Equal(t, want, refs())
}

// A URL that does not parse is refused with the reason, never with the
// URL or its password.
func TestCheckURLSaysWhyWithoutThePassword(t *testing.T) {
	t.Parallel()
	for url, why := range map[string]string{
		"postgres://u:s3cretpw@127.0.0.1:1/x?sslmode=bogus":    "sslmode is invalid",
		"postgres://u:s3cretpw@h:99999/x":                      "invalid port",
		"postgres://u:s3cretpw@h/x?pool_max_conns=abc":         "cannot parse pool_max_conns",
		"postgres://u:s3cret%zzpw@h/x":                         "failed to parse as URL",
		"host=h password=s3cretpw port=abc":                    "invalid port",
		"postgres://u:s3cretpw@h/x?statement_timeout=s3cretpw": "",
	} {
		err := store.CheckURL(url)
		if why == "" {
			require.NoError(t, err, url)
			continue
		}
		require.ErrorContains(t, err, why, url)
		require.NotContains(t, err.Error(), "s3cret", url)
		require.NotContains(t, err.Error(), "zz", url)
	}
}
