package httpapi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// sweepCase is one hostile request to a read route. want is the status it
// must get; 0 accepts any 2xx or 4xx (input that a route may fairly take or
// refuse), never a 5xx.
type sweepCase struct {
	name   string
	key    string
	path   string // escaped path and query, sent as written
	accept string
	want   int
}

// TestHostileReadParameterSweep sends every read route hostile query
// parameters and path values: each must be answered with a 4xx problem
// (or a whole 2xx answer where the input is in fact valid), never with a
// 5xx. A range too long for its interval (a century by the hour) is
// refused before anything is read or built.
func TestHostileReadParameterSweep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := withReadKeys(t)
	f := populate(t, b)
	st, err := b.store.LatestLogState(ctx)
	require.NoError(t, err)
	require.NoError(t, b.cp.Sign(ctx, st))
	event := f.caseEvents["case-1"][0]
	var ev apiEvent
	require.NoError(t, json.Unmarshal(b.read(t, analystKey, "/v1/events/"+event).body, &ev))
	require.NotNil(t, ev.LogIndex)
	leaf := *ev.LogIndex

	// Cursors issued by one route, to be replayed at others.
	cursorOf := func(path string) string {
		l := b.list(t, analystKey, path)
		require.NotNil(t, l.Page.NextCursor, path)
		return url.QueryEscape(*l.Page.NextCursor)
	}
	timelineCursor := cursorOf("/v1/cases/case-1/timeline?limit=2")
	feedCursor := cursorOf("/v1/events?limit=2")
	typedCursor := cursorOf("/v1/events?limit=2&types=ORDER_CREATED")
	res := b.read(t, analystKey, "/v1/reports/abandonment/contacts?from=2024-03-01T00:00:00Z&to=2024-03-02T00:00:00Z&limit=1")
	require.Equal(t, 200, res.status, string(res.body))
	next, _ := res.json(t)["page"].(map[string]any)["nextCursor"].(string)
	require.NotEmpty(t, next)
	contactsCursor := url.QueryEscape(next)

	// forge rewrites fields of an issued cursor, keeping its filters, as a
	// client that decodes the opaque cursor might.
	forge := func(escaped string, set map[string]any) string {
		c, err := url.QueryUnescape(escaped)
		require.NoError(t, err)
		raw, err := base64.RawURLEncoding.DecodeString(c)
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal(raw, &m))
		for k, v := range set {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		raw, err = json.Marshal(m)
		require.NoError(t, err)
		return url.QueryEscape(base64.RawURLEncoding.EncodeToString(raw))
	}
	maxInt := json.Number("9223372036854775807")
	minInt := json.Number("-9223372036854775808")

	garbage := url.QueryEscape(base64.RawURLEncoding.EncodeToString([]byte("garbage, not a cursor")))
	garbageJSON := url.QueryEscape(base64.RawURLEncoding.EncodeToString([]byte(`{"at":"0001-01-01T00:00:00Z","id":-1}`)))
	long := strings.Repeat("A", 8000)
	hugeBuckets := ""
	for i := range 20 {
		hugeBuckets += fmt.Sprintf("%d,", 9223372036854775807-20+i)
	}
	hugeBuckets = strings.TrimSuffix(hugeBuckets, ",")
	likeBomb := strings.Repeat("*A", 3000) + "B"
	longTypes := strings.Repeat("ORDER_CREATED,", 500)

	const day = "from=2024-03-01T00:00:00Z&to=2024-03-02T00:00:00Z"
	report := "/v1/reports/abandonment"
	contacts := "/v1/reports/abandonment/contacts"

	cases := []sweepCase{
		// limit
		{"timeline limit=0", analystKey, "/v1/cases/case-1/timeline?limit=0", "", 400},
		{"timeline limit=-1", analystKey, "/v1/cases/case-1/timeline?limit=-1", "", 400},
		{"timeline limit huge", analystKey, "/v1/cases/case-1/timeline?limit=99999999999999999999999", "", 400},
		{"timeline limit=1e3", analystKey, "/v1/cases/case-1/timeline?limit=1e3", "", 400},
		{"timeline limit=abc", analystKey, "/v1/cases/case-1/timeline?limit=abc", "", 400},
		{"timeline limit repeated", analystKey, "/v1/cases/case-1/timeline?limit=2&limit=abc", "", 0},
		{"contact limit=0", analystKey, "/v1/contacts/%2B447700900101/timeline?limit=0", "", 400},
		{"feed limit=0", analystKey, "/v1/events?limit=0", "", 400},
		{"feed limit=-1", analystKey, "/v1/events?limit=-1", "", 400},
		{"feed limit=1e3", analystKey, "/v1/events?limit=1e3", "", 400},
		{"feed limit huge", analystKey, "/v1/events?limit=9223372036854775808", "", 400},
		{"contacts limit=0", analystKey, contacts + "?" + day + "&limit=0", "", 400},
		{"contacts limit=abc", analystKey, contacts + "?" + day + "&limit=abc", "", 400},
		{"access-log limit=-1", adminKey, "/v1/access-log?limit=-1", "", 400},
		{"access-log limit=1e3", adminKey, "/v1/access-log?limit=1e3", "", 400},
		{"rejected limit=0", adminKey, "/v1/rejected?limit=0", "", 400},
		{"checkpoints limit=abc", analystKey, "/v1/log/checkpoints?limit=abc", "", 400},
		{"checkpoints limit huge", analystKey, "/v1/log/checkpoints?limit=99999999999999999999", "", 400},

		// from / to on listings
		{"timeline from not RFC 3339", analystKey, "/v1/cases/case-1/timeline?from=yesterday", "", 400},
		{"timeline reversed", analystKey, "/v1/cases/case-1/timeline?from=2024-03-02T00:00:00Z&to=2024-03-01T00:00:00Z", "", 0},
		{"timeline equal", analystKey, "/v1/cases/case-1/timeline?from=2024-03-01T00:00:00Z&to=2024-03-01T00:00:00Z", "", 0},
		{"timeline year 0001", analystKey, "/v1/cases/case-1/timeline?from=0001-01-01T00:00:00Z", "", 200},
		{"timeline within the year 0000", analystKey, "/v1/cases/case-1/timeline?from=0000-01-01T00:00:00Z&to=0000-06-01T00:00:00Z", "", 200},
		{"contact timeline year 0000 to 9999", analystKey, "/v1/contacts/%2B447700900101/timeline?from=0000-01-01T00:00:00Z&to=9999-12-31T23:59:59.999999999Z&order=desc", "", 200},
		{"feed within the year 0000 streamed", analystKey, "/v1/events?from=0000-01-01T00:00:00Z&to=0000-06-01T00:00:00Z", "application/x-ndjson", 200},
		{"timeline year 9999", analystKey, "/v1/cases/case-1/timeline?to=9999-12-31T23:59:59Z", "", 200},
		{"timeline year 0000", analystKey, "/v1/cases/case-1/timeline?from=0000-01-01T00:00:00Z", "", 200},
		{"timeline offset past year 9999", analystKey, "/v1/cases/case-1/timeline?to=9999-12-31T23:59:59-12:00", "", 200},
		{"timeline offset before year 1", analystKey, "/v1/cases/case-1/timeline?from=0001-01-01T00:00:00%2B14:00", "", 200},
		{"feed from not RFC 3339", analystKey, "/v1/events?from=2024-13-45", "", 400},
		{"feed year 0001 to 9999", analystKey, "/v1/events?from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59Z&limit=1", "", 200},
		{"feed reversed", analystKey, "/v1/events?from=2024-03-02T00:00:00Z&to=2024-03-01T00:00:00Z", "", 0},
		{"feed from repeated", analystKey, "/v1/events?from=2024-03-01T00:00:00Z&from=garbage", "", 0},

		// reports: from / to
		{"report without from", analystKey, report + "?to=2024-03-02T00:00:00Z", "", 400},
		{"report without to", analystKey, report + "?from=2024-03-02T00:00:00Z", "", 400},
		{"report reversed", analystKey, report + "?from=2024-03-02T00:00:00Z&to=2024-03-01T00:00:00Z", "", 400},
		{"report equal", analystKey, report + "?from=2024-03-01T00:00:00Z&to=2024-03-01T00:00:00Z", "", 400},
		{"report not RFC 3339", analystKey, report + "?from=1709251200&to=2024-03-02", "", 400},
		{"report year 0001", analystKey, report + "?from=0001-01-01T00:00:00Z&to=0001-01-02T00:00:00Z", "", 200},
		{"report year 0001 in a zone behind UTC", analystKey, report + "?from=0001-01-01T00:00:00Z&to=0001-01-02T00:00:00Z&tz=America/New_York", "", 200},
		{"report year 9999", analystKey, report + "?from=9999-12-30T00:00:00Z&to=9999-12-31T23:00:00Z", "", 200},
		{"report year 9999 weekly", analystKey, report + "?from=9999-12-01T00:00:00Z&to=9999-12-31T23:00:00Z&interval=P1W", "", 200},
		{"report year 9999 in a zone ahead of UTC", analystKey, report + "?from=9999-12-30T00:00:00Z&to=9999-12-31T23:00:00Z&tz=Pacific/Kiritimati", "", 200},
		{"report year 9999 csv", analystKey, report + "?from=9999-12-30T00:00:00Z&to=9999-12-31T23:00:00Z", "text/csv", 200},
		{"report 100 years hourly", analystKey, report + "?from=1950-01-01T00:00:00Z&to=2050-01-01T00:00:00Z&interval=PT1H", "", 400},
		{"report 100 years quarter-hourly by everything", analystKey, report + "?from=1950-01-01T00:00:00Z&to=2050-01-01T00:00:00Z&interval=PT15M&groupBy=queue,hourOfDay,dayOfWeek", "", 400},
		{"report 100 years daily", analystKey, report + "?from=1950-01-01T00:00:00Z&to=2050-01-01T00:00:00Z", "", 400},
		{"report 100 years total", analystKey, report + "?from=1950-01-01T00:00:00Z&to=2050-01-01T00:00:00Z&interval=total", "", 400},
		{"report 0001 to 9999 total", analystKey, report + "?from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59Z&interval=total", "", 400},
		{"report tz Not/AZone", analystKey, report + "?" + day + "&tz=Not/AZone", "", 400},
		{"report tz path", analystKey, report + "?" + day + "&tz=../../etc/passwd", "", 400},
		{"report tz Local", analystKey, report + "?" + day + "&tz=Local", "", 400},
		{"contacts tz Local", analystKey, contacts + "?" + day + "&tz=Local", "", 400},
		{"report tz UTC", analystKey, report + "?" + day + "&tz=UTC", "", 200},
		{"report tz long", analystKey, report + "?" + day + "&tz=" + long, "", 400},
		{"report interval weird", analystKey, report + "?" + day + "&interval=weird", "", 400},
		{"report interval lower case", analystKey, report + "?" + day + "&interval=pt1h", "", 400},
		{"report interval repeated", analystKey, report + "?" + day + "&interval=PT1H&interval=weird", "", 0},
		{"report groupBy weird", analystKey, report + "?" + day + "&groupBy=%25", "", 400},
		{"report buckets weird", analystKey, report + "?" + day + "&buckets=1e3", "", 400},
		{"report buckets huge", analystKey, report + "?" + day + "&buckets=99999999999999999999", "", 400},
		{"report buckets beyond a duration", analystKey, report + "?" + day + "&buckets=9223372036854775", "", 0},
		{"report shortAbandonSec=-1", analystKey, report + "?" + day + "&shortAbandonSec=-1", "", 400},
		{"report callbackWindow huge", analystKey, report + "?" + day + "&callbackWindow=P99999999999999999999D", "", 400},
		{"report callbackWindow overflowing", analystKey, report + "?" + day + "&callbackWindow=PT9223372036854775807S", "", 400},
		{"report queue wildcard", analystKey, report + "?" + day + "&queue=%25_%5C", "", 200},
		{"report queue long", analystKey, report + "?" + day + "&queue=" + long, "", 200},
		{"report year 0001 quarter-hourly in a zone of local mean time", analystKey, report + "?from=0001-01-01T00:00:00Z&to=0001-01-03T00:00:00Z&interval=PT15M&groupBy=hourOfDay,dayOfWeek&tz=Asia/Kolkata", "", 200},
		{"report year 0000", analystKey, report + "?from=0000-01-01T00:00:00Z&to=0000-01-03T00:00:00Z&interval=PT1H&tz=Australia/Lord_Howe", "", 200},
		{"report year 0000 in UTC", analystKey, report + "?from=0000-01-01T00:00:00Z&to=0000-01-01T03:00:00Z&interval=PT15M", "", 200},
		{"report year 9999 half-hourly at 45 minutes", analystKey, report + "?from=9999-12-20T00:00:00Z&to=9999-12-31T23:59:59.999999999Z&interval=PT30M&groupBy=hourOfDay&tz=Pacific/Chatham", "", 200},
		{"report year 9999 csv weekly ahead of UTC", analystKey, report + "?from=9999-12-01T00:00:00Z&to=9999-12-31T23:59:59Z&interval=P1W&tz=Pacific/Kiritimati", "text/csv", 200},
		{"report year 9999 to 10000 by offset", analystKey, report + "?from=9999-12-31T00:00:00Z&to=9999-12-31T23:00:00-12:00&interval=PT1H", "", 200},
		{"report year 9999 to 10000 by offset csv", analystKey, report + "?from=9999-12-31T00:00:00Z&to=9999-12-31T23:00:00-12:00&interval=PT1H", "text/csv", 200},
		{"report DST day quarter-hourly", analystKey, report + "?from=2024-03-30T00:00:00Z&to=2024-04-01T00:00:00Z&interval=PT15M&tz=Europe/London&groupBy=hourOfDay", "", 200},
		{"report five years weekly by everything", analystKey, report + "?from=2020-01-01T00:00:00Z&to=2024-12-31T00:00:00Z&interval=P1W&groupBy=queue,hourOfDay,dayOfWeek&tz=Australia/Adelaide", "", 400},
		{"report five years daily by everything csv", analystKey, report + "?from=2020-01-01T00:00:00Z&to=2024-12-31T00:00:00Z&groupBy=queue,hourOfDay,dayOfWeek", "text/csv", 400},
		{"report 31 days quarter-hourly by everything", analystKey, report + "?from=2024-03-01T00:00:00Z&to=2024-04-01T00:00:00Z&interval=PT15M&groupBy=queue,hourOfDay,dayOfWeek", "", 400},
		{"report twenty huge buckets", analystKey, report + "?" + day + "&buckets=" + hugeBuckets, "", 200},
		{"report callbackWindow P31D", analystKey, report + "?from=9999-12-30T00:00:00Z&to=9999-12-31T23:00:00Z&callbackWindow=P31D", "", 0},
		{"report year 0000 by hour and day", analystKey, report + "?from=0000-01-01T00:00:00Z&to=0000-03-01T00:00:00Z&interval=P1W&groupBy=hourOfDay,dayOfWeek&tz=Asia/Kolkata", "", 200},
		{"report year 0000 total csv", analystKey, report + "?from=0000-01-01T00:00:00Z&to=0000-03-01T00:00:00Z&interval=total&groupBy=queue", "text/csv", 200},
		{"report year 0000 half-hourly csv", analystKey, report + "?from=0000-01-01T00:00:00Z&to=0000-01-02T00:00:00Z&interval=PT30M&tz=America/St_Johns", "text/csv", 200},
		{"report year 0000 to 0001 daily", analystKey, report + "?from=0000-12-30T00:00:00Z&to=0001-01-02T00:00:00Z&tz=Pacific/Kiritimati", "", 200},
		{"contacts year 0000 by hour and day", analystKey, contacts + "?from=0000-01-01T00:00:00Z&to=0000-03-01T00:00:00Z&hourOfDay=0&dayOfWeek=Sunday&tz=Australia/Lord_Howe", "", 200},
		{"contacts year 0000 by hour csv", analystKey, contacts + "?from=0000-01-01T00:00:00Z&to=0000-01-03T00:00:00Z&hourOfDay=23&tz=Asia/Kolkata", "text/csv", 200},
		{"contacts year 9999 by hour", analystKey, contacts + "?from=9999-12-01T00:00:00Z&to=9999-12-31T23:59:59.999999999Z&hourOfDay=23&dayOfWeek=Friday&tz=Pacific/Kiritimati", "", 200},
		{"contacts queue long", analystKey, contacts + "?" + day + "&queue=" + long, "", 200},
		{"contacts queue wildcard csv", analystKey, contacts + "?" + day + "&queue=%25_%5C", "text/csv", 200},
		{"report callbackWindow PT", analystKey, report + "?" + day + "&callbackWindow=PT", "", 400},
		{"report callbackWindow P0D", analystKey, report + "?" + day + "&callbackWindow=P0D", "", 400},
		{"report callbackWindow P32D", analystKey, report + "?" + day + "&callbackWindow=P32D", "", 400},
		{"report buckets with a hole", analystKey, report + "?" + day + "&buckets=1,,2", "", 400},
		{"report buckets 21", analystKey, report + "?" + day + "&buckets=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21", "", 400},
		{"report groupBy empty item", analystKey, report + "?" + day + "&groupBy=queue,", "", 400},
		{"report accept long", analystKey, report + "?" + day, strings.Repeat("text/csv;q=0.5,", 500), 200},
		{"report year 9999 DST quarter-hourly", analystKey, report + "?from=9999-03-01T00:00:00Z&to=9999-03-31T00:00:00Z&interval=PT15M&groupBy=hourOfDay&tz=Europe/London", "", 200},
		{"report year 9999 DST hourly in a half-hour zone", analystKey, report + "?from=9999-01-01T00:00:00Z&to=9999-04-01T00:00:00Z&interval=PT1H&tz=Australia/Adelaide", "", 200},
		{"contacts year 9999 DST by hour", analystKey, contacts + "?from=9999-01-01T00:00:00Z&to=9999-12-31T00:00:00Z&hourOfDay=1&tz=Europe/London", "", 200},
		{"report csv", analystKey, report + "?" + day, "text/csv", 200},

		// report drill-down
		{"contacts without from", analystKey, contacts + "?to=2024-03-02T00:00:00Z", "", 400},
		{"contacts reversed", analystKey, contacts + "?from=2024-03-02T00:00:00Z&to=2024-03-01T00:00:00Z", "", 400},
		{"contacts year 0001", analystKey, contacts + "?from=0001-01-01T00:00:00Z&to=0001-01-02T00:00:00Z&tz=America/New_York&hourOfDay=3", "", 200},
		{"contacts year 9999", analystKey, contacts + "?from=9999-12-30T00:00:00Z&to=9999-12-31T23:59:59Z&callbackWindow=P31D", "", 200},
		{"contacts year 9999 csv", analystKey, contacts + "?from=9999-12-30T00:00:00Z&to=9999-12-31T23:59:59Z", "text/csv", 200},
		{"contacts 100 years", analystKey, contacts + "?from=1950-01-01T00:00:00Z&to=2050-01-01T00:00:00Z", "", 400},
		{"contacts five years by hour and day", analystKey, contacts + "?from=2020-01-01T00:00:00Z&to=2024-12-31T00:00:00Z&hourOfDay=3&dayOfWeek=Monday&tz=Australia/Adelaide", "", 0},
		{"contacts status weird", analystKey, contacts + "?" + day + "&status=%25", "", 400},
		{"contacts hourOfDay=24", analystKey, contacts + "?" + day + "&hourOfDay=24", "", 400},
		{"contacts hourOfDay=-1", analystKey, contacts + "?" + day + "&hourOfDay=-1", "", 400},
		{"contacts dayOfWeek weird", analystKey, contacts + "?" + day + "&dayOfWeek=Funday", "", 400},
		{"contacts tz Not/AZone", analystKey, contacts + "?" + day + "&tz=Not/AZone", "", 400},
		{"contacts cursor garbage", analystKey, contacts + "?" + day + "&cursor=garbage", "", 400},
		{"contacts cursor base64 garbage", analystKey, contacts + "?" + day + "&cursor=" + garbage, "", 400},
		{"contacts cursor json without filters", analystKey, contacts + "?" + day + "&cursor=" + garbageJSON, "", 400},
		{"contacts cursor of a timeline", analystKey, contacts + "?" + day + "&cursor=" + timelineCursor, "", 400},
		{"contacts cursor of other filters", analystKey, contacts + "?" + day + "&status=short&cursor=" + contactsCursor, "", 400},
		{"contacts own cursor", analystKey, contacts + "?" + day + "&limit=1&cursor=" + contactsCursor, "", 200},

		// cursors on listings
		{"timeline cursor forged without time", analystKey, "/v1/cases/case-1/timeline?cursor=" + forge(timelineCursor, map[string]any{"a": nil}), "", 400},
		{"timeline cursor forged year 0000", analystKey, "/v1/cases/case-1/timeline?cursor=" + forge(timelineCursor, map[string]any{"a": "0000-01-01T00:00:00Z"}), "", 200},
		{"timeline cursor forged year 9999", analystKey, "/v1/cases/case-1/timeline?cursor=" + forge(timelineCursor, map[string]any{"a": "9999-12-31T23:59:59.999999999-12:00"}), "", 200},
		{"timeline cursor forged time not RFC 3339", analystKey, "/v1/cases/case-1/timeline?cursor=" + forge(timelineCursor, map[string]any{"a": "yesterday"}), "", 400},
		{"timeline cursor forged id max", analystKey, "/v1/cases/case-1/timeline?cursor=" + forge(timelineCursor, map[string]any{"i": maxInt}), "", 0},
		{"timeline cursor forged id min", analystKey, "/v1/cases/case-1/timeline?order=asc&cursor=" + forge(timelineCursor, map[string]any{"i": minInt}), "", 0},
		{"timeline cursor forged id beyond int64", analystKey, "/v1/cases/case-1/timeline?cursor=" + forge(timelineCursor, map[string]any{"i": json.Number("9223372036854775808")}), "", 400},
		{"timeline cursor forged id text", analystKey, "/v1/cases/case-1/timeline?cursor=" + forge(timelineCursor, map[string]any{"i": "7"}), "", 400},
		{"timeline cursor forged with a log index", analystKey, "/v1/cases/case-1/timeline?cursor=" + forge(timelineCursor, map[string]any{"l": maxInt}), "", 0},
		{"feed cursor forged index max", analystKey, "/v1/events?cursor=" + forge(feedCursor, map[string]any{"l": maxInt}), "", 0},
		{"feed cursor forged index min", analystKey, "/v1/events?cursor=" + forge(feedCursor, map[string]any{"l": minInt}), "", 0},
		{"feed cursor forged index max streamed", analystKey, "/v1/events?cursor=" + forge(feedCursor, map[string]any{"l": maxInt}), "application/x-ndjson", 0},
		{"feed cursor forged index min streamed", analystKey, "/v1/events?cursor=" + forge(feedCursor, map[string]any{"l": minInt}), "application/x-ndjson", 0},
		{"feed cursor forged without index", analystKey, "/v1/events?cursor=" + forge(feedCursor, map[string]any{"l": nil}), "", 400},
		{"feed cursor forged with a time", analystKey, "/v1/events?cursor=" + forge(feedCursor, map[string]any{"a": "2024-03-01T00:00:00Z"}), "", 0},
		{"contacts cursor forged year 0001", analystKey, contacts + "?" + day + "&limit=1&cursor=" + forge(contactsCursor, map[string]any{"a": "0001-01-01T00:00:00Z"}), "", 200},
		{"contacts cursor forged year 9999", analystKey, contacts + "?" + day + "&limit=1&cursor=" + forge(contactsCursor, map[string]any{"a": "9999-12-31T23:59:59Z"}), "", 200},
		{"contacts cursor forged id max", analystKey, contacts + "?" + day + "&limit=1&cursor=" + forge(contactsCursor, map[string]any{"i": maxInt}), "", 0},
		{"contacts cursor forged id min", analystKey, contacts + "?" + day + "&limit=1&cursor=" + forge(contactsCursor, map[string]any{"i": minInt}), "", 0},
		{"contacts cursor forged without time", analystKey, contacts + "?" + day + "&limit=1&cursor=" + forge(contactsCursor, map[string]any{"a": nil}), "", 0},
		{"contacts cursor forged csv", analystKey, contacts + "?" + day + "&limit=1&cursor=" + forge(contactsCursor, map[string]any{"a": "9999-12-31T23:59:59Z"}), "text/csv", 0},
		{"timeline cursor garbage", analystKey, "/v1/cases/case-1/timeline?cursor=garbage", "", 400},
		{"timeline cursor base64 garbage", analystKey, "/v1/cases/case-1/timeline?cursor=" + garbage, "", 400},
		{"timeline cursor base64 json", analystKey, "/v1/cases/case-1/timeline?cursor=" + garbageJSON, "", 400},
		{"timeline cursor of another case", analystKey, "/v1/cases/case-2/timeline?cursor=" + timelineCursor, "", 400},
		{"timeline cursor of another order", analystKey, "/v1/cases/case-1/timeline?order=desc&cursor=" + timelineCursor, "", 400},
		{"timeline cursor of the feed", analystKey, "/v1/cases/case-1/timeline?cursor=" + feedCursor, "", 400},
		{"timeline cursor of the report", analystKey, "/v1/cases/case-1/timeline?cursor=" + contactsCursor, "", 400},
		{"timeline cursor long", analystKey, "/v1/cases/case-1/timeline?cursor=" + long, "", 400},
		{"timeline order weird", analystKey, "/v1/cases/case-1/timeline?order=sideways", "", 400},
		{"contact cursor of a case", analystKey, "/v1/contacts/%2B447700900101/timeline?cursor=" + timelineCursor, "", 400},
		{"feed cursor garbage", analystKey, "/v1/events?cursor=garbage", "", 400},
		{"feed cursor base64 garbage", analystKey, "/v1/events?cursor=" + garbage, "", 400},
		{"feed cursor base64 json", analystKey, "/v1/events?cursor=" + garbageJSON, "", 400},
		{"feed cursor of a timeline", analystKey, "/v1/events?cursor=" + timelineCursor, "", 400},
		{"feed cursor of other types", analystKey, "/v1/events?types=PAYMENT_ADDED&cursor=" + typedCursor, "", 400},
		{"feed cursor streamed", analystKey, "/v1/events?cursor=garbage", "application/x-ndjson", 400},
		{"feed own cursor", analystKey, "/v1/events?limit=2&cursor=" + feedCursor, "", 200},
		{"access-log cursor garbage", adminKey, "/v1/access-log?cursor=garbage", "", 400},
		{"access-log cursor -1", adminKey, "/v1/access-log?cursor=-1", "", 400},
		{"access-log cursor beyond int64", adminKey, "/v1/access-log?cursor=9223372036854775808", "", 400},
		{"access-log cursor of the feed", adminKey, "/v1/access-log?cursor=" + feedCursor, "", 400},
		{"access-log keyName wildcard", adminKey, "/v1/access-log?keyName=%25_%5C", "", 200},
		{"rejected cursor garbage", auditorKey, "/v1/rejected?cursor=garbage", "", 400},
		{"rejected cursor int64 max", auditorKey, "/v1/rejected?cursor=9223372036854775807", "", 200},
		{"rejected source wildcard", auditorKey, "/v1/rejected?source=%25_%5C", "", 200},
		{"checkpoints cursor garbage", analystKey, "/v1/log/checkpoints?cursor=garbage", "", 400},
		{"checkpoints from and cursor", analystKey, "/v1/log/checkpoints?from=1&cursor=1", "", 400},
		{"checkpoints from=-1", analystKey, "/v1/log/checkpoints?from=-1", "", 400},
		{"checkpoints from beyond int64", analystKey, "/v1/log/checkpoints?from=9223372036854775808", "", 400},
		{"checkpoints from int64 max", analystKey, "/v1/log/checkpoints?from=9223372036854775807", "", 200},

		// types
		{"feed types %", analystKey, "/v1/events?types=%25", "", 0},
		{"feed types _", analystKey, "/v1/events?types=_", "", 0},
		{"feed types backslash", analystKey, "/v1/events?types=%5C", "", 0},
		{"feed types all three", analystKey, "/v1/events?types=%25_%5C&types=%5C%25", "", 0},
		{"feed types long", analystKey, "/v1/events?types=" + longTypes, "", 0},
		{"feed types very long", analystKey, "/v1/events?types=" + long, "", 0},
		{"feed types many", analystKey, "/v1/events?" + strings.Repeat("types=X&", 2000), "", 0},
		{"feed types many wildcards", analystKey, "/v1/events?types=" + likeBomb, "", 0},
		{"feed types many wildcards streamed", analystKey, "/v1/events?types=" + likeBomb, "application/x-ndjson", 0},
		{"feed types only wildcards", analystKey, "/v1/events?types=" + strings.Repeat("*", 8000), "", 0},
		{"timeline types many wildcards", analystKey, "/v1/cases/case-1/timeline?types=" + likeBomb, "", 0},
		{"contact types many wildcards", analystKey, "/v1/contacts/%2B447700900101/timeline?types=" + likeBomb, "", 0},
		{"timeline types %", analystKey, "/v1/cases/case-1/timeline?types=%25", "", 0},
		{"timeline types long", analystKey, "/v1/cases/case-1/timeline?types=" + long, "", 0},
		{"feed source long", analystKey, "/v1/events?source=" + long, "", 200},
		{"rejected source long", adminKey, "/v1/rejected?source=" + long, "", 200},
		{"access-log keyName long", adminKey, "/v1/access-log?keyName=" + long, "", 200},
		{"feed source wildcard", analystKey, "/v1/events?source=%25", "", 200},
		{"feed bad escape", analystKey, "/v1/events?types=ORDER%", "", 400},
		{"feed semicolon", analystKey, "/v1/events?types=A;limit=2", "", 400},
		{"feed NUL", analystKey, "/v1/events?types=A%00", "", 400},
		{"feed invalid UTF-8", analystKey, "/v1/events?types=%FF", "", 400},

		// path values
		{"case id NUL", analystKey, "/v1/cases/case%00/timeline", "", 400},
		{"case id invalid UTF-8", analystKey, "/v1/cases/%C3%28/timeline", "", 400},
		{"case id unicode", analystKey, "/v1/cases/%E2%98%83%F0%9F%98%80/timeline", "", 200},
		{"case id very long", analystKey, "/v1/cases/" + long + "/timeline", "", 200},
		{"case id percent", analystKey, "/v1/cases/%25_%5C/timeline", "", 200},
		{"case id slash", analystKey, "/v1/cases/a%2Fb/timeline", "", 0},
		{"case id dot-dot", analystKey, "/v1/cases/../events", "", 0},
		{"contact NUL", analystKey, "/v1/contacts/%2B4477%00/timeline", "", 400},
		{"contact unicode digits", analystKey, "/v1/contacts/%D9%A1%D9%A2%D9%A3%D9%A4%D9%A5%D9%A6%D9%A7/timeline", "", 0},
		{"contact very long", analystKey, "/v1/contacts/" + strings.Repeat("9", 8000) + "/timeline", "", 0},
		{"contact very long plus", analystKey, "/v1/contacts/%2B" + strings.Repeat("4", 4000) + "/timeline", "", 0},
		{"contact percent", analystKey, "/v1/contacts/%25/timeline", "", 0},
		{"case id empty", analystKey, "/v1/cases//timeline", "", 400},
		{"case id space", analystKey, "/v1/cases/%20/timeline", "", 200},
		{"contact empty", analystKey, "/v1/contacts//timeline", "", 400},
		{"contact space", analystKey, "/v1/contacts/%20/timeline", "", 200},
		{"contact plus only", analystKey, "/v1/contacts/%2B/timeline", "", 200},
		{"event empty", analystKey, "/v1/events/", "", 200},
		{"event plus sign", analystKey, "/v1/events/%2B1", "", 0},
		{"event leading zeros", analystKey, "/v1/events/000" + event, "", 0},
		{"event hex", analystKey, "/v1/events/0x1", "", 404},
		{"event underscore", analystKey, "/v1/events/1_0", "", 404},
		{"rejected id empty", adminKey, "/v1/rejected/", "", 200},
		{"blob empty", auditorKey, "/v1/blobs/", "", 404},
		{"event not a number", analystKey, "/v1/events/abc", "", 404},
		{"event negative", analystKey, "/v1/events/-1", "", 404},
		{"event zero", analystKey, "/v1/events/0", "", 404},
		{"event beyond int64", analystKey, "/v1/events/9223372036854775808", "", 404},
		{"event int64 max", analystKey, "/v1/events/9223372036854775807", "", 404},
		{"event NUL", analystKey, "/v1/events/1%00", "", 400},
		{"event unicode digits", analystKey, "/v1/events/%D9%A1", "", 404},
		{"event very long", analystKey, "/v1/events/" + strings.Repeat("1", 8000), "", 404},
		{"event as csv", analystKey, "/v1/events/" + event, "text/csv", 0},
		{"blob not hex", auditorKey, "/v1/blobs/zz", "", 404},
		{"blob short", auditorKey, "/v1/blobs/abcd", "", 404},
		{"blob unknown", auditorKey, "/v1/blobs/" + strings.Repeat("ab", 32), "", 404},
		{"blob very long", auditorKey, "/v1/blobs/" + strings.Repeat("ab", 4000), "", 404},
		{"rejected id not a number", adminKey, "/v1/rejected/abc", "", 404},
		{"rejected id negative", adminKey, "/v1/rejected/-1", "", 404},
		{"rejected id beyond int64", adminKey, "/v1/rejected/9223372036854775808", "", 404},
		{"rejected id int64 max", adminKey, "/v1/rejected/9223372036854775807", "", 404},

		// proofs
		{"inclusion without event", analystKey, "/v1/log/proof/inclusion", "", 400},
		{"inclusion event abc", analystKey, "/v1/log/proof/inclusion?event=abc", "", 400},
		{"inclusion event negative", analystKey, "/v1/log/proof/inclusion?event=-1", "", 400},
		{"inclusion event zero", analystKey, "/v1/log/proof/inclusion?event=0", "", 404},
		{"inclusion event beyond int64", analystKey, "/v1/log/proof/inclusion?event=9223372036854775808", "", 400},
		{"inclusion event int64 max", analystKey, "/v1/log/proof/inclusion?event=9223372036854775807", "", 404},
		{"inclusion size=0", analystKey, "/v1/log/proof/inclusion?event=" + event + "&size=0", "", 400},
		{"inclusion size=-1", analystKey, "/v1/log/proof/inclusion?event=" + event + "&size=-1", "", 400},
		{"inclusion size=1", analystKey, "/v1/log/proof/inclusion?event=" + event + "&size=1", "", 0},
		{"inclusion size beyond tree", analystKey, fmt.Sprintf("/v1/log/proof/inclusion?event=%s&size=%d", event, st.Size+1), "", 400},
		{"inclusion size int64 max", analystKey, "/v1/log/proof/inclusion?event=" + event + "&size=9223372036854775807", "", 400},
		{"inclusion size beyond int64", analystKey, "/v1/log/proof/inclusion?event=" + event + "&size=9223372036854775808", "", 400},
		{"inclusion size=1e3", analystKey, "/v1/log/proof/inclusion?event=" + event + "&size=1e3", "", 400},
		{"inclusion repeated event", analystKey, "/v1/log/proof/inclusion?event=" + event + "&event=abc", "", 0},
		{"inclusion as csv", analystKey, "/v1/log/proof/inclusion?event=" + event, "text/csv", 0},
		{"consistency missing", analystKey, "/v1/log/proof/consistency", "", 400},
		{"consistency without to", analystKey, "/v1/log/proof/consistency?from=1", "", 400},
		{"consistency from>to", analystKey, "/v1/log/proof/consistency?from=5&to=2", "", 400},
		{"consistency from=0", analystKey, fmt.Sprintf("/v1/log/proof/consistency?from=0&to=%d", st.Size), "", 0},
		{"consistency from=to", analystKey, fmt.Sprintf("/v1/log/proof/consistency?from=%d&to=%d", st.Size, st.Size), "", 0},
		{"consistency from=-1", analystKey, "/v1/log/proof/consistency?from=-1&to=2", "", 400},
		{"consistency to beyond tree", analystKey, fmt.Sprintf("/v1/log/proof/consistency?from=1&to=%d", st.Size+1), "", 400},
		{"consistency to int64 max", analystKey, "/v1/log/proof/consistency?from=1&to=9223372036854775807", "", 400},
		{"consistency both int64 max", analystKey, "/v1/log/proof/consistency?from=9223372036854775807&to=9223372036854775807", "", 400},
		{"consistency beyond int64", analystKey, "/v1/log/proof/consistency?from=1&to=9223372036854775808", "", 400},
		{"consistency 0 to 0", analystKey, "/v1/log/proof/consistency?from=0&to=0", "", 200},
		{"consistency 1 to 1", analystKey, "/v1/log/proof/consistency?from=1&to=1", "", 200},
		{"consistency from beyond tree", analystKey, fmt.Sprintf("/v1/log/proof/consistency?from=%d&to=%d", st.Size+1, st.Size+1), "", 400},
		{"consistency repeated", analystKey, "/v1/log/proof/consistency?from=1&from=x&to=2&to=-1", "", 200},
		{"inclusion size just past the leaf", analystKey, fmt.Sprintf("/v1/log/proof/inclusion?event=%s&size=%d", event, leaf+1), "", 200},
		{"inclusion size at the leaf", analystKey, fmt.Sprintf("/v1/log/proof/inclusion?event=%s&size=%d", event, leaf), "", 400},
		{"consistency as csv", analystKey, "/v1/log/proof/consistency?from=1&to=2", "text/csv", 0},

		// Accept: text/csv and others where JSON is the only answer
		{"timeline as csv", analystKey, "/v1/cases/case-1/timeline", "text/csv", 0},
		{"feed as csv", analystKey, "/v1/events", "text/csv", 0},
		{"access-log as csv", adminKey, "/v1/access-log", "text/csv", 0},
		{"rejected as csv", adminKey, "/v1/rejected", "text/csv", 0},
		{"checkpoints as csv", analystKey, "/v1/log/checkpoints", "text/csv", 0},
		{"checkpoint as csv", analystKey, "/v1/log/checkpoint", "text/csv", 0},
		{"key as csv", analystKey, "/v1/log/key", "text/csv", 0},
		{"no key, hostile query", "", "/v1/events?limit=%FF&cursor=%00", "", 401},
		{"unknown key, hostile path", "not-a-key-0123456789", "/v1/cases/%00/timeline", "", 401},
		{"analyst asks for a blob", analystKey, "/v1/blobs/zz", "", 403},
		{"analyst asks for the access log", analystKey, "/v1/access-log?cursor=garbage", "", 403},
		{"feed streamed limit=0", analystKey, "/v1/events?limit=0", "application/x-ndjson", 0},
		{"feed streamed reversed", analystKey, "/v1/events?from=2024-03-02T00:00:00Z&to=2024-03-01T00:00:00Z", "application/x-ndjson", 400},
		{"feed streamed from not RFC 3339", analystKey, "/v1/events?from=x", "application/x-ndjson", 400},
		{"feed streamed year 0001 to 9999", analystKey, "/v1/events?from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59-12:00", "application/x-ndjson", 200},
		{"feed odd accept", analystKey, "/v1/events", "application/x-ndjson;q=abc, */*;q=-1", 0},
		{"report odd accept", analystKey, report + "?" + day, "text/csv;q=NaN", 0},
	}

	// Auditors see PHI and have every request recorded first: each request
	// an analyst may make is sent as an auditor too.
	for _, tc := range cases {
		if tc.key == analystKey && tc.want != http.StatusForbidden {
			tc.key, tc.name = auditorKey, tc.name+" (auditor)"
			cases = append(cases, tc)
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := b.sweep(t, tc.key, tc.path, tc.accept)
			require.Less(t, res.status, 500, "%s: %s", tc.path, res.body)
			if tc.want != 0 {
				require.Equal(t, tc.want, res.status, "%s: %s", tc.path, res.body)
			}
			if res.status >= 400 {
				require.Equal(t, "application/problem+json", res.header.Get("Content-Type"), "%s: %s", tc.path, res.body)
				p := res.json(t)
				require.NotEmpty(t, p["detail"], tc.path)
				require.EqualValues(t, res.status, p["status"], tc.path)
			} else {
				require.GreaterOrEqual(t, res.status, 200, tc.path)
				// A 2xx answer is whole: JSON that parses, CSV whose
				// rows all have the header's width.
				switch ct := res.header.Get("Content-Type"); {
				case strings.HasPrefix(ct, "application/json"):
					require.True(t, json.Valid(res.body), "%s: %s", tc.path, res.body)
				case strings.HasPrefix(ct, "application/x-ndjson"):
					for _, line := range bytes.Split(bytes.TrimSpace(res.body), []byte("\n")) {
						require.True(t, json.Valid(line), "%s: %s", tc.path, line)
					}
				case strings.HasPrefix(ct, "text/csv"):
					_, err := csv.NewReader(bytes.NewReader(res.body)).ReadAll()
					require.NoError(t, err, "%s: %s", tc.path, res.body)
				}
			}
		})
	}

	// Every one of those requests an auditor made is in the access log,
	// and an admin can read all of it, masked.
	path, pages := "/v1/access-log?limit=500", 0
	for ; ; pages++ {
		require.Less(t, pages, 100)
		res := b.sweep(t, adminKey, path, "")
		require.Equal(t, 200, res.status, string(res.body))
		require.True(t, json.Valid(res.body))
		next, _ := res.json(t)["page"].(map[string]any)["nextCursor"].(string)
		if next == "" {
			break
		}
		path = "/v1/access-log?limit=500&cursor=" + url.QueryEscape(next)
	}
	require.Equal(t, 200, b.sweep(t, adminKey, "/v1/access-log?keyName=bob&limit=1", "").status)
}

// sweep sends a GET whose path and query are sent exactly as written.
func (b *testBundle) sweep(t *testing.T, key, path, accept string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.url+"/", nil)
	require.NoError(t, err)
	asWritten(req, path)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	return roundTrip(t, req, false)
}
