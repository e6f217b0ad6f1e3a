package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/casetrail/casetrail/internal/dbtest"
)

// fillStore inserts n synthetic events straight into the table: cases of
// about 20 events each, a quarter of them contact-center events with phone
// numbers, bodies of about 1 KB; plus one target case with 300 events of
// its own and 50 correlated by phone. Returns the target case id.
func fillStore(b testing.TB, dbURL string, n int) string {
	return fillStoreOver(b, dbURL, n, 1)
}

// fillStoreOver is fillStore with the events' receipt times spread over the
// months receipt months up to this one, a partition each.
func fillStoreOver(b testing.TB, dbURL string, n, months int) string {
	b.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(b, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `SELECT casetrail_ensure_partitions((date_trunc('month', now()) - ($1::int - 1) * interval '1 month')::date, $1::int)`, months)
	require.NoError(b, err)
	_, err = conn.Exec(ctx, `
		INSERT INTO events (received_at, occurred_at, source, kind, type, credential, idempotency_key,
		                    case_id, phone, queue, time_in_queue_ms, summary, body, body_sha256, doc)
		SELECT date_trunc('month', now()) - (g % $2::int) * interval '1 month' + interval '1 hour',
		       timestamptz '2024-01-01' + g * interval '7 seconds',
		       CASE WHEN g % 4 = 0 THEN 'service-hooks' ELSE 'case-updates' END,
		       CASE WHEN g % 4 = 0 THEN 'service-hooks' ELSE 'case-updates' END,
		       CASE WHEN g % 4 = 0 THEN 'abandoned-conversation' ELSE 'CHANGE_CASE_STATUS' END,
		       'bench', 'k' || g,
		       CASE WHEN g % 4 = 0 THEN NULL ELSE 'case-' || (g / 20) END,
		       '+4477' || lpad((g / 20)::text, 8, '0'),
		       CASE WHEN g % 4 = 0 THEN 'Q' || (g % 20) END,
		       CASE WHEN g % 4 = 0 THEN (g % 300) * 1000 END,
		       'Status changed Open -> Resolved',
		       convert_to(repeat(md5(g::text), 30), 'UTF8'), sha256(g::text::bytea),
		       jsonb_build_object('event', 'CHANGE_CASE_STATUS', 'payload', jsonb_build_object('caseId', 'case-' || (g / 20), 'note', repeat(md5(g::text), 10)))
		FROM generate_series(1, $1::int) AS g`, n, months)
	require.NoError(b, err)
	_, err = conn.Exec(ctx, `
		INSERT INTO events (received_at, occurred_at, source, kind, type, credential, idempotency_key,
		                    case_id, phone, summary, body, body_sha256, doc)
		SELECT date_trunc('month', now()) - (g % $1::int) * interval '1 month' + interval '1 hour',
		       timestamptz '2024-01-01' + g * interval '13 minutes',
		       CASE WHEN g > 300 THEN 'service-hooks' ELSE 'case-updates' END,
		       CASE WHEN g > 300 THEN 'service-hooks' ELSE 'case-updates' END,
		       CASE WHEN g > 300 THEN 'outbound-call' ELSE 'ORDER_CREATED' END,
		       'bench', 'target' || g,
		       CASE WHEN g > 300 THEN NULL ELSE 'case-target' END,
		       '+447700999999', 'Order created', convert_to(repeat(md5(g::text), 30), 'UTF8'),
		       sha256(g::text::bytea), '{}'::jsonb
		FROM generate_series(1, 350) AS g`, months)
	require.NoError(b, err)
	_, err = conn.Exec(ctx, "VACUUM ANALYZE events")
	require.NoError(b, err)
	return "case-target"
}

