package httpapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/casetrail/casetrail/internal/config"
	"github.com/casetrail/casetrail/internal/httpapi"
	"github.com/casetrail/casetrail/internal/normalize"
	"github.com/casetrail/casetrail/internal/store"
)

// Every name the normaliser takes a phone number from is masked in the
// payload analysts and admins read, however the sender spells it.
func TestPhoneAliasesAreMaskedInPayloads(t *testing.T) {
	t.Parallel()
	b := withReadKeys(t)
	keys := append(normalize.PhoneKeys(),
		"Customer Phone number", "callerNumber", "targetNumber", "Caller ID",
		"caller_id", "MSISDN", "dialed-number", "Destination Number", "To", "FROM")
	for _, key := range keys {
		normalised := false
		for _, event := range []string{"abandoned-conversation", "outbound-call"} {
			body := fmt.Sprintf(`{%q:"+447700900123","timestamp":"2024-05-14T09:41:07Z","agentId":"a-1"}`, key)
			res := b.signed(t, config.KindServiceHooks, event, []byte(body), nil)
			require.Equal(t, 200, res.status, string(res.body))
			id := res.json(t)["id"].(string)

			for _, role := range []string{analystKey, adminKey} {
				res = b.read(t, role, "/v1/events/"+id)
				require.Equal(t, 200, res.status, string(res.body))
				require.NotContains(t, string(res.body), "7700900123", "%s %s", event, body)
				var ev apiEvent
				require.NoError(t, json.Unmarshal(res.body, &ev))
				require.Contains(t, string(ev.Payload), `"+44*******123"`, "%s %s", event, body)
			}

			res = b.read(t, auditorKey, "/v1/events/"+id)
			var ev apiEvent
			require.NoError(t, json.Unmarshal(res.body, &ev))
			require.Contains(t, string(ev.Payload), `"+447700900123"`)
			if ev.Data["phone"] == "+447700900123" {
				normalised = true
			}
		}
		require.True(t, normalised, "%q is not a phone alias of either event", key)
	}

	// The report of the defect: an outbound call naming both ends.
	body := `{"agentId":"a-1","callerNumber":"+447700900999","targetNumber":"+447700900123","timestamp":"2024-05-14T10:00:00Z"}`
	res := b.signed(t, config.KindServiceHooks, "outbound-call", []byte(body), nil)
	require.Equal(t, 200, res.status)
	res = b.read(t, analystKey, "/v1/events/"+res.json(t)["id"].(string))
	require.NotContains(t, string(res.body), "7700900999")
	require.NotContains(t, string(res.body), "7700900123")
	require.Contains(t, string(res.body), `"callerNumber":"+44*******999"`)
	require.Contains(t, string(res.body), `"targetNumber":"+44*******123"`)

	// Numbers written as JSON numbers, in a wrapper, with separators.
	body = `{"data":{"msisdn":447700900123,"to":"+44 7700 900123"},"timestamp":"2024-05-14T10:01:00Z"}`
	res = b.signed(t, config.KindServiceHooks, "outbound-call", []byte(body), nil)
	require.Equal(t, 200, res.status)
	res = b.read(t, analystKey, "/v1/events/"+res.json(t)["id"].(string))
	require.NotContains(t, string(res.body), "7700900123")
	require.NotContains(t, string(res.body), "900123")

	// The generic aliases keep what cannot be a phone number.
	body = `{"event":"CHANGE_CASE_STATUS","payload":{"caseId":"case-g","changeStatus":{"oldStatus":"Open","newStatus":"Resolved"},"transition":{"from":"Open","to":"Resolved"},"ticket":{"prefix":"A","number":42},"target":"queue-7"}}`
	res = b.signed(t, config.KindCaseUpdates, "", []byte(body), nil)
	require.Equal(t, 200, res.status)
	res = b.read(t, analystKey, "/v1/events/"+res.json(t)["id"].(string))
	require.Contains(t, string(res.body), `"transition":{"from":"Open","to":"Resolved"}`)
	require.Contains(t, string(res.body), `"number":42`)
	require.Contains(t, string(res.body), `"target":"queue-7"`)
}

