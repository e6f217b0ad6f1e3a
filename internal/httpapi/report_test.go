package httpapi_test

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/casetrail/casetrail/internal/config"
)

type reportMetrics struct {
	Abandoned          int `json:"abandoned"`
	ShortAbandoned     int `json:"shortAbandoned"`
	AbandonedExclShort int `json:"abandonedExclShort"`
	UniqueCallers      int `json:"uniqueCallers"`
	RepeatAbandoners   int `json:"repeatAbandoners"`
	TimeInQueue        struct {
		Count         int
		Sum           float64
		Avg, Min, Max *float64
		P50, P90, P95 *float64
	} `json:"timeInQueue"`
	DurationBuckets []struct {
		Label string
		Count int
	} `json:"durationBuckets"`
	CalledBack     int      `json:"calledBack"`
	NotCalledBack  int      `json:"notCalledBack"`
	CalledBackRate *float64 `json:"calledBackRate"`
	TimeToCallback struct {
		Avg, P50, P90 *float64
	} `json:"timeToCallback"`
	HandledInbound       *int     `json:"handledInbound"`
	AbandonRateEstimated *float64 `json:"abandonRateEstimated"`
}

type reportBody struct {
	Definitions map[string]string `json:"definitions"`
	DataAsOf    *time.Time        `json:"dataAsOf"`
	Results     []struct {
		Group     map[string]any   `json:"group"`
		Intervals []reportInterval `json:"intervals"`
	} `json:"results"`
	Totals reportMetrics `json:"totals"`
}

type reportInterval struct {
	Start, End string
	reportMetrics
}

func f(v float64) *float64 { return &v }

// merged is base with extra's parameters set over it.
func merged(base, extra url.Values) url.Values {
	q := url.Values{}
	for k, v := range base {
		q[k] = v
	}
	for k, v := range extra {
		q[k] = v
	}
	return q
}

// report reads the abandonment report for q as an analyst.
func (b *testBundle) report(t *testing.T, q url.Values) reportBody {
	t.Helper()
	res := b.read(t, analystKey, "/v1/reports/abandonment?"+q.Encode())
	require.Equal(t, 200, res.status, string(res.body))
	var r reportBody
	require.NoError(t, json.Unmarshal(res.body, &r))
	return r
}

// abandonFixture ingests the data set described in TestAbandonmentReport.
func abandonFixture(t *testing.T, b *testBundle) (lateID string) {
	hook := func(event, body string) string {
		res := b.signed(t, config.KindServiceHooks, event, []byte(body), nil)
		require.Equal(t, 200, res.status, string(res.body))
		return res.json(t)["id"].(string)
	}
	abandon := func(phone, queue string, tiq any, at string) string {
		raw, _ := json.Marshal(map[string]any{"customerPhoneNumber": phone, "queue": queue, "timeInQueue": tiq, "timestamp": at})
		return hook("abandoned-conversation", string(raw))
	}
	call := func(phone, agent, at string) {
		hook("outbound-call", fmt.Sprintf(`{"agentID":%q,"targetPhoneNumber":%q,"Timestamp":%q}`, agent, phone, at))
	}
	call("+447700900001", "agent-6", "2024-03-31T00:00:00Z")                     // before A1: not a callback
	call("+447700900001", "agent-7", "2024-03-31T10:00:00Z")                     // first callback of A1 and A2
	call("+447700900002", "agent-8", "2024-03-31T12:30:00Z")                     // A3 after 30 min
	call("+447700900004", "agent-9", "2024-04-01T16:00:00Z")                     // A5 after 25 h: outside PT24H
	abandon("07700 900001", "Sales", 5, "2024-03-31T00:30:00Z")                  // A1 short
	abandon("+44 7700 900001", "Sales", 10, "2024-03-31T09:15:00Z")              // A2 at the threshold: not short
	abandon("0044 7700 900001", "Sales", "10s", "2024-03-31T09:15:00Z")          // A2 again, written otherwise: counted once
	abandon("+44 (7700) 900-002", "Support", "00:01:05", "2024-03-31T12:00:00Z") // A3
	abandon("07700900003", "Support", 9, "2024-03-31T23:30:00Z")                 // A4: 00:30 BST on 1 April
	abandon("+447700900004", "Sales", 120, "2024-03-31T15:00:00Z")               // A5
	work := func(id string, outbound bool, closed string) {
		hook("workitem-closed", fmt.Sprintf(`{"id":%q,"isOutbound":%t,"closedAt":%q}`, id, outbound, closed))
	}
	work("w1", false, "2024-03-31T12:05:00Z")
	work("w2", false, "2024-03-31T13:00:00Z")
	work("w3", true, "2024-03-31T14:00:00Z") // outbound: not handled inbound
	work("w4", false, "2024-04-01T10:00:00Z")
	return abandon("+447700900005", "Sales", 30, "2024-03-31T08:00:00Z") // A6, arriving late
}

