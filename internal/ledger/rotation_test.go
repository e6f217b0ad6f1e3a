package ledger_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"

	"github.com/casetrail/casetrail/internal/ledger"
)

// TestSigningKeyRotation: a log's signing key is replaced by a new one
// that lists the old as previous. The new key signs on at once after the
// old key's newest checkpoint; what the old key signed (checkpoints,
// expunge records) still verifies with the chain; a server with the old
// key signs nothing more; and a checkpoint the old key signs after the new
// one has is a finding.
func TestSigningKeyRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	owner := b.owner(t)
	ids := b.ingest(t, 0, 4)
	b.sequenceAndSign(t)
	old := b.keys
	_, err := ledger.Expunge(ctx, owner, old, ids[:1], "erasure request 1")
	require.NoError(t, err)

	// Without the old key in its chain, the new key signs nothing.
	fresh, err := ledger.LoadKeys("", t.TempDir(), "casetrail.test")
	require.NoError(t, err)
	stranger := &ledger.Checkpointer{Store: b.store, Keys: fresh, Origin: "casetrail.test/log", MaxAge: time.Hour}
	require.ErrorIs(t, stranger.CheckKey(ctx), ledger.ErrForeignKey)

	rotated, err := ledger.LoadKeys("", t.TempDir(), "casetrail.test")
	require.NoError(t, err)
	require.ErrorContains(t, rotated.WithPrevious([]string{rotated.VerifierKey}), "given twice")
	require.NoError(t, rotated.WithPrevious([]string{old.VerifierKey}))
	cp := &ledger.Checkpointer{Store: b.store, Keys: rotated, Origin: "casetrail.test/log", Every: time.Hour, MaxAge: time.Hour}
	require.NoError(t, cp.CheckKey(ctx))
	require.False(t, cp.Refusing())

	// The tree has not grown and the old checkpoint is fresh, yet the new
	// key signs at once.
	before, err := b.store.LatestCheckpoint(ctx)
	require.NoError(t, err)
	require.NoError(t, cp.Maybe(ctx, before.At))
	latest, err := b.store.LatestCheckpoint(ctx)
	require.NoError(t, err)
	require.Greater(t, latest.ID, before.ID)
	require.Equal(t, before.Size, latest.Size)
	_, err = ledger.OpenCheckpoint([]byte(latest.Note), ledger.KeyChain{rotated.Verifier})
	require.NoError(t, err)
	_, err = ledger.OpenCheckpoint([]byte(latest.Note), ledger.KeyChain{old.Verifier})
	require.Error(t, err, "signed with the new key only")
	require.NoError(t, cp.Maybe(ctx, latest.At), "and only once")
	again, err := b.store.LatestCheckpoint(ctx)
	require.NoError(t, err)
	require.Equal(t, latest.ID, again.ID)

	// A server still running with the old key now signs nothing.
	later := b.ingest(t, 4, 2)
	require.NoError(t, b.seq.Drain(ctx))
	st, err := b.store.LatestLogState(ctx)
	require.NoError(t, err)
	require.ErrorIs(t, b.cp.Sign(ctx, st), ledger.ErrForeignKey)
	require.NoError(t, cp.Sign(ctx, st))
	_, err = ledger.Expunge(ctx, owner, rotated, ids[1:2], "erasure request 2")
	require.NoError(t, err)
	_, err = ledger.Expunge(ctx, owner, old, ids[2:3], "erasure request 3")
	require.Error(t, err, "the old key no longer signs the log")

	// What either key signed verifies with the chain, and only with it.
	rep, err := ledger.Verify(ctx, b.store, rotated.Chain(), nil)
	require.NoError(t, err)
	require.Equal(t, 3, rep.Checkpoints)
	_, err = ledger.Verify(ctx, b.store, ledger.KeyChain{rotated.Verifier}, nil)
	var f *ledger.Finding
	require.ErrorAs(t, err, &f)
	require.Contains(t, f.Detail, "signed with a key that is none of those given (casetrail.test")

	// A bundle carries the chain, oldest first, and verifies with it: its
	// first event's expunge record is signed with the old key.
	dir := t.TempDir()
	_, err = ledger.Export(ctx, b.store, rotated, ledger.Selection{From: "2026-01-01T00:00:00Z", To: "2027-01-01T00:00:00Z"}, ids, dir)
	require.NoError(t, err)
	raw, err := os.ReadFile(filepath.Join(dir, "key.txt"))
	require.NoError(t, err)
	require.Equal(t, old.VerifierKey+"\n"+rotated.VerifierKey+"\n", string(raw))
	brep, err := ledger.VerifyBundle(dir, rotated.Chain())
	require.NoError(t, err)
	require.Len(t, brep.Expunged, 2)
	_, err = ledger.VerifyBundle(dir, ledger.KeyChain{rotated.Verifier})
	require.ErrorContains(t, err, "signed with a key that is none of those given (casetrail.test")
	_, err = ledger.VerifyBundle(dir, ledger.KeyChain{rotated.Verifier, old.Verifier})
	require.ErrorContains(t, err, "an earlier key of those given than the last: the bundle is from before a rotation", "the newest key is the last given")

	// A bundle forged with the old key alone (a thief's own instance, the
	// same origin) does not verify with the chain: its checkpoint and
	// manifest are not signed with the newest key.
	forged := setup(t)
	forged.keys, forged.cp.Keys = old, old
	forged.ingest(t, 0, 3)
	forged.sequenceAndSign(t)
	forgedDir := t.TempDir()
	_, err = ledger.Export(ctx, forged.store, old, ledger.Selection{Case: "c-1"}, forged.ingest(t, 3, 0), forgedDir)
	require.NoError(t, err)
	_, err = ledger.VerifyBundle(forgedDir, ledger.KeyChain{old.Verifier})
	require.NoError(t, err, "with the old key alone, as a bundle from before the rotation")
	_, err = ledger.VerifyBundle(forgedDir, rotated.Chain())
	require.ErrorContains(t, err, "an earlier key of those given than the last")

	// The old key in other hands, with write access as the database's
	// owner, erases an event that entered the log after the rotation: its
	// record is a finding, and a bundle of it does not verify.
	thief := *old
	require.NoError(t, thief.WithPrevious([]string{rotated.VerifierKey}))
	late := later[0]
	_, err = ledger.Expunge(ctx, owner, &thief, []int64{late}, "made up")
	require.NoError(t, err)
	_, err = ledger.Verify(ctx, b.store, rotated.Chain(), nil)
	require.ErrorAs(t, err, &f)
	require.Equal(t, "altered", f.Kind)
	const pastTime = "past the time of that key, which ended before this event entered the log: the log moved on from it at size 4"
	require.Contains(t, f.Detail, pastTime)
	dir = t.TempDir()
	_, err = ledger.Export(ctx, b.store, rotated, ledger.Selection{Case: "c"}, []int64{late}, dir)
	require.NoError(t, err)
	_, err = ledger.VerifyBundle(dir, rotated.Chain())
	require.ErrorContains(t, err, pastTime)
	// Where the log moved on from the old key is the new key's signed
	// word, not the order of the rows: removing the new key's first
	// checkpoints, as the owner, or putting a copy of its newest among the
	// old key's, as the app, moves nothing.
	conn := b.db.Connect(t)
	const copyNewest = `INSERT INTO log_checkpoints (id, size, root, note) OVERRIDING SYSTEM VALUE
		SELECT 0, size, root, note FROM log_checkpoints ORDER BY id DESC LIMIT 1`
	_, err = conn.Exec(ctx, copyNewest)
	require.ErrorContains(t, err, "a checkpoint takes the next id of its sequence", "refused to anyone who does not turn the triggers off")
	_, err = conn.Exec(ctx, "SET session_replication_role = replica")
	require.NoError(t, err)
	_, err = conn.Exec(ctx, copyNewest)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "DELETE FROM log_checkpoints WHERE id > $1 AND id < (SELECT max(id) FROM log_checkpoints)", before.ID)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "RESET session_replication_role")
	require.NoError(t, err)
	_, err = ledger.Verify(ctx, b.store, rotated.Chain(), nil)
	require.ErrorAs(t, err, &f)
	require.Contains(t, f.Detail, pastTime)

	// The old key, once rotated away from, signs a checkpoint that is
	// stored: consistent with the tree, but a finding, whatever order the
	// keys are given in; and the server with the new key, which had
	// signed, does not sign on after it.
	signed, err := note.Sign(&note.Note{Text: ledger.CheckpointText("casetrail.test/log", st.Size, st.Root)}, old.Signer)
	require.NoError(t, err)
	_, err = b.db.Connect(t).Exec(ctx, "INSERT INTO log_checkpoints (size, root, note) VALUES ($1, $2, $3)", st.Size, st.Root, string(signed))
	require.NoError(t, err)
	for chain, want := range map[*ledger.KeyChain]string{
		{old.Verifier, rotated.Verifier}: "is signed with casetrail.test, key hash",
		{rotated.Verifier, old.Verifier}: "past the time of that key: the newest checkpoint does not name it",
	} {
		_, err = ledger.Verify(ctx, b.store, *chain, nil)
		require.ErrorAs(t, err, &f)
		require.Equal(t, "checkpoint", f.Kind)
		require.True(t, strings.Contains(f.Detail, want), f.Detail)
	}
	require.ErrorIs(t, cp.Sign(ctx, st), ledger.ErrForeignKey)
	require.True(t, cp.Refusing())
}

