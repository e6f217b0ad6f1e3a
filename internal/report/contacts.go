package report

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/casetrail/casetrail/internal/redact"
	"github.com/casetrail/casetrail/internal/store"
	"github.com/casetrail/casetrail/internal/timeline"
)

// Callback is the first call back to an abandoning number.
type Callback struct {
	At       string  `json:"at"`
	AgentID  string  `json:"agentId"`
	DelaySec float64 `json:"delaySec"`
	Attempts int64   `json:"attempts"`
}

// Contact is one abandon behind the report.
type Contact struct {
	EventID        string    `json:"eventId"`
	At             string    `json:"at"`
	Queue          string    `json:"queue"`
	Phone          string    `json:"phone"`
	TimeInQueueSec *float64  `json:"timeInQueueSec"`
	Short          bool      `json:"short"`
	Status         string    `json:"status"` // called_back or not_called_back
	Callback       *Callback `json:"callback"`
}

// ContactsPage is the drill-down's envelope.
type ContactsPage struct {
	Data []Contact     `json:"data"`
	Page timeline.Page `json:"page"`
}

type contactCursor struct {
	At      time.Time `json:"a"`
	ID      int64     `json:"i"`
	Filters string    `json:"f"`
}

// Contacts lists the abandons of the query (filtered by status: called_back,
// not_called_back or short), oldest first, a page at a time, reading them
// with fetch. Phone numbers are masked unless full. It returns the page and
// the ids of the events it names.
func Contacts(q Query, v url.Values, full bool, fetch func(store.ContactsFilter) ([]store.AbandonContact, error)) (ContactsPage, []int64, error) {
	status := v.Get("status")
	switch status {
	case "", "called_back", "not_called_back", "short":
	default:
		return ContactsPage{}, nil, invalid("status", "must be called_back, not_called_back or short")
	}
	limit := timeline.DefaultLimit
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > timeline.MaxLimit {
			return ContactsPage{}, nil, invalid("limit", "must be a whole number from 1 to 500")
		}
		limit = n
	}
	filters := contactFilters(v)
	f := store.ContactsFilter{From: q.From, To: q.To, Queue: q.Queue, Status: status,
		ShortMs: int64(q.ShortAbandonSec) * 1000, Window: q.CallbackWindow, AfterAt: q.From, MaxRows: limit + 1}
	hour, day, err := cellFilters(v)
	if err != nil {
		return ContactsPage{}, nil, err
	}
	if hour >= 0 || day >= 0 {
		f.Spanned = true
		for _, iv := range LocalSpans(q.From, q.To, q.Location, hour, day) {
			f.Spans = append(f.Spans, [2]time.Time{iv.Start, iv.End})
		}
	}
	if s := v.Get("cursor"); s != "" {
		raw, err := base64.RawURLEncoding.DecodeString(s)
		var c contactCursor
		if err != nil || json.Unmarshal(raw, &c) != nil || c.Filters != filters {
			return ContactsPage{}, nil, invalid("cursor", "is not a cursor issued for these filters")
		}
		f.AfterAt, f.AfterID = c.At, c.ID
	}
	rows, err := fetch(f)
	if err != nil {
		return ContactsPage{}, nil, err
	}
	out := ContactsPage{Data: []Contact{}}
	var ids []int64
	for i, a := range rows {
		if i == limit {
			last := rows[i-1]
			out.Page.HasMore = true
			raw, _ := json.Marshal(contactCursor{At: last.At, ID: last.EventID, Filters: filters})
			next := base64.RawURLEncoding.EncodeToString(raw)
			out.Page.NextCursor = &next
			break
		}
		out.Data = append(out.Data, contact(q, a, full))
		ids = append(ids, a.EventID)
	}
	return out, ids, nil
}

