package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/casetrail/casetrail/internal/config"
	"github.com/casetrail/casetrail/internal/report"
	"github.com/casetrail/casetrail/internal/store"
)

// fillContactCenter inserts n abandons and n outbound calls over 30 days
// across 20 queues and n/5 numbers (so callers repeat and most abandons
// have calls after them), plus n/2 inbound work items.
func fillContactCenter(b testing.TB, dbURL string, n int) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(b, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `
		INSERT INTO events (received_at, occurred_at, source, kind, type, credential, idempotency_key,
		                    phone, queue, time_in_queue_ms, agent_id, is_outbound, work_item_id, body, body_sha256)
		SELECT now(), timestamptz '2024-03-01' + (g::float8 / $1 * 30) * interval '1 day',
		       'service-hooks', 'service-hooks',
		       CASE k WHEN 0 THEN 'abandoned-conversation' WHEN 1 THEN 'outbound-call' ELSE 'workitem-closed' END,
		       'bench', k || ':' || g,
		       CASE WHEN k < 2 THEN '+4477' || lpad(((g::bigint * 7919) % ($1 / 5))::text, 8, '0') END,
		       CASE WHEN k = 0 THEN 'Q' || (g % 20) END,
		       CASE WHEN k = 0 THEN (g::bigint * 37 % 600) * 1000 END,
		       CASE WHEN k = 1 THEN 'agent-' || (g % 50) END,
		       CASE WHEN k = 2 THEN false END,
		       CASE WHEN k = 2 THEN 'w' || g END,
		       '\x7b7d', sha256(g::text::bytea)
		FROM generate_series(1, $1::int) AS g, generate_series(0, 2) AS k
		WHERE k < 2 OR g % 2 = 0`, n)
	require.NoError(b, err)
	// The rows went in behind the ingest path's back: derive the report's
	// projection from them, as the migration does for existing events.
	_, err = conn.Exec(ctx, "SELECT casetrail_rebuild_abandon_facts()")
	require.NoError(b, err)
	_, err = conn.Exec(ctx, "VACUUM ANALYZE events, abandon_facts")
	require.NoError(b, err)
}

// BenchmarkAbandonmentReport times the report over 30 days of 1,000,000
// abandons and 1,000,000 outbound calls (20 queues) at PT15M by queue and
// at P1D, over HTTP, and prints medians.
//
//	make bench-report
func BenchmarkAbandonmentReport(b *testing.B) {
	n := 1_000_000
	if os.Getenv("CASETRAIL_BENCH_SIZES") == "small" {
		n = 20_000
	}
	if s := os.Getenv("CASETRAIL_BENCH_ABANDONS"); s != "" {
		v, err := strconv.Atoi(s)
		require.NoError(b, err)
		n = v
	}
	// The server's garbage collection settings, as `casetrail serve` has them.
	config.TuneGC(os.Getenv)
	bundle := setup(b, readKeysOpt)
	start := time.Now()
	fillContactCenter(b, bundle.db.URL, n)
	fill := time.Since(start)
	cases := []struct{ name, query string }{
		{"PT15M by queue", "interval=PT15M&groupBy=queue"},
		{"P1D", "interval=P1D"},
		{"P1D by queue", "interval=P1D&groupBy=queue"},
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "report (30 days)\tabandons\truns\tmedian\tmin\tmax\tresponse\t")
	for _, c := range cases {
		path := "/v1/reports/abandonment?from=2024-03-01T00:00:00Z&to=2024-03-31T00:00:00Z&tz=Europe/London&" + c.query
		var d []time.Duration
		var size int64
		for range 5 {
			t0 := time.Now()
			req, _ := http.NewRequest(http.MethodGet, bundle.url+path, nil)
			req.Header.Set("Authorization", "Bearer "+analystKey)
			res, err := http.DefaultClient.Do(req)
			require.NoError(b, err)
			size, err = io.Copy(io.Discard, res.Body)
			require.NoError(b, err)
			res.Body.Close()
			require.Equal(b, 200, res.StatusCode)
			d = append(d, time.Since(t0))
		}
		slices.Sort(d)
		fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%s\t%s\t%.1f MB\t\n", c.name, n, len(d), d[len(d)/2].Round(time.Millisecond),
			d[0].Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond), float64(size)/1e6)
	}
	// What the PT15M figure is made of: reading the abandons alone, and
	// reading them into the report's cells.
	from, to := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 3, 31, 0, 0, 0, 0, time.UTC)
	v, _ := url.ParseQuery("interval=PT15M&groupBy=queue&tz=Europe/London&from=2024-03-01T00:00:00Z&to=2024-03-31T00:00:00Z")
	q, err := report.ParseQuery(v)
	require.NoError(b, err)
	for _, part := range []struct {
		name string
		run  func()
	}{
		{"  reading the abandons", func() {
			require.NoError(b, bundle.store.EachAbandonFact(context.Background(), from, to, nil, func(*store.AbandonFact) {}))
		}},
		{"  + counting them into cells", func() {
			rb := report.NewBuilder(q)
			require.NoError(b, bundle.store.EachAbandonFact(context.Background(), from, to, nil, rb.Add))
		}},
		{"  + figures and JSON", func() {
			rb := report.NewBuilder(q)
			require.NoError(b, bundle.store.EachAbandonFact(context.Background(), from, to, nil, rb.Add))
			r := rb.Report(nil)
			_, err := r.AppendJSON(nil)
			require.NoError(b, err)
		}},
	} {
		var d []time.Duration
		for range 5 {
			t0 := time.Now()
			part.run()
			d = append(d, time.Since(t0))
		}
		slices.Sort(d)
		fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%s\t%s\t\t\n", part.name, n, len(d), d[len(d)/2].Round(time.Millisecond),
			d[0].Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond))
	}
	w.Flush()
	fmt.Printf("filled %d abandons, %d outbound calls, %d work items in %s\n", n, n, n/2, fill.Round(time.Second))
}