func TestAbandonmentReport(t *testing.T) {
	t.Parallel()
	b := setup(t, readKeysOpt, func(o *setupOpts) { o.countryCode = "44" })
	lateID := abandonFixture(t, b)

	base := url.Values{"from": {"2024-03-31T00:00:00Z"}, "to": {"2024-04-02T00:00:00+01:00"}, "tz": {"Europe/London"}, "interval": {"P1D"}}
	get := func(extra url.Values) reportBody { return b.report(t, merged(base, extra)) }

	r := get(nil)
	require.Len(t, r.Results, 1)
	days := r.Results[0].Intervals
	require.Len(t, days, 2)
	require.Equal(t, "2024-03-31T00:00:00Z", days[0].Start)
	require.Equal(t, "2024-04-01T00:00:00+01:00", days[0].End, "the spring-forward day lasts 23 hours")
	require.Equal(t, "2024-04-02T00:00:00+01:00", days[1].End)

	d1 := days[0].reportMetrics
	require.Equal(t, 5, d1.Abandoned) // A1, A6, A2 (once), A3, A5
	require.Equal(t, 1, d1.ShortAbandoned)
	require.Equal(t, 4, d1.AbandonedExclShort)
	require.Equal(t, 4, d1.UniqueCallers)
	require.Equal(t, 1, d1.RepeatAbandoners)
	require.Equal(t, 5, d1.TimeInQueue.Count)
	require.Equal(t, 230.0, d1.TimeInQueue.Sum) // 5+30+10+65+120
	require.Equal(t, f(46), d1.TimeInQueue.Avg)
	require.Equal(t, f(5), d1.TimeInQueue.Min)
	require.Equal(t, f(120), d1.TimeInQueue.Max)
	require.Equal(t, f(30), d1.TimeInQueue.P50) // nearest rank 3 of 5,10,30,65,120
	require.Equal(t, f(120), d1.TimeInQueue.P90)
	require.Equal(t, f(120), d1.TimeInQueue.P95)
	counts := []int{}
	for _, bk := range d1.DurationBuckets {
		counts = append(counts, bk.Count)
	}
	require.Equal(t, []int{2, 1, 0, 2, 0, 0}, counts) // (0,10] (10,30] (30,60] (60,120] (120,300] >300
	require.Equal(t, 3, d1.CalledBack)                // A1 after 9.5 h, A2 after 45 min, A3 after 30 min
	require.Equal(t, 2, d1.NotCalledBack)
	require.Equal(t, f(0.6), d1.CalledBackRate)
	require.Equal(t, f(12900), d1.TimeToCallback.Avg) // (34200+2700+1800)/3
	require.Equal(t, f(2700), d1.TimeToCallback.P50)
	require.Equal(t, f(34200), d1.TimeToCallback.P90)
	require.Equal(t, 2, *d1.HandledInbound)
	require.InDelta(t, 5.0/7, *d1.AbandonRateEstimated, 1e-12)

	d2 := days[1].reportMetrics
	require.Equal(t, 1, d2.Abandoned)
	require.Equal(t, 1, d2.ShortAbandoned)
	require.Equal(t, f(9), d2.TimeInQueue.P50)
	require.Equal(t, 0, d2.CalledBack)
	require.Equal(t, f(0), d2.CalledBackRate)
	require.Nil(t, d2.TimeToCallback.Avg)
	require.Equal(t, 1, *d2.HandledInbound)
	require.Equal(t, f(0.5), d2.AbandonRateEstimated)

	require.Equal(t, 6, r.Totals.Abandoned)
	require.Equal(t, 2, r.Totals.ShortAbandoned)
	require.Equal(t, 5, r.Totals.UniqueCallers)
	require.Equal(t, 3, *r.Totals.HandledInbound)
	require.NotEmpty(t, r.Definitions["abandonRateEstimated"])

	// dataAsOf is the receipt time of the late abandon, received last.
	res := b.read(t, auditorKey, "/v1/events/"+lateID)
	var late struct{ ReceivedAt time.Time }
	require.NoError(t, json.Unmarshal(res.body, &late))
	require.NotNil(t, r.DataAsOf)
	require.True(t, late.ReceivedAt.Equal(*r.DataAsOf))

	// With a queue filter work items are not counted, and their closes,
	// received after Support's last abandon, do not move dataAsOf.
	var lastSupport, lastClose time.Time
	b.sequence(t) // the feed lists logged events
	for _, e := range b.walk(t, auditorKey, "/v1/events", url.Values{"limit": {"100"}}) {
		var row struct {
			ReceivedAt time.Time `json:"receivedAt"`
		}
		require.NoError(t, json.Unmarshal(b.read(t, auditorKey, "/v1/events/"+e.ID).body, &row))
		switch {
		case e.Type == "abandoned-conversation" && e.Data["queue"] == "Support":
			lastSupport = row.ReceivedAt
		case e.Type == "workitem-closed":
			lastClose = row.ReceivedAt
		}
	}
	require.True(t, lastClose.After(lastSupport), "the fixture receives the closes after Support's abandons: %v %v", lastClose, lastSupport)
	support := get(url.Values{"queue": {"Support"}})
	require.Nil(t, support.Totals.HandledInbound)
	require.NotNil(t, support.DataAsOf)
	require.True(t, lastSupport.Equal(*support.DataAsOf), "dataAsOf %v, Support's last abandon %v", *support.DataAsOf, lastSupport)

	// A wider callback window catches A5's call 25 hours later.
	wide := get(url.Values{"callbackWindow": {"PT26H"}})
	require.Equal(t, 4, wide.Results[0].Intervals[0].CalledBack)

	// By queue: work items have no queue, so they are null per queue.
	byQueue := get(url.Values{"groupBy": {"queue"}})
	require.Len(t, byQueue.Results, 2)
	require.Equal(t, "Sales", byQueue.Results[0].Group["queue"])
	sales := byQueue.Results[0].Intervals[0]
	require.Equal(t, 4, sales.Abandoned)
	require.Equal(t, 3, sales.UniqueCallers)
	require.Nil(t, sales.HandledInbound)
	require.Nil(t, sales.AbandonRateEstimated)
	require.Equal(t, "Support", byQueue.Results[1].Group["queue"])
	require.Equal(t, 1, byQueue.Results[1].Intervals[0].Abandoned)
	require.Equal(t, 1, byQueue.Results[1].Intervals[1].Abandoned)
	require.Equal(t, 3, *byQueue.Totals.HandledInbound)

	// One queue: its abandons, and no handled count or rate, which would
	// set them against every queue's work items.
	sales1 := get(url.Values{"queue": {"Sales"}})
	require.Len(t, sales1.Results, 1)
	require.Equal(t, 4, sales1.Results[0].Intervals[0].Abandoned)
	require.Nil(t, sales1.Results[0].Intervals[0].HandledInbound)
	require.Nil(t, sales1.Results[0].Intervals[0].AbandonRateEstimated)
	require.Equal(t, 4, sales1.Totals.Abandoned-sales1.Results[0].Intervals[1].Abandoned)
	require.Nil(t, sales1.Totals.HandledInbound)
	require.Nil(t, sales1.Totals.AbandonRateEstimated)
	require.Contains(t, sales1.Definitions["handledInbound"], "with a queue filter")

	// Quarter-hours: 92 on the spring-forward day, 100 on the fall-back day,
	// empty ones present with zeros.
	q15 := get(url.Values{"interval": {"PT15M"}, "to": {"2024-04-01T00:00:00+01:00"}})
	require.Len(t, q15.Results[0].Intervals, 92)
	require.Equal(t, 1, q15.Results[0].Intervals[2].Abandoned) // 00:30-00:45: A1
	require.Equal(t, 0, q15.Results[0].Intervals[3].Abandoned)
	fall := get(url.Values{"interval": {"PT15M"}, "from": {"2024-10-27T00:00:00+01:00"}, "to": {"2024-10-28T00:00:00Z"}})
	require.Len(t, fall.Results[0].Intervals, 100)
	fallDay := get(url.Values{"from": {"2024-10-27T00:00:00+01:00"}, "to": {"2024-10-28T00:00:00Z"}})
	require.Len(t, fallDay.Results[0].Intervals, 1)

	// CSV says the same as JSON.
	req, _ := http.NewRequest(http.MethodGet, b.url+"/v1/reports/abandonment?"+func() string {
		q := url.Values{"groupBy": {"queue"}}
		for k, v := range base {
			q[k] = v
		}
		return q.Encode()
	}(), nil)
	req.Header.Set("Authorization", "Bearer "+analystKey)
	req.Header.Set("Accept", "text/csv")
	httpRes, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer httpRes.Body.Close()
	require.Equal(t, "text/csv; charset=utf-8", httpRes.Header.Get("Content-Type"))
	rows, err := csv.NewReader(httpRes.Body).ReadAll()
	require.NoError(t, err)
	head := rows[0]
	col := func(name string) int {
		for i, h := range head {
			if h == name {
				return i
			}
		}
		t.Fatalf("no column %s", name)
		return -1
	}
	require.Len(t, rows, 1+4+1) // 2 queues x 2 days, and the totals
	i := 1
	for _, g := range byQueue.Results {
		for _, iv := range g.Intervals {
			row := rows[i]
			require.Equal(t, "interval", row[col("row")])
			require.Equal(t, g.Group["queue"], row[col("queue")])
			require.Equal(t, iv.Start, row[col("start")])
			require.Equal(t, strconv.Itoa(iv.Abandoned), row[col("abandoned")])
			require.Equal(t, strconv.Itoa(iv.CalledBack), row[col("calledBack")])
			p50 := ""
			if iv.TimeInQueue.P50 != nil {
				p50 = strconv.FormatFloat(*iv.TimeInQueue.P50, 'f', -1, 64)
			}
			require.Equal(t, p50, row[col("timeInQueueP50")])
			require.Equal(t, "", row[col("handledInbound")])
			i++
		}
	}
	// The totals, which alone carry the handled count and the rate by queue.
	total := rows[i]
	require.Equal(t, "total", total[col("row")])
	require.Equal(t, "", total[col("queue")])
	require.Equal(t, "2024-03-31T00:00:00Z", total[col("start")])
	require.Equal(t, "2024-04-02T00:00:00+01:00", total[col("end")])
	require.Equal(t, strconv.Itoa(byQueue.Totals.Abandoned), total[col("abandoned")])
	require.Equal(t, strconv.Itoa(*byQueue.Totals.HandledInbound), total[col("handledInbound")])
	require.Equal(t, strconv.FormatFloat(*byQueue.Totals.AbandonRateEstimated, 'f', -1, 64), total[col("abandonRateEstimated")])
	require.Equal(t, strconv.Itoa(byQueue.Totals.UniqueCallers), total[col("uniqueCallers")])

	// A range that starts or ends inside an interval labels its first and
	// last cells with what they count, so that a cell's start and end, as
	// from and to, list its abandons.
	noon := get(url.Values{"from": {"2024-03-31T09:00:00+01:00"}, "to": {"2024-04-01T12:00:00+01:00"}})
	require.Len(t, noon.Results[0].Intervals, 2)
	first, last := noon.Results[0].Intervals[0], noon.Results[0].Intervals[1]
	require.Equal(t, "2024-03-31T09:00:00+01:00", first.Start)
	require.Equal(t, "2024-04-01T00:00:00+01:00", first.End)
	require.Equal(t, "2024-04-01T00:00:00+01:00", last.Start)
	require.Equal(t, "2024-04-01T12:00:00+01:00", last.End)
	for _, cell := range []reportInterval{first, last} {
		res := b.read(t, analystKey, "/v1/reports/abandonment/contacts?"+url.Values{"from": {cell.Start}, "to": {cell.End}, "tz": {"Europe/London"}}.Encode())
		require.Equal(t, 200, res.status, string(res.body))
		require.Len(t, res.json(t)["data"], cell.Abandoned, cell.Start)
	}
	require.Equal(t, 4, first.Abandoned) // A6 (at 09:00 BST, the range's start), A2, A3, A5; not A1
	require.Equal(t, 1, last.Abandoned)  // A4

	// Bad requests are refused, not run slowly.
	for _, bad := range []url.Values{
		{"from": {""}},
		{"interval": {"PT15M"}, "to": {"2024-05-15T00:00:00Z"}}, // 45 days of quarter-hours
		{"tz": {"Mars/Olympus"}},
		{"groupBy": {"colour"}},
		{"callbackWindow": {"soon"}},
		{"buckets": {"30,10"}},
	} {
		q := merged(base, bad)
		res := b.read(t, analystKey, "/v1/reports/abandonment?"+q.Encode())
		require.Equal(t, 400, res.status, q.Encode())
	}
}

