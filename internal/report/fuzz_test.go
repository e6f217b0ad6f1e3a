package report

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/url"
	"testing"
	"time"

	"github.com/casetrail/casetrail/internal/store"
	"github.com/casetrail/casetrail/internal/timeline"
)

// FuzzReportQuery sends any range, zone, interval, callback window and
// drill-down cursor to the abandonment report: a client's parameters get a
// report or an InvalidParam (a 400), never a panic; a callback window is
// the duration written; the intervals cover [from, to) without gap or
// overlap; and a drill-down cursor reaches the store only when the server
// could have issued it for these filters.
func FuzzReportQuery(f *testing.F) {
	at := time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC)
	for _, s := range []struct{ from, to, tz, interval, window, cursor string }{
		{"2024-05-01T00:00:00Z", "2024-05-02T00:00:00Z", "", "", "", ""},
		{"2024-03-31T00:00:00+01:00", "2024-04-01T00:00:00+02:00", "Europe/London", "PT15M", "PT24H", ""},
		{"2024-04-06T00:00:00+11:00", "2024-04-08T00:00:00+10:30", "Australia/Lord_Howe", "PT1H", "P2D", ""},
		{"2024-05-01T00:00:00Z", "2024-06-01T00:00:00Z", "America/New_York", "P1W", "P1DT12H", ""},
		{"2024-05-01T00:00:00Z", "2024-05-02T00:00:00Z", "", "total", "PT90M", "not-a-cursor"},
		{"2024-05-01T00:00:00Z", "2024-05-02T00:00:00Z", "Local", "PT30M", "PT2562047H", ""},
		{"0000-01-01T00:00:00+23:59", "0001-01-01T00:00:00Z", "", "", "PT99999999999999999999S", ""},
		{"2024-05-01T00:00:00Z", "2024-05-02T00:00:00Z", "", "", "PT5124096H", ""},
	} {
		f.Add(s.from, s.to, s.tz, s.interval, s.window, s.cursor)
	}
	v := url.Values{"from": {"2024-05-01T00:00:00Z"}, "to": {"2024-05-02T00:00:00Z"}}
	raw, _ := json.Marshal(contactCursor{At: at, ID: 7, Filters: contactFilters(v)})
	f.Add("2024-05-01T00:00:00Z", "2024-05-02T00:00:00Z", "", "", "", base64.RawURLEncoding.EncodeToString(raw))

	f.Fuzz(func(t *testing.T, from, to, tz, interval, window, cursor string) {
		v := url.Values{"from": {from}, "to": {to}}
		for k, s := range map[string]string{"tz": tz, "interval": interval, "callbackWindow": window, "cursor": cursor} {
			if s != "" {
				v.Set(k, s)
			}
		}
		q, err := ParseQuery(v)
		if err != nil {
			var inv *timeline.InvalidParam
			if !errors.As(err, &inv) {
				t.Fatalf("not a 400: %v", err)
			}
			return
		}
		if window != "" && !sameDuration(window, q.CallbackWindow) {
			t.Fatalf("callbackWindow %q read as %v", window, q.CallbackWindow)
		}
		ivs := Intervals(q)
		if len(ivs) == 0 || !ivs[0].Start.Equal(q.From) && ivs[0].Start.After(q.From) ||
			ivs[len(ivs)-1].End.Before(q.To) {
			t.Fatalf("intervals %v do not cover [%v, %v)", ivs, q.From, q.To)
		}
		for i, iv := range ivs {
			if !iv.Start.Before(iv.End) || i > 0 && !ivs[i-1].End.Equal(iv.Start) {
				t.Fatalf("interval %d of %v", i, ivs)
			}
		}
		fetched := false
		_, _, err = Contacts(q, v, false, func(f store.ContactsFilter) ([]store.AbandonContact, error) {
			fetched = true
			return nil, nil
		})
		var inv *timeline.InvalidParam
		switch {
		case err != nil && !errors.As(err, &inv):
			t.Fatalf("not a 400: %v", err)
		case (err == nil) != fetched:
			t.Fatalf("error %v, store read %v", err, fetched)
		}
	})
}

// sameDuration reports whether d is the ISO 8601 duration s (as
// ParseISODuration reads it) in exact arithmetic.
func sameDuration(s string, d time.Duration) bool {
	m := isoDuration.FindStringSubmatch(s)
	if m == nil {
		return false
	}
	total := new(big.Int)
	for i, unit := range []int64{int64(24 * time.Hour), int64(time.Hour), int64(time.Minute), int64(time.Second)} {
		if m[i+1] != "" {
			n, ok := new(big.Int).SetString(m[i+1], 10)
			if !ok {
				return false
			}
			total.Add(total, n.Mul(n, big.NewInt(unit)))
		}
	}
	return total.IsInt64() && total.Int64() == int64(d)
}

// A callback window too long for a time.Duration is refused, not wrapped
// around to a short one: PT5124096H and P213504D once read as 25 minutes.
func TestParseISODurationDoesNotWrap(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"PT5124096H", "P213504D", "PT99999999999999999999S", "P106752DT1H"} {
		if d, err := ParseISODuration(s); err == nil {
			t.Errorf("ParseISODuration(%q) = %v, want an error", s, d)
		}
	}
	for s, want := range map[string]time.Duration{
		"PT24H": 24 * time.Hour, "P1DT12H": 36 * time.Hour, "PT90M": 90 * time.Minute,
		"PT9223372036S": 9223372036 * time.Second, "P106751D": 106751 * 24 * time.Hour,
	} {
		if d, err := ParseISODuration(s); err != nil || d != want {
			t.Errorf("ParseISODuration(%q) = %v, %v; want %v", s, d, err, want)
		}
	}
	_, err := ParseQuery(url.Values{"from": {"2024-05-01T00:00:00Z"}, "to": {"2024-05-02T00:00:00Z"}, "callbackWindow": {"PT5124096H"}})
	var inv *timeline.InvalidParam
	if !errors.As(err, &inv) || inv.Param != "callbackWindow" {
		t.Fatalf("callbackWindow=PT5124096H: %v, want it refused", err)
	}
}
