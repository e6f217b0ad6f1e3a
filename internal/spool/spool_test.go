package spool_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/casetrail/casetrail/internal/spool"
	"github.com/casetrail/casetrail/internal/store"
)

func ev(i int) store.NewEvent {
	body := []byte(fmt.Sprintf(`{"caseId":"c-%d","useCustomerContactInfo":true}`, i))
	return store.NewEvent{Source: "service-actions", Type: "before-resolve", IdempotencyKey: fmt.Sprint(i),
		Body: body, BodySHA256: sha256.Sum256(body), Reply: []byte(`{"cancelled":false}`)}
}

func TestAppendDrainReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := spool.Open(dir)
	require.NoError(t, err)
	for i := range 3 {
		require.NoError(t, s.Append(ev(i)))
	}
	require.Equal(t, 3, s.Len())
	require.NoError(t, s.Close())

	// After a restart the events are still there, in order.
	s, err = spool.Open(dir)
	require.NoError(t, err)
	defer s.Close()
	require.Equal(t, 3, s.Len())

	// A failed commit keeps them.
	_, err = s.Drain(context.Background(), func(context.Context, []store.NewEvent) error { return errors.New("db down") })
	require.Error(t, err)
	require.Equal(t, 3, s.Len())

	var got []store.NewEvent
	n, err := s.Drain(context.Background(), into(&got))
	require.NoError(t, err)
	require.Equal(t, 3, n)
	require.Equal(t, 0, s.Len())
	for i := range 3 {
		require.Equal(t, ev(i).Body, got[i].Body)
		require.Equal(t, ev(i).BodySHA256, got[i].BodySHA256)
	}
	// Appends after a drain start a fresh file.
	require.NoError(t, s.Append(ev(9)))
	n, err = s.Drain(context.Background(), into(&got))
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, ev(9).Body, got[0].Body)
}

func TestTornRecordIsDropped(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := spool.Open(dir)
	require.NoError(t, err)
	require.NoError(t, s.Append(ev(1)))
	require.NoError(t, s.Append(ev(2)))
	require.NoError(t, s.Close())
	path := filepath.Join(dir, "before-hooks.spool")
	info, err := os.Stat(path)
	require.NoError(t, err)
	require.NoError(t, os.Truncate(path, info.Size()-3)) // a crash mid-write

	s, err = spool.Open(dir)
	require.NoError(t, err)
	defer s.Close()
	require.Equal(t, 1, s.Len())
	require.NoError(t, s.Append(ev(3)))
	var got []store.NewEvent
	_, err = s.Drain(context.Background(), into(&got))
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, ev(1).Body, got[0].Body)
	require.Equal(t, ev(3).Body, got[1].Body)
}

// An event too large for a record is refused before anything is written,
// so the events after it are not lost behind it.
func TestOversizedEventIsRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := spool.Open(dir)
	require.NoError(t, err)
	s.SetLimit(4096)
	require.NoError(t, s.Append(ev(1)))
	big := ev(2)
	big.Body = make([]byte, 8192)
	require.ErrorIs(t, s.Append(big), spool.ErrTooLarge)
	require.NoError(t, s.Append(ev(3)))
	require.Equal(t, 2, s.Len())
	require.NoError(t, s.Close())

	s, err = spool.Open(dir)
	require.NoError(t, err)
	defer s.Close()
	require.Equal(t, 2, s.Len())
	var got []store.NewEvent
	_, err = s.Drain(context.Background(), into(&got))
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, ev(3).Body, got[1].Body)
}

// A drain does not hold up appends while it waits for the database; what
// is appended meanwhile stays for the next drain, also across a restart.
func TestAppendsGoOnDuringDrain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := spool.Open(dir)
	require.NoError(t, err)
	require.NoError(t, s.Append(ev(1)))
	require.NoError(t, s.Append(ev(2)))

	n, err := s.Drain(context.Background(), func(_ context.Context, es []store.NewEvent) error {
		require.Len(t, es, 2)
		appended := make(chan error, 1)
		go func() { appended <- s.Append(ev(3)) }()
		select {
		case err := <-appended:
			return err
		case <-time.After(30 * time.Second):
			return errors.New("an append waited for the drain")
		}
	})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, 1, s.Len())
	require.NoError(t, s.Append(ev(4)))
	require.NoError(t, s.Close())

	s, err = spool.Open(dir)
	require.NoError(t, err)
	defer s.Close()
	require.Equal(t, 2, s.Len())
	var got []store.NewEvent
	_, err = s.Drain(context.Background(), into(&got))
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, ev(3).Body, got[0].Body)
	require.Equal(t, ev(4).Body, got[1].Body)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file is left")
}

// into is a drain's store that keeps what it is given in *got.
func into(got *[]store.NewEvent) func(context.Context, []store.NewEvent) error {
	return func(_ context.Context, es []store.NewEvent) error { *got = es; return nil }
}

// A spool larger than the database takes in one statement still drains: it
// is handed over in bounded batches, in order, and each batch committed
// leaves the spool even when a later one fails.
func TestLargeSpoolDrainsInBatches(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := spool.Open(dir)
	require.NoError(t, err)
	defer s.Close()
	s.SetDrainBatch(4, 1<<20)
	for i := range 10 {
		require.NoError(t, s.Append(ev(i)))
	}
	// The database refuses a batch over 4 events, and is down for the third.
	var got []store.NewEvent
	calls := 0
	commit := func(_ context.Context, es []store.NewEvent) error {
		calls++
		if len(es) > 4 {
			return errors.New("too large for one statement")
		}
		if calls == 3 {
			return errors.New("db down")
		}
		got = append(got, es...)
		return nil
	}
	n, err := s.Drain(context.Background(), commit)
	require.Error(t, err)
	require.Equal(t, 8, n)
	require.Equal(t, 2, s.Len())
	n, err = s.Drain(context.Background(), commit)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, 0, s.Len())
	require.Len(t, got, 10)
	for i := range 10 {
		require.Equal(t, ev(i).Body, got[i].Body)
	}

	// Bytes bound a batch too; a record larger than the bound goes alone.
	rec, err := json.Marshal(ev(0))
	require.NoError(t, err)
	s.SetDrainBatch(100, int64(2*(8+len(rec))+8)) // two records, not three
	for i := range 4 {
		require.NoError(t, s.Append(ev(i)))
	}
	big := ev(4)
	big.Body = make([]byte, 1000)
	require.NoError(t, s.Append(big))
	var sizes []int
	n, err = s.Drain(context.Background(), func(_ context.Context, es []store.NewEvent) error {
		sizes = append(sizes, len(es))
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 5, n)
	require.Equal(t, 0, s.Len())
	require.Equal(t, []int{2, 2, 1}, sizes)
}
