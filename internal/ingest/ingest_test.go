package ingest_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/casetrail/casetrail/internal/config"
	"github.com/casetrail/casetrail/internal/ingest"
	"github.com/casetrail/casetrail/internal/spool"
	"github.com/casetrail/casetrail/internal/store"
)

const (
	apiKey   = "hooks-key-0123456789"
	saSecret = "actions-secret-0123456789"
)

// pickyStore refuses, as the database refuses a value, every call that
// holds a body containing "refuse", and stores everything else.
type pickyStore struct {
	mu     sync.Mutex
	stored []store.NewEvent
	held   map[string]int64 // idempotency key -> event id
	gone   map[int64]bool   // events removed behind the store's back
	kept   []store.Rejected
}

func (s *pickyStore) Ingest(_ context.Context, events []store.NewEvent) ([]store.IngestResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range events {
		if bytes.Contains(e.Body, []byte("refuse")) {
			return nil, fmt.Errorf("%w (SQLSTATE 22021)", store.ErrUnstorable)
		}
	}
	if s.held == nil {
		s.held = map[string]int64{}
	}
	out := make([]store.IngestResult, len(events))
	for i, e := range events {
		if id, ok := s.held[e.Source+"/"+e.IdempotencyKey]; ok {
			out[i] = store.IngestResult{ID: id, Duplicate: true}
			if s.stored[id-1].BodySHA256 != e.BodySHA256 {
				out[i] = store.IngestResult{ID: id, Err: store.ErrConflict}
			}
			continue
		}
		s.stored = append(s.stored, e)
		out[i].ID = int64(len(s.stored))
		s.held[e.Source+"/"+e.IdempotencyKey] = out[i].ID
	}
	return out, nil
}

func (s *pickyStore) Reject(_ context.Context, r store.Rejected) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kept = append(s.kept, r)
	return int64(len(s.kept)), nil
}

func (s *pickyStore) EventType(_ context.Context, id int64) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone[id] {
		return "", store.ErrNotFound
	}
	return s.stored[id-1].Type, nil
}

func newService(t *testing.T) (*ingest.Service, *pickyStore) {
	t.Helper()
	cfg := &config.Config{Sources: []config.Source{
		{Name: "service-hooks", Kind: config.KindServiceHooks, APIKeys: []string{apiKey}},
		{Name: "service-actions", Kind: config.KindServiceActions, HMACSecret: saSecret},
	}}
	st := &pickyStore{}
	return ingest.NewService(cfg, st, st, ingest.NewMetrics(prometheus.NewRegistry())), st
}

func newSpool(t *testing.T) *spool.Spool {
	t.Helper()
	sp, err := spool.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	return sp
}

func hook(body string) ingest.Request {
	return ingest.Request{Source: "service-hooks", PathEvent: "outbound-call",
		Header: http.Header{"X-Api-Key": {apiKey}}, Body: []byte(body), ContentType: "application/json", ReceivedAt: time.Now()}
}

func beforeResolve(body string) ingest.Request {
	m := hmac.New(sha256.New, []byte(saSecret))
	m.Write([]byte(body))
	return ingest.Request{Source: "service-actions", PathEvent: "before-resolve",
		Header: http.Header{"Authorization": {"HMAC " + base64.StdEncoding.EncodeToString(m.Sum(nil))}},
		Body:   []byte(body), ContentType: "application/json", ReceivedAt: time.Now()}
}

// An event the database refuses as such is refused with a 4xx and kept: a
// 503 would have its sender retry it for ever.
func TestUnstorableEventIsKeptWith4xx(t *testing.T) {
	t.Parallel()
	svc, st := newService(t)
	body := `{"agentID":"a-1","targetPhoneNumber":"+14155550100","note":"refuse"}`
	_, err := svc.Handle(context.Background(), hook(body))
	var e *ingest.Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want a refusal", err)
	}
	if e.Status != http.StatusBadRequest || e.Cause != "unstorable_event" || e.RejectedID == 0 {
		t.Fatalf("got %+v, want a kept 400 unstorable_event", e)
	}
	if len(st.kept) != 1 || string(st.kept[0].Body) != body {
		t.Fatalf("kept %d requests, want the one refused", len(st.kept))
	}
}

