package report

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/casetrail/casetrail/internal/store"
)

// A Builder stops taking queues once they make more than MaxCells cells:
// each new queue's groups take memory as its abandons come, before the
// answer could be refused.
func TestBuilderStopsAtMaxCells(t *testing.T) {
	q, err := ParseQuery(url.Values{"from": {"2024-03-01T00:00:00Z"}, "to": {"2024-04-01T00:00:00Z"},
		"interval": {"PT15M"}, "groupBy": {"queue"}})
	require.NoError(t, err)
	require.NoError(t, NewBuilder(q).CheckSize())
	perQueue := len(Intervals(q))
	fit := MaxCells / perQueue // 33 queues of 2,976 quarter-hours

	b := NewBuilder(q)
	at := time.Date(2024, 3, 10, 9, 0, 0, 0, time.UTC)
	for i := range fit + 100 {
		b.Add(&store.AbandonFact{At: at, ReceivedAt: at, Queue: fmt.Appendf(nil, "q-%03d", i), TimeInQueueMs: 1000, CallbackDelayUs: -1})
		if i < fit {
			require.NoError(t, b.CheckSize(), "%d queues", i+1)
		}
	}
	require.Error(t, b.CheckSize())
	require.Len(t, b.queues, fit+1, "the queue past the limit is the last one taken")
	require.Len(t, b.groups, fit+1)

	// Two parts of the range, each under the limit, are over it together.
	x, y := NewBuilder(q), NewBuilder(q)
	for i := range fit {
		x.Add(&store.AbandonFact{At: at, ReceivedAt: at, Queue: fmt.Appendf(nil, "q-%03d", i), CallbackDelayUs: -1})
		y.Add(&store.AbandonFact{At: at.Add(24 * time.Hour), ReceivedAt: at, Queue: fmt.Appendf(nil, "r-%03d", i), CallbackDelayUs: -1})
	}
	require.NoError(t, x.CheckSize())
	require.NoError(t, y.CheckSize())
	x.Merge(y)
	require.Error(t, x.CheckSize())
}
