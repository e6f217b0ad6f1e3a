package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/transparency-dev/merkle/compact"

	"github.com/casetrail/casetrail/internal/store"
)

// Finding is the first thing verification found wrong.
type Finding struct {
	Kind    string // altered, removed, inserted, rewritten, checkpoint
	EventID int64
	Index   int64 // log index, -1 when the event has none
	Detail  string
}

func (f *Finding) Error() string {
	if f.EventID != 0 {
		return fmt.Sprintf("event %d (log index %d) was %s: %s", f.EventID, f.Index, f.Kind, f.Detail)
	}
	return f.Kind + ": " + f.Detail
}

// Report is the outcome of a verification.
type Report struct {
	Checkpoint  ParsedCheckpoint
	Leaves      int64
	Checkpoints int
}

// Verify recomputes every leaf from the stored rows and the tree from the
// leaves, and checks them against the trusted checkpoint (signed; when nil,
// the newest stored one) and every stored checkpoint, and the attachments
// and the store's references to them against the documents. It returns a
// *Finding naming the first event that was altered, removed or inserted.
// Everything is read in one snapshot: a live store is checked as it stood
// when the verification began.
func Verify(ctx context.Context, st *store.Store, v KeyChain, trusted []byte) (Report, error) {
	var rep Report
	err := st.Snapshot(ctx, func(snap *store.Store) error {
		var err error
		rep, err = verify(ctx, snap, v, trusted)
		return err
	})
	return rep, err
}

