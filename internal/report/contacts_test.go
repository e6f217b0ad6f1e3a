package report

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/casetrail/casetrail/internal/store"
)

// An abandon's time and its callback's are given to the fraction of a
// second, as the event's own occurredAt is, so that they name the same
// instant and agree with the delay given beside them.
func TestContactTimesKeepTheirFraction(t *testing.T) {
	loc, err := time.LoadLocation("Asia/Kolkata")
	require.NoError(t, err)
	at := time.Date(2024, 5, 1, 8, 0, 0, 250_000_000, time.UTC)
	back := at.Add(90*time.Second + 500*time.Millisecond)
	c := contact(Query{Location: loc, ShortAbandonSec: 10}, store.AbandonContact{EventID: 7, At: at, Phone: "+14155550100",
		CalledBack: true, CallbackAt: back, CallbackAgent: "agent-1", Attempts: 1}, true)

	gotAt, err := time.Parse(time.RFC3339Nano, c.At)
	require.NoError(t, err)
	require.True(t, gotAt.Equal(at), "at %s", c.At)
	gotBack, err := time.Parse(time.RFC3339Nano, c.Callback.At)
	require.NoError(t, err)
	require.True(t, gotBack.Equal(back), "callback at %s", c.Callback.At)
	require.Equal(t, gotBack.Sub(gotAt).Seconds(), c.Callback.DelaySec)
}

// The spans of an hour of the day or a day of the week hold exactly the
// instants the report puts in that group, across changes of the clocks
// (an hour that occurs twice, one that does not occur, a zone whose
// offset was not whole minutes), fractions of a second and 1970.
func TestLocalSpansMatchTheReportsGroups(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ tz, from, to string }{
		{"Europe/London", "2024-03-30T22:10:00.5Z", "2024-04-01T03:00:00Z"},
		{"Europe/London", "2024-10-26T20:00:00Z", "2024-10-28T01:45:00Z"},
		{"Australia/Lord_Howe", "2024-04-06T10:00:00Z", "2024-04-08T10:00:00Z"},
		{"Europe/Amsterdam", "1937-06-29T20:00:00Z", "1937-07-02T02:00:00Z"},
		{"America/St_Johns", "1969-12-30T21:00:00Z", "1970-01-02T03:00:00Z"},
		{"UTC", "2024-05-01T00:00:00Z", "2024-05-09T00:00:00Z"},
	} {
		loc, err := time.LoadLocation(tc.tz)
		require.NoError(t, err)
		from, err := time.Parse(time.RFC3339Nano, tc.from)
		require.NoError(t, err)
		to, err := time.Parse(time.RFC3339Nano, tc.to)
		require.NoError(t, err)
		for _, f := range []struct {
			hour int
			day  time.Weekday
		}{{1, -1}, {2, -1}, {0, -1}, {23, -1}, {-1, time.Sunday}, {-1, time.Monday}, {1, time.Sunday}, {10, time.Monday}} {
			spans := LocalSpans(from, to, loc, f.hour, f.day)
			for i, sp := range spans {
				require.True(t, sp.Start.Before(sp.End), "%s %+v: %v", tc.tz, f, sp)
				require.False(t, sp.Start.Before(from), "%s %+v", tc.tz, f)
				require.False(t, sp.End.After(to), "%s %+v", tc.tz, f)
				if i > 0 {
					require.True(t, spans[i-1].End.Before(sp.Start), "%s %+v: spans apart and in order", tc.tz, f)
				}
			}
			// Every minute of the range, and the instants either side of
			// each span's ends, are in a span exactly when the report's
			// group of them matches.
			probes := []time.Time{}
			for at := from; at.Before(to); at = at.Add(time.Minute) {
				probes = append(probes, at)
			}
			for _, sp := range spans {
				probes = append(probes, sp.Start, sp.Start.Add(-time.Microsecond), sp.End, sp.End.Add(-time.Microsecond))
			}
			for _, at := range probes {
				if at.Before(from) || !at.Before(to) {
					continue
				}
				l := at.In(loc)
				want := (f.hour < 0 || l.Hour() == f.hour) && (f.day < 0 || l.Weekday() == f.day)
				got := false
				for _, sp := range spans {
					if !at.Before(sp.Start) && at.Before(sp.End) {
						got = true
					}
				}
				require.Equal(t, want, got, "%s %+v at %s (%s)", tc.tz, f, at.Format(time.RFC3339Nano), l)
			}
		}
	}
}
