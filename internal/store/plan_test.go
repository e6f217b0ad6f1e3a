package store_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/casetrail/casetrail/db"
	"github.com/casetrail/casetrail/internal/dbtest"
	"github.com/casetrail/casetrail/internal/store"
)

// The ingest functions run with generic plans (planning every call would
// cost more than the work), so no statement in them may be planned as a
// scan of a whole table: on a store of millions of events that would make
// every batch slower than the last. auto_explain shows the plan of every
// statement the functions run, on tables large enough for the planner to
// prefer an index wherever one can be used.
func TestIngestPlansUseIndexes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	admin, err := pgx.Connect(ctx, d.URL)
	require.NoError(t, err)
	defer admin.Close(ctx)
	base := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	_, err = admin.Exec(ctx, `
		INSERT INTO events (received_at, occurred_at, source, kind, type, credential, idempotency_key, phone, agent_id, body, body_sha256)
		SELECT $1::timestamptz + g * interval '1 second', $1::timestamptz + g * interval '1 second', 'service-hooks', 'service-hooks',
		       CASE WHEN g % 2 = 0 THEN 'outbound-call' ELSE 'abandoned-conversation' END, 'c', 'k' || g,
		       '+4477009' || lpad((g % 20000)::text, 5, '0'), 'a', '\x7b7d', '\x00'
		FROM generate_series(1, 100000) AS g`, base)
	require.NoError(t, err)
	_, err = admin.Exec(ctx, `
		INSERT INTO idempotency_keys (source, key, explicit, body_sha256, event_id, received_at)
		SELECT 'service-hooks', 'k' || g, false, '\x00', g, now() FROM generate_series(1, 100000) AS g;
		SELECT casetrail_rebuild_abandon_facts();
		ANALYZE;`)
	require.NoError(t, err)

	var mu sync.Mutex
	var plans []string
	cfg, err := pgx.ParseConfig(d.URL)
	require.NoError(t, err)
	for k, v := range map[string]string{
		"role": store.AppRole, "session_preload_libraries": "auto_explain",
		"auto_explain.log_min_duration": "0", "auto_explain.log_nested_statements": "on",
		"auto_explain.log_level": "notice", "client_min_messages": "notice",
	} {
		cfg.RuntimeParams[k] = v
	}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		mu.Lock()
		defer mu.Unlock()
		plans = append(plans, n.Message)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	defer conn.Close(ctx)

	// A batch with everything the functions handle: new abandons and calls
	// on numbers the store knows, a key already held, an attachment.
	at := base.Add(36 * time.Hour)
	batch := []store.NewEvent{
		hookEvent("abandoned-conversation", "new-abandon", "+447700900002", "Q1", at, 1000),
		hookEvent("outbound-call", "new-call", "+447700900004", "", at, -1),
		hookEvent("outbound-call", "k2", "+447700900002", "", at, -1), // held since the fill
	}
	batch[0].Blobs = []store.Blob{{SHA256: [32]byte{1}, Content: []byte("attachment")}}
	for round := range 3 {
		for i := range batch {
			batch[i].IdempotencyKey = fmt.Sprintf("%s-%d", batch[i].IdempotencyKey, round)
		}
		batch[2].IdempotencyKey = "k2"
		rows, err := db.New(conn).EventsIngest(ctx, store.IngestParams(batch))
		require.NoError(t, err)
		require.Len(t, rows, len(batch))
		require.False(t, rows[2].Stored, "k2 is held")
	}

	mu.Lock()
	defer mu.Unlock()
	all := strings.Join(plans, "\n")
	for _, stmt := range []string{"Insert on events", "Insert on idempotency_keys", "Insert on abandon_facts", "Update on abandon_facts", "Insert on blobs"} {
		require.Contains(t, all, stmt, "auto_explain must show every statement")
	}
	var settings []string
	err = admin.QueryRow(ctx, `SELECT proconfig FROM pg_proc WHERE proname = 'casetrail_ingest'`).Scan(&settings)
	require.NoError(t, err)
	require.Contains(t, settings, "plan_cache_mode=force_generic_plan", "the plans checked are the ones every call uses")

	// Empty partitions are rightly scanned; a large table never is.
	var large []string
	err = admin.QueryRow(ctx, `SELECT array_agg(relname::text) FROM pg_class WHERE relkind = 'r' AND reltuples >= 10000`).Scan(&large)
	require.NoError(t, err)
	require.Contains(t, large, "abandon_facts")
	require.Contains(t, large, "idempotency_keys")
	for _, p := range plans {
		for _, m := range seqScan.FindAllStringSubmatch(p, -1) {
			if slices.Contains(large, m[1]) {
				t.Errorf("a statement of the ingest functions scans all of %s:\n%s", m[1], p)
			}
		}
	}
}

var seqScan = regexp.MustCompile(`Seq Scan on (\w+)`)
