package store_test

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/casetrail/casetrail/internal/store"
)

// storedEvent is what the timeline reference needs of an event.
type storedEvent struct {
	id                              int64
	occurredAt                      time.Time
	kind, typ                       string
	caseID, phone, customer, thread *string
}

// TestTimelineMatchesReference pages through case and contact timelines,
// in both orders, with several page sizes and filters, and compares every
// page with the same listing computed here from the stored events. The
// store's keys are skewed (one number holds most contact-center events),
// events share occurrence times, and events match several keys at once, in
// partitions of three receipt months; some customer ids are numbers.
func TestTimelineMatchesReference(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	seed := time.Now().UnixNano()
	if v := os.Getenv("CASETRAIL_TEST_SEED"); v != "" {
		var err error
		seed, err = strconv.ParseInt(v, 10, 64)
		require.NoError(t, err)
	}
	t.Logf("seed %d (CASETRAIL_TEST_SEED replays it)", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 1))

	pick := func(values ...string) *string {
		v := values[rng.IntN(len(values))]
		if v == "" {
			return nil
		}
		return &v
	}
	base := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	conn := b.db.Connect(t)
	_, err := conn.Exec(ctx, `SELECT casetrail_ensure_partitions((date_trunc('month', now()) - interval '2 months')::date, 3)`)
	require.NoError(t, err)
	var events []storedEvent
	for i := range 700 {
		e := storedEvent{occurredAt: base.Add(time.Duration(rng.IntN(120)) * time.Minute)}
		if rng.IntN(2) == 0 {
			e.kind, e.typ = "service-hooks", *pick("outbound-call", "abandoned-conversation", "workitem-closed")
			e.phone = pick("+447700900001", "+447700900001", "+447700900001", "+447700900002", "")
			e.customer = pick("cust-1", "cust-2", "+447700900001", "", "")
			e.thread = pick("conv-1", "conv-2", "", "")
			e.caseID = pick("case-1", "", "", "")
		} else {
			e.kind, e.typ = "case-updates", *pick("CHANGE_CASE_STATUS", "ORDER_CREATED", "ADD_CASE_COMMENT")
			e.caseID = pick("case-1", "case-2", "case-3")
			e.phone = pick("+447700900001", "+447700900002", "+447700900003", "")
			e.customer = pick("cust-1", "cust-3", "")
			e.thread = pick("conv-2", "", "")
		}
		err := conn.QueryRow(ctx, `
			INSERT INTO events (received_at, occurred_at, source, kind, type, credential, idempotency_key,
			                    case_id, phone, customer_id, conversation_id, body, body_sha256)
			VALUES (date_trunc('month', now()) - ($1::int % 3) * interval '1 month' + interval '1 hour', $2,
			        $3, $3, $4, 'test', $5, $6, $7, $8, $9, '{}', '\x00')
			RETURNING id`,
			i, e.occurredAt, e.kind, e.typ, fmt.Sprint("k", i), e.caseID, e.phone, e.customer, e.thread).Scan(&e.id)
		require.NoError(t, err)
		events = append(events, e)
	}
	_, err = conn.Exec(ctx, "ANALYZE events")
	require.NoError(t, err)

	from, to := base.Add(30*time.Minute), base.Add(75*time.Minute)
	queries := map[string]store.TimelineQuery{
		"number":           {Phones: []string{"+447700900001"}, CustomerIDs: []string{"+447700900001"}},
		"customer":         {CustomerIDs: []string{"cust-1"}},
		"number, customer": {Phones: []string{"+447700900002"}, CustomerIDs: []string{"cust-1"}},
		"conversation":     {ConversationIDs: []string{"conv-1", "conv-2"}},
		"two numbers":      {Phones: []string{"+447700900002", "+447700900003"}, CustomerIDs: []string{"+447700900001"}},
		"unknown":          {Phones: []string{"+447700900009"}},
		"window":           {Phones: []string{"+447700900001"}, From: &from, To: &to},
		"types":            {Phones: []string{"+447700900001"}, TypePatterns: []string{"outbound%", "CHANGE%"}},
	}
	for _, c := range []string{"case-1", "case-2", "case-3", "case-9"} {
		q := store.TimelineQuery{CaseID: &c}
		require.NoError(t, b.store.CaseKeys(ctx, &q))
		queries[c] = q
	}
	for name, q := range queries {
		if q.TypePatterns == nil {
			q.TypePatterns = []string{"%"}
		}
		for _, ascending := range []bool{true, false} {
			q.Ascending = ascending
			want := timelineReference(events, q)
			for _, limit := range []int{1, 7, 100, 1000} {
				q.Limit = limit
				var got []store.EventRow
				q.AfterAt, q.AfterID = nil, 0
				for page := 0; ; page++ {
					require.Less(t, page, len(events)+2, "%s: paging does not end", name)
					rows, err := b.store.Timeline(ctx, q)
					require.NoError(t, err)
					require.LessOrEqual(t, len(rows), limit)
					got = append(got, rows...)
					if len(rows) < limit {
						break
					}
					last := rows[len(rows)-1]
					q.AfterAt, q.AfterID = &last.OccurredAt, last.ID
				}
				what := fmt.Sprintf("%s, ascending %v, limit %d", name, ascending, limit)
				require.Equal(t, want, timelineSummary(got), what)
			}
		}
	}
	// The reference is not trivially empty: the case's and the busy
	// number's timelines hold events matched by every kind of key.
	matched := map[string]bool{}
	for _, name := range []string{"case-1", "case-2", "number, customer"} {
		for _, line := range timelineReference(events, queries[name]) {
			matched[line[strings.LastIndex(line, " ")+1:]] = true
		}
	}
	require.Equal(t, map[string]bool{"caseId": true, "phone": true, "customerId": true, "conversationId": true}, matched)
}

