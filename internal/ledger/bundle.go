package ledger

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

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
//	bodies/<id>      each event's raw body, byte for byte (none for an
//	                 expunged event, whose line says when and why)
//	manifest.json    what was asked for, and which events the bundle holds
//	manifest.sig     manifest.json's SHA-256, signed with the log's key, so
//	                 that nobody without the key can take events out of a
//	                 bundle after its export, or change what it says it is
const (
	bundleCheckpoint  = "checkpoint.txt"
	bundleKey         = "key.txt"
	bundleEvents      = "events.ndjson"
	bundleBodies      = "bodies"
	bundleManifest    = "manifest.json"
	bundleManifestSig = "manifest.sig"
)

// Selection is what an export was asked for: a case (its timeline: its own
// events and the contact-center events correlated with it), or the events
// received in [From, To).
type Selection struct {
	Case string `json:"case,omitempty"`
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
}

// Manifest is manifest.json.
type Manifest struct {
	Selection      Selection `json:"selection"`
	CheckpointSize int64     `json:"checkpointSize"`
	// EventIDs are the events the bundle holds, in log order.
	EventIDs []string `json:"eventIds"`
	// Pending are selected events that no signed checkpoint covered yet
	// when the bundle was written: the bundle is partial.
	Pending []string `json:"pending"`
	// Expunged are those of EventIDs whose content was erased: the bundle
	// holds their leaves and proofs, not their bodies or details.
	Expunged []string `json:"expunged"`
}

// BundleEvent is one line of events.ndjson.
type BundleEvent struct {
	Leaf json.RawMessage `json:"leaf"` // the leaf data, with bodyHash
	// Detail is what a leaf's detailHash is taken over (version 3 on): the
	// credential, summary, actor, changes and before-* reply, and from
	// version 4 the content type, idempotency key, the body's SHA-256 and
	// the indexed copy's salted hash.
	Detail json.RawMessage `json:"detail,omitempty"`
	// Salt is the event's body salt (base64); absent when it was expunged,
	// since with it a guess of the erased content could be checked.
	Salt      string   `json:"salt,omitempty"`
	LeafIndex int64    `json:"leafIndex"`
	TreeSize  int64    `json:"treeSize"`
	Proof     []string `json:"proof"` // base64 hashes
	// Expunged is set when the event's content was erased: its leaf's body
	// and detail hashes are those its expunge recorded.
	Expunged *ExpungeNote `json:"expunged,omitempty"`
}

// ExpungeNote says when and why an event's content was erased, with what
// its signed record covers besides the leaf.
type ExpungeNote struct {
	At         time.Time `json:"at"`
	Reason     string    `json:"reason"`
	Credential string    `json:"credential"`
	// ContentType and KeyHash (hex SHA-256(salt || idempotency key)) are
	// what a version 2 record signs of them.
	ContentType string   `json:"contentType"`
	KeyHash     string   `json:"keyHash"`
	Blobs       []string `json:"blobs"`  // hex SHA-256 of the attachments removed
	Record      string   `json:"record"` // the signed note
}

// Uncovered returns those of the given events that the latest signed
// checkpoint does not cover (not yet in the log, or in it after the
// checkpoint), and the checkpoint's size.
func Uncovered(ctx context.Context, st *store.Store, ids []int64) ([]int64, int64, error) {
	cp, _, uncovered, err := coverage(ctx, st, ids)
	return uncovered, cp.Size, err
}

// ErrNoCheckpoint is returned by Uncovered and Export while the log has no
// signed checkpoint yet.
var ErrNoCheckpoint = errors.New("the log has no signed checkpoint to export against yet")

// ErrOutputNotEmpty is returned by Export for a directory that holds
// anything.
var ErrOutputNotEmpty = errors.New("the output directory is not empty")

// ErrPreviousKeyCheckpoint is returned by Export while the newest
// checkpoint is signed with a previous key of the log: a server with the
// current key signs one at once, and a bundle's checkpoint is signed with
// the key an auditor holds as the newest.
var ErrPreviousKeyCheckpoint = errors.New("the newest signed checkpoint is signed with a previous key of the log; a server with the current key signs one at once")

