package ledger_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/casetrail/casetrail/internal/ledger"
	"github.com/casetrail/casetrail/internal/store"
)

// withAttachments is event i carrying the given attachments, as the
// normaliser stores them: the content in blobs, {sha256, size} in its place.
func withAttachments(i int, contents ...string) store.NewEvent {
	e := newEvent(i)
	e.Summary, e.Actor, e.Reply = fmt.Sprintf("Comment %d by Ann Smith", i), []byte(`{"name": "Ann Smith"}`), []byte(`{"cancelled": false}`)
	doc := fmt.Sprintf(`{"event":"ADD_COMMENT","payload":{"caseId":"c-%d","n":%d,"attachments":[`, i%7, i)
	for j, c := range contents {
		sum := sha256.Sum256([]byte(c))
		e.Blobs = append(e.Blobs, store.Blob{SHA256: sum, Content: []byte(c)})
		if j > 0 {
			doc += ","
		}
		doc += fmt.Sprintf(`{"fileName":"f%d.pdf","content":{"sha256":"%x","size":%d}}`, j, sum, len(c))
	}
	e.Doc = []byte(doc + "]}}")
	return e
}

// owner opens the store as its owner, which expunge needs.
func (b *testBundle) owner(t *testing.T) *store.Store {
	t.Helper()
	owner, err := store.Open(context.Background(), b.db.URL, store.Options{Owner: true})
	require.NoError(t, err)
	t.Cleanup(owner.Close)
	return owner
}

func (b *testBundle) store1(t *testing.T, e store.NewEvent) int64 {
	t.Helper()
	res, err := b.store.Ingest(context.Background(), []store.NewEvent{e})
	require.NoError(t, err)
	require.NoError(t, res[0].Err)
	return res[0].ID
}

func blobGone(t *testing.T, st *store.Store, content string) bool {
	t.Helper()
	sum := sha256.Sum256([]byte(content))
	_, err := st.Blob(context.Background(), sum[:])
	if err == store.ErrNotFound {
		return true
	}
	require.NoError(t, err)
	return false
}

