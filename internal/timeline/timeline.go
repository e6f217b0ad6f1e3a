// Package timeline answers the read API's listings: case and contact
// timelines and the global feed. It parses and validates their parameters,
// owns the opaque cursors (bound to the filters they were issued for), and
// shapes stored rows into the API's event objects, redacted for the reader's
// role.
package timeline

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/casetrail/casetrail/internal/normalize"
	"github.com/casetrail/casetrail/internal/redact"
	"github.com/casetrail/casetrail/internal/store"
)

// InvalidParam is a query parameter the reader must fix (400).
type InvalidParam struct {
	Param  string
	Detail string
}

func (e *InvalidParam) Error() string { return e.Param + ": " + e.Detail }

func invalid(param, format string, args ...any) error {
	return &InvalidParam{Param: param, Detail: fmt.Sprintf(format, args...)}
}

// Page is the listing envelope of every read route.
type Page struct {
	NextCursor *string `json:"nextCursor"`
	HasMore    bool    `json:"hasMore"`
}

// Listing is a page of events.
type Listing struct {
	Data []Event `json:"data"`
	Page Page    `json:"page"`
}

// Limits of a page.
const (
	DefaultLimit = 100
	MaxLimit     = 500
)

// Reader reads events for the listings.
type Reader interface {
	CaseKeys(ctx context.Context, q *store.TimelineQuery) error
	Timeline(ctx context.Context, q store.TimelineQuery) ([]store.EventRow, error)
	Feed(ctx context.Context, q store.FeedQuery) ([]store.EventRow, error)
}

// common are the parameters every listing shares.
type common struct {
	limit int
	types []string // ILIKE patterns: a type matches whatever its case
	// typesKey is the types as given, for the cursor's fingerprint: a
	// cursor stays valid whatever patterns they are matched by.
	typesKey string
	from, to *time.Time
	cursor   string
}

func parseCommon(q url.Values) (common, error) {
	c := common{limit: DefaultLimit, types: []string{"%"}, typesKey: "%", cursor: q.Get("cursor")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxLimit {
			return c, invalid("limit", "must be a whole number from 1 to %d", MaxLimit)
		}
		c.limit = n
	}
	// A list may also be given as the parameter repeated
	// (?types=A&types=B), as form encoding writes one.
	given := slices.DeleteFunc(slices.Clone(q["types"]), func(v string) bool { return v == "" })
	if v := strings.Join(given, ","); v != "" {
		c.types = nil
		var patterns []string
		for _, t := range strings.Split(v, ",") {
			t = strings.TrimSpace(t)
			if t == "" {
				continue
			}
			// Matched whatever the case (ILIKE): order_created finds
			// ORDER_CREATED, and a type a sender writes in mixed case.
			p := likePattern(t)
			patterns = append(patterns, p)
			if !slices.Contains(c.types, p) {
				c.types = append(c.types, p)
			}
		}
		if len(c.types) == 0 {
			return c, invalid("types", "names no type")
		}
		c.typesKey = strings.Join(patterns, ",")
	}
	var err error
	if c.from, err = parseTime(q, "from"); err != nil {
		return c, err
	}
	if c.to, err = parseTime(q, "to"); err != nil {
		return c, err
	}
	if c.from != nil && c.to != nil && !c.from.Before(*c.to) {
		return c, invalid("to", "must be after from")
	}
	return c, nil
}

