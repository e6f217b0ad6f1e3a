package httpapi_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/casetrail/casetrail/internal/config"
	"github.com/casetrail/casetrail/internal/ledger"
	"github.com/casetrail/casetrail/internal/redact"
	"github.com/casetrail/casetrail/internal/store"
	"github.com/casetrail/casetrail/internal/timeline"
)

const (
	analystKey = "analyst-key-0123456789"
	auditorKey = "auditor-key-0123456789"
	adminKey   = "admin-key-0123456789ab"
)

type listing struct {
	Data []apiEvent `json:"data"`
	Page struct {
		NextCursor *string `json:"nextCursor"`
		HasMore    bool    `json:"hasMore"`
	} `json:"page"`
}

type apiEvent struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	Kind        string          `json:"kind"`
	OccurredAt  time.Time       `json:"occurredAt"`
	CaseID      *string         `json:"caseId"`
	Summary     string          `json:"summary"`
	Actor       json.RawMessage `json:"actor"`
	Changes     json.RawMessage `json:"changes"`
	Data        map[string]any  `json:"data"`
	Correlation *struct {
		MatchedBy string `json:"matchedBy"`
	} `json:"correlation"`
	Payload        json.RawMessage `json:"payload"`
	RawBody        *string         `json:"rawBody"`
	BodySHA256     *string         `json:"bodySha256"`
	IdempotencyKey string          `json:"idempotencyKey"`
	Credential     string          `json:"credential"`
	LogIndex       *int64          `json:"logIndex"`
	Expunged       *struct {
		At     time.Time `json:"at"`
		Reason string    `json:"reason"`
	} `json:"expunged"`
}

func (b *testBundle) read(t *testing.T, key, path string) response {
	t.Helper()
	return b.readChecked(t, key, path, true)
}

// readChecked reads path, checking the answer against the contract when
// checked is set.
func (b *testBundle) readChecked(t *testing.T, key, path string, checked bool) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.url+path, nil)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	return roundTrip(t, req, checked)
}

func (b *testBundle) list(t *testing.T, key, path string) listing {
	t.Helper()
	res := b.read(t, key, path)
	require.Equal(t, http.StatusOK, res.status, string(res.body))
	var l listing
	require.NoError(t, json.Unmarshal(res.body, &l))
	return l
}

// walk reads every page of a listing and returns the events in order.
func (b *testBundle) walk(t *testing.T, key, path string, q url.Values) []apiEvent {
	t.Helper()
	var all []apiEvent
	for pages := 0; ; pages++ {
		require.Less(t, pages, 1000, "pagination does not end")
		l := b.list(t, key, path+"?"+q.Encode())
		all = append(all, l.Data...)
		if !l.Page.HasMore {
			return all
		}
		require.NotNil(t, l.Page.NextCursor)
		q.Set("cursor", *l.Page.NextCursor)
	}
}

// fixture is what the generated store holds, known independently of the API.
type fixture struct {
	caseEvents  map[string][]string // case id -> ids of its own events
	correlated  map[string][]string // case id -> ids of service-hook events with its phone
	unrelated   []string
	byType      map[string][]string
	phoneOfCase map[string]string
}

// populate ingests a few hundred events over HTTP: 8 cases with 25 events
// each (status changes, orders, comments) whose payload carries the case's
// phone, and contact-center events for those phones and for strangers.
func populate(t *testing.T, b *testBundle) fixture {
	t.Helper()
	f := fixture{caseEvents: map[string][]string{}, correlated: map[string][]string{}, byType: map[string][]string{}, phoneOfCase: map[string]string{}}
	base := time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)
	types := []string{"CHANGE_CASE_STATUS", "ORDER_CREATED", "ORDER_STATUS_CHANGED", "ADD_CASE_COMMENT", "PAYMENT_ADDED"}
	for c := range 8 {
		caseID := fmt.Sprintf("case-%d", c)
		phone := fmt.Sprintf("+4477009001%02d", c)
		f.phoneOfCase[caseID] = phone
		for i := range 25 {
			typ := types[i%len(types)]
			// Several events share a timestamp so that ties are broken by id.
			at := base.Add(time.Duration(c)*time.Hour + time.Duration(i/3)*time.Minute)
			body := fmt.Sprintf(`{"event":%q,"payload":{"caseId":%q,"contactPhoneNumber":%q,"changeStatus":{"caseId":%q,"oldStatus":"Open","newStatus":"Step%d","changeDate":%q},"order":{"id":"o-%d-%d","status":"new","createdAt":%q},"comment":{"id":"cm-%d","text":"note %d","createdAt":%q},"payment":{"id":"p-%d","amount":%d,"createdAt":%q}}}`,
				typ, caseID, phone, caseID, i, at.Format(time.RFC3339), c, i, at.Format(time.RFC3339), i, i, at.Format(time.RFC3339), i, i, at.Format(time.RFC3339))
			res := b.signed(t, config.KindCaseUpdates, "", []byte(body), nil)
			require.Equal(t, 200, res.status, string(res.body))
			id := res.json(t)["id"].(string)
			f.caseEvents[caseID] = append(f.caseEvents[caseID], id)
			f.byType[typ] = append(f.byType[typ], id)
		}
		// Abandons and outbound calls for this case's phone, written in
		// other formats.
		for i := range 4 {
			at := base.Add(time.Duration(c)*time.Hour + time.Duration(i)*7*time.Minute)
			national := "0044 7700 9001" + phone[len(phone)-2:]
			body := fmt.Sprintf(`{"customerPhoneNumber":%q,"timeInQueue":%d,"timestamp":%q,"queue":"Q%d"}`, national, 10+i, at.Format(time.RFC3339), c%2)
			res := b.signed(t, config.KindServiceHooks, "abandoned-conversation", []byte(body), nil)
			require.Equal(t, 200, res.status, string(res.body))
			f.correlated[caseID] = append(f.correlated[caseID], res.json(t)["id"].(string))
		}
		body := fmt.Sprintf(`{"agentID":"agent-%d","targetPhoneNumber":%q,"Timestamp":%q}`, c, phone, base.Add(time.Duration(c)*time.Hour+30*time.Minute).Format(time.RFC3339))
		res := b.signed(t, config.KindServiceHooks, "outbound-call", []byte(body), nil)
		require.Equal(t, 200, res.status)
		f.correlated[caseID] = append(f.correlated[caseID], res.json(t)["id"].(string))
	}
	for i := range 20 {
		body := fmt.Sprintf(`{"customerPhoneNumber":"+1415555%04d","timeInQueue":5,"timestamp":%q,"queue":"Q9"}`, i, base.Add(time.Duration(i)*time.Minute).Format(time.RFC3339))
		res := b.signed(t, config.KindServiceHooks, "abandoned-conversation", []byte(body), nil)
		require.Equal(t, 200, res.status)
		f.unrelated = append(f.unrelated, res.json(t)["id"].(string))
	}
	b.sequence(t)
	return f
}

func readKeysOpt(o *setupOpts) {
	o.readKeys = []config.ReadKey{
		{Name: "ann", Role: config.RoleAnalyst, Key: analystKey},
		{Name: "bob", Role: config.RoleAuditor, Key: auditorKey},
		{Name: "ops", Role: config.RoleAdmin, Key: adminKey},
	}
}