// Every cell of a report is answered and held until written, so a report of
// too many is refused before it is built: by its hours and days before the
// abandons are read, by the queues they name after. A report by queue of a
// range without abandons has no groups: [], not null.
// A range before 1970 is a report like any other (its quarter-hours were
// once aligned past its start, and reading the work items panicked in a
// goroutine, which ended the process).
func TestAbandonmentReportBefore1970(t *testing.T) {
	t.Parallel()
	b := withReadKeys(t)
	for _, interval := range []string{"PT15M", "PT1H", "total"} {
		q := url.Values{"from": {"1969-12-31T23:50:00Z"}, "to": {"1969-12-31T23:55:00Z"}, "interval": {interval}}
		res := b.read(t, analystKey, "/v1/reports/abandonment?"+q.Encode())
		require.Equal(t, 200, res.status, string(res.body))
		results := res.json(t)["results"].([]any)
		require.Len(t, results, 1, interval)
		cell := results[0].(map[string]any)["intervals"].([]any)[0].(map[string]any)
		require.LessOrEqual(t, cell["start"], "1969-12-31T23:50:00Z", interval)
		require.Greater(t, cell["end"], "1969-12-31T23:50:00Z", interval)
	}
}

func TestAbandonmentReportSize(t *testing.T) {
	t.Parallel()
	b := withReadKeys(t)
	get := func(q url.Values) response {
		res := b.read(t, analystKey, "/v1/reports/abandonment?"+q.Encode())
		return res
	}
	month := url.Values{"from": {"2024-03-01T00:00:00Z"}, "to": {"2024-04-01T00:00:00Z"}, "interval": {"PT15M"}}
	with := func(q url.Values, k, v string) url.Values {
		out := url.Values{k: {v}}
		for k, v := range q {
			if out[k] == nil {
				out[k] = v
			}
		}
		return out
	}

	res := get(with(month, "groupBy", "queue"))
	require.Equal(t, 200, res.status, string(res.body))
	require.Contains(t, string(res.body), `"results":[]`)

	// 168 hours of the week over 2,976 quarter-hours.
	res = get(with(month, "groupBy", "hourOfDay,dayOfWeek"))
	require.Equal(t, 400, res.status)
	require.Contains(t, res.json(t)["detail"], "groupBy")
	require.Contains(t, res.json(t)["detail"], "499968 cells")

	// 33 queues over 2,976 quarter-hours are 98,208 cells; 34 are 101,184.
	for i := range 34 {
		raw, _ := json.Marshal(map[string]any{"customerPhoneNumber": fmt.Sprintf("+4477009%05d", i),
			"queue": fmt.Sprintf("queue-%02d", i), "timeInQueue": 30, "timestamp": "2024-03-10T09:00:00Z"})
		res := b.signed(t, config.KindServiceHooks, "abandoned-conversation", raw, nil)
		require.Equal(t, 200, res.status, string(res.body))
	}
	res = get(with(month, "groupBy", "queue"))
	require.Equal(t, 400, res.status, "34 queues")
	require.Contains(t, res.json(t)["detail"], "34 groups over 2976 intervals")
	res = get(with(with(month, "groupBy", "queue"), "queue", "queue-07"))
	require.Equal(t, 200, res.status, "one queue")
	day := with(with(month, "to", "2024-03-11T00:00:00Z"), "from", "2024-03-10T00:00:00Z")
	res = get(with(day, "groupBy", "queue"))
	require.Equal(t, 200, res.status, "34 queues over a day")
	var r reportBody
	require.NoError(t, json.Unmarshal(res.body, &r))
	require.Len(t, r.Results, 34)
	require.Equal(t, 34, r.Totals.Abandoned)
}

