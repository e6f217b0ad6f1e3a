package ledger

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"golang.org/x/mod/sumdb/note"

	"github.com/casetrail/casetrail/internal/store"
)

// Keys sign checkpoints.
type Keys struct {
	Signer   note.Signer
	Verifier note.Verifier
	// VerifierKey is the public key in the note form name+hash+base64.
	VerifierKey string
	// Previous verify what the log's earlier signing keys signed
	// (log_previous_keys), oldest first; PreviousKeys are their note forms.
	Previous     []note.Verifier
	PreviousKeys []string
}

// KeyChain is the verifier keys of one log, oldest first: the keys it was
// signed with before each rotation, then the key it is signed with now.
// What one key signed verifies with the chain, and a log never goes back to
// an earlier key once a later one has signed it (Verify says so).
type KeyChain []note.Verifier

// Verifier finds the key of a signature (note.Verifiers).
func (kc KeyChain) Verifier(name string, hash uint32) (note.Verifier, error) {
	if i := kc.rank(name, hash); i >= 0 {
		return kc[i], nil
	}
	return nil, &note.UnknownVerifierError{Name: name, KeyHash: hash}
}

// rank is the position in the chain of the key with this name and hash,
// -1 when none.
func (kc KeyChain) rank(name string, hash uint32) int {
	for i, v := range kc {
		if v.Name() == name && v.KeyHash() == hash {
			return i
		}
	}
	return -1
}

// keyID names a key as a signature line does: its name and key hash.
type keyID struct {
	name string
	hash uint32
}

func (k keyID) String() string { return fmt.Sprintf("%s, key hash %08x", k.name, k.hash) }

func idOf(v note.Verifier) keyID { return keyID{v.Name(), v.KeyHash()} }

// signerOf is the key of a note's first verified signature.
func signerOf(sigs []note.Signature) keyID {
	if len(sigs) == 0 {
		return keyID{}
	}
	return keyID{sigs[0].Name, sigs[0].Hash}
}

// Retired are the keys a log moved on from, each with the size of the first
// checkpoint signed with the key after it: the key signed nothing of the
// log from that size on. Every checkpoint signed after a rotation carries
// them, signed with it, as extension lines "retired-key <name>+<key hash>
// <size>".
type Retired map[keyID]int64

const retiredPrefix = "retired-key "

// lines are the extension lines of r, in a fixed order.
func (r Retired) lines() string {
	var out []string
	for k, size := range r {
		out = append(out, fmt.Sprintf("%s%s+%08x %d\n", retiredPrefix, k.name, k.hash, size))
	}
	slices.Sort(out)
	return strings.Join(out, "")
}

// parseRetired reads a checkpoint's "retired-key" extension lines; other
// extension lines are left to others.
func parseRetired(ext string) (Retired, error) {
	r := Retired{}
	for _, line := range strings.Split(ext, "\n") {
		rest, ok := strings.CutPrefix(line, retiredPrefix)
		if !ok {
			continue
		}
		key, size, _ := strings.Cut(rest, " ")
		name, hash, ok := strings.Cut(key, "+")
		h, err := strconv.ParseUint(hash, 16, 32)
		n, err2 := strconv.ParseInt(size, 10, 64)
		if !ok || len(hash) != 8 || err != nil || err2 != nil || n < 0 {
			return nil, fmt.Errorf("checkpoint: bad extension line %q", line)
		}
		r[keyID{name, uint32(h)}] = n
	}
	return r, nil
}

// ParseKeyChain reads verifier keys in the note form, oldest first.
func ParseKeyChain(vkeys ...string) (KeyChain, error) {
	kc := make(KeyChain, 0, len(vkeys))
	for _, k := range vkeys {
		v, err := note.NewVerifier(strings.TrimSpace(k))
		if err != nil {
			return nil, fmt.Errorf("verifier key %q: %w", k, err)
		}
		if kc.rank(v.Name(), v.KeyHash()) >= 0 {
			return nil, fmt.Errorf("verifier key %q is given twice", k)
		}
		kc = append(kc, v)
	}
	return kc, nil
}

// Chain is the log's keys: the previous ones, then this one.
func (k *Keys) Chain() KeyChain {
	return append(append(KeyChain{}, k.Previous...), k.Verifier)
}