// The newest key is the one given last: a key listed before it that never
// signed is no finding, the newest given after the one that signs is.
func TestTheNewestKeyIsGivenLast(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.ingest(t, 0, 3)
	b.sequenceAndSign(t)
	other, err := ledger.LoadKeys("", t.TempDir(), "casetrail.test")
	require.NoError(t, err)
	_, err = ledger.Verify(ctx, b.store, ledger.KeyChain{other.Verifier, b.keys.Verifier}, nil)
	require.NoError(t, err)
	_, err = ledger.Verify(ctx, b.store, ledger.KeyChain{b.keys.Verifier, other.Verifier}, nil)
	var f *ledger.Finding
	require.ErrorAs(t, err, &f)
	require.Contains(t, f.Detail, "not with the newest key given")
}

// Two rotations, A to B to C: each checkpoint C signs names both earlier
// keys with where the log moved on from them; what each signed in its time
// verifies, and export waits for the newest key's first checkpoint.
func TestTwoRotations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	owner := b.owner(t)
	a := b.keys
	ids := b.ingest(t, 0, 2)
	b.sequenceAndSign(t)
	_, err := ledger.Expunge(ctx, owner, a, ids[:1], "erasure request A")
	require.NoError(t, err)
	keys := []*ledger.Keys{a}
	for range 2 {
		next := keysAfter(t, keys...)
		_, err := ledger.Export(ctx, b.store, next, ledger.Selection{Case: "c"}, ids, t.TempDir())
		require.ErrorIs(t, err, ledger.ErrPreviousKeyCheckpoint, "no checkpoint of the new key yet")
		cp := &ledger.Checkpointer{Store: b.store, Keys: next, Origin: "casetrail.test/log", Every: time.Hour, MaxAge: time.Hour}
		require.NoError(t, cp.Maybe(ctx, time.Now()))
		ids = append(ids, b.ingest(t, len(ids), 2)...)
		require.NoError(t, b.seq.Drain(ctx))
		st, err := b.store.LatestLogState(ctx)
		require.NoError(t, err)
		require.NoError(t, cp.Sign(ctx, st))
		_, err = ledger.Expunge(ctx, owner, next, ids[len(ids)-1:], "erasure request")
		require.NoError(t, err)
		keys = append(keys, next)
	}
	c := keys[2]
	latest, err := b.store.LatestCheckpoint(ctx)
	require.NoError(t, err)
	require.Contains(t, latest.Note, "\nretired-key casetrail.test+")
	require.Equal(t, 2, strings.Count(latest.Note, "retired-key "), latest.Note)
	_, err = ledger.Verify(ctx, b.store, c.Chain(), nil)
	require.NoError(t, err)
	dir := t.TempDir()
	_, err = ledger.Export(ctx, b.store, c, ledger.Selection{Case: "c"}, ids, dir)
	require.NoError(t, err)
	rep, err := ledger.VerifyBundle(dir, c.Chain())
	require.NoError(t, err)
	require.Len(t, rep.Expunged, 3, "one expunge record of each key")
}