// BenchmarkTimelineScale times the first and a middle 100-event page of one
// case's timeline over HTTP on a store of 10,000 and of 1,000,000 events,
// and prints the medians and their ratio.
//
//	make bench-read
func BenchmarkTimelineScale(b *testing.B) {
	sizes := []int{10_000, 1_000_000}
	if v := os.Getenv("CASETRAIL_BENCH_SIZES"); v == "small" {
		sizes = []int{1_000, 20_000}
	}
	const samples = 300
	type result struct {
		size            int
		first, middle   []time.Duration
		firstN, middleN int
		fillTook        time.Duration
	}
	var results []result
	for _, size := range sizes {
		bundle := setup(b, readKeysOpt)
		start := time.Now()
		caseID := fillStore(b, bundle.db.URL, size)
		r := result{size: size, fillTook: time.Since(start)}

		path := "/v1/cases/" + caseID + "/timeline"
		first := bundle.listB(b, path+"?limit=100")
		r.firstN = len(first.Data)
		middleQ := url.Values{"limit": {"100"}, "cursor": {*first.Page.NextCursor}}
		r.middleN = len(bundle.listB(b, path+"?"+middleQ.Encode()).Data)
		r.first, r.middle = timePages(b, bundle, path+"?limit=100", path+"?"+middleQ.Encode(), samples)
		results = append(results, r)
	}

	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "store events\tpage\trows\tp50\tp95\tp50 / smallest store\t")
	for _, r := range results {
		for _, p := range []struct {
			name string
			d    []time.Duration
			n    int
		}{{"first", r.first, r.firstN}, {"middle", r.middle, r.middleN}} {
			base := results[0].first
			if p.name == "middle" {
				base = results[0].middle
			}
			fmt.Fprintf(w, "%d\t%s\t%d\t%s\t%s\t%.2fx\t\n", r.size, p.name, p.n,
				pct(p.d, 50), pct(p.d, 95), float64(pct(p.d, 50))/float64(pct(base, 50)))
		}
	}
	w.Flush()
	for _, r := range results {
		fmt.Printf("store of %d events filled in %s\n", r.size, r.fillTook.Round(time.Millisecond))
	}
}

// timePages times the two pages alternately, samples times each, after 20
// requests that warm the caches and connections.
func timePages(b testing.TB, bundle *testBundle, first, middle string, samples int) (firstTimes, middleTimes []time.Duration) {
	for range 20 {
		bundle.listB(b, first)
	}
	for range samples {
		t0 := time.Now()
		bundle.listB(b, first)
		firstTimes = append(firstTimes, time.Since(t0))
		t0 = time.Now()
		bundle.listB(b, middle)
		middleTimes = append(middleTimes, time.Since(t0))
	}
	return firstTimes, middleTimes
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)*p/100].Round(10 * time.Microsecond)
}

func (bd *testBundle) listB(b testing.TB, path string) listing {
	req, _ := http.NewRequest(http.MethodGet, bd.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+analystKey)
	res, err := http.DefaultClient.Do(req)
	require.NoError(b, err)
	defer res.Body.Close()
	require.Equal(b, 200, res.StatusCode)
	var l listing
	require.NoError(b, json.NewDecoder(res.Body).Decode(&l))
	return l
}

// BenchmarkTimelinePartitions times the same timeline pages as
// BenchmarkTimelineScale on stores of the same size whose events were
// received over 1, 12 and 60 months, a partition each: a timeline is keyed
// on the case, not on the receipt month, so it looks into every partition.
//
//	go run ./cmd/withpg -- go test -run '^$' -bench '^BenchmarkTimelinePartitions$' -benchtime 1x ./internal/httpapi/
func BenchmarkTimelinePartitions(b *testing.B) {
	const size, samples = 200_000, 300
	type result struct {
		months        int
		first, middle []time.Duration
	}
	var results []result
	for _, months := range []int{1, 12, 60} {
		bundle := setup(b, readKeysOpt)
		caseID := fillStoreOver(b, bundle.db.URL, size, months)
		path := "/v1/cases/" + caseID + "/timeline"
		first := bundle.listB(b, path+"?limit=100")
		require.Len(b, first.Data, 100)
		middleQ := url.Values{"limit": {"100"}, "cursor": {*first.Page.NextCursor}}
		require.Len(b, bundle.listB(b, path+"?"+middleQ.Encode()).Data, 100)
		r := result{months: months}
		r.first, r.middle = timePages(b, bundle, path+"?limit=100", path+"?"+middleQ.Encode(), samples)
		results = append(results, r)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "receipt months\tstore events\tfirst p50\tmiddle p50\tfirst p95\tmiddle p95\tfirst p50 / one month\t\n")
	for _, r := range results {
		fmt.Fprintf(w, "%d\t%d\t%s\t%s\t%s\t%s\t%.2fx\t\n", r.months, size, pct(r.first, 50), pct(r.middle, 50),
			pct(r.first, 95), pct(r.middle, 95), float64(pct(r.first, 50))/float64(pct(results[0].first, 50)))
	}
	w.Flush()
}

