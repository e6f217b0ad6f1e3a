// Package spool keeps events on local disk while the database cannot take
// them, for the synchronous hooks whose senders wait on the answer (an agent
// cannot resolve a case until it comes). A record is fsync'd before the
// sender is answered, and the spool is drained into the database, in order,
// when it is back, also after a restart. Draining twice stores nothing twice:
// every event carries its idempotency key.
package spool

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/casetrail/casetrail/internal/store"
)

// Spool is an append-only file of events: each record is a 4-byte length,
// a 4-byte CRC-32 of the payload, and the event as JSON.
type Spool struct {
	mu    sync.Mutex
	path  string
	f     *os.File
	count int
}

// fileName is the spool's file in its directory.
const fileName = "before-hooks.spool"

// Open opens (or creates) the spool in dir. A record torn by a crash while
// it was written is dropped: its sender was never answered.
func Open(dir string) (*Spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, fileName)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	s := &Spool{path: path, f: f}
	events, good, err := s.read()
	if err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Truncate(good); err != nil { // cut a torn tail
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	s.count = len(events)
	return s, nil
}

// Holds reports whether dir holds a spool with records in it, without
// creating one.
func Holds(dir string) bool {
	info, err := os.Stat(filepath.Join(dir, fileName))
	return err == nil && info.Size() > 0
}

// Len is the number of events waiting.
func (s *Spool) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// Append writes an event and syncs it to disk before returning.
func (s *Spool) Append(e store.NewEvent) error {
	payload, err := json.Marshal(e)
	if err != nil {
		return err
	}
	rec := make([]byte, 8+len(payload))
	binary.BigEndian.PutUint32(rec[0:4], uint32(len(payload)))
	binary.BigEndian.PutUint32(rec[4:8], crc32.ChecksumIEEE(payload))
	copy(rec[8:], payload)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.f.Write(rec); err != nil {
		return err
	}
	if err := s.f.Sync(); err != nil {
		return err
	}
	s.count++
	return nil
}

// Drain hands every waiting event, in order, to commit, and empties the
// spool once commit has returned without error.
func (s *Spool) Drain(ctx context.Context, commit func(context.Context, []store.NewEvent) error) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.count == 0 {
		return 0, nil
	}
	events, _, err := s.read()
	if err != nil {
		return 0, err
	}
	if err := commit(ctx, events); err != nil {
		return 0, err
	}
	if err := s.f.Truncate(0); err != nil {
		return 0, err
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	if err := s.f.Sync(); err != nil {
		return 0, err
	}
	s.count = 0
	return len(events), nil
}

// Close closes the file.
func (s *Spool) Close() error { return s.f.Close() }

// read returns the complete records and the offset after the last one.
func (s *Spool) read() ([]store.NewEvent, int64, error) {
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return nil, 0, err
	}
	defer s.f.Seek(0, io.SeekEnd) //nolint:errcheck
	r := bufio.NewReader(s.f)
	var events []store.NewEvent
	var off int64
	head := make([]byte, 8)
	for {
		if _, err := io.ReadFull(r, head); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return events, off, nil
			}
			return nil, 0, err
		}
		n := binary.BigEndian.Uint32(head[0:4])
		if n > 64<<20 {
			return events, off, nil // garbage length: a torn header
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(r, payload); err != nil {
			return events, off, nil
		}
		if crc32.ChecksumIEEE(payload) != binary.BigEndian.Uint32(head[4:8]) {
			return events, off, nil
		}
		var e store.NewEvent
		if err := json.Unmarshal(payload, &e); err != nil {
			return nil, 0, fmt.Errorf("spool record at %d: %w", off, err)
		}
		events = append(events, e)
		off += 8 + int64(n)
	}
}
