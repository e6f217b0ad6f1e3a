package ledger

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"golang.org/x/mod/sumdb/tlog"
)

// memHashes is a tlog.HashReader over stored hashes.
type memHashes []tlog.Hash

func (m memHashes) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = m[x]
	}
	return out, nil
}

func TestEmptyTreeRoot(t *testing.T) {
	t.Parallel()
	root, err := rootOf(rangeFactory.NewEmptyRange(0))
	require.NoError(t, err)
	require.Equal(t, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", hex.EncodeToString(root))
}

func TestRFC6962Vectors(t *testing.T) {
	t.Parallel()
	// From RFC 6962's reference test data (certificate-transparency).
	require.Equal(t, "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d", hex.EncodeToString(hasher.HashLeaf(nil)))
	leaves := [][]byte{{}, {0x00}, {0x10}, {0x20, 0x21}, {0x30, 0x31}, {0x40, 0x41, 0x42, 0x43}, {0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57}, {0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f}}
	roots := []string{
		"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
		"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
		"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
		"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
		"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
		"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
		"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
		"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
	}
	rng := rangeFactory.NewEmptyRange(0)
	for i, l := range leaves {
		require.NoError(t, rng.Append(hasher.HashLeaf(l), nil))
		root, err := rootOf(rng)
		require.NoError(t, err)
		require.Equal(t, roots[i], hex.EncodeToString(root), "size %d", i+1)
	}
}

// TestAgreesWithSumdbTlog builds trees of every size from 1 to 1000 and
// checks roots, inclusion and consistency proofs against an independent
// implementation of the same hashing.
func TestAgreesWithSumdbTlog(t *testing.T) {
	t.Parallel()
	const n = 1000
	var stored memHashes
	nodes := map[compact.NodeID][]byte{}
	rng := rangeFactory.NewEmptyRange(0)
	roots := make([][]byte, n+1)
	for i := range int64(n) {
		data := []byte(fmt.Sprintf("leaf %d", i))
		hs, err := tlog.StoredHashes(i, data, stored)
		require.NoError(t, err)
		stored = append(stored, hs...)
		require.NoError(t, rng.Append(hasher.HashLeaf(data), func(id compact.NodeID, h []byte) { nodes[id] = h }))
		root, err := rootOf(rng)
		require.NoError(t, err)
		roots[i+1] = root
		want, err := tlog.TreeHash(i+1, stored)
		require.NoError(t, err)
		require.Equal(t, want[:], root, "root of size %d", i+1)
	}
	fetch := func(ids []compact.NodeID) [][]byte {
		out := make([][]byte, len(ids))
		for i, id := range ids {
			out[i] = nodes[id]
			require.NotNil(t, out[i], "node %v", id)
		}
		return out
	}
	for size := int64(1); size <= n; size += 7 {
		for idx := int64(0); idx < size; idx += 13 {
			p, err := proof.Inclusion(uint64(idx), uint64(size))
			require.NoError(t, err)
			ours, err := p.Rehash(fetch(p.IDs), hasher.HashChildren)
			require.NoError(t, err)
			theirs, err := tlog.ProveRecord(size, idx, stored)
			require.NoError(t, err)
			require.Equal(t, len(theirs), len(ours), "inclusion %d/%d", idx, size)
			for i := range theirs {
				require.True(t, bytes.Equal(theirs[i][:], ours[i]))
			}
		}
		for from := int64(1); from <= size; from += 17 {
			p, err := proof.Consistency(uint64(from), uint64(size))
			require.NoError(t, err)
			ours, err := p.Rehash(fetch(p.IDs), hasher.HashChildren)
			require.NoError(t, err)
			theirs, err := tlog.ProveTree(size, from, stored)
			require.NoError(t, err)
			require.Equal(t, len(theirs), len(ours), "consistency %d->%d", from, size)
			for i := range theirs {
				require.True(t, bytes.Equal(theirs[i][:], ours[i]))
			}
			require.NoError(t, proof.VerifyConsistency(hasher, uint64(from), uint64(size), ours, roots[from], roots[size]))
		}
	}
}