// A checkpoint is stored after every one before it, at the time it is
// stored: one copied in under a far id or with a far time, which would stop
// the signing of new ones, is refused, to the application's role too.
func TestCheckpointsAreStoredInOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.ingest(t, 0, 3)
	b.sequenceAndSign(t)
	app := appRole(t, b)
	for name, insert := range map[string]string{
		"a far id":    `INSERT INTO log_checkpoints (id, size, root, note) OVERRIDING SYSTEM VALUE SELECT 1000000000000, size, root, note FROM log_checkpoints`,
		"an older id": `INSERT INTO log_checkpoints (id, size, root, note) OVERRIDING SYSTEM VALUE SELECT 0, size, root, note FROM log_checkpoints`,
	} {
		_, err := app.Exec(ctx, insert)
		require.ErrorContains(t, err, "a checkpoint takes the next id of its sequence", name)
	}
	// Nor one whose size is not its note's, or past the log's, which the
	// next, smaller, checkpoint would be skipped for, silently.
	huge, err := note.Sign(&note.Note{Text: ledger.CheckpointText("casetrail.test/log", 1<<40, make([]byte, 32))}, b.keys.Signer)
	require.NoError(t, err)
	for name, insert := range map[string][]any{
		"a size its note does not name": {`INSERT INTO log_checkpoints (size, root, note) SELECT 1099511627776, root, note FROM log_checkpoints`},
		"a size past the log's":         {`INSERT INTO log_checkpoints (size, root, note) VALUES (1099511627776, $1, $2)`, make([]byte, 32), string(huge)},
	} {
		_, err := app.Exec(ctx, insert[0].(string), insert[1:]...)
		require.Error(t, err, name)
	}
	_, err = app.Exec(ctx, `INSERT INTO log_checkpoints (size, root, note, at) SELECT size, root, note, '2999-01-01' FROM log_checkpoints`)
	require.NoError(t, err)
	latest, err := b.store.LatestCheckpoint(ctx)
	require.NoError(t, err)
	require.Less(t, latest.At.Year(), 2999, "stored at the time it was stored, not the one named")

	// The log goes on being signed when it grows: a time named far ahead
	// would have held the next signing off until then.
	b.ingest(t, 3, 2)
	require.NoError(t, b.seq.Drain(ctx))
	require.NoError(t, b.cp.Maybe(ctx, latest.At.Add(time.Second)))
	latest, err = b.store.LatestCheckpoint(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 5, latest.Size)
}

