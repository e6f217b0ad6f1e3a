// Package report computes the abandonment report: how many callers gave up
// waiting, where, when and after how long, and whether anybody called them
// back, per group and per interval of a time zone's calendar.
package report

import (
	"encoding/csv"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/casetrail/casetrail/internal/store"
	"github.com/casetrail/casetrail/internal/timeline"
)

// Query is a validated report request.
type Query struct {
	From, To        time.Time
	Location        *time.Location
	Interval        string
	GroupBy         []string
	Queue           *string // nil: every queue; "": the abandons that name none
	ShortAbandonSec int
	CallbackWindow  time.Duration
	Window          string // as written, e.g. PT24H
	Buckets         []int  // upper edges in seconds, ascending
}

var intervalLimits = map[string]time.Duration{
	"PT15M": 31 * 24 * time.Hour,
	"PT30M": 62 * 24 * time.Hour,
	"PT1H":  93 * 24 * time.Hour,
	"P1D":   1830 * 24 * time.Hour,
	"P1W":   1830 * 24 * time.Hour,
	"total": 1830 * 24 * time.Hour,
}

var stepOf = map[string]time.Duration{"PT15M": 15 * time.Minute, "PT30M": 30 * time.Minute, "PT1H": time.Hour}

func invalid(param, format string, args ...any) error {
	return &timeline.InvalidParam{Param: param, Detail: fmt.Sprintf(format, args...)}
}

// ParseQuery reads and validates the report's parameters.
func ParseQuery(v url.Values) (Query, error) {
	q := Query{Location: time.UTC, Interval: "P1D", ShortAbandonSec: 10, CallbackWindow: 24 * time.Hour, Window: "PT24H",
		Buckets: []int{10, 30, 60, 120, 300}}
	var err error
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		s := v.Get(p.name)
		if s == "" {
			return q, invalid(p.name, "is required (RFC 3339)")
		}
		if *p.dst, err = timeline.ParseTime(s); err != nil {
			return q, invalid(p.name, "%q is not an RFC 3339 time", s)
		}
	}
	if !q.From.Before(q.To) {
		return q, invalid("to", "must be after from")
	}
	if s := v.Get("tz"); s != "" {
		// "Local" is not an IANA name but the server's own zone, which a
		// client can neither know nor rely on.
		if s == "Local" {
			return q, invalid("tz", "%q is not an IANA time zone (it would be the server's own zone): name the zone, e.g. Europe/London", s)
		}
		if q.Location, err = time.LoadLocation(s); err != nil {
			return q, invalid("tz", "%q is not an IANA time zone", s)
		}
	}
	if s := v.Get("interval"); s != "" {
		q.Interval = s
	}
	limit, ok := intervalLimits[q.Interval]
	if !ok {
		return q, invalid("interval", "must be one of PT15M, PT30M, PT1H, P1D, P1W, total")
	}
	if q.To.Sub(q.From) > limit {
		return q, invalid("interval", "%s covers at most %d days; narrow from/to or use a longer interval", q.Interval, int(limit.Hours()/24))
	}
	if s := v.Get("groupBy"); s != "" {
		for _, g := range strings.Split(s, ",") {
			g = strings.TrimSpace(g)
			if g != "queue" && g != "hourOfDay" && g != "dayOfWeek" {
				return q, invalid("groupBy", "%q: use queue, hourOfDay or dayOfWeek (comma-separated)", g)
			}
			if !slices.Contains(q.GroupBy, g) {
				q.GroupBy = append(q.GroupBy, g)
			}
		}
	}
	// Abandons that name no queue form the report's group "" (its queue is
	// the empty string), so queue= given empty selects that group, as its
	// cell names it; left out, every queue counts.
	if v.Has("queue") {
		s := v.Get("queue")
		q.Queue = &s
	}
	if s := v.Get("shortAbandonSec"); s != "" {
		if q.ShortAbandonSec, err = strconv.Atoi(s); err != nil || q.ShortAbandonSec < 0 || q.ShortAbandonSec > 86400 {
			return q, invalid("shortAbandonSec", "must be a whole number of seconds from 0 to 86400")
		}
	}
	if s := v.Get("callbackWindow"); s != "" {
		if q.CallbackWindow, err = ParseISODuration(s); err != nil || q.CallbackWindow <= 0 || q.CallbackWindow > 31*24*time.Hour {
			return q, invalid("callbackWindow", "%q is not an ISO 8601 duration of up to 31 days (e.g. PT24H, P2D)", s)
		}
		q.Window = s
	}
	if s := v.Get("buckets"); s != "" {
		q.Buckets = nil
		for _, e := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(e))
			if err != nil || n <= 0 || (len(q.Buckets) > 0 && n <= q.Buckets[len(q.Buckets)-1]) || len(q.Buckets) >= 20 {
				return q, invalid("buckets", "must be up to 20 ascending positive whole numbers of seconds")
			}
			q.Buckets = append(q.Buckets, n)
		}
	}
	return q, nil
}

