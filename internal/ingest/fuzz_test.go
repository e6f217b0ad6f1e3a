package ingest_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/casetrail/casetrail/internal/config"
	"github.com/casetrail/casetrail/internal/ingest"
	"github.com/casetrail/casetrail/internal/store"
)

// columnStore stores what PostgreSQL would: it refuses, as the database
// would with an error casetrail does not expect, a text column that is
// not UTF-8 or holds NUL, and a JSON column that is not JSON or holds an
// escape jsonb refuses.
type columnStore struct {
	stored []store.NewEvent
	kept   []store.Rejected
	bad    error
}

func (s *columnStore) check(what string, ok bool) {
	if !ok && s.bad == nil {
		s.bad = fmt.Errorf("%s cannot be stored", what)
	}
}

func (s *columnStore) Ingest(_ context.Context, events []store.NewEvent) ([]store.IngestResult, error) {
	out := make([]store.IngestResult, len(events))
	for i, e := range events {
		for name, v := range map[string]string{
			"type": e.Type, "source": e.Source, "kind": e.Kind, "credential": e.Credential,
			"idempotency key": e.IdempotencyKey, "case": e.CaseID, "phone": e.Phone,
			"customer": e.CustomerID, "conversation": e.ConversationID, "agent": e.AgentID,
			"work item": e.WorkItemID, "queue": e.Queue, "summary": e.Summary, "content type": e.ContentType,
		} {
			s.check(fmt.Sprintf("%s %q", name, v), store.IsText(v))
		}
		for name, v := range map[string][]byte{"doc": e.Doc, "actor": e.Actor, "changes": e.Changes, "reply": e.Reply} {
			s.check(fmt.Sprintf("%s %q", name, v), v == nil || json.Valid(v) && !bytes.Contains(v, []byte(`\u0000`)))
		}
		s.check(fmt.Sprintf("occurred at %v", e.OccurredAt), e.OccurredAt.Year() >= 1971 && e.OccurredAt.Year() <= 9999)
		s.check("body hash", e.BodySHA256 == sha256.Sum256(e.Body))
		s.stored = append(s.stored, e)
		out[i].ID = int64(len(s.stored))
	}
	return out, nil
}

func (s *columnStore) Reject(_ context.Context, r store.Rejected) (int64, error) {
	s.kept = append(s.kept, r)
	return int64(len(s.kept)), nil
}

func (s *columnStore) EventType(_ context.Context, id int64) (string, error) {
	return s.stored[id-1].Type, nil
}

// FuzzHandle sends any body, Content-Type, path event and idempotency key
// to each kind of source, properly authenticated, and holds the answer to
// the product's rule: an event stored with values its columns take, or a
// 4xx refusal whose request is kept; never a panic, a 5xx or a loss.
func FuzzHandle(f *testing.F) {
	const cvSecret = "updates-secret-0123456789"
	for _, s := range []struct{ source, event, ct, key, body string }{
		{"case-updates", "", "application/json", "", `{"event":"CHANGE_CASE_STATUS","payload":{"caseId":"c-1","changeDate":"2022-03-08T07:39:47.6052457Z"}}`},
		{"case-updates", "", "application/json; charset=utf-8", "k-1", `{"event":"ADD_CASE_COMMENT","payload":{"comment":{"author":{"firstName":"Zo\u00eb"},"attachments":[{"content":"aGVsbG8="}]}}}`},
		{"service-actions", "before-resolve", "application/json", "", `{"caseId":"c-2","referenceDate":"2022-03-08","useCustomerContactInfo":true}`},
		{"service-actions", "before-book-appointment", "application/json; charset=ISO-8859-1", "", "{\"caseId\":\"c-3\",\"customer\":{\"name\":\"Zo\xeb\"}}"},
		{"service-hooks", "abandoned-conversation", "application/json", "", `{"customerPhoneNumber":"+123456789","timeInQueue":"PT1M30S","timestamp":"2022-03-08T07:41:47.6052457Z","queue":"Sales"}`},
		{"service-hooks", "outbound-call", "application/json; charset=UTF-16LE", "", "{\x00}\x00"},
		{"service-hooks", "workitem-closed", "text/plain; charset=\"x\"", "\xff", `{"workItemId":"w-1"}`},
	} {
		f.Add(s.source, s.event, s.ct, s.key, []byte(s.body))
	}
	cfg := &config.Config{MaxBodyBytes: config.DefaultMaxBodyBytes, Sources: []config.Source{
		{Name: "case-updates", Kind: config.KindCaseUpdates, HMACSecret: cvSecret},
		{Name: "service-actions", Kind: config.KindServiceActions, HMACSecret: saSecret},
		{Name: "service-hooks", Kind: config.KindServiceHooks, APIKeys: []string{apiKey}},
	}}
	if err := cfg.Validate(); err != nil {
		f.Fatal(err)
	}
	metrics := ingest.NewMetrics(prometheus.NewRegistry())
	f.Fuzz(func(t *testing.T, source, event, contentType, key string, body []byte) {
		st := &columnStore{}
		svc := ingest.NewService(cfg, st, st, metrics)
		sign := func(secret string) []byte {
			mac := hmac.New(sha256.New, []byte(secret))
			mac.Write(body)
			return mac.Sum(nil)
		}
		h := http.Header{
			"X-Cv-Signature":  {fmt.Sprintf("%x", sign(cvSecret))},
			"Authorization":   {"HMAC " + base64.StdEncoding.EncodeToString(sign(saSecret))},
			"X-Api-Key":       {apiKey},
			"Idempotency-Key": {key},
		}
		rep, err := svc.Handle(context.Background(), ingest.Request{Source: source, PathEvent: event, Header: h,
			Body: body, ContentType: contentType, ReceivedAt: time.Now()})
		if st.bad != nil {
			t.Fatalf("%s/%s: %v", source, event, st.bad)
		}
		var e *ingest.Error
		switch {
		case err == nil:
			if rep.Status != http.StatusOK || len(st.stored) != 1 || !json.Valid(rep.Body) {
				t.Fatalf("%s/%s: reply %d %q with %d stored", source, event, rep.Status, rep.Body, len(st.stored))
			}
		case errors.As(err, &e):
			if e.Status < 400 || e.Status > 499 {
				t.Fatalf("%s/%s: status %d (%v)", source, event, e.Status, err)
			}
			if e.Cause != "unknown_source" && (len(st.kept) != 1 || !bytes.Equal(st.kept[0].Body, body)) {
				t.Fatalf("%s/%s: refused with %v but not kept", source, event, err)
			}
		default:
			t.Fatalf("%s/%s: %v", source, event, err)
		}
	})
}