func withReadKeys(t *testing.T) *testBundle { return setup(t, readKeysOpt) }

func ids(events []apiEvent) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

func sorted(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

func TestCaseTimeline(t *testing.T) {
	t.Parallel()
	b := withReadKeys(t)
	f := populate(t, b)

	caseID := "case-3"
	want := append(slices.Clone(f.caseEvents[caseID]), f.correlated[caseID]...)

	for _, order := range []string{"asc", "desc"} {
		for _, limit := range []string{"1", "7", "100", "500"} {
			q := url.Values{"order": {order}, "limit": {limit}}
			got := b.walk(t, analystKey, "/v1/cases/"+caseID+"/timeline", q)
			require.Equal(t, sorted(want), sorted(ids(got)), "order=%s limit=%s: every event exactly once", order, limit)
			for i := 1; i < len(got); i++ {
				prev, cur := got[i-1], got[i]
				less := prev.OccurredAt.Before(cur.OccurredAt) || prev.OccurredAt.Equal(cur.OccurredAt) && idLess(prev.ID, cur.ID)
				if order == "desc" {
					less = cur.OccurredAt.Before(prev.OccurredAt) || cur.OccurredAt.Equal(prev.OccurredAt) && idLess(cur.ID, prev.ID)
				}
				require.True(t, less, "order=%s: %v then %v", order, prev, cur)
			}
		}
	}

	// Correlation: the case's own events by caseId, contact-center events by
	// phone; nobody else's events.
	got := b.walk(t, analystKey, "/v1/cases/"+caseID+"/timeline", url.Values{"limit": {"500"}})
	for _, e := range got {
		require.NotNil(t, e.Correlation)
		if slices.Contains(f.caseEvents[caseID], e.ID) {
			require.Equal(t, "caseId", e.Correlation.MatchedBy)
		} else {
			require.Equal(t, "phone", e.Correlation.MatchedBy)
			require.Equal(t, "service-hooks", e.Kind)
		}
		require.NotContains(t, f.unrelated, e.ID)
	}

	// Wildcard type filter with pagination.
	got = b.walk(t, analystKey, "/v1/cases/"+caseID+"/timeline", url.Values{"types": {"ORDER_*"}, "limit": {"2"}})
	require.NotEmpty(t, got)
	var wantOrders []string
	for _, id := range f.caseEvents[caseID] {
		if slices.Contains(f.byType["ORDER_CREATED"], id) || slices.Contains(f.byType["ORDER_STATUS_CHANGED"], id) {
			wantOrders = append(wantOrders, id)
		}
	}
	require.Equal(t, sorted(wantOrders), sorted(ids(got)))
	// A filter written in the other case finds the same events.
	got = b.walk(t, analystKey, "/v1/cases/"+caseID+"/timeline", url.Values{"types": {"order_*"}, "limit": {"2"}})
	require.Equal(t, sorted(wantOrders), sorted(ids(got)))
	got = b.walk(t, analystKey, "/v1/cases/"+caseID+"/timeline", url.Values{"types": {"CHANGE_CASE_STATUS,abandoned-*"}})
	for _, e := range got {
		require.True(t, e.Type == "CHANGE_CASE_STATUS" || e.Type == "abandoned-conversation", e.Type)
	}
	// '_' in a type is literal, not a LIKE wildcard.
	require.Empty(t, b.list(t, analystKey, "/v1/cases/"+caseID+"/timeline?types=ORDER_CREATEDX").Data)
	require.Empty(t, b.list(t, analystKey, "/v1/cases/"+caseID+"/timeline?types=ORDERXCREATED").Data)

	// Time window, with offsets.
	from := "2024-03-01T12:05:00%2B00:00"
	to := "2024-03-01T14:10:00%2B02:00" // 12:10 UTC
	l := b.list(t, analystKey, "/v1/cases/"+caseID+"/timeline?from="+from+"&to="+to+"&limit=500")
	require.NotEmpty(t, l.Data)
	for _, e := range l.Data {
		require.False(t, e.OccurredAt.Before(time.Date(2024, 3, 1, 12, 5, 0, 0, time.UTC)))
		require.True(t, e.OccurredAt.Before(time.Date(2024, 3, 1, 12, 10, 0, 0, time.UTC)))
	}

	// A cursor is bound to its filters.
	first := b.list(t, analystKey, "/v1/cases/"+caseID+"/timeline?limit=2")
	require.True(t, first.Page.HasMore)
	res := b.read(t, analystKey, "/v1/cases/"+caseID+"/timeline?limit=2&order=desc&cursor="+*first.Page.NextCursor)
	require.Equal(t, 400, res.status)
	res = b.read(t, analystKey, "/v1/cases/case-4/timeline?limit=2&cursor="+*first.Page.NextCursor)
	require.Equal(t, 400, res.status)
	res = b.read(t, analystKey, "/v1/cases/"+caseID+"/timeline?cursor=garbage")
	require.Equal(t, 400, res.status)
	for _, bad := range []string{"limit=0", "limit=501", "limit=x", "order=sideways", "from=yesterday", "from=2024-03-02T00:00:00Z&to=2024-03-01T00:00:00Z"} {
		res = b.read(t, analystKey, "/v1/cases/"+caseID+"/timeline?"+bad)
		require.Equal(t, 400, res.status, bad)
		require.Equal(t, "application/problem+json", res.header.Get("Content-Type"))
	}

	// An unknown case has an empty timeline.
	empty := b.list(t, analystKey, "/v1/cases/nope/timeline")
	require.Empty(t, empty.Data)
	require.False(t, empty.Page.HasMore)
	require.Nil(t, empty.Page.NextCursor)
}

func idLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

func TestContactTimeline(t *testing.T) {
	t.Parallel()
	b := withReadKeys(t)
	f := populate(t, b)
	caseID := "case-5"
	want := append(slices.Clone(f.caseEvents[caseID]), f.correlated[caseID]...)
	// The same contact written in several formats.
	for _, contact := range []string{"+447700900105", "0044 7700 900105", "+44 (7700) 900-105"} {
		got := b.walk(t, analystKey, "/v1/contacts/"+url.PathEscape(contact)+"/timeline", url.Values{"limit": {"9"}})
		require.Equal(t, sorted(want), sorted(ids(got)), contact)
		for _, e := range got {
			require.Equal(t, "phone", e.Correlation.MatchedBy)
		}
	}
}

// commentDoc is the part of an ADD_CASE_COMMENT's indexed document that
// says where its attachments went.
type commentDoc struct {
	Payload struct {
		Comment struct {
			Attachments []struct {
				Content struct {
					SHA256 string `json:"sha256"`
					Size   int    `json:"size"`
				} `json:"content"`
			} `json:"attachments"`
		} `json:"comment"`
	} `json:"payload"`
}

func TestRolesAndRedaction(t *testing.T) {
	t.Parallel()
	b := withReadKeys(t)
	body := []byte(`{"event":"ADD_CASE_COMMENT","payload":{"caseId":"case-phi","contactPhoneNumber":"+447700900123","contactEmail":"pat@example.com","comment":{"id":"c1","text":"diagnosis: flu","isRestricted":true,"createdAt":"2024-01-01T00:00:00Z","author":{"firstName":"Ann","lastName":"Lee"},"attachments":[{"id":"a1","isPHI":true,"fileName":"xray.png","content":"aGVsbG8gd29ybGQ="}]}}}`)
	res := b.signed(t, config.KindCaseUpdates, "", body, nil)
	require.Equal(t, 200, res.status)
	id := res.json(t)["id"].(string)

	// Analyst: masked phone, redacted content, no raw body.
	res = b.read(t, analystKey, "/v1/events/"+id)
	require.Equal(t, 200, res.status, string(res.body))
	var analyst apiEvent
	require.NoError(t, json.Unmarshal(res.body, &analyst))
	require.Nil(t, analyst.RawBody)
	require.Equal(t, "+44*******123", analyst.Data["phone"])
	require.NotContains(t, string(res.body), "diagnosis")
	require.NotContains(t, string(res.body), "xray.png")
	require.NotContains(t, string(res.body), "pat@example.com")
	require.NotContains(t, string(res.body), "+447700900123")
	require.Contains(t, string(analyst.Payload), `"[redacted]"`)
	require.Equal(t, "hmac", analyst.Credential, "the credential's kind, not its fingerprint")

	// Auditor: everything, including the raw body byte for byte and the blob.
	res = b.read(t, auditorKey, "/v1/events/"+id)
	require.Equal(t, 200, res.status)
	var auditor apiEvent
	require.NoError(t, json.Unmarshal(res.body, &auditor))
	require.Equal(t, "+447700900123", auditor.Data["phone"])
	require.NotNil(t, auditor.RawBody)
	raw, err := base64.StdEncoding.DecodeString(*auditor.RawBody)
	require.NoError(t, err)
	require.Equal(t, body, raw)
	require.Equal(t, "hmac:"+config.Fingerprint(cuSecret), auditor.Credential)
	require.Contains(t, string(auditor.Payload), "diagnosis: flu")
	var doc commentDoc
	require.NoError(t, json.Unmarshal(auditor.Payload, &doc))
	sha := doc.Payload.Comment.Attachments[0].Content.SHA256
	require.Len(t, sha, 64)
	res = b.read(t, auditorKey, "/v1/blobs/"+sha)
	require.Equal(t, 200, res.status)
	require.Equal(t, "hello world", string(res.body))
	require.Equal(t, 403, b.read(t, analystKey, "/v1/blobs/"+sha).status)
	require.Equal(t, 404, b.read(t, auditorKey, "/v1/blobs/"+strings.Repeat("0", 64)).status)

	// Timelines redact too.
	l := b.list(t, analystKey, "/v1/cases/case-phi/timeline")
	require.Len(t, l.Data, 1)
	require.Equal(t, "+44*******123", l.Data[0].Data["phone"])

	// Credentials and roles.
	require.Equal(t, 401, b.read(t, "", "/v1/cases/case-phi/timeline").status)
	require.Equal(t, 401, b.read(t, "not-a-key-at-all-000", "/v1/cases/case-phi/timeline").status)
	require.Equal(t, 401, b.read(t, shNewKey, "/v1/cases/case-phi/timeline").status, "ingest keys cannot read")
	require.Equal(t, 403, b.read(t, analystKey, "/v1/access-log").status)
	require.Equal(t, 403, b.read(t, auditorKey, "/v1/access-log").status)
	require.Equal(t, 404, b.read(t, analystKey, "/v1/events/999999").status)
	require.Equal(t, 404, b.read(t, analystKey, "/v1/events/abc").status)
}

func TestAuditorAccessLog(t *testing.T) {
	t.Parallel()
	b := withReadKeys(t)
	f := populate(t, b)

	type accessLog struct {
		Data []struct {
			KeyName  string         `json:"keyName"`
			Route    string         `json:"route"`
			Path     string         `json:"path"`
			Params   map[string]any `json:"params"`
			EventIDs []string       `json:"eventIds"`
		} `json:"data"`
	}
	logRows := func() accessLog {
		res := b.read(t, adminKey, "/v1/access-log?limit=500")
		require.Equal(t, 200, res.status, string(res.body))
		var l accessLog
		require.NoError(t, json.Unmarshal(res.body, &l))
		return l
	}
	require.Empty(t, logRows().Data)

	// Analyst and admin reads are not logged.
	b.list(t, analystKey, "/v1/cases/case-1/timeline")
	require.Empty(t, logRows().Data)

	page := b.list(t, auditorKey, "/v1/cases/case-1/timeline?limit=10&types=ORDER_*")
	rows := logRows().Data
	require.Len(t, rows, 1)
	require.Equal(t, "bob", rows[0].KeyName)
	require.Equal(t, "/v1/cases/:caseId/timeline", rows[0].Route)
	require.Equal(t, "case-1", rows[0].Params["caseId"])
	require.Equal(t, ids(page.Data), rows[0].EventIDs)

	id := f.caseEvents["case-2"][0]
	b.read(t, auditorKey, "/v1/events/"+id)
	rows = logRows().Data
	require.Len(t, rows, 2)
	require.Equal(t, []string{id}, rows[1].EventIDs)

	feed := b.list(t, auditorKey, "/v1/events?limit=5")
	rows = logRows().Data
	require.Len(t, rows, 3)
	require.Equal(t, ids(feed.Data), rows[2].EventIDs)

	// Admins read the log redacted: which contact an auditor looked up is
	// masked as analysts would see it.
	contact := b.list(t, auditorKey, "/v1/contacts/+14155550003/timeline")
	require.NotEmpty(t, contact.Data)
	res := b.read(t, adminKey, "/v1/access-log?limit=500")
	require.Equal(t, 200, res.status)
	require.NotContains(t, string(res.body), "4155550003")
	rows = logRows().Data
	require.Len(t, rows, 4)
	require.Equal(t, "/v1/contacts/:contact/timeline", rows[3].Route)
	require.Equal(t, redact.Phone("+14155550003"), rows[3].Params["contact"])
	require.Equal(t, "/v1/contacts/"+redact.Phone("+14155550003")+"/timeline", rows[3].Path)
	require.Equal(t, ids(contact.Data), rows[3].EventIDs)
	// Ids and the API's own filters stay as sent; a parameter the API does
	// not define is masked.
	require.Equal(t, 404, b.read(t, auditorKey, "/v1/events/12345678").status)
	b.list(t, auditorKey, "/v1/events?limit=2&note=call+%2B14155550003")
	rows = logRows().Data
	require.Len(t, rows, 6)
	require.Equal(t, "/v1/events/12345678", rows[4].Path)
	require.Equal(t, "12345678", rows[4].Params["id"])
	require.Equal(t, []any{"2"}, rows[5].Params["limit"])
	require.Equal(t, []any{redact.Text("call +14155550003")}, rows[5].Params["note"])
	require.NotContains(t, fmt.Sprint(rows[5].Params["note"]), "4155550003")

	// The access log is append-only like everything else.
	conn, err := pgx.Connect(context.Background(), b.db.URL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(context.Background(), "DELETE FROM access_log")
	require.Error(t, err)
}

// Every request of an auditor is in the access log: refusals, reports and
// the log's routes too, not only answers that carry events.
func TestAuditorAccessLogRecordsEveryRequest(t *testing.T) {
	t.Parallel()
	b := withReadKeys(t)
	requests := []struct {
		path   string
		status int
		route  string
	}{
		{"/v1/events/99999999", http.StatusNotFound, "/v1/events/:id"},
		{"/v1/reports/abandonment?from=2024-05-01T00:00:00Z&to=2024-05-02T00:00:00Z", http.StatusOK, "/v1/reports/abandonment"},
		{"/v1/reports/abandonment", http.StatusBadRequest, "/v1/reports/abandonment"},
		{"/v1/log/key", http.StatusOK, "/v1/log/key"},
		{"/v1/log/proof/consistency?from=5&to=2", http.StatusBadRequest, "/v1/log/proof/consistency"},
		{"/v1/access-log", http.StatusForbidden, "/v1/access-log"},
		{"/v1/cases/%ff/timeline", http.StatusBadRequest, "/v1/cases/:caseId/timeline"},
		{"/v1/events?types=a%00", http.StatusBadRequest, "/v1/events"},
	}
	for _, r := range requests {
		res := b.read(t, auditorKey, r.path)
		require.Equal(t, r.status, res.status, "%s: %s", r.path, res.body)
	}

	res := b.read(t, adminKey, "/v1/access-log?limit=500")
	require.Equal(t, 200, res.status, string(res.body))
	var l struct {
		Data []struct {
			KeyName string `json:"keyName"`
			Route   string `json:"route"`
			Status  int    `json:"status"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(res.body, &l))
	require.Len(t, l.Data, len(requests))
	for i, r := range requests {
		require.Equal(t, "bob", l.Data[i].KeyName)
		require.Equal(t, r.route, l.Data[i].Route, r.path)
		require.Equal(t, r.status, l.Data[i].Status, r.path)
	}
}

// Path and query values that are not text get 400, not a database error.
func TestReadRefusesNonTextParameters(t *testing.T) {
	t.Parallel()
	b := withReadKeys(t)
	for _, path := range []string{
		"/v1/cases/%00/timeline",
		"/v1/cases/%ff/timeline",
		"/v1/contacts/%ff/timeline",
		"/v1/cases/c-1/timeline?types=a%00",
		"/v1/events?types=%ff",
		"/v1/events?source=%00",
		"/v1/reports/abandonment?from=2024-05-01T00:00:00Z&to=2024-05-02T00:00:00Z&queue=%ff",
		"/v1/reports/abandonment/contacts?from=2024-05-01T00:00:00Z&to=2024-05-02T00:00:00Z&queue=%00",
		"/v1/events?%ff=1",
		"/v1/events/1?x=%00",
		"/v1/log/key?x=%ff",
		"/v1/log/checkpoint?x=%ff",
	} {
		res := b.read(t, analystKey, path)
		require.Equal(t, http.StatusBadRequest, res.status, "%s: %s", path, res.body)
		require.Equal(t, "urn:casetrail:problem:invalid_parameter", res.json(t)["type"], path)
		require.Contains(t, res.json(t)["detail"], "is not UTF-8 text", path)
	}
	for path, key := range map[string]string{"/v1/access-log?keyName=%ff": adminKey, "/v1/blobs/00?x=%ff": auditorKey} {
		res := b.read(t, key, path)
		require.Equal(t, http.StatusBadRequest, res.status, string(res.body))
		require.Contains(t, res.json(t)["detail"], "is not UTF-8 text")
	}
}

// A timeline path whose case or contact is empty (a client that left
// the id out) is refused, not answered as the empty timeline of nobody.
func TestTimelineOfAnEmptyIDIsRefused(t *testing.T) {
	t.Parallel()
	b := withReadKeys(t)
	for path, param := range map[string]string{
		"/v1/cases//timeline":            "caseId",
		"/v1/contacts//timeline":         "contact",
		"/v1/cases//timeline?order=desc": "caseId",
		"/v1/contacts//timeline?limit=5": "contact",
	} {
		res := b.read(t, analystKey, path)
		require.Equal(t, http.StatusBadRequest, res.status, "%s: %s", path, res.body)
		require.Equal(t, "application/problem+json", res.header.Get("Content-Type"), path)
		require.Equal(t, "urn:casetrail:problem:invalid_parameter", res.json(t)["type"], path)
		require.Contains(t, res.json(t)["detail"], param, path)
	}
}

// A query parameter that cannot be read (an unescaped '%', a ';') is
// refused rather than left out, which would drop its filter and list
// every event.
func TestReadRefusesMalformedQueries(t *testing.T) {
	t.Parallel()
	b := withReadKeys(t)
	for _, path := range []string{
		"/v1/cases/c-1/timeline?types=ORDER%",
		"/v1/contacts/+447700900001/timeline?types=outbound-call;order=desc",
		"/v1/events?source=case%zzupdates",
		"/v1/reports/abandonment?from=2024-05-01T00:00:00Z&to=2024-05-02T00:00:00Z&queue=Sales%",
		"/v1/reports/abandonment/contacts?from=2024-05-01T00:00:00Z&to=2024-05-02T00:00:00Z&status=short%",
	} {
		res := b.read(t, analystKey, path)
		require.Equal(t, http.StatusBadRequest, res.status, "%s: %s", path, res.body)
		require.Equal(t, "application/problem+json", res.header.Get("Content-Type"), path)
		require.Equal(t, "urn:casetrail:problem:invalid_parameter", res.json(t)["type"], path)
	}
	// Escaped, the same characters are read as sent.
	res := b.read(t, analystKey, "/v1/cases/c-1/timeline?types=ORDER%25")
	require.Equal(t, http.StatusOK, res.status, string(res.body))
}

// The feed hands out a cursor on its first page even when nothing is in
// it yet (an empty store, or a filter nothing matches so far), and that
// cursor finds what commits next.
func TestEmptyFeedHandsOutACursor(t *testing.T) {
	t.Parallel()
	b := withReadKeys(t)
	for _, c := range []struct{ path, event string }{
		{"/v1/events", "outbound-call"},
		{"/v1/events?types=workitem-closed", "workitem-closed"},
	} {
		path := c.path
		page := b.list(t, analystKey, path)
		require.Empty(t, page.Data, path)
		require.False(t, page.Page.HasMore, path)
		require.NotNil(t, page.Page.NextCursor, path)

		// Streamed, its last line carries the same cursor.
		req, err := http.NewRequest(http.MethodGet, b.url+path, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+analystKey)
		req.Header.Set("Accept", "application/x-ndjson")
		streamed, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		raw, err := io.ReadAll(streamed.Body)
		require.NoError(t, err)
		require.NoError(t, streamed.Body.Close())
		require.Equal(t, http.StatusOK, streamed.StatusCode, string(raw))
		var last struct{ Page timeline.Page }
		require.NoError(t, json.Unmarshal(raw, &last), string(raw))
		require.Equal(t, page.Page.NextCursor, last.Page.NextCursor, path)

		res := b.signed(t, config.KindServiceHooks, c.event, []byte(`{"agentID":"a-1","Timestamp":"2024-05-01T10:00:00Z"}`), nil)
		require.Equal(t, http.StatusOK, res.status, string(res.body))
		b.sequence(t)
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		next := b.list(t, analystKey, path+sep+"cursor="+url.QueryEscape(*page.Page.NextCursor))
		require.Equal(t, []string{res.json(t)["id"].(string)}, ids(next.Data), path)
	}
}

func TestFeedIsCommitSafe(t *testing.T) {
	t.Parallel()
	b := withReadKeys(t)
	ctx := context.Background()
	populate(t, b)

	// Read the whole feed, page by page: log order, gap-free.
	all := b.walk(t, analystKey, "/v1/events", url.Values{"limit": {"50"}})
	require.Equal(t, b.count(t, "events"), len(all))
	for i, e := range all {
		require.NotNil(t, e.LogIndex)
		require.EqualValues(t, i, *e.LogIndex)
	}
	cursor := lastCursor(t, b, all)

	// A writer takes an id and holds its transaction open...
	slow, err := pgx.Connect(ctx, b.db.URL)
	require.NoError(t, err)
	defer slow.Close(ctx)
	tx, err := slow.Begin(ctx)
	require.NoError(t, err)
	var slowID int64
	require.NoError(t, tx.QueryRow(ctx, `
		INSERT INTO events (received_at, occurred_at, source, kind, type, credential, idempotency_key, body, body_sha256)
		VALUES (now(), now(), 'service-hooks', 'service-hooks', 'outbound-call', 'test', 'slow', '\x7b7d', '\x00')
		RETURNING id`).Scan(&slowID))

	// ...while a later id commits first and the sequencer runs.
	res := b.signed(t, config.KindServiceHooks, "outbound-call", []byte(`{"agentID":"fast"}`), nil)
	require.Equal(t, 200, res.status)
	fastID := res.json(t)["id"].(string)
	require.True(t, idLess(fmt.Sprint(slowID), fastID))
	b.sequenceOnce(t)

	// A reader following the cursor is not handed the later id yet: it
	// would then skip the earlier one.
	page := b.list(t, analystKey, "/v1/events?cursor="+url.QueryEscape(cursor))
	require.Empty(t, page.Data, "nothing is sequenced past a transaction still in flight")
	require.NotNil(t, page.Page.NextCursor, "the feed hands back a cursor to poll with")
	cursor = *page.Page.NextCursor

	require.NoError(t, tx.Commit(ctx))
	b.sequence(t)

	// Once the slow one commits, the reader gets both, each once, in commit
	// order.
	page = b.list(t, analystKey, "/v1/events?cursor="+url.QueryEscape(cursor))
	require.Equal(t, []string{fmt.Sprint(slowID), fastID}, ids(page.Data))
}

// lastCursor returns the feed cursor after the given (complete) walk.
func lastCursor(t *testing.T, b *testBundle, all []apiEvent) string {
	t.Helper()
	q := url.Values{"limit": {fmt.Sprint(len(all))}}
	l := b.list(t, analystKey, "/v1/events?"+q.Encode())
	require.Equal(t, ids(all), ids(l.Data))
	require.NotNil(t, l.Page.NextCursor)
	return *l.Page.NextCursor
}

func TestFeedStreamsNDJSON(t *testing.T) {
	t.Parallel()
	b := withReadKeys(t)
	populate(t, b)
	want := b.walk(t, analystKey, "/v1/events", url.Values{"limit": {"500"}})
	var wantHooks []string
	for _, e := range want {
		if e.Kind == "service-hooks" {
			wantHooks = append(wantHooks, e.ID)
		}
	}

	// stream reads the feed as NDJSON: the events' ids, and the last line.
	stream := func(query string) (ids []string, page *timeline.Page) {
		req, _ := http.NewRequest(http.MethodGet, b.url+"/v1/events?"+query, nil)
		req.Header.Set("Authorization", "Bearer "+analystKey)
		req.Header.Set("Accept", "application/x-ndjson")
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		require.Equal(t, 200, res.StatusCode)
		require.Equal(t, "application/x-ndjson", res.Header.Get("Content-Type"))
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var line struct {
				ID     string         `json:"id"`
				Source string         `json:"source"`
				Page   *timeline.Page `json:"page"`
				Error  any            `json:"error"`
			}
			require.NoError(t, json.Unmarshal(sc.Bytes(), &line))
			require.Nil(t, line.Error)
			if line.Page != nil {
				page = line.Page
				continue
			}
			require.Equal(t, "service-hooks", line.Source)
			ids = append(ids, line.ID)
		}
		return ids, page
	}
	got, page := stream("source=service-hooks")
	require.Equal(t, wantHooks, got)
	require.NotNil(t, page, "the stream ends with the cursor to resume from")
	require.False(t, page.HasMore)

	// With a limit, the last line says whether there is more, and its
	// cursor resumes exactly there.
	first, page := stream("source=service-hooks&limit=3")
	require.Equal(t, wantHooks[:3], first)
	require.True(t, page.HasMore)
	require.NotNil(t, page.NextCursor)
	rest, page := stream("source=service-hooks&cursor=" + url.QueryEscape(*page.NextCursor))
	require.Equal(t, wantHooks[3:], rest)
	require.False(t, page.HasMore)
	all, page := stream("source=service-hooks&limit=" + strconv.Itoa(len(wantHooks)))
	require.Equal(t, wantHooks, all)
	require.False(t, page.HasMore, "the limit was exactly what there was")

	// Nothing to send still ends with the last line: an export that found
	// nothing does not look like a cut connection.
	none, page := stream("types=NO_SUCH_TYPE")
	require.Empty(t, none)
	require.NotNil(t, page, "an empty stream ends with its last line too")
	require.False(t, page.HasMore)
}

// An export of the whole feed may take longer than the server's write
// timeout, which bounds ordinary answers: each chunk of a stream gets a
// deadline of its own, so the stream is whole, to its last line.
func TestFeedStreamOutlastsWriteTimeout(t *testing.T) {
	t.Parallel()
	b := withReadKeys(t)
	populate(t, b)
	b.sequence(t)
	// The same server behind a write timeout that has passed by the time
	// any answer is written.
	srv := httptest.NewUnstartedServer(b.h)
	srv.Config.WriteTimeout = time.Nanosecond
	srv.Start()
	t.Cleanup(srv.Close)
	get := func(path string, header ...string) (*http.Response, error) {
		req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+analystKey)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		return http.DefaultClient.Do(req)
	}
	_, err := get("/v1/events?limit=5")
	require.Error(t, err, "an ordinary answer is cut by the timeout")

	r, err := get("/v1/events?limit=5", "Accept", "application/x-ndjson")
	require.NoError(t, err)
	defer r.Body.Close()
	require.Equal(t, 200, r.StatusCode)
	body, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	require.Len(t, lines, 6, "five events and the last line")
	require.Contains(t, lines[5], `"nextCursor"`)
}

// An expunged event reads as such: its ids and times stay, its content is
// gone for every role, the record says when and why (masked for analysts),
// its attachment is gone, and a retry of its delivery is its duplicate.
func TestExpungedEventReads(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := withReadKeys(t)
	body := []byte(`{"event":"ADD_CASE_COMMENT","payload":{"caseId":"case-erase","contactPhoneNumber":"+447700900123","comment":{"id":"c1","text":"diagnosis: flu","createdAt":"2024-01-01T00:00:00Z","author":{"firstName":"Ann","lastName":"Lee"},"attachments":[{"id":"a1","fileName":"xray.png","content":"aGVsbG8gd29ybGQ="}]}}}`)
	res := b.signed(t, config.KindCaseUpdates, "", body, nil)
	require.Equal(t, 200, res.status)
	id := res.json(t)["id"].(string)
	eventID, err := strconv.ParseInt(id, 10, 64)
	require.NoError(t, err)
	b.sequence(t)
	var before apiEvent
	require.NoError(t, json.Unmarshal(b.read(t, auditorKey, "/v1/events/"+id).body, &before))
	require.Nil(t, before.Expunged)
	require.NotEmpty(t, before.Summary)
	sum := sha256.Sum256(body)
	require.Equal(t, "sha256:ADD_CASE_COMMENT:"+hex.EncodeToString(sum[:]), before.IdempotencyKey)

	owner, err := store.Open(ctx, b.db.URL, store.Options{Owner: true})
	require.NoError(t, err)
	defer owner.Close()
	_, err = ledger.Expunge(ctx, owner, b.cp.Keys, []int64{eventID}, "erasure request of +447700900123")
	require.NoError(t, err)

	for _, key := range []string{analystKey, auditorKey} {
		res := b.read(t, key, "/v1/events/"+id)
		require.Equal(t, 200, res.status, string(res.body))
		var e apiEvent
		require.NoError(t, json.Unmarshal(res.body, &e))
		require.NotNil(t, e.Expunged, key)
		require.Equal(t, "case-erase", *e.CaseID)
		require.Equal(t, before.OccurredAt, e.OccurredAt)
		require.Equal(t, before.LogIndex, e.LogIndex)
		require.Empty(t, e.Summary)
		require.Equal(t, "null", string(e.Payload))
		require.NotContains(t, string(res.body), "diagnosis")
		require.NotContains(t, string(res.body), "Ann")
		require.Equal(t, "sha256:ADD_CASE_COMMENT:redacted", e.IdempotencyKey, "the erased body's hash")
		require.Nil(t, e.BodySHA256)
		if key == auditorKey {
			require.Equal(t, "erasure request of +447700900123", e.Expunged.Reason)
			require.Equal(t, "", *e.RawBody)
		} else {
			require.Equal(t, redact.Text("erasure request of +447700900123"), e.Expunged.Reason)
			require.NotContains(t, e.Expunged.Reason, "+447700900123")
		}
	}
	var doc commentDoc
	require.NoError(t, json.Unmarshal(before.Payload, &doc))
	require.Equal(t, 404, b.read(t, auditorKey, "/v1/blobs/"+doc.Payload.Comment.Attachments[0].Content.SHA256).status)
	// Timelines and the feed still list it, marked.
	l := b.list(t, analystKey, "/v1/cases/case-erase/timeline")
	require.Equal(t, []string{id}, ids(l.Data))
	require.NotNil(t, l.Data[0].Expunged)
	require.Equal(t, redact.Text("erasure request of +447700900123"), l.Data[0].Expunged.Reason)
	l = b.list(t, auditorKey, "/v1/events?types=ADD_CASE_COMMENT")
	require.Equal(t, []string{id}, ids(l.Data))
	require.Equal(t, "erasure request of +447700900123", l.Data[0].Expunged.Reason)
	require.Equal(t, "sha256:ADD_CASE_COMMENT:redacted", l.Data[0].IdempotencyKey)

	res = b.signed(t, config.KindCaseUpdates, "", body, nil)
	require.Equal(t, 200, res.status, string(res.body))
	require.Equal(t, id, res.json(t)["id"])
	require.Equal(t, true, res.json(t)["duplicate"])
}

// A time that lies past 9999 once in UTC (.NET's largest DateTime, written
// with a local offset) is no event time: the event is dated by its receipt
// and every answer that holds it can be written. Should such a value reach
// an answer all the same, the answer is a 500 problem, not an empty 200.
func TestTimesPastTheYear9999(t *testing.T) {
	t.Parallel()
	b := withReadKeys(t)
	body := []byte(`{"agentID":"a-1","targetPhoneNumber":"+14155550100","Timestamp":"9999-12-31T23:59:59.9999999-05:00"}`)
	res := b.signed(t, config.KindServiceHooks, "outbound-call", body, nil)
	require.Equal(t, http.StatusOK, res.status, string(res.body))
	id := res.json(t)["id"].(string)
	b.sequence(t)

	got := b.read(t, analystKey, "/v1/events/"+id)
	require.Equal(t, http.StatusOK, got.status, string(got.body))
	var ev struct {
		OccurredAt time.Time `json:"occurredAt"`
		ReceivedAt time.Time `json:"receivedAt"`
	}
	require.NoError(t, json.Unmarshal(got.body, &ev), string(got.body))
	require.Equal(t, ev.ReceivedAt, ev.OccurredAt)
	require.Len(t, b.list(t, analystKey, "/v1/contacts/+14155550100/timeline").Data, 1)
	require.Len(t, b.list(t, auditorKey, "/v1/events").Data, 1)

	conn, err := pgx.Connect(context.Background(), b.db.URL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(context.Background(), "SET session_replication_role = replica")
	require.NoError(t, err)
	_, err = conn.Exec(context.Background(), "UPDATE events SET occurred_at = '10000-01-01T04:59:59Z' WHERE id = $1::bigint", id)
	require.NoError(t, err)
	// Read without the contract check: the contract lists no 500.
	got = b.readChecked(t, analystKey, "/v1/events/"+id, false)
	require.Equal(t, http.StatusInternalServerError, got.status, string(got.body))
	require.Equal(t, "application/problem+json", got.header.Get("Content-Type"))
	require.Contains(t, string(got.body), `"status":500`)
}

// An id may hold "/" (case 2024/0001, sent as 2024%2F0001), and a sender's
// URL may end in "/": both reach their handler, and nothing is redirected.
func TestSlashesInPaths(t *testing.T) {
	t.Parallel()
	b := withReadKeys(t)
	body := []byte(`{"event":"CHANGE_CASE_STATUS","caseId":"2024/0001","changeDate":"2024-05-01T10:00:00Z","status":"OPEN"}`)
	path, h := signedDelivery(config.KindCaseUpdates, "", body)
	res := b.post(t, path+"/", body, h)
	require.Equal(t, http.StatusOK, res.status, string(res.body))
	id := res.json(t)["id"].(string)
	hookBody := []byte(`{"agentID":"a-1","targetPhoneNumber":"+14155550100","Timestamp":"2024-05-01T10:00:00Z"}`)
	path, h = signedDelivery(config.KindServiceHooks, "outbound-call", hookBody)
	res = b.post(t, path+"/", hookBody, h)
	require.Equal(t, http.StatusOK, res.status, string(res.body))
	require.Equal(t, 2, b.count(t, "events"))

	got := b.list(t, analystKey, "/v1/cases/2024%2F0001/timeline")
	require.Equal(t, []string{id}, ids(got.Data))
	require.Equal(t, "2024/0001", *got.Data[0].CaseID)
	require.Len(t, b.list(t, analystKey, "/v1/cases/2024%2F0001/timeline/").Data, 1)

	// A "+" sent as itself beside an escaped "/" stays a "+".
	body = []byte(`{"event":"CHANGE_CASE_STATUS","caseId":"A+B/1","changeDate":"2024-05-01T10:00:00Z","status":"OPEN"}`)
	res = b.signed(t, config.KindCaseUpdates, "", body, nil)
	require.Equal(t, http.StatusOK, res.status, string(res.body))
	got = b.list(t, analystKey, "/v1/cases/A+B%2F1/timeline")
	require.Equal(t, []string{res.json(t)["id"].(string)}, ids(got.Data))
}

// A case that names its conversation finds the contact center's events of
// that conversation, also one from a web chat with no phone number.
func TestCaseTimelineCorrelatesByConversation(t *testing.T) {
	t.Parallel()
	b := withReadKeys(t)
	post := func(kind, event, body string) string {
		res := b.signed(t, kind, event, []byte(body), nil)
		require.Equal(t, http.StatusOK, res.status, string(res.body))
		return res.json(t)["id"].(string)
	}
	created := post(config.KindCaseUpdates, "", `{"event":"CREATE_CASE","payload":{"id":"case-c","caseNumber":"C-1","status":"OPEN","conversationId":"conv-1","createdAt":"2024-05-01T10:05:00Z"}}`)
	chat := post(config.KindServiceHooks, "workitem-closed", `{"workItemId":"w-1","primaryConversationId":"conv-1","customerIdentifier":"pat@example.com","Timestamp":"2024-05-01T10:20:00Z"}`)
	post(config.KindServiceHooks, "workitem-closed", `{"workItemId":"w-2","primaryConversationId":"conv-2","Timestamp":"2024-05-01T10:30:00Z"}`)
	action := post(config.KindServiceActions, "after-resolve", `{"caseId":"case-x","conversationId":"conv-1","timestamp":"2024-05-01T10:40:00Z"}`)
	b.sequence(t)

	// Only the contact center's events are correlated; another case's
	// hook is not this case's, whatever conversation it names.
	got := b.list(t, analystKey, "/v1/cases/case-c/timeline").Data
	require.Equal(t, []string{created, chat}, ids(got))
	require.Equal(t, "caseId", got[0].Correlation.MatchedBy)
	require.Equal(t, "conversationId", got[1].Correlation.MatchedBy)
	require.Equal(t, "conv-1", *b.row(t, action).ConversationID)
}

// Refused requests are kept (rejected_requests) and read back over the API:
// admins and auditors list them, in the order they were kept and by
// source; only auditors get a body, and the access log records that.
func TestRejectedRequests(t *testing.T) {
	t.Parallel()
	b := withReadKeys(t)
	notJSON := []byte(`{"event": "ADD_CASE_COMMENT", "caseId": "c-9", "phone": "+447700900123"`)
	require.Equal(t, 400, b.signed(t, config.KindCaseUpdates, "", notJSON, nil).status)
	hook := []byte(`{"agentID":"a1","targetPhoneNumber":"+14155550100"}`)
	require.Equal(t, 404, b.signed(t, config.KindServiceHooks, "+14155550199", hook, nil).status)
	key := map[string]string{"Idempotency-Key": "delivery-9"}
	require.Equal(t, 200, b.signed(t, config.KindServiceHooks, "outbound-call", hook, key).status)
	other := []byte(`{"agentID":"a2","targetPhoneNumber":"+14155550100"}`)
	require.Equal(t, 409, b.signed(t, config.KindServiceHooks, "outbound-call", other, key).status)

	type rejected struct {
		ID            string  `json:"id"`
		Source        string  `json:"source"`
		EventType     string  `json:"eventType"`
		Status        int     `json:"status"`
		Cause         string  `json:"cause"`
		Detail        string  `json:"detail"`
		Credential    string  `json:"credential"`
		BodySize      int64   `json:"bodySize"`
		BodySHA256    string  `json:"bodySha256"`
		RawBody       *string `json:"rawBody"`
		BodyTruncated bool    `json:"bodyTruncated"`
	}
	type page struct {
		Data []rejected `json:"data"`
		Page struct {
			NextCursor *string `json:"nextCursor"`
			HasMore    bool    `json:"hasMore"`
		} `json:"page"`
	}
	walk := func(key, query string) []rejected {
		var all []rejected
		cursor := ""
		for {
			path := "/v1/rejected?limit=1" + query
			if cursor != "" {
				path += "&cursor=" + cursor
			}
			res := b.read(t, key, path)
			require.Equal(t, 200, res.status, string(res.body))
			var p page
			require.NoError(t, json.Unmarshal(res.body, &p))
			all = append(all, p.Data...)
			if !p.Page.HasMore {
				return all
			}
			cursor = *p.Page.NextCursor
		}
	}

	all := walk(adminKey, "")
	require.Len(t, all, 3)
	require.Equal(t, []int{400, 404, 409}, []int{all[0].Status, all[1].Status, all[2].Status})
	require.Equal(t, config.KindCaseUpdates, all[0].Source)
	require.Equal(t, redact.Phone("+14155550199"), all[1].EventType, "a path segment is masked as any text is")
	require.Equal(t, int64(len(other)), all[2].BodySize)
	require.NotContains(t, all[1].Detail, "+14155550199")
	for _, r := range walk(auditorKey, "") {
		if r.ID == all[1].ID {
			require.Equal(t, "+14155550199", r.EventType, "auditors see it as sent")
			require.Contains(t, r.Detail, "+14155550199")
		}
	}
	for _, r := range all {
		require.Nil(t, r.RawBody, "no body in a listing")
		require.NotContains(t, r.Credential, ":", "an admin sees the credential's kind only")
		require.NotEmpty(t, r.Cause)
	}
	hooks := walk(adminKey, "&source="+config.KindServiceHooks)
	require.Equal(t, []string{all[1].ID, all[2].ID}, []string{hooks[0].ID, hooks[1].ID})
	require.Len(t, hooks, 2)
	require.Len(t, walk(auditorKey, ""), 3)

	// One request: its body for auditors, as kept, and recorded.
	res := b.read(t, auditorKey, "/v1/rejected/"+all[0].ID)
	require.Equal(t, 200, res.status, string(res.body))
	var one rejected
	require.NoError(t, json.Unmarshal(res.body, &one))
	require.NotNil(t, one.RawBody)
	raw, err := base64.StdEncoding.DecodeString(*one.RawBody)
	require.NoError(t, err)
	require.Equal(t, notJSON, raw)
	sum := sha256.Sum256(notJSON)
	require.Equal(t, hex.EncodeToString(sum[:]), one.BodySHA256)
	require.Equal(t, "hmac:"+config.Fingerprint(cuSecret), one.Credential)
	conn, err := pgx.Connect(context.Background(), b.db.URL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var recorded int
	require.NoError(t, conn.QueryRow(context.Background(),
		`SELECT count(*) FROM access_log WHERE key_name = 'bob' AND route = '/v1/rejected/:id'`).Scan(&recorded))
	require.Equal(t, 1, recorded)
	res = b.read(t, adminKey, "/v1/rejected/"+all[0].ID)
	require.Equal(t, 200, res.status, string(res.body))
	require.NotContains(t, string(res.body), "rawBody")
	require.NotContains(t, string(res.body), "+447700900123")

	require.Equal(t, 403, b.read(t, analystKey, "/v1/rejected").status)
	require.Equal(t, 403, b.read(t, analystKey, "/v1/rejected/"+all[0].ID).status)
	require.Equal(t, 404, b.read(t, adminKey, "/v1/rejected/999999").status)
	require.Equal(t, 404, b.read(t, adminKey, "/v1/rejected/abc").status)
	require.Equal(t, 400, b.read(t, adminKey, "/v1/rejected?cursor=abc").status)
	require.Equal(t, 400, b.read(t, adminKey, "/v1/rejected?cursor=-1").status)

	// Once its body is erased (casetrail expunge --rejected), a request says
	// so and auditors get no body, only the erased body's SHA-256.
	owner, err := store.Open(context.Background(), b.db.URL, store.Options{Owner: true})
	require.NoError(t, err)
	defer owner.Close()
	erased, err := strconv.ParseInt(all[0].ID, 10, 64)
	require.NoError(t, err)
	_, err = owner.ExpungeRejected(context.Background(), []int64{erased}, "erasure request 3")
	require.NoError(t, err)
	res = b.read(t, auditorKey, "/v1/rejected/"+all[0].ID)
	require.Equal(t, 200, res.status, string(res.body))
	var gone struct {
		rejected
		Expunged *struct {
			At     time.Time `json:"at"`
			Reason string    `json:"reason"`
		} `json:"expunged"`
	}
	require.NoError(t, json.Unmarshal(res.body, &gone))
	require.Nil(t, gone.RawBody)
	require.Equal(t, hex.EncodeToString(sum[:]), gone.BodySHA256)
	require.NotNil(t, gone.Expunged)
	require.Equal(t, "erasure request 3", gone.Expunged.Reason)
	require.Empty(t, gone.Detail)
}

// A types filter matches an event type whatever the case either is written
// in: a sender's mixed-case type (Order_Created) is found by the filter
// an analyst writes (ORDER_CREATED, order_created, order_*), in a case's
// timeline and in the feed alike, and still nothing else.
func TestTypesFilterMatchesAnyCase(t *testing.T) {
	t.Parallel()
	b := withReadKeys(t)
	for _, ev := range []string{"Order_Created", "PAYMENT_ADDED", "Add_Case_Comment"} {
		body := fmt.Appendf(nil, `{"event":%q,"payload":{"caseId":"c-case","changeDate":"2024-05-01T10:00:00Z"}}`, ev)
		res := b.signed(t, config.KindCaseUpdates, "", body, nil)
		require.Equal(t, 200, res.status, string(res.body))
	}
	b.sequence(t) // the feed lists events in log order
	types := func(path string, filter string) []string {
		var out []string
		for _, e := range b.walk(t, auditorKey, path, url.Values{"types": {filter}, "limit": {"1"}}) {
			out = append(out, e.Type)
		}
		slices.Sort(out)
		return out
	}
	for filter, want := range map[string][]string{
		"ORDER_CREATED":                {"Order_Created"},
		"order_created":                {"Order_Created"},
		"order_*":                      {"Order_Created"},
		"payment_added,ADD_CASE_COMM*": {"Add_Case_Comment", "PAYMENT_ADDED"},
		"ORDER_CREATEDX":               nil,
		"orderxcreated":                nil,
	} {
		require.Equal(t, want, types("/v1/cases/c-case/timeline", filter), "timeline, types=%s", filter)
		require.Equal(t, want, types("/v1/events", filter), "feed, types=%s", filter)
	}
}

// An auditor's download of an attachment is recorded with every event whose
// document refers to it, and only those; a repeat delivery adds none. An
// attachment removed by an expunge is still recorded with its event when
// asked for (404), and one never stored with none.
func TestBlobDownloadRecordsReferringEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := withReadKeys(t)
	comment := func(id, content string) []byte {
		return []byte(`{"event":"ADD_CASE_COMMENT","payload":{"caseId":"case-att","comment":{"id":"` + id + `","text":"see attached","createdAt":"2024-01-01T00:00:00Z","attachments":[{"id":"a-` + id + `","fileName":"x.png","content":"` + content + `"}]}}}`)
	}
	deliver := func(body []byte) (string, string) {
		res := b.signed(t, config.KindCaseUpdates, "", body, nil)
		require.Equal(t, 200, res.status, string(res.body))
		id := res.json(t)["id"].(string)
		var e apiEvent
		require.NoError(t, json.Unmarshal(b.read(t, auditorKey, "/v1/events/"+id).body, &e))
		var doc commentDoc
		require.NoError(t, json.Unmarshal(e.Payload, &doc))
		return id, doc.Payload.Comment.Attachments[0].Content.SHA256
	}
	shared1, shared := deliver(comment("c1", "aGVsbG8gd29ybGQ=")) // "hello world"
	shared2, sharedToo := deliver(comment("c2", "aGVsbG8gd29ybGQ="))
	require.Equal(t, shared, sharedToo)
	other1, other := deliver(comment("c3", "Z29vZGJ5ZQ==")) // "goodbye"
	require.NotEqual(t, shared, other)

	// A repeat of a delivery stores no reference again.
	res := b.signed(t, config.KindCaseUpdates, "", comment("c1", "aGVsbG8gd29ybGQ="), nil)
	require.Equal(t, 200, res.status)
	require.Equal(t, true, res.json(t)["duplicate"])
	require.Equal(t, 3, b.count(t, "event_attachments"))

	require.Equal(t, "hello world", string(b.read(t, auditorKey, "/v1/blobs/"+shared).body))
	require.Equal(t, "goodbye", string(b.read(t, auditorKey, "/v1/blobs/"+other).body))
	unknown := strings.Repeat("ab", 32)
	require.Equal(t, 404, b.read(t, auditorKey, "/v1/blobs/"+unknown).status)

	owner, err := store.Open(ctx, b.db.URL, store.Options{Owner: true})
	require.NoError(t, err)
	defer owner.Close()
	b.sequence(t)
	otherID, err := strconv.ParseInt(other1, 10, 64)
	require.NoError(t, err)
	_, err = ledger.Expunge(ctx, owner, b.cp.Keys, []int64{otherID}, "erasure request")
	require.NoError(t, err)
	require.Equal(t, 404, b.read(t, auditorKey, "/v1/blobs/"+other).status)

	type entry struct {
		Path     string   `json:"path"`
		Status   int      `json:"status"`
		EventIDs []string `json:"eventIds"`
	}
	var l struct {
		Data []entry `json:"data"`
	}
	res = b.read(t, adminKey, "/v1/access-log?limit=500")
	require.Equal(t, 200, res.status, string(res.body))
	require.NoError(t, json.Unmarshal(res.body, &l))
	var blobs []entry
	for _, e := range l.Data {
		if strings.HasPrefix(e.Path, "/v1/blobs/") {
			blobs = append(blobs, e)
		}
	}
	require.Equal(t, []entry{
		{"/v1/blobs/" + shared, 200, []string{shared1, shared2}},
		{"/v1/blobs/" + other, 200, []string{other1}},
		{"/v1/blobs/" + unknown, 404, []string{}},
		{"/v1/blobs/" + other, 404, []string{other1}},
	}, blobs)
}