// likePattern turns a type filter with * wildcards into a LIKE pattern;
// event names contain '_', which LIKE would otherwise read as a wildcard.
func likePattern(t string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`, `*`, `%`)
	return r.Replace(t)
}

func parseTime(q url.Values, name string) (*time.Time, error) {
	v := q.Get(name)
	if v == "" {
		return nil, nil
	}
	t, err := ParseTime(v)
	if err != nil {
		return nil, invalid(name, "%q is not an RFC 3339 time (e.g. 2024-05-01T10:00:00+02:00)", v)
	}
	t = t.UTC()
	return &t, nil
}

// ParseTime reads an RFC 3339 time from a query parameter, with any offset
// and fraction. RFC 3339 allows a lower-case "t" and "z", and a query
// decodes an unescaped "+" as a space, so "2024-05-01T10:00:00 02:00" is
// read as written with "+02:00".
func ParseTime(v string) (time.Time, error) {
	b := []byte(strings.ToUpper(v))
	if n := len(b); n >= 25 && b[n-6] == ' ' && b[n-3] == ':' {
		b[n-6] = '+'
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	// The store keeps microseconds, and every range is [from, to): a bound
	// between two microseconds is taken as the next one, which keeps
	// exactly the stored times the bound as given keeps.
	if r := t.Truncate(time.Microsecond); err == nil && !r.Equal(t) {
		t = r.Add(time.Microsecond)
	}
	return t, err
}

// cursor is the decoded form of an opaque page cursor.
type cursor struct {
	At      *time.Time `json:"a,omitempty"` // timelines: (occurred_at, id)
	Index   *int64     `json:"l,omitempty"` // the feed: log index
	ID      int64      `json:"i,omitempty"`
	Filters string     `json:"f"`
}

func (c cursor) encode() *string {
	raw, _ := json.Marshal(c)
	s := base64.RawURLEncoding.EncodeToString(raw)
	return &s
}

func decodeCursor(s, filters string) (cursor, error) {
	var c cursor
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(raw, &c) != nil {
		return c, invalid("cursor", "is not a cursor this server issued")
	}
	if c.Filters != filters {
		return c, invalid("cursor", "was issued for other filters; start again without a cursor")
	}
	return c, nil
}

// fingerprint binds a cursor to everything that selects and orders rows.
func fingerprint(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:8])
}

func timeString(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.Format(time.RFC3339Nano)
}

// TimelineRequest names whose timeline is read.
type TimelineRequest struct {
	CaseID  string // a case's timeline, or
	Contact string // a phone number (any format) or customer id
	Query   url.Values
}

// Timeline reads one page of a case's or a contact's timeline.
func Timeline(ctx context.Context, r Reader, req TimelineRequest, opts normalize.Options, full bool) (Listing, error) {
	c, err := parseCommon(req.Query)
	if err != nil {
		return Listing{}, err
	}
	order := req.Query.Get("order")
	switch order {
	case "":
		order = "asc"
	case "asc", "desc":
	default:
		return Listing{}, invalid("order", "must be asc or desc")
	}
	q := store.TimelineQuery{TypePatterns: c.types, From: c.from, To: c.to, Ascending: order == "asc", Limit: c.limit + 1}
	scope := "case:" + req.CaseID
	if req.CaseID != "" {
		q.CaseID = &req.CaseID
		if err := r.CaseKeys(ctx, &q); err != nil {
			return Listing{}, err
		}
	} else {
		scope = "contact:" + req.Contact
		q.CustomerIDs = []string{req.Contact}
		if phone, ok := normalize.NormalizePhone(req.Contact, opts.DefaultCountryCode); ok {
			q.Phones = []string{phone}
		}
	}
	filters := fingerprint(scope, order, c.typesKey, timeString(c.from), timeString(c.to))
	if c.cursor != "" {
		cur, err := decodeCursor(c.cursor, filters)
		if err != nil {
			return Listing{}, err
		}
		if cur.At == nil {
			return Listing{}, invalid("cursor", "is not a timeline cursor")
		}
		q.AfterAt, q.AfterID = cur.At, cur.ID
	}
	rows, err := r.Timeline(ctx, q)
	if err != nil {
		return Listing{}, err
	}
	l := Listing{Data: make([]Event, 0, min(len(rows), c.limit))}
	if len(rows) > c.limit {
		rows = rows[:c.limit]
		last := rows[len(rows)-1]
		at := last.OccurredAt
		l.Page = Page{HasMore: true, NextCursor: cursor{At: &at, ID: last.ID, Filters: filters}.encode()}
	}
	for _, row := range rows {
		l.Data = append(l.Data, FromRow(row, full))
	}
	return l, nil
}

// FeedPage reads one page of the global feed (limit rows at most; the
// streaming export passes its own limit).
func FeedPage(ctx context.Context, r Reader, q url.Values, full bool) (Listing, error) {
	c, fq, filters, err := feedQuery(q)
	if err != nil {
		return Listing{}, err
	}
	fq.Limit = c.limit + 1
	rows, err := r.Feed(ctx, fq)
	if err != nil {
		return Listing{}, err
	}
	l := Listing{Data: make([]Event, 0, min(len(rows), c.limit))}
	if len(rows) > c.limit {
		rows = rows[:c.limit]
		l.Page.HasMore = true
	}
	// The feed always hands out a cursor, also on an empty first page: a
	// change-data-capture reader polls with it for what commits next.
	switch {
	case len(rows) > 0:
		last := rows[len(rows)-1]
		l.Page.NextCursor = cursor{Index: last.LogIndex, Filters: filters}.encode()
	case c.cursor != "":
		l.Page.NextCursor = &c.cursor
	default:
		start := fq.AfterIndex
		l.Page.NextCursor = cursor{Index: &start, Filters: filters}.encode()
	}
	for _, row := range rows {
		l.Data = append(l.Data, FromRow(row, full))
	}
	return l, nil
}

// FeedStream calls emit for every event of the feed after the cursor, in
// order, reading in pages so that no more than one page is held in memory.
// It returns the cursor after the last event emitted, and whether the feed
// holds more events after it (it stopped at the limit asked for).
func FeedStream(ctx context.Context, r Reader, q url.Values, full bool, emit func(Event) error) (next *string, more bool, err error) {
	c, fq, filters, err := feedQuery(q)
	if err != nil {
		return nil, false, err
	}
	total := 0
	maxRows := -1 // no limit unless asked for
	if q.Get("limit") != "" {
		maxRows = c.limit
	}
	// A stream that finds nothing still ends with a cursor to resume from.
	if c.cursor != "" {
		next = &c.cursor
	} else {
		start := fq.AfterIndex
		next = cursor{Index: &start, Filters: filters}.encode()
	}
	const pageSize = 1000
	for {
		want, last := pageSize, false
		if maxRows >= 0 && maxRows-total <= pageSize {
			want, last = maxRows-total, true
		}
		fq.Limit = want
		if last {
			fq.Limit = want + 1 // one more says whether the feed goes on
		}
		rows, err := r.Feed(ctx, fq)
		if err != nil {
			return next, true, err
		}
		more := len(rows) > want
		if more {
			rows = rows[:want]
		}
		for _, row := range rows {
			if err := emit(FromRow(row, full)); err != nil {
				return next, true, err
			}
			fq.AfterIndex = *row.LogIndex
			next = cursor{Index: row.LogIndex, Filters: filters}.encode()
		}
		total += len(rows)
		if last || len(rows) < want {
			return next, more, nil
		}
	}
}

func feedQuery(q url.Values) (common, store.FeedQuery, string, error) {
	c, err := parseCommon(q)
	if err != nil {
		return c, store.FeedQuery{}, "", err
	}
	fq := store.FeedQuery{AfterIndex: -1, TypePatterns: c.types, From: c.from, To: c.to}
	if v := q.Get("source"); v != "" {
		fq.Source = &v
	}
	filters := fingerprint("feed", q.Get("source"), c.typesKey, timeString(c.from), timeString(c.to))
	if c.cursor != "" {
		cur, err := decodeCursor(c.cursor, filters)
		if err != nil {
			return c, fq, "", err
		}
		if cur.Index == nil {
			return c, fq, "", invalid("cursor", "is not a feed cursor")
		}
		fq.AfterIndex = *cur.Index
	}
	return c, fq, filters, nil
}

// Event is an event as every listing shows it.
type Event struct {
	ID         string          `json:"id"`
	Source     string          `json:"source"`
	Kind       string          `json:"kind"`
	Type       string          `json:"type"`
	OccurredAt time.Time       `json:"occurredAt"`
	ReceivedAt time.Time       `json:"receivedAt"`
	CaseID     *string         `json:"caseId"`
	Actor      json.RawMessage `json:"actor,omitempty"`
	Summary    string          `json:"summary"`
	Changes    json.RawMessage `json:"changes,omitempty"`
	// IdempotencyKey identifies the delivery: the sender's key, or one
	// derived from type and body hash. Consumers of the feed can match
	// their own records with a sender's key; a derived one is shown without
	// its hash to the redacted roles, and to every role once the event is
	// expunged, so it is not unique there.
	IdempotencyKey string       `json:"idempotencyKey"`
	Data           Data         `json:"data"`
	Correlation    *Correlation `json:"correlation,omitempty"`
	// LogIndex is the event's leaf in the tamper-evident log (absent until
	// it is sequenced, within a second of commit).
	LogIndex *int64 `json:"logIndex,omitempty"`
	// Expunged says when and why the event's content was erased (casetrail
	// expunge): its summary, actor, changes and payload are then empty.
	Expunged *Expunged `json:"expunged,omitempty"`
}

// Expunged is the record of an event's erased content.
type Expunged struct {
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

// Data are an event's normalised fields.
type Data struct {
	Phone          *string  `json:"phone,omitempty"`
	CustomerID     *string  `json:"customerId,omitempty"`
	ConversationID *string  `json:"conversationId,omitempty"`
	AgentID        *string  `json:"agentId,omitempty"`
	WorkItemID     *string  `json:"workItemId,omitempty"`
	Queue          *string  `json:"queue,omitempty"`
	TimeInQueueSec *float64 `json:"timeInQueueSec,omitempty"`
	IsOutbound     *bool    `json:"isOutbound,omitempty"`
}

// Correlation says why a timeline holds an event.
type Correlation struct {
	MatchedBy string `json:"matchedBy"`
}

// FromRow shapes a stored row; full is false for readers who may not see
// PHI (phone numbers and e-mail addresses are masked, also inside the
// summary and the changes).
func FromRow(r store.EventRow, full bool) Event {
	e := Event{
		ID:             strconv.FormatInt(r.ID, 10),
		Source:         r.Source,
		Kind:           r.Kind,
		Type:           r.Type,
		OccurredAt:     r.OccurredAt.UTC(),
		ReceivedAt:     r.ReceivedAt.UTC(),
		CaseID:         r.CaseID,
		Actor:          r.Actor,
		Summary:        r.Summary,
		Changes:        r.Changes,
		IdempotencyKey: r.IdempotencyKey,
		Data: Data{
			Phone:          r.Phone,
			CustomerID:     r.CustomerID,
			ConversationID: r.ConversationID,
			AgentID:        r.AgentID,
			WorkItemID:     r.WorkItemID,
			Queue:          r.Queue,
			IsOutbound:     r.IsOutbound,
		},
	}
	if r.TimeInQueueMs != nil {
		sec := float64(*r.TimeInQueueMs) / 1000
		e.Data.TimeInQueueSec = &sec
	}
	e.LogIndex = r.LogIndex
	if r.ExpungedAt != nil && r.ExpungeReason != nil {
		e.Expunged = &Expunged{At: r.ExpungedAt.UTC(), Reason: *r.ExpungeReason}
	}
	if r.MatchedBy != "" {
		e.Correlation = &Correlation{MatchedBy: r.MatchedBy}
	}
	if !full {
		if r.Phone != nil {
			masked := redact.Phone(*r.Phone)
			e.Data.Phone = &masked
		}
		// Ids a platform fills with an e-mail address or a phone number
		// are masked as in the payload beside them.
		for _, id := range []**string{&e.Data.CustomerID, &e.Data.ConversationID, &e.Data.AgentID, &e.Data.WorkItemID} {
			if *id != nil {
				masked := redact.ID(**id)
				*id = &masked
			}
		}
		if len(r.Actor) > 0 {
			e.Actor = redact.Document(r.Actor)
		}
		// A summary or a change names people as the payload does, which
		// may be by e-mail address ("Before resolve by ann@clinic.example",
		// an assignee's address); the stored text stays as it was.
		e.Summary = redact.Text(r.Summary)
		if len(r.Changes) > 0 {
			e.Changes = redact.TextIn(r.Changes)
		}
		if e.Expunged != nil {
			e.Expunged.Reason = redact.Text(e.Expunged.Reason)
		}
	}
	// The plain hash of a small body would let a reader test guesses at what
	// is masked (such as the hidden digits of a number), and anyone at an
	// erased body; a sender's own key is shown as it was sent.
	if !full || e.Expunged != nil {
		e.IdempotencyKey = store.RedactDerivedKey(e.IdempotencyKey, e.Type)
	}
	return e
}
