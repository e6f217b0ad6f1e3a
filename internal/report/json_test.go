package report

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/casetrail/casetrail/internal/store"
)

// The hand-written encoding is byte for byte what encoding/json writes, for
// reports of every grouping, with empty cells, absent values and fractions.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	from := time.Date(2024, 3, 30, 0, 0, 0, 0, time.UTC)
	var facts []store.AbandonFact
	for i := range 3000 {
		a := store.AbandonFact{
			At:              from.Add(time.Duration(i) * 97 * time.Second),
			ReceivedAt:      from.Add(time.Duration(rng.IntN(1e6)) * time.Second),
			Queue:           []byte(fmt.Sprintf("Q<%d>\"", rng.IntN(3))),
			TimeInQueueMs:   int64(rng.IntN(400_000)) - 1000,
			CallbackDelayUs: []int64{-1, int64(rng.IntN(1e11)), 1, 123_456_789}[rng.IntN(4)],
		}
		if rng.IntN(5) > 0 {
			a.Phone = []byte(fmt.Sprintf("+4477009%05d", rng.IntN(200)))
		}
		facts = append(facts, a)
	}
	handled := []store.HandledCount{{Start: from.Add(time.Hour), Closed: 3, LastReceived: from}}
	for _, params := range []string{
		"interval=PT15M&groupBy=queue",
		"interval=PT1H&tz=Europe/London",
		"interval=P1D&groupBy=hourOfDay,dayOfWeek&tz=Asia/Kathmandu&shortAbandonSec=0",
		"interval=total&queue=Q%3C1%3E%22&callbackWindow=PT1S&buckets=1,2,3",
		"interval=P1W&groupBy=queue",
	} {
		v, err := url.ParseQuery(params + "&from=2024-03-30T00:00:00Z&to=2024-04-02T12:00:00Z")
		require.NoError(t, err)
		q, err := ParseQuery(v)
		require.NoError(t, err)
		b := NewBuilder(q)
		for i := range facts {
			b.Add(&facts[i])
		}
		r := b.Report(handled)

		// Counted in three parts at once and merged, the report is the same.
		var parts []*Builder
		for _, p := range Parts(q, 3) {
			pb := NewBuilder(q)
			for i := range facts {
				if !facts[i].At.Before(p[0]) && facts[i].At.Before(p[1]) {
					pb.Add(&facts[i])
				}
			}
			parts = append(parts, pb)
		}
		for _, o := range parts[1:] {
			parts[0].Merge(o)
		}
		require.Equal(t, r, parts[0].Report(handled), params)

		want, err := json.Marshal(r)
		require.NoError(t, err)
		got, err := r.AppendJSON(nil)
		require.NoError(t, err)
		require.Equal(t, string(want), string(got), params)
		var written strings.Builder
		require.NoError(t, r.WriteJSON(&written))
		require.Equal(t, string(want), written.String(), params)
	}
	r := Report{}
	want, _ := json.Marshal(r)
	got, err := r.AppendJSON(nil)
	require.NoError(t, err)
	require.Equal(t, string(want), string(got))
}

func TestAppendFloat(t *testing.T) {
	for _, f := range []float64{0, 1, -1, 0.1, 1e-7, 1.5e-9, 1e20, 1e21, 1.2345e300, 123456789.123, 1.0 / 3} {
		want, _ := json.Marshal(f)
		require.Equal(t, string(want), string(appendFloat(nil, f)), "%v", f)
	}
}

// Percentiles by selection equal those read off a sorted copy.
func TestRanks(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{1, 2, 3, 10, 64, 65, 100, 1000, 10_007} {
		for _, spread := range []int{1, 3, 600, 1 << 30} {
			vs := make([]int64, n)
			for i := range vs {
				vs[i] = int64(rng.IntN(spread))
			}
			sorted := slices.Clone(vs)
			slices.Sort(sorted)
			got := ranks(vs, 95, 90, 50)
			for i, p := range []int{95, 90, 50} {
				want := sorted[max(int(math.Ceil(float64(p)/100*float64(n))), 1)-1]
				require.Equal(t, want, got[i], "n=%d spread=%d p%d", n, spread, p)
			}
			sum, lo, hi := stats(vs)
			require.Equal(t, sorted[0], lo)
			require.Equal(t, sorted[n-1], hi)
			var s int64
			for _, v := range sorted {
				s += v
			}
			require.Equal(t, s, sum)
		}
	}
}
