package httpapi_test

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	validatorerrors "github.com/pb33f/libopenapi-validator/errors"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
	"github.com/stretchr/testify/require"

	"github.com/casetrail/casetrail/api"
	"github.com/casetrail/casetrail/internal/config"
	"github.com/casetrail/casetrail/internal/httpapi"
)

// The document and its validator are built once and shared by parallel
// tests. libopenapi renders schema nodes in place while it validates, so two
// validations at once are a data race: every use holds specMu.
var (
	specOnce      sync.Once
	specMu        sync.Mutex
	specValidator validator.Validator
	specDoc       libopenapi.Document
	specErr       error
)

// withSpec runs fn with the shared document and validator, one use at a time.
func withSpec(t *testing.T, fn func(libopenapi.Document, validator.Validator)) {
	t.Helper()
	specOnce.Do(func() {
		specDoc, specErr = libopenapi.NewDocument(api.OpenAPI)
		if specErr != nil {
			return
		}
		var errs []error
		specValidator, errs = validator.NewValidator(specDoc)
		if len(errs) > 0 {
			specErr = errs[0]
		}
	})
	require.NoError(t, specErr)
	specMu.Lock()
	defer specMu.Unlock()
	fn(specDoc, specValidator)
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	t.Parallel()
	var ok bool
	var errs []*validatorerrors.ValidationError
	withSpec(t, func(_ libopenapi.Document, v validator.Validator) { ok, errs = v.ValidateDocument() })
	for _, e := range errs {
		t.Errorf("%s: %s", e.Message, e.Reason)
	}
	require.True(t, ok)
}

var (
	ginParam   = regexp.MustCompile(`:([A-Za-z0-9_]+)`)
	httpMethod = regexp.MustCompile(`^[A-Z]+$`)
)

// TestEveryRouteIsDocumented walks the server's route table.
func TestEveryRouteIsDocumented(t *testing.T) {
	t.Parallel()
	var model *libopenapi.DocumentModel[v3.Document]
	var err error
	withSpec(t, func(doc libopenapi.Document, _ validator.Validator) { model, err = doc.BuildV3Model() })
	require.NoError(t, err)
	h := httpapi.NewServer(httpapi.Deps{Config: &config.Config{MaxBodyBytes: 1 << 20}})
	routes := h.(interface{ Routes() gin.RoutesInfo }).Routes()
	require.NotEmpty(t, routes)
	for _, r := range routes {
		path := ginParam.ReplaceAllString(r.Path, "{$1}")
		item, ok := model.Model.Paths.PathItems.Get(path)
		if !ok {
			t.Errorf("route %s %s is not in api/openapi.yaml", r.Method, path)
			continue
		}
		if item.GetOperations().GetOrZero(strings.ToLower(r.Method)) == nil {
			t.Errorf("route %s %s: method not in api/openapi.yaml", r.Method, path)
		}
	}
}

// TestEveryDocumentedRouteExists is the other way round: every operation
// api/openapi.yaml documents is a route of the server, with that method.
func TestEveryDocumentedRouteExists(t *testing.T) {
	t.Parallel()
	var model *libopenapi.DocumentModel[v3.Document]
	var err error
	withSpec(t, func(doc libopenapi.Document, _ validator.Validator) { model, err = doc.BuildV3Model() })
	require.NoError(t, err)
	served := map[string]bool{}
	for _, r := range serverRoutes(t) {
		served[r] = true
	}
	n := 0
	for path, item := range model.Model.Paths.PathItems.FromOldest() {
		for method := range item.GetOperations().FromOldest() {
			n++
			if r := strings.ToUpper(method) + " " + path; !served[r] {
				t.Errorf("api/openapi.yaml documents %s, which the server does not route", r)
			}
		}
	}
	require.Equal(t, len(served), n, "operations in api/openapi.yaml")
}

// serverRoutes lists the server's routes as "METHOD /path/{param}".
func serverRoutes(t *testing.T) []string {
	t.Helper()
	h := httpapi.NewServer(httpapi.Deps{Config: &config.Config{MaxBodyBytes: 1 << 20}})
	var out []string
	for _, r := range h.(interface{ Routes() gin.RoutesInfo }).Routes() {
		out = append(out, r.Method+" "+ginParam.ReplaceAllString(r.Path, "{$1}"))
	}
	require.NotEmpty(t, out)
	return out
}

