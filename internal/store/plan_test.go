package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"regexp"
	"slices"
	"strconv"
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
	admin := d.Connect(t)
	base := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	_, err := admin.Exec(ctx, `
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

	conn, explained := explaining(t, d.URL, map[string]string{"auto_explain.log_nested_statements": "on"})

	// A batch with everything the functions handle: new abandons and calls
	// on numbers the store knows, a key already held, an attachment.
	at := base.Add(36 * time.Hour)
	batch := []store.NewEvent{
		hookEvent("abandoned-conversation", "new-abandon", "+447700900002", "Q1", at, 1000),
		hookEvent("outbound-call", "new-call", "+447700900004", "", at, -1),
		hookEvent("outbound-call", "k2", "+447700900002", "", at, -1), // held since the fill
	}
	// Without attachments, a batch neither stores nor refers to any.
	rows, err := db.New(conn).EventsIngest(ctx, store.IngestParams(batch))
	require.NoError(t, err)
	require.Len(t, rows, len(batch))
	for _, p := range explained() {
		require.NotContains(t, p, "blobs")
		require.NotContains(t, p, "event_attachments")
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

	plans := explained()
	all := strings.Join(plans, "\n")
	for _, stmt := range []string{"Insert on events", "Insert on idempotency_keys", "Insert on abandon_facts", "Update on abandon_facts", "Insert on blobs",
		"Insert on event_attachments"} {
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

// explaining connects to the database at url as the application role with
// auto_explain logging the plan of every statement (and settings, more
// auto_explain options) as a notice; explained returns the plans so far.
func explaining(t *testing.T, url string, settings map[string]string) (conn *pgx.Conn, explained func() []string) {
	t.Helper()
	ctx := context.Background()
	var mu sync.Mutex
	var plans []string
	cfg, err := pgx.ParseConfig(url)
	require.NoError(t, err)
	for k, v := range map[string]string{
		"role": store.AppRole, "session_preload_libraries": "auto_explain",
		"auto_explain.log_min_duration": "0", "auto_explain.log_level": "notice", "client_min_messages": "notice",
	} {
		cfg.RuntimeParams[k] = v
	}
	for k, v := range settings {
		cfg.RuntimeParams[k] = v
	}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		mu.Lock()
		defer mu.Unlock()
		plans = append(plans, n.Message)
	}
	conn, err = pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.WithoutCancel(ctx)) })
	return conn, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(plans)
	}
}

var seqScan = regexp.MustCompile(`Seq Scan on (\w+)`)

// The sequencer's read of its next round (LogPending) must read that round
// and no more, however many events wait past its position: with the
// horizon's cut planned inside the limit, it read, hashed and sorted every
// waiting event for each round, and so did a plan that sorted because the
// waiting events share one transaction id, as a bulk load's do.
// auto_explain with row counts shows what each execution read from the
// events table, under the custom plans of the first executions and the
// generic plan after them.
func TestSequencerReadsOnlyItsRound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	admin := d.Connect(t)
	const waiting, limit = 20000, 500
	_, err := admin.Exec(ctx, `
		INSERT INTO events (received_at, occurred_at, source, kind, type, credential, idempotency_key, case_id, body, body_sha256)
		SELECT now(), now(), 'case-updates', 'case-updates', 'CHANGE_CASE_STATUS', 'c', 'k' || g, 'case-' || g % 100,
		       convert_to(repeat('x', 600) || g, 'UTF8'), '\x00'
		FROM generate_series(1, $1::integer) AS g`, waiting)
	require.NoError(t, err)
	_, err = admin.Exec(ctx, `ANALYZE events`)
	require.NoError(t, err)

	conn, explained := explaining(t, d.URL, map[string]string{"auto_explain.log_analyze": "on", "auto_explain.log_timing": "off"})

	// Rounds from positions spread over the waiting events, as the
	// sequencer would take them, each answered in full and in order.
	var afterXid, afterEvent int64
	for round := range 8 {
		tx, err := conn.Begin(ctx)
		require.NoError(t, err)
		q := db.New(tx)
		require.NoError(t, q.LogRoundSettings(ctx))
		rows, err := q.LogPending(ctx, db.LogPendingParams{AfterXid: afterXid, AfterEvent: afterEvent, RowLimit: limit})
		require.NoError(t, err)
		require.NoError(t, tx.Rollback(ctx))
		require.Len(t, rows, limit, "round %d", round)
		for i, r := range rows {
			require.True(t, r.CommitXid > afterXid || (r.CommitXid == afterXid && r.ID > afterEvent), "round %d row %d is past the position", round, i)
			afterXid, afterEvent = r.CommitXid, r.ID
		}
		afterEvent += 1000 // skip ahead, so that no two rounds start alike
	}

	plans := explained()
	var checked int
	for _, p := range plans {
		if !strings.Contains(p, "casetrail_feed_horizon") && !strings.Contains(p, "commit_xid") {
			continue
		}
		read := rowsRead(t, p, eventRowsRead)
		if read == 0 {
			continue // a plan of the horizon function itself
		}
		checked++
		require.LessOrEqual(t, read, limit, "a round read more events than it takes:\n%s", p)
	}
	require.Equal(t, 8, checked, "auto_explain must show every round's plan")
}

var eventRowsRead = regexp.MustCompile(`Scan (?:using \w+ )?on events\w* .*\(actual rows=(\d+)`)

// A timeline page reads a page of each key's events, not all of them. One
// number here has 4,000 events among 20,000 numbers with two each, in 12
// monthly partitions: planned with the page's values, PostgreSQL expects a
// couple of rows for a number and sorts them, which reads all 4,000 events
// of this one for every page (as casetrail_timeline_page did when its
// statements were planned for each call). auto_explain with row counts
// shows what each page's statement read from the events table, for the
// number's own timeline and for a case correlated with it, both orders,
// first pages and pages from the middle.
func TestTimelineReadsAPageOfEachKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	admin := d.Connect(t)
	const busy, limit = 4000, 21
	const number = "+447700900777"
	base := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	_, err := admin.Exec(ctx, `SELECT casetrail_ensure_partitions((date_trunc('month', now()) - interval '11 months')::date, 12)`)
	require.NoError(t, err)
	_, err = admin.Exec(ctx, `
		INSERT INTO events (received_at, occurred_at, source, kind, type, credential, idempotency_key, case_id, phone, body, body_sha256)
		SELECT date_trunc('month', now()) - ((g / 2) % 12) * interval '1 month' + interval '1 hour',
		       $1::timestamptz + g * interval '1 minute',
		       CASE WHEN g % 2 = 0 THEN 'service-hooks' ELSE 'case-updates' END,
		       CASE WHEN g % 2 = 0 THEN 'service-hooks' ELSE 'case-updates' END,
		       CASE WHEN g % 2 = 0 THEN 'outbound-call' ELSE 'CHANGE_CASE_STATUS' END, 'c', 'busy' || g,
		       CASE WHEN g % 2 = 0 THEN NULL WHEN g < 60 THEN 'case-busy' ELSE 'case-' || g END,
		       $2, '\x7b7d', '\x00'
		FROM generate_series(1, $3::integer) AS g`, base, number, busy)
	require.NoError(t, err)
	_, err = admin.Exec(ctx, `
		INSERT INTO events (received_at, occurred_at, source, kind, type, credential, idempotency_key, case_id, phone, body, body_sha256)
		SELECT date_trunc('month', now()) - (g % 12) * interval '1 month' + interval '1 hour',
		       $1::timestamptz + g * interval '1 minute', 'service-hooks', 'service-hooks', 'outbound-call', 'c', 'other' || g,
		       NULL, '+447701' || lpad((g % 20000)::text, 6, '0'), '\x7b7d', '\x00'
		FROM generate_series(1, 40000) AS g`, base)
	require.NoError(t, err)
	_, err = admin.Exec(ctx, `ANALYZE events`)
	require.NoError(t, err)

	conn, explained := explaining(t, d.URL, map[string]string{
		"auto_explain.log_analyze": "on", "auto_explain.log_timing": "off", "auto_explain.log_nested_statements": "on"})
	caseID := "case-busy"
	middle := base.Add(busy / 2 * time.Minute)
	pages := 0
	for _, p := range []db.EventListTimelineParams{
		{Phones: []string{number}, CustomerIds: []string{number}},
		{CaseID: &caseID, Phones: []string{number}},
	} {
		for _, ascending := range []bool{true, false} {
			for _, after := range []*time.Time{nil, &middle} {
				p.TypePatterns, p.Ascending, p.AfterAt, p.RowLimit = []string{"%"}, ascending, after, limit
				rows, err := db.New(conn).EventListTimeline(ctx, p)
				require.NoError(t, err)
				require.Len(t, rows, limit, "a full page (case %v, ascending %v, after %v)", p.CaseID != nil, ascending, after)
				pages++
			}
		}
	}

	var checked int
	for _, p := range explained() {
		if !strings.Contains(p, "DISTINCT ON (u.occurred_at, u.id)") {
			continue
		}
		read := rowsRead(t, p, eventRowsRead) + rowsRead(t, p, rowsRemoved)
		checked++
		require.LessOrEqual(t, read, 10*limit, "a page read far more of the number's events than a page:\n%s", p)
	}
	require.Equal(t, pages, checked, "auto_explain must show every page's plan")
	var settings []string
	err = admin.QueryRow(ctx, `SELECT proconfig FROM pg_proc WHERE proname = 'casetrail_timeline_page'`).Scan(&settings)
	require.NoError(t, err)
	require.Contains(t, settings, "plan_cache_mode=force_generic_plan", "the plans checked are the ones every call uses")
}

var rowsRemoved = regexp.MustCompile(`Rows Removed by Filter: (\d+)`)

// rowsRead adds up the numbers re finds in an auto_explain plan. They are
// counts per loop: the scans checked with it run once each (the timeline's
// key arrays hold one key).
func rowsRead(t *testing.T, plan string, re *regexp.Regexp) int {
	t.Helper()
	read := 0
	for _, m := range re.FindAllStringSubmatch(plan, -1) {
		n, err := strconv.Atoi(m[1])
		require.NoError(t, err)
		read += n
	}
	return read
}

// A page of the access log reads a page of rows from an index, from any
// position, whole or for one key (a key with many rows and one with few),
// under custom plans and under the generic plan a prepared statement comes
// to: a key unknown when planning may not make the planner walk other
// keys' rows.
func TestAccessLogReadsAPage(t *testing.T) {
	t.Parallel()
	testPagesReadAPage(t, pagedTable{
		name: "access_log",
		fill: `INSERT INTO access_log (key_name, role, method, route, path, params, status, event_ids)
			SELECT CASE WHEN g % 100 = 0 THEN 'rare' ELSE 'key-' || g % 4 END, 'auditor', 'GET', '/v1/events/:id',
			       '/v1/events/' || g, '{}', 200, ARRAY[g]::bigint[]`,
		page: func(q *db.Queries, after int64, limit int32) (int, error) {
			rows, err := q.AccessLogList(context.Background(), db.AccessLogListParams{AfterID: after, RowLimit: limit})
			return len(rows), err
		},
		pageOf: func(q *db.Queries, key string, after int64, limit int32) ([]string, error) {
			rows, err := q.AccessLogListByKey(context.Background(), db.AccessLogListByKeyParams{KeyName: key, AfterID: after, RowLimit: limit})
			keys := make([]string, len(rows))
			for i, r := range rows {
				keys[i] = r.KeyName
			}
			return keys, err
		},
	})
}

// The rejected requests' listing reads a page of rows as the access log's
// does, by source as by key.
func TestRejectedReadsAPage(t *testing.T) {
	t.Parallel()
	testPagesReadAPage(t, pagedTable{
		name: "rejected_requests",
		fill: `INSERT INTO rejected_requests (received_at, source, status, cause, credential, body, body_size)
			SELECT now(), CASE WHEN g % 100 = 0 THEN 'rare' ELSE 'key-' || g % 4 END, 400, 'invalid_json',
			       'hmac:00', '\x7b', 1`,
		page: func(q *db.Queries, after int64, limit int32) (int, error) {
			rows, err := q.RejectedPage(context.Background(), db.RejectedPageParams{AfterID: after, RowLimit: limit})
			return len(rows), err
		},
		pageOf: func(q *db.Queries, key string, after int64, limit int32) ([]string, error) {
			rows, err := q.RejectedPageBySource(context.Background(), db.RejectedPageBySourceParams{Source: key, AfterID: after, RowLimit: limit})
			keys := make([]string, len(rows))
			for i, r := range rows {
				keys[i] = r.Source
			}
			return keys, err
		},
	})
}

// pagedTable is a table listed by id after a position, as a whole and by
// one key.
type pagedTable struct {
	name   string
	fill   string // an INSERT ... SELECT over g, $1 rows; keys 'key-0' to 'key-3' and 'rare'
	page   func(q *db.Queries, after int64, limit int32) (int, error)
	pageOf func(q *db.Queries, key string, after int64, limit int32) ([]string, error)
}

// testPagesReadAPage checks that every page of tbl, from many positions,
// as a whole and by a busy and a rare key, under custom and generic plans,
// reads no more rows than it answers.
func testPagesReadAPage(t *testing.T, tbl pagedTable) {
	ctx := context.Background()
	d := dbtest.New(t)
	admin := d.Connect(t)
	const rows, limit = 20000, 101
	_, err := admin.Exec(ctx, tbl.fill+` FROM generate_series(1, $1::integer) AS g`, rows)
	require.NoError(t, err)
	_, err = admin.Exec(ctx, `ANALYZE `+tbl.name)
	require.NoError(t, err)
	scanned := regexp.MustCompile(`Scan (?:using \w+ )?on ` + tbl.name + ` .*\(actual rows=(\d+)`)

	for _, mode := range []string{"auto", "force_generic_plan"} {
		conn, explained := explaining(t, d.URL, map[string]string{
			"auto_explain.log_analyze": "on", "auto_explain.log_timing": "off", "plan_cache_mode": mode})
		q := db.New(conn)
		pages := 0
		for _, after := range []int64{0, 1, rows / 3, rows / 2, rows - 200, 7, 2, 3, rows / 4, 4} {
			n, err := tbl.page(q, after, limit)
			require.NoError(t, err)
			require.NotZero(t, n)
			for _, key := range []string{"key-1", "rare"} {
				keys, err := tbl.pageOf(q, key, after, limit)
				require.NoError(t, err)
				require.NotEmpty(t, keys)
				for _, k := range keys {
					require.Equal(t, key, k)
				}
			}
			pages += 3
		}

		var checked int
		for _, p := range explained() {
			if !strings.Contains(p, "LIMIT") && !strings.Contains(p, "Limit") {
				continue
			}
			read := rowsRead(t, p, scanned) + rowsRead(t, p, rowsRemoved)
			if read == 0 {
				continue
			}
			checked++
			require.LessOrEqual(t, read, limit, "a page read more rows than it answers (%s):\n%s", mode, p)
		}
		require.Equal(t, pages, checked, "auto_explain must show every page's plan")
	}
}

// An expunge finds the other events that refer to its attachments in the
// references the store keeps, by their primary key, and reads no event's
// document: on a store of millions of events, reading every document was
// a full read of the events per expunge. For each attachment it stops at
// the first live reference, however many events share it (a logo in every
// signature), and passes over the expunged events' references and those of
// the events being expunged. Checked under custom plans and the generic
// plan a prepared statement comes to, with row counts.
func TestExpungeLooksUpReferencesByKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	admin := d.Connect(t)
	// 100,000 references of 20,000 attachments, five events each (hash k
	// is referred to by events k, k+20000, ...); every tenth event
	// expunged; one attachment referred to by 5,000 events more.
	_, err := admin.Exec(ctx, `
		INSERT INTO event_attachments (sha256, event_id)
		SELECT sha256(int4send(g % 20000)), g FROM generate_series(1, 100000) AS g
		UNION ALL
		SELECT sha256('\x6c6f676f'), g FROM generate_series(200001, 205000) AS g;
		INSERT INTO expunged_events (event_id, reason, body_hash, note)
		SELECT g, 'test', '\x00', 'unsigned' FROM generate_series(10, 100000, 10) AS g;
		ANALYZE event_attachments, expunged_events;`)
	require.NoError(t, err)
	hash := func(k int32) []byte {
		sum := sha256.Sum256(binary.BigEndian.AppendUint32(nil, uint32(k)))
		return sum[:]
	}
	logo := sha256.Sum256([]byte("logo"))
	none := sha256.Sum256([]byte("no event refers to it"))
	params := db.ExpungeBlobsReferencedParams{
		// 7 and the logo are referred to; 5 only by the events expunged
		// now, 10 only by expunged events, none by no event.
		Blobs: [][]byte{hash(7), hash(5), hash(10), logo[:], none[:]},
		Ids:   []int64{5, 20005, 40005, 60005, 80005},
	}
	want := [][]byte{hash(7), logo[:]}
	slices.SortFunc(want, bytes.Compare)
	scanned := regexp.MustCompile(`Scan (?:using \w+ )?on event_attachments\w* .*\(actual rows=(\d+)`)

	for _, mode := range []string{"auto", "force_generic_plan"} {
		conn, explained := explaining(t, d.URL, map[string]string{
			"auto_explain.log_analyze": "on", "auto_explain.log_timing": "off", "plan_cache_mode": mode})
		q := db.New(conn)
		for range 6 { // past the custom plans of a prepared statement's first executions
			got, err := q.ExpungeBlobsReferenced(ctx, params)
			require.NoError(t, err)
			require.Equal(t, want, got, mode)
		}
		plans := explained()
		require.Len(t, plans, 6, "auto_explain must show every execution's plan")
		for _, p := range plans {
			require.Contains(t, p, "event_attachments_pkey", "references are looked up by their key (%s):\n%s", mode, p)
			require.NotContains(t, p, "on events", "no event is read (%s):\n%s", mode, p)
			for _, m := range seqScan.FindAllStringSubmatch(p, -1) {
				require.NotContains(t, []string{"event_attachments", "expunged_events"}, m[1], "a scan of a whole table (%s):\n%s", mode, p)
			}
			// Row counts are per loop, one loop per attachment: reading
			// the logo's 5,000 references would count 1,000 and more.
			require.LessOrEqual(t, rowsRead(t, p, scanned)+rowsRead(t, p, rowsRemoved), 50, "references read past the first live one (%s):\n%s", mode, p)
		}
	}
}

// A report compares the inbound closes in the order of events_handled_idx
// (closing time, work item id), so that a repeated close follows the one it
// repeats. Planned for the report's range, the closes are read from that
// index and merged across partitions in its order. A statement the pool
// prepared once switches to a generic plan after five executions, planned
// for no range in particular: expecting a few rows, it sorts them instead,
// every close of the range. The store runs these queries planned for each
// call's own parameters; auto_explain shows every execution's plan, with
// its range's values in place of $2 and $3.
func TestHandledReadsArePlannedForTheirRange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	admin := d.Connect(t)
	base := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	_, err := admin.Exec(ctx, `SELECT casetrail_ensure_partitions('2024-03-01', 1)`)
	require.NoError(t, err)
	_, err = admin.Exec(ctx, `
		INSERT INTO events (received_at, occurred_at, source, kind, type, credential, idempotency_key, work_item_id, is_outbound, phone, body, body_sha256)
		SELECT $1::timestamptz + g * interval '20 second', $1::timestamptz + g * interval '20 second', 'service-hooks', 'service-hooks',
		       CASE WHEN g % 2 = 0 THEN 'outbound-call' ELSE 'workitem-closed' END, 'c', 'k' || g,
		       CASE WHEN g % 2 = 1 THEN 'w' || g END, CASE WHEN g % 2 = 1 THEN false END,
		       CASE WHEN g % 2 = 0 THEN '+4477009' || lpad((g % 20000)::text, 5, '0') END, '\x7b7d', '\x00'
		FROM generate_series(1, 40000) AS g`, base)
	require.NoError(t, err)
	_, err = admin.Exec(ctx, `VACUUM ANALYZE events`)
	require.NoError(t, err)

	var bounds []time.Time
	for h := 24; h <= 48; h++ {
		bounds = append(bounds, base.Add(time.Duration(h)*time.Hour))
	}
	read := func(q *db.Queries) {
		for range 8 {
			counts, err := q.ReportHandledCounts(ctx, db.ReportHandledCountsParams{Bounds: bounds, FromAt: bounds[0], ToAt: bounds[len(bounds)-1]})
			require.NoError(t, err)
			require.Len(t, counts, 24)
			closes, err := q.ReportHandled(ctx, db.ReportHandledParams{FromAt: bounds[0], ToAt: bounds[len(bounds)-1]})
			require.NoError(t, err)
			require.Len(t, closes, 2160)
		}
	}
	handledPlans := func(plans []string) []string {
		var out []string
		for _, p := range plans {
			if strings.Contains(p, "workitem-closed") {
				out = append(out, p)
			}
		}
		return out
	}

	conn, explained := explaining(t, d.URL, nil)
	read(db.New(store.OwnPlans(conn)))
	plans := handledPlans(explained())
	require.Len(t, plans, 16, "auto_explain must show every execution")
	for _, p := range plans {
		require.NotRegexp(t, planParam, p, "planned without the range")
		require.Contains(t, p, "occurred_at_work_item_id_received_at_idx", "not read from events_handled_idx:\n%s", p)
		require.NotContains(t, p, "Seq Scan on events_2024_03")
	}

	// The same statements prepared once, as sqlc's calls run on the pool,
	// are planned without the range from the sixth execution.
	prepared, explainedPrepared := explaining(t, d.URL, nil)
	read(db.New(prepared))
	generic := 0
	for _, p := range handledPlans(explainedPrepared()) {
		if planParam.MatchString(p) {
			generic++
		}
	}
	require.Positive(t, generic, "the check above could not tell a generic plan")
}

// planParam finds a parameter in a plan's conditions: a generic plan's.
var planParam = regexp.MustCompile(`(Cond|Filter): .*\$\d`)
