package ledger_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	b.ingest(t, 4, 2)
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
	require.ErrorContains(t, err, "not signed with the log's key")

	// The old key, once rotated away from, signs a checkpoint that is
	// stored: consistent with the tree, but a finding.
	signed, err := note.Sign(&note.Note{Text: ledger.CheckpointText("casetrail.test/log", st.Size, st.Root)}, old.Signer)
	require.NoError(t, err)
	_, err = b.db.Connect(t).Exec(ctx, "INSERT INTO log_checkpoints (size, root, note) VALUES ($1, $2, $3)", st.Size, st.Root, string(signed))
	require.NoError(t, err)
	_, err = ledger.Verify(ctx, b.store, rotated.Chain(), nil)
	require.ErrorAs(t, err, &f)
	require.Equal(t, "checkpoint", f.Kind)
	require.True(t, strings.Contains(f.Detail, "signed with an earlier key of the log"), f.Detail)
}