// A before-* hook the database refuses as such is not spooled: the spool
// could never be drained past it.
func TestUnstorableBeforeHookIsNotSpooled(t *testing.T) {
	t.Parallel()
	svc, st := newService(t)
	sp := newSpool(t)
	svc.SpoolBeforeHooks(sp, time.Hour)
	_, err := svc.Handle(context.Background(), beforeResolve(`{"id":"r-1","note":"refuse"}`))
	var e *ingest.Error
	if !errors.As(err, &e) || e.Cause != "unstorable_event" {
		t.Fatalf("got %v, want an unstorable_event refusal", err)
	}
	if svc.Spooled() != 0 || len(st.kept) != 1 {
		t.Fatalf("spooled %d, kept %d; want 0 and 1", svc.Spooled(), len(st.kept))
	}
}

// Draining the spool stores what can be stored and keeps what the database
// refuses as such, instead of stopping at it.
func TestDrainSpoolKeepsUnstorableEvents(t *testing.T) {
	t.Parallel()
	svc, st := newService(t)
	sp := newSpool(t)
	for i, note := range []string{"first", "refuse", "last"} {
		ev := store.NewEvent{Source: "service-actions", Kind: config.KindServiceActions, Type: "before-resolve",
			IdempotencyKey: fmt.Sprintf("k-%d", i), Body: []byte(`{"note":"` + note + `"}`), ReceivedAt: time.Now()}
		if err := sp.Append(ev); err != nil {
			t.Fatal(err)
		}
	}
	svc.SpoolBeforeHooks(sp, time.Hour)
	if _, err := svc.DrainSpool(context.Background()); err != nil {
		t.Fatal(err)
	}
	if svc.Spooled() != 0 {
		t.Fatalf("%d events left in the spool", svc.Spooled())
	}
	if len(st.stored) != 2 || len(st.kept) != 1 || st.kept[0].Cause != "unstorable_event" {
		t.Fatalf("stored %d, kept %+v; want 2 stored and the refused one kept", len(st.stored), st.kept)
	}
}

