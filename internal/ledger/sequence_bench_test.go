package ledger_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/casetrail/casetrail/internal/dbtest"
	"github.com/casetrail/casetrail/internal/ledger"
	"github.com/casetrail/casetrail/internal/store"
)

// BenchmarkSequenceBacklog sequences a backlog loaded in one transaction, as
// a bulk load leaves it: every event shares one transaction id. It reports
// events sequenced per second at each backlog size; the rate should not
// fall as the backlog grows.
//
//	go run ./cmd/withpg -- go test -run '^$' -bench BenchmarkSequenceBacklog -benchtime 1x ./internal/ledger/
func BenchmarkSequenceBacklog(b *testing.B) {
	for _, n := range []int{10000, 40000, 160000} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			ctx := context.Background()
			events := make([]store.NewEvent, n)
			for i := range events {
				events[i] = newEvent(i)
			}
			for b.Loop() {
				b.StopTimer()
				d := dbtest.New(b)
				st, err := store.Open(ctx, d.URL, store.Options{})
				require.NoError(b, err)
				_, err = st.CopyEvents(ctx, events)
				require.NoError(b, err)
				seq := &ledger.Sequencer{Store: st, Log: dbtest.Logger(b)}
				b.StartTimer()
				got, err := seq.Step(ctx)
				b.StopTimer()
				require.NoError(b, err)
				require.Equal(b, n, got)
				st.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
