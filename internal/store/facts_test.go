package store_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/casetrail/casetrail/internal/store"
)

func hookEvent(typ, key, phone, queue string, at time.Time, tiqMs int64) store.NewEvent {
	body := fmt.Sprintf(`{"type":%q,"key":%q}`, typ, key)
	e := store.NewEvent{
		ReceivedAt: time.Now().UTC(), OccurredAt: at,
		Source: "service-hooks", Kind: "service-hooks", Type: typ,
		Credential: "test", IdempotencyKey: key, Phone: phone, Queue: queue,
		Body: []byte(body), BodySHA256: sha256.Sum256([]byte(body)), Doc: []byte(body),
	}
	if typ == "abandoned-conversation" && tiqMs >= 0 {
		e.TimeInQueueMs = &tiqMs
	}
	if typ == "outbound-call" {
		e.AgentID = "agent-" + key
	}
	return e
}

// The projection the ingest path maintains, batch by batch and from
// concurrent transactions, equals the one derived from the events alone:
// repeats of an abandon are counted once with the smallest event id, and
// each abandon's first callback is found whichever of the two was stored
// first, including when both are committed at the same time.
func TestAbandonFactsMatchDerivation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	phones := []string{"+447700900001", "+447700900002", "+447700900003", "+447700900004", "+447700900005", ""}
	var events []store.NewEvent
	for i := range 400 {
		at := base.Add(time.Duration(rng.IntN(48*60)) * time.Minute)
		phone := phones[rng.IntN(len(phones))]
		key := fmt.Sprintf("k%d", i)
		switch rng.IntN(3) {
		case 0:
			if phone != "" {
				events = append(events, hookEvent("outbound-call", key, phone, "", at, -1))
			}
		default:
			e := hookEvent("abandoned-conversation", key, phone, fmt.Sprintf("Q%d", rng.IntN(2)), at, int64(rng.IntN(60_000))-1)
			events = append(events, e)
			if rng.IntN(4) == 0 { // the same abandon delivered again under another key
				again := e
				again.IdempotencyKey, again.ReceivedAt = key+"-again", e.ReceivedAt.Add(time.Second)
				events = append(events, again)
			}
		}
	}
	rng.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })

	// Four writers store their share in batches of 1 to 20 at the same time.
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		share := events[w*len(events)/4 : (w+1)*len(events)/4]
		sizes := rand.New(rand.NewPCG(uint64(w), 7))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for len(share) > 0 {
				n := min(1+sizes.IntN(20), len(share))
				if _, err := b.store.Ingest(ctx, share[:n]); err != nil {
					errs <- err
					return
				}
				share = share[n:]
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	conn := b.db.Connect(t)
	var facts, withCallback, repeats, differ int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*), count(callback_at) FROM abandon_facts`).Scan(&facts, &withCallback))
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) - (SELECT count(*) FROM abandon_facts) FROM events
		WHERE type = 'abandoned-conversation'`).Scan(&repeats))
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM (
		(SELECT * FROM abandon_facts EXCEPT SELECT * FROM casetrail_abandon_facts_derived())
		UNION ALL
		(SELECT * FROM casetrail_abandon_facts_derived() EXCEPT SELECT * FROM abandon_facts)) d`).Scan(&differ))
	// The data set exercises what it claims to.
	require.Greater(t, facts, 100)
	require.Greater(t, withCallback, 20)
	require.Less(t, withCallback, facts)
	require.Greater(t, repeats, 10)
	require.Zero(t, differ, "the maintained projection differs from the derived one")

	// A rebuild gives the same rows.
	var rebuilt int
	require.NoError(t, conn.QueryRow(ctx, `SELECT casetrail_rebuild_abandon_facts()`).Scan(&rebuilt))
	require.Equal(t, facts, rebuilt)
}

// The report reads the projection in the binary format, decoding it itself;
// a connection that receives text (the simple protocol) must give the same
// facts through the driver's Scan.
func TestEachAbandonFactFormats(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	at := time.Date(2024, 3, 1, 9, 0, 0, 123456000, time.UTC)
	_, err := b.store.Ingest(ctx, []store.NewEvent{
		hookEvent("abandoned-conversation", "a1", "+447700900001", "Sales", at, 42_500),
		hookEvent("abandoned-conversation", "a2", "", "", at.Add(time.Minute), -1),
		hookEvent("outbound-call", "o1", "+447700900001", "", at.Add(90*time.Minute+time.Microsecond), -1),
	})
	require.NoError(t, err)

	read := func(s *store.Store) []string {
		var out []string
		require.NoError(t, s.EachAbandonFact(ctx, at.Add(-time.Hour), at.Add(time.Hour), nil, func(a *store.AbandonFact) {
			out = append(out, fmt.Sprintf("%s %s %q %q %d %d", a.At.UTC().Format(time.RFC3339Nano),
				a.ReceivedAt.UTC().Format(time.RFC3339Nano), a.Queue, a.Phone, a.TimeInQueueMs, a.CallbackDelayUs))
		}))
		return out
	}
	text, err := store.Open(ctx, b.db.URL+"&default_query_exec_mode=simple_protocol", store.Options{})
	require.NoError(t, err)
	defer text.Close()
	binary := read(b.store)
	require.Equal(t, binary, read(text))
	require.Len(t, binary, 2)
	require.Contains(t, binary[0], `2024-03-01T09:00:00.123456Z`)
	require.Contains(t, binary[0], `"Sales" "+447700900001" 42500 5400000001`)
	require.Contains(t, binary[1], `"" "" -1 -1`)
}
