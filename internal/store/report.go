package store

import (
	"context"
	"time"

	"github.com/casetrail/casetrail/db"
)

// Abandon is one abandoned conversation with its first callback.
type Abandon struct {
	EventID       int64
	At            time.Time // abandoned at
	ReceivedAt    time.Time
	Phone         string // E.164, or "" when the event named none
	Queue         string
	TimeInQueueMs *int64
	// Callbacks counts outbound calls to the number after the abandon and
	// within the window; the first one's time and agent follow.
	Callbacks     int64
	CallbackAt    time.Time
	CallbackAgent string
}

// Abandons reads the abandons in [from, to) (optionally of one queue), each
// counted once however often it was delivered, with callbacks matched within
// window.
func (s *Store) Abandons(ctx context.Context, from, to time.Time, queue *string, window time.Duration) ([]Abandon, error) {
	rows, err := s.q.ReportAbandons(ctx, db.ReportAbandonsParams{
		FromAt: from, ToAt: to, Queue: queue, WindowSeconds: int64(window / time.Second),
	})
	if err != nil {
		return nil, interpretError(err)
	}
	out := make([]Abandon, len(rows))
	for i, r := range rows {
		a := Abandon{EventID: r.ID, At: r.OccurredAt, ReceivedAt: r.ReceivedAt, Queue: r.Queue,
			TimeInQueueMs: r.TimeInQueueMs, Callbacks: r.CallbackAttempts}
		if r.Phone != nil {
			a.Phone = *r.Phone
		}
		if a.Callbacks > 0 {
			a.CallbackAt, a.CallbackAgent = r.CallbackAt, r.CallbackAgent
		}
		out[i] = a
	}
	return out, nil
}

// Handled reads the closing and receipt times of inbound work items closed
// in [from, to).
func (s *Store) Handled(ctx context.Context, from, to time.Time) (closed, received []time.Time, err error) {
	rows, err := s.q.ReportHandled(ctx, db.ReportHandledParams{FromAt: from, ToAt: to})
	if err != nil {
		return nil, nil, interpretError(err)
	}
	for _, r := range rows {
		closed = append(closed, r.OccurredAt)
		received = append(received, r.ReceivedAt)
	}
	return closed, received, nil
}