// The old key in other hands, with the application's role, stores a
// checkpoint of its own after the new key's, whose lines say the old key's
// time never ended, or that the new key's did: no server with the new key
// signs on after it, though it never signed itself (a second server, or
// one restarted), so the lines are never carried into the new key's word,
// and verify reports the stored one.
func TestOldKeyLinesAreNotCarriedOn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.ingest(t, 0, 4)
	b.sequenceAndSign(t)
	old := b.keys
	rotated := keysAfter(t, old)
	first := &ledger.Checkpointer{Store: b.store, Keys: rotated, Origin: "casetrail.test/log", MaxAge: time.Hour}
	require.NoError(t, first.Maybe(ctx, time.Now()))
	b.ingest(t, 4, 3)
	require.NoError(t, b.seq.Drain(ctx))
	st, err := b.store.LatestLogState(ctx)
	require.NoError(t, err)
	require.NoError(t, first.Sign(ctx, st))

	app := appRole(t, b)
	ov, rv := old.Verifier, rotated.Verifier
	for _, lines := range []string{
		fmt.Sprintf("retired-key %s+%08x %d\n", ov.Name(), ov.KeyHash(), 1000000),
		fmt.Sprintf("retired-key %s+%08x 0\nretired-key %s+%08x 0\n", ov.Name(), ov.KeyHash(), rv.Name(), rv.KeyHash()),
	} {
		signed, err := note.Sign(&note.Note{Text: ledger.CheckpointText("casetrail.test/log", st.Size, st.Root) + lines}, old.Signer)
		require.NoError(t, err)
		_, err = app.Exec(ctx, "INSERT INTO log_checkpoints (size, root, note) VALUES ($1, $2, $3)", st.Size, st.Root, string(signed))
		require.NoError(t, err)
		second := &ledger.Checkpointer{Store: b.store, Keys: rotated, Origin: "casetrail.test/log", MaxAge: time.Hour}
		require.NoError(t, second.CheckKey(ctx))
		require.ErrorIs(t, second.Maybe(ctx, time.Now()), ledger.ErrForeignKey)
		require.True(t, second.Refusing())
		latest, err := b.store.LatestCheckpoint(ctx)
		require.NoError(t, err)
		require.Equal(t, string(signed), latest.Note, "nothing signed on after it")
		_, err = ledger.Verify(ctx, b.store, rotated.Chain(), nil)
		var f *ledger.Finding
		require.ErrorAs(t, err, &f)
		require.Contains(t, f.Detail, "not with the newest key given")
	}
}

