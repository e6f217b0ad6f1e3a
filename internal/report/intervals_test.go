package report

import (
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Intervals cover the range from its first instant, aligned to the zone's
// wall clock, on either side of 1970, in zones with half-hour offsets, and
// at the ends of the years a request can name (0000 to 9999), where a
// zone's first offset has no start.
func TestIntervalsCoverTheRange(t *testing.T) {
	for _, tz := range []string{"UTC", "Asia/Kolkata", "America/St_Johns", "Australia/Lord_Howe", "Pacific/Kiritimati"} {
		for _, from := range []string{"1969-12-31T23:50:00Z", "1969-07-20T20:17:40Z", "1900-01-01T00:07:00Z",
			"1970-01-01T00:00:00Z", "2024-03-10T09:53:17.5Z", "0000-01-01T00:00:00Z", "0001-01-01T00:00:00Z",
			"0000-12-31T23:58:00Z", "9999-12-31T23:50:00Z"} {
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

// In zones whose clocks jump from 00:00 to 01:00, that day starts at 01:00:
// its midnight does not exist. Days and weeks still follow one another.
func TestIntervalsOverADayWithoutMidnight(t *testing.T) {
	for _, c := range []struct{ tz, day string }{
		{"America/Santiago", "2024-09-08"},
		{"Atlantic/Azores", "2024-03-31"},
		{"America/Havana", "2024-03-10"},
		{"America/Asuncion", "2023-10-01"},
	} {
		loc, err := time.LoadLocation(c.tz)
		require.NoError(t, err)
		day, err := time.ParseInLocation(time.DateOnly, c.day, loc)
		require.NoError(t, err)
		for _, interval := range []string{"P1D", "P1W"} {
			name := c.tz + " " + c.day + " " + interval
			from := day.AddDate(0, 0, -9).Format(time.RFC3339)
			to := day.AddDate(0, 0, 9).Format(time.RFC3339)
			q, err := ParseQuery(url.Values{"from": {from}, "to": {to}, "tz": {c.tz}, "interval": {interval}})
			require.NoError(t, err, name)

			done := make(chan []Interval, 1)
			go func() { done <- Intervals(q) }()
			var ivs []Interval
			select {
			case ivs = <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("%s: the intervals never end", name)
			}
			require.LessOrEqual(t, len(ivs), 19, name)
			require.False(t, ivs[len(ivs)-1].End.Before(q.To), name)
			for i, iv := range ivs {
				require.True(t, iv.Start.Before(iv.End), name)
				if i > 0 {
					require.Equal(t, ivs[i-1].End, iv.Start, name)
				}
				// Each starts on the first instant of its day.
				s := iv.Start.In(loc)
				require.NotEqual(t, s.Day(), s.Add(-time.Nanosecond).Day(), "%s: %s", name, s)
				if interval == "P1W" {
					require.Equal(t, time.Monday, s.Weekday(), "%s: %s", name, s)
				}
				if s.Format(time.DateOnly) == c.day {
					require.Equal(t, 1, s.Hour(), "%s: %s", name, s)
					require.Equal(t, 23*time.Hour, iv.End.Sub(iv.Start), name)
				}
			}
		}
	}
}

// Lord Howe Island moves its clocks by 30 minutes (02:00 to 02:30 in
// October, 02:00 back to 01:30 in April). Hourly intervals stay on the
// island's whole hours after the change: the hour the shift shortens or
// repeats is cut where the offset changes, and no interval spans two
// hours of the day, so each holds what the report grouped by hourOfDay
// counts in its hour.
func TestHourlyIntervalsAcrossAHalfHourShift(t *testing.T) {
	for _, c := range []struct {
		day    string
		starts []string // the local starts of the day's first intervals
		n      int      // intervals in the day
	}{
		{"2024-10-06", []string{"00:00+10:30", "01:00+10:30", "02:30+11:00", "03:00+11:00", "04:00+11:00"}, 24},
		{"2024-04-07", []string{"00:00+11:00", "01:00+11:00", "01:30+10:30", "02:00+10:30", "03:00+10:30"}, 25},
	} {
		loc, err := time.LoadLocation("Australia/Lord_Howe")
		require.NoError(t, err)
		day, err := time.ParseInLocation(time.DateOnly, c.day, loc)
		require.NoError(t, err)
		q, err := ParseQuery(url.Values{"from": {day.Format(time.RFC3339)}, "to": {day.AddDate(0, 0, 1).Format(time.RFC3339)},
			"tz": {"Australia/Lord_Howe"}, "interval": {"PT1H"}})
		require.NoError(t, err)
		ivs := Intervals(q)
		require.Len(t, ivs, c.n, c.day)
		for i, want := range c.starts {
			require.Equal(t, c.day+"T"+want, ivs[i].Start.In(loc).Format("2006-01-02T15:04Z07:00"), "%s interval %d", c.day, i)
		}
		require.Equal(t, day.AddDate(0, 0, 1), ivs[len(ivs)-1].End, c.day)
		for i, iv := range ivs {
			s, last := iv.Start.In(loc), iv.End.Add(-time.Nanosecond).In(loc)
			require.Equal(t, s.Hour(), last.Hour(), "%s: %s-%s spans two hours", c.day, s, iv.End.In(loc))
			if i > 0 {
				require.Equal(t, ivs[i-1].End, iv.Start, c.day)
			}
		}
		// From a later start in the range, the same hours.
		q.From = day.Add(5 * time.Hour)
		later := Intervals(q)
		require.Equal(t, ivs[len(ivs)-len(later):], later, c.day)
	}
}

// Past the transitions a tz database lists (from 2038 in a full one; from
// its last listed change in a slim one), time.ZoneBounds reports a bound at
// every new year although the offset goes on: hourly intervals in a
// half-hour zone are not cut there.
func TestHourlyIntervalsAcrossABoundThatKeepsTheOffset(t *testing.T) {
	loc, err := time.LoadLocation("Australia/Adelaide")
	require.NoError(t, err)
	newYear := time.Date(2039, 1, 1, 0, 0, 0, 0, time.UTC) // 10:30 in Adelaide
	q, err := ParseQuery(url.Values{"from": {newYear.Add(-3 * time.Hour).Format(time.RFC3339)}, "to": {newYear.Add(3 * time.Hour).Format(time.RFC3339)},
		"tz": {"Australia/Adelaide"}, "interval": {"PT1H"}})
	require.NoError(t, err)
	ivs := Intervals(q)
	require.Len(t, ivs, 7, "six hours from half past touch seven hours, none cut at the new year")
	for i, iv := range ivs[1 : len(ivs)-1] {
		s, e := iv.Start.In(loc), iv.End.In(loc)
		require.Zero(t, s.Minute(), "interval %d starts at %s", i+1, s)
		require.Equal(t, time.Hour, e.Sub(s), "interval %d: %s-%s", i+1, s, e)
	}
}

// Where the clocks go back from 01:00 to 00:00, midnight happens twice: the
// day starts at the first, and is the one that lasts 25 hours.
func TestIntervalsOverADayWithTwoMidnights(t *testing.T) {
	for _, c := range []struct{ tz, day string }{
		{"Asia/Amman", "2021-10-29"},
		{"Asia/Gaza", "2020-10-24"},
	} {
		loc, err := time.LoadLocation(c.tz)
		require.NoError(t, err)
		noon, err := time.ParseInLocation(time.DateTime, c.day+" 12:00:00", loc)
		require.NoError(t, err)
		q, err := ParseQuery(url.Values{"from": {noon.AddDate(0, 0, -3).Format(time.RFC3339)}, "to": {noon.AddDate(0, 0, 3).Format(time.RFC3339)}, "tz": {c.tz}, "interval": {"P1D"}})
		require.NoError(t, err)
		found := false
		for _, iv := range Intervals(q)[1:] {
			s := iv.Start.In(loc)
			require.NotEqual(t, s.Day(), s.Add(-time.Nanosecond).In(loc).Day(), "%s: %s starts after its day's first instant", c.tz, s)
			if s.Format(time.DateOnly) == c.day {
				found = true
				require.Equal(t, 25*time.Hour, iv.End.Sub(iv.Start), "%s %s", c.tz, c.day)
			}
		}
		require.True(t, found, c.tz)
	}
}

// A day a zone skipped whole has no interval: Samoa went from 29 to 31
// December 2011.
func TestIntervalsSkipADayTheZoneSkipped(t *testing.T) {
	loc, err := time.LoadLocation("Pacific/Apia")
	require.NoError(t, err)
	from := time.Date(2011, 12, 28, 0, 0, 0, 0, loc)
	q, err := ParseQuery(url.Values{"from": {from.Format(time.RFC3339)}, "to": {from.AddDate(0, 0, 5).Format(time.RFC3339)}, "tz": {"Pacific/Apia"}, "interval": {"P1D"}})
	require.NoError(t, err)
	var days []string
	for _, iv := range Intervals(q) {
		require.True(t, iv.Start.Before(iv.End), "%s to %s", iv.Start, iv.End)
		days = append(days, iv.Start.In(loc).Format(time.DateOnly))
	}
	require.Equal(t, []string{"2011-12-28", "2011-12-29", "2011-12-31", "2012-01-01"}, days)
}