func TestAbandonmentContacts(t *testing.T) {
	t.Parallel()
	b := setup(t, readKeysOpt, func(o *setupOpts) { o.countryCode = "44" })
	abandonFixture(t, b)
	day1 := url.Values{"from": {"2024-03-31T00:00:00Z"}, "to": {"2024-04-01T00:00:00+01:00"}, "tz": {"Europe/London"}}
	type contacts struct {
		Data []struct {
			At       string
			Queue    string
			Phone    string
			Short    bool
			Status   string
			Callback *struct {
				At       string
				AgentID  string
				DelaySec float64
				Attempts int
			}
		}
		Page struct {
			NextCursor *string
			HasMore    bool
		}
	}
	list := func(key string, extra url.Values) contacts {
		q := url.Values{}
		for k, v := range day1 {
			q[k] = v
		}
		for k, v := range extra {
			q[k] = v
		}
		res := b.read(t, key, "/v1/reports/abandonment/contacts?"+q.Encode())
		require.Equal(t, 200, res.status, string(res.body))
		var c contacts
		require.NoError(t, json.Unmarshal(res.body, &c))
		return c
	}
	notCalled := list(analystKey, url.Values{"status": {"not_called_back"}})
	require.Len(t, notCalled.Data, 2)
	require.Equal(t, "2024-03-31T09:00:00+01:00", notCalled.Data[0].At) // A6, 08:00Z
	require.Equal(t, "2024-03-31T16:00:00+01:00", notCalled.Data[1].At) // A5, 15:00Z
	require.Equal(t, "+44*******004", notCalled.Data[1].Phone, "masked for analysts")

	short := list(analystKey, url.Values{"status": {"short"}})
	require.Len(t, short.Data, 1)
	require.Equal(t, "2024-03-31T00:30:00Z", short.Data[0].At)

	page1 := list(auditorKey, url.Values{"status": {"called_back"}, "limit": {"2"}})
	require.Len(t, page1.Data, 2)
	require.True(t, page1.Page.HasMore)
	require.Equal(t, "+447700900001", page1.Data[0].Phone, "auditors see the number")
	require.Equal(t, "agent-7", page1.Data[0].Callback.AgentID)
	require.Equal(t, 34200.0, page1.Data[0].Callback.DelaySec)
	require.Equal(t, 1, page1.Data[0].Callback.Attempts)
	page2 := list(auditorKey, url.Values{"status": {"called_back"}, "limit": {"2"}, "cursor": {*page1.Page.NextCursor}})
	require.Len(t, page2.Data, 1)
	require.False(t, page2.Page.HasMore)
	require.Equal(t, "agent-8", page2.Data[0].Callback.AgentID)

	res := b.read(t, analystKey, "/v1/reports/abandonment/contacts?"+day1.Encode()+"&status=not_called_back&cursor="+url.QueryEscape(*page1.Page.NextCursor))
	require.Equal(t, 400, res.status, "a cursor is bound to its filters")

	// As CSV, a page links to the next one.
	csvPage := func(path string) ([][]string, string) {
		req, err := http.NewRequest(http.MethodGet, b.url+path, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+auditorKey)
		req.Header.Set("Accept", "text/csv")
		httpRes, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer httpRes.Body.Close()
		require.Equal(t, 200, httpRes.StatusCode)
		rows, err := csv.NewReader(httpRes.Body).ReadAll()
		require.NoError(t, err)
		return rows[1:], httpRes.Header.Get("Link")
	}
	q := url.Values{"status": {"called_back"}, "limit": {"2"}}
	for k, v := range day1 {
		q[k] = v
	}
	rows, link := csvPage("/v1/reports/abandonment/contacts?" + q.Encode())
	require.Len(t, rows, 2)
	require.Regexp(t, `^<(/v1/reports/abandonment/contacts\?[^>]+)>; rel="next"$`, link)
	rows, link = csvPage(link[1:strings.Index(link, ">")])
	require.Len(t, rows, 1)
	require.Equal(t, "agent-8", rows[0][8])
	require.Empty(t, link, "the last page links to none")
}