// cellFilters reads the hour of the day (0-23) and the day of the week
// (Monday ... Sunday) that name a cell of a report grouped by them; -1 for
// one not given.
func cellFilters(v url.Values) (hour int, day time.Weekday, err error) {
	hour, day = -1, -1
	if s := v.Get("hourOfDay"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 23 {
			return 0, 0, invalid("hourOfDay", "must be a whole number from 0 to 23")
		}
		hour = n
	}
	if s := v.Get("dayOfWeek"); s != "" {
		for d := time.Sunday; d <= time.Saturday; d++ {
			if strings.EqualFold(s, d.String()) {
				day = d
			}
		}
		if day < 0 {
			return 0, 0, invalid("dayOfWeek", "must be a day's English name, as the report's groups give it (Monday ... Sunday)")
		}
	}
	return hour, day, nil
}

// LocalSpans are the parts of [from, to) whose local time in loc falls in
// the hour of the day hour and on the day of the week day (-1: any), as
// the report sorts abandons into those groups; adjacent parts are joined.
// Within one offset of the zone, the local hour changes only on the hour
// of the local clock, so the range is walked from one such boundary, or
// change of offset, to the next.
func LocalSpans(from, to time.Time, loc *time.Location, hour int, day time.Weekday) []Interval {
	var out []Interval
	for t := from; t.Before(to); {
		l := t.In(loc)
		_, off := l.Zone()
		local := t.Unix() + int64(off)
		rem := local % 3600
		if rem < 0 {
			rem += 3600
		}
		next := time.Unix(local-rem+3600-int64(off), 0)
		if _, end := l.ZoneBounds(); !end.IsZero() && end.Before(next) {
			next = end
		}
		if to.Before(next) {
			next = to
		}
		if (hour < 0 || l.Hour() == hour) && (day < 0 || l.Weekday() == day) {
			if n := len(out); n > 0 && out[n-1].End.Equal(t) {
				out[n-1].End = next
			} else {
				out = append(out, Interval{t, next})
			}
		}
		t = next
	}
	return out
}

func contactFilters(v url.Values) string {
	c := url.Values{}
	for k, vs := range v {
		if k != "cursor" && k != "limit" {
			c[k] = vs
		}
	}
	sum := sha256.Sum256([]byte(c.Encode()))
	return hex.EncodeToString(sum[:8])
}

func contact(q Query, a store.AbandonContact, full bool) Contact {
	c := Contact{EventID: strconv.FormatInt(a.EventID, 10), At: a.At.In(q.Location).Format(time.RFC3339Nano),
		Queue: a.Queue, Phone: a.Phone, Status: "not_called_back"}
	if !full && c.Phone != "" {
		c.Phone = redact.Phone(c.Phone)
	}
	if a.TimeInQueueMs != nil {
		s := float64(*a.TimeInQueueMs) / 1000
		c.TimeInQueueSec = &s
		c.Short = *a.TimeInQueueMs < int64(q.ShortAbandonSec)*1000
	}
	if a.CalledBack {
		c.Status = "called_back"
		c.Callback = &Callback{At: a.CallbackAt.In(q.Location).Format(time.RFC3339Nano), AgentID: a.CallbackAgent,
			DelaySec: a.CallbackAt.Sub(a.At).Seconds(), Attempts: a.Attempts}
		if !full {
			c.Callback.AgentID = redact.ID(c.Callback.AgentID)
		}
	}
	return c
}

// WriteContactsCSV writes the page as CSV.
func WriteContactsCSV(w io.Writer, p ContactsPage) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"eventId", "at", "queue", "phone", "timeInQueueSec", "short", "status", "callbackAt", "callbackAgentId", "callbackDelaySec", "callbackAttempts"}) //nolint:errcheck
	for _, c := range p.Data {
		tiq := ""
		if c.TimeInQueueSec != nil {
			tiq = strconv.FormatFloat(*c.TimeInQueueSec, 'f', -1, 64)
		}
		row := []string{c.EventID, c.At, c.Queue, c.Phone, tiq, strconv.FormatBool(c.Short), c.Status, "", "", "", "0"}
		if c.Callback != nil {
			row[7], row[8] = c.Callback.At, c.Callback.AgentID
			row[9] = strconv.FormatFloat(c.Callback.DelaySec, 'f', -1, 64)
			row[10] = strconv.FormatInt(c.Callback.Attempts, 10)
		}
		cw.Write(row) //nolint:errcheck
	}
	cw.Flush()
	return cw.Error()
}
