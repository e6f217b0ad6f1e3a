package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/casetrail/casetrail/db"
)

// abandonFactRow is a row of db.ReportAbandonFacts. Queue and Phone are
// the driver's bytes, valid only until the next row; absent values are
// zero (Phone empty, HasTimeInQueue and HasCallback false).
type abandonFactRow struct {
	AbandonedAt    time.Time
	ReceivedAt     time.Time
	Queue          []byte
	Phone          []byte
	HasTimeInQueue bool
	TimeInQueueMs  int64
	HasCallback    bool
	CallbackAt     time.Time
}

// eachAbandonFactRow runs db.ReportAbandonFacts and hands each row to fn as
// it arrives, without collecting the rows or copying their text: sqlc's
// generated call collects them all. Values in the binary format are decoded
// directly; any other format goes through the driver's Scan.
func (s *Store) eachAbandonFactRow(ctx context.Context, arg db.ReportAbandonFactsParams, fn func(*abandonFactRow)) error {
	rows, err := s.pool.Query(ctx, db.ReportAbandonFacts, arg.FromAt, arg.ToAt, arg.Queue)
	if err != nil {
		return err
	}
	defer rows.Close()
	fields := rows.FieldDescriptions()
	binaryRows := len(fields) == 6
	for i, f := range fields {
		if f.Format != pgtype.BinaryFormatCode && i != 2 && i != 3 {
			binaryRows = false
		}
	}
	var r abandonFactRow
	for rows.Next() {
		if binaryRows {
			v := rows.RawValues()
			if r.AbandonedAt, _, err = timestamptz(v[0]); err != nil {
				return err
			}
			if r.ReceivedAt, _, err = timestamptz(v[1]); err != nil {
				return err
			}
			r.Queue, r.Phone = v[2], v[3]
			if r.TimeInQueueMs, r.HasTimeInQueue, err = bigint(v[4]); err != nil {
				return err
			}
			if r.CallbackAt, r.HasCallback, err = timestamptz(v[5]); err != nil {
				return err
			}
		} else {
			var phone *string
			var tiq *int64
			var cb *time.Time
			var queue string
			if err := rows.Scan(&r.AbandonedAt, &r.ReceivedAt, &queue, &phone, &tiq, &cb); err != nil {
				return err
			}
			r.Queue, r.Phone = []byte(queue), nil
			if phone != nil {
				r.Phone = []byte(*phone)
			}
			r.HasTimeInQueue, r.HasCallback = tiq != nil, cb != nil
			if tiq != nil {
				r.TimeInQueueMs = *tiq
			}
			if cb != nil {
				r.CallbackAt = *cb
			}
		}
		fn(&r)
	}
	return rows.Err()
}

// pgEpochUnixMicro is where PostgreSQL's binary timestamps count from
// (2000-01-01 UTC), in Unix microseconds.
const pgEpochUnixMicro = 946_684_800_000_000

// timestamptz decodes a binary timestamptz; ok is false for NULL.
func timestamptz(b []byte) (t time.Time, ok bool, err error) {
	if b == nil {
		return time.Time{}, false, nil
	}
	if len(b) != 8 {
		return time.Time{}, false, fmt.Errorf("store: timestamptz of %d bytes", len(b))
	}
	us := int64(binary.BigEndian.Uint64(b))
	if us == math.MaxInt64 || us == math.MinInt64 {
		return time.Time{}, false, fmt.Errorf("store: infinite timestamptz")
	}
	return time.UnixMicro(us + pgEpochUnixMicro).UTC(), true, nil
}

// bigint decodes a binary bigint; ok is false for NULL.
func bigint(b []byte) (n int64, ok bool, err error) {
	if b == nil {
		return 0, false, nil
	}
	if len(b) != 8 {
		return 0, false, fmt.Errorf("store: bigint of %d bytes", len(b))
	}
	return int64(binary.BigEndian.Uint64(b)), true, nil
}