// coverage splits ids by the latest signed checkpoint: the events it covers,
// in log order, and the rest, in the order given.
func coverage(ctx context.Context, st *store.Store, ids []int64) (cp store.Checkpoint, covered, uncovered []int64, err error) {
	cp, err = st.LatestCheckpoint(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return cp, nil, nil, ErrNoCheckpoint
	}
	if err != nil {
		return cp, nil, nil, fmt.Errorf("reading the latest signed checkpoint: %w", err)
	}
	idx, err := st.LogIndexes(ctx, ids)
	if err != nil {
		return cp, nil, nil, err
	}
	for _, id := range ids {
		if i, ok := idx[id]; ok && i < cp.Size {
			covered = append(covered, id)
		} else {
			uncovered = append(uncovered, id)
		}
	}
	slices.SortFunc(covered, func(a, b int64) int { return cmp.Compare(idx[a], idx[b]) })
	return cp, covered, uncovered, nil
}

// Export writes a bundle of the selected events to dir, against the latest
// signed checkpoint, and returns its manifest. Events that checkpoint does
// not cover are listed in the manifest as pending, not exported.
func Export(ctx context.Context, st *store.Store, keys *Keys, sel Selection, ids []int64, dir string) (Manifest, error) {
	m := Manifest{Selection: sel, EventIDs: []string{}, Pending: []string{}, Expunged: []string{}}
	// A bundle is written into a new or empty directory: what an earlier
	// export left there (the body of an event erased since) would travel
	// with it.
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return m, fmt.Errorf("%w: %s is not empty; write the bundle to a new directory", ErrOutputNotEmpty, dir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return m, err
	}
	cp, covered, uncovered, err := coverage(ctx, st, ids)
	if err != nil {
		return m, err
	}
	if !keys.signedWithThis(cp) {
		return m, ErrPreviousKeyCheckpoint
	}
	m.CheckpointSize = cp.Size
	for _, id := range uncovered {
		m.Pending = append(m.Pending, strconv.FormatInt(id, 10))
	}
	if err := os.MkdirAll(filepath.Join(dir, bundleBodies), 0o700); err != nil {
		return m, err
	}
	if err := os.WriteFile(filepath.Join(dir, bundleCheckpoint), []byte(cp.Note), 0o600); err != nil {
		return m, err
	}
	// Every key of the log, oldest first: the checkpoint and the expunge
	// records in the bundle may be signed with a key used before a
	// rotation.
	chain := strings.Join(append(append([]string{}, keys.PreviousKeys...), keys.VerifierKey), "\n")
	if err := os.WriteFile(filepath.Join(dir, bundleKey), []byte(chain+"\n"), 0o600); err != nil {
		return m, err
	}
	f, err := os.OpenFile(filepath.Join(dir, bundleEvents), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return m, err
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for start := 0; start < len(covered); start += 500 {
		rows, err := st.BundleRows(ctx, covered[start:min(start+500, len(covered))])
		if err != nil {
			return m, err
		}
		for _, r := range rows {
			p, err := Inclusion(ctx, st, r.Leaf.EventID, cp.Size)
			if err != nil {
				return m, err
			}
			x := r.Leaf.Expunged
			leaf, version := LeafData(r.Leaf), leafVersion
			if stored, err := base64.StdEncoding.DecodeString(p.LeafHash); err == nil {
				if data, v := matchingLeaf(r.Leaf, stored); v != 0 {
					leaf, version = data, v // of the version the log holds
				}
			}
			ev := BundleEvent{Leaf: leaf, LeafIndex: p.LeafIndex, TreeSize: p.TreeSize, Proof: p.Hashes}
			id := strconv.FormatInt(r.Leaf.EventID, 10)
			if x != nil {
				ev.Expunged = &ExpungeNote{At: x.At.UTC(), Reason: x.Reason, Credential: x.Credential,
					ContentType: x.ContentType, KeyHash: hex.EncodeToString(x.KeyHash),
					Blobs: hexes(x.Blobs), Record: x.Note}
				m.Expunged = append(m.Expunged, id)
			} else {
				ev.Salt = b64(r.Leaf.Salt)
				if version >= 3 {
					ev.Detail = detailOf(r.Leaf, version)
				}
			}
			if err := enc.Encode(ev); err != nil {
				return m, err
			}
			if x == nil {
				if err := os.WriteFile(filepath.Join(dir, bundleBodies, id), r.Body, 0o600); err != nil {
					return m, err
				}
			}
			m.EventIDs = append(m.EventIDs, id)
		}
	}
	if err := w.Flush(); err != nil {
		return m, err
	}
	raw, _ := json.MarshalIndent(m, "", "  ")
	raw = append(raw, '\n')
	origin, _, _ := strings.Cut(cp.Note, "\n")
	sig, err := note.Sign(&note.Note{Text: manifestText(origin, raw)}, keys.Signer)
	if err != nil {
		return m, err
	}
	if err := os.WriteFile(filepath.Join(dir, bundleManifest), raw, 0o600); err != nil {
		return m, err
	}
	return m, os.WriteFile(filepath.Join(dir, bundleManifestSig), sig, 0o600)
}

// manifestText is the text of a bundle manifest's signed note: the log it
// is of and the SHA-256 of manifest.json as written.
func manifestText(origin string, manifest []byte) string {
	sum := sha256.Sum256(manifest)
	return "casetrail bundle manifest\n" + origin + "\nsha256 " + hex.EncodeToString(sum[:]) + "\n"
}

// checkManifestSignature checks manifest.sig against manifest (the bytes
// of manifest.json) with v. It reports false, with no error, for a bundle
// written before manifests were signed, which has no manifest.sig.
func checkManifestSignature(dir string, manifest []byte, origin string, v note.Verifiers) (bool, error) {
	sig, err := os.ReadFile(filepath.Join(dir, bundleManifestSig))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	n, err := note.Open(sig, v)
	var unknown *note.UnverifiedNoteError
	if errors.As(err, &unknown) && len(unknown.Note.UnverifiedSigs) > 0 {
		sig := unknown.Note.UnverifiedSigs[0]
		return false, fmt.Errorf("manifest.sig: signed with a key that is not the newest given (%s)", keyID{sig.Name, sig.Hash})
	}
	if err != nil {
		return false, fmt.Errorf("manifest.sig: %w", err)
	}
	if n.Text != manifestText(origin, manifest) {
		return false, errors.New("manifest.json is not the manifest its signature (manifest.sig) covers: it was changed after the export")
	}
	return true, nil
}

// BundleReport is what VerifyBundle verified.
type BundleReport struct {
	Origin   string    // the log the checkpoint names
	Events   int       // events verified
	Expunged []string  // those of them whose content was erased
	Manifest *Manifest // nil in a bundle without one
	// ManifestSigned is set when the manifest's signature verified; a
	// bundle written before manifests were signed has none.
	ManifestSigned bool
}

// VerifyBundle checks a bundle offline: the checkpoint's and the manifest's
// signatures with the newest of the given keys (the last), each body against the salted hash its leaf commits to (an
// expunged event has none: its record, signed with the log's key, must
// match its leaf, and the manifest must list it as expunged), each leaf's
// inclusion proof against the checkpoint's root, the manifest's signature,
// and that the bundle holds exactly the events its manifest lists, each
// once. It returns what it
// verified, or an error naming the first thing that fails.
//
// The older keys of the chain verify only expunge records, each of an event
// before the size at which, by the checkpoint's signed word, the log moved
// on from the key: a key the log moved on from (one that leaked) can make
// no bundle, nor an expunge of a later event in one.
func VerifyBundle(dir string, v KeyChain) (rep BundleReport, err error) {
	if len(v) == 0 {
		return rep, errors.New("no verifier key given")
	}
	newest := KeyChain{v[len(v)-1]}
	signed, err := os.ReadFile(filepath.Join(dir, bundleCheckpoint))
	if err != nil {
		return rep, err
	}
	cp, err := OpenCheckpoint(signed, newest)
	if err != nil {
		if _, sigs, e := openCheckpoint(signed, v); e == nil {
			return rep, fmt.Errorf("the bundle's checkpoint is signed with %s, an earlier key of those given than the last: the bundle is from before a rotation; give the keys up to that one, that one last", signerOf(sigs))
		}
		return rep, fmt.Errorf("%w (a bundle's checkpoint and manifest are signed with the log's newest key, given last)", err)
	}
	rep.Origin = cp.Origin
	if raw, err := os.ReadFile(filepath.Join(dir, bundleManifest)); err == nil {
		rep.Manifest = &Manifest{}
		if err := json.Unmarshal(raw, rep.Manifest); err != nil {
			return rep, fmt.Errorf("manifest.json: %w", err)
		}
		if rep.Manifest.CheckpointSize != cp.Size {
			return rep, fmt.Errorf("manifest.json names a checkpoint of size %d, the bundle's is %d", rep.Manifest.CheckpointSize, cp.Size)
		}
		if rep.ManifestSigned, err = checkManifestSignature(dir, raw, cp.Origin, newest); err != nil {
			return rep, err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return rep, err
	} else if _, err := os.Stat(filepath.Join(dir, bundleManifestSig)); err == nil {
		return rep, errors.New("manifest.json is missing, though manifest.sig says the bundle had one")
	}
	seen := map[string]bool{}
	f, err := os.Open(filepath.Join(dir, bundleEvents))
	if err != nil {
		return rep, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var ev BundleEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return rep, fmt.Errorf("events.ndjson line %d: %w", line, err)
		}
		var leaf leafData
		if err := json.Unmarshal(ev.Leaf, &leaf); err != nil {
			return rep, fmt.Errorf("events.ndjson line %d: %w", line, err)
		}
		fail := func(why string) error {
			return fmt.Errorf("event %d (log index %d): %s", leaf.EventID, ev.LeafIndex, why)
		}
		// The leaf must be in its canonical form, so that what is hashed is
		// what is read.
		canon, _ := json.Marshal(leaf)
		if !bytes.Equal(canon, ev.Leaf) {
			return rep, fail("leaf data is not in canonical form")
		}
		id := strconv.FormatInt(leaf.EventID, 10)
		if seen[id] {
			return rep, fail("the bundle holds it twice")
		}
		seen[id] = true
		if ev.Expunged != nil {
			if rep.Manifest != nil && !slices.Contains(rep.Manifest.Expunged, id) {
				return rep, fail("marked expunged, but manifest.json does not list it as expunged")
			}
			if err := checkBundleExpunge(ev, leaf, v, idOf(newest[0]), cp.Retired); err != nil {
				return rep, fail(err.Error())
			}
			rep.Expunged = append(rep.Expunged, id)
		} else if err := checkContent(dir, id, ev, leaf); err != nil {
			return rep, fail(err.Error())
		}
		if ev.TreeSize != cp.Size {
			return rep, fail("the proof is for another tree size than the checkpoint")
		}
		hashes := make([][]byte, len(ev.Proof))
		for i, h := range ev.Proof {
			if hashes[i], err = base64.StdEncoding.DecodeString(h); err != nil {
				return rep, fail("bad proof hash")
			}
		}
		if err := proof.VerifyInclusion(hasher, uint64(ev.LeafIndex), uint64(cp.Size), hasher.HashLeaf(ev.Leaf), hashes, cp.Root); err != nil {
			return rep, fail("not in the log at the checkpoint: " + err.Error())
		}
		rep.Events++
	}
	if err := sc.Err(); err != nil {
		return rep, err
	}
	// Every body the bundle holds is of one of its events that was not
	// erased: an erased body left in the directory would be handed on.
	bodies, err := os.ReadDir(filepath.Join(dir, bundleBodies))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return rep, err
	}
	for _, b := range bodies {
		if !seen[b.Name()] || slices.Contains(rep.Expunged, b.Name()) {
			return rep, fmt.Errorf("bodies/%s is no body of an event the bundle holds with its content (an erased event's, or another bundle's): remove it", b.Name())
		}
	}
	m := rep.Manifest
	if m == nil {
		if rep.Events == 0 {
			return rep, errors.New("the bundle holds no events")
		}
		return rep, nil
	}
	for _, id := range m.EventIDs {
		if !seen[id] {
			return rep, fmt.Errorf("event %s: listed in manifest.json, missing from events.ndjson", id)
		}
		delete(seen, id)
	}
	for id := range seen {
		return rep, fmt.Errorf("event %s: in events.ndjson, not listed in manifest.json", id)
	}
	for _, id := range m.Expunged {
		if !slices.Contains(rep.Expunged, id) {
			return rep, fmt.Errorf("event %s: listed in manifest.json as expunged, not so in events.ndjson", id)
		}
	}
	return rep, nil
}

