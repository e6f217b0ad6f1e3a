package httpapi_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/casetrail/casetrail/internal/config"
	"github.com/casetrail/casetrail/internal/dbtest"
	"github.com/casetrail/casetrail/internal/httpapi"
	"github.com/casetrail/casetrail/internal/ingest"
	"github.com/casetrail/casetrail/internal/ledger"
	"github.com/casetrail/casetrail/internal/normalize"
	"github.com/casetrail/casetrail/internal/spool"
	"github.com/casetrail/casetrail/internal/store"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

const (
	cuSecret = "case-updates-test-secret"
	saSecret = "service-actions-test-secret"
	shOldKey = "service-hooks-old-key"
	shNewKey = "service-hooks-new-key"
	hdrKey   = "header-secret-value"
)

type testBundle struct {
	db    *dbtest.DB
	store *store.Store
	url   string
	h     http.Handler // the server's, for another listener
	reg   *prometheus.Registry
	svc   *ingest.Service
	seq   *ledger.Sequencer
	cp    *ledger.Checkpointer
}

// sequence adds every committed event to the log, as the server's
// sequencer does within a second.
func (b *testBundle) sequence(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, b.seq.Drain(ctx))
}

// sequenceOnce runs one sequencing round.
func (b *testBundle) sequenceOnce(t testing.TB) {
	t.Helper()
	_, err := b.seq.Step(context.Background())
	require.NoError(t, err)
}

type setupOpts struct {
	dbURL       string // connect through this URL instead (e.g. a proxy)
	readKeys    []config.ReadKey
	countryCode string
	spool       bool      // before-* hooks go to a spool when the database is out
	logs        io.Writer // the server's log, at debug level, instead of t.Log
	// draining is the server's shutdown flag (nil: its own).
	draining *atomic.Bool
}