var isoDuration = regexp.MustCompile(`^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$`)

// ParseISODuration reads the day/hour/minute/second subset of ISO 8601
// durations (PT24H, P1DT12H, PT90M). A duration longer than a
// time.Duration holds (about 292 years) is an error, not a wrapped value:
// "PT5124096H" would otherwise read as 25 minutes.
func ParseISODuration(s string) (time.Duration, error) {
	m := isoDuration.FindStringSubmatch(s)
	if m == nil || s == "P" || strings.HasSuffix(s, "T") {
		return 0, fmt.Errorf("%q is not an ISO 8601 duration", s)
	}
	var d time.Duration
	for i, unit := range []time.Duration{24 * time.Hour, time.Hour, time.Minute, time.Second} {
		if m[i+1] != "" {
			n, err := strconv.ParseInt(m[i+1], 10, 64)
			if err != nil || n > int64((math.MaxInt64-d)/unit) {
				return 0, fmt.Errorf("%q is longer than any duration casetrail reads", s)
			}
			d += time.Duration(n) * unit
		}
	}
	return d, nil
}

// Interval is one reporting period [Start, End).
type Interval struct{ Start, End time.Time }

// Intervals divides the query's range by its interval in its time zone. Days
// and weeks follow the zone's calendar (a day of a DST change lasts 23 or 25
// hours); shorter intervals are aligned to the zone's wall clock and follow
// absolute time, so such a day has 92 or 100 quarter-hours. An interval
// also ends where the zone's offset changes: after a shift that is not a
// whole number of intervals (Lord Howe Island's 30 minutes against an
// hour), the next one starts on the new wall clock's boundary, so every
// hourly interval lies within one hour of the day, as hourOfDay counts it.
func Intervals(q Query) []Interval {
	loc := q.Location
	var out []Interval
	switch q.Interval {
	case "total":
		return []Interval{{q.From, q.To}}
	case "P1D", "P1W":
		l := q.From.In(loc)
		y, m, d := l.Date()
		days := 1
		if q.Interval == "P1W" {
			days = 7
			d -= (int(l.Weekday()) + 6) % 7 // back to Monday
		}
		for s := dayStart(y, m, d, loc); s.Before(q.To); {
			d += days
			e := dayStart(y, m, d, loc)
			if e.Equal(s) {
				continue // a day the zone skipped whole (Samoa's 2011-12-30)
			}
			out = append(out, Interval{s, e})
			s = e
		}
	default:
		step := int64(stepOf[q.Interval] / time.Second)
		// boundary is the last instant at or before t (next: after t) where
		// the wall clock of t's offset reads a multiple of step, or where
		// that offset began (ended) if that is nearer.
		boundary := func(t time.Time, next bool) time.Time {
			l := t.In(loc)
			_, off := l.Zone()
			local := t.Unix() + int64(off)
			// Rounded down before 1970 too, where Go's % is negative.
			rem := local % step
			if rem < 0 {
				rem += step
			}
			zoneStart, zoneEnd := offsetBounds(l)
			if !next {
				b := time.Unix(local-rem-int64(off), 0).In(loc)
				// A zero start is none (the zone's first offset), not the
				// year 1: a range in the year 0 has no bound there.
				if !zoneStart.IsZero() && zoneStart.After(b) {
					return zoneStart.In(loc)
				}
				return b
			}
			b := time.Unix(local-rem+step-int64(off), 0).In(loc)
			if !zoneEnd.IsZero() && zoneEnd.Before(b) {
				return zoneEnd.In(loc)
			}
			return b
		}
		for s := boundary(q.From, false); s.Before(q.To); {
			e := boundary(s, true)
			out = append(out, Interval{s, e})
			s = e
		}
	}
	return out
}

