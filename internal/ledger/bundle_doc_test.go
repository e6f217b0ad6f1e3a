package ledger_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/casetrail/casetrail/internal/ledger"
)

// openNote checks a signed note as docs/integrity.md describes it, with
// nothing of casetrail's, and returns its text.
func openNote(t *testing.T, signed []byte, vkey string) string {
	t.Helper()
	parts := strings.SplitN(vkey, "+", 3)
	require.Len(t, parts, 3)
	name, keyHash := parts[0], parts[1]
	key, err := base64.StdEncoding.DecodeString(parts[2])
	require.NoError(t, err)
	require.Equal(t, byte(0x01), key[0], "an Ed25519 key")
	h := sha256.Sum256(append([]byte(name+"\n"), key...))
	require.Equal(t, keyHash, hex.EncodeToString(h[:4]))
	text, sigs, ok := strings.Cut(string(signed), "\n\n")
	require.True(t, ok)
	text += "\n"
	line, ok := strings.CutPrefix(strings.TrimSuffix(sigs, "\n"), "— "+name+" ")
	require.True(t, ok, sigs)
	sig, err := base64.StdEncoding.DecodeString(line)
	require.NoError(t, err)
	require.Equal(t, binary.BigEndian.Uint32(h[:4]), binary.BigEndian.Uint32(sig[:4]))
	require.True(t, ed25519.Verify(ed25519.PublicKey(key[1:]), []byte(text), sig[4:]), "the signature verifies")
	return text
}

// A bundle checks by the steps docs/integrity.md gives, with only SHA-256,
// Ed25519 and an RFC 6962 proof check.
func TestBundleChecksAsIntegrityDocSays(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	ids := b.ingest(t, 0, 5)
	b.sequenceAndSign(t)
	dir := t.TempDir()
	_, err := ledger.Export(ctx, b.store, b.keys, ledger.Selection{Case: "c-1"}, ids, dir)
	require.NoError(t, err)
	read := func(name string) []byte {
		raw, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		return raw
	}

	// 1. The checkpoint.
	cp := strings.Split(openNote(t, read("checkpoint.txt"), b.keys.VerifierKey), "\n")
	origin := cp[0]
	size, err := strconv.ParseInt(cp[1], 10, 64)
	require.NoError(t, err)
	root, err := base64.StdEncoding.DecodeString(cp[2])
	require.NoError(t, err)

	// 2. The manifest and its signature.
	manifest := read("manifest.json")
	sum := sha256.Sum256(manifest)
	require.Equal(t, "casetrail bundle manifest\n"+origin+"\nsha256 "+hex.EncodeToString(sum[:])+"\n",
		openNote(t, read("manifest.sig"), b.keys.VerifierKey))
	var m struct {
		CheckpointSize int64    `json:"checkpointSize"`
		EventIDs       []string `json:"eventIds"`
		Pending        []string `json:"pending"`
		Expunged       []string `json:"expunged"`
	}
	require.NoError(t, json.Unmarshal(manifest, &m))
	require.Equal(t, size, m.CheckpointSize)
	// Every member the page names is there, as a list even when empty.
	require.NotNil(t, m.Pending)
	require.Empty(t, m.Pending)
	require.NotNil(t, m.Expunged)
	require.Empty(t, m.Expunged)

	// 3. Each line.
	var seen []string
	sc := bufio.NewScanner(bytes.NewReader(read("events.ndjson")))
	for sc.Scan() {
		var line struct {
			Leaf      json.RawMessage `json:"leaf"`
			Detail    json.RawMessage `json:"detail"`
			Salt      string          `json:"salt"`
			LeafIndex int64           `json:"leafIndex"`
			TreeSize  int64           `json:"treeSize"`
			Proof     []string        `json:"proof"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &line))
		var leaf struct {
			V          int    `json:"v"`
			ID         int64  `json:"id"`
			DetailHash string `json:"detailHash"`
			BodyHash   string `json:"bodyHash"`
		}
		require.NoError(t, json.Unmarshal(line.Leaf, &leaf))
		require.Equal(t, 4, leaf.V)
		id := strconv.FormatInt(leaf.ID, 10)
		salt, err := base64.StdEncoding.DecodeString(line.Salt)
		require.NoError(t, err)
		require.Len(t, salt, 32)
		body := read(filepath.Join("bodies", id))
		bh := sha256.Sum256(append(append([]byte{}, salt...), body...))
		require.Equal(t, leaf.BodyHash, hex.EncodeToString(bh[:]))
		dh := sha256.Sum256(append(append([]byte{}, salt...), line.Detail...))
		require.Equal(t, leaf.DetailHash, hex.EncodeToString(dh[:]))
		var detail struct {
			BodySHA256 string `json:"bodySha256"`
		}
		require.NoError(t, json.Unmarshal(line.Detail, &detail))
		plain := sha256.Sum256(body)
		require.Equal(t, detail.BodySHA256, hex.EncodeToString(plain[:]))
		require.Equal(t, size, line.TreeSize)
		lh := sha256.Sum256(append([]byte{0x00}, line.Leaf...))
		hashes := make([][]byte, len(line.Proof))
		for i, p := range line.Proof {
			hashes[i], err = base64.StdEncoding.DecodeString(p)
			require.NoError(t, err)
		}
		require.NoError(t, proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(line.LeafIndex), uint64(size), lh[:], hashes, root))
		seen = append(seen, id)
	}
	require.NoError(t, sc.Err())
	// 4. Exactly the events the manifest lists.
	require.Equal(t, m.EventIDs, seen)
	require.Len(t, seen, 5)
}
