package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/casetrail/casetrail/internal/dbtest"
	"github.com/casetrail/casetrail/internal/ledger"
	"github.com/casetrail/casetrail/internal/store"
)

// export --wait on a store whose log has no signed checkpoint yet waits for
// the first one, as for one that covers the newest events, and says after
// its time that there is none.
func TestExportWaitsForTheFirstCheckpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	dataDir := t.TempDir()
	env := map[string]string{"DATABASE_URL": d.URL, "CASETRAIL_DATA_DIR": dataDir, "HOOK_KEY": "hook-key", "CV_SECRET": "cv-secret"}
	getenv := func(k string) string { return env[k] }
	cfg := writeFile(t, testConfig)
	keys, err := ledger.LoadKeys("", dataDir, "casetrail.local/log") // as the server's first start does
	require.NoError(t, err)
	st, err := store.Open(ctx, d.URL, store.Options{})
	require.NoError(t, err)
	t.Cleanup(st.Close)
	for i := range 3 {
		body := []byte(fmt.Sprintf(`{"agentID":"a-%d","targetPhoneNumber":"+14155550100"}`, i))
		_, err = st.Ingest(ctx, []store.NewEvent{{ReceivedAt: time.Now().UTC(), OccurredAt: time.Now().UTC(),
			Source: "hooks", Kind: "service-hooks", Type: "outbound-call", Credential: "test", IdempotencyKey: fmt.Sprintf("k-%d", i),
			ExplicitKey: true, Body: body, BodySHA256: sha256.Sum256(body)}})
		require.NoError(t, err)
	}
	from := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	to := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	export := func(wait string, stderr io.Writer) (string, error) {
		var out bytes.Buffer
		err := run(ctx, []string{"export", "--config", cfg, "--from", from, "--to", to, "--out", filepath.Join(t.TempDir(), "b"), "--wait", wait},
			getenv, &out, stderr)
		return out.String(), err
	}

	// No server signs: the export waits its time, then says why it stops.
	var waited bytes.Buffer
	_, err = export("1s", &waited)
	require.ErrorIs(t, err, ledger.ErrNoCheckpoint)
	require.ErrorContains(t, err, "after waiting 1s")
	require.Contains(t, waited.String(), "waiting for the log's first signed checkpoint")

	// A server signs the first checkpoint while the export waits.
	done := make(chan error, 1)
	waiting := &noticeWriter{text: "waiting for the log's first signed checkpoint", seen: make(chan struct{})}
	var out string
	go func() {
		var err error
		out, err = export("60s", waiting)
		done <- err
	}()
	select {
	case <-waiting.seen:
	case err := <-done:
		t.Fatalf("the export ended before it waited: %v", err)
	}
	seq := &ledger.Sequencer{Store: st, Log: dbtest.Logger(t)}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	require.NoError(t, seq.Drain(dctx))
	state, err := st.LatestLogState(ctx)
	require.NoError(t, err)
	cp := &ledger.Checkpointer{Store: st, Keys: keys, Origin: "casetrail.local/log", MaxAge: time.Hour}
	require.NoError(t, cp.Sign(ctx, state))
	require.NoError(t, <-done)
	require.Contains(t, out, "exported 3 events")
	require.Contains(t, out, "checkpoint of size 3")
}

// noticeWriter closes seen once text has been written to it.
type noticeWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	text string
	seen chan struct{}
	once sync.Once
}

func (w *noticeWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if bytes.Contains(w.buf.Bytes(), []byte(w.text)) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}