// offsetBounds is when the offset of t's zone began and ends, as
// time.ZoneBounds gives them, but over changes that keep the offset: a
// change of abbreviation or DST flag alone, or the start of a year, which
// ZoneBounds reports for every year past the zone's listed transitions
// (from 2038, or from the last one in a slim tz database). Cut there, an
// hour of a half-hour zone (Australia/Adelaide) would be cut in two.
func offsetBounds(t time.Time) (start, end time.Time) {
	loc := t.Location()
	_, off := t.Zone()
	start, end = t.ZoneBounds()
	// A few steps suffice: zones keep an offset through at most a couple
	// of listed changes, and a year-start bound is found one year at a time
	// only when reports run years ahead.
	for range 64 {
		if start.IsZero() {
			break
		}
		before := start.Add(-time.Nanosecond).In(loc)
		if _, o := before.Zone(); o != off {
			break
		}
		start, _ = before.ZoneBounds()
	}
	for range 64 {
		if end.IsZero() {
			break
		}
		after := end.In(loc)
		if _, o := after.Zone(); o != off {
			break
		}
		_, end = after.ZoneBounds()
	}
	return start, end
}

// dayStart is the first instant of the day y-m-d (d may run past the
// month's end) in loc. Where the clocks jump from 00:00 to 01:00 midnight
// does not exist, and time.Date answers 23:00 of the day before; that day
// starts at the jump instead. Where they go back from 01:00 to 00:00
// midnight happens twice, and time.Date may answer the second; the day
// starts at the first.
func dayStart(y int, m time.Month, d int, loc *time.Location) time.Time {
	y, m, d = time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Date()
	t := time.Date(y, m, d, 0, 0, 0, 0, loc)
	if _, _, td := t.Date(); td != d {
		_, t = t.ZoneBounds()
		return t
	}
	if start, _ := t.ZoneBounds(); !start.IsZero() {
		_, off := t.Zone()
		_, prev := start.Add(-time.Nanosecond).Zone()
		if first := t.Add(-time.Duration(prev-off) * time.Second); prev > off && first.Before(start) {
			if fy, fm, fd := first.Date(); fy == y && fm == m && fd == d && first.Hour() == 0 && first.Minute() == 0 && first.Second() == 0 {
				t = first
			}
		}
	}
	return t
}

// Stats are time-in-queue statistics in seconds; nil when there is nothing
// to measure.
type Stats struct {
	Count int      `json:"count"`
	Sum   float64  `json:"sum"`
	Avg   *float64 `json:"avg"`
	Min   *float64 `json:"min"`
	Max   *float64 `json:"max"`
	P50   *float64 `json:"p50"`
	P90   *float64 `json:"p90"`
	P95   *float64 `json:"p95"`
}

// CallbackStats are times from abandon to first callback, in seconds.
type CallbackStats struct {
	Avg *float64 `json:"avg"`
	P50 *float64 `json:"p50"`
	P90 *float64 `json:"p90"`
}

// Bucket counts abandons by time in queue: (previous edge, Le] or > Gt.
type Bucket struct {
	Label string `json:"label"`
	Le    *int   `json:"le,omitempty"`
	Gt    *int   `json:"gt,omitempty"`
	Count int    `json:"count"`
}

// Metrics are one cell's figures.
type Metrics struct {
	Abandoned            int           `json:"abandoned"`
	ShortAbandoned       int           `json:"shortAbandoned"`
	AbandonedExclShort   int           `json:"abandonedExclShort"`
	UniqueCallers        int           `json:"uniqueCallers"`
	RepeatAbandoners     int           `json:"repeatAbandoners"`
	TimeInQueue          Stats         `json:"timeInQueue"`
	DurationBuckets      []Bucket      `json:"durationBuckets"`
	CalledBack           int           `json:"calledBack"`
	NotCalledBack        int           `json:"notCalledBack"`
	CalledBackRate       *float64      `json:"calledBackRate"`
	TimeToCallback       CallbackStats `json:"timeToCallback"`
	HandledInbound       *int          `json:"handledInbound"`
	AbandonRateEstimated *float64      `json:"abandonRateEstimated"`
}

// IntervalResult is one interval of a group.
type IntervalResult struct {
	Start string `json:"start"`
	End   string `json:"end"`
	Metrics
}

// GroupResult is one group's intervals.
type GroupResult struct {
	Group     map[string]any   `json:"group"`
	Intervals []IntervalResult `json:"intervals"`
}

// Report is the whole answer.
type Report struct {
	Query       map[string]any    `json:"query"`
	Definitions map[string]string `json:"definitions"`
	DataAsOf    *time.Time        `json:"dataAsOf"`
	Results     []GroupResult     `json:"results"`
	Totals      Metrics           `json:"totals"`
}

