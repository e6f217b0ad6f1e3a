package ledger

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/casetrail/casetrail/internal/store"
)

func sampleLeaf() store.LeafSource {
	phone, queue, tiq, out := "+447700900001", "Sales", int64(90500), false
	return store.LeafSource{EventID: 7, Source: "service-hooks", Kind: "service-hooks", Type: "abandoned-conversation",
		OccurredAt: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC), ReceivedAt: time.Date(2024, 5, 1, 10, 0, 1, 500, time.UTC),
		Phone: &phone, Queue: &queue, TimeInQueueMs: &tiq, IsOutbound: &out, Credential: "key:hooks",
		Summary: "Abandoned in Sales", Actor: []byte(`{"id": "a-1"}`), BodyHash: []byte{0xab, 0xcd}}
}

// The leaf data's bytes are a published format: auditors recompute them.
func TestLeafDataFormat(t *testing.T) {
	t.Parallel()
	l := sampleLeaf()
	require.Equal(t, `{"v":3,"id":7,"source":"service-hooks","kind":"service-hooks","type":"abandoned-conversation",`+
		`"occurredAt":"2024-05-01T10:00:00Z","receivedAt":"2024-05-01T10:00:01.0000005Z","caseId":null,"phone":"+447700900001",`+
		`"customerId":null,"conversationId":null,"agentId":null,"workItemId":null,"queue":"Sales","timeInQueueMs":90500,`+
		`"isOutbound":false,"credential":"key:hooks","summary":"Abandoned in Sales","actor":{"id":"a-1"},"bodyHash":"abcd"}`,
		string(LeafData(l)))
	// Version 2, as stores sequenced before version 3 hold it.
	require.Equal(t, `{"v":2,"id":7,"source":"service-hooks","kind":"service-hooks","type":"abandoned-conversation",`+
		`"occurredAt":"2024-05-01T10:00:00Z","receivedAt":"2024-05-01T10:00:01.0000005Z","caseId":null,"phone":"+447700900001",`+
		`"customerId":null,"conversationId":null,"agentId":null,"workItemId":null,"queue":"Sales","timeInQueueMs":90500,`+
		`"isOutbound":false,"bodyHash":"abcd"}`, string(leafDataOf(l, 2)))
	// Version 1, as stores sequenced before version 2 hold it.
	require.Equal(t, `{"v":1,"id":7,"source":"service-hooks","kind":"service-hooks","type":"abandoned-conversation",`+
		`"occurredAt":"2024-05-01T10:00:00Z","receivedAt":"2024-05-01T10:00:01.0000005Z","caseId":null,"phone":"+447700900001",`+
		`"customerId":null,"conversationId":null,"agentId":null,"workItemId":null,"bodyHash":"abcd"}`, string(leafDataOf(l, 1)))
	// Absent report fields and JSON values are left out, not null.
	l.Queue, l.TimeInQueueMs, l.IsOutbound, l.Actor = nil, nil, nil, nil
	require.NotContains(t, string(LeafData(l)), "queue")
	require.NotContains(t, string(LeafData(l)), "isOutbound")
	require.NotContains(t, string(LeafData(l)), "actor")
	// A reply is committed to in compact form, whatever its spacing.
	l.Reply = []byte(`{"cancelled": false, "fields": null}`)
	require.Contains(t, string(LeafData(l)), `"reply":{"cancelled":false,"fields":null},"bodyHash"`)
	// A stored value that is not JSON is committed to as text.
	l.Reply = []byte(`{not json`)
	require.Contains(t, string(LeafData(l)), `"reply":"{not json"`)
}

// A row matches a leaf of any version written from it, and none once a
// field that version commits to has changed.
func TestLeafMatchesEveryVersion(t *testing.T) {
	t.Parallel()
	l := sampleLeaf()
	v1, v2, v3 := hasher.HashLeaf(leafDataOf(l, 1)), hasher.HashLeaf(leafDataOf(l, 2)), LeafHash(l)
	require.True(t, leafMatches(l, v1))
	require.True(t, leafMatches(l, v2))
	require.True(t, leafMatches(l, v3))

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
	for _, v := range [][]byte{v1, v2, v3} {
		require.False(t, leafMatches(retyped, v))
	}
}
