package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// sink answers every delivery 202, remembering the order in which the
// bodies came.
type sink struct {
	mu     sync.Mutex
	bodies []string
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.bodies = append(s.bodies, string(b))
	s.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

func requests(n int) []request {
	out := make([]request, n)
	for i := range out {
		out[i] = request{path: "/x", header: http.Header{"Content-Type": {"text/plain"}}, body: fmt.Appendf(nil, "event %d", i)}
	}
	return out
}

func TestDriveMeasuresAfterTheWarmUp(t *testing.T) {
	s := &sink{}
	srv := httptest.NewServer(s)
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	var began []time.Time
	before := time.Now()
	r := drive(addr, requests(300), 100, 8, func(at time.Time) { began = append(began, at) })

	if len(s.bodies) != 300 {
		t.Fatalf("the server got %d deliveries, want 300, warm-up included", len(s.bodies))
	}
	if r.ok != 300 || r.failed != 0 {
		t.Fatalf("ok %d, failed %d: every answer, warm-up included, must count for the stored = 2xx check", r.ok, r.failed)
	}
	if len(r.lat) != 200 || len(r.done) != 200 {
		t.Fatalf("%d latencies and %d answer times, want the 200 measured requests'", len(r.lat), len(r.done))
	}
	if len(began) != 1 || began[0].Before(before) {
		t.Fatalf("began told %v, want once, at the measurement's start", began)
	}
	for i, d := range r.done {
		if d < 0 {
			t.Fatalf("measured request %d answered %v before the measurement started", i, d)
		}
	}
	if r.rate <= 0 {
		t.Fatalf("rate %v", r.rate)
	}
	if len(r.wholeLat) != 300 || r.wholeRate <= 0 {
		t.Fatalf("%d latencies and rate %v counted from the first delivery, want all 300", len(r.wholeLat), r.wholeRate)
	}
	// The first measured request is sent after every warm-up one.
	first := -1
	for i, b := range s.bodies {
		if b == "event 100" {
			first = i
		}
	}
	if first < 100-8+1 {
		t.Fatalf("the first measured request came %d-th, before the warm-up's were sent", first+1)
	}
}

func TestDriveWithoutWarmUpMeasuresEverything(t *testing.T) {
	srv := httptest.NewServer(&sink{})
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	r := drive(addr, requests(50), 0, 4, nil)
	if r.ok != 50 || len(r.lat) != 50 || len(r.done) != 50 || r.rate <= 0 {
		t.Fatalf("ok %d, %d latencies, %d answer times, rate %v; want all 50 measured", r.ok, len(r.lat), len(r.done), r.rate)
	}

	// Nothing left to measure after the warm-up: no rate, and began is
	// never told.
	called := false
	r = drive(addr, requests(20), 20, 4, func(time.Time) { called = true })
	if r.ok != 20 || len(r.lat) != 0 || r.rate != 0 || called {
		t.Fatalf("ok %d, %d latencies, rate %v, began called %v", r.ok, len(r.lat), r.rate, called)
	}
}
