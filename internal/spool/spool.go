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
	// drain lets one Drain run at a time; mu guards the file, and is not
	// held while a drain waits for the database, so that appends go on.
	drain sync.Mutex
	mu    sync.Mutex
	path  string
	f     *os.File
	count int
	size  int64 // the end of the last complete record
	limit int   // MaxRecord, but in tests
	// drainEvents and drainBytes bound what one commit of a drain is
	// handed.
	drainEvents int
	drainBytes  int64
	// dirSynced is false after a drain replaced the file when the
	// directory could not be synced: the next append syncs it before its
	// sender is answered, so that the new file is the spool after a crash.
	dirSynced bool
}

// MaxRecord bounds a record's payload (the event as JSON, whose body and
// document are base64 in it): what reading takes as a length at all.
const MaxRecord = 256 << 20

// ErrTooLarge is an event too large for the spool.
var ErrTooLarge = errors.New("the event is too large for the spool")

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
	s := &Spool{path: path, f: f, limit: MaxRecord, drainEvents: maxDrainEvents, drainBytes: maxDrainBytes, dirSynced: true}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	// Counted a drain's batch at a time, not held all at once.
	var good int64
	for {
		events, end, err := s.read(good, info.Size(), s.drainEvents, s.drainBytes)
		if err != nil {
			f.Close()
			return nil, err
		}
		if len(events) == 0 {
			break
		}
		s.count, good = s.count+len(events), end
	}
	if err := f.Truncate(good); err != nil { // cut a torn tail
		f.Close()
		return nil, err
	}
	s.size = good
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

// Append writes an event and syncs it to disk before returning. When it
// fails, the spool is as it was: the next record is written over whatever
// part of this one reached the file, so no later record sits behind a torn
// one.
func (s *Spool) Append(e store.NewEvent) error {
	payload, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if len(payload) > s.limit {
		return fmt.Errorf("%w (%d bytes as a record, at most %d)", ErrTooLarge, len(payload), s.limit)
	}
	rec := make([]byte, 8+len(payload))
	binary.BigEndian.PutUint32(rec[0:4], uint32(len(payload)))
	binary.BigEndian.PutUint32(rec[4:8], crc32.ChecksumIEEE(payload))
	copy(rec[8:], payload)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.f.WriteAt(rec, s.size); err != nil {
		s.f.Truncate(s.size) //nolint:errcheck // the next record is written at s.size anyway
		return err
	}
	if err := s.f.Sync(); err != nil {
		s.f.Truncate(s.size) //nolint:errcheck
		return err
	}
	if !s.dirSynced {
		if err := syncDir(s.path); err != nil {
			s.f.Truncate(s.size) //nolint:errcheck
			return err
		}
		s.dirSynced = true
	}
	s.size += int64(len(rec))
	s.count++
	return nil
}

// Drain hands every waiting event, in order, to commit, in batches of at
// most maxDrainEvents events and maxDrainBytes of records (a larger record
// goes alone): a spool left by a long outage may be more than the database
// takes in one statement, or the server holds in memory. The batches committed
// are removed from the spool, also when a later one fails. Events appended
// while commit runs stay for the next drain.
func (s *Spool) Drain(ctx context.Context, commit func(context.Context, []store.NewEvent) error) (int, error) {
	s.drain.Lock()
	defer s.drain.Unlock()
	s.mu.Lock()
	until := s.size
	s.mu.Unlock()
	var off int64
	n := 0
	var err error
	for off < until {
		var events []store.NewEvent
		var end int64
		s.mu.Lock()
		events, end, err = s.read(off, until, s.drainEvents, s.drainBytes)
		s.mu.Unlock()
		if err != nil || len(events) == 0 {
			break
		}
		if err = commit(ctx, events); err != nil {
			break
		}
		off, n = end, n+len(events)
	}
	if off == 0 {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dropped, dropErr := s.dropFront(off)
	if dropped {
		s.count -= n
	}
	if dropErr != nil {
		return 0, dropErr
	}
	return n, err
}

// maxDrainEvents and maxDrainBytes bound one batch of a drain: the Batcher's
// default batch, and half its bytes, records being JSON with base64 in them.
const (
	maxDrainEvents = 256
	maxDrainBytes  = 32 << 20
)

// dropFront removes the records before end and reports whether it did;
// an error after that (a sync) is returned as well. With no records after
// them, the file is emptied; else the rest is written to a new file that
// replaces it, so that a crash leaves either file whole (a drained event
// read again is a duplicate, which stores nothing).
func (s *Spool) dropFront(end int64) (bool, error) {
	if end == s.size {
		if err := s.f.Truncate(0); err != nil {
			return false, err
		}
		s.size = 0
		return true, s.f.Sync()
	}
	tmp := s.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o600)
	if err != nil {
		return false, err
	}
	if _, err := io.Copy(f, io.NewSectionReader(s.f, end, s.size-end)); err != nil {
		f.Close()
		return false, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return false, err
	}
	s.dirSynced = false
	if err := os.Rename(tmp, s.path); err != nil {
		f.Close()
		return false, err
	}
	s.f.Close()
	s.f, s.size = f, s.size-end
	if err := syncDir(s.path); err != nil {
		return true, err
	}
	s.dirSynced = true
	return true, nil
}

// syncDir makes a rename in the directory of path durable.
func syncDir(path string) error {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Close closes the file, after a drain that is running.
func (s *Spool) Close() error {
	s.drain.Lock()
	defer s.drain.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f.Close()
}

// read returns the complete records from offset from up to size, at most
// maxEvents of them and maxBytes of records but at least one, and the
// offset after the last one.
func (s *Spool) read(from, size int64, maxEvents int, maxBytes int64) ([]store.NewEvent, int64, error) {
	r := bufio.NewReader(io.NewSectionReader(s.f, from, size-from))
	var events []store.NewEvent
	off := from
	head := make([]byte, 8)
	for len(events) < maxEvents {
		if _, err := io.ReadFull(r, head); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return events, off, nil
			}
			return nil, 0, err
		}
		n := binary.BigEndian.Uint32(head[0:4])
		if n > MaxRecord || off+8+int64(n) > size {
			return events, off, nil // garbage length: a torn header
		}
		if len(events) > 0 && off+8+int64(n)-from > maxBytes {
			return events, off, nil
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
	return events, off, nil
}