// Definitions state what every figure means.
func Definitions(q Query) map[string]string {
	byQueue := slices.Contains(q.GroupBy, "queue")
	d := map[string]string{
		"abandoned":            "Abandoned Conversation events whose time stamp (the abandon time) falls in the interval, in the requested time zone. A delivery repeating the same number, time stamp and queue counts once. Short abandons included.",
		"shortAbandoned":       fmt.Sprintf("Abandons with time in queue under shortAbandonSec (%d s).", q.ShortAbandonSec),
		"abandonedExclShort":   "abandoned minus shortAbandoned.",
		"uniqueCallers":        "Distinct E.164 phone numbers among the abandons (abandons without a number are not callers), compared by 64-bit hash.",
		"repeatAbandoners":     "Numbers with two or more abandons in the same group and interval.",
		"timeInQueue":          "Seconds from entering the queue to abandoning, over abandons that state it: count, sum, avg, min, max, and exact percentiles by nearest rank (the smallest value with at least p% of values at or below it).",
		"durationBuckets":      "Abandons by time in queue: each bucket holds times above the previous edge and up to its own (le); the last holds times above the largest edge (gt).",
		"calledBack":           fmt.Sprintf("Abandons followed by an Outbound call to the same E.164 number after the abandon and within callbackWindow (%s).", q.Window),
		"notCalledBack":        "abandoned minus calledBack.",
		"calledBackRate":       "calledBack / abandoned; null when there are no abandons.",
		"timeToCallback":       "Seconds from the abandon to the first such call, over called-back abandons: avg and nearest-rank p50, p90.",
		"handledInbound":       "Work items closed in the interval, from WorkItemClosed events with isOutbound false. Closes of the same work item id at the same closing time count once (a repeat delivery; a close whose payload names no closing time is dated by its delivery and counts each time); a work item closed again at another time counts again; a close without a work item id counts on its own.",
		"abandonRateEstimated": "abandoned / (abandoned + handledInbound): an estimate, since the platform reports no count of offered conversations. Null when the denominator is 0.",
		"dataAsOf":             "The latest receipt time among the abandons counted and, where work items are counted (no queue filter), their closes, repeated closes included: the contact-center feed is historical and may deliver late. An outbound call does not move it, though one received late can change calledBack.",
	}
	switch {
	case q.Queue != nil:
		d["handledInbound"] += " Work items carry no queue, so with a queue filter this and abandonRateEstimated are null."
	case byQueue:
		d["handledInbound"] += " Work items carry no queue, so this and abandonRateEstimated are null per queue; totals carry them."
	}
	return d
}

type groupKey struct {
	queue, day string
	hour       int
}

// HandledBounds are the spans to count inbound work items in, for
// Store.HandledCounts: the intervals' boundaries. It returns nil when the
// report groups by hour of day or day of week: then each work item's own
// closing time is needed (Store.Handled).
func HandledBounds(q Query) []time.Time {
	if slices.Contains(q.GroupBy, "hourOfDay") || slices.Contains(q.GroupBy, "dayOfWeek") {
		return nil
	}
	// The first and last intervals may reach beyond the range; only the
	// range is counted, as for abandons.
	ivs := Intervals(q)
	bounds := []time.Time{q.From}
	if len(ivs) == 0 {
		return append(bounds, q.To)
	}
	for _, iv := range ivs[1:] {
		bounds = append(bounds, iv.Start)
	}
	return append(bounds, q.To)
}

// Builder computes the report in one pass over the abandons, keeping per
// cell only what its figures need.
type Builder struct {
	q       Query
	ivs     []Interval
	byQueue bool
	local   bool // grouped by hour of day or day of week
	// A cell counts its callers by 64-bit hashes of their numbers (8 bytes
	// per abandon, no map of numbers): two of a million distinct numbers
	// share a hash with a probability of about 3 in 100 million.
	queues map[string]string
	groups map[groupKey][]*cell
	total  *cell
	asOf   *time.Time
	// Abandons come oldest first: the interval only moves forward, and runs
	// of one group reuse its cells.
	i         int
	last      groupKey
	lastCells []*cell
}

// phoneSeed is the process's seed of number hashes: Builders that are
// merged must hash alike.
var phoneSeed = maphash.MakeSeed()

// MaxCells bounds a report's groups times its intervals: every cell is
// answered, an empty one with zeros, and all of them are held until the
// answer is written (a few hundred bytes each).
const MaxCells = 100_000

// CheckSize refuses a report of more than MaxCells cells, counting the
// queues the abandons read so far name (one before any is read). A Builder
// takes no new queue once they are too many: each queue's groups take
// memory as its abandons come.
func (b *Builder) CheckSize() error {
	groups := 1
	if b.byQueue && b.q.Queue == nil {
		groups = max(1, len(b.queues))
	}
	for _, g := range b.q.GroupBy {
		switch g {
		case "hourOfDay":
			groups *= 24
		case "dayOfWeek":
			groups *= 7
		}
	}
	if n := groups * len(b.ivs); n > MaxCells {
		return invalid("groupBy", "%d groups over %d intervals of %s make %d cells, more than %d: use a longer interval, a shorter range, one queue, or fewer groupBy dimensions",
			groups, len(b.ivs), b.q.Interval, n, MaxCells)
	}
	return nil
}

