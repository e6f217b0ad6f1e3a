package ledger

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"

	"github.com/casetrail/casetrail/internal/store"
)

func sampleLeaf() store.LeafSource {
	phone, queue, tiq, out := "+447700900001", "Sales", int64(90500), false
	return store.LeafSource{EventID: 7, Source: "service-hooks", Kind: "service-hooks", Type: "abandoned-conversation",
		OccurredAt: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC), ReceivedAt: time.Date(2024, 5, 1, 10, 0, 1, 500, time.UTC),
		Phone: &phone, Queue: &queue, TimeInQueueMs: &tiq, IsOutbound: &out, Credential: "key:hooks",
		Summary: "Abandoned in Sales", Actor: []byte(`{"id": "a-1"}`), Salt: []byte{0x01, 0x02}, BodyHash: []byte{0xab, 0xcd},
		ContentType: "application/json", IdempotencyKey: "k-1", BodySHA256: []byte{0xef}, DocHash: []byte{0x12}}
}

// detailHashOf is SHA-256(0x01 0x02 || detail), the sample's salt.
func detailHashOf(detail string) string {
	sum := sha256.Sum256(append([]byte{0x01, 0x02}, detail...))
	return hex.EncodeToString(sum[:])
}

// The leaf data's bytes are a published format: auditors recompute them.
func TestLeafDataFormat(t *testing.T) {
	t.Parallel()
	l := sampleLeaf()
	require.Equal(t, `{"v":4,"id":7,"source":"service-hooks","kind":"service-hooks","type":"abandoned-conversation",`+
		`"occurredAt":"2024-05-01T10:00:00Z","receivedAt":"2024-05-01T10:00:01.0000005Z","caseId":null,"phone":"+447700900001",`+
		`"customerId":null,"conversationId":null,"agentId":null,"workItemId":null,"queue":"Sales","timeInQueueMs":90500,`+
		`"isOutbound":false,"detailHash":"`+detailHashOf(`{"credential":"key:hooks","summary":"Abandoned in Sales","actor":{"id":"a-1"},`+
		`"contentType":"application/json","idempotencyKey":"k-1","bodySha256":"ef","docHash":"12"}`)+
		`","bodyHash":"abcd"}`, string(LeafData(l)))
	// Version 3, as stores sequenced before version 4 hold it.
	require.Equal(t, `{"v":3,"id":7,"source":"service-hooks","kind":"service-hooks","type":"abandoned-conversation",`+
		`"occurredAt":"2024-05-01T10:00:00Z","receivedAt":"2024-05-01T10:00:01.0000005Z","caseId":null,"phone":"+447700900001",`+
		`"customerId":null,"conversationId":null,"agentId":null,"workItemId":null,"queue":"Sales","timeInQueueMs":90500,`+
		`"isOutbound":false,"detailHash":"`+detailHashOf(`{"credential":"key:hooks","summary":"Abandoned in Sales","actor":{"id":"a-1"}}`)+
		`","bodyHash":"abcd"}`, string(leafDataOf(l, 3)))
	// Version 2, as stores sequenced before version 3 hold it.
	require.Equal(t, `{"v":2,"id":7,"source":"service-hooks","kind":"service-hooks","type":"abandoned-conversation",`+
		`"occurredAt":"2024-05-01T10:00:00Z","receivedAt":"2024-05-01T10:00:01.0000005Z","caseId":null,"phone":"+447700900001",`+
		`"customerId":null,"conversationId":null,"agentId":null,"workItemId":null,"queue":"Sales","timeInQueueMs":90500,`+
		`"isOutbound":false,"bodyHash":"abcd"}`, string(leafDataOf(l, 2)))
	// Version 1, as stores sequenced before version 2 hold it.
	require.Equal(t, `{"v":1,"id":7,"source":"service-hooks","kind":"service-hooks","type":"abandoned-conversation",`+
		`"occurredAt":"2024-05-01T10:00:00Z","receivedAt":"2024-05-01T10:00:01.0000005Z","caseId":null,"phone":"+447700900001",`+
		`"customerId":null,"conversationId":null,"agentId":null,"workItemId":null,"bodyHash":"abcd"}`, string(leafDataOf(l, 1)))
	// Absent report fields are left out, not null.
	l.Queue, l.TimeInQueueMs, l.IsOutbound = nil, nil, nil
	require.NotContains(t, string(LeafData(l)), "queue")
	require.NotContains(t, string(LeafData(l)), "isOutbound")
}

