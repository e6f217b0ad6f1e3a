package timeline_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/casetrail/casetrail/internal/timeline"
)

func TestParseTime(t *testing.T) {
	t.Parallel()
	want := time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC)
	for _, v := range []string{
		"2024-05-01T10:00:00+02:00",
		"2024-05-01T08:00:00Z",
		"2024-05-01t08:00:00z",
		"2024-05-01T08:00:00.000000000Z",
		"2024-05-01T03:30:00-04:30",
	} {
		got, err := timeline.ParseTime(v)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", v, got, err, want)
		}
	}
	// A "+" left unescaped in a URL arrives as a space.
	q, _ := url.ParseQuery("from=2024-05-01T10:00:00+02:00")
	if got, err := timeline.ParseTime(q.Get("from")); err != nil || !got.Equal(want) {
		t.Errorf("unescaped +: ParseTime(%q) = %v, %v; want %v", q.Get("from"), got, err, want)
	}
	// The store keeps microseconds and every range is [from, to): a bound
	// between two microseconds is the next one, which leaves exactly the
	// same stored times in the range.
	for v, want := range map[string]time.Time{
		"2024-05-01T08:00:00.0000009Z": want.Add(time.Microsecond),
		"2024-05-01T08:00:00.000001Z":  want.Add(time.Microsecond),
		"2024-05-01T08:00:00.0000011Z": want.Add(2 * time.Microsecond),
		"2024-05-01T07:59:59.9999999Z": want,
		"1969-12-31T23:59:59.9999999Z": time.Unix(0, 0).UTC(),
	} {
		if got, err := timeline.ParseTime(v); err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", v, got, err, want)
		}
	}
	for _, v := range []string{"", "2024-05-01", "2024-05-01T10:00:00", "2024-05-01T10:00:00 0200", "yesterday", "2024-05-01 10:00:00Z"} {
		if got, err := timeline.ParseTime(v); err == nil {
			t.Errorf("ParseTime(%q) = %v, want an error", v, got)
		}
	}
}