// BenchmarkTimelineBusyContact times timeline pages that involve a busy
// number: on a store of 200,350 events received over 12 months, the target
// case's number also has 20,000 events of its own, half contact-center
// events and half updates of other cases (a shared line). It times the
// first and a middle 100-event page of the number's own timeline, oldest
// and newest first, and of the case's timeline, which correlates the
// number's contact-center events.
//
//	go run ./cmd/withpg -- go test -run '^$' -bench '^BenchmarkTimelineBusyContact$' -benchtime 1x ./internal/httpapi/
func BenchmarkTimelineBusyContact(b *testing.B) {
	const size, busy, samples = 200_000, 20_000, 30
	bundle := setup(b, readKeysOpt)
	caseID := fillStoreOver(b, bundle.db.URL, size, 12)
	fillBusyNumber(b, bundle.db, "+447700999999", busy, 12)

	type result struct {
		name          string
		rows          int
		first, middle []time.Duration
	}
	var results []result
	for _, t := range []struct{ name, path string }{
		{"number, oldest first", "/v1/contacts/%2B447700999999/timeline?limit=100"},
		{"number, newest first", "/v1/contacts/%2B447700999999/timeline?limit=100&order=desc"},
		{"case, oldest first", "/v1/cases/" + caseID + "/timeline?limit=100"},
		{"case, newest first", "/v1/cases/" + caseID + "/timeline?limit=100&order=desc"},
	} {
		first := bundle.listB(b, t.path)
		require.Len(b, first.Data, 100)
		// A page from the middle of the listing: follow the cursor a
		// number of pages in.
		next := first
		for range 20 {
			if next.Page.NextCursor == nil {
				break
			}
			next = bundle.listB(b, t.path+"&cursor="+url.QueryEscape(*next.Page.NextCursor))
		}
		require.NotNil(b, next.Page.NextCursor)
		middle := t.path + "&cursor=" + url.QueryEscape(*next.Page.NextCursor)
		r := result{name: t.name, rows: len(bundle.listB(b, middle).Data)}
		r.first, r.middle = timePages(b, bundle, t.path, middle, samples)
		results = append(results, r)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	var stored int
	require.NoError(b, bundle.db.Connect(b).QueryRow(context.Background(), "SELECT count(*) FROM events").Scan(&stored))
	fmt.Fprintf(w, "timeline\tstore events\tnumber's events\trows\tfirst p50\tpage 22 p50\tfirst p95\tpage 22 p95\t\n")
	for _, r := range results {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t\n", r.name, stored, busy, r.rows, pct(r.first, 50), pct(r.middle, 50),
			pct(r.first, 95), pct(r.middle, 95))
	}
	w.Flush()
}

// fillBusyNumber gives phone n more events, received over months months:
// alternately outbound calls and updates of cases of their own, both kinds
// in every month.
func fillBusyNumber(b testing.TB, d *dbtest.DB, phone string, n, months int) {
	b.Helper()
	ctx := context.Background()
	conn := d.Connect(b)
	_, err := conn.Exec(ctx, `
		INSERT INTO events (received_at, occurred_at, source, kind, type, credential, idempotency_key,
		                    case_id, phone, summary, body, body_sha256, doc)
		SELECT date_trunc('month', now()) - ((g / 2) % $3::int) * interval '1 month' + interval '2 hours',
		       timestamptz '2024-01-01' + g * interval '17 minutes',
		       CASE WHEN g % 2 = 0 THEN 'service-hooks' ELSE 'case-updates' END,
		       CASE WHEN g % 2 = 0 THEN 'service-hooks' ELSE 'case-updates' END,
		       CASE WHEN g % 2 = 0 THEN 'outbound-call' ELSE 'CHANGE_CASE_STATUS' END,
		       'bench', 'busy' || g,
		       CASE WHEN g % 2 = 0 THEN NULL ELSE 'case-busy-' || (g / 10) END,
		       $1, 'Busy line', convert_to(repeat(md5(g::text), 30), 'UTF8'),
		       sha256(g::text::bytea), '{}'::jsonb
		FROM generate_series(1, $2::int) AS g`, phone, n, months)
	require.NoError(b, err)
	_, err = conn.Exec(ctx, "VACUUM ANALYZE events")
	require.NoError(b, err)
}