// The detail a version 3 leaf hashes leaves out null JSON values, holds the
// others compact whatever their spacing, and a stored value that is not
// JSON as text.
func TestLeafDetail(t *testing.T) {
	t.Parallel()
	l := sampleLeaf()
	l.Actor = nil
	l.Reply = []byte(`{"cancelled": false, "fields": null}`)
	require.Equal(t, `{"credential":"key:hooks","summary":"Abandoned in Sales","reply":{"cancelled":false,"fields":null}}`, string(detailOf(l, 3)))
	require.Contains(t, string(leafDataOf(l, 3)), detailHashOf(string(detailOf(l, 3))))
	require.Contains(t, string(LeafData(l)), detailHashOf(string(detailOf(l, 4))))
	l.Reply = []byte(`{not json`)
	require.Equal(t, `{"credential":"key:hooks","summary":"Abandoned in Sales","reply":"{not json"}`, string(detailOf(l, 3)))
	// Version 4: an empty content type or key is there, empty; an event
	// with no indexed copy has no docHash; a lossy copy says so.
	l.ContentType, l.IdempotencyKey, l.DocHash, l.DocLossy = "", "", nil, true
	require.Equal(t, `{"credential":"key:hooks","summary":"Abandoned in Sales","reply":"{not json",`+
		`"contentType":"","idempotencyKey":"","bodySha256":"ef","docLossy":true}`, string(detailOf(l, 4)))
	// The salt is in the hash: another salt, another leaf.
	other := l
	other.Salt = []byte{0x03}
	require.NotEqual(t, LeafData(l), LeafData(other))
}

// A row matches a leaf of any version written from it, and none once a
// field that version commits to has changed.
func TestLeafMatchesEveryVersion(t *testing.T) {
	t.Parallel()
	l := sampleLeaf()
	v1, v2, v3 := hasher.HashLeaf(leafDataOf(l, 1)), hasher.HashLeaf(leafDataOf(l, 2)), hasher.HashLeaf(leafDataOf(l, 3))
	v4 := hasher.HashLeaf(LeafData(l))
	require.True(t, leafMatches(l, v1))
	require.True(t, leafMatches(l, v2))
	require.True(t, leafMatches(l, v3))
	require.True(t, leafMatches(l, v4))

	// Version 4 commits to everything else readers are shown.
	for name, change := range map[string]func(*store.LeafSource){
		"content type":    func(l *store.LeafSource) { l.ContentType = "text/plain" },
		"idempotency key": func(l *store.LeafSource) { l.IdempotencyKey = "k-2" },
		"body's SHA-256":  func(l *store.LeafSource) { l.BodySHA256 = []byte{0xee} },
		"indexed copy":    func(l *store.LeafSource) { l.DocHash = []byte{0x13} },
		"no indexed copy": func(l *store.LeafSource) { l.DocHash = nil },
		"lossy copy":      func(l *store.LeafSource) { l.DocLossy = true },
	} {
		changed := l
		change(&changed)
		require.False(t, leafMatches(changed, v4), name)
		require.True(t, leafMatches(changed, v3), "version 3 never committed to the %s", name)
	}

	moved := l
	queue := "Support"
	moved.Queue = &queue
	require.False(t, leafMatches(moved, v2), "version 2 commits to the queue")
	require.False(t, leafMatches(moved, v3))
	require.True(t, leafMatches(moved, v1), "version 1 never did")

	replied := l
	replied.Reply = []byte(`{"cancelled": true}`)
	require.False(t, leafMatches(replied, v3), "version 3 commits to the reply")
	require.True(t, leafMatches(replied, v2), "version 2 never did")

	retyped := l
	retyped.Type = "outbound-call"
	for _, v := range [][]byte{v1, v2, v3, v4} {
		require.False(t, leafMatches(retyped, v))
	}
}

// An expunge's record of version 2 signs the content type and the key the
// row keeps; one of version 1, signed before, still verifies without them.
func TestExpungeRecordVersions(t *testing.T) {
	t.Parallel()
	keys, err := LoadKeys("", t.TempDir(), "casetrail.test")
	require.NoError(t, err)
	r := store.ExpungeRecord{EventID: 7, At: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC), Reason: "erasure",
		Credential: "key:hooks", ContentType: "application/json", KeyHash: store.SaltedHash([]byte{1}, []byte("k-7")),
		BodyHash: []byte{0xab}, DetailHash: []byte{0xcd}}
	sign := func(version int) string {
		signed, err := note.Sign(&note.Note{Text: expungeText(r, version)}, keys.Signer)
		require.NoError(t, err)
		return string(signed)
	}
	v1, v2 := sign(1), sign(2)
	check := func(signed string, r store.ExpungeRecord) error {
		_, err := checkExpungeNote(signed, r, keys.Chain())
		return err
	}
	require.True(t, strings.HasPrefix(v2, "casetrail expunge 2\n"))
	require.NoError(t, check(v1, r))
	require.NoError(t, check(v2, r))

	changed := r
	changed.ContentType = "text/plain"
	require.NoError(t, check(v1, changed), "version 1 never signed it")
	require.ErrorContains(t, check(v2, changed), "differs from what was signed")
	changed = r
	changed.KeyHash = store.SaltedHash([]byte{1}, []byte("k-8"))
	require.ErrorContains(t, check(v2, changed), "differs from what was signed")
	changed = r
	changed.Credential = "key:other"
	require.ErrorContains(t, check(v1, changed), "differs from what was signed")
}