// checkBundleExpunge checks an expunged event's signed record against its
// leaf and what the line says of it: signed with the newest key, or with a
// key the checkpoint says the log moved on from after this event.
func checkBundleExpunge(ev BundleEvent, leaf leafData, v KeyChain, newest keyID, retired Retired) error {
	x := ev.Expunged
	r := store.ExpungeRecord{EventID: leaf.EventID, At: x.At, Reason: x.Reason, Credential: x.Credential,
		ContentType: x.ContentType}
	var err error
	if r.KeyHash, err = hex.DecodeString(x.KeyHash); err != nil {
		return errors.New("bad key hash")
	}
	if r.BodyHash, err = hex.DecodeString(leaf.BodyHash); err != nil {
		return errors.New("bad body hash")
	}
	if r.DetailHash, err = hex.DecodeString(leaf.DetailHash); err != nil {
		return errors.New("bad detail hash")
	}
	for _, h := range x.Blobs {
		b, err := hex.DecodeString(h)
		if err != nil {
			return errors.New("bad attachment hash")
		}
		r.Blobs = append(r.Blobs, b)
	}
	key, err := checkExpungeNote(x.Record, r, v)
	if err != nil || key == newest {
		return err
	}
	if until, ok := retired[key]; ok && ev.LeafIndex < until {
		return nil
	}
	return fmt.Errorf("the record of its expunge is signed with %s past the time of that key, which ended before this event entered the log: %s", key, keyTime(retired, key))
}

