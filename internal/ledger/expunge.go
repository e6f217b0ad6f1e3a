package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/casetrail/casetrail/internal/store"
)

// Expunge erases the content of the given events (store.Expunge) after
// checking that each row still hashes to its leaf: an altered row is not
// erased, which would hide what was altered, but refused, for verify to
// name. Each record of an expunge keeps the hashes its leaf commits to and
// is signed with the log's key, so the log, its proofs and verify are
// unchanged by it, and a record forged without the key is found by verify.
// keys must be the log's: the latest signed checkpoint must verify with
// them.
func Expunge(ctx context.Context, st *store.Store, keys *Keys, ids []int64, reason string) ([]store.ExpungeResult, error) {
	cp, err := st.LatestCheckpoint(ctx)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if err == nil {
		if _, err := OpenCheckpoint([]byte(cp.Note), keys.Chain()); err != nil {
			return nil, fmt.Errorf("%w: the signing key at hand is not the log's (the latest checkpoint does not verify with %s); run expunge with the server's configuration", store.ErrRefused, keys.VerifierKey)
		}
	}
	return st.Expunge(ctx, ids, reason, store.ExpungeHooks{
		Check: func(t store.ExpungeTarget) ([]byte, error) {
			// What verify checks of a row besides its leaf, which the
			// leaf may commit to as it was found when it was written.
			if len(t.Leaf.Salt) != saltSize {
				return nil, errors.New("its body's salt is not one the store makes; run casetrail verify")
			}
			if !t.BodySHA256Matches {
				return nil, errors.New("the SHA-256 it shows for its body is not its body's; run casetrail verify")
			}
			_, version := matchingLeaf(t.Leaf, t.LeafHash)
			switch version {
			case 0:
				return nil, errors.New("its row no longer hashes to its leaf; run casetrail verify")
			case 1, 2:
				return nil, nil // its leaf commits to no detail
			}
			return store.SaltedHash(t.Leaf.Salt, detailOf(t.Leaf, version)), nil
		},
		Sign: func(r store.ExpungeRecord) (string, error) {
			signed, err := note.Sign(&note.Note{Text: expungeText(r, expungeVersion)}, keys.Signer)
			return string(signed), err
		},
	})
}

// expungeVersion is the version of the records an expunge signs; records
// of version 1, which leave out the content type and key, still verify.
const expungeVersion = 2

// expungeText is the text an expunge's record of the given version is
// signed as. The reason, the credential and the content type enter by
// their SHA-256, the key by its salted one, so that the text is lines of
// fixed form whatever they hold. Version 2 adds the content type and the
// key, which the row keeps and its leaf's detail no longer checks.
func expungeText(r store.ExpungeRecord, version int) string {
	var b strings.Builder
	if version >= 2 {
		fmt.Fprintf(&b, "casetrail expunge %d\n", version)
	} else {
		b.WriteString("casetrail expunge\n")
	}
	fmt.Fprintf(&b, "event %d\nat %s\n", r.EventID, r.At.UTC().Format(time.RFC3339Nano))
	fmt.Fprintf(&b, "reason %x\ncredential %x\n", sha256.Sum256([]byte(r.Reason)), sha256.Sum256([]byte(r.Credential)))
	if version >= 2 {
		fmt.Fprintf(&b, "content-type %x\nkey %x\n", sha256.Sum256([]byte(r.ContentType)), r.KeyHash)
	}
	fmt.Fprintf(&b, "body %x\ndetail %s\nblobs %s\n", r.BodyHash, orDash(hex.EncodeToString(r.DetailHash)), orDash(strings.Join(hexes(r.Blobs), ",")))
	return b.String()
}

// hexes is each hash in hex.
func hexes(hs [][]byte) []string {
	s := make([]string, len(hs))
	for i, h := range hs {
		s[i] = hex.EncodeToString(h)
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// checkExpunged checks the record of an expunged event: signed with the
// log's key, saying what the record and the row hold (the row's credential
// included), and the row as blank as an expunge leaves it.
func checkExpunged(l store.LeafSource, v note.Verifiers) (keyID, error) {
	if !l.Expunged.Blank {
		return keyID{}, errors.New("it is recorded as expunged, but its row holds content again")
	}
	return checkExpungeNote(l.Expunged.Note, l.Expunged.ExpungeRecord, v)
}

// checkExpungeNote checks a signed expunge record against r, and returns
// the key that signed it.
func checkExpungeNote(signed string, r store.ExpungeRecord, v note.Verifiers) (keyID, error) {
	n, err := note.Open([]byte(signed), v)
	var unknown *note.UnverifiedNoteError
	if errors.As(err, &unknown) && len(unknown.Note.UnverifiedSigs) > 0 {
		sig := unknown.Note.UnverifiedSigs[0]
		return keyID{}, fmt.Errorf("the record of its expunge is signed with a key that is none of those given (%s)", keyID{sig.Name, sig.Hash})
	}
	if err != nil {
		return keyID{}, fmt.Errorf("the record of its expunge is not signed with the log's key: %v", err)
	}
	if n.Text != expungeText(r, 2) && n.Text != expungeText(r, 1) {
		return keyID{}, errors.New("the record of its expunge, or its credential, content type or idempotency key, differs from what was signed")
	}
	return signerOf(n.Sigs), nil
}