func verify(ctx context.Context, st *store.Store, v KeyChain, trusted []byte) (Report, error) {
	var rep Report
	if len(v) == 0 {
		return rep, errors.New("no verifier key given")
	}
	checkpoints, err := allCheckpoints(ctx, st)
	if err != nil {
		return rep, err
	}
	if trusted == nil {
		if len(checkpoints) == 0 {
			return rep, &Finding{Kind: "checkpoint", Detail: "the store holds no checkpoint to verify against"}
		}
		trusted = []byte(checkpoints[len(checkpoints)-1].Note)
	}
	cp, cpSigs, err := openCheckpoint(trusted, v)
	if err != nil {
		return rep, &Finding{Kind: "checkpoint", Detail: err.Error()}
	}
	rep.Checkpoint = cp

	// The stored checkpoints must be signed with the log's keys, and agree
	// with the recomputed tree at their sizes: then every pair is
	// consistent.
	parsed := make([]ParsedCheckpoint, len(checkpoints))
	signers := make([]keyID, len(checkpoints))
	for i := range checkpoints {
		p, sigs, err := openCheckpoint([]byte(checkpoints[i].Note), v)
		if err != nil {
			return rep, &Finding{Kind: "checkpoint", Detail: fmt.Sprintf("stored checkpoint %d: %v", checkpoints[i].ID, err)}
		}
		if c := &checkpoints[i]; p.Size != c.Size || !bytes.Equal(p.Root, c.Root) {
			return rep, &Finding{Kind: "checkpoint", Detail: fmt.Sprintf("stored checkpoint %d: columns differ from its signed note", c.ID)}
		}
		parsed[i], signers[i] = p, signerOf(sigs)
	}
	// The newest is signed with the newest key given (the last), and names
	// the keys the log moved on from and where, signed with it; the
	// trusted checkpoint, when signed with that key, does too. Any other
	// key signed nothing past where the log moved on from it.
	newest := idOf(v[len(v)-1])
	retired := Retired{}
	if n := len(checkpoints); n > 0 {
		if signers[n-1] != newest {
			return rep, &Finding{Kind: "checkpoint", Detail: fmt.Sprintf("the newest stored checkpoint, %d, is signed with %s, not with the newest key given (%s, the last): either no server with that key has signed yet (one does at once when it starts), or the checkpoints signed with it were removed", checkpoints[n-1].ID, signers[n-1], newest)}
		}
		maps.Copy(retired, parsed[n-1].Retired)
	}
	if signerOf(cpSigs) == newest {
		// The auditor's own checkpoint holds the store to its word: where
		// the two differ, the earlier end stands (a hand-over reopened in
		// the store, by someone who removed the newest key's checkpoints,
		// moves no key's end past what the auditor kept).
		for k, until := range cp.Retired {
			if have, ok := retired[k]; !ok || until < have {
				retired[k] = until
			}
		}
	}
	roots := map[int64][]*store.Checkpoint{}
	var sizes []int64
	for i := range checkpoints {
		c := &checkpoints[i]
		if by := signers[i]; by != newest {
			if until, ok := retired[by]; !ok || c.Size > until {
				return rep, &Finding{Kind: "checkpoint", Detail: fmt.Sprintf("stored checkpoint %d is signed with %s past the time of that key: %s", c.ID, by, keyTime(retired, by))}
			}
		}
		if len(roots[c.Size]) == 0 {
			sizes = append(sizes, c.Size)
		}
		roots[c.Size] = append(roots[c.Size], c)
	}
	if len(roots[cp.Size]) == 0 {
		sizes = append(sizes, cp.Size)
	}
	sort.Slice(sizes, func(i, j int) bool { return sizes[i] < sizes[j] })
	rep.Checkpoints = len(checkpoints)

	rng := rangeFactory.NewEmptyRange(0)
	next := int64(0)
	lastEvent := int64(0) // of the last leaf checked
	prevGood := int64(0)
	check := func(size int64) error {
		root, err := rootOf(rng)
		if err != nil {
			return err
		}
		want := roots[size]
		if size == cp.Size {
			want = append(want, &store.Checkpoint{Size: cp.Size, Root: cp.Root})
		}
		for _, c := range want {
			if !bytes.Equal(root, c.Root) {
				return &Finding{Kind: "rewritten", Index: prevGood,
					Detail: fmt.Sprintf("the tree recomputed from the rows differs from the signed checkpoint at size %d; a leaf with index in [%d, %d) and its tree state were rewritten together", size, prevGood, size)}
			}
		}
		prevGood = size
		return nil
	}
	state, err := st.LatestLogState(ctx)
	if err != nil {
		return rep, err
	}
	si := 0
	for si < len(sizes) && sizes[si] == 0 {
		if err := check(0); err != nil {
			return rep, err
		}
		si++
	}
	// The subtree hashes the log stores, from which proofs are built, are
	// checked against those recomputed from the leaves, a page at a time.
	var nodes []compact.NodeID
	var nodeHashes [][]byte
	visit := func(id compact.NodeID, hash []byte) {
		if id.Level >= storedLevel {
			nodes, nodeHashes = append(nodes, id), append(nodeHashes, hash)
		}
	}
	const page = 5000
	for {
		// Each page after the first starts again at the last leaf checked,
		// so that a second row under its event's id is seen there too.
		from := max(next-1, 0)
		rows, err := st.VerifyRows(ctx, from, page)
		if err != nil {
			return rep, err
		}
		full := len(rows) == page
		if next > 0 && len(rows) > 0 {
			rows = rows[1:]
		}
		for i, r := range rows {
			if r.Idx == next-1 || i+1 < len(rows) && rows[i+1].Idx == r.Idx {
				return rep, &Finding{Kind: "inserted", EventID: r.EventID, Index: -1,
					Detail: "a second row carries the id of a logged event"}
			}
			if r.Idx != next && next >= state.Size && si == len(sizes) {
				// Every leaf of the tree was met, and this one lies past it.
				return rep, &Finding{Kind: "inserted", EventID: r.EventID, Index: r.Idx,
					Detail: fmt.Sprintf("its leaf lies at index %d, past the %d leaves of the log's tree", r.Idx, state.Size)}
			}
			if r.Idx != next {
				return rep, missingLeaf(ctx, st, next, lastEvent, r.EventID)
			}
			if !r.Present {
				return rep, &Finding{Kind: "removed", EventID: r.EventID, Index: r.Idx, Detail: "its row is gone from the store"}
			}
			if r.Leaf.Expunged != nil {
				key, err := checkExpunged(r.Leaf, v)
				if until, ok := retired[key]; err == nil && key != newest && (!ok || r.Idx >= until) {
					err = fmt.Errorf("the record of its expunge is signed with %s past the time of that key, which ended before this event entered the log: %s", key, keyTime(retired, key))
				}
				if err != nil {
					return rep, &Finding{Kind: "altered", EventID: r.EventID, Index: r.Idx, Detail: err.Error()}
				}
			} else if len(r.Leaf.Salt) != saltSize {
				return rep, &Finding{Kind: "altered", EventID: r.EventID, Index: r.Idx,
					Detail: fmt.Sprintf("its body's salt is %d bytes long, not %d as every salt the store makes: bytes were moved between it and the body", len(r.Leaf.Salt), saltSize)}
			} else if !r.BodySHA256Matches {
				return rep, &Finding{Kind: "altered", EventID: r.EventID, Index: r.Idx,
					Detail: "the SHA-256 it shows for its body is not its body's"}
			}
			if !leafMatches(r.Leaf, r.LeafHash) {
				return rep, &Finding{Kind: "altered", EventID: r.EventID, Index: r.Idx,
					Detail: "its stored row no longer hashes to its leaf"}
			}
			// Attachments are kept apart, by their SHA-256, which the
			// event's indexed copy (committed to above) refers to.
			if r.BadAttachment != nil {
				f := &Finding{Kind: "removed", EventID: r.EventID, Index: r.Idx,
					Detail: fmt.Sprintf("attachment %x that it refers to is gone from the store", r.BadAttachment)}
				if r.AttachmentStored {
					f.Kind = "altered"
					f.Detail = fmt.Sprintf("attachment %x that it refers to no longer has the SHA-256 or the size it is stored and referred to by", r.BadAttachment)
				}
				return rep, f
			}
			// Which events refer to an attachment decides whether an
			// expunge may remove it (event_attachments, kept apart from
			// the document the leaf commits to).
			if r.Unreferenced != nil {
				return rep, &Finding{Kind: "removed", EventID: r.EventID, Index: r.Idx,
					Detail: fmt.Sprintf("its reference to attachment %x, which its document refers to, is missing from the store's references: an expunge of the other events that refer to it would remove it", r.Unreferenced)}
			}
			if err := rng.Append(r.LeafHash, visit); err != nil {
				return rep, err
			}
			next++
			lastEvent = r.EventID
			for si < len(sizes) && sizes[si] == next {
				if err := check(next); err != nil {
					f := err.(*Finding)
					f.Detail += suspects(ctx, st, f.Index, next)
					return rep, f
				}
				si++
			}
		}
		if err := checkNodes(ctx, st, nodes, nodeHashes); err != nil {
			return rep, err
		}
		nodes, nodeHashes = nodes[:0], nodeHashes[:0]
		if !full {
			break
		}
	}
	rep.Leaves = next
	if next < cp.Size {
		return rep, &Finding{Kind: "removed", Index: next, Detail: fmt.Sprintf("the checkpoint covers %d leaves but the log holds %d", cp.Size, next)}
	}
	if si < len(sizes) {
		return rep, &Finding{Kind: "removed", Index: next, Detail: fmt.Sprintf("a stored checkpoint covers %d leaves but the log holds %d", sizes[si], next)}
	}
	if next != state.Size {
		return rep, &Finding{Kind: "rewritten", Detail: fmt.Sprintf("the log state says %d leaves, the log holds %d", state.Size, next)}
	}
	if state.Size > 0 {
		if root, err := rootOf(rng); err != nil {
			return rep, err
		} else if !bytes.Equal(root, state.Root) {
			return rep, &Finding{Kind: "rewritten", Detail: fmt.Sprintf("the log state's root at size %d differs from the tree recomputed from the rows; the next checkpoint would sign it", state.Size)}
		}
	}
	// The next round takes the events after the state's position in commit
	// order, which is its last leaf's event's.
	if state.Size > 0 {
		xid, err := st.EventCommitXid(ctx, lastEvent)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return rep, err
		}
		if state.LastEvent != lastEvent || state.LastXid != xid {
			return rep, &Finding{Kind: "rewritten", Detail: fmt.Sprintf("the log state's position in commit order (transaction %d, event %d) is not that of its last leaf's event (transaction %d, event %d); the next round would log events again or pass over some", state.LastXid, state.LastEvent, xid, lastEvent)}
		}
	}
	outside, err := st.NodesOutsideTree(ctx, state.Size)
	if err != nil {
		return rep, err
	}
	if len(outside) > 0 {
		k := outside[0]
		return rep, &Finding{Kind: "inserted", Index: -1, Detail: fmt.Sprintf("a subtree hash is stored under key %d (level %d, index %d), past the %d leaves of the log's tree; the sequencer cannot store its own there when the log gets that far",
			k, k>>56, k&(1<<56-1), state.Size)}
	}
	// The next round extends the tree from the state's compact range.
	if !slices.EqualFunc(rng.Hashes(), state.RangeHashes, bytes.Equal) {
		return rep, &Finding{Kind: "rewritten", Detail: fmt.Sprintf("the log state's compact range at size %d differs from the tree recomputed from the rows; the next round would extend the tree from it, and the checkpoints after it would sign roots that no leaves give", state.Size)}
	}
	// Attachments that no logged event refers to any more.
	altered, err := st.AlteredBlobs(ctx)
	if err != nil {
		return rep, err
	}
	if len(altered) > 0 {
		return rep, &Finding{Kind: "altered", Index: -1,
			Detail: fmt.Sprintf("attachment %x no longer has the SHA-256 or the size it is stored and referred to by", altered[0])}
	}
	back, err := st.ErasedBlobsBack(ctx)
	if err != nil {
		return rep, err
	}
	if len(back) > 0 {
		idx, _, err := st.LeafOf(ctx, back[0].EventID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			idx = -1 // not in the log
		case err != nil:
			return rep, err
		}
		return rep, &Finding{Kind: "altered", EventID: back[0].EventID, Index: idx,
			Detail: fmt.Sprintf("attachment %x, which its expunge removed, is stored again though no event refers to it: erased content was put back", back[0].SHA256)}
	}
	unfounded, err := st.AttachmentRefsUnfounded(ctx)
	if err != nil {
		return rep, err
	}
	if len(unfounded) > 0 {
		u := unfounded[0]
		idx, _, err := st.LeafOf(ctx, u.EventID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			idx = -1 // not in the log
		case err != nil:
			return rep, err
		}
		return rep, &Finding{Kind: "inserted", EventID: u.EventID, Index: idx,
			Detail: fmt.Sprintf("a reference of it to attachment %x is stored that its document does not hold: it would keep the attachment from being removed when the events that do refer to it are expunged", u.SHA256)}
	}
	below, err := st.LeavesBelowZero(ctx)
	if err != nil {
		return rep, err
	}
	if len(below) > 0 {
		return rep, &Finding{Kind: "inserted", EventID: below[0].EventID, Index: below[0].Idx,
			Detail: fmt.Sprintf("its leaf lies at index %d, outside the log's tree", below[0].Idx)}
	}
	extra, err := st.Unlogged(ctx, state)
	if err != nil {
		return rep, err
	}
	if len(extra) > 0 {
		return rep, &Finding{Kind: "inserted", EventID: extra[0], Index: -1,
			Detail: "the row sits among logged events in commit order, is dated after every transaction, or repeats a logged id, but is in no leaf"}
	}
	return rep, nil
}

