package ledger

import (
	"context"
	"errors"

	"github.com/casetrail/casetrail/internal/store"
)

// Expunge erases the content of the given events (store.Expunge) after
// checking that each row still hashes to its leaf: an altered row is not
// erased, which would hide what was altered, but refused, for verify to
// name. The record of each expunge keeps the hashes its leaf commits to, so
// the log, its proofs and verify are unchanged by it.
func Expunge(ctx context.Context, st *store.Store, ids []int64, reason string) ([]store.ExpungeResult, error) {
	return st.Expunge(ctx, ids, reason, func(t store.ExpungeTarget) ([]byte, error) {
		_, version := matchingLeaf(t.Leaf, t.LeafHash)
		switch version {
		case 0:
			return nil, errors.New("its row no longer hashes to its leaf; run casetrail verify")
		case 1, 2:
			return nil, nil // its leaf commits to no detail
		}
		return saltedHash(t.Leaf.Salt, detailOf(t.Leaf)), nil
	})
}
