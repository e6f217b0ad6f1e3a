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
		first := int64(id.Index) << id.Level
		for i := range int64(1) << id.Level {
			leaves = append(leaves, first+i)
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
	first := int64(id.Index) << id.Level
	level := make([][]byte, 1<<id.Level)
	for i := range level {
		if level[i] = leaves[first+int64(i)]; level[i] == nil {
			return nil
		}
	}
	for len(level) > 1 {
		// Each pair's parent goes where the pair's first was read from or
		// before it.
		for i := range len(level) / 2 {
			level[i] = hasher.HashChildren(level[2*i], level[2*i+1])
		}
		level = level[:len(level)/2]
	}
	return level[0]
}
