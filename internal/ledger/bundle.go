package ledger

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/transparency-dev/merkle/proof"
	"golang.org/x/mod/sumdb/note"

	"github.com/casetrail/casetrail/internal/store"
)

// A bundle is a directory an auditor can verify offline with only the log's
// public key:
//
//	checkpoint.txt   the signed checkpoint the proofs lead to
//	key.txt          the verifier key (informational: verify with your own copy)
//	events.ndjson    one line per event: its leaf fields, salt, log index and
//	                 inclusion proof
//	bodies/<id>      each event's raw body, byte for byte
const (
	bundleCheckpoint = "checkpoint.txt"
	bundleKey        = "key.txt"
	bundleEvents     = "events.ndjson"
	bundleBodies     = "bodies"
)

// BundleEvent is one line of events.ndjson.
type BundleEvent struct {
	Leaf      json.RawMessage `json:"leaf"` // the leaf data, with bodyHash
	Salt      string          `json:"salt"` // base64
	LeafIndex int64           `json:"leafIndex"`
	TreeSize  int64           `json:"treeSize"`
	Proof     []string        `json:"proof"` // base64 hashes
}

// Export writes a bundle of the given events (those in the log) to dir and
// returns how many it holds.
func Export(ctx context.Context, st *store.Store, keys *Keys, ids []int64, dir string) (int, error) {
	cp, err := st.LatestCheckpoint(ctx)
	if err != nil {
		return 0, fmt.Errorf("no signed checkpoint to export against: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, bundleBodies), 0o700); err != nil {
		return 0, err
	}
	if err := os.WriteFile(filepath.Join(dir, bundleCheckpoint), []byte(cp.Note), 0o600); err != nil {
		return 0, err
	}
	if err := os.WriteFile(filepath.Join(dir, bundleKey), []byte(keys.VerifierKey+"\n"), 0o600); err != nil {
		return 0, err
	}
	f, err := os.OpenFile(filepath.Join(dir, bundleEvents), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	n := 0
	for start := 0; start < len(ids); start += 500 {
		rows, err := st.BundleRows(ctx, ids[start:min(start+500, len(ids))])
		if err != nil {
			return n, err
		}
		for _, r := range rows {
			if r.Index >= cp.Size {
				continue // sequenced after the checkpoint: in the next bundle
			}
			p, err := Inclusion(ctx, st, r.Leaf.EventID, cp.Size)
			if err != nil {
				return n, err
			}
			r.Leaf.BodyHash = saltedHash(r.Salt, r.Body)
			leaf := LeafData(r.Leaf)
			if b64(hasher.HashLeaf(leaf)) != p.LeafHash {
				leaf = leafDataOf(r.Leaf, 1) // sequenced before version 2
			}
			if err := enc.Encode(BundleEvent{Leaf: leaf, Salt: b64(r.Salt), LeafIndex: p.LeafIndex,
				TreeSize: p.TreeSize, Proof: p.Hashes}); err != nil {
				return n, err
			}
			name := filepath.Join(dir, bundleBodies, strconv.FormatInt(r.Leaf.EventID, 10))
			if err := os.WriteFile(name, r.Body, 0o600); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, w.Flush()
}

func saltedHash(salt, body []byte) []byte {
	h := sha256.New()
	h.Write(salt)
	h.Write(body)
	return h.Sum(nil)
}

// VerifyBundle checks a bundle offline: the checkpoint's signature with the
// given key, each body against the salted hash its leaf commits to, and each
// leaf's inclusion proof against the checkpoint's root. It returns how many
// events it verified, or an error naming the first that fails.
func VerifyBundle(dir string, v note.Verifier) (int, error) {
	signed, err := os.ReadFile(filepath.Join(dir, bundleCheckpoint))
	if err != nil {
		return 0, err
	}
	cp, err := OpenCheckpoint(signed, v)
	if err != nil {
		return 0, err
	}
	f, err := os.Open(filepath.Join(dir, bundleEvents))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	n := 0
	for sc.Scan() {
		var ev BundleEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return n, fmt.Errorf("events.ndjson line %d: %w", n+1, err)
		}
		var leaf leafData
		if err := json.Unmarshal(ev.Leaf, &leaf); err != nil {
			return n, fmt.Errorf("events.ndjson line %d: %w", n+1, err)
		}
		fail := func(why string) error {
			return fmt.Errorf("event %d (log index %d): %s", leaf.EventID, ev.LeafIndex, why)
		}
		// The leaf must be in its canonical form, so that what is hashed is
		// what is read.
		canon, _ := json.Marshal(leaf)
		if !bytes.Equal(canon, ev.Leaf) {
			return n, fail("leaf data is not in canonical form")
		}
		body, err := os.ReadFile(filepath.Join(dir, bundleBodies, strconv.FormatInt(leaf.EventID, 10)))
		if err != nil {
			return n, fail("body missing: " + err.Error())
		}
		salt, err := base64.StdEncoding.DecodeString(ev.Salt)
		if err != nil {
			return n, fail("bad salt")
		}
		if fmt.Sprintf("%x", saltedHash(salt, body)) != leaf.BodyHash {
			return n, fail("the body does not match the hash its leaf commits to")
		}
		if ev.TreeSize != cp.Size {
			return n, fail("the proof is for another tree size than the checkpoint")
		}
		hashes := make([][]byte, len(ev.Proof))
		for i, h := range ev.Proof {
			if hashes[i], err = base64.StdEncoding.DecodeString(h); err != nil {
				return n, fail("bad proof hash")
			}
		}
		if err := proof.VerifyInclusion(hasher, uint64(ev.LeafIndex), uint64(cp.Size), hasher.HashLeaf(ev.Leaf), hashes, cp.Root); err != nil {
			return n, fail("not in the log at the checkpoint: " + err.Error())
		}
		n++
	}
	if err := sc.Err(); err != nil {
		return n, err
	}
	if n == 0 {
		return 0, errors.New("the bundle holds no events")
	}
	return n, nil
}