// TestReadmeListsEveryRoute holds the README's route table to the server's
// routes, both ways.
func TestReadmeListsEveryRoute(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(raw), "\n## API\n")
	require.True(t, ok, "README.md has no API section")
	section, _, _ = strings.Cut(section, "\n## ")
	listed := map[string]bool{}
	code := regexp.MustCompile("`([^`]+)`")
	for _, line := range strings.Split(section, "\n") {
		cell, _, _ := strings.Cut(strings.TrimPrefix(line, "| "), " |")
		method, _, ok := strings.Cut(strings.TrimPrefix(cell, "`"), " ")
		if !strings.HasPrefix(line, "| `") || !ok || !httpMethod.MatchString(method) {
			continue
		}
		for _, m := range code.FindAllStringSubmatch(cell, -1) {
			path := strings.TrimPrefix(m[1], method+" ")
			path, _, _ = strings.Cut(path, "?")
			listed[method+" "+path] = true
		}
	}
	for _, r := range serverRoutes(t) {
		if !listed[r] {
			t.Errorf("README.md's route table does not list %s", r)
		}
		delete(listed, r)
	}
	for r := range listed {
		t.Errorf("README.md's route table lists %s, which the server does not route", r)
	}
}

// checkContract validates a response the tests received against the spec.
func checkContract(t *testing.T, req *http.Request, res *http.Response, body []byte) {
	t.Helper()
	ct := res.Header.Get("Content-Type")
	if strings.Contains(ct, "ndjson") || res.StatusCode == http.StatusMethodNotAllowed {
		return
	}
	copyRes := *res
	copyRes.Body = io.NopCloser(bytes.NewReader(body))
	if ok, errs := validateResponse(t, req, &copyRes); !ok {
		for _, e := range errs {
			t.Errorf("contract: %s %s -> %d: %s: %s", req.Method, req.URL.Path, res.StatusCode, e.Message, e.Reason)
		}
	}
}

// validateResponse checks res against the spec.
func validateResponse(t *testing.T, req *http.Request, res *http.Response) (ok bool, errs []*validatorerrors.ValidationError) {
	t.Helper()
	withSpec(t, func(_ libopenapi.Document, v validator.Validator) { ok, errs = v.ValidateHttpResponse(req, res) })
	return ok, errs
}

// TestContractCheckerCatchesViolations proves checkContract is not vacuous.
func TestContractCheckerCatchesViolations(t *testing.T) {
	t.Parallel()
	req, _ := http.NewRequest(http.MethodGet, "http://localhost:8080/v1/events/1", nil)
	req.Header.Set("Authorization", "Bearer x")
	for _, body := range []string{
		`{"id": 5}`, // wrong type, required fields missing
		`{"id":"1","source":"s","kind":"fax","type":"t","occurredAt":"2024-01-01T00:00:00Z","receivedAt":"2024-01-01T00:00:00Z","caseId":null,"summary":"","data":{},"payload":null,"payloadLossy":false,"credential":"c","idempotencyKey":"k","contentType":"","bodySha256":"00"}`,
	} {
		res := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(body)), Request: req}
		ok, errs := validateResponse(t, req, res)
		require.False(t, ok, body)
		require.NotEmpty(t, errs)
	}
	good := `{"id":"1","source":"s","kind":"service-hooks","type":"t","occurredAt":"2024-01-01T00:00:00Z","receivedAt":"2024-01-01T00:00:00Z","caseId":null,"summary":"","data":{},"payload":null,"payloadLossy":false,"credential":"c","idempotencyKey":"k","contentType":"","bodySha256":"00"}`
	res := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(good)), Request: req}
	ok, errs := validateResponse(t, req, res)
	require.True(t, ok, "%v", errs)
}

// TestEveryProblemCauseIsDocumented reads the causes the code gives its
// problems from its source and looks for each in api/openapi.yaml.
func TestEveryProblemCauseIsDocumented(t *testing.T) {
	t.Parallel()
	written := []*regexp.Regexp{
		regexp.MustCompile(`Cause:\s*"([a-z_]+)"`),
		regexp.MustCompile(`writeProblem\(c,[^,]+,\s*"([a-z_]+)"`),
		regexp.MustCompile(`writeNotReady\(c,\s*"([a-z_]+)"`),
	}
	causes := map[string]bool{}
	for _, dir := range []string{".", filepath.Join("..", "ingest")} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		require.NoError(t, err)
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			require.NoError(t, err)
			for _, re := range written {
				for _, m := range re.FindAllStringSubmatch(string(src), -1) {
					causes[m[1]] = true
				}
			}
		}
	}
	require.Contains(t, causes, "idempotency_conflict")
	require.Contains(t, causes, "not_ready")
	for cause := range causes {
		if !strings.Contains(string(api.OpenAPI), "`"+cause+"`") {
			t.Errorf("the problem cause %s is not in api/openapi.yaml", cause)
		}
	}
}
