package timeline

import (
	"context"
	"encoding/base64"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/casetrail/casetrail/internal/normalize"
	"github.com/casetrail/casetrail/internal/store"
)

// queryReader answers every listing with no rows, and records what it was
// asked for.
type queryReader struct {
	timeline *store.TimelineQuery
	feed     *store.FeedQuery
}

func (r *queryReader) CaseKeys(context.Context, *store.TimelineQuery) error { return nil }

func (r *queryReader) Timeline(_ context.Context, q store.TimelineQuery) ([]store.EventRow, error) {
	r.timeline = &q
	return nil, nil
}

func (r *queryReader) Feed(_ context.Context, q store.FeedQuery) ([]store.EventRow, error) {
	r.feed = &q
	return nil, nil
}

// FuzzListingQuery sends any cursor, limit, order, types and range to a
// timeline and to the feed: a client's parameters get a page or an
// InvalidParam (a 400), never a panic, and what reaches the store is in
// range: a limit from 1 to MaxLimit+1, from before to, and a cursor the
// server could have issued for the same filters.
func FuzzListingQuery(f *testing.F) {
	idx, id := int64(41), int64(7)
	at := time.Date(2022, 3, 8, 7, 39, 47, 605245700, time.UTC)
	timelineFilters := fingerprint("case:c-1", "asc", "%", "", "")
	for _, s := range []struct{ cursor, limit, order, types, from, to string }{
		{"", "", "", "", "", ""},
		{*cursor{At: &at, ID: id, Filters: timelineFilters}.encode(), "100", "asc", "", "", ""},
		{*cursor{Index: &idx, Filters: fingerprint("feed", "", "%", "", "")}.encode(), "500", "", "", "", ""},
		{*cursor{Index: &idx, Filters: fingerprint("feed", "", `ORDER\_%,before-%`, "", "")}.encode(), "1", "", "ORDER_*, before-*", "", ""},
		{"eyJhIjoiMDAwMC0wMS0wMVQwMDowMDowMCswMDowMCIsImYiOiIifQ", "0", "desc", ",", "2024-05-01T10:00:00+02:00", "2024-05-01T08:00:00Z"},
		{"!!", "-1", "sideways", "*", "2024-05-01T10:00:00 02:00", "9999-12-31T23:59:59-23:59"},
	} {
		f.Add(s.cursor, s.limit, s.order, s.types, s.from, s.to)
	}
	f.Fuzz(func(t *testing.T, cur, limit, order, types, from, to string) {
		q := url.Values{"cursor": {cur}, "limit": {limit}, "order": {order}, "types": {types}, "from": {from}, "to": {to}}
		r := &queryReader{}
		_, err := Timeline(context.Background(), r, TimelineRequest{CaseID: "c-1", Query: q}, normalize.Options{}, false)
		check(t, err, r.timeline != nil)
		if tq := r.timeline; tq != nil {
			checkRange(t, tq.Limit, tq.From, tq.To)
			if cur != "" && tq.AfterAt == nil {
				t.Fatalf("cursor %q accepted without a position", cur)
			}
		}
		_, err = FeedPage(context.Background(), r, q, false)
		check(t, err, r.feed != nil)
		if fq := r.feed; fq != nil {
			checkRange(t, fq.Limit, fq.From, fq.To)
		}
	})
}

func check(t *testing.T, err error, read bool) {
	t.Helper()
	var inv *InvalidParam
	if err != nil && !errors.As(err, &inv) {
		t.Fatalf("not a 400: %v", err)
	}
	if (err == nil) != read {
		t.Fatalf("error %v, yet the store was read: %v", err, read)
	}
}

func checkRange(t *testing.T, limit int, from, to *time.Time) {
	t.Helper()
	if limit < 2 || limit > MaxLimit+1 {
		t.Fatalf("limit %d", limit)
	}
	if from != nil && to != nil && !from.Before(*to) {
		t.Fatalf("from %v is not before to %v", from, to)
	}
}

// FuzzTimelineCursor sends a timeline cursor whose JSON is anything, under
// the fingerprint of the filters it is sent with, as a client that read
// the format could forge one: it gets a page or a 400, and a position
// PostgreSQL can compare (a time of year 0 to 9999 in UTC, give or take
// a day of offset).
func FuzzTimelineCursor(f *testing.F) {
	filters := fingerprint("case:c-1", "asc", "%", "", "")
	for _, s := range []string{
		`{"a":"2022-03-08T07:39:47.6052457Z","i":7,"f":"` + filters + `"}`,
		`{"a":"0000-01-01T00:00:00+23:59","i":-9223372036854775808,"f":"` + filters + `"}`,
		`{"a":"9999-12-31T23:59:59-23:59","i":9223372036854775807,"f":"` + filters + `"}`,
		`{"l":41,"f":"` + filters + `"}`, `{"a":null,"f":"` + filters + `"}`, `{"f":1}`, `[]`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		cur := base64.RawURLEncoding.EncodeToString(raw)
		r := &queryReader{}
		_, err := Timeline(context.Background(), r, TimelineRequest{CaseID: "c-1", Query: url.Values{"cursor": {cur}}}, normalize.Options{}, false)
		check(t, err, r.timeline != nil)
		if q := r.timeline; q != nil {
			if q.AfterAt == nil && cur != "" {
				t.Fatalf("cursor %s accepted without a position", raw)
			}
			if q.AfterAt != nil {
				if y := q.AfterAt.UTC().Year(); y < -1 || y > 10000 {
					t.Fatalf("cursor %s gives the position %v", raw, q.AfterAt)
				}
			}
		}
	})
}