// Two servers with the new key that reach the hand-over at once: one hands
// over, the other signs on after it; neither takes the other's hand-over
// for the log going back to the old key.
func TestTwoServersHandOverAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.ingest(t, 0, 4)
	b.sequenceAndSign(t)
	before, err := b.store.LatestCheckpoint(ctx)
	require.NoError(t, err)
	rotated := keysAfter(t, b.keys)
	for round := range 150 {
		b.tamper(t, "DELETE FROM log_checkpoints WHERE id > $1", before.ID)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		start := make(chan struct{})
		for j := range errs {
			c := &ledger.Checkpointer{Store: b.store, Keys: rotated, Origin: "casetrail.test/log", MaxAge: time.Hour}
			wg.Go(func() {
				<-start
				errs[j] = c.Maybe(ctx, time.Now())
			})
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			require.NoError(t, err, "round %d", round)
		}
	}
}

// In a rolling restart a server still on the old key may store a larger
// checkpoint just before the new key's, which is then not stored: the new
// key has not signed, and hands over at its next turn rather than refusing.
func TestAHandOverNotStoredIsMadeAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.ingest(t, 0, 4)
	b.sequenceAndSign(t)
	rotated := keysAfter(t, b.keys)
	cp := &ledger.Checkpointer{Store: b.store, Keys: rotated, Origin: "casetrail.test/log", MaxAge: time.Hour}
	small, err := b.store.LatestLogState(ctx)
	require.NoError(t, err)
	b.ingest(t, 4, 3)
	b.sequenceAndSign(t) // the old key's server, with the larger tree
	require.NoError(t, cp.Sign(ctx, small), "the smaller tree is not stored")
	latest, err := b.store.LatestCheckpoint(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 7, latest.Size)
	require.NoError(t, cp.Maybe(ctx, time.Now()))
	require.False(t, cp.Refusing())
	latest, err = b.store.LatestCheckpoint(ctx)
	require.NoError(t, err)
	_, err = ledger.OpenCheckpoint([]byte(latest.Note), ledger.KeyChain{rotated.Verifier})
	require.NoError(t, err, "the new key handed over")
}

// A line that only looks like a signature of the new key, added by whoever
// can insert to a copy of the old key's checkpoint, is no signature: the
// new key still hands over.
func TestALineThatLooksLikeASignatureIsNone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.ingest(t, 0, 4)
	b.sequenceAndSign(t)
	rotated := keysAfter(t, b.keys)
	latest, err := b.store.LatestCheckpoint(ctx)
	require.NoError(t, err)
	var h [4]byte
	// The key's name and the start of its key hash, the last bits changed:
	// the line reads as the new key's, but no key signed it.
	binary.BigEndian.PutUint32(h[:], rotated.Verifier.KeyHash()^1)
	fake := latest.Note + "\u2014 " + rotated.Verifier.Name() + " " + base64.StdEncoding.EncodeToString(append(h[:], make([]byte, 64)...)) + "\n"
	_, err = b.db.Connect(t).Exec(ctx, "INSERT INTO log_checkpoints (size, root, note) VALUES ($1, $2, $3)", latest.Size, latest.Root, fake)
	require.NoError(t, err)
	cp := &ledger.Checkpointer{Store: b.store, Keys: rotated, Origin: "casetrail.test/log", MaxAge: time.Hour}
	require.NoError(t, cp.Maybe(ctx, time.Now()))
	require.False(t, cp.Refusing())
	latest, err = b.store.LatestCheckpoint(ctx)
	require.NoError(t, err)
	_, err = ledger.OpenCheckpoint([]byte(latest.Note), ledger.KeyChain{rotated.Verifier})
	require.NoError(t, err, "the new key handed over")
}