// A cell of a report grouped by hour of the day or day of the week is
// listed by the drill-down given its start and end and its group: it
// lists exactly the abandons the cell counts, and none of the other hours
// or days of its interval.
func TestAbandonmentContactsOfAnHourOrDayCell(t *testing.T) {
	t.Parallel()
	b := setup(t, readKeysOpt, func(o *setupOpts) { o.countryCode = "44" })
	abandonFixture(t, b)
	base := url.Values{"from": {"2024-03-31T00:00:00Z"}, "to": {"2024-04-02T00:00:00+01:00"}, "tz": {"Europe/London"}}
	for _, groupBy := range []string{"hourOfDay", "dayOfWeek", "hourOfDay,dayOfWeek"} {
		for _, interval := range []string{"P1D", "total"} {
			q := url.Values{"groupBy": {groupBy}, "interval": {interval}}
			for k, v := range base {
				q[k] = v
			}
			res := b.read(t, analystKey, "/v1/reports/abandonment?"+q.Encode())
			require.Equal(t, 200, res.status, string(res.body))
			var r reportBody
			require.NoError(t, json.Unmarshal(res.body, &r))
			listed := 0
			for _, g := range r.Results {
				for _, iv := range g.Intervals {
					dq := url.Values{"from": {iv.Start}, "to": {iv.End}, "tz": {"Europe/London"}, "limit": {"500"}}
					for name, v := range g.Group {
						dq.Set(name, fmt.Sprint(v))
					}
					res := b.read(t, analystKey, "/v1/reports/abandonment/contacts?"+dq.Encode())
					require.Equal(t, 200, res.status, string(res.body))
					var page struct {
						Data []struct{ At string }
					}
					require.NoError(t, json.Unmarshal(res.body, &page))
					require.Len(t, page.Data, iv.Abandoned, "%s %s: cell %v %s-%s", groupBy, interval, g.Group, iv.Start, iv.End)
					listed += len(page.Data)
				}
			}
			require.Equal(t, 6, listed, "%s %s: every abandon is in one cell", groupBy, interval)
		}
	}

	for _, bad := range []string{"hourOfDay=24", "hourOfDay=-1", "hourOfDay=x", "dayOfWeek=Mon", "dayOfWeek=8"} {
		res := b.read(t, analystKey, "/v1/reports/abandonment/contacts?"+base.Encode()+"&"+bad)
		require.Equal(t, http.StatusBadRequest, res.status, bad)
		require.Equal(t, "urn:casetrail:problem:invalid_parameter", res.json(t)["type"], bad)
	}
}

