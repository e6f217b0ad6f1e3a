package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/casetrail/casetrail/internal/dbtest"
	"github.com/casetrail/casetrail/internal/localpg"
)

const replicaConfig = `
listen: "127.0.0.1:0"
sources:
  - {name: hooks, kind: service-hooks, api_keys: ["hook-key"]}
read_keys:
  - {name: ann, role: analyst, key: "analyst-key-0123456789"}
  - {name: bob, role: auditor, key: "auditor-key-0123456789"}
`

// TestReportsReadFromTheReportDatabase runs the server on a primary with
// report_database_url pointing at a hot standby of it: the reports answer
// from the standby (and fail with 503 when it is down, while ingest goes
// on), and an auditor's drill-down is still recorded in the primary's access
// log.
func TestReportsReadFromTheReportDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	primary, standby := dbtest.StandbyPair(t, func(primary *localpg.Server) {
		admin, err := pgx.Connect(ctx, primary.URL("postgres"))
		require.NoError(t, err)
		defer admin.Close(ctx)
		_, err = admin.Exec(ctx, "CREATE DATABASE casetrail")
		require.NoError(t, err)
	})

	env := map[string]string{
		"DATABASE_URL":                  primary.URL("casetrail"),
		"CASETRAIL_REPORT_DATABASE_URL": standby.URL("casetrail"),
		"CASETRAIL_DATA_DIR":            t.TempDir(),
	}
	r := start(t, env, "serve", "--config", writeFile(t, replicaConfig))
	base := "http://" + r.addr

	ingest := func(body string) int {
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/ingest/hooks/abandoned-conversation", bytes.NewReader([]byte(body)))
		req.Header.Set("x-api-key", "hook-key")
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		return res.StatusCode
	}
	get := func(path, key string) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		return res, body
	}
	const report = "/v1/reports/abandonment?from=2024-05-14T00:00:00Z&to=2024-05-15T00:00:00Z&interval=total"
	const contacts = "/v1/reports/abandonment/contacts?from=2024-05-14T00:00:00Z&to=2024-05-15T00:00:00Z"
	abandoned := func() int {
		res, body := get(report, "analyst-key-0123456789")
		require.Equal(t, 200, res.StatusCode, string(body))
		var out struct {
			Totals struct {
				Abandoned int `json:"abandoned"`
			} `json:"totals"`
		}
		require.NoError(t, json.Unmarshal(body, &out))
		return out.Totals.Abandoned
	}

	require.Equal(t, 200, ingest(`{"customerPhoneNumber":"+447700900456","queue":"Pharmacy","timeInQueue":125,"timestamp":"2024-05-14T09:41:07Z"}`))
	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	require.NoError(t, localpg.WaitReplayed(waitCtx, primary.URL("casetrail"), standby.URL("casetrail")))
	require.Equal(t, 1, abandoned(), "the standby has replayed the abandon")
	awaitReadyWarnings(t, base, nil) // the standby answers

	// The drill-down runs on the standby, its access record on the primary.
	res, body := get(contacts, "auditor-key-0123456789")
	require.Equal(t, 200, res.StatusCode, string(body))
	require.Contains(t, string(body), "+447700900456")
	conn, err := pgx.Connect(ctx, primary.URL("casetrail"))
	require.NoError(t, err)
	defer conn.Close(ctx)
	var recorded int
	require.NoError(t, conn.QueryRow(ctx,
		"SELECT count(*) FROM access_log WHERE key_name = 'bob' AND route = '/v1/reports/abandonment/contacts'").Scan(&recorded))
	require.Equal(t, 1, recorded)

	// Without the standby the reports cannot answer, which shows they do
	// not read the primary; ingest and readiness are unaffected.
	require.NoError(t, standby.Stop(ctx))
	res, body = get(report, "analyst-key-0123456789")
	require.Equal(t, http.StatusServiceUnavailable, res.StatusCode, string(body))
	require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
	require.NotEmpty(t, res.Header.Get("Retry-After"))
	require.Equal(t, 200, ingest(`{"customerPhoneNumber":"+447700900457","queue":"Pharmacy","timeInQueue":3,"timestamp":"2024-05-14T10:00:00Z"}`))
	awaitReadyWarnings(t, base, []string{reportDown})

	// A server whose report database is down when it starts starts anyway
	// (start fails the test otherwise).
	r.stop(t)
	r = start(t, env, "serve", "--config", writeFile(t, replicaConfig))
	base = "http://" + r.addr
	res, body = get(report, "analyst-key-0123456789")
	require.Equal(t, http.StatusServiceUnavailable, res.StatusCode, string(body))
	require.Equal(t, []string{reportDown}, readyWarnings(t, base), "checked before the server listens")
}

const reportDown = "the report database is not reachable, not migrated, or not a replica of the store's database: reports answer 503 until it is"

// A report_database_url that names another migrated database, not a
// replica of the store's, would answer every report with nothing: it is
// taken for down, and says why.
func TestReportDatabaseMustBeAReplica(t *testing.T) {
	t.Parallel()
	primary, other := dbtest.New(t), dbtest.New(t)
	env := map[string]string{"DATABASE_URL": primary.URL, "CASETRAIL_REPORT_DATABASE_URL": other.URL, "CASETRAIL_DATA_DIR": t.TempDir()}
	r := start(t, env, "serve", "--config", writeFile(t, replicaConfig))
	require.Equal(t, []string{reportDown}, readyWarnings(t, "http://"+r.addr))
	req, _ := http.NewRequest(http.MethodGet, "http://"+r.addr+"/v1/reports/abandonment?from=2024-05-14T00:00:00Z&to=2024-05-15T00:00:00Z", nil)
	req.Header.Set("Authorization", "Bearer analyst-key-0123456789")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	require.Contains(t, r.logged(), "names another database than database_url's")
}

// awaitReadyWarnings asks /readyz until its warnings are want, for a minute
// at most: the server checks the report database every few seconds, as a
// load balancer would see it. Every answer must be 200.
func awaitReadyWarnings(t *testing.T, base string, want []string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for got := readyWarnings(t, base); !slices.Equal(got, want); got = readyWarnings(t, base) {
		require.True(t, time.Now().Before(deadline), "/readyz warnings stayed %q, want %q", got, want)
		time.Sleep(100 * time.Millisecond)
	}
}
