package ledger

import (
	"context"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"

	"github.com/casetrail/casetrail/internal/store"
)

// proofHashes fetches the stored hashes of a proof's nodes (as computed by
// proof.Inclusion or proof.Consistency) and folds the ephemeral node, if any.
func proofHashes(ctx context.Context, st *store.Store, n proof.Nodes, err error) ([][]byte, error) {
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSize, err)
	}
	hashes, err := fetch(ctx, st, n.IDs)
	if err != nil {
		return nil, err
	}
	return n.Rehash(hashes, hasher.HashChildren)
}

func fetch(ctx context.Context, st *store.Store, ids []compact.NodeID) ([][]byte, error) {
	var leaves, keys []int64
	for _, id := range ids {
		if id.Level == 0 {
			leaves = append(leaves, int64(id.Index))
		} else {
			keys = append(keys, NodeKey(id))
		}
	}
	leafHashes, err := st.LeafHashes(ctx, leaves)
	if err != nil {
		return nil, err
	}
	nodeHashes, err := st.NodeHashes(ctx, keys)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(ids))
	for i, id := range ids {
		var h []byte
		if id.Level == 0 {
			h = leafHashes[int64(id.Index)]
		} else {
			h = nodeHashes[NodeKey(id)]
		}
		if h == nil {
			return nil, fmt.Errorf("the log is missing node %d/%d", id.Level, id.Index)
		}
		out[i] = h
	}
	return out, nil
}