// NewBuilder starts a report.
func NewBuilder(q Query) *Builder {
	return &Builder{q: q, ivs: Intervals(q), byQueue: slices.Contains(q.GroupBy, "queue"),
		local:  slices.Contains(q.GroupBy, "hourOfDay") || slices.Contains(q.GroupBy, "dayOfWeek"),
		queues: map[string]string{}, groups: map[groupKey][]*cell{}, total: newCell(q)}
}

func (b *Builder) keyOf(t time.Time, queue string) groupKey {
	k := groupKey{hour: -1}
	if b.byQueue {
		k.queue = queue
	}
	if b.local {
		l := t.In(b.q.Location)
		for _, g := range b.q.GroupBy {
			switch g {
			case "hourOfDay":
				k.hour = l.Hour()
			case "dayOfWeek":
				k.day = l.Weekday().String()
			}
		}
	}
	return k
}

func (b *Builder) cells(k groupKey) []*cell {
	cs := b.groups[k]
	if cs == nil {
		cs = make([]*cell, len(b.ivs))
		b.groups[k] = cs
	}
	return cs
}

func (b *Builder) seen(t time.Time) {
	if b.asOf == nil || t.After(*b.asOf) {
		b.asOf = &t
	}
}

// Add counts one abandon; abandons must come oldest first.
func (b *Builder) Add(a *store.AbandonFact) {
	for b.i < len(b.ivs) && !a.At.Before(b.ivs[b.i].End) {
		b.i++
	}
	if b.i == len(b.ivs) || a.At.Before(b.ivs[b.i].Start) {
		return
	}
	b.seen(a.ReceivedAt)
	phone, hasPhone := uint64(0), len(a.Phone) > 0
	if hasPhone {
		phone = maphash.Bytes(phoneSeed, a.Phone)
	}
	queue, ok := b.queues[string(a.Queue)]
	if !ok {
		if b.CheckSize() != nil {
			return // too many queues already: the report is refused
		}
		queue = string(a.Queue)
		b.queues[queue] = queue
	}
	k := b.keyOf(a.At, queue)
	if b.lastCells == nil || k != b.last {
		b.last, b.lastCells = k, b.cells(k)
	}
	c := b.lastCells[b.i]
	if c == nil {
		c = newCell(b.q)
		b.lastCells[b.i] = c
	}
	c.add(b.q, a, phone, hasPhone)
	b.total.add(b.q, a, phone, hasPhone)
}

// Merge adds what another Builder of the same query counted (abandons of
// another part of the range) to b.
func (b *Builder) Merge(o *Builder) {
	if o.asOf != nil {
		b.seen(*o.asOf)
	}
	for queue := range o.queues {
		b.queues[queue] = queue
	}
	for k, ocs := range o.groups {
		cs := b.cells(k)
		for i, oc := range ocs {
			switch {
			case oc == nil:
			case cs[i] == nil:
				cs[i] = oc
			default:
				cs[i].merge(oc)
			}
		}
	}
	b.total.merge(o.total)
}

// Parts divides the query's range into n parts of equal length, to be
// counted at the same time by n Builders and merged.
func Parts(q Query, n int) [][2]time.Time {
	out := make([][2]time.Time, 0, n)
	step := q.To.Sub(q.From) / time.Duration(n)
	for i, from := 0, q.From; i < n; i++ {
		to := from.Add(step)
		if i == n-1 {
			to = q.To
		}
		if from.Before(to) {
			out = append(out, [2]time.Time{from, to})
		}
		from = to
	}
	return out
}

