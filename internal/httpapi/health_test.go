package httpapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

func get(t *testing.T, url string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	checkContract(t, req, res, raw)
	return res.StatusCode, res.Header, raw
}

func TestHealthEndpoints(t *testing.T) {
	t.Parallel()
	b := setup(t)

	status, _, body := get(t, b.url+"/healthz")
	require.Equal(t, 200, status)
	require.JSONEq(t, `{"status":"ok"}`, string(body))

	status, _, body = get(t, b.url+"/readyz")
	require.Equal(t, 200, status, string(body))
	var ready map[string]any
	require.NoError(t, json.Unmarshal(body, &ready))
	require.Equal(t, "ready", ready["status"])

	status, header, body := get(t, b.url+"/openapi.yaml")
	require.Equal(t, 200, status)
	require.Equal(t, "application/yaml", header.Get("Content-Type"))
	require.Contains(t, string(body), "openapi: 3.1.0")

	// An undocumented path has no contract to check: ask for it directly.
	res, err := http.Get(b.url + "/no/such/route")
	require.NoError(t, err)
	defer res.Body.Close()
	header = res.Header
	body, err = io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, 404, res.StatusCode)
	require.Equal(t, "application/problem+json", header.Get("Content-Type"))
	require.Contains(t, string(body), `"status":404`)
}

func TestReadyzFailsWithoutDatabase(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.store.Close()
	status, header, body := get(t, b.url+"/readyz")
	require.Equal(t, 503, status)
	require.Equal(t, "application/problem+json", header.Get("Content-Type"))
	p := problemOf(t, body)
	require.Equal(t, "urn:casetrail:problem:not_ready", p["type"])
	require.EqualValues(t, 503, p["status"])
	require.Contains(t, p["detail"], "database")
	status, _, _ = get(t, b.url+"/healthz")
	require.Equal(t, 200, status, "the process is still up")
}

// While the server shuts down, /readyz says so as a problem, so that a load
// balancer stops sending before connections close.
func TestReadyzWhileDraining(t *testing.T) {
	t.Parallel()
	draining := &atomic.Bool{}
	b := setup(t, func(o *setupOpts) { o.draining = draining })
	status, _, body := get(t, b.url+"/readyz")
	require.Equal(t, 200, status, string(body))

	draining.Store(true)
	status, header, body := get(t, b.url+"/readyz")
	require.Equal(t, 503, status)
	require.Equal(t, "application/problem+json", header.Get("Content-Type"))
	p := problemOf(t, body)
	require.Equal(t, "urn:casetrail:problem:draining", p["type"])
	require.EqualValues(t, 503, p["status"])
	require.NotEmpty(t, p["title"])
	require.NotEmpty(t, p["detail"])
}

func problemOf(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var p map[string]any
	require.NoError(t, json.Unmarshal(body, &p), string(body))
	return p
}