// Summaries and changes name people as the payload does, by e-mail address
// or even by phone number; the redacted roles see those masked, the auditor
// as stored.
func TestSummariesAndChangesAreMasked(t *testing.T) {
	t.Parallel()
	b := withReadKeys(t)
	var ids []string
	for _, d := range []struct{ kind, event, body string }{
		{config.KindServiceActions, "after-resolve",
			`{"caseId":"case-s","triggeredByUserEmail":"ann.lee@clinic.example","referenceDate":"2024-05-14T09:00:00Z"}`},
		{config.KindCaseUpdates, "",
			`{"event":"ADD_CASE_ASSIGNEE","payload":{"caseId":"case-s","assignees":[{"assignee":{"email":"bob.ray@clinic.example"}}]}}`},
		{config.KindServiceHooks, "workitem-closed",
			`{"id":"w-1","agent":{"name":"+447700900555"},"closedAt":"2024-05-14T09:30:00Z","mediaType":"Voice"}`},
	} {
		res := b.signed(t, d.kind, d.event, []byte(d.body), nil)
		require.Equal(t, 200, res.status, string(res.body))
		ids = append(ids, res.json(t)["id"].(string))
	}
	b.sequence(t) // the feed lists events in log order
	want := map[string][]string{
		analystKey: {"After resolve by a******@clinic.example", "Assignee added: b******@clinic.example", "Work item closed by +44*******555 (Voice)"},
		adminKey:   {"After resolve by a******@clinic.example", "Assignee added: b******@clinic.example", "Work item closed by +44*******555 (Voice)"},
		auditorKey: {"After resolve by ann.lee@clinic.example", "Assignee added: bob.ray@clinic.example", "Work item closed by +447700900555 (Voice)"},
	}
	for key, summaries := range want {
		for i, id := range ids {
			res := b.read(t, key, "/v1/events/"+id)
			require.Equal(t, 200, res.status)
			var ev apiEvent
			require.NoError(t, json.Unmarshal(res.body, &ev))
			require.Equal(t, summaries[i], ev.Summary)
		}
		l := b.list(t, key, "/v1/cases/case-s/timeline")
		require.Len(t, l.Data, 2)
		require.Equal(t, summaries[:2], []string{l.Data[0].Summary, l.Data[1].Summary})
		var changes []map[string]string
		require.NoError(t, json.Unmarshal(l.Data[1].Changes, &changes))
		feed := b.list(t, key, "/v1/events?limit=10")
		require.Len(t, feed.Data, 3)
		if key == auditorKey {
			require.Equal(t, []map[string]string{{"field": "assignee", "from": "", "to": "bob.ray@clinic.example"}}, changes)
			continue
		}
		require.Equal(t, []map[string]string{{"field": "assignee", "from": "", "to": "b******@clinic.example"}}, changes)
		for _, e := range feed.Data {
			for _, leak := range []string{"ann.lee@", "bob.ray@", "7700900555"} {
				require.NotContains(t, e.Summary+string(e.Changes), leak)
			}
		}
	}
}

