package report

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/casetrail/casetrail/internal/store"
)

// BenchmarkBuilder times the report's Go side alone, on 1,000,000 abandons
// over 30 days in 20 queues at PT15M by queue: counting into cells, then
// figures and JSON.
func BenchmarkBuilder(b *testing.B) {
	const n = 1_000_000
	from := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	facts := make([]store.AbandonFact, n)
	queues := make([][]byte, 20)
	for i := range queues {
		queues[i] = []byte(fmt.Sprintf("Q%d", i))
	}
	for i := range facts {
		facts[i] = store.AbandonFact{At: from.Add(time.Duration(i) * 30 * 24 * time.Hour / n), ReceivedAt: from,
			Queue: queues[i%20], Phone: []byte(fmt.Sprintf("+4477%08d", i*7919%(n/5))),
			TimeInQueueMs: int64(i*37%600) * 1000, CallbackDelayUs: int64(i%1000) * 1e8}
	}
	v, _ := url.ParseQuery("interval=PT15M&groupBy=queue&tz=Europe/London&from=2024-03-01T00:00:00Z&to=2024-03-31T00:00:00Z")
	q, err := ParseQuery(v)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("count", func(b *testing.B) {
		for b.Loop() {
			rb := NewBuilder(q)
			for i := range facts {
				rb.Add(&facts[i])
			}
		}
	})
	b.Run("count+figures", func(b *testing.B) {
		for b.Loop() {
			rb := NewBuilder(q)
			for i := range facts {
				rb.Add(&facts[i])
			}
			rb.Report(nil)
		}
	})
	b.Run("count+figures+json", func(b *testing.B) {
		for b.Loop() {
			rb := NewBuilder(q)
			for i := range facts {
				rb.Add(&facts[i])
			}
			r := rb.Report(nil)
			if _, err := r.AppendJSON(nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