// An expunge erases an event's content and the attachments no other event
// refers to, in one transaction, while the log, its checkpoints, verify and
// audit bundles stay valid; what it leaves is recorded and cannot be changed
// again unnoticed.
func TestExpunge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	owner := b.owner(t)

	ledger.WriteLeavesOfVersion(b.seq, 2)
	old := b.store1(t, withAttachments(1, "scan of an earlier leaf version"))
	b.sequenceAndSign(t)
	ledger.WriteLeavesOfVersion(b.seq, 0)
	only := b.store1(t, withAttachments(2, "scan of a passport"))
	shared1 := b.store1(t, withAttachments(3, "a shared letter"))
	shared2 := b.store1(t, withAttachments(4, "a shared letter", "a form"))
	plain := b.store1(t, newEvent(5))
	b.sequenceAndSign(t)
	late := b.store1(t, newEvent(6)) // not yet in the log
	require.NoError(t, b.verify(t))

	// The server's role may not erase.
	_, err := ledger.Expunge(ctx, b.store, b.keys, []int64{only}, "erasure request")
	require.ErrorContains(t, err, "42501") // insufficient privilege

	res, err := ledger.Expunge(ctx, owner, b.keys, []int64{shared1, only, old}, "erasure request 77")
	require.NoError(t, err)
	require.Equal(t, []store.ExpungeResult{{EventID: old, Blobs: 1}, {EventID: only, Blobs: 1}, {EventID: shared1, Blobs: 0}}, res)
	for _, id := range []int64{old, only, shared1} {
		e, err := b.store.Event(ctx, id)
		require.NoError(t, err)
		require.Empty(t, e.Body)
		require.Empty(t, e.BodySha256)
		require.Nil(t, e.Doc)
		require.Empty(t, e.Summary)
		require.Nil(t, e.Actor)
		require.Nil(t, e.Reply)
		require.NotNil(t, e.ExpungedAt)
		require.Equal(t, "erasure request 77", *e.ExpungeReason)
		require.NotNil(t, e.CaseID, "ids stay")
	}
	require.True(t, blobGone(t, b.store, "scan of a passport"))
	require.True(t, blobGone(t, b.store, "scan of an earlier leaf version"))
	require.False(t, blobGone(t, b.store, "a shared letter"), "another event still refers to it")
	require.NoError(t, b.verify(t))

	// Refused, and nothing erased: an event not yet in the log, one that
	// does not exist, a key that is not the log's.
	otherKeys, err := ledger.LoadKeys("", t.TempDir(), "casetrail.test")
	require.NoError(t, err)
	_, err = ledger.Expunge(ctx, owner, otherKeys, []int64{shared2}, "another key")
	require.ErrorIs(t, err, store.ErrRefused)
	for _, ids := range [][]int64{{shared2, late}, {shared2, 999999}} {
		_, err := ledger.Expunge(ctx, owner, b.keys, ids, "again")
		require.ErrorIs(t, err, store.ErrRefused)
		e, err := b.store.Event(ctx, shared2)
		require.NoError(t, err)
		require.NotEmpty(t, e.Body)
		require.Nil(t, e.ExpungedAt)
	}
	_, err = ledger.Expunge(ctx, owner, b.keys, []int64{plain}, "")
	require.ErrorIs(t, err, store.ErrRefused)

	// The last event referring to the shared letter takes it with it; one
	// expunged already is left as it was (a run repeated after a lost
	// answer does not fail).
	res, err = ledger.Expunge(ctx, owner, b.keys, []int64{shared2, only}, "erasure request 78 \xff") // stored as text
	require.NoError(t, err)
	require.Equal(t, []store.ExpungeResult{{EventID: only, Already: true}, {EventID: shared2, Blobs: 2}}, res)
	require.True(t, blobGone(t, b.store, "a shared letter"))
	require.True(t, blobGone(t, b.store, "a form"))
	b.sequenceAndSign(t)
	require.NoError(t, b.verify(t))

	// A bundle of them verifies offline: the expunged events by their leaves
	// and proofs alone, listed as expunged.
	dir := t.TempDir()
	all := []int64{old, only, shared1, shared2, plain, late}
	m, err := ledger.Export(ctx, b.store, b.keys, ledger.Selection{Case: "c"}, all, dir)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{fmt.Sprint(old), fmt.Sprint(only), fmt.Sprint(shared1), fmt.Sprint(shared2)}, m.Expunged)
	rep, err := ledger.VerifyBundle(dir, b.keys.Chain())
	require.NoError(t, err)
	require.Equal(t, 6, rep.Events)
	require.ElementsMatch(t, m.Expunged, rep.Expunged)
	require.True(t, rep.ManifestSigned)
	_, err = os.Stat(filepath.Join(dir, "bodies", fmt.Sprint(only)))
	require.ErrorIs(t, err, os.ErrNotExist)
	// An export into a directory that holds anything is refused: an
	// earlier bundle's body of an event erased since would travel on. A
	// body left there anyway fails the bundle.
	_, err = ledger.Export(ctx, b.store, b.keys, ledger.Selection{Case: "c"}, all, dir)
	require.ErrorIs(t, err, ledger.ErrOutputNotEmpty)
	left := filepath.Join(dir, "bodies", fmt.Sprint(only))
	require.NoError(t, os.WriteFile(left, []byte("the erased body"), 0o600))
	_, err = ledger.VerifyBundle(dir, b.keys.Chain())
	require.ErrorContains(t, err, fmt.Sprintf("bodies/%d is no body of an event the bundle holds with its content", only))
	require.NoError(t, os.Remove(left))
	// An event marked expunged in events.ndjson that the manifest does not
	// list as such is refused: a body cannot be dropped silently. The
	// manifest's signature finds the change; without one, the lists do.
	listed := m.Expunged
	m.Expunged = slices.DeleteFunc(slices.Clone(listed), func(id string) bool { return id == fmt.Sprint(only) })
	signed, err := os.ReadFile(filepath.Join(dir, "manifest.sig"))
	require.NoError(t, err)
	writeManifest(t, dir, m)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "manifest.sig"), signed, 0o600))
	_, err = ledger.VerifyBundle(dir, b.keys.Chain())
	require.ErrorContains(t, err, "changed after the export")
	writeManifest(t, dir, m)
	_, err = ledger.VerifyBundle(dir, b.keys.Chain())
	require.ErrorContains(t, err, "marked expunged")
	// Nor can a line be marked expunged without a record signed with the
	// log's key that matches its leaf: here its reason is changed.
	m.Expunged = listed
	writeManifest(t, dir, m)
	events := filepath.Join(dir, "events.ndjson")
	raw, err := os.ReadFile(events)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(events, bytes.Replace(raw, []byte(`"reason":"erasure request 77"`), []byte(`"reason":"erasure request 70"`), 1), 0o600))
	_, err = ledger.VerifyBundle(dir, b.keys.Chain())
	require.ErrorContains(t, err, "differs from what was signed")

	// A retry of an expunged delivery is its duplicate, and does not bring
	// its attachment back; another body under its key is a conflict.
	again, err := b.store.Ingest(ctx, []store.NewEvent{withAttachments(2, "scan of a passport")})
	require.NoError(t, err)
	require.NoError(t, again[0].Err)
	require.True(t, again[0].Duplicate)
	require.Equal(t, only, again[0].ID)
	require.True(t, blobGone(t, b.store, "scan of a passport"))
	other := withAttachments(2, "another scan")
	other.Body = append(other.Body, ' ')
	other.BodySHA256 = sha256.Sum256(other.Body)
	again, err = b.store.Ingest(ctx, []store.NewEvent{other})
	require.NoError(t, err)
	require.ErrorIs(t, again[0].Err, store.ErrConflict)
	require.True(t, blobGone(t, b.store, "another scan"))
	// Nor within one batch: the attachment of a repeat of a key in it is
	// not stored.
	first, repeat := withAttachments(30, "a first scan"), withAttachments(30, "a repeat's scan")
	repeat.Body = append(repeat.Body, ' ')
	repeat.BodySHA256 = sha256.Sum256(repeat.Body)
	again, err = b.store.Ingest(ctx, []store.NewEvent{first, repeat})
	require.NoError(t, err)
	require.NoError(t, again[0].Err)
	require.ErrorIs(t, again[1].Err, store.ErrConflict)
	require.False(t, blobGone(t, b.store, "a first scan"))
	require.True(t, blobGone(t, b.store, "a repeat's scan"))
	// A new event with the attachment an expunge removed stores it again.
	b.store1(t, withAttachments(20, "scan of a passport"))
	require.False(t, blobGone(t, b.store, "scan of a passport"))
	b.sequenceAndSign(t)
	// The record that once removed it does not let anyone remove it again.
	passport := sha256.Sum256([]byte("scan of a passport"))
	conn, err := pgx.Connect(ctx, b.db.URL) // the owner, triggers on
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `DELETE FROM blobs WHERE sha256 = $1`, passport[:])
	require.ErrorContains(t, err, "append-only")
	conn.Close(ctx)

	// A row that no longer matches its leaf is not erased (which would hide
	// the change) but refused.
	b.tamper(t, `UPDATE events SET summary = 'Something else' WHERE id = $1`, plain)
	_, err = ledger.Expunge(ctx, owner, b.keys, []int64{plain}, "erasure request 79")
	require.ErrorIs(t, err, store.ErrRefused)
	require.ErrorContains(t, err, "no longer hashes to its leaf")
	b.tamper(t, `UPDATE events SET summary = '' WHERE id = $1`, plain)

	require.NoError(t, b.verify(t))

	// What verify finds, each on its own: content put back into an expunged
	// row; the credential it keeps, or its record, changed; an expunge
	// forged by whoever can write to the database but holds no signing key.
	for _, tc := range []struct {
		name, sql, undo string
		id              int64
		want            string
	}{
		{"content put back", `UPDATE events SET summary = 'Comment 2 by Ann Smith' WHERE id = $1`,
			`UPDATE events SET summary = '' WHERE id = $1`, only, "holds content again"},
		{"credential changed", `UPDATE events SET credential = 'key:other' WHERE id = $1`,
			`UPDATE events SET credential = 'test' WHERE id = $1`, only, "differs from what was signed"},
		{"content type changed", `UPDATE events SET content_type = 'text/plain' WHERE id = $1`,
			`UPDATE events SET content_type = '' WHERE id = $1`, only, "differs from what was signed"},
		{"idempotency key changed", `UPDATE events SET idempotency_key = idempotency_key || '-x' WHERE id = $1`,
			`UPDATE events SET idempotency_key = left(idempotency_key, -2) WHERE id = $1`, only, "differs from what was signed"},
		{"reason changed", `UPDATE expunged_events SET reason = 'routine' WHERE event_id = $1`,
			`UPDATE expunged_events SET reason = 'erasure request 77' WHERE event_id = $1`, only, "differs from what was signed"},
		{"forged", `WITH r AS (INSERT INTO expunged_events (event_id, reason, body_hash, note)
				SELECT id, 'forged', sha256(body_salt || body), 'casetrail expunge' || chr(10) FROM events WHERE id = $1)
			UPDATE events SET body = '', body_sha256 = '', doc = NULL, summary = '', actor = NULL, changes = NULL, reply = NULL WHERE id = $1`,
			"", plain, "not signed with the log's key"},
	} {
		b.tamper(t, tc.sql, tc.id)
		err := b.verify(t)
		var f *ledger.Finding
		require.ErrorAs(t, err, &f, tc.name)
		require.Equal(t, "altered", f.Kind, tc.name)
		require.Equal(t, tc.id, f.EventID, tc.name)
		require.Contains(t, f.Detail, tc.want, tc.name)
		if tc.undo != "" {
			b.tamper(t, tc.undo, tc.id)
			require.NoError(t, b.verify(t), tc.name)
		}
	}

	// The records hold the only copies of the hashes the expunged leaves
	// commit to: the migration that keeps them is not undone over them.
	// Nor is the one that keeps which events referred to which attachment,
	// while an expunged event's reference to one still stored (another
	// event refers to it) is kept nowhere else.
	m8, err := store.NewMigrator(b.db.URL)
	require.NoError(t, err)
	defer m8.Close()
	require.ErrorContains(t, m8.DownTo(ctx, 7, io.Discard), "references of expunged events that are kept nowhere else")
	b.tamper(t, `DELETE FROM event_attachments WHERE event_id = $1`, shared1)
	require.ErrorContains(t, m8.DownTo(ctx, 7, io.Discard), "events were expunged")
	_, err = b.store.Event(ctx, only)
	require.NoError(t, err)
}