// WithPrevious adds the verifier keys of the log's earlier signing keys
// (log_previous_keys), oldest first: what they signed before a rotation
// still verifies, and a server with this key signs on after the newest
// checkpoint they signed.
func (k *Keys) WithPrevious(vkeys []string) error {
	kc, err := ParseKeyChain(append(append([]string{}, vkeys...), k.VerifierKey)...)
	if err != nil {
		return fmt.Errorf("log_previous_keys: %w", err)
	}
	k.Previous, k.PreviousKeys = kc[:len(kc)-1], append([]string(nil), vkeys...)
	return nil
}

// GenerateSigningKey makes a new log signing key (the note form
// PRIVATE+KEY+name+hash+base64) and its verifier key.
func GenerateSigningKey(name string) (skey, vkey string, err error) {
	return note.GenerateKey(rand.Reader, name)
}

// ErrNoKey means that no log signing key is configured and none is in the
// data directory.
var ErrNoKey = errors.New("no log signing key: none is configured (log_signing_key) and none is in the data directory")

// LoadKeys uses the configured signer key (note form
// PRIVATE+KEY+name+hash+base64), or the one in dataDir, generating it on
// first start.
func LoadKeys(configured, dataDir, name string) (*Keys, error) {
	k, err := OpenKeys(configured, dataDir)
	if !errors.Is(err, ErrNoKey) {
		return k, err
	}
	skey, _, err := GenerateSigningKey(name)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dataDir, signingKeyFile), []byte(skey+"\n"), 0o600); err != nil {
		return nil, err
	}
	return keysOf(skey)
}

// OpenKeys is LoadKeys for those who check the log: it never makes a key,
// and answers ErrNoKey when there is none.
func OpenKeys(configured, dataDir string) (*Keys, error) {
	if configured != "" {
		return keysOf(configured)
	}
	raw, err := os.ReadFile(filepath.Join(dataDir, signingKeyFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w (%s)", ErrNoKey, dataDir)
	}
	if err != nil {
		return nil, err
	}
	return keysOf(strings.TrimSpace(string(raw)))
}

const signingKeyFile = "log-signing.key"

func keysOf(skey string) (*Keys, error) {
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("log signing key: %w", err)
	}
	vkey, err := verifierKeyOf(skey)
	if err != nil {
		return nil, err
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, err
	}
	return &Keys{Signer: signer, Verifier: verifier, VerifierKey: vkey}, nil
}

// ErrForeignKey means the log's checkpoints were signed with another key.
var ErrForeignKey = errors.New("the checkpoints stored in this database were signed with another key")

// ErrForeignLog means the log's checkpoints name another log (origin) than
// this server's log_origin.
var ErrForeignLog = errors.New("the checkpoints stored in this database name another log")

// signed is nil when c (nil: no checkpoint yet) verifies with these keys:
// this server's, or one of the log's previous keys.
func (k *Keys) signed(c *store.Checkpoint) error {
	if c == nil {
		return nil
	}
	_, err := note.Open([]byte(c.Note), k.Chain())
	var unknown *note.UnverifiedNoteError
	if errors.As(err, &unknown) && len(unknown.Note.UnverifiedSigs) > 0 {
		sig := unknown.Note.UnverifiedSigs[0]
		return fmt.Errorf("%w (%s, key hash %08x), not with this server's (%s) nor one of its log_previous_keys: every server sharing a database must use the same log_signing_key", ErrForeignKey, sig.Name, sig.Hash, k.VerifierKey)
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrForeignKey, err)
	}
	return nil
}

// signedWithThis reports whether c carries a signature of this server's
// own key, not only of one of the log's previous keys.
func (k *Keys) signedWithThis(c store.Checkpoint) bool {
	_, err := note.Open([]byte(c.Note), note.VerifierList(k.Verifier))
	return err == nil
}