// Report finishes the report with the counts of inbound work items closed
// in the query's range.
func (b *Builder) Report(handled []store.HandledCount) Report {
	q, ivs := b.q, b.ivs
	index := func(t time.Time) int {
		i := sort.Search(len(ivs), func(i int) bool { return ivs[i].End.After(t) })
		if i < len(ivs) && !t.Before(ivs[i].Start) {
			return i
		}
		return -1
	}
	handledBy := map[groupKey][]int{}
	handledTotal := 0
	for _, h := range handled {
		i := index(h.Start)
		if i < 0 {
			continue
		}
		if q.Queue == nil { // with a queue filter, work items are not counted
			b.seen(h.LastReceived)
		}
		k := b.keyOf(h.Start, "")
		if handledBy[k] == nil {
			handledBy[k] = make([]int, len(ivs))
		}
		handledBy[k][i] += h.Closed
		handledTotal += h.Closed
	}

	queues := make([]string, 0)
	if q.Queue != nil {
		queues = append(queues, *q.Queue)
	} else if b.byQueue {
		for queue := range b.queues {
			queues = append(queues, queue)
		}
		sort.Strings(queues)
	}
	r := Report{Query: echo(q), Definitions: Definitions(q), DataAsOf: b.asOf}
	empty, buckets := newCell(q), bucketsOf(q)
	// A cell is labelled with what it counts: the first and the last are
	// cut at the range's ends (from noon, a day's cell starts at noon), so
	// that its start and end, given as from and to, list its abandons.
	starts, ends := make([]string, len(ivs)), make([]string, len(ivs))
	for i, iv := range ivs {
		starts[i] = laterOf(iv.Start, q.From).In(q.Location).Format(time.RFC3339Nano)
		ends[i] = earlierOf(iv.End, q.To).In(q.Location).Format(time.RFC3339Nano)
	}
	keys := groupKeys(q, queues)
	r.Results = make([]GroupResult, 0, len(keys)) // [] when no queue has an abandon
	for _, k := range keys {
		g := GroupResult{Group: map[string]any{}, Intervals: make([]IntervalResult, len(ivs))}
		for _, d := range q.GroupBy {
			switch d {
			case "queue":
				g.Group["queue"] = k.queue
			case "hourOfDay":
				g.Group["hourOfDay"] = k.hour
			case "dayOfWeek":
				g.Group["dayOfWeek"] = k.day
			}
		}
		cs := b.groups[k]
		for i := range ivs {
			c := empty
			if cs != nil && cs[i] != nil {
				c = cs[i]
			}
			var h *int
			if !b.byQueue && q.Queue == nil {
				n := 0
				if handledBy[k] != nil {
					n = handledBy[k][i]
				}
				h = &n
			}
			g.Intervals[i] = IntervalResult{
				Start:   starts[i],
				End:     ends[i],
				Metrics: c.metrics(q, buckets, h),
			}
		}
		r.Results = append(r.Results, g)
	}
	// Work items carry no queue: against one queue's abandons, all of them
	// would make the rate meaningless.
	totalHandled := &handledTotal
	if q.Queue != nil {
		totalHandled = nil
	}
	r.Totals = b.total.metrics(q, buckets, totalHandled)
	return r
}

// groupKeys lists every group: every queue given, every hour of the day,
// every day of the week, as grouped by.
func groupKeys(q Query, queues []string) []groupKey {
	keys := []groupKey{{hour: -1}}
	for _, g := range q.GroupBy {
		var next []groupKey
		switch g {
		case "queue":
			for _, k := range keys {
				for _, queue := range queues {
					k.queue = queue
					next = append(next, k)
				}
			}
		case "hourOfDay":
			for _, k := range keys {
				for h := range 24 {
					k.hour = h
					next = append(next, k)
				}
			}
		case "dayOfWeek":
			for _, k := range keys {
				for _, d := range []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday, time.Sunday} {
					k.day = d.String()
					next = append(next, k)
				}
			}
		}
		keys = next
	}
	return keys
}

// cell accumulates one group's interval: counts as they come, and the
// values that percentiles and distinct callers need.
type cell struct {
	abandoned, short, calledBack int
	buckets                      []int
	tiqMs, delayUs               []int64
	phones                       []uint64
}

func newCell(q Query) *cell { return &cell{buckets: make([]int, len(q.Buckets)+1)} }

func (c *cell) add(q Query, a *store.AbandonFact, phone uint64, hasPhone bool) {
	c.abandoned++
	if hasPhone {
		c.phones = append(c.phones, phone)
	}
	if a.TimeInQueueMs >= 0 {
		c.tiqMs = append(c.tiqMs, a.TimeInQueueMs)
		if a.TimeInQueueMs < int64(q.ShortAbandonSec)*1000 {
			c.short++
		}
		// The bucket whose edge is the first at or above the time, rounded up
		// to whole seconds.
		c.buckets[sort.SearchInts(q.Buckets, int((a.TimeInQueueMs+999)/1000))]++
	}
	if a.CallbackDelayUs >= 0 && a.CallbackDelayUs <= q.CallbackWindow.Microseconds() {
		c.calledBack++
		c.delayUs = append(c.delayUs, a.CallbackDelayUs)
	}
}