// A redacted reader gets no plain hash of a body: with the rest of the
// payload, the hash of a small body would let the reader try every value of
// the masked digits until one matched.
func TestRedactedRolesGetNoBodyHash(t *testing.T) {
	t.Parallel()
	b := withReadKeys(t)
	body := []byte(`{"agentId":"a-1","targetPhoneNumber":"+447700900123","timestamp":"2024-05-14T10:00:00Z"}`)
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	res := b.signed(t, config.KindServiceHooks, "outbound-call", body, nil)
	require.Equal(t, 200, res.status, string(res.body))
	id := res.json(t)["id"].(string)
	b.sequence(t)

	for _, key := range []string{analystKey, adminKey} {
		res := b.read(t, key, "/v1/events/"+id)
		require.Equal(t, 200, res.status, string(res.body))
		require.NotContains(t, string(res.body), hash)
		var ev apiEvent
		require.NoError(t, json.Unmarshal(res.body, &ev))
		require.Nil(t, ev.BodySHA256)
		require.Equal(t, "sha256:outbound-call:redacted", ev.IdempotencyKey)
		for _, path := range []string{"/v1/contacts/+447700900123/timeline", "/v1/events"} {
			l := b.list(t, key, path)
			require.Len(t, l.Data, 1, path)
			require.Equal(t, "sha256:outbound-call:redacted", l.Data[0].IdempotencyKey, path)
		}
	}

	res = b.read(t, auditorKey, "/v1/events/"+id)
	var ev apiEvent
	require.NoError(t, json.Unmarshal(res.body, &ev))
	require.NotNil(t, ev.BodySHA256)
	require.Equal(t, hash, *ev.BodySHA256)
	require.Equal(t, "sha256:outbound-call:"+hash, ev.IdempotencyKey)

	// A key the sender named is the sender's, not casetrail's hash: shown,
	// even when it begins as a derived key does.
	for i, own := range []string{"call-77", "sha256:call-78", "sha256:outbound-call:" + hash[:12]} {
		other := []byte(fmt.Sprintf(`{"agentId":"a-%d","targetPhoneNumber":"+447700900123"}`, i))
		res = b.signed(t, config.KindServiceHooks, "outbound-call", other, map[string]string{"Idempotency-Key": own})
		require.Equal(t, 200, res.status, string(res.body))
		res = b.read(t, analystKey, "/v1/events/"+res.json(t)["id"].(string))
		require.NoError(t, json.Unmarshal(res.body, &ev))
		require.Equal(t, own, ev.IdempotencyKey)
	}
}

// syncBuffer is a log destination the server's goroutines share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// A contact timeline's path is a phone number; the request log holds it
// masked, and holds no query string.
func TestRequestLogHoldsNoPhoneNumber(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	b := setup(t, readKeysOpt, func(o *setupOpts) { o.logs = &logs })
	res := b.signed(t, config.KindServiceHooks, "abandoned-conversation",
		[]byte(`{"customerPhoneNumber":"+447700900123","timestamp":"2024-05-14T09:41:07Z","queue":"Q1"}`), nil)
	require.Equal(t, 200, res.status)

	for _, key := range []string{analystKey, auditorKey} {
		for _, contact := range []string{"+447700900123", "+44 7700 900123"} {
			l := b.list(t, key, "/v1/contacts/"+url.PathEscape(contact)+"/timeline?from=2024-05-01T00:00:00Z&types=abandoned-*")
			require.Len(t, l.Data, 1)
		}
	}
	res = b.read(t, auditorKey, "/v1/reports/abandonment/contacts?from=2024-05-14T00:00:00Z&to=2024-05-15T00:00:00Z&queue=Q1")
	require.Equal(t, 200, res.status, string(res.body))
	require.Contains(t, string(res.body), "+447700900123")
	// A mistyped route is logged with what looks like a number masked.
	req, err := http.NewRequest(http.MethodGet, b.url+"/v1/contact/+447700900123/timeline?phone=+447700900123", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+analystKey)
	raw, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	io.Copy(io.Discard, raw.Body) //nolint:errcheck
	raw.Body.Close()
	require.Equal(t, 404, raw.StatusCode)

	logged := logs.String()
	require.Contains(t, logged, "path=/v1/contacts/+44*******123/timeline")
	require.Contains(t, logged, "path=/v1/contacts/+44*********123/timeline")
	require.Contains(t, logged, "path=/v1/reports/abandonment/contacts ")
	require.Contains(t, logged, "path=/v1/contact/+44*******123/timeline")
	for _, leak := range []string{"7700900123", "900123", "7700 900123", "2024-05-01T00:00:00Z", "queue=Q1"} {
		require.NotContains(t, logged, leak)
	}
}

