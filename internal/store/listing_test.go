package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/casetrail/casetrail/db"
	"github.com/casetrail/casetrail/internal/store"
)

// Ids of the access log and of kept rejected requests are taken in commit
// order: while one insert is still to commit, the next waits for it, so a
// reader paging by id never passes a row that commits later. (With ids
// from a sequence alone, the next row committed at once with the larger
// id, and a reader that had read it never saw the first.)
func TestListingIDsFollowCommits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	for _, c := range []struct {
		name  string
		table string
		lock  int64
		held  func(q *db.Queries) (int64, error) // the first insert, left to commit later; its id
		next  func() error                       // the next, through the store
		list  func() ([]string, error)           // every row's key or source, in id order
	}{
		{
			name: "access log", table: "access_log", lock: 7310011,
			held: func(q *db.Queries) (int64, error) {
				row, err := q.AccessLogInsert(ctx, db.AccessLogInsertParams{KeyName: "late", Role: "auditor", Method: "GET",
					Route: "/v1/log/key", Path: "/v1/log/key", Params: []byte("{}"), Status: 200, EventIds: []int64{}})
				return row.ID, err
			},
			next: func() error {
				return b.store.RecordAccess(ctx, store.Access{KeyName: "early", Role: "auditor", Method: "GET",
					Route: "/v1/log/key", Path: "/v1/log/key", Params: []byte("{}"), Status: 200})
			},
			list: func() ([]string, error) {
				rows, err := b.store.AccessLog(ctx, 0, nil, 10)
				keys := make([]string, len(rows))
				for i, r := range rows {
					keys[i] = r.KeyName
				}
				return keys, err
			},
		},
		{
			name: "rejected requests", table: "rejected_requests", lock: 7310012,
			held: func(q *db.Queries) (int64, error) {
				sum := sha256.Sum256([]byte("{"))
				return q.RejectedInsert(ctx, db.RejectedInsertParams{ReceivedAt: time.Now(), Source: "late", Status: 400,
					Cause: "invalid_json", Credential: "hmac:00", Body: []byte("{"), BodySha256: sum[:], BodySize: 1})
			},
			next: func() error {
				// Another body: the same one would wait for the first's
				// transaction before the turn, at the body's key.
				_, err := b.store.Reject(ctx, store.Rejected{ReceivedAt: time.Now(), Source: "early", Status: 400,
					Cause: "invalid_json", Credential: "hmac:00", Body: []byte("["), BodySize: 1})
				return err
			},
			list: func() ([]string, error) {
				rows, err := b.store.Rejections(ctx, 0, nil, 10)
				sources := make([]string, len(rows))
				for i, r := range rows {
					sources[i] = r.Source
				}
				return sources, err
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, err := pgx.Connect(ctx, b.db.URL)
			require.NoError(t, err)
			defer conn.Close(context.Background())
			tx, err := conn.Begin(ctx)
			require.NoError(t, err)
			defer tx.Rollback(context.Background()) //nolint:errcheck
			heldID, err := c.held(db.New(tx))
			require.NoError(t, err)

			done := make(chan error, 1)
			go func() { done <- c.next() }()
			// The next insert waits for the first's commit.
			watch, err := pgx.Connect(ctx, b.db.URL)
			require.NoError(t, err)
			defer watch.Close(context.Background())
			waitForLockWait(t, watch, func() (string, bool) {
				select {
				case err := <-done:
					return fmt.Sprintf("the next insert ended (%v) while the first was still to commit", err), true
				default:
					return "", false
				}
			}, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = $1`, c.lock)
			// It waits before taking its id: none is taken after the first's.
			var last int64
			require.NoError(t, watch.QueryRow(ctx, `SELECT pg_sequence_last_value(pg_get_serial_sequence($1, 'id')::regclass)`,
				c.table).Scan(&last))
			require.Equal(t, heldID, last, "the waiting insert has not taken an id")

			require.NoError(t, tx.Commit(ctx))
			require.NoError(t, <-done)
			seen, err := c.list()
			require.NoError(t, err)
			require.Equal(t, []string{"late", "early"}, seen, "in the order they committed")
		})
	}
}

// A rejected request's body is written before its row takes its turn: a
// large body (a 413's is kept up to max_body_bytes) is not written while
// the refusals behind it wait for that turn. A body sent again is stored
// once, and each row reads it back.
func TestRejectedBodyIsWrittenBeforeItsTurn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	body := bytes.Repeat([]byte("refused body "), 40_000)
	sum := sha256.Sum256(body)

	holder, err := pgx.Connect(ctx, b.db.URL)
	require.NoError(t, err)
	defer holder.Close(context.Background())
	tx, err := holder.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(context.Background()) //nolint:errcheck
	// A row being kept holds the turn.
	_, err = tx.Exec(ctx, "SELECT pg_advisory_xact_lock(7310012)")
	require.NoError(t, err)

	type kept struct {
		id  int64
		err error
	}
	done := make(chan kept, 1)
	go func() {
		id, err := b.store.Reject(ctx, store.Rejected{ReceivedAt: time.Now(), Source: "s", Status: 413,
			Cause: "body_too_large", Credential: "hmac:00", Body: body, BodySize: int64(len(body)) + 1, BodyTruncated: true})
		done <- kept{id, err}
	}()
	watch, err := pgx.Connect(ctx, b.db.URL)
	require.NoError(t, err)
	defer watch.Close(context.Background())
	waitForLockWait(t, watch, func() (string, bool) {
		select {
		case k := <-done:
			return fmt.Sprintf("the rejected request was kept (%d, %v) while another row held the turn", k.id, k.err), true
		default:
			return "", false
		}
	}, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = 7310012`)

	// The body is written already: another insert of it waits for the
	// waiting request's transaction.
	probe, err := pgx.Connect(ctx, b.db.URL)
	require.NoError(t, err)
	defer probe.Close(context.Background())
	var probePID int
	require.NoError(t, probe.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&probePID))
	probed := make(chan error, 1)
	go func() {
		_, err := probe.Exec(ctx, "INSERT INTO rejected_bodies (sha256, body) VALUES ($1, $2) ON CONFLICT (sha256) DO NOTHING", sum[:], body)
		probed <- err
	}()
	waitForLockWait(t, watch, func() (string, bool) {
		select {
		case err := <-probed:
			return fmt.Sprintf("the body was not written before the turn: another insert of it ended (%v) at once", err), true
		default:
			return "", false
		}
	}, `SELECT count(*) FROM pg_locks WHERE pid = $1 AND locktype = 'transactionid' AND NOT granted`, probePID)

	require.NoError(t, tx.Commit(ctx))
	first := <-done
	require.NoError(t, first.err)
	require.NoError(t, <-probed)
	again, err := b.store.Reject(ctx, store.Rejected{ReceivedAt: time.Now(), Source: "s", Status: 413,
		Cause: "body_too_large", Credential: "hmac:00", Body: body, BodySize: int64(len(body)) + 1, BodyTruncated: true})
	require.NoError(t, err)
	require.NotEqual(t, first.id, again)
	var stored int
	require.NoError(t, watch.QueryRow(ctx, "SELECT count(*) FROM rejected_bodies").Scan(&stored))
	require.Equal(t, 1, stored, "a body sent again is stored once")

	for _, id := range []int64{first.id, again} {
		r, err := b.store.Rejection(ctx, id)
		require.NoError(t, err)
		require.Equal(t, body, r.Body)
		require.Equal(t, sum[:], r.BodySHA256)
		require.True(t, r.BodyTruncated)
	}
}

// Rows kept before the bodies had a table of their own hold the body
// themselves, and read back as they did.
func TestRejectedRowsWithTheirOwnBody(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	body := []byte(`{"kept":"in the row"`)
	conn := b.db.Connect(t)
	var id int64
	require.NoError(t, conn.QueryRow(ctx, `INSERT INTO rejected_requests (received_at, source, status, cause, credential, body, body_size)
		VALUES (now(), 's', 400, 'invalid_json', 'hmac:00', $1, $2) RETURNING id`, body, len(body)).Scan(&id))
	r, err := b.store.Rejection(ctx, id)
	require.NoError(t, err)
	sum := sha256.Sum256(body)
	require.Equal(t, body, r.Body)
	require.Equal(t, sum[:], r.BodySHA256)
}

// A kept rejected request's body can be erased (right to erasure): its
// body, detail and event type are blanked, with a record of when and why,
// for every request that sent the same body; the rest of the request stays.
// Only that recording transaction may blank them, and a body sent again
// after its erasure is kept.
func TestExpungeRejected(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	reject := func(body, eventType, detail string) int64 {
		id, err := b.store.Reject(ctx, store.Rejected{ReceivedAt: time.Now(), Source: "hooks", EventType: eventType,
			Status: 404, Cause: "unknown_event", Detail: detail, Credential: "api-key:00", Body: []byte(body),
			BodySize: int64(len(body))})
		require.NoError(t, err)
		return id
	}
	phi := `{"patient":"Ann Smith","phone":"+14155550100"}`
	asked := reject(phi, "+14155550100", "no event +14155550100")
	same := reject(phi, "other", "the same body again")
	other := reject(`{"n":1}`, "kept", "another body")
	conn := b.db.Connect(t)
	var old int64 // kept before bodies had a table of their own
	require.NoError(t, conn.QueryRow(ctx, `INSERT INTO rejected_requests (received_at, source, status, cause, credential, body, body_size)
		VALUES (now(), 'hooks', 400, 'invalid_json', 'api-key:00', '{"ssn":', 7) RETURNING id`).Scan(&old))

	_, err := b.store.ExpungeRejected(ctx, []int64{asked}, "erasure request 7")
	require.Error(t, err, "the application's role may not erase")
	_, err = conn.Exec(ctx, `UPDATE rejected_bodies SET body = ''`)
	require.ErrorContains(t, err, "append-only", "nor may anyone without a record")

	owner, err := store.Open(ctx, b.db.URL, store.Options{Owner: true})
	require.NoError(t, err)
	defer owner.Close()
	_, err = owner.ExpungeRejected(ctx, []int64{asked, 999999}, "erasure request 7")
	require.ErrorIs(t, err, store.ErrRefused, "an id that does not exist refuses the whole expunge")
	done, err := owner.ExpungeRejected(ctx, []int64{asked, old}, "erasure request 7")
	require.NoError(t, err)
	require.Equal(t, []store.RejectedExpungeResult{{ID: asked}, {ID: old}, {ID: same, With: asked}}, done)

	phiSum := sha256.Sum256([]byte(phi))
	for _, id := range []int64{asked, same} {
		r, err := b.store.Rejection(ctx, id)
		require.NoError(t, err)
		require.Empty(t, r.Body)
		require.Empty(t, r.Detail)
		require.Empty(t, r.EventType)
		require.Equal(t, phiSum[:], r.BodySHA256, "the erased body's SHA-256 stays with the record")
		require.NotNil(t, r.Expunged)
		require.Equal(t, "erasure request 7", r.Expunged.Reason)
		require.Equal(t, 404, r.Status)
		require.EqualValues(t, len(phi), r.BodySize)
	}
	r, err := b.store.Rejection(ctx, old)
	require.NoError(t, err)
	require.Empty(t, r.Body)
	require.NotNil(t, r.Expunged)
	r, err = b.store.Rejection(ctx, other)
	require.NoError(t, err)
	require.Equal(t, `{"n":1}`, string(r.Body), "another body is left")
	require.Nil(t, r.Expunged)
	var left int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM rejected_bodies WHERE position($1::bytea IN body) > 0",
		[]byte("Ann Smith")).Scan(&left))
	require.Zero(t, left)

	again, err := owner.ExpungeRejected(ctx, []int64{asked}, "again")
	require.NoError(t, err)
	require.Equal(t, []store.RejectedExpungeResult{{ID: asked, Already: true}}, again)
	rows, err := b.store.Rejections(ctx, 0, nil, 10)
	require.NoError(t, err)
	require.NotNil(t, rows[0].Expunged, "the listing says so too")

	// Sent again after its erasure, the body is kept, in its own row.
	resent := reject(phi, "abandoned-conversation", "sent again")
	r, err = b.store.Rejection(ctx, resent)
	require.NoError(t, err)
	require.Equal(t, phi, string(r.Body))
	require.Equal(t, phiSum[:], r.BodySHA256)
	require.Nil(t, r.Expunged)
}

// waitForLockWait polls pg_locks on watch with query, a count of lock
// waits, until it counts one; the waiter must not end first (ended reports
// whether it did, and how).
func waitForLockWait(t *testing.T, watch *pgx.Conn, ended func() (string, bool), query string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for waiting := 0; waiting == 0; {
		if why, ok := ended(); ok {
			t.Fatal(why)
		}
		require.NoError(t, watch.QueryRow(ctx, query, args...).Scan(&waiting))
	}
}