// verifierKeyOf derives the public verifier key from an Ed25519 signer key.
func verifierKeyOf(skey string) (string, error) {
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" {
		return "", errors.New("log signing key: not a note signer key (PRIVATE+KEY+name+hash+base64)")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return "", errors.New("log signing key: not an Ed25519 note key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	return note.NewEd25519VerifierKey(parts[2], pub)
}

// CheckpointText is the C2SP tlog-checkpoint body.
func CheckpointText(origin string, size int64, root []byte) string {
	return fmt.Sprintf("%s\n%d\n%s\n", origin, size, base64.StdEncoding.EncodeToString(root))
}

// ParsedCheckpoint is a verified checkpoint.
type ParsedCheckpoint struct {
	Origin string
	Size   int64
	Root   []byte
	// Retired are the keys the log had moved on from when it was signed.
	Retired Retired
}

// OpenCheckpoint verifies a signed checkpoint note against the verifier
// keys and parses it.
func OpenCheckpoint(signed []byte, v note.Verifiers) (ParsedCheckpoint, error) {
	p, _, err := openCheckpoint(signed, v)
	return p, err
}

// openCheckpoint is OpenCheckpoint, also returning the note's verified
// signatures.
func openCheckpoint(signed []byte, v note.Verifiers) (ParsedCheckpoint, []note.Signature, error) {
	// A note ends with its last signature line's newline. One saved by a
	// tool that adds another (jq -r, an editor) or ends lines with CRLF is
	// the same note.
	signed = bytes.ReplaceAll(signed, []byte("\r\n"), []byte("\n"))
	if trimmed := bytes.TrimRight(signed, "\n"); len(trimmed) < len(signed) {
		signed = append(trimmed, '\n')
	}
	n, err := note.Open(signed, v)
	var unknown *note.UnverifiedNoteError
	if errors.As(err, &unknown) && len(unknown.Note.UnverifiedSigs) > 0 {
		sig := unknown.Note.UnverifiedSigs[0]
		return ParsedCheckpoint{}, nil, fmt.Errorf("checkpoint signature: signed with a key that is none of those given (%s, key hash %08x): %w", sig.Name, sig.Hash, err)
	}
	if err != nil {
		return ParsedCheckpoint{}, nil, fmt.Errorf("checkpoint signature: %w", err)
	}
	lines := strings.SplitN(n.Text, "\n", 4)
	if len(lines) < 4 {
		return ParsedCheckpoint{}, nil, errors.New("checkpoint: want origin, size and root hash lines")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 {
		return ParsedCheckpoint{}, nil, errors.New("checkpoint: bad tree size")
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != 32 {
		return ParsedCheckpoint{}, nil, errors.New("checkpoint: bad root hash")
	}
	retired, err := parseRetired(lines[3])
	if err != nil {
		return ParsedCheckpoint{}, nil, err
	}
	return ParsedCheckpoint{Origin: lines[0], Size: size, Root: root, Retired: retired}, n.Sigs, nil
}

// Checkpointer signs checkpoints of the log. It never stores one while the
// newest stored checkpoint is signed with a key that is neither its own nor
// one of the log's previous keys (auditors holding the log's keys would
// have to take it for a forgery) or names another log (a
// log keeps its name: checkpoints of two names are of two logs to an
// auditor). It says so once (ErrForeignKey, ErrForeignLog), from CheckKey
// or Sign, and then stays silent until restarted with the log's key and
// name.
type Checkpointer struct {
	Store  *store.Store
	Keys   *Keys
	Origin string
	// Every is the least time between two checkpoints of a growing log;
	// MaxAge the most between two checkpoints at all.
	Every, MaxAge time.Duration

	refusing atomic.Bool // signs no more checkpoints
	foreign  atomic.Bool // the stored checkpoints were signed with another key
}

// CheckKey returns ErrForeignKey, naming the other key, when the newest
// stored checkpoint was not signed with this checkpointer's key; it will
// then sign none. Servers sharing a database share its key
// (log_signing_key, or data_dir/log-signing.key copied from the first).
func (c *Checkpointer) CheckKey(ctx context.Context) error {
	last, err := latestCheckpoint(ctx, c.Store)
	if err != nil {
		return err
	}
	return c.refuseIf(c.owns(last))
}

// owns is nil when last (nil: no checkpoint yet) was signed with this
// checkpointer's key, or one of the log's previous keys, and names its log.
// Whether to sign on after a previous key's is retired's to say: not when
// the log would be going back to a key it had moved on from.
func (c *Checkpointer) owns(last *store.Checkpoint) error { return c.Keys.owns(last, c.Origin) }

// owns is nil when last (nil: no checkpoint yet) was signed with these keys
// and names the log origin.
func (k *Keys) owns(last *store.Checkpoint, origin string) error {
	if err := k.signed(last); err != nil || last == nil {
		return err
	}
	if named, _, _ := strings.Cut(last.Note, "\n"); named != origin {
		return fmt.Errorf("%w: they are of the log %q, not of %q (log_origin); a log keeps its name, so set log_origin back", ErrForeignLog, named, origin)
	}
	return nil
}

// SignedLog returns ErrForeignKey, naming the other key, when the newest
// checkpoint stored in st was not signed with these keys, and
// ErrForeignLog when it names another log than origin; nil when it is
// this log's, or when there is none yet.
func (k *Keys) SignedLog(ctx context.Context, st *store.Store, origin string) error {
	last, err := latestCheckpoint(ctx, st)
	if err != nil {
		return err
	}
	return k.owns(last, origin)
}

// latestCheckpoint is the newest stored checkpoint, nil when there is none.
func latestCheckpoint(ctx context.Context, st *store.Store) (*store.Checkpoint, error) {
	last, err := st.LatestCheckpoint(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &last, nil
}

// Refusing reports whether this checkpointer found the stored checkpoints
// signed with another key, and so signs none (and its key is not the
// log's).
func (c *Checkpointer) Refusing() bool { return c.foreign.Load() }

// refuseIf stops the signing for good when err is ErrForeignKey or
// ErrForeignLog.
func (c *Checkpointer) refuseIf(err error) error {
	if errors.Is(err, ErrForeignKey) {
		c.foreign.Store(true)
	}
	if errors.Is(err, ErrForeignKey) || errors.Is(err, ErrForeignLog) {
		c.refusing.Store(true)
	}
	return err
}

// Maybe signs and stores a checkpoint of the current tree when it grew since
// the last one (and Every has passed), or when the last is older than MaxAge.
func (c *Checkpointer) Maybe(ctx context.Context, now time.Time) error {
	st, err := c.Store.LatestLogState(ctx)
	if err != nil {
		return err
	}
	last, err := c.Store.LatestCheckpoint(ctx)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return err
	case st.Size > last.Size && now.Sub(last.At) >= c.Every:
	case now.Sub(last.At) >= c.MaxAge:
	case !c.Keys.signedWithThis(last):
		// Signed with one of the log's previous keys: the log moves on to
		// this one at once, so that the old key signs nothing newer.
	default:
		return nil
	}
	return c.Sign(ctx, st)
}

// SignIfGrown signs a checkpoint when the log grew since the last one (used
// at shutdown, so that the last acknowledged events are covered).
func (c *Checkpointer) SignIfGrown(ctx context.Context) error {
	st, err := c.Store.LatestLogState(ctx)
	if err != nil {
		return err
	}
	last, err := c.Store.LatestCheckpoint(ctx)
	if err == nil && last.Size >= st.Size {
		return nil
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return c.Sign(ctx, st)
}

// Sign stores a checkpoint of st, unless the newest stored checkpoint was
// signed with another key (ErrForeignKey) or names another log
// (ErrForeignLog).
func (c *Checkpointer) Sign(ctx context.Context, st store.LogState) error {
	if c.refusing.Load() {
		return nil
	}
	root := st.Root
	if st.Size == 0 {
		root = hasher.EmptyRoot()
	}
	if err := c.extends(ctx, st.Size, root); err != nil {
		return err
	}
	retired, err := c.retired(ctx, st.Size)
	if err != nil {
		return c.refuseIf(err)
	}
	signed, err := note.Sign(&note.Note{Text: CheckpointText(c.Origin, st.Size, root) + retired.lines()}, c.Keys.Signer)
	if err != nil {
		return err
	}
	// When a larger checkpoint was stored first (by a server still on the
	// old key, in a rolling restart), this one is not: the newest is then
	// still a previous key's, and the hand-over is made at the next turn.
	return c.refuseIf(c.Store.AddCheckpoint(ctx, st.Size, root, string(signed), c.owns))
}

// retired are the keys a checkpoint of the given size signed now carries.
// After a checkpoint of this key: the lines it carries. After a previous
// key's, at the hand-over (no stored checkpoint carries a signature of
// this key): that key, which signs nothing from this size on, and those of
// its checkpoint's lines that name keys before it in the chain, within its
// size. After a previous key's once this key has signed: the lines of this
// key's newest checkpoint, if that previous key's checkpoint lies within
// the time they give it (an old checkpoint copied in again); otherwise
// ErrForeignKey: the log went back to a key it had moved on from (a server
// left with the old key and the new one among its previous keys, or the
// old key in other hands), and the lines that checkpoint carries are the
// old key's word alone.
func (c *Checkpointer) retired(ctx context.Context, size int64) (Retired, error) {
	last, err := latestCheckpoint(ctx, c.Store)
	if err != nil || last == nil {
		return nil, err
	}
	if c.Keys.signed(last) != nil {
		return nil, nil // another key's: storing refuses it
	}
	chain := c.Keys.Chain()
	prev, sigs, err := openCheckpoint([]byte(last.Note), chain)
	if err != nil {
		return nil, fmt.Errorf("the newest stored checkpoint, %d: %w", last.ID, err)
	}
	by, own := signerOf(sigs), idOf(c.Keys.Verifier)
	if by == own {
		return maps.Clone(prev.Retired), nil
	}
	mine, err := c.newestOfThisKey(ctx)
	if err != nil {
		return nil, err
	}
	if mine != nil {
		// Another server with this key may have handed over since the
		// newest was read; or the newest is an old checkpoint copied in.
		if until, ok := mine.Retired[by]; ok && prev.Size <= until {
			return maps.Clone(mine.Retired), nil
		}
		return nil, fmt.Errorf("%w: the newest, %d, is signed with a previous key of the log (%s) past the time this server's key gave it: the log went back to a key it had moved on from", ErrForeignKey, last.ID, by)
	}
	rank := chain.rank(by.name, by.hash)
	retired := Retired{}
	for k, until := range prev.Retired {
		if r := chain.rank(k.name, k.hash); r >= 0 && r < rank && until <= prev.Size {
			retired[k] = until
		}
	}
	retired[by] = size
	return retired, nil
}

// newestOfThisKey is the newest stored checkpoint that carries a signature
// of this key that verifies (a line that merely looks like one, which
// anyone who can insert could add, does not count), or nil.
func (c *Checkpointer) newestOfThisKey(ctx context.Context) (*ParsedCheckpoint, error) {
	notes, err := c.Store.CheckpointsMentioning(ctx, signatureStart(c.Keys.Verifier))
	if err != nil {
		return nil, err
	}
	for i := len(notes) - 1; i >= 0; i-- {
		if p, _, err := openCheckpoint([]byte(notes[i]), KeyChain{c.Keys.Verifier}); err == nil {
			return &p, nil
		}
	}
	return nil, nil
}

// signatureStart is how a signature line of v's key starts: the em dash,
// the key's name, and the base64 of the first 30 bits of its key hash.
func signatureStart(v note.Verifier) string {
	var h [4]byte
	binary.BigEndian.PutUint32(h[:], v.KeyHash())
	return "\u2014 " + v.Name() + " " + base64.StdEncoding.EncodeToString(h[:])[:5]
}

// ErrNotExtended means that the log's tree does not extend its newest
// signed checkpoint: it was rewritten in the database, and is not signed.
var ErrNotExtended = errors.New("the log's tree does not extend its newest signed checkpoint")

// extends is nil when the tree of the given size and root extends the
// newest stored checkpoint signed with this key, by a consistency proof
// taken from the stored leaves and subtree hashes: a log state rewritten in
// the database is then never signed, which would make the forgery a
// checkpoint of the log for good.
func (c *Checkpointer) extends(ctx context.Context, size int64, root []byte) error {
	last, err := latestCheckpoint(ctx, c.Store)
	if err != nil || last == nil {
		return err
	}
	prev, err := OpenCheckpoint([]byte(last.Note), c.Keys.Chain())
	if err != nil || size < prev.Size {
		// Another key's (storing refuses it), or a larger tree than this
		// one (which the store keeps).
		return nil
	}
	nodes, err := proof.Consistency(uint64(prev.Size), uint64(size))
	hashes, err := proofHashes(ctx, c.Store, nodes, err)
	if err == nil {
		err = proof.VerifyConsistency(hasher, uint64(prev.Size), uint64(size), hashes, prev.Root, root)
	}
	if err != nil {
		return fmt.Errorf("%w: the tree of %d leaves, against the one signed at %d (%v); run casetrail verify", ErrNotExtended, size, prev.Size, err)
	}
	return nil
}