// timelineReference is the timeline q selects from events, one line per
// event: its id, occurrence time and why it matched.
func timelineReference(events []storedEvent, q store.TimelineQuery) []string {
	in := func(v *string, set []string) bool { return v != nil && slices.Contains(set, *v) }
	typeMatches := func(typ string) bool {
		if q.TypePatterns == nil {
			return true
		}
		for _, p := range q.TypePatterns {
			// ILIKE: whatever the case.
			p, typ := strings.ToLower(p), strings.ToLower(typ)
			if prefix, ok := strings.CutSuffix(p, "%"); ok && strings.HasPrefix(typ, prefix) || p == typ {
				return true
			}
		}
		return false
	}
	var sel []storedEvent
	var why []string
	for _, e := range events {
		ownCase := q.CaseID != nil && e.caseID != nil && *e.caseID == *q.CaseID
		byKey := in(e.phone, q.Phones) || in(e.customer, q.CustomerIDs) || in(e.thread, q.ConversationIDs)
		if !ownCase && !(byKey && (q.CaseID == nil || e.kind == "service-hooks")) {
			continue
		}
		if !typeMatches(e.typ) || q.From != nil && e.occurredAt.Before(*q.From) || q.To != nil && !e.occurredAt.Before(*q.To) {
			continue
		}
		sel = append(sel, e)
	}
	slices.SortFunc(sel, func(a, b storedEvent) int {
		c := cmp.Or(a.occurredAt.Compare(b.occurredAt), cmp.Compare(a.id, b.id))
		if !q.Ascending {
			c = -c
		}
		return c
	})
	for _, e := range sel {
		reason := "conversationId"
		switch {
		case q.CaseID != nil && e.caseID != nil && *e.caseID == *q.CaseID:
			reason = "caseId"
		case in(e.phone, q.Phones):
			reason = "phone"
		case in(e.customer, q.CustomerIDs):
			reason = "customerId"
		}
		why = append(why, fmt.Sprintf("%d %s %s", e.id, e.occurredAt.Format(time.RFC3339), reason))
	}
	return why
}

func timelineSummary(rows []store.EventRow) []string {
	var out []string
	for _, r := range rows {
		out = append(out, fmt.Sprintf("%d %s %s", r.ID, r.OccurredAt.UTC().Format(time.RFC3339), r.MatchedBy))
	}
	return out
}