// failingReads fails every contact timeline: by panicking with a value that
// names the contact, or with an internal error.
type failingReads struct {
	httpapi.Reads
	panics bool
}

func (f failingReads) Timeline(_ context.Context, q store.TimelineQuery) ([]store.EventRow, error) {
	if f.panics {
		panic("no rows for " + strings.Join(q.Phones, ","))
	}
	return nil, errors.New("store: no index for " + strings.Join(q.Phones, ","))
}

// The panic and internal-error lines mask the contact as the request line
// does, in the path and in the error's own text; no database is needed to
// fail.
func TestErrorLogsHoldNoPhoneNumber(t *testing.T) {
	t.Parallel()
	for _, panics := range []bool{true, false} {
		var logs syncBuffer
		cfg := testConfig()
		cfg.ReadKeys = []config.ReadKey{{Name: "ann", Role: config.RoleAnalyst, Key: analystKey}}
		require.NoError(t, cfg.Validate())
		h := httpapi.NewServer(httpapi.Deps{
			Config: cfg,
			Reads:  failingReads{panics: panics},
			Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		})
		req := httptest.NewRequest(http.MethodGet, "/v1/contacts/+447700900123/timeline", nil)
		req.Header.Set("Authorization", "Bearer "+analystKey)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		require.Equal(t, 500, rec.Code)

		logged := logs.String()
		if panics {
			require.Contains(t, logged, `msg=panic path=/v1/contacts/+44*******123/timeline panic="no rows for +44*******123"`)
		} else {
			require.Contains(t, logged, `msg="internal error" path=/v1/contacts/+44*******123/timeline err="store: no index for +44*******123"`)
		}
		require.NotContains(t, logged, "900123")
	}
}

// accessRecorder is failingReads that keeps the access records it is given.
type accessRecorder struct {
	failingReads
	mu       sync.Mutex
	accesses []store.Access
}

func (a *accessRecorder) RecordAccess(_ context.Context, r store.Access) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.accesses = append(a.accesses, r)
	return nil
}

// An auditor's request that fails, by a panic or an internal error, is still
// recorded in the access log, as the 500 it was answered with.
func TestAuditorRequestThatFailsIsRecorded(t *testing.T) {
	t.Parallel()
	for _, panics := range []bool{true, false} {
		cfg := testConfig()
		cfg.ReadKeys = []config.ReadKey{{Name: "carol", Role: config.RoleAuditor, Key: auditorKey}}
		require.NoError(t, cfg.Validate())
		reads := &accessRecorder{failingReads: failingReads{panics: panics}}
		h := httpapi.NewServer(httpapi.Deps{Config: cfg, Reads: reads, Logger: slog.New(slog.DiscardHandler)})
		req := httptest.NewRequest(http.MethodGet, "/v1/contacts/+447700900123/timeline", nil)
		req.Header.Set("Authorization", "Bearer "+auditorKey)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		require.Equal(t, 500, rec.Code)
		require.Len(t, reads.accesses, 1, "panics: %v", panics)
		a := reads.accesses[0]
		require.Equal(t, "carol", a.KeyName)
		require.Equal(t, 500, a.Status)
		require.Equal(t, "/v1/contacts/:contact/timeline", a.Route)
	}
}

// unwritableReads answers an event whose stored document is not JSON: an
// answer that cannot be encoded, which the safety net answers with a 500.
type unwritableReads struct {
	accessRecorder
}

func (u *unwritableReads) Event(_ context.Context, id int64) (store.EventDetail, error) {
	return store.EventDetail{ID: id, Doc: []byte("{not json")}, nil
}

// farCheckpoints lists a checkpoint dated past year 9999, which JSON cannot
// hold.
type farCheckpoints struct {
	httpapi.Ledger
}

