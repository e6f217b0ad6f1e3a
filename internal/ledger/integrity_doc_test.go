package ledger

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/casetrail/casetrail/internal/store"
)

// docExamples are the fenced blocks of docs/integrity.md that follow an
// "<!-- example: NAME -->" line, by name.
func docExamples(t *testing.T) map[string]string {
	t.Helper()
	raw, err := os.ReadFile("../../docs/integrity.md")
	require.NoError(t, err)
	out := map[string]string{}
	lines := strings.Split(string(raw), "\n")
	for i := 0; i < len(lines); i++ {
		name, ok := strings.CutPrefix(lines[i], "<!-- example: ")
		if !ok {
			continue
		}
		name = strings.TrimSuffix(name, " -->")
		require.Less(t, i+1, len(lines))
		require.True(t, strings.HasPrefix(lines[i+1], "```"), "example %s: a fenced block follows its marker", name)
		var block []string
		for i += 2; i < len(lines) && !strings.HasPrefix(lines[i], "```"); i++ {
			block = append(block, lines[i])
		}
		out[name] = strings.Join(block, "\n")
	}
	return out
}

// fields splits "name value" lines.
func fields(block string) map[string]string {
	out := map[string]string{}
	for _, l := range strings.Split(block, "\n") {
		k, v, _ := strings.Cut(l, " ")
		out[k] = strings.TrimSpace(v)
	}
	return out
}

// The worked example of docs/integrity.md is what the code computes for
// its inputs, in every leaf version: an auditor following the page gets
// casetrail's leaves.
func TestIntegrityDocExample(t *testing.T) {
	t.Parallel()
	ex := docExamples(t)
	for _, name := range []string{"inputs", "detail", "leaf", "hashes"} {
		require.Contains(t, ex, name)
	}
	in := fields(ex["inputs"])
	salt, err := hex.DecodeString(in["salt"])
	require.NoError(t, err)
	require.Len(t, salt, saltSize)
	body, doc := []byte(in["body"]), []byte(in["document"])
	sum := sha256.Sum256(body)
	phone, agent, outbound := "+14155550100", "a-1", true
	l := store.LeafSource{EventID: 42, Source: "hooks", Kind: "service-hooks", Type: "outbound-call",
		OccurredAt: time.Date(2026, 1, 5, 9, 30, 0, 0, time.UTC), ReceivedAt: time.Date(2026, 1, 5, 9, 30, 0, 250_000_000, time.UTC),
		Phone: &phone, AgentID: &agent, IsOutbound: &outbound, Credential: "api-key:1a2b3c4d", Summary: "Outbound call by a-1",
		Actor: []byte(`{"id": "a-1"}`), Salt: salt, BodyHash: store.SaltedHash(salt, body), ContentType: "application/json",
		IdempotencyKey: "sha256:outbound-call:" + hex.EncodeToString(sum[:]), BodySHA256: sum[:], DocHash: store.SaltedHash(salt, doc)}

	require.Equal(t, ex["detail"], string(detailOf(l, 4)))
	require.Equal(t, ex["leaf"], string(LeafData(l)))
	h := fields(ex["hashes"])
	require.Equal(t, h["body-sha256"], hex.EncodeToString(sum[:]))
	require.Equal(t, h["body-hash"], hex.EncodeToString(l.BodyHash))
	require.Equal(t, h["doc-hash"], hex.EncodeToString(l.DocHash))
	require.Equal(t, h["detail-hash"], hex.EncodeToString(store.SaltedHash(salt, []byte(ex["detail"]))))
	require.Equal(t, h["leaf-hash"], hex.EncodeToString(hasher.HashLeaf([]byte(ex["leaf"]))))
	// By the page's own recipe: SHA-256(0x00 || leaf data).
	recipe := sha256.Sum256(append([]byte{0x00}, ex["leaf"]...))
	require.Equal(t, h["leaf-hash"], hex.EncodeToString(recipe[:]))
	for v := 1; v <= 3; v++ {
		require.Equal(t, h[fmt.Sprintf("leaf-hash-%d", v)], hex.EncodeToString(hasher.HashLeaf(leafDataOf(l, v))), "version %d", v)
	}
	require.Equal(t, leafVersion, 4, "a new leaf version needs its own description and example in docs/integrity.md")
}