func setup(t testing.TB, opts ...func(*setupOpts)) *testBundle {
	t.Helper()
	o := setupOpts{}
	for _, f := range opts {
		f(&o)
	}
	d := dbtest.New(t)
	url := d.URL
	if o.dbURL != "" {
		url = o.dbURL
	}
	log := dbtest.Logger(t)
	if o.logs != nil {
		log = slog.New(slog.NewTextHandler(o.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	st, err := store.Open(context.Background(), url, store.Options{Logger: log})
	require.NoError(t, err)
	t.Cleanup(st.Close)

	cfg := testConfig()
	if o.readKeys != nil {
		cfg.ReadKeys = o.readKeys
	}
	cfg.PhoneDefaultCountryCode = o.countryCode
	require.NoError(t, cfg.Validate())
	reg := prometheus.NewRegistry()
	keys, err := ledger.LoadKeys("", t.TempDir(), "casetrail.test/log")
	require.NoError(t, err)
	svc := ingest.NewService(cfg, st, st, ingest.NewMetrics(reg))
	if o.spool {
		sp, err := spool.Open(t.TempDir())
		require.NoError(t, err)
		t.Cleanup(func() { sp.Close() })
		svc.SpoolBeforeHooks(sp, 150*time.Millisecond)
	}
	cp := &ledger.Checkpointer{Store: st, Keys: keys, Origin: "casetrail.test/log", MaxAge: time.Hour}
	h := httpapi.NewServer(httpapi.Deps{
		Ledger:   &ledger.Service{Store: st, Keys: keys, Checkpointer: cp},
		Config:   cfg,
		Ingest:   svc,
		Ready:    st,
		Reads:    st,
		Reports:  st,
		Logger:   log,
		Registry: reg,
		Draining: o.draining,
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &testBundle{db: d, store: st, url: srv.URL, h: h, reg: reg, svc: svc,
		seq: &ledger.Sequencer{Store: st, Log: log},
		cp:  cp}
}

// testConfig is the tests' sources, one of each kind and one with a header
// secret, and an analyst key.
func testConfig() *config.Config {
	return &config.Config{
		MaxBodyBytes: 64 << 10,
		Sources: []config.Source{
			{Name: "case-updates", Kind: config.KindCaseUpdates, HMACSecret: cuSecret},
			{Name: "service-actions", Kind: config.KindServiceActions, HMACSecret: saSecret},
			{Name: "service-hooks", Kind: config.KindServiceHooks, APIKeys: []string{shOldKey, shNewKey}},
			{Name: "cases-by-header", Kind: config.KindCaseUpdates, AuthHeader: "X-Token", AuthSecret: hdrKey},
		},
		ReadKeys: []config.ReadKey{{Name: "ann", Role: config.RoleAnalyst, Key: "analyst-key-0123456789"}},
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), string(r.body))
	return m
}

func (b *testBundle) post(t *testing.T, path string, body []byte, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.url+path, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return roundTrip(t, req, true)
}

// roundTrip sends req and reads the whole answer, checking it against the
// contract when checked is set.
func roundTrip(t *testing.T, req *http.Request, checked bool) response {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	if checked {
		checkContract(t, req, res, raw)
	}
	return response{status: res.StatusCode, header: res.Header, body: raw}
}

// asWritten has req send path (with its query) exactly as written, not
// cleaned or escaped by the client.
func asWritten(req *http.Request, path string) {
	rawPath, rawQuery, _ := strings.Cut(path, "?")
	req.URL.Opaque = "//" + req.URL.Host + rawPath
	req.URL.RawQuery = rawQuery
}

func hexHMAC(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func b64HMAC(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// signed posts body to a source of the given kind with valid credentials.
func (b *testBundle) signed(t *testing.T, kind, event string, body []byte, extra map[string]string) response {
	t.Helper()
	path, h := signedDelivery(kind, event, body)
	for k, v := range extra {
		h[k] = v
	}
	return b.post(t, path, body, h)
}

// signedDelivery is the path and the credential headers of a delivery of
// body to the source of the given kind.
func signedDelivery(kind, event string, body []byte) (string, map[string]string) {
	h := map[string]string{}
	path := "/v1/ingest/" + kind
	switch kind {
	case config.KindCaseUpdates:
		h["x-cv-signature"] = hexHMAC(cuSecret, body)
		if event != "" {
			path += "/" + event
		}
	case config.KindServiceActions:
		h["Authorization"] = "HMAC " + b64HMAC(saSecret, body)
		path += "/" + event
	case config.KindServiceHooks:
		h["x-api-key"] = shNewKey
		path += "/" + event
	}
	return path, h
}

type storedRow struct {
	Type, Source, Kind, Credential string
	CaseID, Phone, CustomerID      *string
	ConversationID, AgentID        *string
	WorkItemID, Queue              *string
	TimeInQueueMs                  *int64
	Body, BodySHA256, Doc, Reply   []byte
	DocLossy                       bool
}

func (b *testBundle) row(t *testing.T, id string) storedRow {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), b.db.URL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var r storedRow
	err = conn.QueryRow(context.Background(), `
		SELECT type, source, kind, credential, case_id, phone, customer_id, conversation_id,
		       agent_id, work_item_id, queue, time_in_queue_ms, body, body_sha256,
		       doc::text::bytea, reply::text::bytea, doc_lossy
		FROM events WHERE id = $1::bigint`, id).Scan(
		&r.Type, &r.Source, &r.Kind, &r.Credential, &r.CaseID, &r.Phone, &r.CustomerID, &r.ConversationID,
		&r.AgentID, &r.WorkItemID, &r.Queue, &r.TimeInQueueMs, &r.Body, &r.BodySHA256, &r.Doc, &r.Reply, &r.DocLossy)
	require.NoError(t, err)
	return r
}

func (b *testBundle) count(t *testing.T, table string) int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), b.db.URL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var n int
	require.NoError(t, conn.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n))
	return n
}

// eventOf names the event a testdata file is an example of: the file name,
// or for variants (abandoned-conversation-ms.json) the known event it
// starts with.
func eventOf(kind, file string) string {
	base := strings.TrimSuffix(filepath.Base(file), ".json")
	best := ""
	for _, e := range normalize.KnownEvents(normalize.Kind(kind)) {
		if strings.HasPrefix(base, e) && len(e) > len(best) {
			best = e
		}
	}
	if best == "" {
		return base
	}
	return best
}

func TestIngestEverySeedExample(t *testing.T) {
	t.Parallel()
	b := setup(t)
	files, err := filepath.Glob("../../testdata/events/*/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	seen := map[string]bool{}
	for _, f := range files {
		kind := filepath.Base(filepath.Dir(f))
		body, err := os.ReadFile(f)
		require.NoError(t, err)
		event := eventOf(kind, f)
		t.Run(kind+"/"+filepath.Base(f), func(t *testing.T) {
			pathEvent := event
			if kind == config.KindCaseUpdates {
				pathEvent = ""
			}
			res := b.signed(t, kind, pathEvent, body, nil)
			require.Equal(t, http.StatusOK, res.status, string(res.body))
			id := res.header.Get("X-Casetrail-Event-Id")
			require.NotEmpty(t, id)

			row := b.row(t, id)
			require.Equal(t, body, row.Body, "raw body kept byte for byte")
			sum := sha256.Sum256(body)
			require.Equal(t, sum[:], row.BodySHA256)
			require.Equal(t, kind, row.Kind)
			require.Equal(t, kind, row.Source)
			require.NotEmpty(t, row.Doc)
			require.NotContains(t, string(row.Doc), `"content": "`, "no base64 content left in the indexed copy")
			if kind != config.KindCaseUpdates {
				require.Equal(t, event, row.Type)
			} else {
				var top struct{ Event string }
				require.NoError(t, json.Unmarshal(body, &top))
				require.Equal(t, top.Event, row.Type)
			}
			want := normalize.IsBeforeHook(normalize.Kind(kind), event)
			if want {
				requireNoChangeReply(t, body, res.body)
				requireNoChangeReply(t, body, row.Reply)
			} else {
				require.Nil(t, row.Reply)
				reply := res.json(t)
				require.Equal(t, id, reply["id"])
				require.Equal(t, false, reply["duplicate"])
			}
			seen[kind+"/"+row.Type] = true
		})
	}
	// Every seed event has an example.
	for _, e := range []string{
		"ADD_CASE_COMMENT", "ADD_CASE_DECISION", "ADD_CASE_ATTACHMENT", "ADD_FORM_RESPONSE",
		"ADD_CASE_ASSIGNEE", "REMOVE_CASE_ASSIGNEE", "PAYMENT_ADDED", "PAYMENT_COMPLETED",
		"ORDER_CREATED", "ORDER_STATUS_CHANGED", "ORDER_TRACKING_ADDED", "DELETE_ATTACHMENT",
		"CREATE_CASE", "ESCALATE_CASE", "DEESCALATE_CASE", "DELETE_CASE_COMMENT",
		"ARCHIVE_CASE", "REOPEN_CASE", "CHANGE_CASE_STATUS",
	} {
		require.True(t, seen["case-updates/"+e], e)
	}
	for _, kind := range []string{config.KindServiceActions, config.KindServiceHooks} {
		for _, e := range normalize.KnownEvents(normalize.Kind(kind)) {
			require.True(t, seen[kind+"/"+e], kind+"/"+e)
		}
	}
}

// requireNoChangeReply checks SPEC §1's no-change reply to a before-* hook.
func requireNoChangeReply(t *testing.T, request, reply []byte) {
	t.Helper()
	var got map[string]any
	require.NoError(t, json.Unmarshal(reply, &got), string(reply))
	var req map[string]any
	_ = json.Unmarshal(request, &req)
	echo, ok := req["useCustomerContactInfo"]
	if !ok {
		echo = nil
	}
	want := map[string]any{
		"fields": nil, "tagIds": nil, "customerRecordId": nil, "contactPhoneNumber": nil,
		"contactEmail": nil, "serviceTypeId": nil, "channel": nil, "preventSelfCheckIn": nil,
		"removeCustomer": false, "cancelled": false, "useCustomerContactInfo": echo,
	}
	require.Equal(t, want, got)
}

func TestIngestNormalisedColumns(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := []byte(`{"event":"CHANGE_CASE_STATUS","payload":{"changeStatus":{"caseId":"case-42","newStatus":"Resolved","oldStatus":"Open","changeDate":"2024-05-01T10:00:00+02:00","caller":{"id":"u1","firstName":"Ann","lastName":"Lee"}}}}`)
	res := b.signed(t, config.KindCaseUpdates, "", body, nil)
	require.Equal(t, http.StatusOK, res.status, string(res.body))
	row := b.row(t, res.json(t)["id"].(string))
	require.Equal(t, "CHANGE_CASE_STATUS", row.Type)
	require.Equal(t, "case-42", *row.CaseID)
	require.Equal(t, "hmac:"+config.Fingerprint(cuSecret), row.Credential)

	hook := []byte(`{"Customer Phone number":"0044 (20) 7946-0958","Time in queue":"00:01:05","Time stamp":"2024-05-01T09:00:00Z","Queue":"Billing"}`)
	res = b.signed(t, config.KindServiceHooks, "abandoned-conversation", hook, nil)
	require.Equal(t, http.StatusOK, res.status, string(res.body))
	row = b.row(t, res.json(t)["id"].(string))
	require.Equal(t, "+442079460958", *row.Phone)
	require.Equal(t, "Billing", *row.Queue)
	require.EqualValues(t, 65000, *row.TimeInQueueMs)
	require.Equal(t, "api-key:"+config.Fingerprint(shNewKey), row.Credential)
}

func TestIngestAuthentication(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := []byte(`{"event":"CREATE_CASE","payload":{"case":{"id":"c-1"}}}`)
	cases := []struct {
		name   string
		path   string
		header map[string]string
		want   int
	}{
		{"case-updates good signature", "/v1/ingest/case-updates", map[string]string{"x-cv-signature": hexHMAC(cuSecret, body)}, 200},
		{"case-updates bad signature", "/v1/ingest/case-updates", map[string]string{"x-cv-signature": hexHMAC("wrong", body)}, 401},
		{"case-updates not hex", "/v1/ingest/case-updates", map[string]string{"x-cv-signature": "zz"}, 401},
		{"case-updates no signature", "/v1/ingest/case-updates", nil, 401},
		{"case-updates by header", "/v1/ingest/cases-by-header", map[string]string{"X-Token": hdrKey}, 200},
		{"case-updates wrong header", "/v1/ingest/cases-by-header", map[string]string{"X-Token": "nope"}, 401},
		{"service-actions good", "/v1/ingest/service-actions/after-resolve", map[string]string{"Authorization": "HMAC " + b64HMAC(saSecret, body)}, 200},
		{"service-actions bad", "/v1/ingest/service-actions/after-resolve", map[string]string{"Authorization": "HMAC " + b64HMAC("x", body)}, 401},
		{"service-actions bearer", "/v1/ingest/service-actions/after-resolve", map[string]string{"Authorization": "Bearer abc"}, 401},
		{"service-hooks old key", "/v1/ingest/service-hooks/outbound-call", map[string]string{"x-api-key": shOldKey}, 200},
		{"service-hooks new key", "/v1/ingest/service-hooks/workitem-closed", map[string]string{"x-api-key": shNewKey}, 200},
		{"service-hooks unknown key", "/v1/ingest/service-hooks/outbound-call", map[string]string{"x-api-key": "guess"}, 401},
		{"service-hooks missing key", "/v1/ingest/service-hooks/outbound-call", nil, 401},
		{"read key cannot ingest", "/v1/ingest/service-hooks/outbound-call", map[string]string{"Authorization": "Bearer analyst-key-0123456789"}, 401},
		{"unknown source", "/v1/ingest/nobody", map[string]string{"x-api-key": shNewKey}, 404},
	}
	for _, tc := range cases {
		res := b.post(t, tc.path, body, tc.header)
		require.Equal(t, tc.want, res.status, "%s: %s", tc.name, res.body)
		if tc.want >= 400 {
			require.Equal(t, "application/problem+json", res.header.Get("Content-Type"), tc.name)
			p := res.json(t)
			require.EqualValues(t, tc.want, p["status"], tc.name)
			require.NotEmpty(t, p["detail"], tc.name)
			require.NotContains(t, string(res.body), cuSecret)
		}
	}
	// Unauthenticated requests are not kept; nothing else was refused.
	require.Equal(t, 0, b.count(t, "rejected_requests"))
}

func TestIngestRejectionsAreKept(t *testing.T) {
	t.Parallel()
	b := setup(t)

	notJSON := []byte(`{"event": "CREATE_CASE", oops`)
	res := b.signed(t, config.KindCaseUpdates, "", notJSON, nil)
	require.Equal(t, http.StatusBadRequest, res.status)
	p := res.json(t)
	require.Equal(t, "urn:casetrail:problem:invalid_json", p["type"])
	require.NotEmpty(t, p["rejectedId"])

	res = b.signed(t, config.KindCaseUpdates, "", []byte(`{"payload":{}}`), nil)
	require.Equal(t, http.StatusBadRequest, res.status)
	require.Equal(t, "urn:casetrail:problem:missing_event_type", res.json(t)["type"])

	res = b.signed(t, config.KindServiceHooks, "teleport-customer", []byte(`{}`), nil)
	require.Equal(t, http.StatusNotFound, res.status)
	require.Equal(t, "urn:casetrail:problem:unknown_event", res.json(t)["type"])

	big := bytes.Repeat([]byte("x"), 70<<10)
	res = b.signed(t, config.KindServiceHooks, "outbound-call", big, nil)
	require.Equal(t, http.StatusRequestEntityTooLarge, res.status)
	res = b.signed(t, config.KindCaseUpdates, "", big, nil)
	require.Equal(t, http.StatusRequestEntityTooLarge, res.status)

	conn, err := pgx.Connect(context.Background(), b.db.URL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), `SELECT r.cause, r.status, b.body, r.body_truncated, r.credential
		FROM rejected_requests r JOIN rejected_bodies b ON b.sha256 = r.body_sha256 ORDER BY r.id`)
	require.NoError(t, err)
	type rejected struct {
		cause     string
		status    int
		body      []byte
		truncated bool
		cred      string
	}
	var got []rejected
	for rows.Next() {
		var r rejected
		require.NoError(t, rows.Scan(&r.cause, &r.status, &r.body, &r.truncated, &r.cred))
		got = append(got, r)
	}
	require.NoError(t, rows.Err())
	require.Len(t, got, 5)
	require.Equal(t, rejected{"invalid_json", 400, notJSON, false, "hmac:" + config.Fingerprint(cuSecret)}, got[0])
	require.Equal(t, "missing_event_type", got[1].cause)
	require.Equal(t, "unknown_event", got[2].cause)
	// An API-key source keeps what was read of an oversized body...
	require.Equal(t, "body_too_large", got[3].cause)
	require.True(t, got[3].truncated)
	require.NotEmpty(t, got[3].body)
	// ...a signed one cannot verify it, so keeps only the fact.
	require.Equal(t, "body_too_large", got[4].cause)
	require.Equal(t, "unverified", got[4].cred)
	require.Empty(t, got[4].body)
	require.Equal(t, 0, b.count(t, "events"))
}

func TestIngestUnrepresentableJSONIsStillStored(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, body := range [][]byte{
		[]byte(`{"event":"ADD_CASE_COMMENT","payload":{"caseId":"c-nul","comment":{"text":"a\u0000b"}}}`),
		[]byte("{\"event\":\"ADD_CASE_COMMENT\",\"payload\":{\"caseId\":\"c-utf8\",\"comment\":{\"text\":\"\xff\xfe\"}}}"),
		[]byte(`{"event":"ADD_CASE_COMMENT","event":"ADD_CASE_COMMENT","payload":{"caseId":"c-dup"}}`),
	} {
		res := b.signed(t, config.KindCaseUpdates, "", body, nil)
		require.Equal(t, http.StatusOK, res.status, string(res.body))
		row := b.row(t, res.json(t)["id"].(string))
		require.Equal(t, body, row.Body)
		require.True(t, row.DocLossy)
		require.NotEmpty(t, row.Doc)
	}
}

// A body in the charset its Content-Type names is indexed as the text it
// is, its bytes kept as sent; one in a charset casetrail cannot decode is
// stored too, its indexed copy marked lossy.
func TestIngestBodyCharset(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// "Zoë Ångström" in ISO-8859-1.
	body := []byte("{\"agent\":{\"id\":\"a-1\",\"name\":\"Zo\xeb \xc5ngstr\xf6m\"},\"targetPhoneNumber\":\"+14155550100\"}")
	const latin1 = "application/json; charset=ISO-8859-1"
	res := b.signed(t, config.KindServiceHooks, "outbound-call", body, map[string]string{"Content-Type": latin1})
	require.Equal(t, http.StatusOK, res.status, string(res.body))
	id := res.json(t)["id"].(string)
	row := b.row(t, id)
	require.Equal(t, body, row.Body)
	require.False(t, row.DocLossy)
	require.Contains(t, string(row.Doc), "Zoë Ångström")

	conn, err := pgx.Connect(context.Background(), b.db.URL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var summary, contentType string
	require.NoError(t, conn.QueryRow(context.Background(),
		`SELECT summary, content_type FROM events WHERE id = $1::bigint`, id).Scan(&summary, &contentType))
	require.Equal(t, "Outbound call started by Zoë Ångström", summary)
	require.Equal(t, latin1, contentType)

	other := bytes.Replace(body, []byte("a-1"), []byte("a-2"), 1) // another delivery
	res = b.signed(t, config.KindServiceHooks, "outbound-call", other, map[string]string{"Content-Type": "application/json; charset=x-mac-klingon"})
	require.Equal(t, http.StatusOK, res.status, string(res.body))
	require.Equal(t, false, res.json(t)["duplicate"])
	row = b.row(t, res.json(t)["id"].(string))
	require.Equal(t, other, row.Body)
	require.True(t, row.DocLossy)
}

// Header and path values are the sender's bytes too: ones a text column
// cannot hold are stored or refused with a 4xx, never a 503 that the sender
// would retry for ever.
func TestIngestUnrepresentableHeadersAndPaths(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := []byte(`{"agentID":"a-1","targetPhoneNumber":"+14155550100","Timestamp":"2024-05-01T10:00:00Z"}`)
	for _, tc := range []struct {
		name   string
		event  string
		body   []byte
		header map[string]string
		status int
		cause  string // of the kept request; "" when the event is stored
	}{
		{"idempotency key", "outbound-call", body, map[string]string{"Idempotency-Key": "k\xff1"}, http.StatusBadRequest, "invalid_idempotency_key"},
		{"webhook-id", "outbound-call", body, map[string]string{"webhook-id": "\xc3("}, http.StatusBadRequest, "invalid_idempotency_key"},
		{"content type", "outbound-call", body, map[string]string{"Content-Type": "application/j\xffson"}, http.StatusOK, ""},
		{"path event", "%ff", body, nil, http.StatusNotFound, "unknown_event"},
		{"NUL path event", "a%00b", body, nil, http.StatusNotFound, "unknown_event"},
		{"not JSON, odd content type", "outbound-call", []byte("{"), map[string]string{"Content-Type": "text/\xfe"}, http.StatusBadRequest, "invalid_json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kept := b.count(t, "rejected_requests")
			res := b.signed(t, config.KindServiceHooks, tc.event, tc.body, tc.header)
			require.Equal(t, tc.status, res.status, string(res.body))
			if tc.cause == "" {
				row := b.row(t, res.json(t)["id"].(string))
				require.Equal(t, tc.body, row.Body)
				return
			}
			require.Equal(t, "urn:casetrail:problem:"+tc.cause, res.json(t)["type"])
			require.NotEmpty(t, res.json(t)["rejectedId"], "the request is kept")
			require.Equal(t, kept+1, b.count(t, "rejected_requests"))
		})
	}
}

func TestIngestIdempotency(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := []byte(`{"agentID":"a-1","targetPhoneNumber":"+14155550100","Timestamp":"2024-05-01T10:00:00Z"}`)
	first := b.signed(t, config.KindServiceHooks, "outbound-call", body, nil)
	require.Equal(t, 200, first.status)
	again := b.signed(t, config.KindServiceHooks, "outbound-call", body, nil)
	require.Equal(t, 200, again.status)
	require.Equal(t, true, again.json(t)["duplicate"])
	require.Equal(t, first.json(t)["id"], again.json(t)["id"])
	require.Equal(t, 1, b.count(t, "events"))

	key := map[string]string{"Idempotency-Key": "delivery-7"}
	res := b.signed(t, config.KindServiceHooks, "outbound-call", []byte(`{"n":1}`), key)
	require.Equal(t, 200, res.status)
	res = b.signed(t, config.KindServiceHooks, "outbound-call", []byte(`{"n":1}`), key)
	require.Equal(t, true, res.json(t)["duplicate"])
	res = b.signed(t, config.KindServiceHooks, "outbound-call", []byte(`{"n":2}`), key)
	require.Equal(t, http.StatusConflict, res.status)
	require.Equal(t, "urn:casetrail:problem:idempotency_conflict", res.json(t)["type"])

	res = b.signed(t, config.KindServiceHooks, "outbound-call", []byte(`{"n":3}`), map[string]string{"webhook-id": "msg_1"})
	require.Equal(t, 200, res.status)
	res = b.signed(t, config.KindServiceHooks, "outbound-call", []byte(`{"n":3}`), map[string]string{"webhook-id": "msg_1"})
	require.Equal(t, true, res.json(t)["duplicate"])

	require.Equal(t, 3, b.count(t, "events"))
	require.Equal(t, 1, b.count(t, "rejected_requests"), "the 409 is kept")

	// A case update names its event in its body, and is kept with it.
	caseKey := map[string]string{"Idempotency-Key": "case-delivery-1"}
	res = b.signed(t, config.KindCaseUpdates, "", []byte(`{"event":"ESCALATE_CASE","caseId":"c-1","n":1}`), caseKey)
	require.Equal(t, 200, res.status)
	res = b.signed(t, config.KindCaseUpdates, "", []byte(`{"event":"ESCALATE_CASE","caseId":"c-1","n":2}`), caseKey)
	require.Equal(t, http.StatusConflict, res.status)
	conn, err := pgx.Connect(context.Background(), b.db.URL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var eventType string
	require.NoError(t, conn.QueryRow(context.Background(),
		"SELECT event_type FROM rejected_requests WHERE source = $1", config.KindCaseUpdates).Scan(&eventType))
	require.Equal(t, "ESCALATE_CASE", eventType)
}

// A sender's key reused with the same body for another hook is not a retry
// of the first: it is refused with 409 and kept, not answered as a
// duplicate of an event of another type.
func TestIngestExplicitKeyReusedForAnotherHook(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := []byte(`{"id":"case-41","customer":{"phoneNumber":"+14155550100"}}`)
	key := map[string]string{"Idempotency-Key": "case-41-resolve"}
	first := b.signed(t, config.KindServiceActions, "before-resolve", body, key)
	require.Equal(t, 200, first.status, string(first.body))
	retry := b.signed(t, config.KindServiceActions, "before-resolve", body, key)
	require.Equal(t, 200, retry.status, string(retry.body))
	require.Equal(t, 1, b.count(t, "events"), "a retry of the same hook stores nothing new")

	other := b.signed(t, config.KindServiceActions, "after-resolve", body, key)
	require.Equal(t, http.StatusConflict, other.status, string(other.body))
	p := other.json(t)
	require.Equal(t, "urn:casetrail:problem:idempotency_conflict", p["type"])
	require.Contains(t, p["detail"], "before-resolve")
	require.Equal(t, 1, b.count(t, "events"))
	require.Equal(t, 1, b.count(t, "rejected_requests"), "the refused hook is kept")

	// Same for a webhook-id, and within one source's other path events.
	msg := map[string]string{"webhook-id": "msg_9"}
	call := []byte(`{"agentID":"a-1","targetPhoneNumber":"+14155550100"}`)
	require.Equal(t, 200, b.signed(t, config.KindServiceHooks, "outbound-call", call, msg).status)
	res := b.signed(t, config.KindServiceHooks, "workitem-closed", call, msg)
	require.Equal(t, http.StatusConflict, res.status, string(res.body))
	require.Equal(t, 2, b.count(t, "events"))
	require.Equal(t, 2, b.count(t, "rejected_requests"))
}

func TestIngestConcurrentIdenticalDeliveries(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := []byte(`{"event":"ESCALATE_CASE","payload":{"escalated":{"caseId":"c-9","isEscalated":true}}}`)
	const senders = 50
	var wg sync.WaitGroup
	ids := make([]string, senders)
	dups := make([]bool, senders)
	statuses := make([]int, senders)
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, b.url+"/v1/ingest/case-updates", bytes.NewReader(body))
			req.Header.Set("x-cv-signature", hexHMAC(cuSecret, body))
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			defer res.Body.Close()
			statuses[i] = res.StatusCode
			var r struct {
				ID        string
				Duplicate bool
			}
			json.NewDecoder(res.Body).Decode(&r) //nolint:errcheck
			ids[i], dups[i] = r.ID, r.Duplicate
		}()
	}
	wg.Wait()
	fresh := 0
	for i := range senders {
		require.Equal(t, 200, statuses[i])
		require.Equal(t, ids[0], ids[i])
		if !dups[i] {
			fresh++
		}
	}
	require.Equal(t, 1, fresh)
	require.Equal(t, 1, b.count(t, "events"))
}