func (farCheckpoints) Checkpoints(context.Context, int64, int) ([]store.Checkpoint, error) {
	return []store.Checkpoint{{ID: 1, Size: 1, Note: "note", At: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}, nil
}

// An auditor's answer that cannot be encoded reaches the client as a 500
// problem, and the access log records that 500, not the 200 the handler
// meant to send: on a route that records before it answers (an event) and
// on one recorded after the answer (the checkpoints).
func TestAuditorAnswerThatCannotBeEncodedIsRecordedAs500(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"/v1/events/7", "/v1/log/checkpoints"} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			cfg.ReadKeys = []config.ReadKey{{Name: "carol", Role: config.RoleAuditor, Key: auditorKey}}
			require.NoError(t, cfg.Validate())
			reads := &unwritableReads{}
			h := httpapi.NewServer(httpapi.Deps{Config: cfg, Reads: reads, Ledger: farCheckpoints{}, Logger: slog.New(slog.DiscardHandler)})
			req := httptest.NewRequest(http.MethodGet, path, nil)
			req.Header.Set("Authorization", "Bearer "+auditorKey)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			require.Equal(t, 500, rec.Code)
			require.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
			require.Len(t, reads.accesses, 1)
			require.Equal(t, 500, reads.accesses[0].Status)
		})
	}
}

// A platform that fills a customer, conversation, agent or work item id
// with an e-mail address or a phone number: the redacted roles see it
// masked in the event's data as in its payload, in the detail, timelines
// and the feed; the auditor as stored.
func TestIDsInDataAreMaskedAsInThePayload(t *testing.T) {
	t.Parallel()
	b := withReadKeys(t)
	ids := map[string]string{}
	for event, body := range map[string]string{
		"abandoned-conversation": `{"conversationId":"+447700900001","customerId":"pat.jones@gmail.com",` +
			`"customerPhoneNumber":"+447700900123","timeInQueue":30,"timestamp":"2024-05-14T09:41:07Z","queue":"Q1"}`,
		"outbound-call": `{"agentId":"+447700900555","targetPhoneNumber":"+447700900123","timestamp":"2024-05-14T09:50:00Z"}`,
	} {
		res := b.signed(t, config.KindServiceHooks, event, []byte(body), nil)
		require.Equal(t, 200, res.status, string(res.body))
		ids[res.json(t)["id"].(string)] = event
	}
	b.sequence(t)
	stored := map[string]string{"conversationId": "+447700900001", "customerId": "pat.jones@gmail.com", "agentId": "+447700900555"}
	masked := map[string]string{"conversationId": "+44*******001", "customerId": "p********@gmail.com", "agentId": "+44*******555"}
	for key, want := range map[string]map[string]string{analystKey: masked, adminKey: masked, auditorKey: stored} {
		feed := b.list(t, key, "/v1/events?limit=10")
		timeline := b.list(t, key, "/v1/contacts/+447700900123/timeline")
		require.Len(t, feed.Data, 2)
		require.Len(t, timeline.Data, 2)
		seen := map[string]bool{}
		for id, event := range ids {
			res := b.read(t, key, "/v1/events/"+id)
			require.Equal(t, 200, res.status, string(res.body))
			var ev apiEvent
			require.NoError(t, json.Unmarshal(res.body, &ev))
			var payload map[string]any
			require.NoError(t, json.Unmarshal(ev.Payload, &payload))
			listed := func(l listing) map[string]any {
				for _, e := range l.Data {
					if e.ID == id {
						return e.Data
					}
				}
				t.Fatalf("event %s not listed", id)
				return nil
			}
			for name, value := range want {
				if payload[name] == nil {
					continue
				}
				seen[name] = true
				require.Equal(t, value, payload[name], "%s %s %s", key, event, name)
				require.Equal(t, value, ev.Data[name], "%s %s %s", key, event, name)
				require.Equal(t, value, listed(feed)[name], "%s %s %s", key, event, name)
				require.Equal(t, value, listed(timeline)[name], "%s %s %s", key, event, name)
			}
		}
		require.Len(t, seen, 3)
	}
}