// missingLeaf is the finding for leaf idx missing from the log, between
// the leaves of the events after and before (after is 0 when idx is 0). It
// names the event whose leaf it was when that event's row is still stored:
// the first one in commit order between those two that no leaf holds.
func missingLeaf(ctx context.Context, st *store.Store, idx, after, before int64) *Finding {
	f := &Finding{Kind: "removed", Index: idx, Detail: fmt.Sprintf("leaf %d is missing from the log", idx)}
	var afterXid int64
	if after != 0 {
		xid, err := st.EventCommitXid(ctx, after)
		if err != nil {
			return f
		}
		afterXid = xid
	}
	beforeXid, err := st.EventCommitXid(ctx, before)
	if err != nil {
		return f
	}
	if id, err := st.UnloggedBetween(ctx, afterXid, after, beforeXid, before); err == nil {
		f.EventID = id
		f.Detail = "its leaf is missing from the log, while its row is still stored"
	}
	return f
}

// checkNodes checks the stored hashes of the given subtrees against the
// recomputed ones.
func checkNodes(ctx context.Context, st *store.Store, ids []compact.NodeID, want [][]byte) error {
	if len(ids) == 0 {
		return nil
	}
	keys := make([]int64, len(ids))
	for i, id := range ids {
		keys[i] = NodeKey(id)
	}
	stored, err := st.NodeHashes(ctx, keys)
	if err != nil {
		return err
	}
	for i, id := range ids {
		begin, end := id.Coverage()
		what := fmt.Sprintf("the stored subtree hash at level %d, index %d (leaves %d to %d), from which inclusion and consistency proofs are built,", id.Level, id.Index, begin, end-1)
		switch h, ok := stored[keys[i]]; {
		case !ok:
			return &Finding{Kind: "rewritten", Index: -1, Detail: what + " is missing: proofs through it fail"}
		case !bytes.Equal(h, want[i]):
			return &Finding{Kind: "rewritten", Index: -1, Detail: what + " is not the one recomputed from the leaves: proofs through it do not verify"}
		}
	}
	return nil
}

// suspects names the events whose leaves lie in [from, to).
func suspects(ctx context.Context, st *store.Store, from, to int64) string {
	rows, err := st.VerifyRows(ctx, from, int(min(to-from, 20)))
	if err != nil || len(rows) == 0 {
		return ""
	}
	s := "; events in that range:"
	for _, r := range rows {
		s += fmt.Sprintf(" %d", r.EventID)
	}
	return s
}

func allCheckpoints(ctx context.Context, st *store.Store) ([]store.Checkpoint, error) {
	var all []store.Checkpoint
	var after int64
	for {
		page, err := st.Checkpoints(ctx, after, 1000)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if len(page) < 1000 {
			return all, nil
		}
		after = page[len(page)-1].ID
	}
}

// keyTime says where the log moved on from a key, by the newest key's
// signed word.
func keyTime(retired Retired, k keyID) string {
	if until, ok := retired[k]; ok {
		return fmt.Sprintf("the log moved on from it at size %d", until)
	}
	return "the newest checkpoint does not name it as a key the log moved on from"
}