// writeManifest replaces a bundle's manifest with m, unsigned, as in a
// bundle written before manifests were signed: the checks of the events
// against what it lists still hold there.
func writeManifest(t *testing.T, dir string, m ledger.Manifest) {
	t.Helper()
	raw, err := json.MarshalIndent(m, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "manifest.json"), raw, 0o600))
	require.NoError(t, os.RemoveAll(filepath.Join(dir, "manifest.sig")))
}

// The owner is held to the expunge's rules too: the store's triggers let a
// row be blanked only by the transaction that records its expunge, only to
// the blank values, and nothing else about it changed; an attachment is
// removed only when such a record lists it, and a record is never changed.
func TestExpungeRulesHoldForTheOwner(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	id := b.store1(t, withAttachments(1, "a scan"))
	b.sequenceAndSign(t)
	sum := sha256.Sum256([]byte("a scan"))
	const blank = `body = '', body_sha256 = '', doc = NULL, summary = '', actor = NULL, changes = NULL, reply = NULL`
	removeBlob := fmt.Sprintf(`DELETE FROM blobs WHERE sha256 = '\x%x'::bytea`, sum)
	record := `INSERT INTO expunged_events (event_id, reason, body_hash, blobs, note)
		SELECT id, 'test', sha256(body_salt || body), ARRAY[$2::bytea], 'unsigned' FROM events WHERE id = $1`
	recordNoBlobs := `INSERT INTO expunged_events (event_id, reason, body_hash, note)
		SELECT id, 'test', sha256(body_salt || body), 'unsigned' FROM events WHERE id = $1`
	cases := []struct {
		name  string
		steps []string
		ok    bool
	}{
		{"blank without a record", []string{`UPDATE events SET ` + blank + ` WHERE id = $1`}, false},
		{"blank with a record", []string{record, `UPDATE events SET ` + blank + ` WHERE id = $1`}, true},
		{"blank part of it", []string{record, `UPDATE events SET body = '', body_sha256 = '', doc = NULL WHERE id = $1`}, false},
		{"blank all but the reply", []string{record, `UPDATE events SET body = '', body_sha256 = '', doc = NULL, summary = '', actor = NULL, changes = NULL WHERE id = $1`}, false},
		{"blank and change the type", []string{record, `UPDATE events SET ` + blank + `, type = 'X' WHERE id = $1`}, false},
		{"rewrite instead of blanking", []string{record, `UPDATE events SET body = 'other', body_sha256 = '', doc = NULL, summary = '', actor = NULL, changes = NULL, reply = NULL WHERE id = $1`}, false},
		{"delete with a record", []string{record, `DELETE FROM events WHERE id = $1`}, false},
		{"remove an attachment without a record", []string{removeBlob}, false},
		{"remove an attachment the record lists", []string{record, removeBlob}, true},
		{"remove an attachment the record does not list", []string{recordNoBlobs, removeBlob}, false},
		{"change a record", []string{record, `UPDATE expunged_events SET reason = 'other' WHERE event_id = $1`}, false},
		{"remove a record", []string{record, `DELETE FROM expunged_events WHERE event_id = $1`}, false},
		{"change the key's record", []string{record, `UPDATE idempotency_keys SET body_sha256 = '' WHERE event_id = $1`}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := pgx.Connect(ctx, b.db.URL) // the owner, triggers on
			require.NoError(t, err)
			defer conn.Close(ctx)
			tx, err := conn.Begin(ctx)
			require.NoError(t, err)
			defer tx.Rollback(ctx) //nolint:errcheck // every case is undone
			for _, step := range tc.steps {
				var args []any
				if strings.Contains(step, "$1") {
					args = append(args, id)
				}
				if strings.Contains(step, "$2") {
					args = append(args, sum[:])
				}
				var tag pgconn.CommandTag
				if tag, err = tx.Exec(ctx, step, args...); err != nil {
					break
				}
				require.EqualValues(t, 1, tag.RowsAffected(), step) // done, not skipped
			}
			if tc.ok {
				require.NoError(t, err)
			} else {
				require.ErrorContains(t, err, "append-only")
			}
		})
	}
	require.NoError(t, b.verify(t))
	require.False(t, blobGone(t, b.store, "a scan"))
}