func (c *cell) merge(o *cell) {
	c.abandoned += o.abandoned
	c.short += o.short
	c.calledBack += o.calledBack
	for i, n := range o.buckets {
		c.buckets[i] += n
	}
	c.tiqMs = append(c.tiqMs, o.tiqMs...)
	c.delayUs = append(c.delayUs, o.delayUs...)
	c.phones = append(c.phones, o.phones...)
}

// bucketsOf are the query's empty duration buckets, labelled.
func bucketsOf(q Query) []Bucket {
	out := make([]Bucket, len(q.Buckets)+1)
	prev := 0
	for i, e := range q.Buckets {
		out[i] = Bucket{Label: fmt.Sprintf("%d-%ds", prev, e), Le: &q.Buckets[i]}
		prev = e
	}
	last := &q.Buckets[len(q.Buckets)-1]
	out[len(q.Buckets)] = Bucket{Label: fmt.Sprintf(">%ds", *last), Gt: last}
	return out
}

// metrics are the cell's figures; buckets are bucketsOf(q).
func (c *cell) metrics(q Query, buckets []Bucket, handled *int) Metrics {
	m := Metrics{Abandoned: c.abandoned, ShortAbandoned: c.short, CalledBack: c.calledBack, HandledInbound: handled}
	m.DurationBuckets = slices.Clone(buckets)
	for i := range m.DurationBuckets {
		m.DurationBuckets[i].Count = c.buckets[i]
	}
	m.AbandonedExclShort = m.Abandoned - m.ShortAbandoned
	slices.Sort(c.phones)
	for i := 0; i < len(c.phones); {
		j := i + 1
		for j < len(c.phones) && c.phones[j] == c.phones[i] {
			j++
		}
		m.UniqueCallers++
		if j-i >= 2 {
			m.RepeatAbandoners++
		}
		i = j
	}
	m.NotCalledBack = m.Abandoned - m.CalledBack
	if m.Abandoned > 0 {
		m.CalledBackRate = ptr(float64(m.CalledBack) / float64(m.Abandoned))
	}
	if n := len(c.tiqMs); n > 0 {
		sum, lo, hi := stats(c.tiqMs)
		s := &m.TimeInQueue
		s.Count, s.Sum = n, float64(sum)/1e3
		s.Avg, s.Min, s.Max = ptr(s.Sum/float64(n)), ptr(float64(lo)/1e3), ptr(float64(hi)/1e3)
		p := ranks(c.tiqMs, 95, 90, 50)
		s.P95, s.P90, s.P50 = ptr(float64(p[0])/1e3), ptr(float64(p[1])/1e3), ptr(float64(p[2])/1e3)
	}
	if n := len(c.delayUs); n > 0 {
		sum, _, _ := stats(c.delayUs)
		p := ranks(c.delayUs, 90, 50)
		m.TimeToCallback = CallbackStats{Avg: ptr(float64(sum) / 1e6 / float64(n)),
			P90: ptr(float64(p[0]) / 1e6), P50: ptr(float64(p[1]) / 1e6)}
	}
	if handled != nil && m.Abandoned+*handled > 0 {
		m.AbandonRateEstimated = ptr(float64(m.Abandoned) / float64(m.Abandoned+*handled))
	}
	return m
}

// stats are the sum, minimum and maximum of values.
func stats(vs []int64) (sum, lo, hi int64) {
	lo, hi = vs[0], vs[0]
	for _, v := range vs {
		sum += v
		lo, hi = min(lo, v), max(hi, v)
	}
	return sum, lo, hi
}

// ranks are the nearest-rank percentiles ps (descending) of values: the
// smallest value with at least p% of the values at or below it. The values
// are reordered: sorted when few, otherwise partitioned just enough to place
// each rank (quickselect), so a million values cost no full sort.
func ranks(vs []int64, ps ...int) []int64 {
	out := make([]int64, len(ps))
	if len(vs) <= 64 {
		slices.Sort(vs)
	}
	hi := len(vs)
	for i, p := range ps {
		k := max(int(math.Ceil(float64(p)/100*float64(len(vs)))), 1) - 1
		if len(vs) > 64 {
			// Ranks come in descending order: each is found left of the last.
			selectKth(vs[:hi], k)
			hi = k + 1
		}
		out[i] = vs[k]
	}
	return out
}

