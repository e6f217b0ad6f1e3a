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
		Phone: &phone, Queue: &queue, TimeInQueueMs: &tiq, IsOutbound: &out, BodyHash: []byte{0xab, 0xcd}}
}

// The leaf data's bytes are a published format: auditors recompute them.
func TestLeafDataFormat(t *testing.T) {
	t.Parallel()
	l := sampleLeaf()
	require.Equal(t, `{"v":2,"id":7,"source":"service-hooks","kind":"service-hooks","type":"abandoned-conversation",`+
		`"occurredAt":"2024-05-01T10:00:00Z","receivedAt":"2024-05-01T10:00:01.0000005Z","caseId":null,"phone":"+447700900001",`+
		`"customerId":null,"conversationId":null,"agentId":null,"workItemId":null,"queue":"Sales","timeInQueueMs":90500,`+
		`"isOutbound":false,"bodyHash":"abcd"}`, string(LeafData(l)))
	// Version 1, as stores sequenced before version 2 hold it.
	require.Equal(t, `{"v":1,"id":7,"source":"service-hooks","kind":"service-hooks","type":"abandoned-conversation",`+
		`"occurredAt":"2024-05-01T10:00:00Z","receivedAt":"2024-05-01T10:00:01.0000005Z","caseId":null,"phone":"+447700900001",`+
		`"customerId":null,"conversationId":null,"agentId":null,"workItemId":null,"bodyHash":"abcd"}`, string(leafDataOf(l, 1)))
	// Absent report fields are left out, not null.
	l.Queue, l.TimeInQueueMs, l.IsOutbound = nil, nil, nil
	require.NotContains(t, string(LeafData(l)), "queue")
	require.NotContains(t, string(LeafData(l)), "isOutbound")
}

// A row matches a leaf of either version written from it, and neither once
// a field that version commits to has changed.
func TestLeafMatchesBothVersions(t *testing.T) {
	t.Parallel()
	l := sampleLeaf()
	v1, v2 := hasher.HashLeaf(leafDataOf(l, 1)), LeafHash(l)
	require.True(t, leafMatches(l, v1))
	require.True(t, leafMatches(l, v2))

	moved := l
	queue := "Support"
	moved.Queue = &queue
	require.False(t, leafMatches(moved, v2), "version 2 commits to the queue")
	require.True(t, leafMatches(moved, v1), "version 1 never did")

	retyped := l
	retyped.Type = "outbound-call"
	require.False(t, leafMatches(retyped, v1))
	require.False(t, leafMatches(retyped, v2))
}