// A spooled hook whose sender's key was taken meanwhile by an event of
// another type is kept as a conflict, not dropped as a duplicate; one whose
// key is held by the same hook is a retry and stores nothing new.
func TestDrainSpoolKeepsAHookWhoseKeyAnotherHookTook(t *testing.T) {
	t.Parallel()
	svc, st := newService(t)
	sp := newSpool(t)
	body := []byte(`{"id":"r-1"}`)
	sum := sha256.Sum256(body)
	spooled := func(typ, key string) store.NewEvent {
		return store.NewEvent{Source: "service-actions", Kind: config.KindServiceActions, Type: typ,
			IdempotencyKey: key, ExplicitKey: true, Body: body, BodySHA256: sum, ReceivedAt: time.Now()}
	}
	if _, err := st.Ingest(context.Background(), []store.NewEvent{spooled("after-resolve", "k-1"), spooled("before-resolve", "k-2")}); err != nil {
		t.Fatal(err)
	}
	for _, ev := range []store.NewEvent{spooled("before-resolve", "k-1"), spooled("before-resolve", "k-2")} {
		if err := sp.Append(ev); err != nil {
			t.Fatal(err)
		}
	}
	svc.SpoolBeforeHooks(sp, time.Hour)
	if _, err := svc.DrainSpool(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(st.stored) != 2 || len(st.kept) != 1 {
		t.Fatalf("stored %d, kept %d; want 2 and 1", len(st.stored), len(st.kept))
	}
	if k := st.kept[0]; k.Cause != "idempotency_conflict" || k.EventType != "before-resolve" || string(k.Body) != string(body) {
		t.Fatalf("kept %+v, want the before-resolve hook as a conflict", k)
	}
}

// A repeated key whose event is missing from the store (removed behind its
// back) can store nothing: the request is kept with a 409, and the spool
// drains past such an event instead of stalling on it.
func TestKeyHeldByAMissingEventIsKept(t *testing.T) {
	t.Parallel()
	svc, st := newService(t)
	req := hook(`{"agentID":"a-1","targetPhoneNumber":"+14155550100"}`)
	req.Header.Set("Idempotency-Key", "k-1")
	if _, err := svc.Handle(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	st.gone = map[int64]bool{1: true}
	_, err := svc.Handle(context.Background(), req)
	var e *ingest.Error
	if !errors.As(err, &e) || e.Status != http.StatusConflict || e.RejectedID == 0 {
		t.Fatalf("got %v, want a kept 409", err)
	}

	sp := newSpool(t)
	ev := store.NewEvent{Source: "service-hooks", Kind: config.KindServiceHooks, Type: "outbound-call",
		IdempotencyKey: "k-1", ExplicitKey: true, Body: req.Body, BodySHA256: sha256.Sum256(req.Body), ReceivedAt: time.Now()}
	if err := sp.Append(ev); err != nil {
		t.Fatal(err)
	}
	svc.SpoolBeforeHooks(sp, time.Hour)
	if _, err := svc.DrainSpool(context.Background()); err != nil {
		t.Fatal(err)
	}
	if svc.Spooled() != 0 || len(st.kept) != 2 || st.kept[1].Cause != "idempotency_conflict" {
		t.Fatalf("spooled %d, kept %+v; want the spool drained and the event kept", svc.Spooled(), st.kept)
	}
}

// A case-updates source that takes a header secret or a signature refuses
// an oversized body with 413 whichever the request carries: the header is
// checked without the body, and a signature that cannot be checked on part
// of a body keeps only the fact of the refusal.
func TestOversizedBodyWithHeaderOrSignature(t *testing.T) {
	t.Parallel()
	const cuSecret, token = "cases-secret-0123456789", "header-token-0123456789"
	cfg := &config.Config{Sources: []config.Source{{Name: "case-updates", Kind: config.KindCaseUpdates,
		HMACSecret: cuSecret, AuthHeader: "X-Token", AuthSecret: token}}}
	st := &pickyStore{}
	svc := ingest.NewService(cfg, st, st, ingest.NewMetrics(prometheus.NewRegistry()))
	full := []byte(`{"event":"CREATE_CASE","payload":{"caseId":"c-1","note":"` + string(bytes.Repeat([]byte("x"), 4096)) + `"}}`)
	m := hmac.New(sha256.New, []byte(cuSecret))
	m.Write(full)
	sig := fmt.Sprintf("%x", m.Sum(nil))
	for _, tc := range []struct {
		name   string
		header http.Header
		cred   string
		kept   bool // what was read is kept
		status int
	}{
		{"signature", http.Header{"X-Cv-Signature": {sig}}, "unverified", false, http.StatusRequestEntityTooLarge},
		{"header", http.Header{"X-Token": {token}}, "header:", true, http.StatusRequestEntityTooLarge},
		{"wrong header", http.Header{"X-Token": {"nope"}}, "", false, http.StatusUnauthorized},
		{"no credential", http.Header{}, "", false, http.StatusUnauthorized},
	} {
		before := len(st.kept)
		_, err := svc.Handle(context.Background(), ingest.Request{Source: "case-updates", Header: tc.header,
			Body: full[:1024], TooLarge: true, BodySize: 1024, ContentType: "application/json", ReceivedAt: time.Now()})
		var e *ingest.Error
		if !errors.As(err, &e) || e.Status != tc.status {
			t.Fatalf("%s: got %v, want %d", tc.name, err, tc.status)
		}
		if tc.status != http.StatusRequestEntityTooLarge {
			if len(st.kept) != before {
				t.Fatalf("%s: an unauthenticated request was kept", tc.name)
			}
			continue
		}
		if len(st.kept) != before+1 {
			t.Fatalf("%s: kept %d, want the refusal", tc.name, len(st.kept)-before)
		}
		k := st.kept[len(st.kept)-1]
		if !bytes.HasPrefix([]byte(k.Credential), []byte(tc.cred)) || (len(k.Body) > 0) != tc.kept {
			t.Fatalf("%s: kept credential %q with %d bytes", tc.name, k.Credential, len(k.Body))
		}
	}
}

// A signing secret is rotated by listing the old and the new one: the
// sender cannot switch at the instant casetrail does, so a signature made
// with either is accepted, and the event names the secret that signed it.
func TestHMACSecretsRotate(t *testing.T) {
	t.Parallel()
	const oldSecret, newSecret = "actions-old-0123456789", "actions-new-0123456789"
	const oldCases, newCases = "cases-old-0123456789", "cases-new-0123456789"
	cfg := &config.Config{MaxBodyBytes: config.DefaultMaxBodyBytes, Sources: []config.Source{
		{Name: "service-actions", Kind: config.KindServiceActions, HMACSecrets: []string{oldSecret, newSecret}},
		{Name: "case-updates", Kind: config.KindCaseUpdates, HMACSecret: oldCases, HMACSecrets: []string{newCases}},
	}}
	require.NoError(t, cfg.Validate())
	st := &pickyStore{}
	svc := ingest.NewService(cfg, st, st, ingest.NewMetrics(prometheus.NewRegistry()))
	mac := func(secret, body string) []byte {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(body))
		return m.Sum(nil)
	}
	for _, tc := range []struct {
		source, secret string
		ok             bool
	}{
		{"service-actions", oldSecret, true},
		{"service-actions", newSecret, true},
		{"service-actions", "actions-other-0123456789", false},
		{"case-updates", oldCases, true},
		{"case-updates", newCases, true},
		{"case-updates", oldSecret, false},
	} {
		body := fmt.Sprintf(`{"event":"CREATE_CASE","caseId":"c-1","signedWith":%q}`, tc.secret)
		req := ingest.Request{Source: tc.source, Body: []byte(body), ContentType: "application/json", ReceivedAt: time.Now()}
		if tc.source == "service-actions" {
			req.PathEvent = "after-resolve"
			req.Header = http.Header{"Authorization": {"HMAC " + base64.StdEncoding.EncodeToString(mac(tc.secret, body))}}
		} else {
			req.Header = http.Header{"X-Cv-Signature": {fmt.Sprintf("%x", mac(tc.secret, body))}}
		}
		rep, err := svc.Handle(context.Background(), req)
		if !tc.ok {
			var e *ingest.Error
			require.ErrorAs(t, err, &e, tc)
			require.Equal(t, http.StatusUnauthorized, e.Status, tc)
			continue
		}
		require.NoError(t, err, tc)
		require.Equal(t, "hmac:"+config.Fingerprint(tc.secret), st.stored[rep.ID-1].Credential, tc)
	}
}

// An idempotency key may have 512 characters, as the API says, however
// many bytes they take in UTF-8; a longer one is refused and kept.
func TestIdempotencyKeyLengthInCharacters(t *testing.T) {
	t.Parallel()
	svc, st := newService(t)
	long := strings.Repeat("ключ", 128) // 512 characters, 1024 bytes
	req := hook(`{"agentID":"a-1","targetPhoneNumber":"+447700900123"}`)
	req.Header.Set("Idempotency-Key", long)
	rep, err := svc.Handle(context.Background(), req)
	require.NoError(t, err)
	require.Equal(t, long, st.stored[rep.ID-1].IdempotencyKey)

	req = hook(`{"agentID":"a-2","targetPhoneNumber":"+447700900123"}`)
	req.Header.Set("Idempotency-Key", long+"!")
	_, err = svc.Handle(context.Background(), req)
	var e *ingest.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, http.StatusBadRequest, e.Status)
	require.Equal(t, "invalid_idempotency_key", e.Cause)
	require.Len(t, st.kept, 1)
}