// selectKth reorders vs so that vs[k] holds the value a sort would put
// there, smaller or equal values before it and greater or equal after it.
// Partitions are three-way, so repeated values (times in queue repeat a
// lot) cost nothing extra; pivots are medians of three pseudo-random picks.
func selectKth(vs []int64, k int) {
	lo, hi := 0, len(vs)-1
	x := uint64(len(vs))*0x9e3779b97f4a7c15 | 1
	pick := func() int64 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		return vs[lo+int(x%uint64(hi-lo+1))]
	}
	for lo < hi {
		a, b, c := pick(), pick(), pick()
		pivot := max(min(a, b), min(max(a, b), c))
		lt, i, gt := lo, lo, hi
		for i <= gt {
			switch v := vs[i]; {
			case v < pivot:
				vs[lt], vs[i] = vs[i], vs[lt]
				lt++
				i++
			case v > pivot:
				vs[i], vs[gt] = vs[gt], vs[i]
				gt--
			default:
				i++
			}
		}
		switch {
		case k < lt:
			hi = lt - 1
		case k > gt:
			lo = gt + 1
		default:
			return
		}
	}
}

func ptr(f float64) *float64 { return &f }

func echo(q Query) map[string]any {
	groupBy := q.GroupBy
	if groupBy == nil {
		groupBy = []string{}
	}
	return map[string]any{
		"from": q.From.In(q.Location).Format(time.RFC3339Nano), "to": q.To.In(q.Location).Format(time.RFC3339Nano),
		"tz": q.Location.String(), "interval": q.Interval, "groupBy": groupBy, "queue": q.Queue,
		"shortAbandonSec": q.ShortAbandonSec, "callbackWindow": q.Window, "buckets": q.Buckets,
	}
}

func laterOf(a, b time.Time) time.Time {
	if a.Before(b) {
		return b
	}
	return a
}

func earlierOf(a, b time.Time) time.Time {
	if a.After(b) {
		return b
	}
	return a
}

// WriteCSV writes one row per group and interval, then a row of the totals
// over the range and every group, as the JSON's totals. The first column
// says which a row is ("interval" or "total"); the total row's group
// columns are empty.
func WriteCSV(w io.Writer, q Query, r Report) error {
	cw := csv.NewWriter(w)
	head := append([]string{"row"}, q.GroupBy...)
	head = append(head, "start", "end", "abandoned", "shortAbandoned", "abandonedExclShort",
		"uniqueCallers", "repeatAbandoners", "timeInQueueCount", "timeInQueueSum", "timeInQueueAvg", "timeInQueueMin",
		"timeInQueueMax", "timeInQueueP50", "timeInQueueP90", "timeInQueueP95")
	for _, b := range r.Totals.DurationBuckets {
		head = append(head, "bucket "+b.Label)
	}
	head = append(head, "calledBack", "notCalledBack", "calledBackRate", "timeToCallbackAvg", "timeToCallbackP50",
		"timeToCallbackP90", "handledInbound", "abandonRateEstimated")
	if err := cw.Write(head); err != nil {
		return err
	}
	f := func(v *float64) string {
		if v == nil {
			return ""
		}
		return strconv.FormatFloat(*v, 'f', -1, 64)
	}
	write := func(row []string, start, end string, m Metrics) error {
		row = append(row, start, end, strconv.Itoa(m.Abandoned), strconv.Itoa(m.ShortAbandoned),
			strconv.Itoa(m.AbandonedExclShort), strconv.Itoa(m.UniqueCallers), strconv.Itoa(m.RepeatAbandoners),
			strconv.Itoa(m.TimeInQueue.Count), strconv.FormatFloat(m.TimeInQueue.Sum, 'f', -1, 64),
			f(m.TimeInQueue.Avg), f(m.TimeInQueue.Min), f(m.TimeInQueue.Max), f(m.TimeInQueue.P50),
			f(m.TimeInQueue.P90), f(m.TimeInQueue.P95))
		for _, b := range m.DurationBuckets {
			row = append(row, strconv.Itoa(b.Count))
		}
		handled := ""
		if m.HandledInbound != nil {
			handled = strconv.Itoa(*m.HandledInbound)
		}
		row = append(row, strconv.Itoa(m.CalledBack), strconv.Itoa(m.NotCalledBack), f(m.CalledBackRate),
			f(m.TimeToCallback.Avg), f(m.TimeToCallback.P50), f(m.TimeToCallback.P90), handled, f(m.AbandonRateEstimated))
		return cw.Write(row)
	}
	for _, g := range r.Results {
		for _, iv := range g.Intervals {
			row := []string{"interval"}
			for _, d := range q.GroupBy {
				row = append(row, fmt.Sprint(g.Group[d]))
			}
			if err := write(row, iv.Start, iv.End, iv.Metrics); err != nil {
				return err
			}
		}
	}
	total := append([]string{"total"}, make([]string, len(q.GroupBy))...)
	if err := write(total, q.From.In(q.Location).Format(time.RFC3339Nano), q.To.In(q.Location).Format(time.RFC3339Nano), r.Totals); err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}