// An attachment that an ingest still in flight refers to is kept: the
// expunge's first read cannot see that event's reference, so it holds off
// inserts into blobs, which the ingest made before its reference, and reads
// the references again once the ingest has committed.
func TestExpungeKeepsAnAttachmentAnIngestInFlightTakes(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b := setup(t)
	owner := b.owner(t)
	id := b.store1(t, withAttachments(1, "a shared scan"))
	b.sequenceAndSign(t)

	// An ingest of another event with the same attachment, as
	// casetrail_ingest writes it, not yet committed.
	conn, err := pgx.Connect(ctx, b.db.URL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck // committed below
	sum := sha256.Sum256([]byte("a shared scan"))
	_, err = tx.Exec(ctx, `INSERT INTO blobs (sha256, size, content) VALUES ($1, 13, 'a shared scan') ON CONFLICT DO NOTHING`, sum[:])
	require.NoError(t, err)
	var inFlight int64
	require.NoError(t, tx.QueryRow(ctx, `INSERT INTO events (received_at, occurred_at, source, kind, type, credential, idempotency_key, body, body_sha256, doc)
		VALUES (now(), now(), 'case-updates', 'case-updates', 'ADD_COMMENT', 'test', 'in-flight', '\x7b7d', '\x00', $1::jsonb)
		RETURNING id`,
		fmt.Sprintf(`{"attachment":{"fileName":"scan.pdf","content":{"sha256":"%x","size":13}}}`, sum)).Scan(&inFlight))
	_, err = tx.Exec(ctx, `INSERT INTO event_attachments (sha256, event_id) VALUES ($1, $2)`, sum[:], inFlight)
	require.NoError(t, err)

	done := make(chan []store.ExpungeResult, 1)
	go func() {
		res, err := ledger.Expunge(ctx, owner, b.keys, []int64{id}, "erasure request")
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	// Wait until the expunge waits for the ingest's hold on blobs.
	watch, err := pgx.Connect(ctx, b.db.URL)
	require.NoError(t, err)
	defer watch.Close(ctx)
	for {
		var waiting int
		require.NoError(t, watch.QueryRow(ctx,
			`SELECT count(*) FROM pg_locks
			 WHERE NOT granted AND relation = 'blobs'::regclass
			   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&waiting))
		if waiting > 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the expunge never waited for the ingest in flight")
		case <-time.After(10 * time.Millisecond):
		}
	}
	require.NoError(t, tx.Commit(ctx))
	res := <-done
	require.Equal(t, []store.ExpungeResult{{EventID: id, Blobs: 0}}, res)
	require.False(t, blobGone(t, b.store, "a shared scan"))
}

// Only a reference keeps an attachment: a document that names its hash in
// a field of the sender's own (in its body, which verify does not take for
// a reference) neither keeps it nor is named by verify once it is gone.
// Expunging such a document leaves the attachment to the event that refers
// to it.
func TestExpungeKeepsAnAttachmentOnlyForAReference(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	owner := b.owner(t)
	id := b.store1(t, withAttachments(1, "scan of a passport"))
	mention := func(i int) int64 {
		e := newEvent(i)
		e.Body = []byte(fmt.Sprintf(`{"event":"CHANGE_CASE_STATUS","payload":{"caseId":"c-%d","file":{"sha256":"%x"}}}`, i, sha256.Sum256([]byte("scan of a passport"))))
		e.BodySHA256, e.Doc = sha256.Sum256(e.Body), e.Body
		return b.store1(t, e)
	}
	mentions1, mentions2 := mention(2), mention(3)
	b.sequenceAndSign(t)

	res, err := ledger.Expunge(ctx, owner, b.keys, []int64{mentions1}, "erasure request")
	require.NoError(t, err)
	require.Equal(t, []store.ExpungeResult{{EventID: mentions1, Blobs: 0}}, res)
	require.False(t, blobGone(t, b.store, "scan of a passport"), "event %d refers to it", id)

	res, err = ledger.Expunge(ctx, owner, b.keys, []int64{id}, "erasure request")
	require.NoError(t, err)
	require.Equal(t, []store.ExpungeResult{{EventID: id, Blobs: 1}}, res, "event %d only names its hash", mentions2)
	require.True(t, blobGone(t, b.store, "scan of a passport"))
	require.NoError(t, b.verify(t))
}

// requireExpungeRefused expunges one event through the owner's store and
// requires it refused, pointing at verify, with nothing of it erased.
func (b *testBundle) requireExpungeRefused(t *testing.T, owner *store.Store, id int64) {
	t.Helper()
	ctx := context.Background()
	_, err := ledger.Expunge(ctx, owner, b.keys, []int64{id}, "erasure request 80")
	require.ErrorIs(t, err, store.ErrRefused)
	require.ErrorContains(t, err, "run casetrail verify")
	e, err := b.store.Event(ctx, id)
	require.NoError(t, err)
	require.Nil(t, e.ExpungedAt)
}

// An event whose attachment was altered or removed is not erased, which
// would take the evidence with it, but refused, for verify to name.
func TestExpungeRefusesAnEventWhoseAttachmentWasChanged(t *testing.T) {
	t.Parallel()
	b := setup(t)
	owner := b.owner(t)
	altered := b.store1(t, withAttachments(1, "scan of a passport"))
	removed := b.store1(t, withAttachments(2, "scan of a licence"))
	b.sequenceAndSign(t)
	passport, licence := sha256.Sum256([]byte("scan of a passport")), sha256.Sum256([]byte("scan of a licence"))
	b.tamper(t, `UPDATE blobs SET content = 'forged' WHERE sha256 = $1`, passport[:])
	b.tamper(t, `DELETE FROM blobs WHERE sha256 = $1`, licence[:])

	for _, id := range []int64{altered, removed} {
		b.requireExpungeRefused(t, owner, id)
	}
	var f *ledger.Finding
	require.ErrorAs(t, b.verify(t), &f)
	require.Equal(t, altered, f.EventID)
}

// An event that shows a SHA-256 for its body that is not its body's (set
// before its leaf was written, which then commits to it), or whose body
// lost bytes to its salt (which a leaf of version 1 or 2 does not tell), is
// not erased, which would take the evidence with it, but refused, for
// verify to name.
func TestExpungeRefusesAnEventVerifyWouldName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		version int
		before  string // run before the events are sequenced
		after   string
	}{
		{name: "body SHA-256", version: 4, before: `UPDATE events SET body_sha256 = sha256('x') WHERE id = $1`},
		{name: "body bytes moved into the salt", version: 1, after: `UPDATE events SET body_salt = body_salt || substring(body from 1 for 9),
			body = substring(body from 10), body_sha256 = sha256(substring(body from 10)) WHERE id = $1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			owner := b.owner(t)
			ledger.WriteLeavesOfVersion(b.seq, tc.version)
			ids := b.ingest(t, 0, 3)
			if tc.before != "" {
				b.tamper(t, tc.before, ids[1])
			}
			b.sequenceAndSign(t)
			if tc.after != "" {
				b.tamper(t, tc.after, ids[1])
			}

			b.requireExpungeRefused(t, owner, ids[1])
			var f *ledger.Finding
			require.ErrorAs(t, b.verify(t), &f)
			require.Equal(t, ids[1], f.EventID)
		})
	}
}

// An attachment an expunge removed and put back into the store (from a
// backup, say), where no event refers to it, is erased content served
// again: verify names the expunged event. One stored again by a later
// event with the same attachment is that event's.
func TestVerifyFindsAnErasedAttachmentPutBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	owner := b.owner(t)
	id := b.store1(t, withAttachments(1, "scan of a passport"))
	b.store1(t, withAttachments(2, "scan of a licence"))
	b.sequenceAndSign(t)
	_, err := ledger.Expunge(ctx, owner, b.keys, []int64{id}, "erasure request 90")
	require.NoError(t, err)
	require.True(t, blobGone(t, b.store, "scan of a passport"))
	require.NoError(t, b.verify(t))

	sum := sha256.Sum256([]byte("scan of a passport"))
	b.tamper(t, `INSERT INTO blobs (sha256, size, content) VALUES ($1, $2, $3)`, sum[:], len("scan of a passport"), []byte("scan of a passport"))
	var f *ledger.Finding
	require.ErrorAs(t, b.verify(t), &f)
	require.Equal(t, "altered", f.Kind, f.Error())
	require.Equal(t, id, f.EventID)
	require.Contains(t, f.Detail, fmt.Sprintf("attachment %x", sum))

	b.tamper(t, `DELETE FROM blobs WHERE sha256 = $1`, sum[:])
	b.store1(t, withAttachments(3, "scan of a passport"))
	b.sequenceAndSign(t)
	require.False(t, blobGone(t, b.store, "scan of a passport"))
	require.NoError(t, b.verify(t))
}

// refs is every reference event_attachments holds, as "hash-content id",
// in order.
func (b *testBundle) refs(t *testing.T, names map[[32]byte]string) []string {
	t.Helper()
	rows, err := b.db.Connect(t).Query(context.Background(), "SELECT sha256, event_id FROM event_attachments")
	require.NoError(t, err)
	var out []string
	for rows.Next() {
		var sum []byte
		var id int64
		require.NoError(t, rows.Scan(&sum, &id))
		name, ok := names[[32]byte(sum)]
		require.True(t, ok, "an unknown hash %x", sum)
		out = append(out, fmt.Sprintf("%s %d", name, id))
	}
	require.NoError(t, rows.Err())
	slices.Sort(out)
	return out
}

// Migration 00016 finds the references of the events stored before it in
// their documents: a hash under a "sha256" key that names a stored
// attachment, or one no longer stored that the body does not hold (not the
// sender's own hash); an expunged event's from its record. Undone and done
// again, it finds what ingest kept, and those of an event stored the old
// way. It is not undone over an expunged event's reference that is kept
// nowhere else, and the server's role can neither change nor remove one.
func TestEventAttachmentsMigration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	owner := b.owner(t)
	names := map[[32]byte]string{}
	for _, c := range []string{"a shared letter", "a form", "scan of a passport", "the sender's file", "a lost scan"} {
		names[sha256.Sum256([]byte(c))] = c
	}

	shared1 := b.store1(t, withAttachments(1, "a shared letter"))
	shared2 := b.store1(t, withAttachments(2, "a shared letter", "a form"))
	gone := b.store1(t, withAttachments(3, "scan of a passport"))
	own := newEvent(4) // the sender's own hash, in its body
	own.Body = []byte(fmt.Sprintf(`{"event":"CHANGE_CASE_STATUS","payload":{"caseId":"c-4","file":{"sha256":"%x"}}}`, sha256.Sum256([]byte("the sender's file"))))
	own.BodySHA256, own.Doc = sha256.Sum256(own.Body), own.Body
	b.store1(t, own)
	lost := withAttachments(5, "a lost scan") // its attachment is not stored
	lost.Blobs = nil
	lostID := b.store1(t, lost)
	b.sequenceAndSign(t)
	_, err := ledger.Expunge(ctx, owner, b.keys, []int64{gone}, "erasure request")
	require.NoError(t, err)
	require.True(t, blobGone(t, b.store, "scan of a passport"))

	kept := []string{
		fmt.Sprintf("a form %d", shared2),
		fmt.Sprintf("a shared letter %d", shared1),
		fmt.Sprintf("a shared letter %d", shared2),
		fmt.Sprintf("scan of a passport %d", gone),
	}
	slices.Sort(kept)
	require.Equal(t, kept, b.refs(t, names), "what ingest kept")

	m, err := store.NewMigrator(b.db.URL)
	require.NoError(t, err)
	defer m.Close()
	require.NoError(t, m.DownTo(ctx, 15, io.Discard))
	var table *string
	conn := b.db.Connect(t)
	require.NoError(t, conn.QueryRow(ctx, "SELECT to_regclass('event_attachments')::text").Scan(&table))
	require.Nil(t, table)
	// An event stored the old way, with the references of shared2's document.
	var oldWay int64
	require.NoError(t, conn.QueryRow(ctx, `
		INSERT INTO events (id, received_at, occurred_at, source, kind, type, credential, idempotency_key, body, body_sha256, doc)
		SELECT nextval('events_id_seq'), received_at, occurred_at, source, kind, type, credential, 'old-way', body, body_sha256, doc
		FROM events WHERE id = $1
		RETURNING id`, shared2).Scan(&oldWay))

	require.NoError(t, m.Up(ctx, io.Discard))
	want := append(kept,
		fmt.Sprintf("a form %d", oldWay),
		fmt.Sprintf("a shared letter %d", oldWay),
		fmt.Sprintf("a lost scan %d", lostID),
	)
	slices.Sort(want)
	require.Equal(t, want, b.refs(t, names))

	for _, stmt := range []string{
		"UPDATE event_attachments SET event_id = 0",
		"DELETE FROM event_attachments",
		"TRUNCATE event_attachments",
		"INSERT INTO event_attachments (sha256, event_id) SELECT sha256, event_id FROM event_attachments LIMIT 1",
	} {
		for _, asRole := range []string{store.AppRole, ""} {
			c := b.db.Connect(t)
			if asRole != "" {
				_, err := c.Exec(ctx, "SET ROLE "+asRole)
				require.NoError(t, err)
			}
			_, err := c.Exec(ctx, stmt)
			require.Error(t, err, "%s as %q", stmt, asRole)
		}
	}

	_, err = ledger.Expunge(ctx, owner, b.keys, []int64{shared1}, "erasure request")
	require.NoError(t, err)
	require.False(t, blobGone(t, b.store, "a shared letter"))
	require.ErrorContains(t, m.DownTo(ctx, 15, io.Discard), "references of expunged events that are kept nowhere else")
	require.Equal(t, want, b.refs(t, names))
}

