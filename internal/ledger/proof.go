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

// fetch reads the hashes of the given nodes: leaves and stored subtree
// hashes as they are, lower subtrees hashed from their leaves.
func fetch(ctx context.Context, st *store.Store, ids []compact.NodeID) ([][]byte, error) {
	var leaves, keys []int64
	for _, id := range ids {
		if id.Level >= storedLevel {
			keys = append(keys, NodeKey(id))
			continue
		}
		begin, end := id.Coverage()
		for i := begin; i < end; i++ {
			leaves = append(leaves, int64(i))
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
		if id.Level >= storedLevel {
			h = nodeHashes[NodeKey(id)]
		} else {
			h = subtreeHash(leafHashes, id)
		}
		if h == nil {
			return nil, fmt.Errorf("the log is missing node %d/%d", id.Level, id.Index)
		}
		out[i] = h
	}
	return out, nil
}

// subtreeHash is the hash of the perfect subtree id (a leaf at level 0)
// from its leaves' hashes, or nil when one of them is missing.
func subtreeHash(leaves map[int64][]byte, id compact.NodeID) []byte {
	begin, end := id.Coverage()
	rng := rangeFactory.NewEmptyRange(begin)
	for i := begin; i < end; i++ {
		h := leaves[int64(i)]
		if h == nil {
			return nil
		}
		if err := rng.Append(h, nil); err != nil {
			return nil
		}
	}
	// The range of an aligned perfect subtree is that one node.
	return rng.Hashes()[0]
}
