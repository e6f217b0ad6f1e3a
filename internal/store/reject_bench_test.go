package store_test

import (
	"context"
	"crypto/rand"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/casetrail/casetrail/internal/dbtest"
	"github.com/casetrail/casetrail/internal/store"
)

// Small refusals kept while two senders keep sending refused bodies of
// 16 MiB (a 413's body is kept up to max_body_bytes): how long keeping one
// small refusal takes. Run with
//
//	go run ./cmd/withpg -- go test -run '^$' -bench BenchmarkRejectBesideLargeBodies -benchtime 1x ./internal/store/
func BenchmarkRejectBesideLargeBodies(b *testing.B) {
	ctx := context.Background()
	d := dbtest.New(b)
	s, err := store.Open(ctx, d.URL, store.Options{Logger: dbtest.Logger(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	reject := func(body []byte) error {
		_, err := s.Reject(ctx, store.Rejected{ReceivedAt: time.Now(), Source: "s", Status: 413, Cause: "body_too_large",
			Credential: "api-key:00", Body: body, BodySize: int64(len(body)) + 1, BodyTruncated: true})
		return err
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	large := 0
	var mu sync.Mutex
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := make([]byte, 16<<20)
			for {
				select {
				case <-stop:
					return
				default:
				}
				rand.Read(body) // another body each time, so none is stored once for all
				if err := reject(body); err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				large++
				mu.Unlock()
			}
		}()
	}
	// Small refusals one after another until the two senders have had 16
	// large bodies kept (b.N times over).
	var took []time.Duration
	b.ResetTimer()
	for {
		mu.Lock()
		done := large >= 16*b.N
		mu.Unlock()
		if done {
			break
		}
		start := time.Now()
		if err := reject([]byte(`{"event":`)); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
	}
	b.StopTimer()
	close(stop)
	wg.Wait()
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "small-p50-ms")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "small-p99-ms")
	b.ReportMetric(float64(took[len(took)-1].Microseconds())/1000, "small-max-ms")
	b.ReportMetric(float64(len(took))/float64(b.N), "small/op")
}