// Abandons that name no queue are the report's group whose queue is "";
// queue= given empty selects exactly that group, in the report and in the
// drill-down, so the no-queue cell can be listed like any other. Left out,
// queue still means every queue.
func TestAbandonmentNoQueueCell(t *testing.T) {
	t.Parallel()
	b := setup(t, readKeysOpt, func(o *setupOpts) { o.countryCode = "44" })
	abandon := func(body map[string]any) {
		raw, _ := json.Marshal(body)
		res := b.signed(t, config.KindServiceHooks, "abandoned-conversation", raw, nil)
		require.Equal(t, 200, res.status, string(res.body))
	}
	abandon(map[string]any{"customerPhoneNumber": "+447700900001", "queue": "Sales", "timeInQueue": 20, "timestamp": "2024-05-01T09:00:00Z"})
	abandon(map[string]any{"customerPhoneNumber": "+447700900002", "timeInQueue": 30, "timestamp": "2024-05-01T10:00:00Z"})
	abandon(map[string]any{"customerPhoneNumber": "+447700900003", "timeInQueue": 40, "timestamp": "2024-05-01T11:00:00Z"})
	base := url.Values{"from": {"2024-05-01T00:00:00Z"}, "to": {"2024-05-02T00:00:00Z"}}
	with := func(extra url.Values) url.Values { return merged(base, extra) }
	report := func(q url.Values) reportBody { return b.report(t, q) }
	list := func(q url.Values) []string {
		res := b.read(t, auditorKey, "/v1/reports/abandonment/contacts?"+q.Encode())
		require.Equal(t, 200, res.status, string(res.body))
		var page struct {
			Data []struct{ Phone, Queue string }
		}
		require.NoError(t, json.Unmarshal(res.body, &page))
		var phones []string
		for _, c := range page.Data {
			phones = append(phones, c.Queue+" "+c.Phone)
		}
		return phones
	}

	byQueue := report(with(url.Values{"groupBy": {"queue"}}))
	require.Len(t, byQueue.Results, 2)
	// Each cell, drilled into with its group as it is named, lists exactly
	// the abandons it counts.
	for _, g := range byQueue.Results {
		q := with(nil)
		for name, v := range g.Group {
			q.Set(name, fmt.Sprint(v))
		}
		listed := list(q)
		require.Len(t, listed, g.Intervals[0].Abandoned, "cell %v", g.Group)
	}
	require.Equal(t, "", byQueue.Results[0].Group["queue"])
	require.Equal(t, 2, byQueue.Results[0].Intervals[0].Abandoned)
	require.Equal(t, []string{" +447700900002", " +447700900003"}, list(with(url.Values{"queue": {""}})))

	none := report(with(url.Values{"queue": {""}}))
	require.Equal(t, 2, none.Totals.Abandoned)
	require.Nil(t, none.Totals.HandledInbound, "a queue filter, as for any queue")

	require.Len(t, list(with(nil)), 3, "without queue, every queue")
	require.Equal(t, 3, report(with(nil)).Totals.Abandoned)
	require.Equal(t, []string{"Sales +447700900001"}, list(with(url.Values{"queue": {"Sales"}})))
}