// A server of a version before 00016, still storing while the migration
// ran, commits events through the earlier function, which keeps no
// references. An expunge catches up on them first, so an attachment such
// an event shares is kept; an hour after the migration the catch-up has
// nothing left to wait for and its window is closed.
func TestExpungeCatchesUpAnEarlierServersEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	owner := b.owner(t)
	id := b.store1(t, withAttachments(1, "a scan an earlier server shared"))
	admin, err := pgx.Connect(ctx, b.db.URL)
	require.NoError(t, err)
	defer admin.Close(ctx)
	// The migration has just run on a store with events: its backfill saw
	// everything until now.
	_, err = admin.Exec(ctx, `INSERT INTO event_attachments_backfill (horizon, migrated_at) VALUES (pg_current_xact_id()::text::bigint, clock_timestamp())`)
	require.NoError(t, err)
	// The earlier server's event, stored as its function stored it: the
	// attachment in blobs and the document, no reference.
	earlier := withAttachments(2, "a scan an earlier server shared")
	var earlierID int64
	require.NoError(t, admin.QueryRow(ctx, `INSERT INTO events (received_at, occurred_at, source, kind, type, credential, idempotency_key, body, body_sha256, doc)
		VALUES (now(), now(), 'case-updates', 'case-updates', 'ADD_COMMENT', 'test', 'earlier-server', '\x7b7d', sha256('\x7b7d'), $1::jsonb)
		RETURNING id`, string(earlier.Doc)).Scan(&earlierID))
	b.sequenceAndSign(t)

	res, err := ledger.Expunge(ctx, owner, b.keys, []int64{id}, "erasure request 31")
	require.NoError(t, err)
	require.Equal(t, []store.ExpungeResult{{EventID: id, Blobs: 0}}, res, "the earlier server's event still refers to the attachment")
	require.False(t, blobGone(t, b.store, "a scan an earlier server shared"))
	sum := sha256.Sum256([]byte("a scan an earlier server shared"))
	ids, err := b.store.BlobEvents(ctx, sum[:])
	require.NoError(t, err)
	require.Contains(t, ids, earlierID)
	var windows int
	require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FROM event_attachments_backfill`).Scan(&windows))
	require.Equal(t, 1, windows, "within the hour, the window stays open")

	// Past the hour, the next expunge closes it.
	_, err = admin.Exec(ctx, `UPDATE event_attachments_backfill SET migrated_at = clock_timestamp() - interval '2 hours'`)
	require.NoError(t, err)
	_, err = ledger.Expunge(ctx, owner, b.keys, []int64{earlierID}, "erasure request 32")
	require.NoError(t, err)
	require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FROM event_attachments_backfill`).Scan(&windows))
	require.Equal(t, 0, windows)
	require.True(t, blobGone(t, b.store, "a scan an earlier server shared"), "no event refers to it any more")
}