// The old key in other hands, with the owner's rights, removes every
// checkpoint of the new key and erases an event that came after the
// rotation; a server with the new key, restarted, then hands over again,
// later. Only a checkpoint kept outside the store shows it: verify given an
// auditor's copy of the new key's checkpoint holds the store to the end of
// the old key's time that copy names.
func TestAKeptCheckpointHoldsTheOldKeysEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	owner := b.owner(t)
	b.ingest(t, 0, 4)
	b.sequenceAndSign(t)
	old := b.keys
	before, err := b.store.LatestCheckpoint(ctx)
	require.NoError(t, err)
	rotated := keysAfter(t, old)
	first := &ledger.Checkpointer{Store: b.store, Keys: rotated, Origin: "casetrail.test/log", MaxAge: time.Hour}
	require.NoError(t, first.Maybe(ctx, time.Now()))
	later := b.ingest(t, 4, 3)
	require.NoError(t, b.seq.Drain(ctx))
	st, err := b.store.LatestLogState(ctx)
	require.NoError(t, err)
	require.NoError(t, first.Sign(ctx, st))
	kept, err := b.store.LatestCheckpoint(ctx)
	require.NoError(t, err)

	b.tamper(t, "DELETE FROM log_checkpoints WHERE id > $1", before.ID)
	_, err = ledger.Expunge(ctx, owner, old, later[:1], "made up")
	require.NoError(t, err)
	restarted := &ledger.Checkpointer{Store: b.store, Keys: rotated, Origin: "casetrail.test/log", MaxAge: time.Hour}
	require.NoError(t, restarted.Maybe(ctx, time.Now()))
	_, err = ledger.Verify(ctx, b.store, rotated.Chain(), []byte(kept.Note))
	var f *ledger.Finding
	require.ErrorAs(t, err, &f)
	require.Contains(t, f.Detail, "the log moved on from it at size 4")
}

// An old checkpoint of the previous key copied in again as the newest, by
// whoever can insert, lies within the time the new key gave the old: the
// servers with the new key, running or restarted, sign on after it.
func TestAnOldCheckpointCopiedInStopsNoSigning(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.ingest(t, 0, 4)
	b.sequenceAndSign(t)
	before, err := b.store.LatestCheckpoint(ctx)
	require.NoError(t, err)
	rotated := keysAfter(t, b.keys)
	running := &ledger.Checkpointer{Store: b.store, Keys: rotated, Origin: "casetrail.test/log", MaxAge: time.Hour}
	require.NoError(t, running.Maybe(ctx, time.Now()))
	b.ingest(t, 4, 2)
	require.NoError(t, b.seq.Drain(ctx))

	app := appRole(t, b)
	_, err = app.Exec(ctx, "INSERT INTO log_checkpoints (size, root, note) SELECT size, root, note FROM log_checkpoints WHERE id = $1", before.ID)
	require.NoError(t, err)
	restarted := &ledger.Checkpointer{Store: b.store, Keys: rotated, Origin: "casetrail.test/log", MaxAge: time.Hour}
	for _, cp := range []*ledger.Checkpointer{running, restarted} {
		st, err := b.store.LatestLogState(ctx)
		require.NoError(t, err)
		require.NoError(t, cp.Sign(ctx, st))
		require.False(t, cp.Refusing())
		_, err = app.Exec(ctx, "INSERT INTO log_checkpoints (size, root, note) SELECT size, root, note FROM log_checkpoints WHERE id = $1", before.ID)
		require.NoError(t, err)
	}
	st, err := b.store.LatestLogState(ctx)
	require.NoError(t, err)
	require.NoError(t, running.Sign(ctx, st))
	_, err = ledger.Verify(ctx, b.store, rotated.Chain(), nil)
	require.NoError(t, err, "the copies lie within the old key's time")
}

// keysAfter makes a new signing key whose previous keys are those given,
// oldest first: a rotation.
func keysAfter(t *testing.T, previous ...*ledger.Keys) *ledger.Keys {
	t.Helper()
	k, err := ledger.LoadKeys("", t.TempDir(), "casetrail.test")
	require.NoError(t, err)
	var vkeys []string
	for _, p := range previous {
		vkeys = append(vkeys, p.VerifierKey)
	}
	require.NoError(t, k.WithPrevious(vkeys))
	return k
}

// appRole connects to the test database as the application's role.
func appRole(t *testing.T, b *testBundle) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	app, err := pgx.Connect(ctx, b.db.URL)
	require.NoError(t, err)
	t.Cleanup(func() { app.Close(ctx) })
	_, err = app.Exec(ctx, "SET ROLE casetrail_app")
	require.NoError(t, err)
	return app
}
