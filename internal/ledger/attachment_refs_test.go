package ledger_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/casetrail/casetrail/internal/ledger"
	"github.com/casetrail/casetrail/internal/store"
)

// A reference inserted by someone writing to the database, of an event whose
// document does not refer to the attachment, would keep the attachment when
// the events that do refer to it are expunged; so would one of an event the
// store never held. Verify names the event and the attachment.
func TestVerifyFindsAForgedAttachmentReference(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.store1(t, withAttachments(1, "scan of a passport"))
	other := b.store1(t, withAttachments(2, "a form"))
	b.sequenceAndSign(t)
	require.NoError(t, b.verify(t))

	sum := sha256.Sum256([]byte("scan of a passport"))
	_, err := b.db.Connect(t).Exec(ctx, `INSERT INTO event_attachments (sha256, event_id) VALUES ($1, $2)`, sum[:], other)
	require.NoError(t, err)
	var f *ledger.Finding
	require.ErrorAs(t, b.verify(t), &f)
	require.Equal(t, "inserted", f.Kind, f.Error())
	require.Equal(t, other, f.EventID)
	require.EqualValues(t, 1, f.Index)
	require.Contains(t, f.Detail, fmt.Sprintf("attachment %x", sum))

	// A reference of an event the store never held.
	b.tamper(t, `DELETE FROM event_attachments WHERE event_id = $1 AND sha256 = $2`, other, sum[:])
	require.NoError(t, b.verify(t))
	_, err = b.db.Connect(t).Exec(ctx, `INSERT INTO event_attachments (sha256, event_id) VALUES ($1, 999999)`, sum[:])
	require.NoError(t, err)
	require.ErrorAs(t, b.verify(t), &f)
	require.Equal(t, "inserted", f.Kind, f.Error())
	require.EqualValues(t, 999999, f.EventID)
	require.EqualValues(t, -1, f.Index)
}

// A reference removed (with the triggers off) would let an expunge of the
// other events that share the attachment remove it while the event still
// needs it. Verify names the event and the attachment.
func TestVerifyFindsAMissingAttachmentReference(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.store1(t, withAttachments(1, "a shared letter"))
	id := b.store1(t, withAttachments(2, "a form", "a shared letter"))
	b.sequenceAndSign(t)
	require.NoError(t, b.verify(t))

	sum := sha256.Sum256([]byte("a shared letter"))
	b.tamper(t, `DELETE FROM event_attachments WHERE sha256 = $1 AND event_id = $2`, sum[:], id)
	var f *ledger.Finding
	require.ErrorAs(t, b.verify(t), &f)
	require.Equal(t, "removed", f.Kind, f.Error())
	require.Equal(t, id, f.EventID)
	require.EqualValues(t, 1, f.Index)
	require.Contains(t, f.Detail, fmt.Sprintf("attachment %x", sum))
}

