package report

import (
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Intervals cover the range from its first instant, aligned to the zone's
// wall clock, on either side of 1970 and in zones with half-hour offsets.
func TestIntervalsCoverTheRange(t *testing.T) {
	for _, tz := range []string{"UTC", "Asia/Kolkata", "America/St_Johns"} {
		for _, from := range []string{"1969-12-31T23:50:00Z", "1969-07-20T20:17:40Z", "1900-01-01T00:07:00Z",
			"1970-01-01T00:00:00Z", "2024-03-10T09:53:17.5Z"} {
			for _, interval := range []string{"PT15M", "PT30M", "PT1H", "P1D", "P1W"} {
				f, err := time.Parse(time.RFC3339, from)
				require.NoError(t, err)
				to := f.Add(5 * time.Minute).Format(time.RFC3339Nano)
				q, err := ParseQuery(url.Values{"from": {from}, "to": {to}, "tz": {tz}, "interval": {interval}})
				require.NoError(t, err)
				name := tz + " " + from + " " + interval

				ivs := Intervals(q)
				require.NotEmpty(t, ivs, name)
				require.False(t, ivs[0].Start.After(q.From), name)
				require.True(t, ivs[0].End.After(q.From), name)
				require.False(t, ivs[len(ivs)-1].End.Before(q.To), name)
				for i, iv := range ivs {
					l := iv.Start.In(q.Location)
					require.Zero(t, l.Second(), name)
					require.Zero(t, l.Minute()%int(stepOrDay(interval).Minutes()), name)
					if i > 0 {
						require.Equal(t, ivs[i-1].End, iv.Start, name)
					}
				}
				require.NotPanics(t, func() { HandledBounds(q) }, name)
				require.NoError(t, NewBuilder(q).CheckSize(), name)
			}
		}
	}
}

// stepOrDay is the interval's length, or an hour for days and weeks (which
// start at a whole hour of the zone's clock).
func stepOrDay(interval string) time.Duration {
	if s, ok := stepOf[interval]; ok {
		return s
	}
	return time.Hour
}
