package store

import (
	"context"
	"time"

	"github.com/casetrail/casetrail/db"
)

// AbandonFact is one distinct abandon as the report counts it.
type AbandonFact struct {
	At         time.Time // abandoned at
	ReceivedAt time.Time
	// Queue and Phone (E.164, or empty when the event named none) are valid
	// only during the call that hands the fact over.
	Queue, Phone []byte
	// TimeInQueueMs is -1 when the event did not state it.
	TimeInQueueMs int64
	// CallbackDelayUs is the time in microseconds from the abandon to the
	// first outbound call to its number after it, whenever that was; -1 when
	// there is none yet.
	CallbackDelayUs int64
}

// EachAbandonFact hands fn the abandons in [from, to), optionally of one
// queue, oldest first, from the projection the ingest path maintains. The
// rows are not collected: a report over a million abandons holds none of
// them.
func (s *Store) EachAbandonFact(ctx context.Context, from, to time.Time, queue *string, fn func(*AbandonFact)) error {
	var a AbandonFact
	err := s.eachAbandonFactRow(ctx, db.ReportAbandonFactsParams{FromAt: from, ToAt: to, Queue: queue},
		func(r *abandonFactRow) {
			a = AbandonFact{At: r.AbandonedAt, ReceivedAt: r.ReceivedAt, Queue: r.Queue, Phone: r.Phone,
				TimeInQueueMs: -1, CallbackDelayUs: -1}
			if r.HasTimeInQueue {
				a.TimeInQueueMs = r.TimeInQueueMs
			}
			if r.HasCallback {
				a.CallbackDelayUs = r.CallbackAt.Sub(r.AbandonedAt).Microseconds()
			}
			fn(&a)
		})
	return interpretError(err)
}

// HandledCount is the number of inbound work items closed in one span.
// Closes of the same work item id at the same time count once; a close
// without a work item id counts on its own.
type HandledCount struct {
	Start  time.Time // the span's start
	Closed int
	// LastReceived is the latest receipt time among the span's closes,
	// repeats included.
	LastReceived time.Time
}

// HandledCounts counts the inbound work items closed in each span
// [bounds[i], bounds[i+1]).
func (s *Store) HandledCounts(ctx context.Context, bounds []time.Time) ([]HandledCount, error) {
	if len(bounds) < 2 {
		return nil, nil
	}
	rows, err := s.planned.ReportHandledCounts(ctx, db.ReportHandledCountsParams{
		Bounds: bounds, FromAt: bounds[0], ToAt: bounds[len(bounds)-1],
	})
	if err != nil {
		return nil, interpretError(err)
	}
	out := make([]HandledCount, 0, len(rows))
	for _, r := range rows {
		if r.Bucket < 1 || int(r.Bucket) >= len(bounds) {
			continue
		}
		out = append(out, HandledCount{Start: bounds[r.Bucket-1], Closed: int(r.Closed), LastReceived: r.LastReceived})
	}
	return out, nil
}

// Handled reads the inbound work items closed in [from, to), each at its
// closing time: a work item closed once or repeated under other keys
// counts one, closes without a work item id at one time count each.
func (s *Store) Handled(ctx context.Context, from, to time.Time) ([]HandledCount, error) {
	rows, err := s.planned.ReportHandled(ctx, db.ReportHandledParams{FromAt: from, ToAt: to})
	if err != nil {
		return nil, interpretError(err)
	}
	out := make([]HandledCount, len(rows))
	for i, r := range rows {
		out[i] = HandledCount{Start: r.OccurredAt, Closed: int(r.Closed), LastReceived: r.LastReceived}
	}
	return out, nil
}

// ContactsFilter selects a page of abandons for the report's drill-down.
type ContactsFilter struct {
	From, To time.Time
	Queue    *string
	// Status is "", "short", "called_back" or "not_called_back".
	Status  string
	ShortMs int64
	Window  time.Duration
	AfterAt time.Time // the page starts after (AfterAt, AfterID)
	AfterID int64
	// Spanned keeps only the abandons within one of Spans, each [start,
	// end): the instants of an hour of the day or a day of the week.
	Spanned bool
	Spans   [][2]time.Time
	MaxRows int
}

// AbandonContact is one abandon of the drill-down with its callback.
type AbandonContact struct {
	EventID       int64
	At            time.Time
	Queue         string
	Phone         string
	TimeInQueueMs *int64
	// CalledBack is true when the first call came within the window;
	// Attempts counts the calls to the number within the window.
	CalledBack    bool
	CallbackAt    time.Time
	CallbackAgent string
	Attempts      int64
}

// AbandonContacts reads a page of abandons, oldest first.
func (s *Store) AbandonContacts(ctx context.Context, f ContactsFilter) ([]AbandonContact, error) {
	starts, ends := make([]time.Time, len(f.Spans)), make([]time.Time, len(f.Spans))
	for i, sp := range f.Spans {
		starts[i], ends[i] = sp[0], sp[1]
	}
	rows, err := s.q.ReportAbandonContacts(ctx, db.ReportAbandonContactsParams{
		WindowSeconds: int64(f.Window / time.Second), FromAt: f.From, ToAt: f.To, Queue: f.Queue,
		AfterAt: f.AfterAt, AfterID: f.AfterID, Status: f.Status, ShortMs: f.ShortMs,
		Spanned: f.Spanned, SpanStarts: starts, SpanEnds: ends, MaxRows: int32(f.MaxRows),
	})
	if err != nil {
		return nil, interpretError(err)
	}
	out := make([]AbandonContact, len(rows))
	for i, r := range rows {
		out[i] = AbandonContact{EventID: r.EventID, At: r.AbandonedAt, Queue: r.Queue, Phone: r.Phone,
			TimeInQueueMs: r.TimeInQueueMs, CalledBack: r.CalledBack, Attempts: r.Attempts}
		if r.CalledBack {
			out[i].CallbackAt, out[i].CallbackAgent = r.CallbackAt, r.CallbackAgent
		}
	}
	return out, nil
}