// A header secret is rotated like a signing secret: with the old and the
// new one listed, a request carrying either is accepted.
func TestHeaderSecretsRotate(t *testing.T) {
	t.Parallel()
	const oldToken, newToken = "header-old-0123456789", "header-new-0123456789"
	cfg := &config.Config{MaxBodyBytes: config.DefaultMaxBodyBytes, Sources: []config.Source{
		{Name: "case-updates", Kind: config.KindCaseUpdates, AuthHeader: "X-Token", AuthSecret: oldToken, AuthSecrets: []string{newToken}},
	}}
	require.NoError(t, cfg.Validate())
	st := &pickyStore{}
	svc := ingest.NewService(cfg, st, st, ingest.NewMetrics(prometheus.NewRegistry()))
	for _, tc := range []struct {
		token string
		ok    bool
	}{{oldToken, true}, {newToken, true}, {"header-other-0123456789", false}} {
		body := fmt.Sprintf(`{"event":"CREATE_CASE","caseId":"c-1","token":%q}`, tc.token)
		rep, err := svc.Handle(context.Background(), ingest.Request{Source: "case-updates", Header: http.Header{"X-Token": {tc.token}},
			Body: []byte(body), ContentType: "application/json", ReceivedAt: time.Now()})
		if !tc.ok {
			var e *ingest.Error
			require.ErrorAs(t, err, &e, tc.token)
			require.Equal(t, http.StatusUnauthorized, e.Status)
			continue
		}
		require.NoError(t, err, tc.token)
		require.Equal(t, "header:"+config.Fingerprint(tc.token), st.stored[rep.ID-1].Credential)
	}
}

