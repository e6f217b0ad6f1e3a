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
// not_called_back or short), oldest first, a page at a time. Phone numbers
// are masked unless full.
func Contacts(q Query, v url.Values, abandons []store.Abandon, full bool) (ContactsPage, []int64, error) {
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
	var after *contactCursor
	if s := v.Get("cursor"); s != "" {
		raw, err := base64.RawURLEncoding.DecodeString(s)
		var c contactCursor
		if err != nil || json.Unmarshal(raw, &c) != nil || c.Filters != filters {
			return ContactsPage{}, nil, invalid("cursor", "is not a cursor issued for these filters")
		}
		after = &c
	}
	out := ContactsPage{Data: []Contact{}}
	var ids []int64
	var last store.Abandon
	for _, a := range abandons {
		if after != nil && (a.At.Before(after.At) || a.At.Equal(after.At) && a.EventID <= after.ID) {
			continue
		}
		c := contact(q, a, full)
		switch {
		case status == "short" && !c.Short,
			status == "called_back" && c.Callback == nil,
			status == "not_called_back" && c.Callback != nil:
			continue
		}
		if len(out.Data) == limit {
			out.Page.HasMore = true
			raw, _ := json.Marshal(contactCursor{At: last.At, ID: last.EventID, Filters: filters})
			next := base64.RawURLEncoding.EncodeToString(raw)
			out.Page.NextCursor = &next
			break
		}
		out.Data = append(out.Data, c)
		ids = append(ids, a.EventID)
		last = a
	}
	return out, ids, nil
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

func contact(q Query, a store.Abandon, full bool) Contact {
	c := Contact{EventID: strconv.FormatInt(a.EventID, 10), At: a.At.In(q.Location).Format(time.RFC3339),
		Queue: a.Queue, Phone: a.Phone, Status: "not_called_back"}
	if !full && c.Phone != "" {
		c.Phone = redact.Phone(c.Phone)
	}
	if a.TimeInQueueMs != nil {
		s := float64(*a.TimeInQueueMs) / 1000
		c.TimeInQueueSec = &s
		c.Short = s < float64(q.ShortAbandonSec)
	}
	if a.Callbacks > 0 {
		c.Status = "called_back"
		c.Callback = &Callback{At: a.CallbackAt.In(q.Location).Format(time.RFC3339), AgentID: a.CallbackAgent,
			DelaySec: a.CallbackAt.Sub(a.At).Seconds(), Attempts: a.Callbacks}
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