// checkContent checks an event's body, and its detail when its leaf commits
// to one, against the salted hashes its leaf holds.
func checkContent(dir, id string, ev BundleEvent, leaf leafData) error {
	body, err := os.ReadFile(filepath.Join(dir, bundleBodies, id))
	if err != nil {
		return errors.New("body missing: " + err.Error())
	}
	salt, err := base64.StdEncoding.DecodeString(ev.Salt)
	if err != nil {
		return errors.New("bad salt")
	}
	if len(salt) != saltSize {
		// SHA-256(salt || body) stays the same when bytes move between
		// the two, which a leaf before version 3 would not tell.
		return fmt.Errorf("its salt is %d bytes long, not %d as every salt the store makes: bytes were moved between it and the body", len(salt), saltSize)
	}
	if fmt.Sprintf("%x", store.SaltedHash(salt, body)) != leaf.BodyHash {
		return errors.New("the body does not match the hash its leaf commits to")
	}
	if leaf.DetailHash != "" && fmt.Sprintf("%x", store.SaltedHash(salt, ev.Detail)) != leaf.DetailHash {
		return errors.New("its detail (what it shows besides its body) does not match the hash its leaf commits to")
	}
	// A version 4 detail names the body's plain SHA-256, as readers are
	// shown it: it must be the body's.
	var d detail
	if json.Unmarshal(ev.Detail, &d) == nil && d.BodySHA256 != nil {
		if sum := sha256.Sum256(body); *d.BodySHA256 != hex.EncodeToString(sum[:]) {
			return errors.New("the body's SHA-256 its detail names is not the body's")
		}
	}
	return nil
}