func TestIngestDatabaseDownAnswers503(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	proxy, viaProxy := dbtest.NewProxy(t, d.URL)
	b := setup(t, func(o *setupOpts) { o.dbURL = viaProxy })
	b.db = d // count through the direct connection

	body := []byte(`{"event":"ORDER_CREATED","payload":{"caseId":"c-5","order":{"id":"o-1"}}}`)
	require.Equal(t, 200, b.signed(t, config.KindCaseUpdates, "", body, nil).status)

	proxy.SetDown(true)
	down := []byte(`{"event":"ORDER_CREATED","payload":{"caseId":"c-5","order":{"id":"o-2"}}}`)
	res := b.signed(t, config.KindCaseUpdates, "", down, nil)
	require.Equal(t, http.StatusServiceUnavailable, res.status, string(res.body))
	require.NotEmpty(t, res.header.Get("Retry-After"))
	require.Equal(t, "application/problem+json", res.header.Get("Content-Type"))
	require.NotContains(t, string(res.body), "127.0.0.1", "no driver detail leaks")
	// A before-hook gets no 2xx either while nothing can be stored.
	hook := []byte(`{"caseId":"c-5"}`)
	res = b.signed(t, config.KindServiceActions, "before-resolve", hook, nil)
	require.Equal(t, http.StatusServiceUnavailable, res.status)

	require.Equal(t, 1, b.count(t, "events"))

	proxy.SetDown(false)
	res = b.signed(t, config.KindCaseUpdates, "", down, nil)
	require.Equal(t, 200, res.status, string(res.body))
	require.Equal(t, 2, b.count(t, "events"))
}

func TestIngestMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := []byte(`{"n":1}`)
	b.signed(t, config.KindServiceHooks, "outbound-call", body, nil)
	b.signed(t, config.KindServiceHooks, "outbound-call", body, nil)
	b.signed(t, config.KindServiceHooks, "outbound-call", []byte("nope"), nil)
	res, err := http.Get(b.url + "/metrics")
	require.NoError(t, err)
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	text := string(raw)
	require.Contains(t, text, `casetrail_ingest_requests_total{outcome="accepted",source="service-hooks"} 1`)
	require.Contains(t, text, `casetrail_ingest_requests_total{outcome="duplicate",source="service-hooks"} 1`)
	require.Contains(t, text, `casetrail_ingest_rejected_total{cause="invalid_json",source="service-hooks"} 1`)
	require.Contains(t, text, `casetrail_ingest_duration_seconds_count{source="service-hooks"} 3`)
}

func TestIngestBlobsAreExtractedAndDeduplicated(t *testing.T) {
	t.Parallel()
	b := setup(t)
	content := []byte("%PDF-1.4 scanned referral letter")
	enc := base64.StdEncoding.EncodeToString(content)
	comment := fmt.Sprintf(`{"event":"ADD_CASE_COMMENT","payload":{"caseId":"c-b","comment":{"id":"cm1","text":"see attached","attachments":[{"id":"a1","fileName":"letter.pdf","isPHI":true,"content":%q}]}}}`, enc)
	attachment := fmt.Sprintf(`{"event":"ADD_CASE_ATTACHMENT","payload":{"caseId":"c-b","attachment":{"id":"a2","fileName":"letter-copy.pdf","content":%q}}}`, enc)
	for _, body := range []string{comment, attachment} {
		res := b.signed(t, config.KindCaseUpdates, "", []byte(body), nil)
		require.Equal(t, 200, res.status, string(res.body))
		row := b.row(t, res.json(t)["id"].(string))
		require.NotContains(t, string(row.Doc), enc, "base64 content left the indexed copy")
		require.Contains(t, string(row.Doc), fmt.Sprintf(`"size": %d`, len(content)))
		require.Equal(t, []byte(body), row.Body, "the raw body still holds it")
	}
	conn, err := pgx.Connect(context.Background(), b.db.URL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var n int
	var stored []byte
	var size int64
	sum := sha256.Sum256(content)
	require.NoError(t, conn.QueryRow(context.Background(), "SELECT count(*) FROM blobs").Scan(&n))
	require.Equal(t, 1, n, "one blob for two events carrying the same content")
	require.NoError(t, conn.QueryRow(context.Background(), "SELECT content, size FROM blobs WHERE sha256 = $1", sum[:]).Scan(&stored, &size))
	require.Equal(t, content, stored)
	require.EqualValues(t, len(content), size)
}

func TestBeforeHooksAreSpooledDuringOutage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	proxy, viaProxy := dbtest.NewProxy(t, d.URL)
	b := setup(t, func(o *setupOpts) { o.dbURL = viaProxy; o.spool = true })
	b.db = d

	proxy.SetDown(true)
	body := []byte(`{"caseId":"c-77","status":"Active","useCustomerContactInfo":true}`)
	res := b.signed(t, config.KindServiceActions, "before-resolve", body, nil)
	require.Equal(t, http.StatusOK, res.status, string(res.body))
	requireNoChangeReply(t, body, res.body)
	require.Equal(t, "true", res.header.Get("X-Casetrail-Spooled"))
	// Other events still get 503: their senders retry.
	res = b.signed(t, config.KindServiceActions, "after-resolve", body, nil)
	require.Equal(t, http.StatusServiceUnavailable, res.status)
	require.Equal(t, 0, b.count(t, "events"))
	require.Equal(t, 1, b.svc.Spooled())
	// The server stays ready, saying why, so that a load balancer keeps
	// sending it the hooks it answers; without a spool it would not be.
	status, _, raw := get(t, b.url+"/readyz")
	require.Equal(t, http.StatusOK, status, string(raw))
	require.Contains(t, string(raw), "the database is not reachable: before-* hooks are answered and spooled")
	require.Contains(t, string(raw), "1 before-hook events wait in the local spool")
	plain := setup(t, func(o *setupOpts) { o.dbURL = viaProxy })
	status, _, _ = get(t, plain.url+"/readyz")
	require.Equal(t, http.StatusServiceUnavailable, status)

	proxy.SetDown(false)
	n, err := b.svc.DrainSpool(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, 0, b.svc.Spooled())
	require.Equal(t, 1, b.count(t, "events"))
	n, err = b.svc.DrainSpool(ctx)
	require.NoError(t, err)
	require.Zero(t, n)

	// The stored event is the request with the reply that was sent.
	conn, err := pgx.Connect(ctx, d.URL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var stored, reply []byte
	require.NoError(t, conn.QueryRow(ctx, "SELECT body, reply::text::bytea FROM events").Scan(&stored, &reply))
	require.Equal(t, body, stored)
	requireNoChangeReply(t, body, reply)

	// The platform retrying the same hook now finds it stored once.
	res = b.signed(t, config.KindServiceActions, "before-resolve", body, nil)
	require.Equal(t, http.StatusOK, res.status)
	require.Equal(t, 1, b.count(t, "events"))
}
