package httpapi_test

import (
	"bytes"
	"context"
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
	"github.com/casetrail/casetrail/internal/normalize"
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

// BenchmarkIngestHandler is the server's work for one signed delivery of the
// example mix, from the request to the answer, with the store stood in for
// and no network: what the HTTP ingest path costs in CPU and allocations
// besides the database and the sockets.
func BenchmarkIngestHandler(b *testing.B) {
	cfg := &config.Config{
		MaxBodyBytes: 1 << 20,
		Sources: []config.Source{
			{Name: "case-updates", Kind: config.KindCaseUpdates, HMACSecret: cuSecret},
			{Name: "service-actions", Kind: config.KindServiceActions, HMACSecret: saSecret},
			{Name: "service-hooks", Kind: config.KindServiceHooks, APIKeys: []string{shOldKey, shNewKey}},
		},
	}
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	st := &standInStore{}
	reg := prometheus.NewRegistry()
	h := httpapi.NewServer(httpapi.Deps{
		Config:   cfg,
		Ingest:   ingest.NewService(cfg, st, st, ingest.NewMetrics(reg)),
		Logger:   slog.New(slog.DiscardHandler),
		Registry: reg,
	})

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
			d := delivery{path: "/v1/ingest/" + kind, body: body, header: http.Header{"Content-Type": {"application/json"}}}
			switch kind {
			case config.KindCaseUpdates:
				d.header.Set("x-cv-signature", hexHMAC(cuSecret, body))
			case config.KindServiceActions:
				d.header.Set("Authorization", "HMAC "+b64HMAC(saSecret, body))
				d.path += "/" + eventOfFile(normalize.ServiceActions, p)
			case config.KindServiceHooks:
				d.header.Set("x-api-key", shNewKey)
				d.path += "/" + eventOfFile(normalize.ServiceHooks, p)
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

// eventOfFile is the event a file of example bodies is named after.
func eventOfFile(kind normalize.Kind, path string) string {
	name := strings.TrimSuffix(filepath.Base(path), ".json")
	best := ""
	for _, e := range normalize.KnownEvents(kind) {
		if (name == e || strings.HasPrefix(name, e+"-")) && len(e) > len(best) {
			best = e
		}
	}
	return best
}