// A store whose references are as ingest, the 00016 backfill and its
// catch-up keep them passes: shared attachments, an attachment twice in one
// document, a repeated delivery, the sender's own hash of a stored
// attachment, an expunged event that shared an attachment, references the
// backfill took (for an event stored before 00016, and for the sender's own
// hash), and the event an earlier server committed while 00016 ran, before
// the catch-up.
func TestVerifyPassesWithAttachmentReferences(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	owner := b.owner(t)
	b.store1(t, withAttachments(1, "a shared letter"))
	b.store1(t, withAttachments(2, "a shared letter", "a form", "a form"))
	again, err := b.store.Ingest(ctx, []store.NewEvent{withAttachments(2, "a shared letter", "a form", "a form")})
	require.NoError(t, err)
	require.True(t, again[0].Duplicate)
	gone := b.store1(t, withAttachments(3, "scan of a passport", "a shared letter"))
	own := newEvent(4) // the sender's own hash of a stored attachment, in its body
	own.Body = []byte(fmt.Sprintf(`{"event":"CHANGE_CASE_STATUS","payload":{"caseId":"c-4","file":{"sha256":"%x"}}}`, sha256.Sum256([]byte("a form"))))
	own.BodySHA256, own.Doc = sha256.Sum256(own.Body), own.Body
	b.store1(t, own)
	b.sequenceAndSign(t)
	require.NoError(t, b.verify(t))

	// Before 00016: an event stored without references, which the backfill
	// finds in its document.
	m, err := store.NewMigrator(b.db.URL)
	require.NoError(t, err)
	defer m.Close()
	require.NoError(t, m.DownTo(ctx, 15, io.Discard))
	conn := b.db.Connect(t)
	_, err = conn.Exec(ctx, `
		INSERT INTO events (id, received_at, occurred_at, source, kind, type, credential, idempotency_key, body, body_sha256, doc)
		SELECT nextval('events_id_seq'), received_at, occurred_at, source, kind, type, credential, 'old-way', body, body_sha256, doc
		FROM events WHERE idempotency_key = 'k-2'`)
	require.NoError(t, err)
	require.NoError(t, m.Up(ctx, io.Discard))
	b.sequenceAndSign(t)
	require.NoError(t, b.verify(t))

	_, err = ledger.Expunge(ctx, owner, b.keys, []int64{gone}, "erasure request 12")
	require.NoError(t, err)
	require.True(t, blobGone(t, b.store, "scan of a passport"))
	require.False(t, blobGone(t, b.store, "a shared letter"))
	require.NoError(t, b.verify(t))

	// An earlier server's event, committed after the backfill's snapshot
	// without references: the next expunge adds them.
	_, err = conn.Exec(ctx, `UPDATE event_attachments_backfill SET horizon = pg_current_xact_id()::text::bigint`)
	require.NoError(t, err)
	earlier := withAttachments(5, "a shared letter")
	_, err = conn.Exec(ctx, `INSERT INTO events (received_at, occurred_at, source, kind, type, credential, idempotency_key, body, body_sha256, doc)
		VALUES (now(), now(), 'case-updates', 'case-updates', 'ADD_COMMENT', 'test', 'earlier-server', '\x7b7d', sha256('\x7b7d'), $1::jsonb)`, string(earlier.Doc))
	require.NoError(t, err)
	b.sequenceAndSign(t)
	require.NoError(t, b.verify(t))
}

// A reference is told from the sender's own hash by its shape, as ingest
// writes it ({"sha256": hex, "size": n}), not by whether the body holds the
// hash: a platform may send a checksum beside the content ingest moved out,
// so the body holds it, and a removed reference must still be found; and a
// body whose hash is written with escapes (or in UTF-16) does not hold it
// literally, though the sender's own hash is no reference.
func TestVerifyTellsReferencesByTheirShape(t *testing.T) {
	t.Parallel()
	b := setup(t)
	content := "a lab result"
	sum := sha256.Sum256([]byte(content))
	checksum := withAttachments(1, content)
	checksum.Body = []byte(fmt.Sprintf(`{"event":"ADD_COMMENT","payload":{"caseId":"c-1","attachments":[{"fileName":"f.pdf","sha256":"%x","content":"YSBsYWIgcmVzdWx0"}]}}`, sum))
	checksum.BodySHA256 = sha256.Sum256(checksum.Body)
	checksum.Doc = []byte(fmt.Sprintf(`{"event":"ADD_COMMENT","payload":{"caseId":"c-1","attachments":[{"fileName":"f.pdf","sha256":"%x","content":{"sha256":"%x","size":%d}}]}}`, sum, sum, len(content)))
	id := b.store1(t, checksum)
	escaped := newEvent(2) // the sender's own hash, its first digit escaped in the body
	hexSum := fmt.Sprintf("%x", sum)
	escaped.Body = []byte(fmt.Sprintf(`{"event":"CHANGE_CASE_STATUS","payload":{"caseId":"c-2","file":{"sha256":"\u00%x%s"}}}`, hexSum[0], hexSum[1:]))
	escaped.BodySHA256 = sha256.Sum256(escaped.Body)
	escaped.Doc = []byte(fmt.Sprintf(`{"event":"CHANGE_CASE_STATUS","payload":{"caseId":"c-2","file":{"sha256":"%s"}}}`, hexSum))
	b.store1(t, escaped)
	b.sequenceAndSign(t)
	require.NoError(t, b.verify(t))

	b.tamper(t, `DELETE FROM event_attachments WHERE sha256 = $1 AND event_id = $2`, sum[:], id)
	var f *ledger.Finding
	require.ErrorAs(t, b.verify(t), &f)
	require.Equal(t, "removed", f.Kind, f.Error())
	require.Equal(t, id, f.EventID)
}