// A body in the charset its Content-Type names is read in that charset:
// the agent's name reaches the summary and the indexed copy as written,
// while the raw body and the Content-Type are kept as sent. Bytes the
// charset does not define, or a charset casetrail cannot decode, leave
// U+FFFD in the copy, which is then marked lossy; the event is stored.
func TestBodyCharset(t *testing.T) {
	t.Parallel()
	latin1 := func(s string) string {
		b := make([]byte, 0, len(s))
		for _, r := range s {
			b = append(b, byte(r))
		}
		return string(b)
	}
	utf16le := func(s string) string {
		var b []byte
		for _, r := range s {
			b = append(b, byte(r), byte(r>>8))
		}
		return string(b)
	}
	const doc = `{"agent":{"id":"a-1","name":"Zoë Ångström"},"targetPhoneNumber":"+14155550100"}`
	const summary = "Outbound call started by Zoë Ångström"
	tests := []struct {
		name, contentType, body string
		summary                 string
		lossy                   bool
	}{
		{"Latin-1", "application/json; charset=ISO-8859-1", latin1(doc), summary, false},
		{"Latin-1, quoted and spaced", `application/json ; Charset="latin1"`, latin1(doc), summary, false},
		{"windows-1252 quote mark", "application/json; charset=windows-1252",
			"{\"agent\":{\"id\":\"a-1\",\"name\":\"Dara O\x92Neil\"},\"targetPhoneNumber\":\"+14155550100\"}",
			"Outbound call started by Dara O’Neil", false},
		{"UTF-8 labelled Latin-1", "application/json; charset=ISO-8859-1", doc, summary, false},
		{"UTF-16", "application/json; charset=UTF-16LE", utf16le(doc), summary, false},
		{"UTF-8", "application/json; charset=utf-8", doc, summary, false},
		{"no charset, not UTF-8", "application/json", latin1(doc), "Outbound call started by Zo\uFFFD \uFFFDngstr\uFFFDm", true},
		{"unknown charset", "application/json; charset=x-klingon", latin1(doc), "Outbound call started by Zo\uFFFD \uFFFDngstr\uFFFDm", true},
		{"charset the standard does not decode", "application/json; charset=ISO-2022-KR", latin1(doc), "Outbound call started by Zo\uFFFD \uFFFDngstr\uFFFDm", true},
		{"bytes Shift_JIS does not define", "application/json; charset=Shift_JIS",
			"{\"agent\":{\"id\":\"a-1\",\"name\":\"Ann \x81\x7f\"},\"targetPhoneNumber\":\"+14155550100\"}",
			"Outbound call started by Ann \uFFFD", true},
	}
	for _, tt := range tests {
		svc, st := newService(t)
		req := hook(tt.body)
		req.ContentType = tt.contentType
		rep, err := svc.Handle(context.Background(), req)
		require.NoError(t, err, tt.name)
		require.Equal(t, http.StatusOK, rep.Status, tt.name)
		require.Len(t, st.stored, 1, tt.name)
		ev := st.stored[0]
		require.Equal(t, tt.summary, ev.Summary, tt.name)
		require.Equal(t, tt.lossy, ev.DocLossy, tt.name)
		require.Equal(t, tt.body, string(ev.Body), tt.name)
		require.Equal(t, tt.contentType, ev.ContentType, tt.name)
		if !tt.lossy {
			require.Contains(t, string(ev.Doc), strings.TrimPrefix(tt.summary, "Outbound call started by "), tt.name)
		}
	}

}