// The drill-down pages by (abandon time, event id): abandons that arrive
// between two pages, earlier than the cursor, at the same instant as its
// row or later, and a repeat delivery of one already listed, neither
// repeat nor skip any abandon that was there when the first page was read.
func TestAbandonmentContactsPagesWhileAbandonsArrive(t *testing.T) {
	t.Parallel()
	b := setup(t, readKeysOpt, func(o *setupOpts) { o.countryCode = "44" })
	abandon := func(phone, at string) {
		raw, _ := json.Marshal(map[string]any{"customerPhoneNumber": phone, "queue": "Sales", "timeInQueue": 20, "timestamp": at})
		res := b.signed(t, config.KindServiceHooks, "abandoned-conversation", raw, nil)
		require.Equal(t, 200, res.status, string(res.body))
	}
	// Three abandons share 10:00, so a page ends inside a run of ties.
	abandon("+447700900001", "2024-05-01T09:00:00Z")
	abandon("+447700900002", "2024-05-01T10:00:00Z")
	abandon("+447700900003", "2024-05-01T10:00:00Z")
	abandon("+447700900004", "2024-05-01T10:00:00Z")
	abandon("+447700900005", "2024-05-01T11:00:00Z")
	base := url.Values{"from": {"2024-05-01T00:00:00Z"}, "to": {"2024-05-02T00:00:00Z"}, "limit": {"2"}}
	page := func(cursor string) (phones []string, next string) {
		q := url.Values{}
		for k, v := range base {
			q[k] = v
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		res := b.read(t, auditorKey, "/v1/reports/abandonment/contacts?"+q.Encode())
		require.Equal(t, 200, res.status, string(res.body))
		var p struct {
			Data []struct{ Phone string }
			Page struct{ NextCursor *string }
		}
		require.NoError(t, json.Unmarshal(res.body, &p))
		for _, c := range p.Data {
			phones = append(phones, c.Phone)
		}
		if p.Page.NextCursor != nil {
			next = *p.Page.NextCursor
		}
		return phones, next
	}

	listed, next := page("")
	require.Equal(t, []string{"+447700900001", "+447700900002"}, listed)
	abandon("+447700900006", "2024-05-01T08:00:00Z") // before the cursor
	abandon("+447700900007", "2024-05-01T10:00:00Z") // tied with the cursor's row
	abandon("0044 7700 900002", "2024-05-01T10:00:00Z")
	abandon("+447700900008", "2024-05-01T12:00:00Z") // later
	for next != "" {
		var phones []string
		phones, next = page(next)
		listed = append(listed, phones...)
		// More arrive while the pages are read.
		if len(listed) == 4 {
			abandon("+447700900009", "2024-05-01T09:30:00Z")
			abandon("+447700900010", "2024-05-01T13:00:00Z")
		}
	}
	seen := map[string]int{}
	for _, p := range listed {
		seen[p]++
		require.Equal(t, 1, seen[p], "%s listed twice: %v", p, listed)
	}
	for _, p := range []string{"+447700900001", "+447700900002", "+447700900003", "+447700900004", "+447700900005"} {
		require.Contains(t, seen, p, "%s skipped: %v", p, listed)
	}
	// What arrived after the cursor had passed its place is left for a new
	// listing; what arrived ahead of it is listed.
	require.NotContains(t, seen, "+447700900006")
	require.NotContains(t, seen, "+447700900009")
	require.Contains(t, seen, "+447700900007")
	require.Contains(t, seen, "+447700900008")
	require.Contains(t, seen, "+447700900010")
}

// A work item closed once is handled once however often its close is
// delivered: a platform may send it again under another webhook-id or
// Idempotency-Key, or with only a delivery time stamp changed, and each is
// stored as an event of its own. Closes of the same work item id at the
// same time are one handled work item; the same item closed again at
// another time (reopened) is handled again; closes that name no work item
// count each. Every grouping agrees with the totals, and dataAsOf is the
// latest receipt among the closes read, repeats included.
func TestAbandonmentReportCountsAWorkItemOnce(t *testing.T) {
	t.Parallel()
	b := withReadKeys(t)
	deliver := func(body string, header map[string]string) string {
		res := b.signed(t, config.KindServiceHooks, "workitem-closed", []byte(body), header)
		require.Equal(t, 200, res.status, string(res.body))
		require.NotEqual(t, true, res.json(t)["duplicate"], body)
		return res.json(t)["id"].(string)
	}
	// w1, delivered four times: under two webhook-ids, under an
	// Idempotency-Key, and with a delivery time stamp added.
	w1 := `{"id":"w1","isOutbound":false,"closedAt":"2024-05-01T09:10:00Z"}`
	deliver(w1, map[string]string{"webhook-id": "delivery-1"})
	deliver(w1, map[string]string{"webhook-id": "delivery-2"})
	deliver(w1, map[string]string{"Idempotency-Key": "w1-again"})
	deliver(`{"id":"w1","isOutbound":false,"closedAt":"2024-05-01T09:10:00Z","deliveredAt":"2024-05-01T09:12:00Z"}`, nil)
	// w2, another item closed at the same time.
	deliver(`{"id":"w2","isOutbound":false,"closedAt":"2024-05-01T09:10:00Z"}`, nil)
	// w3, closed, reopened and closed again.
	deliver(`{"id":"w3","isOutbound":false,"closedAt":"2024-05-01T09:30:00Z"}`, nil)
	deliver(`{"id":"w3","isOutbound":false,"closedAt":"2024-05-01T14:00:00Z"}`, nil)
	// Two closes without a work item id, at the same time.
	for _, agent := range []string{"a-1", "a-2"} {
		id := deliver(fmt.Sprintf(`{"isOutbound":false,"closedAt":"2024-05-01T09:40:00Z","agent":{"id":%q}}`, agent), nil)
		require.Nil(t, b.row(t, id).WorkItemID)
	}
	// Outbound: not handled inbound.
	deliver(`{"id":"w4","isOutbound":true,"closedAt":"2024-05-01T09:50:00Z"}`, nil)
	// w3's second close again, received last.
	last := deliver(`{"id":"w3","isOutbound":false,"closedAt":"2024-05-01T14:00:00Z","deliveredAt":"2024-05-02T08:00:00Z"}`, nil)

	base := url.Values{"from": {"2024-05-01T00:00:00Z"}, "to": {"2024-05-02T00:00:00Z"}, "tz": {"Europe/London"}}
	report := func(extra url.Values) reportBody { return b.report(t, merged(base, extra)) }
	res := b.read(t, auditorKey, "/v1/events/"+last)
	var lastRow struct{ ReceivedAt time.Time }
	require.NoError(t, json.Unmarshal(res.body, &lastRow))

	// w1 (once), w2, w3, the two without an id at 09:00-10:00 UTC (10:00
	// BST); w3 again at 14:00-15:00 UTC.
	hourly := report(url.Values{"interval": {"PT1H"}})
	require.Len(t, hourly.Results, 1)
	byStart := map[string]int{}
	for _, iv := range hourly.Results[0].Intervals {
		require.NotNil(t, iv.HandledInbound)
		if *iv.HandledInbound != 0 {
			byStart[iv.Start] = *iv.HandledInbound
		}
	}
	require.Equal(t, map[string]int{"2024-05-01T10:00:00+01:00": 5, "2024-05-01T15:00:00+01:00": 1}, byStart)
	require.Equal(t, 6, *hourly.Totals.HandledInbound)
	require.NotNil(t, hourly.DataAsOf)
	require.True(t, lastRow.ReceivedAt.Equal(*hourly.DataAsOf), "dataAsOf is the last repeat's receipt")

	// By the closes' own times (hour of the day, day of the week) and over
	// the whole range, the cells add up to the same totals.
	for _, extra := range []url.Values{
		{"interval": {"P1D"}},
		{"interval": {"total"}},
		{"interval": {"PT1H"}, "groupBy": {"hourOfDay"}},
		{"interval": {"P1D"}, "groupBy": {"dayOfWeek"}},
		{"interval": {"total"}, "groupBy": {"hourOfDay,dayOfWeek"}},
	} {
		r := report(extra)
		sum, cells := 0, map[string]int{}
		for _, g := range r.Results {
			for _, iv := range g.Intervals {
				require.NotNil(t, iv.HandledInbound)
				sum += *iv.HandledInbound
				if *iv.HandledInbound != 0 {
					cells[fmt.Sprintf("%v %v", g.Group["hourOfDay"], g.Group["dayOfWeek"])] += *iv.HandledInbound
				}
			}
		}
		require.Equal(t, 6, sum, "%v", extra)
		require.Equal(t, 6, *r.Totals.HandledInbound, "%v", extra)
		require.NotNil(t, r.DataAsOf)
		require.True(t, lastRow.ReceivedAt.Equal(*r.DataAsOf), "%v", extra)
		switch extra.Get("groupBy") {
		case "hourOfDay":
			require.Equal(t, map[string]int{"10 <nil>": 5, "15 <nil>": 1}, cells)
		case "dayOfWeek":
			require.Equal(t, map[string]int{"<nil> Wednesday": 6}, cells)
		case "hourOfDay,dayOfWeek":
			require.Equal(t, map[string]int{"10 Wednesday": 5, "15 Wednesday": 1}, cells)
		}
	}
}

// A callback's agent id that is a phone number or an e-mail address is
// masked for the redacted roles, as in the event itself.
func TestAbandonmentContactsMaskTheCallbackAgent(t *testing.T) {
	t.Parallel()
	b := withReadKeys(t)
	for _, d := range []struct{ event, body string }{
		{"abandoned-conversation", `{"customerPhoneNumber":"+447700900001","queue":"Q1","timeInQueue":40,"timestamp":"2024-03-31T09:00:00Z"}`},
		{"outbound-call", `{"agentID":"+447700900555","targetPhoneNumber":"+447700900001","Timestamp":"2024-03-31T09:30:00Z"}`},
	} {
		res := b.signed(t, config.KindServiceHooks, d.event, []byte(d.body), nil)
		require.Equal(t, 200, res.status, string(res.body))
	}
	q := "/v1/reports/abandonment/contacts?from=2024-03-31T00:00:00Z&to=2024-04-01T00:00:00Z"
	for key, want := range map[string]string{analystKey: "+44*******555", adminKey: "+44*******555", auditorKey: "+447700900555"} {
		res := b.read(t, key, q)
		require.Equal(t, 200, res.status, string(res.body))
		var c struct {
			Data []struct {
				Callback *struct{ AgentID string }
			}
		}
		require.NoError(t, json.Unmarshal(res.body, &c))
		require.Len(t, c.Data, 1)
		require.NotNil(t, c.Data[0].Callback)
		require.Equal(t, want, c.Data[0].Callback.AgentID, key)
	}
}
