package httpapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/casetrail/casetrail/internal/config"
	"github.com/casetrail/casetrail/internal/ledger"
)

func TestLogRoutes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := withReadKeys(t)
	f := populate(t, b)
	st, err := b.store.LatestLogState(ctx)
	require.NoError(t, err)
	require.NoError(t, b.cp.Sign(ctx, st))

	res := b.read(t, analystKey, "/v1/log/key")
	require.Equal(t, 200, res.status)
	verifier, err := note.NewVerifier(string(res.body[:len(res.body)-1]))
	require.NoError(t, err)

	res = b.read(t, analystKey, "/v1/log/checkpoint")
	require.Equal(t, 200, res.status)
	cp, err := ledger.OpenCheckpoint(res.body, ledger.KeyChain{verifier})
	require.NoError(t, err)
	require.Equal(t, st.Size, cp.Size)

	// An event's timeline entry names its leaf, and its proof checks out
	// against the signed root.
	id := f.caseEvents["case-2"][4]
	res = b.read(t, analystKey, "/v1/events/"+id)
	var ev apiEvent
	require.NoError(t, json.Unmarshal(res.body, &ev))
	require.NotNil(t, ev.LogIndex)
	res = b.read(t, analystKey, fmt.Sprintf("/v1/log/proof/inclusion?event=%s&size=%d", id, cp.Size))
	require.Equal(t, 200, res.status, string(res.body))
	var p struct {
		LeafIndex int64    `json:"leafIndex"`
		TreeSize  int64    `json:"treeSize"`
		LeafHash  string   `json:"leafHash"`
		Hashes    []string `json:"hashes"`
	}
	require.NoError(t, json.Unmarshal(res.body, &p))
	require.Equal(t, *ev.LogIndex, p.LeafIndex)
	leaf, _ := base64.StdEncoding.DecodeString(p.LeafHash)
	require.NoError(t, proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(p.LeafIndex), uint64(p.TreeSize), leaf, decodeAll(t, p.Hashes), cp.Root))

	res = b.read(t, analystKey, fmt.Sprintf("/v1/log/proof/consistency?from=10&to=%d", cp.Size))
	require.Equal(t, 200, res.status, string(res.body))
	var c struct{ Hashes []string }
	require.NoError(t, json.Unmarshal(res.body, &c))
	require.NotEmpty(t, c.Hashes)

	res = b.read(t, analystKey, "/v1/log/checkpoints")
	require.Equal(t, 200, res.status)
	require.Contains(t, string(res.body), `"size":`)

	for _, bad := range []string{
		"/v1/log/proof/inclusion",
		fmt.Sprintf("/v1/log/proof/inclusion?event=%s&size=%d", id, cp.Size+5),
		fmt.Sprintf("/v1/log/proof/inclusion?event=%s&size=0", id), // no tree of size 0 holds a leaf
		"/v1/log/proof/consistency?from=5&to=2",
		"/v1/log/proof/consistency?from=x&to=2",
	} {
		require.Equal(t, 400, b.read(t, analystKey, bad).status, bad)
	}
	require.Equal(t, 404, b.read(t, analystKey, "/v1/log/proof/inclusion?event=99999999").status)
	require.Equal(t, 401, b.read(t, "", "/v1/log/checkpoint").status)
}

func decodeAll(t *testing.T, hs []string) [][]byte {
	out := make([][]byte, len(hs))
	for i, h := range hs {
		b, err := base64.StdEncoding.DecodeString(h)
		require.NoError(t, err)
		out[i] = b
	}
	return out
}

// The checkpoints page like every listing: limit and the cursor of the
// page before.
func TestCheckpointsPage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := withReadKeys(t)
	for i := range 5 {
		res := b.signed(t, config.KindServiceHooks, "outbound-call", fmt.Appendf(nil, `{"agentID":"a-%d"}`, i), nil)
		require.Equal(t, 200, res.status)
		b.sequence(t)
		st, err := b.store.LatestLogState(ctx)
		require.NoError(t, err)
		require.NoError(t, b.cp.Sign(ctx, st))
	}
	type page struct {
		Data []struct {
			ID   string `json:"id"`
			Size int64  `json:"size"`
		} `json:"data"`
		Page struct {
			NextCursor *string `json:"nextCursor"`
			HasMore    bool    `json:"hasMore"`
		} `json:"page"`
	}
	get := func(path string) page {
		res := b.read(t, analystKey, path)
		require.Equal(t, 200, res.status, string(res.body))
		var p page
		require.NoError(t, json.Unmarshal(res.body, &p))
		return p
	}
	all := get("/v1/log/checkpoints")
	require.Len(t, all.Data, 5)
	require.False(t, all.Page.HasMore)

	var ids []string
	path := "/v1/log/checkpoints?limit=2"
	for pages := 0; ; pages++ {
		require.Less(t, pages, 5, "the cursor must move on")
		p := get(path)
		for _, d := range p.Data {
			ids = append(ids, d.ID)
		}
		if !p.Page.HasMore {
			break
		}
		require.Len(t, p.Data, 2)
		path = "/v1/log/checkpoints?limit=2&cursor=" + *p.Page.NextCursor
	}
	want := []string{}
	for _, d := range all.Data {
		want = append(want, d.ID)
	}
	require.Equal(t, want, ids)
	from := get("/v1/log/checkpoints?from=" + want[0])
	require.Len(t, from.Data, 4)
	require.Equal(t, want[1], from.Data[0].ID)

	for _, bad := range []string{"?limit=0", "?limit=501", "?cursor=x", "?from=1&cursor=2"} {
		require.Equal(t, 400, b.read(t, analystKey, "/v1/log/checkpoints"+bad).status, bad)
	}
}

// A server whose key did not sign the stored checkpoints (a second server
// given a key of its own) has no key to give: the one it holds would verify
// none of the log's checkpoints.
func TestLogKeyOfAServerWithAForeignKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := withReadKeys(t)
	populate(t, b)
	other, err := ledger.LoadKeys("", t.TempDir(), "casetrail.test/log")
	require.NoError(t, err)
	st, err := b.store.LatestLogState(ctx)
	require.NoError(t, err)
	first := &ledger.Checkpointer{Store: b.store, Keys: other, Origin: "casetrail.test/log", MaxAge: time.Hour}
	require.NoError(t, first.Sign(ctx, st))

	res := b.read(t, analystKey, "/v1/log/key")
	require.Equal(t, 200, res.status, "not known to be foreign yet")
	require.ErrorIs(t, b.cp.CheckKey(ctx), ledger.ErrForeignKey)
	res = b.read(t, analystKey, "/v1/log/key")
	require.Equal(t, 503, res.status)
	require.Equal(t, "urn:casetrail:problem:foreign_key", res.json(t)["type"])
	res = b.read(t, analystKey, "/v1/log/checkpoint")
	require.Equal(t, 200, res.status, "the stored checkpoint is still served")
	_, err = ledger.OpenCheckpoint(res.body, other.Chain())
	require.NoError(t, err)
}
