package report

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/casetrail/casetrail/internal/store"
)

// An abandon's time and its callback's are given to the fraction of a
// second, as the event's own occurredAt is, so that they name the same
// instant and agree with the delay given beside them.
func TestContactTimesKeepTheirFraction(t *testing.T) {
	loc, err := time.LoadLocation("Asia/Kolkata")
	require.NoError(t, err)
	at := time.Date(2024, 5, 1, 8, 0, 0, 250_000_000, time.UTC)
	back := at.Add(90*time.Second + 500*time.Millisecond)
	c := contact(Query{Location: loc, ShortAbandonSec: 10}, store.AbandonContact{EventID: 7, At: at, Phone: "+14155550100",
		CalledBack: true, CallbackAt: back, CallbackAgent: "agent-1", Attempts: 1}, true)

	gotAt, err := time.Parse(time.RFC3339Nano, c.At)
	require.NoError(t, err)
	require.True(t, gotAt.Equal(at), "at %s", c.At)
	gotBack, err := time.Parse(time.RFC3339Nano, c.Callback.At)
	require.NoError(t, err)
	require.True(t, gotBack.Equal(back), "callback at %s", c.Callback.At)
	require.Equal(t, gotBack.Sub(gotAt).Seconds(), c.Callback.DelaySec)
}
