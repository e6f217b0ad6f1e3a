package httpapi_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/casetrail/casetrail/internal/config"
	"github.com/casetrail/casetrail/internal/httpapi"
	"github.com/casetrail/casetrail/internal/ingest"
	"github.com/casetrail/casetrail/internal/store"
)

// standInStore acknowledges every event at once, with a new id: the
// handler's own cost, without a database.
type standInStore struct{ ids atomic.Int64 }

func (s *standInStore) Ingest(_ context.Context, events []store.NewEvent) ([]store.IngestResult, error) {
	out := make([]store.IngestResult, len(events))
	for i := range out {
		out[i].ID = s.ids.Add(1)
	}
	return out, nil
}

func (s *standInStore) Reject(context.Context, store.Rejected) (int64, error) {
	return s.ids.Add(1), nil
}

// EventType is never asked: the stand-in answers no repeats.
func (s *standInStore) EventType(context.Context, int64) (string, error) {
	return "", errors.New("the stand-in store holds no keys")
}

// standInServer is the HTTP API over a stand-in store: ingest without a
// database.
func standInServer(tb testing.TB, log *slog.Logger) http.Handler {
	tb.Helper()
	cfg := testConfig()
	if err := cfg.Validate(); err != nil {
		tb.Fatal(err)
	}
	st := &standInStore{}
	reg := prometheus.NewRegistry()
	return httpapi.NewServer(httpapi.Deps{
		Config:   cfg,
		Ingest:   ingest.NewService(cfg, st, st, ingest.NewMetrics(reg)),
		Logger:   log,
		Registry: reg,
	})
}

// Accepted deliveries are logged at debug level only (a line each would
// cost a write per event under load); refusals at info and above.
func TestAcceptedDeliveriesLogAtDebug(t *testing.T) {
	t.Parallel()
	body := []byte(`{"conversationId":"c-1","phoneNumber":"+447700900001","agentId":"a-1"}`)
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		var out bytes.Buffer
		h := standInServer(t, slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: level})))
		path, creds := signedDelivery(config.KindServiceHooks, "outbound-call", body)
		for _, key := range []string{creds["x-api-key"], "wrong-key"} {
			req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("x-api-key", key)
			h.ServeHTTP(httptest.NewRecorder(), req)
		}
		logged := out.String()
		if !strings.Contains(logged, "status=401") {
			t.Errorf("at %s, the refusal is not logged:\n%s", level, logged)
		}
		if got, want := strings.Contains(logged, "status=200"), level == slog.LevelDebug; got != want {
			t.Errorf("at %s, the accepted delivery logged: %v, want %v:\n%s", level, got, want, logged)
		}
	}
}

// BenchmarkIngestHandler is the server's work for one signed delivery of the
// example mix, from the request to the answer, with the store stood in for
// and no network: what the HTTP ingest path costs in CPU and allocations
// besides the database and the sockets.
func BenchmarkIngestHandler(b *testing.B) {
	h := standInServer(b, slog.New(slog.DiscardHandler))

	type delivery struct {
		path   string
		body   []byte
		header http.Header
	}
	var mix []delivery
	for _, kind := range []string{config.KindCaseUpdates, config.KindServiceActions, config.KindServiceHooks} {
		paths, err := filepath.Glob(filepath.Join("..", "..", "testdata", "events", kind, "*.json"))
		if err != nil || len(paths) == 0 {
			b.Fatalf("no example bodies for %s", kind)
		}
		for _, p := range paths {
			body, err := os.ReadFile(p)
			if err != nil {
				b.Fatal(err)
			}
			event := ""
			if kind != config.KindCaseUpdates {
				event = eventOf(kind, p)
			}
			path, creds := signedDelivery(kind, event, body)
			d := delivery{path: path, body: body, header: http.Header{"Content-Type": {"application/json"}}}
			for k, v := range creds {
				d.header.Set(k, v)
			}
			mix = append(mix, d)
		}
	}

	b.ReportAllocs()
	i := 0
	for b.Loop() {
		d := mix[i%len(mix)]
		i++
		req := httptest.NewRequest(http.MethodPost, d.path, bytes.NewReader(d.body))
		req.Header = d.header.Clone()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("%s: %d %s", d.path, rec.Code, rec.Body)
		}
	}
}
